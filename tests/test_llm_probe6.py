"""Probe-6 findings in LLM mode (P6-L ids in docs/probe-6/llm.md): each test failed before its fix."""

import pytest

from flopmeter.llm.training import training_step

transformers = pytest.importorskip("transformers")


def tiny_deepseek_v3() -> object:
    """MLA: 4 heads, q/k dims 16 (nope) + 8 (rope) = 24, values 16, latent 16; layer 0 dense,
    layer 1 a mixture of 4 experts (top 2) with 1 shared expert."""
    return transformers.DeepseekV3Config(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=4, vocab_size=100, kv_lora_rank=16, q_lora_rank=24, qk_rope_head_dim=8,
        qk_nope_head_dim=16, v_head_dim=16, n_routed_experts=4, num_experts_per_tok=2,
        n_shared_experts=1, moe_intermediate_size=32, first_k_dense_replace=1, n_group=1, topk_group=1,
    )  # fmt: skip


def test_palm_form_of_mla_uses_the_query_key_and_value_dims() -> None:
    """P6-L1: PaLM's 12 L H Q T took Q = config.head_dim, which DeepSeek's config sets to the
    rotary part only (8 here, 64 for DeepSeek-V3), not the 24 / 16 its scores and values run over."""
    step = training_step(tiny_deepseek_v3(), tokens=16)
    # active N_mm per layer: attention q_a 64*24 + q_b 24*96 + kv_a 64*24 + kv_b 16*128 + o 64*64
    #   = 1,536 + 2,304 + 1,536 + 2,048 + 4,096 = 11,520; layer 0 MLP 3*64*128 = 24,576;
    #   layer 1: router 4*64 = 256, shared expert 3*64*32 = 6,144, 2 of 4 experts 2*3*64*32 = 12,288;
    #   lm_head 6,400: 2*11,520 + 24,576 + 18,688 + 6,400 = 72,704
    assert step.lm.params.active_matmul == 72_704
    # 6 N + 6 L H (Q_qk + Q_v) T = 436,224 + 6*2*4*(24+16)*16 = 436,224 + 30,720 = 466,944
    # (before: 6 N + 12*2*4*8*16 = 448,512)
    palm = step.conventions()["6N+12LHQT (N=active N_mm)"]
    assert palm == 466_944
    assert step.lm.attention_dims == (24, 16)
    # the traced step is the same: forward attention 2*2*4*16*(24+16) = 10,240 per token, x3
    assert step.conventions()["traced full"] == 466_944


def test_palm_form_of_a_hybrid_counts_its_attention_layers_only() -> None:
    """P6-L2: Jamba's Mamba layers have no attention; 12 L H Q T took all 4 layers, not the 2
    attention layers (Jamba-v0.1: 32 layers, 4 with attention: its attention term 8x)."""
    config = transformers.JambaConfig(
        num_hidden_layers=4, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100, attn_layer_period=2, attn_layer_offset=1,
        expert_layer_period=100, num_experts=1, mamba_d_state=8, mamba_expand=2, mamba_dt_rank=8,
    )  # fmt: skip
    step = training_step(config, tokens=16)
    # N_mm: Mamba layer in_proj 64*256 + conv 128*4 + x_proj 128*24 + dt_proj 8*128 + A_log 128*8
    #   + out_proj 128*64 = 30,208; attention 4,096 + 2,048 + 2,048 + 4,096 = 12,288; MLP 24,576 each
    #   2*(30,208 + 24,576) + 2*(12,288 + 24,576) + lm_head 6,400 = 189,696
    assert step.lm.params.matmul == 189_696
    # 6 N + 12 L_attn H Q T = 1,138,176 + 12*2*4*16*16 = 1,138,176 + 24,576 = 1,162,752
    # (before: 12*4*4*16*16 = 49,152: 1,187,328)
    assert step.conventions()["6N+12LHQT (N=N_mm)"] == 1_162_752
    assert step.attention_layers == 2


