"""Probe-12 findings in LLM mode (P12-L ids in docs/probe-12/llm.md): the newer decoders of
transformers 5 (Gemma 2/3, Qwen3, Phi-3, DeepSeek-V3, GPT-OSS, Jamba, Falcon-H1, Mamba-2) built
tiny: 2 layers, d = 64, 4 heads of 16 (2 KV heads), MLP 128, vocabulary 100, bfloat16."""

import pytest

from flopmeter.llm import llm_cost
from flopmeter.llm.training import training_step
from flopmeter.render.llm import render_llm, render_training

transformers = pytest.importorskip("transformers")

TINY = dict(
    num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
    num_key_value_heads=2, vocab_size=100, head_dim=16,
)  # fmt: skip


def test_a_sliding_window_prefill_counted_as_needed_says_where_its_fit_holds() -> None:
    """P12-L1: under causal="needed" a sliding layer keeps w(w+1)/2 + (T-w)w scores per head
    past its window and T(T+1)/2 below it, so the prefill is piecewise in T. The fit traced at
    T = 16, 32, 48 (past a window of 8) is linear and the report printed it with no range,
    while docs/llm.md says LLM mode says so rather than extrapolating."""
    cost = llm_cost(transformers.MistralConfig(**TINY, sliding_window=8), prompt=24, causal="needed")
    # weights: 2 (N_mm - lm_head) T + lm_head once = 2*73,728 T + 2*6,400 = 147,456 T + 12,800;
    # attention past the window: per layer and head 36 + 8 (T-8) = 8T - 28 scores, each
    # 2*16 MACs (QK and PV) x 4 heads x 2 layers x 2 = 512 (8T - 28) = 4,096 T - 14,336
    # -> 151,552 T - 1,536
    fit = cost.prefill_fit().polynomial
    assert fit is not None and fit.coefficients == (-1_536, 151_552)
    # below the window, T = 4: 10 scores per head: 147,456*4 + 12,800 + 512*10 = 607,744, while
    # the fit gives 151,552*4 - 1,536 = 604,672
    assert cost.prefill_at(4).flops_2mac == 607_744
    assert fit(4) == 604_672
    text = render_llm(cost)
    assert (
        "prefill(T) is piecewise, traced and checked at T = 16-48, past the window: a shorter prompt"
        " costs more than the fit says"
    ) in text
    # a window of 64 the fit never reaches: T(T+1)/2 on both layers, exact below the window
    wide = llm_cost(transformers.MistralConfig(**TINY, sliding_window=64), prompt=24, causal="needed")
    # 512 T (T+1)/2 = 256 T^2 + 256 T: 256 T^2 + 147,712 T + 12,800
    assert wide.prefill_fit().polynomial.coefficients == (12_800, 147_712, 256)
    assert "T = 16-48, below the window: a longer prompt costs less than the fit says" in render_llm(wide)
    # counted full (the default) the prefill is a polynomial at every T: no such line
    assert "prefill(T) is piecewise" not in render_llm(
        llm_cost(transformers.MistralConfig(**TINY, sliding_window=8), prompt=24)
    )


def test_eager_attention_counted_as_needed_says_it_counts_dense() -> None:
    """P12-L2: GPT-OSS (attention sinks) and Gemma 2 (soft-capping) run eager attention, plain
    matmuls the recorder cannot thin; asked for "needed" the report said "attention counted
    needed" and printed the dense numbers, with no word (the training table's "traced causal"
    row equal to "traced full" alike)."""
    config = transformers.GptOssConfig(**TINY, num_local_experts=4, num_experts_per_tok=2, sliding_window=8)
    cost = llm_cost(config, prompt=24, causal="needed")
    # active N_mm per layer: attention 4,096 + 2,048 + 2,048 + 4,096 = 12,288, router 4*64 = 256,
    # 2 of 4 experts 2*(64*256 + 128*64) = 49,152: 61,696; x 2 + lm_head 6,400 = 129,792.
    # prefill 2 x MACs: 2*(129,792 - 6,400)*24 + 12,800 + dense scores 4*2*16*2 layers*2*24^2
    #   = 5,922,816 + 12,800 + 294,912 = 6,230,528 (the causal half would be 153,600, not 294,912)
    assert cost.prefill.flops_2mac == 6_230_528
    note = "GptOssForCausalLM runs transformers' eager attention"
    assert note in render_llm(cost)
    assert note not in render_llm(llm_cost(config, prompt=24))  # full: nothing to say
    step = training_step(transformers.Gemma2Config(**TINY, sliding_window=8), tokens=16)
    assert step.conventions()["traced causal"] == step.conventions()["traced full"]
    assert "the traced causal row counts it dense too" in render_training(step)


