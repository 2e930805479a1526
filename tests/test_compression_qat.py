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
