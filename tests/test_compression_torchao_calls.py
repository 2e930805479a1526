"""Probe 10 (P9-7): torchao's quantization primitives (``quantize_affine``,
``dequantize_affine``, ``choose_qparams_affine``, fake quantize) are counted as one call
each, in the overhead bucket, at the project's per-element costs (quantize and fake
quantize 4, dequantize 2, the range 2), whether a model's forward calls them or a
torchao tensor subclass does; and torchao's int8 Linears, by hand.

One Linear(16, 8) with bias on a 3x16 input throughout: 3 * 16 = 48 input elements,
3 * 8 = 24 outputs, 16 * 8 = 128 weights; float FLOPs (2*16 - 1) * 24 + 24 (bias) = 768,
MACs 16 * 24 = 384."""

from __future__ import annotations

import copy
import sys

import pytest
import torch

import flopmeter
from flopmeter.compression import LayerCompression

quantization = pytest.importorskip("torchao.quantization")
primitives = pytest.importorskip("torchao.quantization.quant_primitives")

X = (3, 16)
FLOAT_FLOPS = 768  # (2*16 - 1) * 24 + 24


class _RoundTrip(torch.nn.Module):
    """A forward that quantizes its input per row, as a user's own emulation would."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block = (1, 16)
        scale, zero = primitives.choose_qparams_affine(
            x, primitives.MappingType.ASYMMETRIC, block, torch.int8
        )
        q = primitives.quantize_affine(x, block, scale, zero, torch.int8)
        return self.fc(primitives.dequantize_affine(q, block, scale, zero, torch.int8))


@pytest.mark.parametrize("shapes_only", [True, False])
def test_primitives_called_in_a_forward_are_overhead(shapes_only: bool) -> None:
    """Before: their decompositions (amin, amax, reciprocal, mul, round, add, clamp, sub,
    _to_copy) were model FLOPs: 1,230 in all instead of 768."""
    report = flopmeter.profile(_RoundTrip(), torch.randn(*X), shapes_only=shapes_only)
    assert report.flops == FLOAT_FLOPS and report.macs == 384
    assert {op: (s.calls, s.cost.flops) for op, s in report.overhead.items()} == {
        "torchao.choose_qparams_affine": (1, 2 * 48),  # min and max of each element: 96
        "torchao.quantize_affine": (1, 4 * 48),  # scale, zero point, round, clamp: 192
        "torchao.dequantize_affine": (1, 2 * 48),  # (q - zero point) * scale: 96
    }
    assert report.overhead["torchao.quantize_affine"].cost.bytes_written == 48  # int8 out
    # int8 in 48 + its per-row scales 3 float32 12 + zero points 3 int32 12 = 72 (the scale and
    # zero point read too since probe 13: a call's further tensor arguments are its inputs)
    assert report.overhead["torchao.dequantize_affine"].cost.bytes_read == 48 + 3 * 4 + 3 * 4 == 72
    assert not report.unsupported


def _quantized(config: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8))
    quantization.quantize_(model, config)
    return model


def _expect_int8_weight(layer: LayerCompression) -> None:
    assert layer.representation == "torchao Int8Tensor"
    assert (layer.weight_bits, layer.n_scales) == (8, 8)  # one scale per output row
    # 128 int8 values + 8 float32 scales (32) + 8 int8 zero points (8) = 168; bias 8 * 4 = 32
    assert (layer.weight_bytes_actual, layer.bytes_actual) == (168, 200)
    assert layer.bits_per_weight == 168 * 8 / 128  # 10.5
    assert layer.macs_dense == 384


def test_int8_weight_only_linear_by_hand() -> None:
    """W8A32: a float mm on the widened weight, then the output's scale multiply."""
    report = flopmeter.profile(_quantized(quantization.Int8WeightOnlyConfig()), torch.randn(*X))
    layer = report.compression.layers["0"]
    _expect_int8_weight(layer)
    assert layer.act_bits == 32
    assert layer.bops == 384 * 8 * 32  # 98,304
    assert report.flops == FLOAT_FLOPS  # mm (2*16 - 1) * 24 = 744 + bias add 24
    # the int8 -> float32 copy of the weight (0 FLOPs), the output * scale: 24
    assert {op: s.cost.flops for op, s in report.overhead.items()} == {"aten._to_copy": 0, "aten.mul": 24}