def test_training_step_refuses_a_state_space_model_at_the_call(tiny_mamba2_config: object) -> None:
    """P12-L3: training_step(Mamba2Config) returned a step whose conventions() (and print)
    raised the refusal later; llm_cost refuses at the call."""
    with pytest.raises(ValueError, match="caches recurrent states, no keys and values"):
        training_step(tiny_mamba2_config, tokens=16)


def test_mla_cache_line_names_the_latent_and_the_rope_key() -> None:
    """P12-L4: MLA hands its cache the latent as keys and the shared rotary key as values; the KV
    line said "(key 16 + value 8)" under a header of "head dim 24 (queries, keys) and 16
    (values)", so a reader took 8 for the values' dim (docs/llm.md: a latent of kv_lora_rank +
    qk_rope_head_dim per token and layer)."""
    config = transformers.DeepseekV3Config(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=4, vocab_size=100, kv_lora_rank=16, q_lora_rank=24, qk_rope_head_dim=8,
        qk_nope_head_dim=16, v_head_dim=16, n_routed_experts=4, num_experts_per_tok=2,
        n_shared_experts=1, moe_intermediate_size=32, first_k_dense_replace=1, n_group=1, topk_group=1,
    )  # fmt: skip
    cost = llm_cost(config, prompt=24, generate=4)
    # 2 layers x (latent 16 + rope key 8) x 2 B = 96 B per token
    assert cost.cache.bytes_per_token == 96
    text = render_llm(cost)
    assert "KV cache (layers x 1 cached head(s) x (latent 16 + rope key 8) x bytes per element" in text
    assert "key 16 + value 8" not in text


def tiny_deepseek_v4() -> object:
    """Layer 0 compressed sparse attention (an entry per 4 tokens, indexer top 4), layer 1
    heavily compressed (an entry per 8), both beside a sliding window of 8 keys (= values)."""
    return transformers.DeepseekV4Config(
        num_hidden_layers=2, hidden_size=64, num_attention_heads=4, vocab_size=100,
        num_key_value_heads=1, head_dim=32, q_lora_rank=24, moe_intermediate_size=32,
        n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, sliding_window=8, o_groups=2,
        o_lora_rank=16, index_n_heads=2, index_head_dim=16, index_topk=4, num_nextn_predict_layers=0,
        hc_mult=2, layer_types=["compressed_sparse_attention", "heavily_compressed_attention"],
        compress_rates={"compressed_sparse_attention": 4, "heavily_compressed_attention": 8},
    )  # fmt: skip


def test_deepseek_v4s_compressed_attention_is_refused_clearly() -> None:
    """P12-L5: DeepSeek-V4's cache keeps, beside its sliding window, a compressed entry per 4
    (CSA) or 8 (HCA) tokens that decode steps attend. LLM mode filled the window only: decode
    92,032 MACs at every context, where a real decode step after 40 tokens (10 + 5 entries)
    runs 96,192 (after 8: 92,864), and a KV cache of the window alone (and K and V counted twice
    though V4 stores them once)."""
    with pytest.raises(ValueError, match="does not model DeepseekV4ForCausalLM's compressed attention"):
        llm_cost(tiny_deepseek_v4(), prompt=24)
    from flopmeter.cli import main

    args = ["transformers:DeepseekV4Config", "--set", "num_hidden_layers=2", "--set", "hidden_size=64"]
    assert main([*args, "--prompt", "8"]) == 2


