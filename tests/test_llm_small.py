"""LLM mode on small GQA, mixture-of-experts and sliding-window configs, against hand
counts. Dimensions: hidden d = 64, 4 heads of 16, 2 KV heads, MLP 128, vocab 100."""

from fractions import Fraction

import pytest
import torch

import flopmeter
from flopmeter.llm import llm_cost
from flopmeter.llm.fit import fit, interpolate
from flopmeter.llm.training import training_step

transformers = pytest.importorskip("transformers")

SMALL = dict(
    hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128, vocab_size=100
)
# per layer MACs per token: q 64*64 + k 64*32 + v 64*32 + o 64*64 = 12,288; MLP 3*64*128 = 24,576
ATTENTION_PROJECTIONS, MLP, LM_HEAD = 12_288, 24_576, 100 * 64
# attention per layer: scores and weighted sum, 4 heads * (16 + 16) MACs per (query, key) pair
PAIR = 4 * 32


@pytest.fixture(scope="module")
def gqa():
    return llm_cost(transformers.LlamaConfig(num_hidden_layers=2, **SMALL), prompt=64, generate=8)


def test_gqa_parameter_counts(gqa):
    # N_mm = 2 * (12,288 + 24,576) + lm_head 6,400 = 80,128
    assert gqa.lm.params.matmul == 80_128
    assert gqa.lm.params.kaplan == 73_728


def test_gqa_prefill_polynomial(gqa):
    """Logits for the last token only: 2*(2*36,864)*T + 2*6,400 + 2*2*128*T^2."""
    found = gqa.prefill_fit("flops_2mac")
    assert found.exact
    assert found.polynomial.coefficients == (Fraction(12_800), Fraction(147_456), Fraction(512))


def test_gqa_decode_is_linear_and_shrinks_the_cache_not_the_flops(gqa):
    """f(n) = 2*N_mm + 2*L*PAIR*(n+1) = 160,256 + 512*(n+1); the cache is
    2*L*kv_heads*head_dim*2 B = 2*2*2*16*2 = 256 B per token (bf16)."""
    found = gqa.decode_fit("flops_2mac")
    assert found.exact and found.polynomial.coefficients == (Fraction(160_768), Fraction(512))
    assert gqa.decode(100).flops_2mac == 160_256 + 512 * 101
    assert gqa.cache.bytes_per_token == 256
    paged = gqa.decode(100).bytes("paged")
    assert (paged.kv_read, paged.kv_write) == (101 * 256, 256)


def test_batch_scales_flops_and_cache(gqa):
    assert gqa.decode(100, batch=4).flops_2mac == 4 * gqa.decode(100).flops_2mac
    assert gqa.decode(100, batch=4).bytes("paged").kv_read == 4 * 101 * 256


def test_mixture_of_experts_counts_active_experts():
    """Mixtral, 1 layer, 4 experts, top 2: per token attention 12,288 + router 64*4 = 256
    + 2 routed experts x (gate+up 64*256 + down 128*64 = 24,576) = 61,696 MACs."""
    config = transformers.MixtralConfig(
        num_hidden_layers=1, num_local_experts=4, num_experts_per_tok=2, **SMALL
    )
    cost = llm_cost(config, prompt=32)
    params = cost.lm.params
    # N_mm = 12,288 + 256 + 4 x 24,576 + 6,400 = 117,248; active: 2 of the 4 experts
    assert (params.matmul, params.experts) == (117_248, 98_304)
    assert params.active_matmul == 117_248 - 98_304 // 2 == 68_096
    assert cost.prefill.flops_2mac == 2 * (61_696 * 32 + LM_HEAD + PAIR * 32 * 32)
    assert cost.decode(10).flops_2mac == 2 * (61_696 + LM_HEAD + PAIR * 11)
    assert cost.decode_fit().exact  # FLOPs depend on tokens x top-k only, not on the routing
    # bytes: the grouped GEMM reads all 4 experts (98,304 params x 2 B); an engine reads the
    # experts some token was routed to: untouched with probability (1 - 2/4)^tokens each
    step = cost.decode(10)
    executed, paged = step.bytes("as executed"), step.bytes("paged")
    assert executed.weights - paged.weights == 98_304 * 2 // 2  # one token: half the experts
    assert cost.decode(10, batch=3).bytes("as executed").weights - cost.decode(10, batch=3).bytes(
        "paged"
    ).weights == Fraction(98_304 * 2, 8)  # 3 tokens: (1/2)^3 untouched


