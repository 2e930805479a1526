"""Probe-3 findings in LLM mode (P3-L ids in docs/probe-3/llm.md): each test failed before its fix."""

import pytest
import torch
import torch.nn.functional as F

import flopmeter
from flopmeter.registry import CountOptions, cost_of
from flopmeter.tracing.events import OpEvent, TensorMeta


class CausalAttention(torch.nn.Module):
    """One SDPA call with is_causal=True over (1, 2 heads, 8 tokens, head size 4)."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_causal_needed_backward_counts_the_kept_half() -> None:
    """P3-L3: the CPU SDPA backward's is_causal was read from dropout_p (argument 6, 0.0), so
    training under causal="needed" counted the backward's scores dense."""
    q, k, v = (torch.randn(1, 2, 8, 4, requires_grad=True) for _ in range(3))
    report = flopmeter.profile(CausalAttention(), (q, k, v), backward=True, causal="needed")
    # kept scores per head: 8*9/2 = 36; forward MACs = 2 heads * 36 * (4 + 4) = 576
    assert report.forward.macs == 576
    # backward MACs = 2 x forward's (dV, dP, dQ, dK over the kept scores) = 1,152 (dense: 2*2*64*8 = 2,048)
    assert report.backward_cost.macs == 1152


@pytest.mark.parametrize(
    "op",
    [
        "_scaled_dot_product_flash_attention_for_cpu_backward",
        "_scaled_dot_product_flash_attention_backward",
        "_scaled_dot_product_efficient_attention_backward",
        "_scaled_dot_product_cudnn_attention_backward",
    ],
)
@pytest.mark.parametrize("causal", [False, True])
def test_every_sdpa_backward_reads_is_causal_from_its_schema(op: str, causal: bool) -> None:
    """P3-L3: positional arguments laid out from torch's own schema of each backward op
    (CUDA ones cannot run here); tensors (1, 2, 8, 4), scalars 0, is_causal as given."""
    schema = getattr(torch.ops.aten, op).default._schema
    args = []
    for argument in schema.arguments:
        if argument.kwarg_only:
            break
        if argument.name == "is_causal":
            args.append(causal)
        elif str(argument.type).startswith("Tensor"):
            args.append(TensorMeta((1, 2, 8, 4), "float32", 4))
        elif str(argument.type) == "bool[4]":
            args.append([True, True, True, False])
        else:
            args.append(0)
    event = OpEvent("aten." + op, tuple(args), {}, ())
    cost = cost_of(event, CountOptions(causal="needed"))
    # backward MACs = 2 * heads * scores * (E + Ev): causal 2*2*36*8 = 1,152, dense 2*2*64*8 = 2,048
    assert cost is not None and cost.macs == (1152 if causal else 2048)


TINY_SIZES = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 100}  # fmt: skip


def tiny_llama(**changes: int) -> object:
    transformers = pytest.importorskip("transformers")
    return transformers.LlamaConfig(**TINY_SIZES | changes)


def test_training_step_traced_causal_is_three_causal_forwards() -> None:
    """P3-L3 seen by a user: `--training` printed 501.50 K per token under "traced causal"."""
    from flopmeter.llm.training import training_step

    step = training_step(tiny_llama(), tokens=16)
    # N_mm = 2 layers * (q 4096 + k 2048 + v 2048 + o 4096 + mlp 3*8192) + lm_head 6400 = 80,128
    # full:   6 N_mm + 12 L d T     = 480,768 + 12*2*64*16 = 505,344 per token
    # causal: 6 N_mm + 6 L d (T+1)  = 480,768 + 6*2*64*17  = 493,824 per token
    conventions = step.conventions()
    assert conventions["traced full"] == 505_344
    assert conventions["traced causal"] == 493_824


def falcon(**changes: object) -> object:
    transformers = pytest.importorskip("transformers")
    return transformers.FalconConfig(
        num_hidden_layers=2, hidden_size=64, num_attention_heads=4, vocab_size=100, **changes
    )


