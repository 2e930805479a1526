"""KV-cache bytes per token and the MFU worked examples of the reference page."""

import pytest
import torch

from flopmeter.llm.kv import KVCache, bits_of, kv_cache
from flopmeter.llm.model import language_model
from flopmeter.llm.training import palm_flops_per_token, six_n, utilization

transformers = pytest.importorskip("transformers")


def _llama(layers, hidden, heads, kv_heads, mlp, vocab):
    return transformers.LlamaConfig(
        num_hidden_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=mlp,
        vocab_size=vocab,
    )


@pytest.mark.parametrize(
    ("config", "per_token"),
    [
        (_llama(32, 4096, 32, 32, 11008, 32000), 524_288),  # Llama-2-7B: 2*32*32*128*2
        (_llama(32, 4096, 32, 8, 14336, 128256), 131_072),  # Llama-3-8B (GQA 32/8): 2*32*8*128*2
        (_llama(80, 8192, 64, 8, 28672, 32000), 327_680),  # Llama-2-70B: 2*80*8*128*2
    ],
    ids=["llama-2-7b", "llama-3-8b", "llama-2-70b"],
)
def test_kv_bytes_per_token_bf16(config, per_token):
    lm = language_model(config)  # built on meta, bfloat16
    assert lm.dtype == torch.bfloat16 and all(p.is_meta for p in lm.model.parameters())
    cache = kv_cache(lm)
    assert cache.bytes_per_token == per_token
    assert cache.bytes_per_token_per_layer * lm.layers == per_token
    assert kv_cache(lm, "fp8").bytes_per_token == per_token // 2
    assert kv_cache(lm, "int4").bytes_per_token == per_token // 4
    # a batch of 8 sequences of 4,096 tokens
    assert cache.bytes(4096, batch=8) == per_token * 4096 * 8


def test_sliding_window_layers_hold_at_most_the_window():
    cache = KVCache(layers=4, kv_heads=2, head_dim=8, bits=16, windows=(4, None, 4, None))
    # per layer 2*2*8*2 = 64 B; at 10 tokens: 4 + 10 + 4 + 10 = 28 token slots
    assert cache.bytes(10) == 64 * 28


def test_unknown_cache_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown cache dtype 'fp7'"):
        bits_of("fp7")


def test_palm_540b_mfu():
    """N = 540.35e9, L = 118, H = 48, Q = 256, T = 2048: 6N + 12LHQT = 3.2777e12 FLOPs per
    token; 238.3k tokens/s on 6144 chips x 275 TFLOP/s -> MFU 46.2 %."""
    per_token = palm_flops_per_token(540.35e9, 118, 48, 256, 2048)
    assert round(per_token / 1e12, 4) == 3.2777
    assert round(100 * utilization(per_token, 238.3e3, 275e12, devices=6144), 1) == 46.2


def test_gpt3_training_flops():
    """6 N D = 6 x 175e9 x 300e9 = 3.15e23."""
    assert six_n(175e9) * 300e9 == pytest.approx(3.15e23)


def test_llama2_7b_mfu_depends_on_the_convention():
    """184,320 A100-hours for 2T tokens at T = 4096, 312 TFLOP/s: 39.1 % with 6 N_total D,
    44.5 % with PaLM's form (N = N_mm) -- the convention moves MFU by 5 points."""
    n_total, n_mm = 6_738_415_616, 6_607_077_376
    seconds = 184_320 * 3600
    tokens_per_second = 2e12 / seconds  # per device: devices=1 over the GPU-seconds
    assert round(100 * utilization(six_n(n_total), tokens_per_second, 312e12), 1) == 39.1
    palm = palm_flops_per_token(n_mm, 32, 32, 128, 4096)
    assert round(100 * utilization(palm, tokens_per_second, 312e12), 1) == 44.5


def test_llama2_70b_decode_at_32768_on_meta():
    """The benchmark's number by hand. Per layer: q, o 8192^2; k, v 8192*1024 (GQA 64/8);
    MLP 3*8192*28672 -> 855,638,016; x 80 + lm_head 8192*32000 = N_mm 68,713,185,280.
    f(n) = 2 N_mm + 4 L (H head_dim) (n+1) = 137,426,370,560 + 4*80*8192*32,769."""
    from flopmeter.llm import llm_cost

    cost = llm_cost(_llama(80, 8192, 64, 8, 28672, 32000), prompt=8)
    assert cost.lm.params.matmul == 68_713_185_280
    assert cost.decode(32768).flops_2mac == 137_426_370_560 + 4 * 80 * 8192 * 32769 == 223_328_337_920
