"""PT2E quantization (torch.export -> prepare_pt2e -> convert_pt2e, torchao): the
reference representation's quantize/dequantize ops are counted, in the overhead bucket."""

from __future__ import annotations

import pytest
import torch

import flopmeter

pt2e = pytest.importorskip("torchao.quantization.pt2e.quantize_pt2e")
x86 = pytest.importorskip("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer")


def _converted(dynamic: bool = False) -> tuple[torch.fx.GraphModule, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    x = torch.randn(2, 4)
    exported = torch.export.export(model, (x,)).module()
    quantizer = x86.X86InductorQuantizer().set_global(
        x86.get_default_x86_inductor_quantization_config(is_dynamic=dynamic)
    )
    prepared = pt2e.prepare_pt2e(exported, quantizer)
    prepared(x)
    return pt2e.convert_pt2e(prepared), x


def test_static_linear_counts_the_float_linear_and_puts_quantize_ops_in_overhead() -> None:
    converted, x = _converted()
    state = {k: v.clone() for k, v in converted.state_dict().items()}
    code = converted.code
    report = flopmeter.profile(converted, x)
    assert report.unsupported == {}
    assert report.macs == 24  # 2 rows * 4 * 3
    assert report.flops == 48  # 2*3*(2*4-1) = 42 + 6 bias adds
    overhead = {op: s.cost.flops for op, s in report.overhead.items()}
    assert overhead == {
        "quantized_decomposed.dequantize_per_channel": 24,  # int8 weight 3x4 = 12 values * 2
        "quantized_decomposed.quantize_per_tensor": 32,  # input 2x4 = 8 values * 4
        "quantized_decomposed.dequantize_per_tensor": 16,  # 8 values * 2
    }
    assert report.compression.nonzeros_counted  # a quantized model: counted unasked
    assert converted.code == code
    assert all(torch.equal(state[k], v) for k, v in converted.state_dict().items())


def test_dynamic_linear_counts_the_range_as_overhead() -> None:
    converted, x = _converted(dynamic=True)
    report = flopmeter.profile(converted, x)
    assert report.unsupported == {}
    assert report.macs == 24 and report.flops == 48  # as above
    overhead = {op: s.cost.flops for op, s in report.overhead.items()}
    assert overhead["quantized_decomposed.choose_qparams"] == 16  # min and max of 8 values: 8 * 2
    assert overhead["quantized_decomposed.dequantize_per_channel"] == 24  # 12 * 2


def _expect_int8_linear(report: flopmeter.Report, weight: torch.Tensor) -> None:
    layer = report.compression.layers["0"]
    assert (layer.weight_bits, layer.act_bits) == (8, 8)  # int8 -128..127; uint8 input 0..255
    assert layer.representation == "pt2e int8 per_channel"
    assert layer.macs_dense == 24  # 2 rows * 4 * 3
    nonzero = int(torch.count_nonzero(weight))  # symmetric: the zero point is 0
    assert layer.macs_effective == nonzero * 2  # each weight used by the 2 rows of x
    assert layer.bops == nonzero * 2 * 8 * 8
    # 12 int8 values + 3 float32 scales (12) + 3 int64 zero points (24) + 3 float32 biases (12)
    assert layer.bytes_actual == 12 + 12 + 24 + 12


def test_converted_graph_weight_is_the_int8_constant() -> None:
    converted, x = _converted()
    weight = converted._frozen_param0
    assert weight.dtype == torch.int8
    _expect_int8_linear(flopmeter.profile(converted, x), weight)


def test_exported_program_of_converted_model_has_int8_layers() -> None:
    converted, x = _converted()
    program = torch.export.export(converted, (x,))
    weight = converted._frozen_param0
    report = flopmeter.profile(program)
    assert report.unsupported == {}
    assert report.macs == 24 and report.modules["0"].macs == 24
    _expect_int8_linear(report, weight)


def _converted_conv() -> tuple[torch.nn.Module, torch.fx.GraphModule, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3)).eval()
    x = torch.randn(1, 2, 4, 4)
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = pt2e.prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    prepared(x)
    return model, pt2e.convert_pt2e(prepared), x


def test_flat_graph_conv_counts_in_its_layer_with_its_int8_weight() -> None:
    model, converted, x = _converted_conv()
    macs = 4 * 2 * 2 * (2 * 3 * 3)  # 16 outputs * 18 = 288
    assert flopmeter.profile(model, x).macs == macs
    report = flopmeter.profile(converted, x)
    assert report.modules["0"].macs == macs and report.modules["0"].type == "Conv2d"  # its node's module
    view = report.compression
    assert "" not in view.layers  # the root holds no weight
    layer = view.layers["0"]
    assert (layer.macs_dense, layer.weight_bits, layer.act_bits, layer.n_scales) == (macs, 8, 8, 4)


def test_exported_program_conv_row_is_int8() -> None:
    _, converted, x = _converted_conv()
    view = flopmeter.profile(torch.export.export(converted, (x,))).compression
    layer = view.layers["0"]
    assert (layer.macs_dense, layer.weight_bits, layer.act_bits) == (288, 8, 8)  # as above
    assert layer.n_scales == 4  # one per output channel


def test_qat_prepared_counts_its_batch_norm_fold_as_model_flops() -> None:
    """A documented limitation: the fold is model work here (overhead in eager and FX QAT);
    the weight has the fake quantizer's bits, as in eager QAT."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8)).train()
    x = torch.randn(2, 3, 4, 4)
    exported = torch.export.export(model, (x,)).module()
    float_flops = flopmeter.profile(exported, x).flops
    quantizer = x86.X86InductorQuantizer().set_global(
        x86.get_default_x86_inductor_quantization_config(is_qat=True)
    )
    prepared = pt2e.prepare_qat_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    prepared(x)
    report = flopmeter.profile(prepared, x)
    assert set(report.overhead) == {"aten._fused_moving_avg_obs_fq_helper"}
    # var + eps 8, sqrt 8, gamma / std 8, weight * scale 8*3*3*3 = 216, output / scale
    # 2*8*4*4 = 256, bias add 256: 752
    assert report.flops - float_flops == 752
    layer = report.compression.layers["0"]  # the flat graph's conv runs in the module its node records
    # the fold's root ops split the conv's nodes (weight multiply | conv): two calls of it
    assert report.modules["0"].calls == 2 and report.modules["0"].macs == 2 * 8 * 4 * 4 * (3 * 3 * 3)
    assert (layer.weight_bits, layer.act_bits, layer.n_scales) == (8, 8, 8)  # int8 per channel, uint8 input
    assert layer.macs_dense == 2 * 8 * 4 * 4 * (3 * 3 * 3)  # 256 outputs * 27 = 6,912
    assert layer.bops == 6912 * 8 * 8  # float weights: no zeros