def test_int8_dynamic_activation_linear_by_hand() -> None:
    """W8A8: the input's range and rounding are torchao calls, counted whole (before:
    their decomposition, 402 FLOPs of overhead instead of 336)."""
    report = flopmeter.profile(
        _quantized(quantization.Int8DynamicActivationInt8WeightConfig()), torch.randn(*X)
    )
    layer = report.compression.layers["0"]
    _expect_int8_weight(layer)
    assert layer.act_bits == 8
    assert layer.bops == 384 * 8 * 8  # 24,576
    assert report.macs == 384 and report.operators["aten._int_mm"].cost.flops == 0
    assert report.flops == 24  # only the float bias add
    overhead = {op: s.cost.flops for op, s in report.overhead.items()}
    assert overhead["torchao.choose_qparams_affine"] == 2 * 48  # 96
    assert overhead["torchao.quantize_affine"] == 4 * 48  # 192
    assert overhead["aten.mul"] == 24 + 24  # the int32 result * row scales, * weight scales
    # the rest is integer (the uint8 shift and its row-sum correction): 0 FLOPs
    assert sum(overhead.values()) == 96 + 192 + 48  # 336


def test_torchao_qat_fake_quantizers_are_overhead() -> None:
    """torchao's QAT (``QATConfig``): int8 per-token activations, int4 weights in groups of
    8, fake quantized by torchao calls in its own fake quantizer modules. Before: 2,478
    model FLOPs (1,710 of them the fake quantizers'), and 32-bit weights and inputs."""
    qat = pytest.importorskip("torchao.quantization.qat")
    granularity = pytest.importorskip("torchao.quantization.granularity")
    base = quantization.Int8DynamicActivationIntxWeightConfig(
        weight_dtype=torch.int4, weight_granularity=granularity.PerGroup(8)
    )
    model = _quantized(qat.QATConfig(base, step="prepare"))
    for shapes_only in (False, True):  # with values the function recorder runs too (its frames)
        report = flopmeter.profile(model, torch.randn(*X), shapes_only=shapes_only)
        assert report.flops == FLOAT_FLOPS
        overhead = {op: (s.calls, s.cost.flops) for op, s in report.overhead.items()}
        assert overhead["torchao.choose_qparams_affine"] == (2, 2 * 48 + 2 * 128)  # input, weight: 352
        assert overhead["torchao.fake_quantize_affine"] == (2, 4 * 48 + 4 * 128)  # 704
    # the layer stands for its int4 weight and int8 input, as a torch.ao QAT layer (was 32/32)
    layer = report.compression.layers["0"]
    assert (layer.representation, layer.weight_bits, layer.act_bits) == ("qat int4 per_group", 4, 8)
    assert (layer.group_size, layer.n_scales) == (8, 16)  # 128 weights / 8
    assert layer.bops == 384 * 4 * 8  # 12,288
    # 128 * 4 bits = 64 bytes + 16 x (float32 scale + int32 zero point) = 128: 192; stored: float 512
    assert (layer.weight_bytes_ideal, layer.weight_bytes_actual) == (192, 512)


def test_a_float_model_is_unchanged_with_torchao_imported() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU())
    report = flopmeter.profile(copy.deepcopy(model), torch.randn(*X))
    assert report.flops == FLOAT_FLOPS + 24  # + ReLU, 1 per output
    assert not report.overhead


def test_int8_dynamic_linear_profiles_under_inference_mode() -> None:
    """Before: a raw ``RuntimeError: Cannot set version_counter for inference tensor`` from
    the model-state guard's detach of torchao's weight. Now the same numbers as without."""
    model = _quantized(quantization.Int8DynamicActivationInt8WeightConfig())
    with torch.inference_mode():
        report = flopmeter.profile(model, torch.randn(*X))
    assert (report.flops, report.macs) == (24, 384)  # the bias add; the int8 matmul
    assert sum(s.cost.flops for s in report.overhead.values()) == 336  # 96 + 192 + 48, as above
    assert not model[0].weight.is_inference()  # the model is left as it was
    assert model(torch.randn(*X)).shape == (3, 8)


def test_int8_dynamic_activation_int4_weight_linear_overhead_by_hand() -> None:
    """W4A8 without torchao's CPU kernels: the input rounded to int8 and back, the int4
    weight (int8 storage, groups of 8) dequantized, then a float addmm. Before: 718 FLOPs of
    decomposed ops in the bucket."""
    granularity = pytest.importorskip("torchao.quantization.granularity")
    config = quantization.Int8DynamicActivationIntxWeightConfig(
        weight_dtype=torch.int4, weight_granularity=granularity.PerGroup(8)
    )
    report = flopmeter.profile(_quantized(config), torch.randn(*X))
    assert report.flops == FLOAT_FLOPS
    assert {op: (s.calls, s.cost.flops) for op, s in report.overhead.items()} == {
        "torchao.choose_qparams_affine": (1, 2 * 48),  # the input's range: 96
        "torchao.quantize_affine": (1, 4 * 48),  # 192
        "torchao.dequantize_affine": (2, 2 * 48 + 2 * 128),  # the input back, the weight: 352
    }
    layer = report.compression.layers["0"]
    assert (layer.weight_bits, layer.act_bits, layer.n_scales, layer.group_size) == (4, 8, 16, 8)
    # stored: 128 int8 + 16 float32 scales (64) + 16 int8 zero points (16) = 208; ideal 64 + 80 = 144
    assert (layer.weight_bytes_actual, layer.weight_bytes_ideal) == (208, 144)


