"""Quantization-aware training (torch.ao fake quantizers): the compression view shows
the bits the fake quantizers round to, as the converted model stores them (P3-A39)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import flopmeter

tq = pytest.importorskip("torch.ao.quantization")


class _Stubbed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = tq.QuantStub()
        self.fc = nn.Linear(8, 4)
        self.dequant = tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.fc(self.quant(x)))


def _qat(qconfig: object) -> nn.Module:
    torch.manual_seed(0)
    model = _Stubbed().train()
    model.qconfig = qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        return tq.prepare_qat(model)


def test_per_channel_qat_layer_shows_int8_weights_and_activations() -> None:
    qat = _qat(tq.get_default_qat_qconfig("fbgemm"))  # weights qint8 -128..127 per channel
    layer = flopmeter.profile(qat, torch.randn(4, 8)).compression.layers["fc"]
    assert layer.representation == "qat qint8 per_channel"
    assert layer.weight_bits == 8  # (127 - -128).bit_length() = 255 -> 8 bits
    assert layer.act_bits == 8  # quint8 0..127 under reduce_range: 7 bits + 1
    assert layer.n_scales == 4  # one per output channel of Linear(8, 4)
    assert layer.weight_bytes_ideal == 96  # 32 weights * 8 bits / 8 = 32, + 4 scales * 16 bytes = 64
    assert layer.bytes_ideal == 112  # 96 + 4 float32 biases * 4 bytes
    assert layer.weight_bytes_actual == 128  # still stored as 32 float32 weights
    assert layer.bops == 8_192  # 128 MACs * 8 * 8
    assert layer.macs_effective == 128  # 4 rows * 8 * 4: the model's work is unchanged


def test_qat_view_equals_the_converted_models() -> None:
    qat = _qat(tq.get_default_qat_qconfig("fbgemm"))
    x = torch.randn(4, 8)
    qat(x)  # calibrate the fake quantizers once, as training would
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = tq.convert(qat.eval())
    before = flopmeter.profile(qat, x).compression.layers["fc"]
    after = flopmeter.profile(converted, x).compression.layers["fc"]
    for field in ("weight_bits", "act_bits", "n_scales", "weight_bytes_ideal", "bytes_ideal", "bops"):
        assert getattr(before, field) == getattr(after, field), field


def test_per_tensor_qat_has_one_scale() -> None:
    qat = _qat(tq.get_default_qat_qconfig("qnnpack"))  # weights per tensor, activations 0..255
    layer = flopmeter.profile(qat, torch.randn(4, 8)).compression.layers["fc"]
    assert layer.representation == "qat qint8 per_tensor"
    assert (layer.weight_bits, layer.act_bits, layer.n_scales) == (8, 8, 1)  # 255 -> 8 bits
    assert layer.weight_bytes_ideal == 48  # 32 weights * 8 / 8 = 32 + 1 scale * 16


def test_four_bit_qat_weights_from_the_quantizers_range() -> None:
    four_bit = tq.FakeQuantize.with_args(
        observer=tq.MovingAverageMinMaxObserver,
        quant_min=-8,
        quant_max=7,
        dtype=torch.qint8,
        qscheme=torch.per_tensor_symmetric,
    )
    qconfig = tq.QConfig(activation=tq.default_fake_quant, weight=four_bit)
    qat = _qat(qconfig)
    layer = flopmeter.profile(qat, torch.randn(4, 8)).compression.layers["fc"]
    assert layer.weight_bits == 4  # (7 - -8).bit_length() = 15 -> 4 bits
    assert layer.act_bits == 8  # default_fake_quant: quint8 0..255
    assert layer.weight_bytes_ideal == 32  # 32 weights * 4 / 8 = 16 + 1 scale * 16
    assert layer.bops == 4_096  # 128 MACs * 4 * 8


def test_a_float_model_keeps_its_float_bits() -> None:
    layer = flopmeter.profile(_Stubbed(), torch.randn(4, 8)).compression.layers["fc"]
    assert (layer.representation, layer.weight_bits, layer.act_bits) == ("dense", 32, 32)


def test_fx_qat_layers_take_the_bits_of_the_quantizer_feeding_them() -> None:
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(288, 4))
    x = torch.randn(2, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qat = prepare_qat_fx(model.train(), tq.get_default_qat_qconfig_mapping("fbgemm"), (x,))
    layers = flopmeter.profile(qat, x).compression.layers
    conv, linear = layers["0"], layers["4"]  # ConvBnReLU2d, Linear
    assert (conv.weight_bits, conv.act_bits, conv.n_scales) == (8, 8, 8)  # 8 output channels
    assert (linear.weight_bits, linear.act_bits, linear.n_scales) == (8, 8, 4)
    # conv: 2 * 8*6*6 outputs * 3*3*3 = 15,552 MACs; * 8 * 8 = 995,328 BOPs
    assert conv.macs_effective == 15_552 and conv.bops == 995_328


def _fused_qat(bias: bool) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        tq.QuantStub(), nn.Conv2d(3, 8, 3, bias=bias), nn.BatchNorm2d(8), nn.ReLU(), tq.DeQuantStub()
    ).train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq.fuse_modules_qat(model, [["1", "2", "3"]], inplace=True)  # -> ConvBnReLU2d
        model.qconfig = tq.get_default_qat_qconfig("fbgemm")
        return tq.prepare_qat(model)


@pytest.mark.parametrize("bias", [False, True])
def test_qat_conv_bn_counts_as_the_float_conv_bn_it_emulates(bias: bool) -> None:
    """P3-A49: the simulated batch-norm fold is overhead, not model work."""
    x = torch.randn(2, 3, 8, 8)
    qat = _fused_qat(bias)
    report = flopmeter.profile(qat, x)
    # conv: 2*8*6*6 = 576 outputs of 3*3*3 = 27 products: (2*27 - 1)*576 = 30,528 (+576 bias adds
    # = 31,104 with a bias); batch norm (train) 1,192; relu 576
    expected = (31_104 if bias else 30_528) + 1_192 + 576  # 32,872 / 32,296
    assert report.flops == expected
    assert report.macs == 15_552  # 576 * 27
    float_model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=bias), nn.BatchNorm2d(8), nn.ReLU()).train()
    assert flopmeter.profile(float_model, x).flops == expected
    aside = report.overhead
    # the fold: var + eps (8), sqrt (8), gamma / std (8), weight * scale (8*27 = 216),
    # output / scale (576), and the adds of the zero bias the fold passes to the conv (576)
    assert aside["aten.add"].cost.flops == 8
    assert aside["aten.sqrt"].cost.flops == 8
    assert aside["aten.div"].cost.flops == 8 + 576
    assert aside["aten.mul"].cost.flops == 216
    assert aside["aten.convolution"].cost.flops == 576
    assert aside["aten.convolution"].cost.macs == 0  # the conv's products stay model work
    counted = flopmeter.profile(qat, x, compression=flopmeter.CompressionOptions(count_overhead=True))
    fake_quant = counted.overhead["aten._fused_moving_avg_obs_fq_helper"].cost.flops
    assert counted.flops == expected + 8 + 8 + 584 + 216 + 576 + fake_quant


@pytest.mark.parametrize("bias", [False, True])
def test_qat_conv_bn_training_step_counts_as_the_float_one(bias: bool) -> None:
    """The fold's gradients are overhead too; the float model's own gradients stay."""
    x = torch.randn(2, 3, 8, 8)
    report = flopmeter.profile(_fused_qat(bias), x, backward=True)
    float_model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=bias), nn.BatchNorm2d(8), nn.ReLU()).train()
    reference = flopmeter.profile(float_model, x, backward=True)
    # backward: relu 576 + batch norm 6,336 + conv weight gradient (2*72 - 1)*216 = 30,888
    # (+ its bias gradient: 8 sums of 72, 8*71 = 568) = 37,800 / 38,368
    expected = 576 + 6_336 + 30_888 + (568 if bias else 0)
    assert reference.backward_cost.flops == expected
    assert report.backward_cost.flops == expected
    assert report.forward.flops == reference.forward.flops
    assert report.overhead["aten.neg"].backward_calls == 1  # d(conv / scale) / d(scale)
