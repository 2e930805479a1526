"""Resize / Upsample whose output size comes from a ``scales`` value (nn.Upsample,
F.interpolate with scale_factor): the scales are a float constant, or float math on
shapes, which onnx's per-node shape inference can use only once computed
(flopmeter/onnx/evaluate.py). Counts equal PyTorch's for the same module.

Hand counts: Conv2d(4, 4, 1) with bias on 1x4xHxW is 2*4 FLOPs per output element
((2*4 - 1) products and sums + 1 bias add); interpolation per output element:
nearest 0, bilinear 9, bicubic 35 (formulas/pooling.py).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
import torch  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import flopmeter  # noqa: E402
from flopmeter.onnx import OnnxModelError, profile_onnx  # noqa: E402


class ConvInterpolate(torch.nn.Module):
    """Conv2d(4, 4, 1) then F.interpolate(**options)."""

    def __init__(self, **options: object) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 1)
        self.options = options

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(self.conv(x), **self.options)  # type: ignore[arg-type]


def _export(model: torch.nn.Module, x: torch.Tensor, path: Path, dynamo: bool) -> Path:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=dynamo)
    return path


CASES = {
    # name: (interpolate options, input H x W, expected FLOPs with the arithmetic)
    "nearest-x2": (dict(scale_factor=2, mode="nearest"), (6, 6), 2 * 4 * 4 * 36 + 0),  # 1,152
    "bilinear-x2": (
        dict(scale_factor=2, mode="bilinear"),
        (6, 6),
        2 * 4 * 4 * 36 + 9 * 4 * 12 * 12,  # 1,152 + 5,184 = 6,336
    ),
    "bilinear-x2-align-corners": (
        dict(scale_factor=2, mode="bilinear", align_corners=True),
        (6, 6),
        2 * 4 * 4 * 36 + 9 * 4 * 12 * 12,  # 1,152 + 5,184 = 6,336
    ),
    "bicubic-x2": (
        dict(scale_factor=2, mode="bicubic"),
        (6, 6),
        2 * 4 * 4 * 36 + 35 * 4 * 12 * 12,  # 1,152 + 20,160 = 21,312
    ),
    "bicubic-x2-align-corners": (
        dict(scale_factor=2, mode="bicubic", align_corners=True),
        (6, 6),
        2 * 4 * 4 * 36 + 35 * 4 * 12 * 12,  # 1,152 + 20,160 = 21,312
    ),
    # 7x5 scaled by 1.5: floor(10.5) x floor(7.5) = 10 x 7 outputs per plane
    "bilinear-x1.5": (
        dict(scale_factor=1.5, mode="bilinear"),
        (7, 5),
        2 * 4 * 4 * 35 + 9 * 4 * 10 * 7,  # 1,120 + 2,520 = 3,640
    ),
    "nearest-x1.5": (dict(scale_factor=1.5, mode="nearest"), (7, 5), 2 * 4 * 4 * 35 + 0),  # 1,120
}


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("case", list(CASES))
def test_resize_from_scales_counts_as_pytorch(tmp_path: Path, case: str, dynamo: bool) -> None:
    options, (height, width), flops = CASES[case]
    torch.manual_seed(0)
    model, x = ConvInterpolate(**options), torch.randn(1, 4, height, width)
    report = profile_onnx(_export(model, x, tmp_path / "resize.onnx", dynamo))
    assert report.flops == flops
    assert report.flops == flopmeter.profile(model, x).flops
    assert report.macs == 4 * 4 * height * width  # the Conv's: 576 or 560
    resize = report.operators["onnx.Resize"]
    assert resize.calls == 1
    # its output is floor(in * scale) per dim, 4 planes: 4*12*12 = 576 (x2); 4*10*7 = 280 (x1.5)
    # elements (ptflops' convention: one MAC per output element)
    assert resize.cost.ptflops_macs == (4 * 12 * 12 if height == 6 else 4 * 10 * 7)


def test_a_dim_scaled_by_one_is_still_interpolated_as_pytorch(tmp_path: Path) -> None:
    # bilinear over 6x6 -> 12x6: PyTorch runs upsample_bilinear2d, 9 per output, although
    # the width keeps its size (it used to be counted as 1-d linear, 3 per output)
    torch.manual_seed(0)
    model, x = ConvInterpolate(scale_factor=(2, 1), mode="bilinear"), torch.randn(1, 4, 6, 6)
    report = profile_onnx(_export(model, x, tmp_path / "resize.onnx", dynamo=False))
    assert report.flops == 2 * 4 * 4 * 36 + 9 * 4 * 12 * 6  # 1,152 + 2,592 = 3,744
    assert report.flops == flopmeter.profile(model, x).flops


def test_float32_scales_round_as_onnx_shape_inference_does(tmp_path: Path) -> None:
    """A documented difference: 10 x 1.3 is 13 outputs in PyTorch (double arithmetic),
    while onnx's shape inference of the exported float32 scale (1.29999995) gives
    floor(12.9999995) = 12 (docs/onnx.md)."""
    torch.manual_seed(0)
    model, x = ConvInterpolate(scale_factor=1.3, mode="bilinear"), torch.randn(1, 4, 10, 10)
    report = profile_onnx(_export(model, x, tmp_path / "resize.onnx", dynamo=False))
    assert report.operators["onnx.Resize"].cost.flops == 9 * 4 * 12 * 12  # 5,184
    assert flopmeter.profile(model, x).flops == 2 * 4 * 4 * 100 + 9 * 4 * 13 * 13  # 3,200 + 6,084 = 9,284


# ------------------------------------------------------------- hand-built graphs (no export)
def _model(nodes: list, inputs: list, output: str, initializers: tuple = (), opset: int = 20):  # type: ignore[no-untyped-def,type-arg]
    graph = helper.make_graph(
        nodes,
        "resize",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_scales_computed_from_shapes_are_evaluated() -> None:
    # scales = float(shape(y)) / float(shape(x)) = (1, 1, 12/6, 12/6) = (1, 1, 2, 2)
    nodes = [
        helper.make_node("Shape", ["x"], ["sx"]),
        helper.make_node("Shape", ["y"], ["sy"]),
        helper.make_node("Cast", ["sx"], ["fx"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["sy"], ["fy"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["fy", "fx"], ["scales"]),
        helper.make_node("Resize", ["x", "", "scales"], ["out"], mode="linear", name="resize"),
    ]
    report = profile_onnx(_model(nodes, [("x", [1, 4, 6, 6]), ("y", [1, 4, 12, 12])], "out"))
    assert report.operators["onnx.Resize"].cost.flops == 9 * 4 * 12 * 12  # 5,184
    assert report.flops == 9 * 4 * 12 * 12 + 4  # + the Div of two 4-element shapes: 5,188
    assert not report.unsupported


def test_sizes_computed_with_float_math_are_evaluated() -> None:
    # sizes = int64(floor(float(shape(x)) * (1, 1, 1.5, 1.5))) for x (1, 4, 7, 5):
    # (1, 4, floor(10.5), floor(7.5)) = (1, 4, 10, 7)
    factor = numpy_helper.from_array(np.array([1, 1, 1.5, 1.5], np.float32), "factor")
    nodes = [
        helper.make_node("Shape", ["x"], ["sx"]),
        helper.make_node("Cast", ["sx"], ["fx"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["fx", "factor"], ["scaled"]),
        helper.make_node("Floor", ["scaled"], ["floored"]),
        helper.make_node("Cast", ["floored"], ["sizes"], to=TensorProto.INT64),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["out"], mode="cubic", name="resize"),
    ]
    report = profile_onnx(_model(nodes, [("x", [1, 4, 7, 5])], "out", [factor]))
    assert report.operators["onnx.Resize"].cost.flops == 35 * 4 * 10 * 7  # 9,800
    assert report.flops == 35 * 4 * 10 * 7 + 4 + 4  # + Mul and Floor of 4 elements: 9,808


def test_upsample_of_opset_9_reads_its_constant_scales() -> None:
    scales = numpy_helper.from_array(np.array([1, 1, 2, 3], np.float32), "scales")
    nodes = [
        helper.make_node("Constant", [], ["s"], value=scales),
        helper.make_node("Upsample", ["x", "s"], ["out"], mode="linear", name="up"),
    ]
    report = profile_onnx(_model(nodes, [("x", [1, 2, 3, 4])], "out", opset=9))
    assert report.flops == 9 * 2 * 6 * 12  # bilinear to 6x12: 1,296


def test_scales_known_only_at_run_time_name_the_node_output_and_why() -> None:
    # every input shape is given; the scales are a graph input: a run-time value
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["out"], mode="linear", name="resize")]
    model = _model(nodes, [("x", [1, 4, 6, 6]), ("scales", [4])], "out")
    with pytest.raises(OnnxModelError) as error:
        profile_onnx(model)
    message = str(error.value)
    assert "the shape of 'out', an output of node 'resize' (Resize), could not be inferred" in message
    assert "depends on the value of its input 'scales', and it is a graph input" in message
    assert "give every input's shape" not in message  # they were all given


def test_an_unknown_shape_read_later_names_the_node_that_made_it() -> None:
    # Reshape (a view, free) to a run-time shape, then Relu needs the shape it made
    nodes = [
        helper.make_node("Mul", ["target", "two"], ["doubled"]),
        helper.make_node("Reshape", ["x", "doubled"], ["r"], name="reshape"),
        helper.make_node("Relu", ["r"], ["out"], name="relu"),
    ]
    two = numpy_helper.from_array(np.array(2, np.int64), "two")
    graph = helper.make_graph(
        nodes,
        "reshape",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8]),
            helper.make_tensor_value_info("target", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [two],
    )
    with pytest.raises(OnnxModelError) as error:
        profile_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]))
    message = str(error.value)
    assert "the shape of 'r', read by node 'relu' (Relu), could not be inferred" in message
    assert (
        "the output shape of node 'reshape' (Reshape) depends on the value of its input 'doubled'" in message
    )
    assert "computed at run time from the graph input 'target'" in message