def test_torchao_qat_int8_per_channel_weight_only_layer_by_hand() -> None:
    """``IntxFakeQuantizeConfig(torch.int8, "per_channel")`` on the weight, no activation
    quantizer: W8A32, one scale per output row."""
    qat = pytest.importorskip("torchao.quantization.qat")
    config = qat.QATConfig(
        weight_config=qat.IntxFakeQuantizeConfig(torch.int8, "per_channel"), step="prepare"
    )
    report = flopmeter.profile(_quantized(config), torch.randn(*X))
    assert report.flops == FLOAT_FLOPS
    layer = report.compression.layers["0"]
    assert (layer.representation, layer.weight_bits, layer.act_bits) == ("qat int8 per_channel", 8, 32)
    assert (layer.n_scales, layer.group_size) == (8, None)
    assert layer.weight_bytes_ideal == 128 + 8 * (4 + 4)  # int8 values + float32 scale, int32 zero point: 192
    assert layer.bops == 384 * 8 * 32  # 98,304
    overhead = {op: s.cost.flops for op, s in report.overhead.items()}
    assert (overhead["torchao.choose_qparams_affine"], overhead["torchao.fake_quantize_affine"]) == (256, 512)


def test_no_frame_check_without_torchao_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder looks at frames only in a process that imported torchao's primitives."""
    from flopmeter.tracing.library_calls import LibraryCalls

    assert LibraryCalls.watching() is not None
    monkeypatch.delitem(sys.modules, "torchao.quantization.quant_primitives")
    assert LibraryCalls.watching() is None


def test_a_primitive_called_without_a_tensor_first_has_its_ops_counted() -> None:
    """Never a silent zero: a function of the primitives' module whose first argument is
    no tensor cannot be counted whole; its ops are counted one by one."""
    namespace = {"__name__": primitives.__name__, "torch": torch}
    exec("def quantize_affine(sizes, x):\n    return torch.relu(x)\n", namespace)  # noqa: S102
    relu_in_primitives = namespace["quantize_affine"]

    class Model(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return relu_in_primitives([3, 16], x)

    report = flopmeter.profile(Model(), torch.randn(*X))
    assert report.flops == 48  # the ReLU, 1 per element: 3 * 16
    assert not report.overhead


def test_a_float8_qat_layer_stays_as_stored() -> None:
    """docs/compression.md: a float8 QAT config's layer is not an integer layer; its fake
    quantizer's primitives are overhead all the same (the 8x16 weight, 128 elements)."""
    qat = pytest.importorskip("torchao.quantization.qat")
    config = qat.QATConfig(weight_config=qat.Float8FakeQuantizeConfig(torch.float8_e4m3fn), step="prepare")
    report = flopmeter.profile(_quantized(config), torch.randn(*X))
    assert report.flops == FLOAT_FLOPS
    layer = report.compression.layers["0"]
    assert (layer.representation, layer.weight_bits, layer.act_bits, layer.n_scales) == ("dense", 32, 32, 0)
    assert layer.weight_bytes_ideal == layer.weight_bytes_actual == 128 * 4  # float32 as stored: 512
    overhead = {op: s.cost.flops for op, s in report.overhead.items()}
    assert overhead == {
        "torchao.choose_qparams_affine": 2 * 128,  # the row scales' range: 256
        "torchao.quantize_affine": 4 * 128,  # 512
        "torchao.dequantize_affine": 2 * 128,  # 256
    }


def test_a_qat_layers_scales_take_the_configs_precisions() -> None:
    """docs/compression.md: each scale at the config's scale and zero-point precisions."""
    qat = pytest.importorskip("torchao.quantization.qat")
    weight = qat.IntxFakeQuantizeConfig(
        torch.int4, group_size=8, scale_precision=torch.bfloat16, zero_point_precision=torch.int8
    )
    report = flopmeter.profile(
        _quantized(qat.QATConfig(weight_config=weight, step="prepare")), torch.randn(*X)
    )
    layer = report.compression.layers["0"]
    assert (layer.representation, layer.weight_bits, layer.n_scales) == ("qat int4 per_group", 4, 16)
    # 128 weights x 4 bits = 64 bytes + 16 groups x (bfloat16 scale 2 + int8 zero point 1) = 48: 112
    assert layer.weight_bytes_ideal == 64 + 16 * 3