def test_sliding_window_decode_is_piecewise_and_said_so():
    """Mistral with a window of 8: a decode step attends to at most 8 positions, so its
    cost stops growing; the fit through n = 16, 32 fails its check at n = 4."""
    config = transformers.MistralConfig(num_hidden_layers=2, sliding_window=8, **SMALL)
    cost = llm_cost(config, prompt=4, generate=40)
    assert cost.lm.windows == (8, 8) and not cost.polynomial_expected
    base = 2 * (2 * (ATTENTION_PROJECTIONS + MLP) + LM_HEAD)
    assert cost.decode(4).flops_2mac == base + 2 * 2 * PAIR * 5  # 5 keys: all of them
    assert cost.decode(20).flops_2mac == cost.decode(40).flops_2mac == base + 2 * 2 * PAIR * 8
    assert not cost.decode_fit().exact
    assert cost.cache.bytes(40) == 256 * 8  # each layer keeps its last 8 tokens
    # P5-R5: a chunk of 4 tokens after 10 (positions 10..13) reads, per layer, the union of their
    # windows, positions 3..13: min(14, 8 + 4 - 1) = 11 tokens; 2 layers * 11 * 128 B (bf16) = 2,816 B
    # (it was min(14, 8) = 8 per layer, 2,048 B: the last token's window only)
    assert cost.chunk(10, 4).bytes("paged").kv_read == 2 * 11 * 128
    # not a polynomial: the generation's decode steps come from traced contexts (4 .. 42)
    serving = cost.serving("h100-sxm")
    assert serving.first_decode.flops == cost.decode(4).flops
    assert serving.last_decode.flops == cost.decode(42).flops


def test_a_sliding_window_fit_says_where_it_holds():
    """Past the window (prompt 32, window 8) the decode fit is exact, a constant: every
    step attends 8 positions; the note says the fits were checked past the window and
    that shorter contexts cost less (decode(2) attends 3). Across the window (prompt 4)
    the decode fit fails its check and the note says so."""
    from flopmeter.render.llm import window_note

    config = transformers.MistralConfig(num_hidden_layers=2, sliding_window=8, **SMALL)
    past = llm_cost(config, prompt=32, generate=4)
    fit = past.decode_fit()
    assert fit.exact and fit.polynomial.degree == 0
    assert fit.polynomial(64) == past.decode(64).flops_2mac > past.decode(2).flops_2mac
    assert "checked at n = 16-64, past the window: shorter contexts attend fewer" in window_note(past)
    across = llm_cost(config, prompt=4, generate=4)
    assert not across.decode_fit().exact
    assert "checked at n = 4-32, across the window" in window_note(across)
    wide = transformers.MistralConfig(num_hidden_layers=2, sliding_window=40, **SMALL)
    below = llm_cost(wide, prompt=20, generate=4)  # decode traced at 16, 32, checked at 20
    assert below.decode_fit().exact
    assert "checked at n = 16-32, below the window: past it a step attends" in window_note(below)


def test_qwen2_bias_adds_show_in_exact_flops_not_macs():
    """Qwen2 = the GQA Llama + biases on q, k, v: the same MACs; exact FLOPs add one add
    per q/k/v output: (64 + 32 + 32) x 2 layers = 256 per token."""
    llama = llm_cost(transformers.LlamaConfig(num_hidden_layers=2, **SMALL), prompt=16)
    qwen = llm_cost(
        transformers.Qwen2Config(num_hidden_layers=2, tie_word_embeddings=False, **SMALL), prompt=16
    )
    assert qwen.decode(16).macs == llama.decode(16).macs
    assert qwen.decode(16).flops - llama.decode(16).flops == 256
    assert qwen.prefill.flops - llama.prefill.flops == 256 * 16