def test_falcon_multi_query_decodes_with_its_one_key_head() -> None:
    """P3-L1: Falcon-7B's multi_query config says num_kv_heads = H (4) but stores one key/value
    head; the decode trace filled a 4-head cache and failed inside FalconAttention."""
    cost = flopmeter.llm_cost(falcon(), prompt=24)
    assert cost.lm.kv_heads == 1
    # 2 (K and V) * 2 layers * 1 head * head_dim 16 * 2 bytes (bf16) = 128 B per token
    assert cost.cache.bytes_per_token == 128
    # attention of one token over n+1 = 25 positions: 4 L H hd (n+1) = 4*2*4*16*25 = 12,800,
    # the rest as at an empty cache (the fit's slope 4 L d = 512 per cached token)
    assert cost.decode(24).flops_2mac - cost.decode(0).flops_2mac == 512 * 24
    assert cost.decode_fit().polynomial is not None


def test_falcon_new_architecture_caches_num_kv_heads() -> None:
    """P3-L2: Falcon-40B's layout (new_decoder_architecture, num_kv_heads=2 of 4) was sized
    with all 4 heads: twice the KV cache an engine holds."""
    cost = flopmeter.llm_cost(falcon(new_decoder_architecture=True, num_kv_heads=2), prompt=24)
    # 2 * 2 layers * 2 heads * 16 * 2 bytes = 256 B per token
    assert cost.cache.bytes_per_token == 256
    assert cost.decode(24).bytes("paged").kv_read == 256 * 25  # n+1 = 25 tokens read


def test_deepseek_mla_decodes_and_caches_its_latent() -> None:
    """P3-L4: DeepSeek-V3's attention hands its cache the compressed latent (kv_lora_rank 16
    as keys, qk_rope_head_dim 8 as values, one head); the decode trace filled
    (kv_heads 4, head_dim 8) tensors and failed."""
    transformers = pytest.importorskip("transformers")
    config = transformers.DeepseekV3Config(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
        num_attention_heads=4, num_key_value_heads=4, vocab_size=100, q_lora_rank=32, kv_lora_rank=16,
        qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16, n_routed_experts=4,
        num_experts_per_tok=2, first_k_dense_replace=1, n_group=1, topk_group=1,
    )  # fmt: skip
    cost = flopmeter.llm_cost(config, prompt=24)
    # 2 layers * (16 + 8) elements * 2 bytes = 96 B per token
    assert cost.cache.bytes_per_token == 96
    # each step re-expands every cached latent with kv_b_proj (16 -> 4 heads * (16 nope + 16 v) = 128:
    # 2,048 MACs) and attends it (4 heads * (24 + 16) = 160 MACs): 2,208 MACs per token and layer
    assert cost.decode(24).macs - cost.decode(0).macs == 2 * 2208 * 24
    from flopmeter.render.llm import kv_lines

    assert kv_lines(cost)[0].startswith("KV cache (layers x 1 cached head(s) x (latent 16 + rope key 8)")


TINY = ["transformers:LlamaConfig", "--set", "num_hidden_layers=1", "--set", "hidden_size=64", "--set",
        "intermediate_size=128", "--set", "num_attention_heads=4", "--set", "vocab_size=100", "--prompt", "16"]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--step-time", "1", "--roofline", "h100-sxm"],
            "--step-time: options of a training step: add --training",
        ),
        (["--recompute", "--optimizer"], "--recompute, --optimizer: options of a training step"),
        (["--devices", "8"], "--devices: options of a training step"),
        (["--devices", "0", "--training"], "--devices must be at least 1, got 0"),
        (["--training", "--devices", "8"], "--devices counts the devices of a measured step"),
        (["--training", "--kv-dtype", "fp8"], "--kv-dtype: not for --training"),
        (["--training", "--format", "json"], "--format json: not for --training"),
        (["--training", "--depth", "1"], "--depth: not for --training"),
        (["--training", "--step-time", "1"], "MFU needs exactly one --roofline preset"),
    ],
)
def test_options_of_the_other_llm_mode_are_refused_not_ignored(argv: list[str], message: str) -> None:
    """P3-L5: serving ignored --step-time/--recompute/--devices and --training ignored
    --format json, --kv-dtype, --depth (exit 0, the option had no effect)."""
    from flopmeter.cli import run

    code, out, err = run([*TINY, *argv])
    assert code == 2 and message in err and out == ""
    assert "on meta ..." not in err  # refused before any trace


