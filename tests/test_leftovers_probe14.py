"""Probe 14's leftovers (docs/probe-14/leftovers.md): what probe 13 left documented but not
done, each against numbers worked out by hand."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

import flopmeter
from flopmeter.hardware import Hardware

# --- 1. LLM serving: a float32 phase's FLOPs split by op class (roofline's grouping) -------

SETTINGS = [
    (torch.backends, "fp32_precision"),
    (torch.backends.cudnn, "fp32_precision"),
    (torch.backends.cudnn.conv, "fp32_precision"),
    (torch.backends.cudnn.rnn, "fp32_precision"),
    (torch.backends.cuda.matmul, "fp32_precision"),
]


@pytest.fixture
def tf32_matmuls():
    """float32 matmuls allowed on TF32 for the test; every setting back afterwards."""
    legacy = (torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision())
    saved = [getattr(owner, name) for owner, name in SETTINGS]
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    yield
    torch.backends.cudnn.allow_tf32 = legacy[0]
    torch.set_float32_matmul_precision(legacy[1])
    for (owner, name), value in zip(SETTINGS, saved, strict=True):
        setattr(owner, name, value)


# The test Llama (conftest: hidden 64, MLP 128, 2 layers, 4 query and 2 KV heads of 16,
# vocabulary 100), float32, one decode step after n cached tokens, batch 1.
# Matmul-class FLOPs (aten.mm, N*(2K-1) each), the same at every n:
#   per layer q 64*127 = 8,128, k 32*127 = 4,064, v 4,064, o 8,128, gate 128*127 = 16,256,
#   up 16,256, down 64*255 = 16,320: 73,216; 2 layers 146,432; lm_head 100*127 = 12,700
MATMUL_FLOPS = 2 * (8_128 + 4_064 + 4_064 + 8_128 + 16_256 + 16_256 + 16_320) + 12_700  # 159,132


def other_flops(n: int) -> int:
    """The step's FLOPs outside matmuls (all at the float32 peak, TF32 or not):
    rotary table 8 + 4*16 = 72; 5 RMSNorms of 64 (pow 64, mean 64, +eps 1, rsqrt 1, two muls
    128) = 5*258 = 1,290; per layer: rotary on q (64 + 32 + 64 + 64 = 224) and k (112) 336,
    two residual adds 128, SiLU 4*128 = 512 and the gate mul 128, and attention over n+1
    keys (``scaled_dot_product_attention``, 4 heads of 16): scores 4*(n+1)*31, scale
    4*(n+1), softmax 4*(n + (n+1) + (n+1) + n + (n+1)) = 4*(5n+3), values 4*16*(2(n+1)-1)."""
    keys = n + 1
    attention = 4 * keys * 31 + 4 * keys + 4 * (5 * n + 3) + 4 * 16 * (2 * keys - 1)
    return 72 + 1_290 + 2 * (336 + 128 + 512 + 128 + attention)


def test_the_hand_count_of_the_decode_step(tiny_llama_config):
    pytest.importorskip("transformers")
    from flopmeter import llm_cost

    cost = llm_cost(tiny_llama_config, prompt=16, generate=4, dtype="float32")
    assert other_flops(16) == 12_810  # 1,362 + 2*(1,104 + 4*17*31 + 68 + 4*83 + 64*33) = 1,362 + 2*5,724
    assert cost.decode(16).flops == MATMUL_FLOPS + other_flops(16)  # 159,132 + 12,810 = 171,942
    assert cost.decode(18).flops == MATMUL_FLOPS + other_flops(18)  # + 2*4*(2*31+2+10+32) = 171,942 + 1,104


def test_serving_runs_only_the_matmul_flops_of_a_float32_step_at_the_tf32_peak(
    tiny_llama_config, tf32_matmuls
):
    pytest.importorskip("transformers")
    from flopmeter import llm_cost

    cost = llm_cost(tiny_llama_config, prompt=16, generate=4, dtype="float32")
    serving = cost.serving("h100-sxm")
    # H100 SXM: TF32 494.7 TFLOP/s, float32 67, 3.35 TB/s. First step after 16 tokens:
    # 159,132 / 494.7e12 + 12,810 / 67e12 = 0.3217 ns + 0.1912 ns = 0.5129 ns (before: the
    # whole 171,942 at TF32, 0.3476 ns)
    first = serving.first_decode
    assert first.compute_s == pytest.approx(MATMUL_FLOPS / 494.7e12 + other_flops(16) / 67e12, rel=1e-12)
    assert first.compute_s == pytest.approx(0.5129e-9, abs=0.0001e-9)
    # the last step (context 16 + 4 - 2 = 18) reads the fitted split: 13,914 at float32
    last = serving.last_decode
    assert last.compute_s == pytest.approx(MATMUL_FLOPS / 494.7e12 + other_flops(18) / 67e12, rel=1e-12)
    # memory-bound at batch 1: the step takes its bytes' time; paged bytes: weights
    # (80,512 parameters read + 8 of the rotary inv_freq) * 4 = 322,080, KV read
    # 2 layers * K,V * 2 heads * 16 * 17 positions * 4 = 8,704, written 2*2*2*16*4 = 512
    split = cost.decode(16).bytes("paged", cost.cache)
    assert (split.weights, split.kv_read, split.kv_write) == (322_080, 8_704, 512)
    assert first.memory_s == pytest.approx((322_080 + 8_704 + 512 + split.activations) / 3.35e12)
    assert first.bound == "memory" and first.seconds == first.memory_s


def test_a_compute_bound_float32_step_takes_its_split_compute_time(tiny_llama_config, tf32_matmuls):
    pytest.importorskip("transformers")
    from flopmeter import llm_cost

    # a part that moves bytes fast: the step is compute-bound, its time its compute time
    part = Hardware("fast-memory", peak_flops={"float32": 1e12, "tfloat32": 8e12}, bandwidth=1e15)
    cost = llm_cost(tiny_llama_config, prompt=16, generate=2, dtype="float32")
    step = cost.serving(part).first_decode
    # 159,132 / 8e12 + 12,810 / 1e12 = 19.8915 ns + 12.81 ns = 32.7015 ns (before: 171,942 /
    # 8e12 = 21.49 ns); memory 368,120 B / 1e15 = 0.368 ns
    assert step.bound == "compute"
    assert step.seconds == pytest.approx(32.7015e-9, rel=1e-12)
    # compute-bound batch: B >= W / (c * bandwidth - s), c = 32.7015 ns per sequence;
    # at 2e12 B/s: c * bandwidth = 65,403 B, s = KV 8,704 + 512 + activations
    slow = Hardware("slower-memory", peak_flops={"float32": 1e12, "tfloat32": 8e12}, bandwidth=2e12)
    split = cost.decode(16, 1).bytes("paged", cost.cache)
    margin = Fraction(65_403) - (8_704 + 512 + split.activations)
    expected = -(-Fraction(322_080) // margin)  # ceil(322,080 / margin)
    assert cost.serving(slow).compute_bound_batch == expected
    # (all 171,942 at TF32, as before: c * bandwidth = 42,985.5 B, under s: never compute-bound)


def test_a_bfloat16_step_keeps_the_bfloat16_peak(tiny_llama_config, tf32_matmuls):
    pytest.importorskip("transformers")
    from flopmeter import llm_cost

    cost = llm_cost(tiny_llama_config, prompt=16, generate=2, dtype="bfloat16")
    step = cost.serving("h100-sxm").first_decode
    # the phase's dtype is the model's: every FLOP at 989.4 TFLOP/s (docs/llm.md)
    assert step.compute_s == pytest.approx((MATMUL_FLOPS + other_flops(16)) / 989.4e12, rel=1e-12)


# --- 2. torch.ao packed weights read with their scales and zero points --------------------


def _quantize_dynamic(
    model: torch.nn.Module, spec: object, dtype: torch.dtype = torch.qint8
) -> torch.nn.Module:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        return torch.ao.quantization.quantize_dynamic(model, spec, dtype=dtype)


def _packed_read(report: object, op: str) -> int:
    return sum(r.cost.weight_bytes for r in report.ops if r.op == op)


def test_the_scales_are_stored_as_float64_and_int64():
    from torch.ao.quantization import per_channel_dynamic_qconfig

    layer = _quantize_dynamic(
        torch.nn.Sequential(torch.nn.Linear(64, 32)), {torch.nn.Linear: per_channel_dynamic_qconfig}
    )
    weight = layer[0].weight()
    # what the 16 B a scale rest on: torch keeps each scale as a float64, each zero point an int64
    assert (weight.q_per_channel_scales().dtype, weight.q_per_channel_zero_points().dtype) == (
        torch.float64,
        torch.int64,
    )
    assert isinstance(
        _quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(4, 4)), {torch.nn.Linear})[0]
        .weight()
        .q_scale(),
        float,
    )


def test_a_dynamic_linear_reads_its_scale_and_zero_point():

    per_tensor = _quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(64, 32)), {torch.nn.Linear})
    report = flopmeter.profile(per_tensor, torch.randn(4, 64))
    # int8 32*64 = 2,048 + float32 bias 32*4 = 128 + one float64 scale and int64 zero point 16
    assert _packed_read(report, "quantized.linear_dynamic") == 2_048 + 128 + 16 == 2_192
    assert report.param_bytes == 2_192  # the same storages, counted once as params


def test_a_per_channel_dynamic_linear_reads_a_scale_per_output_row():
    from torch.ao.quantization import per_channel_dynamic_qconfig

    model = _quantize_dynamic(
        torch.nn.Sequential(torch.nn.Linear(64, 32)), {torch.nn.Linear: per_channel_dynamic_qconfig}
    )
    report = flopmeter.profile(model, torch.randn(4, 64))
    # 2,048 + 128 + 32 output rows * (8 + 8) = 2,048 + 128 + 512 = 2,688 (before: 2,176)
    assert _packed_read(report, "quantized.linear_dynamic") == 2_688
    assert report.param_bytes == 2_688


def test_a_dynamic_lstm_reads_its_packed_cells():

    model = _quantize_dynamic(torch.nn.Sequential(torch.nn.LSTM(8, 16, num_layers=2)), {torch.nn.LSTM})
    report = flopmeter.profile(model, torch.randn(5, 1, 8))
    # layer 0: W_ih 4*16 x 8 = 512 int8, W_hh 64 x 16 = 1,024, float32 biases 2*64*4 = 512
    # (packed with the weights), 2 scales * 16 = 32: 2,080; layer 1: W_ih 64 x 16 = 1,024:
    # 1,024 + 1,024 + 512 + 32 = 2,592; 4,672 in all (before: 0, the cells were not read)
    assert _packed_read(report, "aten.quantized_lstm") == 2_080 + 2_592 == 4_672
    assert report.param_bytes == 4_672


def test_a_dynamic_float16_lstm_reads_its_weights_at_16_bits():

    model = _quantize_dynamic(torch.nn.Sequential(torch.nn.LSTM(8, 16)), {torch.nn.LSTM}, torch.float16)
    report = flopmeter.profile(model, torch.randn(5, 1, 8))
    # (512 + 1,024) float16 = 3,072 + biases 512, no scales: 3,584
    assert _packed_read(report, "aten.quantized_lstm") == 3_072 + 512 == 3_584


def test_a_dynamic_lstm_cell_reads_its_two_packed_weights():

    model = _quantize_dynamic(torch.nn.Sequential(torch.nn.LSTMCell(8, 16)), {torch.nn.LSTMCell})
    report = flopmeter.profile(model, torch.randn(2, 8))
    # W_ih 512 + W_hh 1,024 int8 + the biases packed with them 2*64*4 = 512 + 2 scales 32 = 2,080
    # (the b_ih, b_hh torch passes beside them are read as inputs, not as weights twice)
    assert _packed_read(report, "quantized.quantized_lstm_cell_dynamic") == 2_080


class _Static(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.linear = torch.nn.Linear(8 * 4 * 4, 10)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.quant(x))
        return self.dequant(self.linear(x.flatten(1)))


def test_static_quantized_conv_and_linear_read_a_scale_per_output_channel():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _Static().eval()
        model.qconfig = torch.ao.quantization.get_default_qconfig("x86")  # per-channel weights
        prepared = torch.ao.quantization.prepare(model)
        prepared(torch.randn(2, 3, 6, 6))
        quantized = torch.ao.quantization.convert(prepared)
    assert quantized.conv.weight().qscheme() == torch.per_channel_affine
    report = flopmeter.profile(quantized, torch.randn(2, 3, 6, 6))
    # conv: int8 8*3*3*3 = 216 + bias 8*4 = 32 + 8 channels * 16 = 128: 376
    assert _packed_read(report, "quantized.conv2d") == 216 + 32 + 128 == 376
    # linear: int8 10*128 = 1,280 + bias 40 + 10 rows * 16 = 160: 1,480
    assert _packed_read(report, "quantized.linear") == 1_280 + 40 + 160 == 1_480
    assert report.param_bytes == 376 + 1_480


def test_llm_mode_reads_a_per_channel_torch_ao_model_with_its_scales(tiny_llama_config):
    transformers = pytest.importorskip("transformers")
    from torch.ao.quantization import per_channel_dynamic_qconfig

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(tiny_llama_config).eval()
    quantized = _quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig})
    from flopmeter.notices import CountWarning

    with pytest.warns(CountWarning):
        cost = flopmeter.llm_cost(quantized, prompt=16, generate=2)
    # the 15 Linears' int8 values: 80,128 (MATMUL weights: 2*(4,096+2,048+2,048+4,096+3*8,192)
    # + 6,400); 5 RMSNorms, one embedding row and the rotary frequencies 5*64*4 + 64*4 + 8*4 =
    # 1,568; one float64 scale and int64 zero point per output row: 2*(64+32+32+64+128+128+64)
    # + 100 = 1,124 rows * 16 = 17,984
    assert cost.decode(16).bytes("paged").weights == 80_128 + 1_568 + 1_124 * 16 == 99_680


# --- 3. the encoder refusal's hint fits what was given ------------------------------------

BERT_FILE = """import transformers