def test_serving_times_are_the_roofline_of_each_phase(gqa):
    spec = flopmeter.hardware.get("h100-sxm")
    serving = gqa.serving(spec)
    step = gqa.decode(64)
    memory = float(step.bytes("paged").total) / spec.bandwidth
    assert serving.first_decode.memory_s == pytest.approx(memory)
    assert serving.first_decode.compute_s == pytest.approx(step.flops / spec.peak("bfloat16"))
    # 8 tokens: the prefill yields the first, then 7 decode steps at n = 64 .. 70, each
    # max(FLOPs / peak, bytes / bandwidth) of its own trace
    steps = [gqa.decode(n) for n in range(64, 71)]
    assert serving.decode_seconds == pytest.approx(
        sum(
            max(p.flops / spec.peak("bfloat16"), float(p.bytes("paged").total) / spec.bandwidth)
            for p in steps
        )
    )
    expected = 8 / (serving.ttft + serving.decode_seconds)  # 8 tokens: prefill + 7 steps
    assert serving.tokens_per_second == pytest.approx(expected)
    # beside it, flopmeter's latency estimate of the traced code (report.roofline)
    assert serving.executed_ttft == gqa.prefill.report.roofline(spec).latency
    assert serving.executed_first_tpot == gqa.decode(64).report.roofline(spec).latency >= memory
    # and what most of each estimate goes to: this tiny model's prefill and decode step run
    # nearly the same ops and both wait on the host's per-op overhead
    assert serving.executed_ttft_regime == gqa.prefill.report.roofline(spec).total.regime == "overhead"
    assert serving.executed_first_tpot_regime == gqa.decode(64).report.roofline(spec).total.regime
    # 4-bit weights move a quarter of the weight bytes
    quarter = gqa.serving(spec, weight_bits=4)
    split = step.bytes("paged")
    assert quarter.first_decode.memory_s == pytest.approx(
        float(split.total - split.weights + Fraction(split.weights, 4)) / spec.bandwidth
    )


def test_what_if_bits_outside_1_to_64_are_refused_naming_the_argument(gqa):
    """weight_bits=100 scaled the weight bytes by 100/32 without a word (probe 13): a what-if
    takes 1 to 64 bits per element (float64's), a whole number; the error names the argument."""
    spec = flopmeter.hardware.get("h100-sxm")
    with pytest.raises(
        ValueError, match=r"weight_bits: bits per element must be at most 64 \(float64's\), got 100"
    ):
        gqa.serving(spec, weight_bits=100)
    with pytest.raises(ValueError, match="weight_bits: bits per element must be positive, got 0"):
        gqa.serving(spec, weight_bits=0)
    with pytest.raises(
        TypeError, match="weight_bits: bits per element must be a whole number of bits .* got 4.5"
    ):
        gqa.serving(spec, weight_bits=4.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="weight_bits: .* got True"):
        gqa.serving(spec, weight_bits=True)
    with pytest.raises(ValueError, match="kv_bits: bits per element must be at most 64"):
        gqa.serving(spec, kv_bits=65)
    with pytest.raises(ValueError, match="kv_dtype: bits per element must be at most 64"):
        llm_cost(transformers.LlamaConfig(num_hidden_layers=1, **SMALL), prompt=8, kv_dtype=100)
    # 64 is the top: the bfloat16 model's weight bytes x 64 / 16 = 4, the rest as it is
    split = gqa.decode(64).bytes("paged")
    assert gqa.lm.itemsize == 2
    top = gqa.serving(spec, weight_bits=64)
    assert top.first_decode.memory_s == pytest.approx(float(split.total + 3 * split.weights) / spec.bandwidth)


def test_compute_bound_batch_solves_the_roofline_equation(gqa):
    """Decode turns compute-bound at the smallest B with B*f/peak >= (W + B*s)/bandwidth."""
    spec = flopmeter.hardware.get("h100-sxm")
    one = gqa.decode(64, batch=1)
    split = one.bytes("paged")
    f, w, s = one.flops, split.weights, split.total - split.weights
    batch = gqa.serving(spec).compute_bound_batch
    ridge = Fraction(spec.peak("bfloat16")) / Fraction(spec.bandwidth)
    if batch is None:
        assert f <= ridge * s
    else:
        assert batch * f >= ridge * (w + batch * s) and (batch - 1) * f < ridge * (w + (batch - 1) * s)


def test_training_step_mfu_side_by_side():
    step = training_step(transformers.LlamaConfig(num_hidden_layers=2, **SMALL), tokens=32, recompute=True)
    mfu = step.mfu("a100-sxm-80gb", devices=2, step_time=1e-6)
    per_token = step.conventions()
    peak = flopmeter.hardware.get("a100-sxm-80gb").peak("bfloat16")
    assert mfu["traced full"] == pytest.approx(per_token["traced full"] * 32 / 1e-6 / (2 * peak))
    assert per_token["traced causal"] < per_token["traced full"]
    assert mfu["HFU (traced full + recompute/optimizer)"] > mfu["traced full"]  # one more forward
    with pytest.raises(ValueError, match="exactly one of step_time"):
        step.mfu("a100-sxm-80gb")


