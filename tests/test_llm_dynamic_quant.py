"""LLM mode on a model quantized with dynamic activation quantization (probe 13's "Not covered"
bullet; docs/llm.md "Compressed models"). Such a model's forward cannot be followed on meta
(torchao's int8 matmul asserts that its activation and its int8 weight share a device;
torch.ao's ``quantized::linear_dynamic`` has no meta kernel), so ``profile()`` counts it with
values; a decode step then gets its KV cache as real zeros, not meta tensors, which the real
query of that values run could not attend ("Expected query, key, and value to have the same
device type").

The 2-layer Llama of ``tests/test_llm_compressed_bytes.py`` (``tiny_llama_config``: hidden 64,
4 query and 2 KV heads of 16, MLP 128, vocabulary 100, float32); a decode step after 16 tokens.
Its 15 Linears (per layer q 64->64, k 64->32, v 64->32, o 64->64, gate 64->128, up 64->128,
down 128->64; lm_head 64->100) hold 80,128 weights; the sum of their input sizes K is
2 * (6 * 64 + 128) + 64 = 1,088, of their output sizes N 2 * 512 + 100 = 1,124."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import flopmeter
from flopmeter.notices import CountWarning

transformers = pytest.importorskip("transformers")

LINEAR_WEIGHTS = 2 * 36_864 + 6_400  # 80,128
SUM_K = 2 * (6 * 64 + 128) + 64  # 1,088: what the 15 Linears read per token (elements)
SUM_N = 2 * 512 + 100  # 1,124: their output rows, one weight scale each
LINEARS = 2 * 7 + 1  # 15
DECODE_OTHER = 5 * 64 * 4 + 64 * 4 + 8 * 4  # 1,568: 5 RMSNorms, one embedding row, rotary frequencies
# the float model's decode step (n = 16): its Linears' FLOPs at one token, N * (2K - 1) each:
# per layer (64 + 32 + 32 + 64 + 128 + 128) * 127 + 64 * 255 = 56,896 + 16,320 = 73,216
LINEAR_FLOPS = 2 * 73_216 + 100 * 127  # 159,132
ATTENTION_MACS = 2 * 4 * 17 * 16 * 2  # 4,352: 2 layers x 4 heads x 17 keys x 16 dims x (QK^T, PV)


def _llama(config: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def _cost(model: torch.nn.Module) -> flopmeter.LLMCost:
    return flopmeter.llm_cost(model, prompt=16, generate=4)


def _torchao_dynamic(model: torch.nn.Module) -> torch.nn.Module:
    quantization = pytest.importorskip("torchao.quantization")
    quantized = copy.deepcopy(model)
    quantization.quantize_(quantized, quantization.Int8DynamicActivationInt8WeightConfig())
    return quantized


def _torch_ao_dynamic(model: torch.nn.Module) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao.quantization's notice
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
        )


@pytest.fixture
def s8s8(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchao's CPU int8 matmul takes its s8s8 path (``torch._int_mm`` on the int8 values) on a
    CPU with AMX or without AVX512-VNNI, else a u8s8 path that also sums the weight's columns;
    pinned here so that the numbers do not depend on the machine (the other path: below)."""
    intmm = pytest.importorskip("torchao.kernel.intmm")
    monkeypatch.setattr(intmm, "_cpu_is_amx_tile_supported", lambda: True)