def test_training_report_names_the_layers_and_dims_of_palms_form() -> None:
    """P6-L1/L2 as printed: the closed form's L and Q are named where they differ from the
    config's layers and head_dim."""
    from flopmeter.render.llm import render_training

    text = render_training(training_step(tiny_deepseek_v3(), tokens=16))
    assert "L = 2 of 2 layers (those with attention), H = 4, Q_qk = 24, Q_v = 16" in text
    assert "466.94 K" in text  # 6N+12LHQT per token, as the test above


def tiny_bamba() -> object:
    """Mamba-2 layers 0 and 2 (4 heads of 32, state 8, 1 group, conv 4), attention layers 1 and 3."""
    return transformers.BambaConfig(
        num_hidden_layers=4, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100, attn_layer_indices=[1, 3], mamba_n_heads=4,
        mamba_d_head=32, mamba_d_state=8, mamba_n_groups=1, mamba_expand=2,
    )  # fmt: skip


def test_a_hybrids_decode_step_runs_its_recurrent_layers_one_step() -> None:
    """P6-L3: the decode cache held keys and values only, so a hybrid's Mamba layers ran a
    prefill of one token from a zero state (Mamba-2's torch path pads it to a chunk of 256):
    44,447,488 FLOPs for a step of this 370 K model; Falcon-H1 and Qwen3-Next alike."""
    from flopmeter.llm import llm_cost

    cost = llm_cost(tiny_bamba(), prompt=24)
    # MACs per token. Mamba layer: in_proj 64*(2*128 + 2*8 + 4) = 17,664; the conv's update over
    # its 4-token state + the new token (transformers' causal_conv1d_update): 144 channels * 4 taps
    # * 2 outputs = 1,152; the state read out, C.h: 4 heads * 32 * 8 = 1,024; out_proj 128*64 =
    # 8,192; MLP 3*64*128 = 24,576: 52,608. Attention layer: 12,288 + MLP 24,576 = 36,864, and
    # 4 heads * 16 * 2 (scores, values) = 128 per cached token. lm_head 64*100 = 6,400.
    # 2 x (2*52,608 + 2*36,864 + 6,400 + 2*128*(n+1)) = 370,688 + 512 (n+1); n = 24: 383,488
    assert cost.decode(24).flops_2mac == 383_488
    assert cost.decode_fit().polynomial is not None
    assert cost.decode_fit().polynomial.coefficients == (370_688 + 512, 512)
    # as executed, the KV columns are what 24 cached tokens add, as for any decoder: DynamicCache's
    # cat reads the 24 tokens of K and V in 2 layers (24*2*2*2*16*2 B = 6,144) and writes them
    # (6,144), attention reads them (6,144). Before: -18,185,088 B read (the baseline ran the
    # Mamba layers' padded prefill path)
    executed = cost.decode(24).bytes("as executed")
    assert (executed.kv_read, executed.kv_write) == (12_288, 6_144)


def test_mla_decode_says_it_re_expands_the_latent_cache() -> None:
    """P6-L4: transformers' MLA decode re-expands every cached latent through kv_b_proj each
    step (a decode step's slope per cached token 2*2*(2,048 + 160) = 8,832 here; DeepSeek-V3:
    512*128*(128+128) = 16.8 M MACs per cached token and layer, against 139 K for an engine
    that absorbs kv_b_proj); the report said nothing of it."""
    from flopmeter.llm import llm_cost
    from flopmeter.render.llm import render_llm

    cost = llm_cost(tiny_deepseek_v3(), prompt=24)
    # kv_b_proj: latent 16 -> 4 heads x (16 + 16) = 2,048 MACs; scores 4*24 + values 4*16 = 160;
    # 2 layers, 2 x MACs: 2*2*2,208 = 8,832 per cached token
    assert cost.decode_fit().polynomial is not None
    assert cost.decode_fit().polynomial.coefficients[1] == 8_832
    assert cost.lm.latent_expansion_macs == 16 * 4 * (16 + 16)
    assert "re-expanding every cached token's latent through kv_b_proj (2,048 MACs" in render_llm(cost)


