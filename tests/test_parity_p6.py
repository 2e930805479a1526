"""Probe-6 parity findings (docs/probe-6/parity.md): flopmeter's PyTorch and ONNX counts of the
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


# P6-P1: ONNX GridSample (RAFT's correlation lookup, 48 nodes) was listed as unsupported.
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


# P6-P2: nn.InstanceNorm2d(affine=False) (RAFT's feature encoder): the exporters give the
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


# P6-P3: the ptflops view counted an RMSNorm, which ptflops has no rule for: nn.RMSNorm as a
# norm (2 per element with its weight), a written-out one (LlamaRMSNorm, T5LayerNorm) by
# its mean (1 per element) as if the mean were a global average pool.
class WrittenRMSNorm(torch.nn.Module):
    """transformers' LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))


@pytest.mark.parametrize("norm", ["nn.RMSNorm", "written"])
def test_ptflops_view_counts_no_rms_norm(norm: str) -> None:
    layer = torch.nn.RMSNorm(64) if norm == "nn.RMSNorm" else WrittenRMSNorm(64)
    model, x = torch.nn.Sequential(torch.nn.Linear(64, 64, bias=False), layer), torch.randn(1, 16, 64)
    report = flopmeter.profile(model, x)
    # ptflops: the Linear's 16 * 64 * 64 = 65,536 MACs; nothing for the norm (before:
    # + 1,024 = 66,560, its mean's 16 x 64 inputs; nn.RMSNorm runs as the same ops on the
    # CPU, and as _fused_rms_norm, 2 per element, elsewhere)
    assert report.flops_as("ptflops") == 16 * 64 * 64
    # exact FLOPs keep the norm: 16 rows * (3 * 64 + 2) + 1,024 weight multiplies = 4,128
    assert report.flops - 16 * 64 * (2 * 64 - 1) == 16 * (3 * 64 + 2) + 1_024


def test_ptflops_view_still_counts_a_global_average_pool() -> None:
    """nn.AdaptiveAvgPool2d(1) runs as mean(x, (-1, -2), keepdim=True): ptflops counts its
    1 x 8 x 4 x 4 = 128 input elements; AdaptiveAvgPool3d(1) on 1 x 2 x 2 x 4 x 4: 64."""
    pool2 = flopmeter.profile(torch.nn.AdaptiveAvgPool2d(1), torch.randn(1, 8, 4, 4))
    assert pool2.flops_as("ptflops") == 128
    assert pool2.flops == 128  # 8 means of 16: 15 adds + 1 divide each
    pool3 = flopmeter.profile(torch.nn.AdaptiveAvgPool3d(1), torch.randn(1, 2, 2, 4, 4))
    assert pool3.flops_as("ptflops") == 64