def test_grouped_mm_built_on_meta_equals_the_bf16_kernel_and_the_cpu_kernel() -> None:
    """P3-L6: torch's meta kernel of _grouped_mm takes bfloat16 only; the CPU kernel takes
    float32 too. The built result matches both (shape, dtype, strides)."""
    from flopmeter.tracing.fast_meta import fast_meta
    from flopmeter.tracing.recorder import _op_facts

    offs = torch.tensor([2, 4, 6, 8], dtype=torch.int32)
    a, b = torch.zeros(8, 16), torch.zeros(4, 32, 16).transpose(-2, -1)  # 8 rows, 4 experts of 16 -> 32
    op = torch.ops.aten._grouped_mm.default
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        args = (a.to("meta", dtype), b.to("meta", dtype), offs.to("meta"))
        ours = fast_meta(_op_facts(op), args, [t for t in args])
        cpu = op(a.to(dtype), b.to(dtype), offs)
        assert (ours.shape, ours.stride(), ours.dtype) == (cpu.shape, cpu.stride(), cpu.dtype)
    bf16 = (a.to("meta", torch.bfloat16), b.to("meta", torch.bfloat16), offs.to("meta"), None, torch.float32)
    assert fast_meta(_op_facts(op), bf16, list(bf16[:3])) is None  # another out_dtype: the kernel decides
    with pytest.raises(RuntimeError, match="output dtype must match"):
        op(*bf16)


def test_a_float32_mixtral_is_counted_on_meta() -> None:
    """P3-L6 seen by a user: llm_cost(MixtralConfig(...), dtype="float32") (or --dtype float16)
    failed with "the model raised RuntimeError ... Check that the inputs match"."""
    transformers = pytest.importorskip("transformers")
    sizes = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 100, "num_local_experts": 4, "num_experts_per_tok": 2}  # fmt: skip
    cost = flopmeter.llm_cost(
        transformers.MixtralConfig(**sizes), prompt=24, all_logits=True, dtype="float32"
    )
    # active N_mm per token: 2 layers * (attention 12,288 + router 256 + 2 of 4 experts * 3*64*128) + lm_head 6,400
    #   = 2 * (12,288 + 256 + 49,152) + 6,400 = 129,792;  2 N T + 4 L d T^2 = 259,584*24 + 512*576 = 6,524,928
    assert cost.prefill.flops_2mac == 6_524_928
    assert cost.decode(24).flops_2mac == 259_584 + 512 * 25


def test_a_mixture_of_experts_trains_by_its_active_n() -> None:
    """P3-L7: `--training` on Mixtral put N_mm of all experts into 6N + 12LHQT: 1.39 M per token
    against 803 K traced, an MFU 1.7x too high here (3.6x for Mixtral 8x7B)."""
    from flopmeter.llm.training import training_step

    transformers = pytest.importorskip("transformers")
    sizes = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 100, "num_local_experts": 4, "num_experts_per_tok": 2}  # fmt: skip
    step = training_step(transformers.MixtralConfig(**sizes), tokens=16)
    conventions = step.conventions()
    # active N_mm = 129,792 (see test_a_float32_mixtral_is_counted_on_meta);
    # 6 N + 12 L H Q T = 778,752 + 12*2*4*16*16 = 803,328: the traced step exactly
    assert conventions["6N+12LHQT (N=active N_mm)"] == 803_328 == conventions["traced full"]
    # active N_total = 234,816 - (228,096 - 129,792) = 136,512; 6 N = 819,072
    assert conventions["6N (N=active N_total)"] == 819_072
    mfu = step.mfu("a100-sxm-80gb", step_time=1.0)
    assert mfu["6N+12LHQT (N=active N_mm)"] == pytest.approx(803_328 * 16 / 312e12)


@pytest.mark.parametrize("kind", ["LlamaModel", "LlamaForSequenceClassification"])
def test_a_decoder_without_lm_head_is_refused(kind: str) -> None:
    """P3-L8: llm_cost(LlamaModel(config)) printed a prefill without lm_head (2 d V per token
    missing) and a classifier's was counted as a language model's, without a word."""
    transformers = pytest.importorskip("transformers")
    model = getattr(transformers, kind)(tiny_llama())
    with pytest.raises(ValueError, match=f"needs a causal language model with its lm_head; {kind} has none"):
        flopmeter.llm_cost(model, prompt=16)