def test_user_model_is_left_as_it_was():
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(num_hidden_layers=1, **SMALL)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cost = llm_cost(model, prompt=8)
    assert cost.decode(8).flops_2mac > 0 and cost.lm.dtype == torch.float32
    assert not model.training and all(not p.is_meta for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_arguments_are_clear_errors():
    config = transformers.LlamaConfig(num_hidden_layers=1, **SMALL)
    with pytest.raises(ValueError, match="prompt must be a positive whole number"):
        llm_cost(config, prompt=0)
    with pytest.raises(ValueError, match="causal must be"):
        llm_cost(config, prompt=8, causal="half")
    with pytest.raises(TypeError, match="transformers config"):
        llm_cost(torch.nn.Linear(2, 2), prompt=8)


def test_exact_interpolation_and_check():
    # 3x^2 + 2x + 1 through x = 1, 2, 3; checked at 4 (57); a wrong check is refused
    assert interpolate([(1, 6), (2, 17), (3, 34)]).coefficients == (1, 2, 3)
    assert fit([(1, 6), (2, 17), (3, 34)], (4, 57)).exact
    assert not fit([(1, 6), (2, 17), (3, 34)], (4, 58)).exact
    with pytest.raises(ValueError, match="distinct"):
        interpolate([(1, 1), (1, 2)])


def test_chunked_prefill_counts_the_bottom_right_causal_half(gqa):
    """A chunk of 3 tokens after 6 cached: transformers passes a boolean mask where query i
    sees keys 0 .. 6+i. Full: 3 x 9 = 27 scores per head; needed: 3*6 + 3*4/2 = 24.
    MACs: 3 tokens x 2*36,864 + lm_head 6,400 (last token) + attention 2 layers x 4 heads
    x scores x (16 + 16)."""
    full = gqa.chunk(6, 3)
    needed = gqa.variant(causal="needed").chunk(6, 3)
    assert full.macs == 3 * 73_728 + 6_400 + 2 * 4 * 27 * 32
    assert needed.macs == 3 * 73_728 + 6_400 + 2 * 4 * 24 * 32
    # paged: the chunk writes 3 slots (256 B per token) and reads all 9 tokens
    paged = full.bytes("paged")
    assert (paged.kv_write, paged.kv_read) == (3 * 256, 9 * 256)


def test_bottom_right_causal_scores():
    from flopmeter.formulas.attention import causal_bottom_right_row_lengths_sum as kept

    assert kept(3, 9) == 3 * 6 + 3 * 4 // 2 == 24  # a chunk of 3 after 6
    assert kept(1, 129) == 129  # decode: the new token sees all n+1 keys
    assert kept(4, 4) == 10  # a whole prefill: T(T+1)/2, as top-left
    assert kept(5, 3) == 6  # more queries than keys: the first two see none


class _Attend(torch.nn.Module):
    def forward(self, q, k, v, mask):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@pytest.mark.parametrize("pad", [False, True])
def test_only_an_exact_bottom_right_causal_mask_is_counted_as_needed(pad):
    """2 heads, 3 queries, 9 keys, head size 16: full 2*3*9*(16+16) = 1,728 MACs; the
    bottom-right causal mask keeps 24 of 27 scores: 2*24*32 = 1,536. A mask that also pads
    (key 0 hidden) is not that pattern: counted in full."""
    q, k = torch.randn(1, 2, 3, 16), torch.randn(1, 2, 9, 16)
    mask = torch.ones(3, 9, dtype=torch.bool).tril(6)
    if pad:
        mask[:, 0] = False
    report = flopmeter.profile(_Attend(), (q, k, k, mask), causal="needed")
    assert report.macs == (1_728 if pad else 1_536)


class _AttendByKeyword(torch.nn.Module):
    def forward(self, q):
        return torch.nn.functional.scaled_dot_product_attention(query=q, key=q, value=q, is_causal=True)


@pytest.mark.parametrize("shapes_only", [True, False])
def test_sdpa_called_with_keywords_is_recorded_in_one_order(shapes_only):
    """Q K^T 1*2*8*8*4 = 512 MACs, P V 512: 1,024 in full; causal as needed keeps
    8*9/2 = 36 of 64 scores: 2*36*(4+4) = 576."""
    q = torch.randn(1, 2, 8, 4)
    assert flopmeter.profile(_AttendByKeyword(), q, shapes_only=shapes_only).macs == 1_024
    assert flopmeter.profile(_AttendByKeyword(), q, shapes_only=shapes_only, causal="needed").macs == 576


def test_paged_activations_leave_out_the_caches_copy_of_new_tokens(gqa):
    """P3-L19: DynamicCache copies the new keys and values onto its empty placeholder
    (one cat per layer for K and one for V); an engine writes them once (the KV write),
    so the paged view's activations are the executed ones less that copy. Here bf16:
    a prefill of T = 64 copies 2 layers * 2 (K, V) * 64 tokens * 2 KV heads * 16 * 2 B
    = 16,384 B, read once and written once (32,768 B); a decode step's empty-cache run
    copies 1 token: 2 * 2 * 1 * 2 * 16 * 2 = 256 B, read and written (512 B)."""
    prefill = gqa.prefill
    assert prefill.bytes("paged").activations == prefill.bytes("as executed").activations - 32_768
    assert prefill.bytes("paged").kv_write == 64 * 256  # T tokens * 256 B: written once
    step = gqa.decode(100)
    assert step.bytes("paged").activations == step.bytes("as executed").activations - 512


def test_chunked_attention_layers_read_their_chunk_only():
    """P3-L23, Llama 4 (attention_chunk_size = 8): three chunked layers and one full one.
    A paged decode step at n cached tokens reads, per chunked layer, the tokens of the
    chunk the new token (position n) is in, n % 8 + 1; the full layer reads n + 1. bf16:
    2 (K, V) * 2 KV heads * 16 * 2 B = 128 B per token and layer."""
    config = transformers.Llama4TextConfig(
        num_hidden_layers=4,
        attention_chunk_size=8,
        hidden_size=64,
        intermediate_size=128,
        intermediate_size_mlp=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        vocab_size=100,
        num_local_experts=2,
    )
    cost = llm_cost(config, prompt=16, generate=8)
    assert cost.lm.chunks == (8, 8, 8, None)  # layer_types: chunked x 3, full
    assert cost.cache.bytes_per_token_per_layer == 128
    # n = 20: chunked 3 * (20 % 8 + 1 = 5) = 15, full 21: 36 tokens * 128 B = 4,608 B
    assert cost.decode(20).bytes("paged").kv_read == 4_608
    # n = 16 (a chunk starts): 3 * 1 + 17 = 20 tokens = 2,560 B
    assert cost.decode(16).bytes("paged").kv_read == 2_560
    # the cache held at 24 tokens (position 23: 23 % 8 + 1 = 8 per chunked layer): 3*8 + 24 = 48
    assert cost.cache.bytes(24) == 48 * 128
    assert not cost.polynomial_expected  # piecewise in the context, as sliding windows
    # P5-R5: a chunk of 4 new tokens after 6 (positions 6..9) crosses the chunk boundary at 8:
    # tokens 6, 7 read chunk 0 (positions 0..7), tokens 8, 9 chunk 1 (8, 9): each chunked layer
    # reads 10 tokens, the full one 10: 40 tokens * 128 B = 5,120 B (it was 3 * 2 + 10 = 16
    # tokens, 2,048 B: only the chunk of the last token)
    assert cost.chunk(6, 4).bytes("paged").kv_read == 5_120
    assert cost.cache.tokens_read(20, 1) == cost.cache.tokens_held(21) == 36  # one token: as held


def test_only_the_caches_own_fill_leaves_the_paged_activations():
    """P5-R8: the copy taken out is a cat of DynamicCache's placeholder (shape (0,)) and a
    (batch, heads, tokens, dim) tensor of the cache's dim; a model's own cat onto an empty
    tensor stays activations."""
    from types import SimpleNamespace

    from flopmeter.cost import Cost
    from flopmeter.llm.kv import KVCache
    from flopmeter.llm.phases import cache_fill_bytes
    from flopmeter.report import OpRecord

    cache = KVCache(layers=1, kv_heads=2, head_dim=16, bits=32, windows=(None,))

    def cat(*shapes):
        # (1, 2, 16, 16) float32: 512 values, 2,048 B read and 2,048 B written
        return OpRecord(
            "aten.cat", "m", "forward", "float32", Cost(bytes_read=2048, bytes_written=2048), shapes
        )

    fills = [cat((0,), (1, 2, 16, 16)), cat((0,), (1, 2, 16, 16))]  # K and V
    own = [cat((0,), (1, 2, 16, 8)), cat((1, 2, 0, 16), (1, 2, 16, 16)), cat((0,), (512,))]
    assert cache_fill_bytes(SimpleNamespace(ops=fills + own), cache) == 2 * (2048 + 2048)
