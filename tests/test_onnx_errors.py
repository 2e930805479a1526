"""Small hand-built ONNX graphs: formulas by hand, symbolic dims, and every way a file
can be wrong (each a clear OnnxModelError, exit 2 on the command line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.cli import run  # noqa: E402
from flopmeter.onnx import OnnxModelError, profile_onnx  # noqa: E402


def conv_then_matmul(opset: int = 18) -> onnx.ModelProto:
    """x (1, 3, 8, 8) -> Conv 4x3x3x3 (+bias, pad 1) -> Relu;  y (B, T, 16) -> MatMul W (16, 8)."""
    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "conv.weight")
    bias = numpy_helper.from_array(np.ones(4, np.float32), "conv.bias")
    proj = numpy_helper.from_array(np.ones((16, 8), np.float32), "proj.weight")
    nodes = [
        helper.make_node(
            "Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["c"], ["r"], name="/act/Relu"),
        helper.make_node("MatMul", ["y", "proj.weight"], ["p"], name="/proj/MatMul"),
    ]
    graph = helper.make_graph(
        nodes,
        "toy",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", 16]),
        ],
        [
            helper.make_tensor_value_info("r", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("p", TensorProto.FLOAT, None),
        ],
        [weight, bias, proj],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


class TestProfileOnnx:
    def test_counts_by_hand(self) -> None:
        report = profile_onnx(conv_then_matmul(), dims={"B": 2, "T": 5})
        conv = report.modules["conv"]
        assert conv.macs == 4 * 8 * 8 * 27  # 6,912
        assert conv.flops == 4 * 8 * 8 * (2 * 27 - 1) + 256  # 13,824 (dot products + bias adds)
        assert report.modules["act"].flops == 256  # one max per element
        assert report.modules["proj"].macs == 2 * 5 * 16 * 8  # 1,280
        assert report.params == 108 + 4 + 128  # 240
        assert report.macs == 6912 + 1280

    def test_input_shapes_override_the_declared_ones(self) -> None:
        report = profile_onnx(conv_then_matmul(), inputs={"y": (3, 7, 16)})
        assert report.modules["proj"].macs == 3 * 7 * 16 * 8  # 2,688

    def test_unbound_dim_names_the_dim_and_the_node(self) -> None:
        with pytest.raises(OnnxModelError, match=r"dim 'T'.*'/proj/MatMul' \(MatMul\)"):
            profile_onnx(conv_then_matmul(), dims={"B": 1})

    def test_unknown_dim_name_is_refused(self) -> None:
        with pytest.raises(OnnxModelError, match=r"dim 'S' is not a symbolic dim.*B, T"):
            profile_onnx(conv_then_matmul(), dims={"B": 1, "T": 2, "S": 3})

    def test_unknown_input_name_is_refused(self) -> None:
        with pytest.raises(OnnxModelError, match="no input named 'z'"):
            profile_onnx(conv_then_matmul(), inputs={"z": (1, 2)})

    def test_unknown_opset_is_refused(self) -> None:
        with pytest.raises(OnnxModelError, match="opset 99"):
            profile_onnx(conv_then_matmul(opset=99), dims={"B": 1, "T": 1})

    def test_weights_are_never_read(self, tmp_path: Path) -> None:
        """External data that does not exist on disk: counting needs only metadata."""
        model = conv_then_matmul()
        onnx.save(model, tmp_path / "m.onnx", save_as_external_data=True, size_threshold=0, location="m.data")
        (tmp_path / "m.data").unlink()
        assert profile_onnx(tmp_path / "m.onnx", dims={"B": 1, "T": 1}).params == 240

    @pytest.mark.parametrize("location", ["../outside.data", "/etc/passwd", "sub/../../x.data"])
    def test_external_data_outside_the_folder_is_refused(self, tmp_path: Path, location: str) -> None:
        model = conv_then_matmul()
        tensor = model.graph.initializer[0]
        tensor.ClearField("float_data")
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value=location)
        onnx.save(model, tmp_path / "m.onnx")
        with pytest.raises(OnnxModelError, match="external data"):
            profile_onnx(tmp_path / "m.onnx", dims={"B": 1, "T": 1})

    def test_malformed_file(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.onnx"
        path.write_bytes(b"this is not a protobuf \xff\xfe")
        with pytest.raises(OnnxModelError, match="malformed or truncated|truncated"):
            profile_onnx(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(OnnxModelError, match="no such ONNX file"):
            profile_onnx(tmp_path / "nope.onnx")


def test_truncated_files_never_give_a_number_or_a_traceback(tmp_path: Path) -> None:
    """Cut a real model at every offset: each cut is a clear error, exit code 2."""
    data = conv_then_matmul().SerializeToString()
    path = tmp_path / "cut.onnx"
    for offset in range(0, len(data) - 1, 7):
        path.write_bytes(data[:offset])
        with pytest.raises(OnnxModelError):
            profile_onnx(path, dims={"B": 1, "T": 1})
    for offset in range(0, len(data) - 1, 97):
        path.write_bytes(data[:offset])
        code, out, err = run([str(path), "--dim", "B=1", "--dim", "T=1"])
        assert code == 2 and out == "" and "Traceback" not in err and "error:" in err


class TestCli:
    def test_dims_and_inputs(self, tmp_path: Path) -> None:
        path = tmp_path / "toy.onnx"
        onnx.save(conv_then_matmul(), path)
        code, out, err = run([str(path), "--dim", "B=2", "--dim", "T=5", "--units", "plain", "-q"])
        assert code == 0, err
        assert "8,192 MACs" in out or "8192 MACs" in out  # 6,912 + 1,280

    @pytest.mark.parametrize("fmt", ["tree", "table", "json", "csv", "markdown"])
    def test_every_format(self, tmp_path: Path, fmt: str) -> None:
        path = tmp_path / "toy.onnx"
        onnx.save(conv_then_matmul(), path)
        code, out, err = run([str(path), "--input", "y:1x4x16", "--format", fmt])
        assert code == 0, err
        assert "proj" in out

    def test_unbound_dim_exits_2(self, tmp_path: Path) -> None:
        path = tmp_path / "toy.onnx"
        onnx.save(conv_then_matmul(), path)
        code, out, err = run([str(path)])
        assert code == 2 and "unbound" in err and "--dim" in err

    def test_bad_dim_syntax_exits_2(self, tmp_path: Path) -> None:
        path = tmp_path / "toy.onnx"
        onnx.save(conv_then_matmul(), path)
        code, _, err = run([str(path), "--dim", "T"])
        assert code == 2 and "NAME=VALUE" in err

    def test_compare_two_onnx_files(self, tmp_path: Path) -> None:
        onnx.save(conv_then_matmul(), tmp_path / "a.onnx")
        onnx.save(conv_then_matmul(), tmp_path / "b.onnx")
        code, out, err = run(
            ["compare", str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx"), "--input", "y:1x4x16"]
        )
        assert code == 0, err
        assert "a.onnx" in out and "b.onnx" in out