class Attend(torch.nn.Module):
    """SDPA over query heads and key/value heads as given (enable_gqa optional)."""

    def __init__(self, gqa: bool) -> None:
        super().__init__()
        self.gqa = gqa

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, k, is_causal=True, enable_gqa=self.gqa)


@pytest.mark.parametrize("gqa", [False, True])
def test_attention_whose_heads_do_not_match_raises_as_on_the_cpu(gqa: bool) -> None:
    """P3-L9: `--set num_key_value_heads=3` with 4 heads: the CPU raises "size of tensor a (4)
    must match ... (3)", the meta trace printed a prefill of 651,776 FLOPs."""
    q, k = torch.empty(1, 4, 8, 16, device="meta"), torch.empty(1, 3, 8, 16, device="meta")
    with pytest.raises(flopmeter.ModelError, match="must match|divisible|heads"):
        flopmeter.profile(Attend(gqa), (q, k))


def test_grouped_and_broadcast_key_heads_still_count() -> None:
    # 4 query heads over 2 (enable_gqa) or 1 (broadcast) key/value heads, 8 tokens, head size 16:
    # dense scores 8*8 per query head, MACs 4 * 64 * (16 + 16) = 8,192
    q = torch.empty(1, 4, 8, 16, device="meta")
    assert flopmeter.profile(Attend(True), (q, torch.empty(1, 2, 8, 16, device="meta"))).macs == 8192
    assert flopmeter.profile(Attend(False), (q, torch.empty(1, 1, 8, 16, device="meta"))).macs == 8192


def test_sliding_window_rows_by_hand() -> None:
    from flopmeter.formulas.attention import causal_bottom_right_row_lengths_sum as kept

    assert kept(24, 24, 8) == 8 * 9 // 2 + 16 * 8 == 164  # prefill of 24, window 8
    assert kept(4, 12, 8) == 8 * 4 == 32  # a chunk of 4 after 8 cached: every row sees 8
    assert kept(1, 30, 8) == 8  # a decode step over a static cache of 30: the window
    assert kept(24, 24, None) == kept(24, 24, 100) == 24 * 25 // 2  # a window past the length


def test_a_sliding_window_mask_is_counted_as_needed() -> None:
    """P3-L10: Mistral's sliding-window mask was not recognised, so causal="needed" counted the
    dense T x T scores (as "full") for every sliding layer."""
    transformers = pytest.importorskip("transformers")
    config = transformers.MistralConfig(**TINY_SIZES, sliding_window=8)
    full = flopmeter.llm_cost(config, prompt=24, all_logits=True, dtype="float32")
    needed = full.variant(causal="needed")
    # kept scores per head: 8*9/2 + 16*8 = 164 of 576; fewer MACs: 2 layers * 4 heads * 412 * (16 + 16)
    # = 105,472; in 2 x MACs 210,944: 4,141,056 - 210,944 = 3,930,112
    assert full.prefill.flops_2mac == 4_141_056
    assert needed.prefill.flops_2mac == 3_930_112


def test_the_users_config_is_left_as_it_was() -> None:
    """P3-L15: llm_cost(config, dtype="float16") wrote dtype=float16 (and the attention and
    experts implementations) into the user's config: their next from_config built float16."""
    transformers = pytest.importorskip("transformers")
    config = tiny_llama()
    before = {key: str(value) for key, value in vars(config).items()}
    flopmeter.llm_cost(config, prompt=16, dtype="float16")
    from flopmeter.llm.training import training_step

    training_step(config, tokens=8)
    assert {key: str(value) for key, value in vars(config).items()} == before
    model = transformers.AutoModelForCausalLM.from_config(config)
    assert next(model.parameters()).dtype == torch.float32


