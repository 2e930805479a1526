"""Probe-6 parity findings (probe6-parity.md): flopmeter's PyTorch and ONNX counts of the
same model, and the peers' numbers, each difference worked out by hand."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import flopmeter

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import profile_onnx  # noqa: E402


def _export(model: torch.nn.Module, x: torch.Tensor, path: Path, dynamo: bool) -> Path:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=dynamo)
    return path


def _grid_sample_graph(
    x_shape: list[int], grid_shape: list[int], opset: int, **attrs: object
) -> onnx.ModelProto:
    node = helper.make_node("GridSample", ["x", "grid"], ["out"], name="/sample/GridSample", **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape),
            helper.make_tensor_value_info("grid", TensorProto.FLOAT, grid_shape),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


# P6-A1: ONNX GridSample (RAFT's correlation lookup, 48 nodes) was listed as unsupported.
# Per output element the interpolation (bilinear 9, bicubic 35, trilinear 21, nearest 0),
# per grid coordinate 3 to un-normalise it (formulas/pooling.py, as aten.grid_sampler_2d).
GRID_CASES = {
    # x (1, 2, 4, 4), grid (1, 3, 5, 2): 2 channels x 15 points = 30 outputs, 30 coordinates
    "bilinear-16": ([1, 2, 4, 4], [1, 3, 5, 2], 16, {"mode": "bilinear"}, 30 * 9 + 30 * 3),  # 360
    "default-16": ([1, 2, 4, 4], [1, 3, 5, 2], 16, {}, 30 * 9 + 30 * 3),  # bilinear is the default: 360
    "nearest-16": ([1, 2, 4, 4], [1, 3, 5, 2], 16, {"mode": "nearest"}, 30 * 0 + 30 * 3),  # 90
    "bicubic-16": ([1, 2, 4, 4], [1, 3, 5, 2], 16, {"mode": "bicubic"}, 30 * 35 + 30 * 3),  # 1,140
    "linear-20": ([1, 2, 4, 4], [1, 3, 5, 2], 20, {"mode": "linear"}, 30 * 9 + 30 * 3),  # 360
    "cubic-20": ([1, 2, 4, 4], [1, 3, 5, 2], 20, {"mode": "cubic"}, 30 * 35 + 30 * 3),  # 1,140
    # 3-d: x (1, 2, 3, 4, 4), grid (1, 2, 2, 2, 3): 2 channels x 8 points = 16 outputs, 24 coordinates
    "linear-3d-20": ([1, 2, 3, 4, 4], [1, 2, 2, 2, 3], 20, {"mode": "linear"}, 16 * 21 + 24 * 3),  # 408
    # tricubic: 16 cubic interpolations along x, 4 along y, 1 along z, 7 FLOPs each: 147
    "cubic-3d-20": ([1, 2, 3, 4, 4], [1, 2, 2, 2, 3], 20, {"mode": "cubic"}, 16 * 147 + 24 * 3),  # 2,424
}


@pytest.mark.parametrize("case", list(GRID_CASES))
def test_onnx_grid_sample_counts_as_aten(case: str) -> None:
    x_shape, grid_shape, opset, attrs, flops = GRID_CASES[case]
    report = profile_onnx(_grid_sample_graph(x_shape, grid_shape, opset, **attrs))
    assert report.unsupported_ops() == {}
    assert report.flops == flops
    assert report.macs == 0


def test_onnx_grid_sample_equals_the_pytorch_count() -> None:
    """F.grid_sample(x (1, 2, 4, 4), grid (1, 3, 5, 2), align_corners=True) in PyTorch and
    the one GridSample node of its export: 30 * 9 + 30 * 3 = 360 FLOPs both."""

    class Sample(torch.nn.Module):
        def forward(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.grid_sample(x, grid, align_corners=True)

    x, grid = torch.randn(1, 2, 4, 4), torch.rand(1, 3, 5, 2) * 2 - 1
    assert flopmeter.profile(Sample(), (x, grid)).flops == 360
    graph = _grid_sample_graph([1, 2, 4, 4], [1, 3, 5, 2], 16, align_corners=1)
    assert profile_onnx(graph).flops == 360


# P6-A2: nn.InstanceNorm2d(affine=False) (RAFT's feature encoder): the exporters give the
# InstanceNormalization a scale of ones and a B of zeros, which PyTorch does not compute.
# InstanceNorm2d(4) on 1x4x8x8: 4 planes of D = 64, statistics 5D + 2 = 322 each: 1,288.
# Counted with the exporter's affine, 2 more per element: 1,288 + 2 * 256 = 1,800 (before).
class ConvInstanceNorm(torch.nn.Module):
    def __init__(self, affine: bool) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1, bias=False)
        self.norm = torch.nn.InstanceNorm2d(4, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_instance_norm_without_affine_counts_as_pytorch(tmp_path: Path, dynamo: bool) -> None:
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model, x = ConvInstanceNorm(affine=False), torch.randn(1, 3, 8, 8)
    conv = 4 * 64 * (2 * 3 - 1)  # 256 outputs, dot products of 3: 1,280
    torch_report = flopmeter.profile(model, x)
    assert torch_report.flops == conv + 4 * (5 * 64 + 2)  # 1,280 + 1,288 = 2,568
    report = profile_onnx(_export(model, x, tmp_path / "norm.onnx", dynamo))
    assert report.flops == torch_report.flops
    assert report.params == torch_report.params == 3 * 4  # the conv's weight only: 12


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_instance_norm_with_affine_keeps_its_scale_and_bias(tmp_path: Path, dynamo: bool) -> None:
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model, x = ConvInstanceNorm(affine=True), torch.randn(1, 3, 8, 8)
    with torch.no_grad():  # values the exporters cannot take for their own ones and zeros
        model.norm.weight.normal_()
        model.norm.bias.normal_()
    report = profile_onnx(_export(model, x, tmp_path / "norm.onnx", dynamo))
    # 1,280 conv + 1,288 statistics + 2 * 256 weight and bias = 3,080
    assert report.flops == flopmeter.profile(model, x).flops == 1_280 + 1_288 + 512
    assert report.params == 12 + 4 + 4  # conv weight, norm weight and bias: 20


def test_instance_norm_of_a_constant_scale_other_than_ones_keeps_it() -> None:
    """A hand-written graph whose Constant scale is not all ones: the affine is counted."""
    scale = helper.make_node(
        "Constant", [], ["s"], value=numpy_helper.from_array(np.full(4, 2.0, np.float32), "s")
    )
    bias = helper.make_node(
        "Constant", [], ["b"], value=numpy_helper.from_array(np.zeros(4, np.float32), "b")
    )
    norm = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["out"], name="/norm/In")
    graph = helper.make_graph(
        [scale, bias, norm],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert profile_onnx(model).flops == 1_288 + 512  # statistics + the scale and bias: 1,800