def test_two_dimensional_biases_are_not_matmul_weights() -> None:
    """P6-L5: N_mm took every parameter of 2 or more dims, so GPT-OSS's expert biases ((E, 2I) and
    (E, d)) counted as matmul weights: the closed forms' N exceeded what the trace multiplies."""
    from flopmeter.llm import llm_cost

    config = transformers.GptOssConfig(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=100, num_local_experts=4, num_experts_per_tok=2,
        sliding_window=8, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    cost = llm_cost(config, prompt=16, all_logits=True)
    n = cost.lm.params
    # per layer: attention 4,096 + 2,048 + 2,048 + 4,096 = 12,288; router 4*64 = 256; experts
    # gate_up 4*64*256 = 65,536 + down 4*128*64 = 32,768 = 98,304 (biases 4*256 + 4*64 = 1,280 not)
    # N_mm = 2*(12,288 + 256 + 98,304) + lm_head 6,400 = 228,096 (before: 230,656)
    assert n.matmul == 228_096
    # active: 2 of 4 experts: 2*(12,288 + 256 + 49,152) + 6,400 = 129,792 (before: 131,072)
    assert n.active_matmul == 129_792
    # the expert bytes an engine may skip keep the biases: 2*(98,304 + 1,280) = 199,168 parameters
    assert n.experts == 199_168
    # the traced prefill (all logits, full attention) per token: 2 x active N_mm
    fit = cost.prefill_fit().polynomial
    assert fit is not None and fit.coefficients[1] == 2 * 129_792


def tiny_llama4() -> object:
    """Llama 4 text: 2 MoE layers of 4 experts (intermediate 32), top 1, a shared expert."""
    return transformers.Llama4TextConfig(
        num_hidden_layers=2, hidden_size=64, intermediate_size=32, intermediate_size_mlp=128,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=100, num_local_experts=4,
        num_experts_per_tok=1, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip


def test_llama4_runs_every_expert_on_every_token_and_says_so() -> None:
    """P6-L6: docs/llm.md said MoE FLOPs depend on tokens x top-k only; transformers' Llama 4
    multiplies every token by all E experts (routing weights 0 for the others), so its FLOPs
    are dense over the experts (Llama-4-Scout: 16x the routed experts' work), silently."""
    from flopmeter.llm import llm_cost
    from flopmeter.render.llm import render_llm

    cost = llm_cost(tiny_llama4(), prompt=16, all_logits=True)
    n = cost.lm.params
    # experts per layer: gate_up 4*64*64 = 16,384 + down 4*32*64 = 8,192 = 24,576; 2 layers 49,152
    # attention 12,288, router 256, shared expert 3*64*32 = 6,144 per layer; lm_head 6,400:
    # N_mm = 2*(12,288 + 256 + 6,144 + 24,576) + 6,400 = 92,928; active (1 of 4) = 92,928 - 36,864 = 56,064
    assert (n.matmul, n.active_matmul) == (92_928, 56_064)
    # traced per token: 2 x N_mm with every expert, 185,856, not 2 x 56,064 = 112,128
    fit = cost.prefill_fit().polynomial
    assert fit is not None and fit.coefficients[1] == 2 * 92_928
    assert cost.experts_run == 4
    assert "multiplies every token by 4 of its 4 experts' weights, not the top 1" in render_llm(cost)


def test_a_routed_mixture_runs_its_top_k_and_has_no_note() -> None:
    """The counterpart: Qwen3-MoE's grouped GEMM runs the routed rows, 2 of 4 experts per token."""
    from flopmeter.llm import llm_cost
    from flopmeter.render.llm import render_llm

    config = transformers.Qwen3MoeConfig(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=100, num_experts=4, num_experts_per_tok=2,
        moe_intermediate_size=32, decoder_sparse_step=1, mlp_only_layers=[],
    )  # fmt: skip
    cost = llm_cost(config, prompt=16)
    assert cost.experts_run == 2
    assert "multiplies every token by" not in render_llm(cost)


def test_json_gives_mla_dims_beside_the_configs_head_dim() -> None:
    """P6-L1 in the JSON: head_dim 8 (DeepSeek's config: rotary part) alone misleads a reader
    who works out attention from it; the scores run over 16 + 8 = 24 dims, the values 16."""
    from flopmeter.llm import llm_cost

    data = llm_cost(tiny_deepseek_v3(), prompt=16).to_dict()
    assert (data["head_dim"], data["qk_head_dim"], data["v_head_dim"]) == (8, 24, 16)


def tiny_gemma3n() -> object:
    """Gemma 3n: 4 layers (sliding 8, full, sliding, full); the last 2 attend the cache of the
    last earlier layer of their type (KV sharing) and store nothing."""
    return transformers.Gemma3nTextConfig(
        num_hidden_layers=4, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=100, vocab_size_per_layer_input=100,
        hidden_size_per_layer_input=8, sliding_window=8, num_kv_shared_layers=2, laurel_rank=4,
        layer_types=["sliding_attention", "full_attention"] * 2, activation_sparsity_pattern=[0.0] * 4,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip


def test_kv_shared_layers_read_the_cache_they_share() -> None:
    """P6-L7: Gemma 3n's KV-shared layers attend an earlier layer's cache; the paged view read
    the cache once per storing layer, leaving out the sharing layers' reads (Gemma 3n E4B: 15 of
    35 layers share, 43 % of the decode's KV read missing)."""
    from flopmeter.llm import llm_cost

    cost = llm_cost(tiny_gemma3n(), prompt=16)
    # stored once: 2 layers x 2 (K, V) x 2 heads x 16 x 2 B = 256 B per token
    assert cost.cache.bytes_per_token == 256
    # decode after 16: layers 0, 2 (window 8) read 8 tokens each, layers 1, 3 read 17 each:
    # 50 tokens x 128 B = 6,400 (before: 25 x 128 = 3,200, the storing layers only)
    assert cost.decode(16).bytes("paged").kv_read == 6_400
    # the FLOPs agree: two full layers grow with n, 2 x 256 = 512 per cached token
    assert cost.decode(24).flops_2mac - cost.decode(16).flops_2mac == 512 * 8
    # the cache held at 17 tokens is what is stored: (8 + 17) x 128 = 3,200
    assert cost.cache.bytes(17) == 3_200


def test_a_mamba2_model_is_refused_clearly(tiny_mamba2_config: object) -> None:
    """P6-L8: Mamba-2's config has num_heads (its SSM heads), so it passed the attention check:
    llm_cost returned a made-up KV cache (2 layers x 4 "KV heads" x 32), and the first decode
    (the CLI's) raised "'LinearAttentionLayer' object has no attribute 'update'" from transformers."""
    from flopmeter.llm import llm_cost

    with pytest.raises(ValueError, match="Mamba2ForCausalLM .* caches recurrent states, no keys and values"):
        llm_cost(tiny_mamba2_config, prompt=8)


def test_palm_form_counts_kv_shared_layers_as_attention_layers() -> None:
    """P6-L2 with KV sharing: Gemma 3n's sharing layers hand no keys to the cache but attend."""
    step = training_step(tiny_gemma3n(), tokens=16)
    assert step.attention_layers == 4  # 2 storing + 2 sharing


def test_a_long_moe_prefills_paged_bytes_print() -> None:
    """P6-L9: the paged expert share (1 - k/E)^(B T) was an exact Fraction: a prefill of 8,192
    tokens over 4 experts (top 1) had a denominator 4^8192 (4,932 digits) and repr(bytes) raised
    "Exceeds the limit (4300 digits) for integer string conversion"."""
    from flopmeter.llm import llm_cost

    config = transformers.Qwen3MoeConfig(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=100, num_experts=4, num_experts_per_tok=1,
        moe_intermediate_size=32, decoder_sparse_step=1, mlp_only_layers=[],
    )  # fmt: skip
    paged = llm_cost(config, prompt=8192).prefill.bytes("paged")
    # executed weights: (87,424 params - 6,400 embedding) * 2 B + 8,192 embedding rows * 128 B
    # + inv_freq 8 * 4 B = 162,048 + 1,048,576 + 32 = 1,210,656; every expert is routed some
    # token: 98,304 B * (3/4)^8192 (about 1e-1019, 0 in floating point) left out
    assert paged.weights == 1_210_656
    assert "weights=1210656" in repr(paged)


def test_llama4_training_step_says_its_experts_run_dense() -> None:
    """P6-L6 in a training step: traced full counts every expert, PaLM's form the active N; the
    table alone showed two numbers 1.6x apart here without saying why."""
    from flopmeter.render.llm import render_training

    step = training_step(tiny_llama4(), tokens=16)
    # traced full per token: 6 x N_mm with every expert 6*92,928 = 557,568 + attention 12*2*64*16
    # = 24,576: 582,144; PaLM's form on the active N: 6*56,064 + 24,576 = 360,960
    conventions = step.conventions()
    assert conventions["traced full"] == 582_144
    assert conventions["6N+12LHQT (N=active N_mm)"] == 360_960
    assert "multiplies every token by 4 of its 4 experts' weights, not the top 1" in render_training(step)


def test_the_roofline_says_what_its_flops_and_tokens_per_second_count() -> None:
    """P6-L10: the serving table's tokens/s and its FLOPs (exact, not 2 x MACs) had their
    convention in docs/llm.md only. Tiny Qwen3-MoE, prompt 16, generate 4, batch 2."""
    from flopmeter.llm import llm_cost
    from flopmeter.render.llm import render_llm

    config = transformers.Qwen3MoeConfig(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=100, num_experts=4, num_experts_per_tok=2,
        moe_intermediate_size=32, decoder_sparse_step=1, mlp_only_layers=[],
    )  # fmt: skip
    cost = llm_cost(config, prompt=16, generate=4, batch=2)
    serving = cost.serving("h100-sxm")
    # 2 sequences x 4 generated tokens over the prefill and 3 decode steps
    assert serving.tokens_per_second == 2 * 4 / (serving.prefill.seconds + serving.decode_seconds)
    text = render_llm(cost, [serving])
    assert "FLOPs exact (elementwise work included)" in text
    assert "tokens/s = generated tokens of the whole batch over prefill + decode" in text


def test_a_hybrids_recurrent_states_are_sized_beside_its_kv_cache() -> None:
    """P6-L11: the report sized the attention layers' KV cache only; a hybrid's Mamba layers keep
    states of a fixed size per sequence that a user sizing memory needs too."""
    from flopmeter.llm import llm_cost
    from flopmeter.render.llm import render_llm

    cost = llm_cost(tiny_bamba(), prompt=24, batch=2)
    # per Mamba layer and sequence: conv state 144 channels x 4 taps x 2 B (bf16) = 1,152 and SSM
    # state 4 heads x 32 x 8 x 4 B (float32, as transformers keeps it) = 4,096: 5,248;
    # 2 layers x 2 sequences = 20,992
    assert cost.state_bytes == 20_992
    assert cost.to_dict()["state_bytes"] == 20_992
    assert "recurrent states (Mamba, linear attention), beside it: 20.50 KiB for batch 2" in render_llm(cost)
    # a transformer has none
    assert llm_cost(tiny_deepseek_v3(), prompt=8).state_bytes == 0
