"""The reference page's Llama-2-7B numbers, traced on the meta device, exactly.

Llama-2-7B: L = 32, d = 4096, H = 32, head_dim 128, vocab 32,000, MLP 11,008.
N_mm = 6,607,077,376 (matmul weights, lm_head included); N_total = 6,738,415,616.
Each trace takes well under a second on meta; the model is built once per module.
"""

import pytest

from flopmeter.llm import llm_cost
from flopmeter.llm.training import training_step

transformers = pytest.importorskip("transformers")

L, D, H, HEAD_DIM, T_TRAIN = 32, 4096, 32, 128, 4096
N_MM, N_TOTAL = 6_607_077_376, 6_738_415_616


def llama2_7b():
    return transformers.LlamaConfig(
        num_hidden_layers=32,
        hidden_size=4096,
        intermediate_size=11008,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
    )


@pytest.fixture(scope="module")
def all_logits():
    """Prefill with logits at every position (as the reference table), full attention."""
    return llm_cost(llama2_7b(), prompt=4096, all_logits=True)


def test_parameter_counts(all_logits):
    params = all_logits.lm.params
    assert (params.matmul, params.total) == (N_MM, N_TOTAL)
    # embeddings 32,000 * 4,096 = 131,072,000; norms 65 * 4,096 = 266,240
    assert params.embedding == 131_072_000
    assert params.total - params.matmul - params.embedding == 65 * 4096


@pytest.mark.parametrize(
    ("tokens", "flops"),
    [
        (128, 1_700_001_742_848),
        (512, 6_903_086_186_496),
        (2048, 29_261_612_187_648),
        (4096, 62_921_270_886_400),
    ],
)
def test_prefill_table(all_logits, tokens, flops):
    """F(T) = 2*N_mm*T + 4*L*d*T^2 (2 x MACs, all logits, full attention)."""
    assert flops == 2 * N_MM * tokens + 4 * L * D * tokens**2
    assert all_logits.prefill_at(tokens).flops_2mac == flops


def test_prefill_fit_is_the_reference_polynomial(all_logits):
    found = all_logits.prefill_fit("flops_2mac")
    assert found.exact and found.check == (4096, 62_921_270_886_400)
    c, b, a = found.polynomial.coefficients
    assert (a, b, c) == (4 * L * D, 2 * N_MM, 0)  # 524,288 T^2 + 13,214,154,752 T


def test_prefill_per_token_full_and_causal(all_logits):
    """At T = 4096: 15.362e9 per token (full) and 14.288e9 (causal) against 2*N_total = 13.477e9."""
    full = all_logits.prefill.flops_2mac // 4096
    assert full == 2 * N_MM + 4 * L * D * 4096 == 15_361_638_400
    causal = all_logits.variant(causal="needed").prefill.flops_2mac
    # causal keeps T(T+1)/2 scores: 2*N_mm + 4*L*d*(T+1)/2 per token = 14,288,158,720
    assert causal == (2 * N_MM + 2 * L * D * 4097) * 4096
    assert round(causal / 4096 / 1e9, 3) == 14.288 and round(2 * N_TOTAL / 1e9, 3) == 13.477


@pytest.mark.parametrize(
    ("context", "flops"), [(128, 13_281_787_904), (4096, 15_362_162_688), (32768, 30_394_548_224)]
)
def test_decode_values(all_logits, context, flops):
    """f(n) = 2*N_mm + 4*L*d*(n+1): one new token attends to all n+1 positions."""
    assert flops == 2 * N_MM + 4 * L * D * (context + 1)
    assert all_logits.decode(context).flops_2mac == flops


def test_decode_fit_and_causal_needed_decode(all_logits):
    found = all_logits.decode_fit("flops_2mac")
    alpha, beta = found.polynomial.coefficients
    assert (alpha, beta) == (2 * N_MM + 4 * L * D, 4 * L * D)
    # counted as needed, a decode step is unchanged: the new token needs all n+1 keys
    needed = all_logits.variant(causal="needed")
    assert needed.decode(128).flops_2mac == 13_281_787_904


def test_decode_bytes_paged_read_the_whole_cache_once(all_logits):
    """bf16: KV per token 2*32*32*128*2 = 524,288 B. Paged at n = 128: reads 129 tokens,
    writes 1; as executed, DynamicCache's cat also copies the cache."""
    step = all_logits.decode(128)
    paged, executed = step.bytes("paged"), step.bytes("as executed")
    assert (paged.kv_read, paged.kv_write) == (129 * 524_288, 524_288)
    # every weight is read once except the embedding table (one row: 4096*2 B), and the
    # rotary inv_freq buffer (64 float32 = 256 B)
    assert paged.weights == 2 * (N_TOTAL - 131_072_000) + 2 * 4096 + 256
    assert executed.weights == paged.weights
    # the empty-cache step's copy of the new token onto DynamicCache's placeholder, read and
    # written: an engine's single write of it is the paged KV write (P3-L19)
    assert executed.activations - paged.activations == 2 * 524_288
    # what 128 cached tokens add to an empty-cache step: cat reads them and writes them
    # again (with the new token, which the empty step also writes), attention reads them
    assert executed.kv_write == 128 * 524_288
    assert executed.kv_read == (128 + 128) * 524_288


def test_training_step_at_4096():
    """Forward + backward, batch 1, T = 4096: the reference's 188,763,812,659,200 =
    3 x forward = (6*N_mm + 12*L*H*head_dim*T)*T, exactly (2 x MACs: the attention
    backward's D = rowsum(dO * O) is a reduction, in exact FLOPs but not in MACs)."""
    step = training_step(llama2_7b(), tokens=T_TRAIN)
    reference = (6 * N_MM + 12 * L * H * HEAD_DIM * T_TRAIN) * T_TRAIN
    assert reference == 188_763_812_659_200 == 3 * 62_921_270_886_400
    assert step.forward_flops == 62_921_270_886_400
    assert step.model_flops == reference
    conventions = step.conventions()
    assert conventions["6N+12LHQT (N=N_mm)"] == reference / T_TRAIN
    assert conventions["6N (N=N_total)"] == 6 * N_TOTAL
