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
    report = flopmeter.profile(torch.export.export(converted, (x,)))
    # the flat graph's rows, and the graph's own guard module, re-exported: a row of 0 calls
    assert sorted(report.modules) == ["", "0", "_guards_fn"] and report.modules["_guards_fn"].calls == 0
    assert report.modules["0"].macs == report.macs == 288
    view = report.compression
    layer = view.layers["0"]
    assert (layer.macs_dense, layer.weight_bits, layer.act_bits) == (288, 8, 8)  # as above
    assert layer.n_scales == 4  # one per output channel


@pytest.mark.parametrize("bias", [True, False])
def test_qat_prepared_puts_its_batch_norm_fold_in_overhead(bias: bool) -> None:
    """P9-6: torchao's simulated fold (``_qat_conv_bn``) is overhead, as in eager QAT's
    ConvBn: model FLOPs equal the float exported train graph's; the weight has the fake
    quantizer's bits, as in eager QAT."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=bias)
    model = torch.nn.Sequential(conv, torch.nn.BatchNorm2d(8)).train()
    x = torch.randn(2, 3, 4, 4)
    exported = torch.export.export(model, (x,)).module()
    float_flops = flopmeter.profile(exported, x).flops
    quantizer = x86.X86InductorQuantizer().set_global(
        x86.get_default_x86_inductor_quantization_config(is_qat=True)
    )
    prepared = pt2e.prepare_qat_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    prepared(x)
    report = flopmeter.profile(prepared, x)
    assert report.flops == float_flops  # was float + 752 (with bias) / + 496 (without)
    # docs/exported.md, flat graphs: a node with no module record between two of the conv's
    # nodes (with a bias: its zero-bias conv, then the bias add) runs inside its one call; the
    # batch norm's nodes are split by the fold's root ops and the conv: two calls of it; each
    # fake quantizer the graph calls is a row of its own
    assert (report.modules["0"].calls, report.modules["1"].calls) == (1, 2)
    quantizers = [name for name in report.modules if name.startswith("activation_post_process_")]
    assert [report.modules[name].type for name in quantizers if "." not in name] == [
        "FusedMovingAvgObsFakeQuantize"
    ] * 3  # input, weight, output
    fold = {op: stats.cost.flops for op, stats in report.overhead.items() if not op.startswith("aten._fused")}
    assert fold == {
        "aten.add": 8,  # running_var + eps: 8 channels
        "aten.sqrt": 8,
        "aten.div": 8 + 2 * 8 * 4 * 4,  # gamma / std, and the output / scale: 8 + 256 = 264
        "aten.mul": 8 * 3 * 3 * 3,  # weight * scale: 216
        **({"aten.convolution": 2 * 8 * 4 * 4} if bias else {}),  # the zero bias's add, 1 per output: 256
    }
    # the model's own bias add (256) and batch norm stay; the fake quantizers' 6 FLOPs an element:
    # (input 2*3*4*4 + weight 216 + output 256) * 6 = 568 * 6 = 3,408
    assert report.overhead["aten._fused_moving_avg_obs_fq_helper"].cost.flops == 3408
    counted = flopmeter.profile(prepared, x, compression=flopmeter.CompressionOptions(count_overhead=True))
    assert counted.flops == float_flops + (752 if bias else 496) + 3408  # 8+8+264+216(+256)
    layer = report.compression.layers["0"]  # the flat graph's conv runs in the module its node records
    assert (layer.weight_bits, layer.act_bits, layer.n_scales) == (8, 8, 8)  # int8 per channel, uint8 input
    assert layer.macs_dense == 2 * 8 * 4 * 4 * (3 * 3 * 3)  # 256 outputs * 27 = 6,912
    assert layer.bops == 6912 * 8 * 8  # float weights: no zeros
    # a training step: the fold's gradients are overhead too (was 2,192 more backward FLOPs)
    float_step = flopmeter.profile(exported, x, backward=True)
    step = flopmeter.profile(prepared, x, backward=True)
    assert step.backward_cost.flops == float_step.backward_cost.flops
    if bias:
        grown = {
            op: stats.cost.flops - report.overhead[op].cost.flops
            if op in report.overhead
            else stats.cost.flops
            for op, stats in step.overhead.items()
        }
        assert grown == {
            "aten._fused_moving_avg_obs_fq_helper": 0,
            "aten.add": 8 + 8,  # the scale's two gradients summed, gamma's two gradients summed
            "aten.sqrt": 0,
            "aten.div": 3 * 256 + 8,  # out / s: grad / s, and -grad * (out / s) / s; gamma's: grad / std
            "aten.neg": 256,
            "aten.mul": 256 + 216 + 216 + (256 + 216),  # out's, weight's two; the fake quantizers' masks
            "aten.sum": (256 - 8)
            + (216 - 8),  # s's gradient to (1, 8, 1, 1), the weight scale's to (8, 1, 1, 1)
            "aten.convolution": 0,
        }  # the fold's: 2,192
    if bias:  # re-exported, the fake quantizers are ops in the graph (no modules): the same
        program = torch.export.export(prepared, (x,))
        assert flopmeter.profile(program.module(), x).flops == float_flops  # was + 752
        with pytest.raises(flopmeter.ModelError, match="running_mean should contain 0 elements"):
            flopmeter.profile(program, x)  # torch's own unflatten fails on it (docs/compression.md)
    if bias:  # in eval too (torchao's move_exported_model_to_eval): the float eval graph's FLOPs
        pt2e_utils = pytest.importorskip("torchao.quantization.pt2e")
        pt2e_utils.move_exported_model_to_eval(prepared)
        float_eval = flopmeter.profile(torch.export.export(model.eval(), (x,)).module(), x).flops
        assert flopmeter.profile(prepared, x).flops == float_eval


def test_qat_fold_leaves_a_model_conv_with_a_bias_of_its_shape_alone() -> None:
    """A model's own conv whose bias has the fold's zero-bias shape (8,) is model work: its
    bias is a parameter, the fold's a ``zeros_like`` (before: its 2*8*4*4 = 256 bias adds
    went to the overhead bucket, the model 256 FLOPs short of the float graph)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.Conv2d(8, 8, 1)
    ).train()
    x = torch.randn(2, 3, 4, 4)
    float_flops = flopmeter.profile(torch.export.export(model, (x,)).module(), x).flops
    quantizer = x86.X86InductorQuantizer().set_global(
        x86.get_default_x86_inductor_quantization_config(is_qat=True)
    )
    prepared = pt2e.prepare_qat_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    prepared(x)
    for shapes_only in (True, False):  # parameters on meta, or real
        report = flopmeter.profile(prepared, x, shapes_only=shapes_only)
        assert report.flops == float_flops
        assert report.overhead["aten.convolution"].cost.flops == 2 * 8 * 4 * 4  # the fold's zero bias: 256
        assert report.overhead["aten.convolution"].calls == 1


def test_a_prepared_graph_has_a_row_per_layer_and_per_observer() -> None:
    """docs/compression.md / exported.md: the flat prepared GraphModule (prepare_pt2e) is
    regrouped by its nodes' records: the conv's MACs are its layer's, each observer it calls
    a row of its own (0 MACs: a HistogramObserver's work is overhead)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3)).eval()
    x = torch.randn(1, 2, 4, 4)
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = pt2e.prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    report = flopmeter.profile(prepared, x)
    assert (report.modules["0"].type, report.modules["0"].macs) == ("Conv2d", 288)  # 16 outputs x 18
    assert report.modules[""].own.macs == 0
    observers = {name: (stats.type, stats.calls, stats.macs) for name, stats in report.modules.items()}
    assert observers["activation_post_process_0"] == ("HistogramObserver", 1, 0)  # the input's
    assert observers["activation_post_process_1"] == ("PerChannelMinMaxObserver", 1, 0)  # the weight's
    assert len(observers) == 4  # and the root and the conv: nothing else