def bert(is_decoder=False):
    config = transformers.BertConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
        vocab_size=100, is_decoder=is_decoder,
    )
    return transformers.BertLMHeadModel(config).eval()
"""


def test_a_file_building_an_encoder_is_told_to_build_it_as_a_decoder_in_the_callable(tmp_path):
    pytest.importorskip("transformers")
    from flopmeter.cli import run

    path = tmp_path / "enc.py"
    path.write_text(BERT_FILE)
    code, out, err = run([f"{path}:bert", "--prompt", "8"])
    assert code == 2 and out == "" and "Traceback" not in err
    assert "is_decoder=False" in err and "for FILE.py:CALLABLE, in the callable" in err, err
    assert "--set is_decoder=true" not in err  # a file's --set values are its callable's arguments
    # as the hint says: built as a decoder in the callable (here through its argument), it is served
    code, out, err = run([f"{path}:bert", "--set", "is_decoder=true", "--prompt", "8"])  # JSON true
    assert code == 0 and "Decode step" in out, err


def test_a_config_keeps_the_set_hint_and_a_model_object_gets_the_builders(tiny_llama_config):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4, vocab_size=100
    )
    with pytest.raises(ValueError, match=r"is_decoder=True \(CLI: --set is_decoder=true\)"):
        flopmeter.llm_cost(config, prompt=8)
    with pytest.raises(ValueError, match=r"transformers\.BertConfig\(\.\.\., is_decoder=True\)") as refused:
        flopmeter.llm_cost(transformers.BertLMHeadModel(config).eval(), prompt=8)
    assert "--set" not in str(refused.value)


# --- 4. a parametrized buffer is read at its stored size in LLM mode ----------------------


class _Dequantize(torch.nn.Module):
    """An int8 weight to float32: q * 0.01."""

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return q.float() * 0.01


def _int8_head(config: object, as_buffer: bool) -> torch.nn.Module:
    """The test Llama with lm_head's weight stored as int8 (a buffer or a frozen parameter)
    and rebuilt to float32 by a parametrization."""
    transformers = pytest.importorskip("transformers")
    from torch.nn.utils import parametrize

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    head = model.lm_head
    stored = (head.weight.detach() * 100).round().clamp(-128, 127).to(torch.int8)
    del head.weight
    if as_buffer:
        head.register_buffer("weight", stored)
    else:
        head.weight = torch.nn.Parameter(stored, requires_grad=False)
    parametrize.register_parametrization(head, "weight", _Dequantize(), unsafe=True)
    return model


@pytest.mark.parametrize("as_buffer", [True, False], ids=["buffer", "parameter"])
def test_a_parametrized_buffer_is_read_at_its_stored_size(tiny_llama_config, as_buffer):
    pytest.importorskip("transformers")
    float_step = flopmeter.llm_cost(tiny_llama_config, prompt=16, generate=2, dtype="float32").decode(16)
    step = flopmeter.llm_cost(_int8_head(tiny_llama_config, as_buffer), prompt=16, generate=2).decode(16)
    paged, float_paged = step.bytes("paged"), float_step.bytes("paged")
    # weights: the float model's 322,080 less lm_head's float32 100*64*4 = 25,600, plus its
    # int8 original 100*64 = 6,400: 302,880
    assert float_paged.weights == 322_080
    assert paged.weights == 322_080 - 25_600 + 6_400 == 302_880
    # the float32 copy the parametrization rebuilds (100*64*4 = 25,600, read by lm_head's mm)
    # is no activation: the paged activations are the float model's (as a buffer: 25,600
    # more, before probe 14: its original was not taken as stored, nor the copy as rebuilt)
    assert step.report.rebuilt_weight_bytes == 100 * 64 * 4 == 25_600
    assert paged.activations == float_paged.activations


# --- 5. a mixture of experts with int8 experts in LLM mode --------------------------------


def _mixtral(experts_implementation: str) -> torch.nn.Module:
    """Mixtral, 2 layers, hidden 64, 4 query and 2 KV heads of 16, 4 experts of MLP 128, top 2,
    vocabulary 100, float32."""
    transformers = pytest.importorskip("transformers")
    config = transformers.MixtralConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
        num_local_experts=4,
        num_experts_per_tok=2,
    )
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(
        config, experts_implementation=experts_implementation
    ).eval()


def _int8_experts(model: torch.nn.Module) -> torch.nn.Module:
    """The experts' 3-D weights (only they) quantized by torchao's Int8WeightOnlyConfig: int8
    values, a float32 scale and an int8 zero point per row."""
    import copy
    from collections import OrderedDict

    quantization = pytest.importorskip("torchao.quantization")
    quantized = copy.deepcopy(model)
    configs = OrderedDict([(r"re:.*experts\.(gate_up_proj|down_proj)", quantization.Int8WeightOnlyConfig())])
    quantization.quantize_(quantized, quantization.FqnToConfig(configs), filter_fn=None)
    return quantized


# weights that are no expert's, read per decode token (float32): per layer q 64*64 + k 64*32 +
# v 64*32 + o 64*64 + router 4*64 + 2 norms 2*64 = 12,672; 2 layers 25,344; final norm 64,
# lm_head 100*64 = 6,400, one embedding row 64, rotary frequencies 8: 31,880 * 4 = 127,520
OTHER_WEIGHTS = 4 * (2 * (4_096 + 2_048 + 2_048 + 4_096 + 256 + 128) + 64 + 6_400 + 64 + 8)
# expert weights: per layer gate_up 4 experts * 256 * 64 = 65,536, down 4 * 64 * 128 = 32,768
EXPERT_PARAMS = 2 * (65_536 + 32_768)  # 196,608


def test_int8_experts_count_their_active_n_as_the_float_model():
    model = _mixtral("eager")
    for cost in (
        flopmeter.llm_cost(model, prompt=16, generate=2),
        flopmeter.llm_cost(_int8_experts(model), prompt=16, generate=2),
    ):
        params = cost.params
        # N_mm: 2 layers * (12,288 attention + 256 router) + lm_head 6,400 = 31,488 + 196,608
        assert (params.matmul, params.experts) == (31_488 + EXPERT_PARAMS, EXPERT_PARAMS)
        # active: 31,488 + 196,608 * 2/4 = 129,792 (top 2 of 4)
        assert params.active_matmul == 31_488 + EXPERT_PARAMS * 2 // 4 == 129_792
        # decode MACs: 2 * (12,288 + 256 + 2 experts * (256*64 + 64*128) + 4 heads * 17 * 16 * 2)
        # + lm_head 6,400 = 2 * (12,544 + 49,152 + 2,176) + 6,400 = 134,144
        assert cost.decode(16).macs == 134_144


def test_int8_experts_decode_reads_the_routed_share_at_their_int8_size():
    model = _mixtral("eager")  # torchao's Int8Tensor has no transpose/bmm: grouped_mm fails on it
    step = flopmeter.llm_cost(_int8_experts(model), prompt=16, generate=2).decode(16)
    # int8 experts as stored: values 196,608 + float32 scales per row 2 * 4 * (256 + 64) * 4 =
    # 10,240 + int8 zero points 2,560 = 209,408; one token, top 2 of 4: an expert is untouched
    # with probability 1 - 2/4 = 1/2, so half of them is read: 104,704
    stored = EXPERT_PARAMS + 2 * 4 * (256 + 64) * 4 + 2 * 4 * (256 + 64)
    assert step.experts == (stored, 2, 4) and stored == 209_408
    # before probe 14: 127,520 - 786,432 / 2 = -265,696 (the float size taken off what the
    # eager loop had not even read)
    assert step.bytes("paged").weights == OTHER_WEIGHTS + stored // 2 == 232_224


@pytest.mark.parametrize("implementation", ["eager", "grouped_mm"])
def test_float_experts_decode_reads_the_routed_share_whatever_ran(implementation):
    step = flopmeter.llm_cost(_mixtral(implementation), prompt=16, generate=2).decode(16)
    # 196,608 * 4 = 786,432 B of float32 experts, half read: 127,520 + 393,216 = 520,736; the
    # grouped GEMM traced all four experts, transformers' eager loop only the two routed
    # (before probe 14 the eager trace lost another half: 127,520, no expert at all)
    assert step.bytes("paged").weights == OTHER_WEIGHTS + EXPERT_PARAMS * 4 // 2 == 520_736
