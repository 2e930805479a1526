"""Probe 13's new-user ONNX findings (docs/probe-13/onnx.md): an input without a shape or
without an element type, the fused-op NOTE naming the ops the file has, and dynamo dropping
the all-zero biases of an untrained model (FLOPs as well as params)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
import torch  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.cli import run  # noqa: E402
from flopmeter.onnx import OnnxModelError, profile_onnx  # noqa: E402
from flopmeter.render.onnx_notes import onnx_lines  # noqa: E402


def conv_model(x: onnx.ValueInfoProto) -> onnx.ModelProto:
    """x -> Conv 4x3x3x3 (pad 1, no bias): 4 x 8 x 8 x 27 = 6,912 MACs at 1x3x8x8."""
    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="/conv/Conv", pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node], "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_an_input_without_a_shape_names_both_ways_to_give_it(tmp_path: Path) -> None:
    model = conv_model(helper.make_tensor_value_info("x", TensorProto.FLOAT, None))
    with pytest.raises(OnnxModelError, match=r"inputs=\{'x': \(\.\.\.\)\} \(CLI: --input x:SHAPE\)"):
        profile_onnx(model)
    path = tmp_path / "noshape.onnx"
    onnx.save(model, path)
    code, _, err = run([str(path)])
    assert code == 2 and "--input x:SHAPE" in err and "Traceback" not in err
    # given, it counts: 4 x 8 x 8 x 3 x 3 x 3 = 6,912 MACs
    assert profile_onnx(model, inputs={"x": (1, 3, 8, 8)}).macs == 6912


def test_an_input_without_an_element_type_is_named_not_blamed_on_the_shapes() -> None:
    # before: "the shape of 'y' ... could not be inferred ... Element type of input 0 unknown;
    # check the input shapes given", even with a right --input
    model = conv_model(onnx.ValueInfoProto(name="x"))
    for inputs in (None, {"x": (1, 3, 8, 8)}):
        with pytest.raises(OnnxModelError, match="input 'x' declares no element type"):
            profile_onnx(model, inputs=inputs)


def test_the_fused_op_note_names_the_fused_ops_the_file_has() -> None:
    # x (2, 8) -> LayerNormalization -> Gelu -> LayerNormalization: 3 fused ops; the NOTE
    # listed "Attention, RMSNormalization, RotaryEmbedding, com.microsoft ..." whatever they were
    scale = numpy_helper.from_array(np.full(8, 2.0, np.float32), "ln.weight")
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln.weight"], ["a"], name="/ln/LN"),
        helper.make_node("Gelu", ["a"], ["b"], name="/act/Gelu"),
        helper.make_node("LayerNormalization", ["b", "ln.weight"], ["c"], name="/ln2/LN"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)],
        [scale],
    )
    report = profile_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]))
    assert report.options["onnx"]["differences"]["fused_ops"] == 3  # 2 LayerNormalization + 1 Gelu
    note = next(line for line in onnx_lines(report) if "fused op(s)" in line)
    assert "3 fused op(s) (LayerNormalization x2, Gelu x1)" in note
    assert "Attention" not in note and "RotaryEmbedding" not in note


class ConvBN(torch.nn.Module):
    """Conv 3->4 (3x3, pad 1, no bias) + BatchNorm: at 1x3x8x8, 4 x 8 x 8 = 256 outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def test_dynamo_drops_the_zero_bias_of_an_untrained_model_with_its_adds(tmp_path: Path) -> None:
    """docs/onnx.md: an untrained BatchNorm (beta 0, mean 0) folds into an all-zero conv bias,
    which dynamo's optimizer drops: its E bias adds go with it, as well as its C params."""
    x = torch.randn(1, 3, 8, 8)
    files = {}
    for name, train in (("untrained", False), ("random", True)):
        model = ConvBN().eval()
        if train:
            with torch.no_grad():
                model.bn.bias.uniform_(0.5, 1.5)
                model.bn.running_mean.uniform_(0.5, 1.5)
        files[name] = tmp_path / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), files[name], input_names=["x"], dynamo=True)
    untrained, random = (profile_onnx(files[n]) for n in ("untrained", "random"))
    assert untrained.macs == random.macs == 4 * 8 * 8 * 27  # 6,912
    # random: dot products 256 x (2 x 27 - 1) = 13,568 + 256 folded-BN bias adds = 13,824
    assert random.flops == 256 * (2 * 27 - 1) + 256
    assert random.params == 108 + 4  # weight + the folded bias
    # untrained: the bias is all zeros and dropped: 13,568 FLOPs, 108 params
    assert untrained.flops == 256 * (2 * 27 - 1)
    assert untrained.params == 108


def test_several_unbound_dims_are_all_named_with_their_options(tmp_path: Path) -> None:
    # before: "dim 'B', 'H' is unbound ... bind it with dims={'B': ...} (CLI: --dim B=SIZE)":
    # binding B as told only met the next error, for H
    model = conv_model(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, "H", 8]))
    with pytest.raises(
        OnnxModelError,
        match=r"dims 'B', 'H' are unbound: .* bind them with dims=\{'B': \.\.\., 'H': \.\.\.\} "
        r"\(CLI: --dim B=SIZE --dim H=SIZE\)",
    ):
        profile_onnx(model)
    with pytest.raises(OnnxModelError, match=r"dim 'H' is unbound: .*\(CLI: --dim H=SIZE\)"):
        profile_onnx(model, dims={"B": 2})
    # both bound: 2 x 4 x 6 x 8 x 27 = 10,368 MACs
    assert profile_onnx(model, dims={"B": 2, "H": 6}).macs == 10368


def test_an_onnx_files_estimate_has_no_module_call_cost() -> None:
    """O6: an ONNX file's modules are its node names' scopes; a runtime calls no nn.Module, so
    the calibrated estimate charges the ops' launches only (docs/speed.md's 1.5 us per module
    call is PyTorch's)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 8, 8))
    report = profile_onnx(conv_model(x))
    estimate = report.roofline("a100-sxm-80gb")
    # one Conv, one launch: 6 us (gpu-eager); no module call: 0 x 1.5 us
    assert len(report.ops) == 1 and estimate.total.overhead_time == pytest.approx(6e-6)