def test_set_takes_a_setting_the_modeling_code_reads_though_the_config_does_not_declare_it() -> None:
    """P12-L6: FalconH1Config declares no head_dim, but its attention reads
    getattr(config, "head_dim", hidden / heads) (Falcon-H1 checkpoints set it); --set head_dim was
    refused as unknown ("FalconH1Config has no setting 'head_dim'"). A misspelling still is."""
    from flopmeter.models import ModelSourceError, load_model

    tiny = {"num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2}
    loaded = load_model("transformers:FalconH1Config", overrides={**tiny, "head_dim": 8}, meta=True)
    # q_proj: 64 -> 4 heads x 8 = 32 (hidden / heads would give 16: 64)
    assert tuple(loaded.model.layers[0].self_attn.q_proj.weight.shape) == (32, 64)
    with pytest.raises(ModelSourceError, match="FalconH1Config has no setting 'head_dmi'"):
        load_model("transformers:FalconH1Config", overrides={**tiny, "head_dmi": 8}, meta=True)


def test_minimax_runs_in_llm_mode_with_its_own_cache() -> None:
    """P12-L7: MiniMax (lightning attention layer 0, full attention layer 1) refuses any cache
    but its own MiniMaxCache; LLM mode handed it a DynamicCache subclass and failed ("MiniMax
    uses cache of its own and is not compatible with `cache` of type ...Recording")."""
    config = transformers.MiniMaxConfig(
        **TINY, num_local_experts=4, num_experts_per_tok=2, block_size=8,
        layer_types=["linear_attention", "full_attention"],
    )  # fmt: skip
    cost = llm_cost(config, prompt=24)
    # decode MACs: layer 0 qkv 64*192 = 12,288 + output gate 4,096 + out_proj 4,096 + K^T V and
    #   Q (K^T V) 2*4*16*16 = 2,048 = 22,528; layer 1 attention 12,288 + 4*32 (n+1);
    #   each layer's MoE router 256 + 2 experts 2*3*64*128 = 49,408; lm_head 6,400:
    #   22,528 + 12,288 + 2*49,408 + 6,400 = 140,032 + 128 (n+1)
    assert cost.decode(8).macs == 140_032 + 128 * 9  # 141,184, as a real step after 8 tokens
    assert cost.decode(40).macs == 140_032 + 128 * 41  # 145,280
    # KV: the full-attention layer only, 2*2*16*2 B = 128 B per token; the lightning layer's
    # K^T V state 4*16*16*2 B = 2,048 B, the same at any context
    assert cost.cache.bytes_per_token == 128
    assert cost.state_bytes == 2_048
    assert cost.decode(24).bytes("paged").kv_read == 25 * 128


def test_a_models_own_cache_is_taken_only_where_it_builds_from_the_config() -> None:
    """P12-L9's rule: a modeling module's own DynamicCache subclass is used where it builds
    from the config alone (MiniMaxCache()); one that needs a batch size (the hybrid caches of
    transformers 4.x: Jamba's HybridMambaAttentionDynamicCache(config, batch_size, ...)) is not
    one LLM mode can fill, so the DynamicCache it used before stays."""
    import sys
    import types

    import torch

    from flopmeter.llm.traces import _cache_class

    module = types.ModuleType("fake_modeling_hybrid")

    class NeedsBatch(transformers.DynamicCache):
        def __init__(self, config: object, batch_size: int) -> None:
            super().__init__()

    class Model(torch.nn.Module):
        pass

    for cls in (NeedsBatch, Model):
        cls.__module__ = module.__name__
        setattr(module, cls.__name__, cls)
    sys.modules[module.__name__] = module
    try:
        lm = types.SimpleNamespace(model=Model())
        assert _cache_class(lm) is transformers.DynamicCache
        minimax = llm_cost(
            transformers.MiniMaxConfig(**TINY, num_local_experts=4, num_experts_per_tok=2), prompt=8
        )
        assert _cache_class(minimax.lm).__name__ == "MiniMaxCache"
    finally:
        del sys.modules[module.__name__]
