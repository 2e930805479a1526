"""What a new user meets with a graph from another exporter (hand-built with onnx.helper:
Conv, Flatten, Gemm, LSTM): hand counts, and wrong shapes or dims refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.cli import run  # noqa: E402
from flopmeter.onnx import OnnxModelError, profile_onnx  # noqa: E402


def hand_graph() -> onnx.ModelProto:
    """x (1, 3, 32, 32) -> Conv 8x3x3x3 + bias -> Relu -> Flatten -> Gemm (7200 -> 10, bias);
    s (T, 1, 10) -> LSTM hidden 16 (no biases)."""

    def init(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.ones(shape, np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "G", "Gb"], ["g"], transB=1, name="fc"),
        helper.make_node("LSTM", ["s", "LW", "LR"], ["ly", "lh", "lc"], hidden_size=16, name="lstm"),
    ]
    graph = helper.make_graph(
        nodes,
        "hand",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32]),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, ["T", 1, 10]),
        ],
        [
            helper.make_tensor_value_info("g", TensorProto.FLOAT, [1, 10]),
            helper.make_tensor_value_info("ly", TensorProto.FLOAT, ["T", 1, 1, 16]),
        ],
        [
            init("W", (8, 3, 3, 3)),
            init("B", (8,)),
            init("G", (10, 8 * 30 * 30)),
            init("Gb", (10,)),
            init("LW", (1, 64, 10)),
            init("LR", (1, 64, 16)),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hand")


def test_hand_graph_counts_by_hand() -> None:
    report = profile_onnx(hand_graph(), dims={"T": 5})
    ops = report.by_operator()
    assert ops["onnx.Conv"].cost.macs == 27 * 30 * 30 * 8  # 194,400
    assert ops["onnx.Conv"].cost.flops == 2 * 27 * 30 * 30 * 8  # 388,800 (with bias)
    assert ops["onnx.Gemm"].cost.macs == 7200 * 10  # 72,000
    assert ops["onnx.LSTM"].cost.macs == 5 * 4 * 16 * (10 + 16)  # 8,320: T x 4 gates x H x (I + H)
    assert report.macs == 194_400 + 72_000 + 8_320  # 274,720
    assert report.params == 216 + 8 + 72_000 + 10 + 640 + 1024  # 73,898


def test_a_zero_dim_is_refused_not_counted_as_nothing() -> None:
    with pytest.raises(OnnxModelError, match="dim 'T' must be at least 1"):
        profile_onnx(hand_graph(), dims={"T": 0})


def test_input_channels_that_disagree_with_the_conv_weight_are_refused() -> None:
    # ONNX shape inference does not check this: it would be counted with 3 channels
    with pytest.raises(OnnxModelError, match="input has 4 channels .* weight expects 3"):
        profile_onnx(hand_graph(), inputs={"x": (1, 4, 32, 32)}, dims={"T": 5})


def test_a_shape_onnx_inference_rejects_says_why() -> None:
    # 33x33 pixels flatten to 7,688 features; the Gemm weight takes 7,200
    with pytest.raises(OnnxModelError, match="refused the node.*7200 and 7688"):
        profile_onnx(hand_graph(), inputs={"x": (1, 3, 33, 33)}, dims={"T": 5})


def test_cli_exit_2_for_each(tmp_path: Path) -> None:
    path = tmp_path / "hand.onnx"
    onnx.save(hand_graph(), str(path))
    code, _, err = run([str(path), "--dim", "T=0"])
    assert code == 2 and "at least 1" in err and "Traceback" not in err
    code, _, err = run([str(path), "--dim", "T=5", "--input", "x:1x4x32x32"])
    assert code == 2 and "weight expects 3" in err and "Traceback" not in err


def test_unbound_dim_hint_gives_a_placeholder_not_the_dim_twice() -> None:
    # a dim named N (a dynamic batch) used to read "--dim N=N"
    with pytest.raises(OnnxModelError, match=r"CLI: --dim T=SIZE\)"):
        profile_onnx(hand_graph())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--backward"], "--backward needs a PyTorch model"),  # was: a forward count, silently
        (["--train", "--set", "a=1"], "--train, --set need a PyTorch model"),
    ],
)
def test_pytorch_only_options_on_an_onnx_file_are_refused(
    tmp_path: Path, options: list[str], message: str
) -> None:
    path = tmp_path / "hand.onnx"
    onnx.save(hand_graph(), str(path))
    code, out, err = run([str(path), "--dim", "T=5", *options])
    assert code == 2 and message in err and out == ""


def test_dim_on_a_pytorch_model_is_refused() -> None:
    code, out, err = run(["torchvision:resnet18", "--dim", "T=5"])
    assert code == 2 and "--dim binds the symbolic dims of an ONNX file" in err and out == ""


def test_a_split_into_a_sequence_is_counted_as_torch_split() -> None:
    """Probe 12 (P12-U3): ``torch.onnx.export(..., dynamo=True, optimize=False)`` writes
    ``tensor.split`` (GPT-2's q, k, v) as SplitToSequence + SequenceAt; the sequence's type was
    dropped, so every node after it failed ("could not be inferred (rank unknown)").
    x (2, 6) split into chunks of 3 along dim 1; chunk 0 (2, 3) @ w (3, 4)."""
    nodes = [
        helper.make_node("SplitToSequence", ["x", "three"], ["parts"], name="/split", axis=1),
        helper.make_node("SequenceAt", ["parts", "zero"], ["first"], name="/at"),
        helper.make_node("MatMul", ["first", "w"], ["y"], name="/fc/MatMul"),
    ]
    graph = helper.make_graph(
        nodes,
        "split_sequence",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[
            numpy_helper.from_array(np.array(3, np.int64), "three"),
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            numpy_helper.from_array(np.ones((3, 4), np.float32), "w"),
        ],
    )
    report = profile_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    assert report.macs == 2 * 4 * 3  # 24: 8 outputs, dot products of 3
    assert report.flops == 2 * 4 * (2 * 3 - 1)  # 40: 3 multiplies and 2 adds per output
    assert report.params == 3 * 4  # 12: the MatMul's weight
    assert report.unsupported_ops() == {}
    assert report.by_operator()["onnx.SplitToSequence"].kind == "view"  # free, as torch's split


@pytest.mark.parametrize("shape", [(1, 3, 8, 8.5), (1, 3, True, 8), (1, 3, 8.0, 8)])
def test_an_input_shape_of_floats_or_bools_is_refused_not_truncated(shape) -> None:  # type: ignore[no-untyped-def]
    """Probe 12 (P12-U6): profile_onnx(inputs={"x": (1, 3, 224, 224.5)}) counted 224 (int()
    truncates) and True a dim of 1, where profile()'s input_shape refuses both."""
    with pytest.raises(OnnxModelError, match="bad shape .*expected a tuple of ints"):
        profile_onnx(hand_graph(), inputs={"x": shape})