def test_fits_stay_within_a_learned_position_table() -> None:
    """P3-L16: GPT-2 with n_positions=32, --prompt 20 --generate 5 (25 positions, all valid)
    failed: the fits traced T = 48 and n = 32, past the table ("index out of range")."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=32)
    cost = flopmeter.llm_cost(config, prompt=20, generate=5)
    prefill, decode = cost.prefill_fit(), cost.decode_fit()
    assert [x for x, _ in prefill.points] == [8, 16, 24] and [x for x, _ in decode.points] == [7, 14]
    # prefill(T) = 4 L d T^2 + 2 (12 d^2) L T + 2 d V (lm_head once) = 128 T^2 + 24,576 T + 4,096
    assert prefill.polynomial is not None and prefill.polynomial.coefficients == (4096, 24576, 128)
    # decode(n) = 128 (n+1) + 24,576 + 4,096 = 128 n + 28,800
    assert decode.polynomial is not None and decode.polynomial.coefficients == (28800, 128)
    assert cost.variant(prompt=16).prefill_fit().check[0] == 32  # the prompt is a fit point: checked at 4 x 8


@pytest.mark.parametrize("context", [3.5, "8", True, -1])
def test_a_decode_context_that_is_not_a_token_count_is_refused(context: object) -> None:
    """P3-L17: cost.decode(3.5) raised torch's "empty(): argument 'size' failed to unpack",
    cost.decode("8") a '<' TypeError, cost.decode(True) counted a context of 1."""
    cost = flopmeter.llm_cost(tiny_llama(), prompt=16)
    with pytest.raises(ValueError, match="the decode context must be a whole number of tokens"):
        cost.decode(context)  # type: ignore[arg-type]


def test_a_dtype_for_a_model_is_refused_not_ignored() -> None:
    """P3-L18: llm_cost(float32_model, dtype="bfloat16") counted float32 bytes without a word."""
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_config(tiny_llama())
    with pytest.raises(
        ValueError, match=r"dtype='bfloat16' builds a config; a model is used as it is \(torch.float32\)"
    ):
        flopmeter.llm_cost(model, prompt=8, dtype="bfloat16")
    assert flopmeter.llm_cost(model, prompt=8, dtype="float32").lm.itemsize == 4  # its own dtype: fine


def test_a_generation_past_a_learned_position_table_says_so() -> None:
    """P3-L20: GPT-2 (n_positions 64), --prompt 60 --generate 10 failed with "index out of range
    in self. Check that the inputs match what the model expects", not naming the positions."""
    from flopmeter.cli import run

    code, out, err = run(["transformers:GPT2Config", "--set", "n_layer=1", "--set", "n_embd=32", "--set", "n_head=2",
                          "--set", "vocab_size=64", "--set", "n_positions=64", "--prompt", "60", "--generate", "10"])  # fmt: skip
    # the last decode step: context 60 + 10 - 2 = 68, plus its own token: 69 positions
    assert code == 1 and out == ""
    assert "reaches 69 positions, beyond the config's max_position_embeddings (64)" in err


def test_a_hybrids_kv_cache_counts_its_attention_layers_only() -> None:
    """P3-L21: Jamba (4 layers: Mamba, attention, Mamba, attention) was sized as if all four
    layers cached keys and values: twice its KV cache."""
    transformers = pytest.importorskip("transformers")
    config = transformers.JambaConfig(
        **TINY_SIZES | {"num_hidden_layers": 4}, num_experts=2, num_experts_per_tok=1, attn_layer_period=2,
        attn_layer_offset=1, expert_layer_period=2, expert_layer_offset=1, mamba_d_state=8,
    )  # fmt: skip
    cost = flopmeter.llm_cost(config, prompt=24)
    # 2 attention layers x 2 (K, V) x 2 heads x 16 x 2 bytes = 256 B per token
    assert cost.cache.bytes_per_token == 256
    assert cost.decode(24).bytes("paged").kv_read == 256 * 25
    # the attention term grows with the 2 attention layers only: 4 * 2 * 64 = 512 per cached token
    # (from n = 8: at n = 0 the Mamba layers run their first-token path, not their one-step update)
    assert cost.decode(24).flops_2mac - cost.decode(8).flops_2mac == 512 * 16


def test_a_state_space_model_is_refused_clearly() -> None:
    """P3-L22: llm_cost(MambaConfig(...)) raised "int() argument must be ... not 'NoneType'"."""
    transformers = pytest.importorskip("transformers")
    config = transformers.MambaConfig(num_hidden_layers=2, hidden_size=64, vocab_size=100, state_size=8)
    with pytest.raises(
        ValueError, match="needs a transformer language model with attention heads; MambaForCausalLM"
    ):
        flopmeter.llm_cost(config, prompt=8)