def test_a_torchao_dynamic_int8_model_counts_integer_macs_and_stored_bytes(
    tiny_llama_config: object, s8s8: None
) -> None:
    model = _llama(tiny_llama_config)
    dense = _cost(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        int8 = _cost(_torchao_dynamic(model))
    assert not [w for w in caught if issubclass(w.category, flopmeter.FlopmeterWarning)]  # followed
    step, float_step = int8.decode(16), dense.decode(16)
    # the same MACs as the float model: 80,128 Linear MACs + the attention's 4,352 = 84,480
    assert step.macs == float_step.macs == LINEAR_WEIGHTS + ATTENTION_MACS == 84_480
    # the Linears' MACs are int8 (torch._int_mm), so not FLOPs: the float model's 171,942 less
    # its Linears' 159,132 = 12,810 (attention, norms, rotary, SiLU, residuals)
    assert float_step.flops == 171_942
    assert step.flops == 171_942 - LINEAR_FLOPS == 12_810
    work = step.report.compression.work_by_dtype
    assert work["int8"] == {"macs": LINEAR_WEIGHTS, "flops": 0}  # 80,128 integer MACs
    assert work["float32"] == {"macs": ATTENTION_MACS, "flops": 12_810}
    paged, executed = step.bytes("paged"), step.bytes("as executed")
    float_paged, float_executed = float_step.bytes("paged"), float_step.bytes("as executed")
    # weights at their stored size, as Int8WeightOnlyConfig's: 80,128 int8 + 1,124 float32
    # scales (4,496) + 1,568 = 86,192 (the float model's 322,080)
    assert float_paged.weights == 322_080
    assert paged.weights == executed.weights == LINEAR_WEIGHTS + SUM_N * 4 + DECODE_OTHER == 86_192
    # the int8 matmul reads its input as int8, 1 B an element where the float one reads 4:
    # 3 * 1,088 = 3,264 B fewer (its int32 output is as large as the float one)
    assert float_paged.activations == 36_824
    assert paged.activations == float_paged.activations - 3 * SUM_K == 33_560
    assert (paged.kv_read, paged.kv_write) == (float_paged.kv_read, float_paged.kv_write) == (17 * 512, 512)
    # as executed, each Linear (one token: K in, N out) also runs the activation's quantization
    # and the rescales (compression overhead, their FLOPs out of the totals): choose_qparams
    # reads 4K and writes 1, quantize_affine reads 4K + its scale 4 and zero point 1 and writes
    # K int8, the int32 result's copy to float32 reads and writes 4N, the two scale multiplies
    # read 4N + 4 (the activation's scale) and 4N (the float32 output) and write 4N each
    # (their read of the weight's scales is the weights' 4,496): 9K + 10 + 24N a Linear;
    # 9 * 1,088 + 10 * 15 + 24 * 1,124 = 9,792 + 150 + 26,976 = 36,918, less the 3,264 above
    assert (
        executed.activations - float_executed.activations == 9 * SUM_K + 10 * LINEARS + 24 * SUM_N - 3 * SUM_K
    )
    assert executed.activations - float_executed.activations == 33_654
    # the prefill (16 tokens; lm_head on the last one): the same stored weights, 15 more
    # embedding rows (15 * 256 = 3,840); int8 inputs: 3 * (16 * 1,024 + 64) = 49,344 B fewer
    prefill, float_prefill = int8.prefill.bytes("paged"), dense.prefill.bytes("paged")
    assert prefill.weights == 86_192 + 15 * 64 * 4 == 90_032
    assert prefill.activations == float_prefill.activations - 3 * (16 * 2 * 512 + 64) == 579_344 - 49_344
    assert int8.prefill.macs == dense.prefill.macs == 1_251_584
    # N is the float model's: the quantized weights are still its parameters
    assert (int8.params.matmul, int8.params.total) == (LINEAR_WEIGHTS, 86_848)


def test_the_u8s8_path_reads_the_int8_weights_twice(
    tiny_llama_config: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a CPU with AVX512-VNNI and no AMX, torchao's int8 matmul shifts the activation to
    uint8 and subtracts 128 x each weight column's sum (``qdata.sum(0)``): that sum reads the
    int8 weights a second time, and the trace counts what ran (docs/llm.md)."""
    intmm = pytest.importorskip("torchao.kernel.intmm")
    if not intmm.torch_version_at_least("2.12.0.dev"):
        pytest.skip("torchao takes the u8s8 path on torch 2.12 and later")
    monkeypatch.setattr(intmm, "_cpu_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(intmm, "_cpu_is_vnni_supported", lambda: True)
    step = _cost(_torchao_dynamic(_llama(tiny_llama_config))).decode(16)
    assert step.macs == 84_480 and step.flops == 12_810  # the sums are overhead: the work is the same
    assert step.bytes("paged").weights == 86_192 + LINEAR_WEIGHTS == 166_320  # 80,128 int8 read again


def test_a_torch_ao_dynamic_model_counts_integer_macs(tiny_llama_config: object) -> None:
    """``quantize_dynamic``'s Linears run ``quantized::linear_dynamic`` (its input quantized inside
    the op): integer MACs; their packed weights are not parameters, but N counts them."""
    model = _llama(tiny_llama_config)
    dense = _cost(model)
    with pytest.warns(CountWarning, match=r"torch\.ao dynamic qint8 per_tensor"):
        int8 = _cost(_torch_ao_dynamic(model))
    step, float_step = int8.decode(16), dense.decode(16)
    assert step.macs == LINEAR_WEIGHTS + ATTENTION_MACS == 84_480
    assert step.flops == 171_942 - LINEAR_FLOPS == 12_810
    assert step.report.compression.work_by_dtype["int8"] == {"macs": LINEAR_WEIGHTS, "flops": 0}
    paged = step.bytes("paged")
    # the int8 values (80,128 B) + 1,568 + the per-tensor scales and zero points, a float64
    # and an int64 per Linear (15 x 16 = 240 B: read with the packed weight since probe 14)
    assert paged.weights == LINEAR_WEIGHTS + DECODE_OTHER + LINEARS * 16 == 81_936
    assert paged.activations == float_step.bytes("paged").activations == 36_824  # reads float inputs
    # N, 2N: the float model's 80,128 matmul weights (lm_head's 6,400 among them), 86,848 in all
    assert (int8.params.matmul, int8.params.lm_head, int8.params.total) == (80_128, 6_400, 86_848)
    assert (dense.params.matmul, dense.params.lm_head, dense.params.total) == (80_128, 6_400, 86_848)
    assert int8.params.trainable == 6_400 + 5 * 64  # packed weights take no gradient: embedding, norms


@pytest.mark.parametrize("quantize", [_torchao_dynamic, _torch_ao_dynamic], ids=["torchao", "torch.ao"])
def test_the_model_is_left_as_it_was(tiny_llama_config: object, quantize: object) -> None:
    """The decode steps ran the model with values and a cache of real zeros: nothing of it is left
    on the model (no tensor on meta), and it computes what it computed before."""
    model = quantize(_llama(tiny_llama_config))  # type: ignore[operator]
    ids = torch.arange(12).reshape(1, 12) % 100
    with torch.no_grad():
        before = model(ids).logits
    state = {name: _values(value) for name, value in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CountWarning)  # torch.ao's bytes: see above
        _cost(model)
    assert not any(t.is_meta for t in (*model.parameters(), *model.buffers()))
    after_state = model.state_dict()
    assert state.keys() == after_state.keys()
    for name, values in state.items():
        after = _values(after_state[name])
        assert len(after) == len(values) and all(map(torch.equal, after, values)), name
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)


def _values(value: object) -> list[torch.Tensor]:
    """Copies of the plain tensors that hold ``value``'s values: a torchao tensor's inner tensors
    (its int8 ``qdata``, scales), a torch.ao packed weight's integers, scale and zero point."""
    if isinstance(value, (tuple, list)):  # torch.ao's packed params: (weight, bias)
        return [t for item in value for t in _values(item)]
    if not isinstance(value, torch.Tensor):
        return []
    if hasattr(value, "__tensor_flatten__"):
        names, _ = value.__tensor_flatten__()
        return [t for name in names for t in _values(getattr(value, name))]
    if value.is_quantized:
        return [value.int_repr().clone(), torch.tensor(value.q_scale()), torch.tensor(value.q_zero_point())]
    return [value.detach().clone()]


def test_a_float_model_keeps_its_cache_on_meta(tiny_llama_config: object) -> None:
    """Only a model whose forward needs values gets a real cache: a float model's decode steps
    are counted on meta (no memory for the cache, no arithmetic)."""
    cost = _cost(_llama(tiny_llama_config))
    assert cost.decode(16).report.options["computed"] == "shapes"
    assert cost.lm.states_device == torch.device("meta")


def test_a_real_cache_too_large_to_allocate_is_a_clear_error() -> None:
    """The real cache is allocated: one this machine cannot hold is said so, with what to lower."""
    from flopmeter.llm.encoder_decoder import decode_state

    # (2^31 x 2^31) float32: 2^64 bytes, more than any machine's (torch: "Storage size ... overflowed")
    with pytest.raises(
        ValueError, match=r"cannot be counted on the meta device .* lower prompt, generate or batch"
    ):
        decode_state((1 << 31, 1 << 31), torch.float32, torch.device("cpu"))
    assert decode_state((2, 3), torch.float32).is_meta  # the default: meta, no memory


def test_a_real_model_whose_router_reads_values_is_counted_with_values() -> None:
    """JetMoE's router reads its scores' values (``Cannot copy out of meta tensor`` on meta): a
    real model is counted as a plain profile() of the same decode step with a real cache counts
    it; its config (a model built on meta) still fails, naming the router (docs/llm.md)."""
    config = transformers.JetMoeConfig(
        num_hidden_layers=2,
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        kv_channels=16,
        vocab_size=100,
        num_local_experts=4,
        num_experts_per_tok=2,
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    step = _cost(model).decode(16)
    assert step.report.options["computed"] == "values"
    with torch.no_grad():  # the same step by hand: a real prefill of 16 tokens, then one token
        cache = model(torch.zeros(1, 16, dtype=torch.long), use_cache=True).past_key_values
    direct = flopmeter.profile(
        model,
        {
            "input_ids": torch.zeros(1, 1, dtype=torch.long),
            "past_key_values": cache,
            "use_cache": True,
            "logits_to_keep": 1,
        },
    )
    assert (step.macs, step.flops) == (direct.macs, direct.flops)
    with pytest.raises(flopmeter.ModelError, match="Cannot copy out of meta tensor"):
        flopmeter.llm_cost(config, prompt=16, generate=4)