def test_ptflops_view_of_rms_norms_equals_installed_ptflops() -> None:
    ptflops = pytest.importorskip("ptflops")

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(64, 64, bias=False)
            self.fused, self.written = torch.nn.RMSNorm(64), WrittenRMSNorm(64)
            self.pool = torch.nn.AdaptiveAvgPool1d(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.written(self.fused(self.linear(x)))
            return self.pool(y.transpose(1, 2))

    model = Block()
    theirs, _ = ptflops.get_model_complexity_info(
        model, (16, 64), as_strings=False, print_per_layer_stat=False,
        backend_specific_config={"count_functional": False},
    )  # fmt: skip
    ours, _ = flopmeter.get_model_complexity_info(
        model, (16, 64), as_strings=False, print_per_layer_stat=False
    )
    # the Linear 65,536 + the 1-d pool's 64 x 16 = 1,024 input elements: 66,560
    assert theirs == ours == 65_536 + 1_024


# P6-D1..D5: how ptflops 0.7.5 and fvcore differ from our views, as docs/conventions.md says.
def _ptflops(model: torch.nn.Module, shape: tuple[int, ...], functional: bool) -> int:
    ptflops = pytest.importorskip("ptflops")
    with contextlib.redirect_stdout(io.StringIO()):
        macs, _ = ptflops.get_model_complexity_info(
            model, shape, as_strings=False, print_per_layer_stat=False,
            backend_specific_config={"count_functional": functional},
        )  # fmt: skip
    return int(macs)


def _ours(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    macs, _ = flopmeter.get_model_complexity_info(model, shape, as_strings=False, print_per_layer_stat=False)
    return int(macs)


class SubclassedConv(torch.nn.Conv2d):
    """As torchvision's Conv3DSimple, LayerNorm2d or timm's BatchNormAct2d: a subclass."""


def test_ptflops_has_no_rule_for_a_subclass_of_a_layer() -> None:
    model = torch.nn.Sequential(SubclassedConv(3, 4, 3))
    # 4 x 6 x 6 outputs x 27 MACs = 3,888 + 144 bias adds = 4,032; ptflops looks its rules
    # up by exact class and counts 0 (r3d_18: 0.78 GMac for 20.38 GMac of Conv3DSimple)
    assert _ours(model, (3, 8, 8)) == 4 * 36 * 27 + 144
    assert _ptflops(model, (3, 8, 8), functional=True) == _ptflops(model, (3, 8, 8), functional=False) == 0


def test_ptflops_counts_silu_only_through_its_patched_functional() -> None:
    model = torch.nn.Sequential(torch.nn.SiLU())
    # 1 x 8 x 4 x 4 = 128 elements: ptflops has no nn.SiLU rule, only F.silu's (the default)
    assert _ours(model, (8, 4, 4)) == _ptflops(model, (8, 4, 4), functional=True) == 128
    assert _ptflops(model, (8, 4, 4), functional=False) == 0


def test_ptflops_default_counts_gelu_layers_twice() -> None:
    model = torch.nn.Sequential(torch.nn.GELU())
    # 128 elements: its nn.GELU hook and its patched F.gelu, which the layer calls
    assert _ours(model, (128,)) == _ptflops(model, (128,), functional=False) == 128
    assert _ptflops(model, (128,), functional=True) == 2 * 128


class FunctionalLinear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(4, 8))
        self.bias = torch.nn.Parameter(torch.randn(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.weight, self.bias)


def test_ptflops_counts_no_functional_linear_and_linear_biases_per_row() -> None:
    # 16 rows of 8 -> 4: 512 MACs + 64 bias adds = 576. ptflops 0.7.5 does not patch
    # F.linear (the line is commented out): 0 (Swin's qkv and proj); its nn.Linear rule
    # adds the biases per row, as we do: 576
    assert _ours(FunctionalLinear(), (16, 8)) == 576
    assert _ptflops(FunctionalLinear(), (16, 8), functional=True) == 0
    assert _ptflops(torch.nn.Linear(8, 4), (16, 8), functional=True) == 576


def test_fvcore_counts_no_attention() -> None:
    fvcore = pytest.importorskip("fvcore.nn")

    class Attend(torch.nn.Module):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.scaled_dot_product_attention(q, q, q)

    def fvcore_count(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), torch.no_grad():
            warnings.simplefilter("ignore")
            analysis = fvcore.FlopCountAnalysis(model, (x,)).unsupported_ops_warnings(False)
            return int(analysis.total()), dict(analysis.unsupported_ops())

    q = torch.randn(1, 2, 8, 4)
    assert fvcore_count(Attend(), q) == (0, {"aten::scaled_dot_product_attention": 1})
    # 2 heads x 8 x 8 scores x (4 + 4): 1,024 MACs in our `mac` view
    assert flopmeter.profile(Attend(), q).flops_as("mac") == 2 * 8 * 8 * 8

    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(1, 4, 8)

    class SelfAttend(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mha(x, x, x, need_weights=False)[0]

    total, unsupported = fvcore_count(SelfAttend(), x)
    assert (total, unsupported.get("aten::_native_multi_head_attention")) == (0, 1)
    # q, k, v projections 4 x 8 x 24 = 768, scores and values 2 heads x 4 x 4 x (4 + 4) =
    # 256, output projection 4 x 8 x 8 = 256: 1,280
    assert flopmeter.profile(SelfAttend(), x).flops_as("mac") == 768 + 256 + 256


# P6-D6: what the exporters compute at export time is absent from the ONNX count
# (docs/onnx.md, "Differences from the PyTorch count").
class FoldedAtExport(torch.nn.Module):
    """RAFT's first flow update (a conv of an all-zero flow) and a relative position
    bias (a learned table gathered by a constant index), beside a real conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 2, 3, padding=1)
        self.flow = torch.nn.Conv2d(2, 2, 3, padding=1)
        self.table = torch.nn.Parameter(torch.randn(7, 2))
        self.register_buffer("index", torch.tensor([[0, 1, 2, 3], [3, 4, 5, 6]]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zero_flow = torch.zeros(x.shape[0], 2, x.shape[2], x.shape[3])
        bias = self.table[self.index].permute(2, 0, 1)
        return self.conv(x) + self.flow(zero_flow) + bias.sum(0)


def test_dynamo_folds_a_conv_of_constants_and_a_gathered_table(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model, x = FoldedAtExport(), torch.randn(1, 2, 2, 4)
    torch_report = flopmeter.profile(model, x)
    # each conv: 2 x 2 x 4 = 16 outputs x 18 MACs = 288 MACs, 16 x 36 = 576 FLOPs (bias);
    # two adds of 16; the gathered (2, 2, 4) table summed over its first dim: 8 adds
    assert (torch_report.macs, torch_report.flops) == (2 * 288, 2 * 576 + 32 + 8)
    assert torch_report.params == 2 * (2 * 2 * 9 + 2) + 7 * 2  # 90
    dynamo = profile_onnx(_export(model, x, tmp_path / "dynamo.onnx", dynamo=True))
    # the zero flow's conv and the table's gather and sum are constants in the graph
    assert (dynamo.macs, dynamo.flops, dynamo.params) == (288, 576 + 32, 38)
    legacy = profile_onnx(_export(model, x, tmp_path / "legacy.onnx", dynamo=False))
    assert (legacy.macs, legacy.flops, legacy.params) == (576, 1_192, 90)  # shapes read at run time


class ShapeOnlyMask(torch.nn.Module):
    """Swin's shifted-window mask, made from shapes only: 0 where d == 0, -100 elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = torch.arange(x.shape[-1], dtype=x.dtype)
        d = m[None, :] - m[:, None]
        return x + d.masked_fill(d != 0, -100.0).masked_fill(d == 0, 0.0)


@pytest.mark.parametrize("size", [64, 512])
def test_exporters_compute_shape_only_masks_at_export(tmp_path: Path, size: int) -> None:
    pytest.importorskip("onnxscript")
    model = torch.nn.Sequential(ShapeOnlyMask(), ShapeOnlyMask())
    x, n = torch.randn(1, size, size), size * size
    # PyTorch, per block: sub, ne, masked_fill, eq, masked_fill, add: 6 per element
    assert flopmeter.profile(model, x).flops == 2 * 6 * n
    legacy = profile_onnx(_export(model, x, tmp_path / "legacy.onnx", dynamo=False))
    assert legacy.flops == 2 * n  # the masks are constants: the adds only
    dynamo = profile_onnx(_export(model, x, tmp_path / "dynamo.onnx", dynamo=True))
    if size == 64:  # 4,096 elements: folded
        assert dynamo.flops == 2 * n
    else:  # 262,144: d folded; Equal once (d != 0 is Not(d == 0)), 2 Where, the add
        assert dynamo.flops == 2 * 4 * n


class ScaledByShape(torch.nn.Module):
    """RAFT's `coords / 2**level` at level 0 and Swin's `q * head_dim ** -0.5`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / 2**0 * (x.shape[-1] // 2) ** -0.5


def test_exporters_drop_an_identity_divide_or_compute_a_scale_at_run_time(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    model, x = ScaledByShape(), torch.randn(1, 4, 8)
    assert flopmeter.profile(model, x).flops == 32 + 32  # the divide and the multiply
    dynamo = profile_onnx(_export(model, x, tmp_path / "dynamo.onnx", dynamo=True))
    assert dynamo.flops == 32  # x / 1 dropped
    legacy = profile_onnx(_export(model, x, tmp_path / "legacy.onnx", dynamo=False))
    assert legacy.flops == 32 + 32 + 1  # + a Pow of one scalar: (8 // 2) ** -0.5


class MeanPooled(torch.nn.Module):
    """torchvision ShuffleNetV2's and MNASNet's global pool: x.mean([2, 3])."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean([2, 3])


def test_ptflops_view_of_a_tensor_mean_pool_equals_installed_ptflops() -> None:
    # the conv's 4 x 8 x 8 outputs x 3 = 768 MACs; ptflops sees no pooling layer nor F call:
    # 0 for the mean (before: + its 256 inputs, 1,024; shufflenet_v2_x1_0 50,176 over
    # ptflops' 150,598,480, mnasnet0_5 62,720 over 113,276,968)
    assert _ours(MeanPooled(), (3, 8, 8)) == _ptflops(MeanPooled(), (3, 8, 8), functional=True) == 768


# P6-P4: a legacy export names a node of a module inside a container below the top level
# /stages/stages.0/blocks/blocks.0/attn/MatMul (timm LeViT): "blocks.0" is qualified from
# its grandparent, like "layer1.0" from the root. It was read as stages.0.blocks.blocks.0.
class Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


class Stage(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.Sequential(Block(), Block())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def test_legacy_export_module_paths_below_a_nested_container(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, x = torch.nn.Sequential(Stage(), Stage()), torch.randn(1, 8)
    report = profile_onnx(_export(model, x, tmp_path / "nested.onnx", dynamo=False))
    torch_report = flopmeter.profile(model, x)
    for name in ("0.blocks.0.fc", "0.blocks.1.fc", "1.blocks.0.fc", "1.blocks.1.fc"):
        # each Linear(8, 8) with bias on one row: 64 MACs, 8 * 16 = 128 FLOPs
        assert report.modules[name].total.macs == torch_report.modules[name].total.macs == 64
        assert report.modules[name].total.flops == 128
    assert not [name for name in report.modules if "blocks.blocks" in name]
    assert report.modules["0.blocks"].total.macs == 2 * 64
    assert report.modules["0.blocks.0"].total.flops == 128 + 8  # and its ReLU's 8


def test_ptflops_timm_attention_rule_drops_its_projections() -> None:
    """ptflops sums a module it has a rule for without its children, and its rule for timm's
    Attention counts Q scaling, QK^T, softmax and AV but not the qkv and proj Linears
    (its comment says they are counted elsewhere): mobilevit_xxs, 67,772,416 MACs."""
    pytest.importorskip("ptflops")
    timm_vit = pytest.importorskip("timm.models.vision_transformer")
    torch.manual_seed(0)
    attention = timm_vit.Attention(8, num_heads=2).eval()
    # per head of 4: Q scaling 4 x 4 = 16, QK^T 4 x 4 x 4 = 64, softmax 16, AV 64: 160 x 2 heads
    assert _ptflops(attention, (4, 8), functional=False) == 2 * (16 + 64 + 16 + 64)  # 320
    # ours: qkv 4 x 8 x 24 = 768 (no bias), SDPA 2 x 4 x 4 x (4 + 4) = 256, proj 256 + 32 biases
    assert _ours(attention, (4, 8)) == 768 + 256 + 256 + 32  # 1,312


def test_flop_counter_counts_a_grouped_conv_weight_gradient_as_dense() -> None:
    """P6-D8: FlopCounterMode's convolution_backward ignores groups for grad_weight.
    Depthwise Conv2d(8, 8, 3, groups=8) on 2 x 8 x 10 x 10 (8 x 8 outputs): forward
    2 * 8 * 64 * 9 = 9,216 MACs; grad_input the same 9,216; grad_weight 72 weights, each a
    dot product over 2 * 64 = 128 terms: 9,216. FCM: 9,216 + 8 x 9,216 (dense) = 82,944."""
    from torch.utils.flop_counter import FlopCounterMode

    conv, x = torch.nn.Conv2d(8, 8, 3, groups=8, bias=False), torch.randn(2, 8, 10, 10, requires_grad=True)
    report = flopmeter.profile(conv, x, backward=True)
    assert (report.forward.macs, report.backward_cost.macs) == (9_216, 9_216 + 9_216)
    counter = FlopCounterMode(display=False)
    with counter:
        conv(x).sum().backward()
    counts = {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items()}
    assert counts == {"aten.convolution": 2 * 9_216, "aten.convolution_backward": 2 * (9_216 + 8 * 9_216)}


class Affine(torch.nn.Module):
    """timm ResMLP's Affine: beta + alpha * x as torch.addcmul."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha, self.beta = torch.nn.Parameter(torch.randn(8)), torch.nn.Parameter(torch.randn(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta, self.alpha, x)


def test_legacy_export_writes_addcmuls_unit_value_as_a_multiply(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    model, x = Affine(), torch.randn(1, 4, 8)
    assert flopmeter.profile(model, x).flops == 2 * 32  # a multiply and an add per element
    assert profile_onnx(_export(model, x, tmp_path / "dynamo.onnx", dynamo=True)).flops == 2 * 32
    # legacy: value * (alpha * x) with value = 1 as one more Mul: 3 per element
    assert profile_onnx(_export(model, x, tmp_path / "legacy.onnx", dynamo=False)).flops == 3 * 32


class TokenMixing(torch.nn.Module):
    """timm ResMLP's token mixing: a Linear over the tokens of x.transpose(1, 2), an input
    that is not contiguous, which torch's F.linear runs as matmul + add_(bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x.transpose(1, 2))


def test_ptflops_view_counts_the_bias_of_a_linear_on_a_transposed_input() -> None:
    """P6-P5: 8 rows of 16 -> 4: 512 MACs + 32 bias adds = 544 in ptflops' nn.Linear rule;
    our view counted the matmul only (512): the bias came as an elementwise add.
    Exact FLOPs: 8 x 4 x (2 x 16 - 1) = 992 for the matmul + 32 adds = 1,024 either way."""
    model = TokenMixing()
    report = flopmeter.profile(model, torch.randn(1, 16, 8))
    assert report.flops == 8 * 4 * 2 * 16  # 1,024
    assert report.flops_as("ptflops") == 512 + 32
    assert _ours(model, (16, 8)) == _ptflops(model, (16, 8), functional=False) == 544


def test_ptflops_view_ignores_other_in_place_adds_of_a_vector() -> None:
    """Only a parameter as long as the last dim counts: y.add_(x[0, 0]), an activation
    row, and y + a 2-d parameter stay 0."""

    class AddRow(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = torch.nn.Parameter(torch.randn(4, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x * 2
            return y.add_(x[0, 0]) + self.table

    assert flopmeter.profile(AddRow(), torch.randn(1, 4, 8)).flops_as("ptflops") == 0


def test_ptflops_view_counts_hardtanh_as_relu6() -> None:
    """nn.Hardtanh and nn.ReLU6 run the same aten.hardtanh: our view counts 128 elements
    for both, as ptflops' nn.ReLU6 rule; ptflops has no nn.Hardtanh rule (0)."""
    relu6, hardtanh = torch.nn.Sequential(torch.nn.ReLU6()), torch.nn.Sequential(torch.nn.Hardtanh())
    assert _ours(relu6, (128,)) == _ptflops(relu6, (128,), functional=False) == 128
    assert _ours(hardtanh, (128,)) == 128
    assert _ptflops(hardtanh, (128,), functional=False) == 0
