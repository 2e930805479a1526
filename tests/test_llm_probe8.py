"""Probe-8 findings in LLM mode (P8 ids in docs/probe-8/llm.md): each test failed before its fix."""

import pytest

from flopmeter.cli import main
from flopmeter.llm import llm_cost
from flopmeter.llm.training import training_step
from flopmeter.render.llm import render_llm, render_training

transformers = pytest.importorskip("transformers")


def tiny_gemma4(**changes: object) -> object:
    """Gemma 4 text, 2 layers of d = 64: layer 0 sliding (window 8), 4 heads, 2 KV heads of 16;
    layer 1 full attention with its own head dim 32 (``global_head_dim``, a per-layer override
    of head_dim: transformers' heterogeneous ``per_layer_config``); MLP 128, vocab 100, tied
    lm_head, per-layer inputs of 8 from a table of 100 x (2 x 8)."""
    settings: dict[str, object] = dict(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, global_head_dim=32, sliding_window=8,
        layer_types=["sliding_attention", "full_attention"], vocab_size_per_layer_input=100,
        hidden_size_per_layer_input=8,
    )  # fmt: skip
    settings.update(changes)
    return transformers.Gemma4TextConfig(**settings)


def test_gemma4_layers_with_their_own_head_dim_size_the_kv_cache() -> None:
    """P8-1: a heterogeneous config (Gemma 4's full-attention layers override head_dim) raised
    transformers' AmbiguousGlobalPerLayerAttributeError from inside LLM mode; read with the
    global head_dim, every layer's cache would be sized as layer 0's."""
    cost = llm_cost(tiny_gemma4(), prompt=24, generate=4)
    n = cost.lm.params
    # layer 0: q 64*64 + k, v 2*(64*32) + o 64*64 = 12,288; MLP 3*64*128 = 24,576; per-layer
    #   input gate 8*64 + projection 64*8 = 1,024: 37,888
    # layer 1: q 64*128 + k, v 2*(64*64) + o 128*64 = 24,576; MLP 24,576; 1,024: 50,176
    # + per_layer_model_projection 64*16 = 1,024: Kaplan 89,088; + lm_head (tied) 100*64 = 95,488
    assert (n.kaplan, n.matmul, n.embedding) == (89_088, 95_488, 1_600)  # embedding: 100 x 16 per-layer table
    # bf16: layer 0 2*2*16*2 B = 128, layer 1 2*2*32*2 B = 256: 384 per token (before: 2*128 = 256)
    assert cost.cache.bytes_per_token == 384
    assert cost.cache.layer_bytes == (128, 256)
    # whole cache at 28 tokens: layer 0 holds its window 8*128 = 1,024, layer 1 28*256 = 7,168
    assert cost.cache.bytes(28) == 8_192
    step = cost.decode(24).bytes("paged")
    # decode after 24: layer 0 reads its window 8*128 = 1,024, layer 1 25*256 = 6,400: 7,424
    # (before: (8 + 25)*128 = 4,224); writes one slot each, 384
    assert (step.kv_read, step.kv_write) == (7_424, 384)
    # FLOPs as traced: 2 N_mm 190,976 + layer 0 (window) 2*4*(16+16)*8 = 2,048 + layer 1
    #   2*4*(32+32)*(n+1) = 512 (n+1): 193,536 + 512 n, 205,824 at n = 24
    assert cost.decode(24).flops_2mac == 205_824
    text = render_llm(cost)
    assert "4 heads (2 KV), head dim 16 on layer 0; 4 heads (2 KV), head dim 32 on layer 1" in text
    assert "KV cache (sum over the layers of 2 x KV heads x head dim x bytes per element, as each" in text
    assert "384 B per token (128 B to 256 B per layer)" in text
    assert cost.to_dict()["attention_by_layer"] == [[4, 2, 16, 16], [4, 2, 32, 32]]


def test_gemma4_kv_shared_layers_read_the_cache_of_their_kind() -> None:
    """P8-1 with KV sharing and keys as values (``attention_k_eq_v``): the full layers have 1 KV
    head of 64 (``num_global_key_value_heads``, ``global_head_dim``); the last 2 of 4 layers attend
    the cache of the last earlier layer of their kind."""
    config = tiny_gemma4(
        num_hidden_layers=4, layer_types=["sliding_attention", "full_attention"] * 2, global_head_dim=64,
        num_global_key_value_heads=1, attention_k_eq_v=True, num_kv_shared_layers=2,
    )  # fmt: skip
    cost = llm_cost(config, prompt=24)
    # stored: layer 0 2*2*16*2 B = 128, layer 1 1*(64 + 64)*2 B = 256 (keys and values both kept)
    assert cost.cache.bytes_per_token == 384
    # decode after 24 reads: layer 0 8*128 + layer 1 25*256 + layer 2 (shares 0) 8*128 +
    # layer 3 (shares 1) 25*256 = 1,024 + 6,400 + 1,024 + 6,400 = 14,848 (before, 128 a layer: 8,448)
    assert cost.decode(24).bytes("paged").kv_read == 14_848


def test_palms_form_sums_each_attention_layers_heads_and_dims() -> None:
    """P8-1 in training: 12 L H Q T took Q = the config's head_dim for every layer."""
    step = training_step(tiny_gemma4(), tokens=16)
    # sum of H (Q_qk + Q_v): layer 0 4*(16+16) = 128, layer 1 4*(32+32) = 256: 384
    assert step.attention_width == 384
    # 6*95,488 + 6*384*16 = 572,928 + 36,864 = 609,792 = the traced step (forward attention per
    # token 2*(128 + 256)*16 = 12,288, x3); before: 12*2*4*16*16 = 24,576 -> 597,504
    conventions = step.conventions()
    assert conventions["6N+12LHQT (N=N_mm)"] == 609_792 == conventions["traced full"]
    assert "sum over the 2 attention layers of H (Q_qk + Q_v) = 384" in render_training(step)


def test_cli_sets_gemma4s_global_head_dim(capsys: pytest.CaptureFixture[str]) -> None:
    """P8-1 from the command line: --set head_dim raised AmbiguousGlobalPerLayerAttributeError
    (a raw traceback) and --set global_head_dim was refused as unknown (Gemma 4 takes it as an
    argument it turns into the full layers' head_dim)."""
    sets = [
        "vocab_size=100", "hidden_size=64", "intermediate_size=128", "num_hidden_layers=2",
        "num_attention_heads=4", "num_key_value_heads=2", "head_dim=16", "global_head_dim=32",
        "sliding_window=8", "vocab_size_per_layer_input=100", "hidden_size_per_layer_input=8",
        'layer_types=["sliding_attention","full_attention"]',
    ]  # fmt: skip
    argv = ["transformers:Gemma4TextConfig", "--prompt", "24"]
    for setting in sets:
        argv += ["--set", setting]
    assert main(argv) == 0
    # 2*2*16*2 + 2*2*32*2 = 384 B per token
    assert "384 B per token (128 B to 256 B per layer)" in capsys.readouterr().out


def test_a_forward_without_logits_to_keep_says_it_computes_every_positions_logits() -> None:
    """P8-2: TrOCR's (and Whisper's, ProphetNet's) ...ForCausalLM forward takes no logits_to_keep:
    it swallowed the argument and computed all T positions' logits, as generate does with it,
    while the report said "logits for the last position"."""
    config = transformers.TrOCRConfig(
        vocab_size=100, d_model=64, decoder_layers=2, decoder_attention_heads=4, decoder_ffn_dim=128,
        max_position_embeddings=128, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
    )  # fmt: skip
    cost = llm_cost(config, prompt=16)
    # decoder run alone: per layer self-attention 4*64*64 + FFN 2*64*128 = 32,768; 2 layers + lm_head
    # 100*64: N_mm 71,936. All logits: 2*71,936*16 + 4*2*64*16^2 = 2,301,952 + 131,072 = 2,433,024
    # (the last position's only would be 2,433,024 - 2*6,400*15 = 2,241,024)
    assert cost.lm.params.matmul == 71_936
    assert cost.prefill.flops_2mac == 2_433_024
    assert cost.every_position_logits and not cost.lm.keeps_logits
    assert "logits at every position: TrOCRForCausalLM's forward takes no logits_to_keep" in render_llm(cost)
    assert cost.to_dict()["every_position_logits"] is True


def test_gemma4_mixture_of_experts_reads_its_top_k_experts() -> None:
    """P8-3: Gemma 4 names its top k ``top_k_experts``; unread, top k was 0: the active N left the
    experts out (PaLM's form 19 % low here), the paged decode read no expert weight, and the
    header said "top 0"."""
    config = tiny_gemma4(enable_moe_block=True, num_experts=4, top_k_experts=2, moe_intermediate_size=32)
    cost = llm_cost(config, prompt=16, all_logits=True)
    lm, n = cost.lm, cost.lm.params
    assert (lm.num_experts, lm.experts_per_token) == (4, 2)
    # per layer beside the dense model (N_mm 95,488): router 4*64 = 256 and 4 experts of gate_up
    # 64*64 + down 64*32 = 6,144: 24,576. N_mm 95,488 + 2*24,832 = 145,152; experts 49,152;
    # active 145,152 - 49,152 + 49,152*2/4 = 120,576 (before: 96,000)
    assert (n.matmul, n.experts, n.active_matmul) == (145_152, 49_152, 120_576)
    assert cost.prefill_fit().polynomial.coefficients == (0, 241_152, 768)  # slope 2*120,576
    # one decode token routes to 2 of 4 experts: (1 - 2/4) of the 98,304 expert bytes unread
    decode = cost.decode(16)
    assert decode.bytes("as executed").weights - decode.bytes("paged").weights == 49_152  # before: 98,304
    # 6*120,576 + 6*384*16 = 723,456 + 36,864 = 760,320 = the traced step (before: 612,864)
    conventions = training_step(config, tokens=16).conventions()
    assert conventions["6N+12LHQT (N=active N_mm)"] == 760_320 == conventions["traced full"]
    assert "4 experts, top 2" in render_llm(cost)


def tiny_qwen3(**changes: object) -> object:
    """Qwen3, 2 layers of d = 64, 4 heads and 2 KV heads of 16, MLP 128, vocab 100, untied."""
    settings: dict[str, object] = dict(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=128, tie_word_embeddings=False,
    )  # fmt: skip
    settings.update(changes)
    return transformers.Qwen3Config(**settings)


@pytest.mark.parametrize(("prompt", "generate", "held"), [(24, 4, 27), (1, 1, 1), (5, 2, 6)])
def test_the_kv_line_sizes_the_cache_the_generation_holds(prompt: int, generate: int, held: int) -> None:
    """P8-4: the KV line sized the cache at prompt + generate tokens; the generation's last
    token is never run, so the cache holds at most prompt + generate - 1 (the prefill's prompt
    and one slot per decode step, at contexts prompt .. prompt + generate - 2)."""
    cost = llm_cost(tiny_qwen3(), prompt=prompt, generate=generate)
    # 2*2*2*16*2 B = 256 B per token: 27*256 = 6.75 KiB (before: 28*256 = 7.00 KiB), 1*256 = 256 B
    # (before 512 B), 6*256 = 1.50 KiB (before 1.75 KiB)
    expected = {27: "6.75 KiB", 1: "256 B", 6: "1.50 KiB"}[held]
    assert cost.cache.bytes(held) == 256 * held
    assert f"{expected} for batch 1 at {held} tokens (the generation's most" in render_llm(cost)


def test_no_compute_bound_batch_names_activations_beside_the_cache() -> None:
    """P8-5: "none (cache traffic dominates)" where the cache was 3 % of the per-sequence bytes:
    a one-token prompt's decode step reads 512 B of cache and writes 256 B, against 32.48 KiB
    of activations (unfused elementwise traffic; Llama-2-7B at n = 16: 9.4 MB of cache, 26 MB of
    activations). B f / peak >= (W + B s) / bandwidth has no B when f bandwidth / peak <= s:
    164,454 FLOPs (exact: the roofline's) x 3.35e12 / 989.4e12 = 557 B < s = 768 + 33,264 B."""
    cost = llm_cost(tiny_qwen3(), prompt=1, generate=2)
    split = cost.decode(1).bytes("paged")
    assert (split.kv_read, split.kv_write) == (512, 256)  # 2 tokens x 256 B read, 1 slot written
    assert split.activations > 40 * (split.kv_read + split.kv_write)  # 33,264 B as traced: 43x
    serving = cost.serving("h100-sxm")
    assert serving.compute_bound_batch is None
    text = render_llm(cost, [serving])
    assert "none (per-sequence KV + activation bytes dominate)" in text
    assert "cache traffic dominates" not in text


def tiny_deepseek_v32() -> object:
    """DeepSeek-V3.2 (MLA + sparse attention), 2 layers of d = 64, 4 heads: latent 16, q_lora 24,
    qk_nope 16, rope 8, v 16; indexer 2 heads of 16 keeping the top 8; 4 experts top 2, 1 shared,
    layer 0 dense."""
    return transformers.DeepseekV32Config(
        vocab_size=100, hidden_size=64, intermediate_size=128, moe_intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4, num_experts_per_tok=2,
        n_shared_experts=1, first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=24, qk_nope_head_dim=16,
        qk_rope_head_dim=8, v_head_dim=16, n_group=1, topk_group=1, index_n_heads=2, index_head_dim=16,
        index_topk=8, max_position_embeddings=128,
    )  # fmt: skip


def test_sparse_attentions_indexer_keys_are_cached_and_scored_at_every_decode_step() -> None:
    """P8-6: DeepSeek-V3.2's indexer caches a key per token and layer (``update_indexer``) and
    scores every cached one at each step. The decode trace filled the keys and values only, so
    its indexer scored the new token alone, and the KV cache left the indexer keys out."""
    cost = llm_cost(tiny_deepseek_v32(), prompt=20, generate=4)
    # per token and layer: latent 16 + rope key 8 + indexer key 16 = 40 elements x 2 B = 80;
    # 2 layers: 160 B (before: 96, the latent alone)
    assert cost.cache.bytes_per_token == 160
    # per cached token and layer, MACs: kv_b_proj 16*4*(16+16) = 2,048 + scores 4*24 + values
    # 4*16 = 2,208 (P6-L4) + the indexer's scores 2 heads x 16 = 32 and their weighted sum over
    # the 2 heads = 2: 2,242; x 2 layers x 2 = 8,968 per cached token (before: 8,832)
    assert cost.decode_fit().polynomial.coefficients[1] == 8_968
    # a decode step after 20 reads 21 tokens x 160 B = 3,360 (before: 21 x 96 = 2,016)
    assert cost.decode(20).bytes("paged").kv_read == 3_360
    text = render_llm(cost)
    assert "(latent 16 + rope key 8) + indexer key 16 per layer x bytes per element" in text
    assert "NOTE: sparse attention (its indexer caches a key of 16 per token and layer" in text
    assert "attends the top 8 only" in text


def test_the_kv_sizes_docs_llm_gives_for_gemma4_and_deepseek_v32() -> None:
    """docs/llm.md: the default Gemma4TextConfig() (25 sliding layers of 4 KV heads x 256, 5 full
    of 4 x 512) and DeepSeek-V3.2 (61 layers: latent 512 + rope 64 + indexer key 128), bf16."""
    gemma4 = llm_cost(transformers.Gemma4TextConfig(), prompt=1).cache
    assert gemma4.bytes_per_token == 25 * 2 * 4 * 256 * 2 + 5 * 2 * 4 * 512 * 2 == 143_360
    deepseek = llm_cost(transformers.DeepseekV32Config(), prompt=1).cache
    assert deepseek.bytes_per_token == 61 * (512 + 64 + 128) * 2 == 85_888


def tiny_mimo_v2_flash() -> object:
    """MiMo-V2-Flash, 2 layers of d = 64: layer 0 full attention, layer 1 sliding (window 8); 4
    heads of 16, num_key_value_heads 1 (its code gives sliding layers twice that); dense MLPs."""
    return transformers.MiMoV2FlashConfig(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, head_dim=16, v_head_dim=16, sliding_window=8,
        layer_types=["full_attention", "sliding_attention"], mlp_layer_types=["dense", "dense"],
        max_position_embeddings=128, n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
    )  # fmt: skip


def test_sliding_layers_with_twice_the_kv_heads_cache_them_all() -> None:
    """P8-7: MiMo-V2-Flash's sliding-window layers have twice num_key_value_heads (its modeling
    code, not its config). The cache was clipped to the config's KV heads in every layer (a guard
    meant for Falcon-40B, whose code broadcasts keys to every query head)."""
    cost = llm_cost(tiny_mimo_v2_flash(), prompt=24)
    # layer 0 (full): 1 KV head x (16 + 16) x 2 B = 64; layer 1 (sliding): 2 x 32 x 2 B = 128:
    # 192 B per token (before: 2 x 64 = 128)
    assert cost.cache.layer_bytes == (64, 128)
    assert cost.cache.bytes_per_token == 192
    # decode after 24: layer 0 reads 25 x 64 = 1,600, layer 1 its window 8 x 128 = 1,024: 2,624
    # (before: 25 x 64 + 8 x 64 = 2,112)
    assert cost.decode(24).bytes("paged").kv_read == 2_624


def test_a_loop_models_per_loop_cache_is_filled_and_counted() -> None:
    """P8-8: Dory runs its middle layers once per loop and, by default (``per_loop``), caches each
    loop's keys and values in extra cache layers past its own. A decode step raised IndexError
    (a raw traceback from DynamicCache) while filling them, and the KV cache counted the model's
    layers only."""
    config = transformers.DoryConfig(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, sliding_window=8, n_input_layers=1, n_output_layers=1,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        n_recurrent_loops=2, max_position_embeddings=128,
    )  # fmt: skip
    cost = llm_cost(config, prompt=24)
    # cache layers: the 4 layers + the second loop's copies of layers 1 (full) and 2 (sliding),
    # each 2*2*16*2 B = 128 per token: 768 (before: 4 x 128 = 512)
    assert cost.cache.bytes_per_token == 768
    # decode after 24 reads 3 full layers x 25 + 3 sliding x 8 = 99 tokens x 128 B = 12,672
    assert cost.decode(24).bytes("paged").kv_read == 12_672
    # a cached token costs 3 full-attention runs (layer 1 twice, layer 3) x 2*4*(16+16) = 768 2mac
    assert cost.decode(25).flops_2mac - cost.decode(24).flops_2mac == 768


def test_a_window_the_config_names_otherwise_is_taken_from_the_cache() -> None:
    """P8-9: Inkling's windowed layers are "hybrid_sliding" with a ``sliding_window_size`` and
    their own ``swa_`` heads and head dim. The windows were read from ``sliding_window`` on
    "sliding_attention" layers only, so its windowed layer counted as full attention (the paged
    read and the cache grew with the context), and the header gave it the global heads."""
    config = transformers.InklingTextConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, swa_num_attention_heads=4, swa_num_key_value_heads=4,
        swa_head_dim=8, sliding_window_size=8, local_layer_ids=[0], mlp_layer_types=["dense", "dense"],
        max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    cost = llm_cost(config, prompt=24)
    assert cost.lm.windows == (8, None)  # before: (None, None)
    # layer 0: 4 KV heads x (8 + 8) x 2 B = 128 per token, holds its window 8; layer 1: 2 x 32 x 2 B
    # = 128 per token: at 24 tokens 8*128 + 24*128 = 4,096; a decode step after 24 reads
    # 8*128 + 25*128 = 4,224
    assert cost.cache.bytes(24) == 4_096
    assert cost.decode(24).bytes("paged").kv_read == 4_224
    assert "4 heads (4 KV), head dim 8 on layer 0; 4 heads (2 KV), head dim 16 on layer 1" in render_llm(cost)


def test_layers_of_other_shapes_but_equal_bytes_do_not_read_as_one_shape() -> None:
    """P8-1b: layer 1 with 1 KV head of 32 (transformers' per_layer_config) takes 2*1*32*2 B = 128 per
    token, as layer 0's 2 heads of 16 do: the KV line said "2 x layers x KV heads x head dim" (one
    shape) beside a header listing two."""
    config = tiny_gemma4(per_layer_config={1: {"num_key_value_heads": 1, "head_dim": 32}})
    cost = llm_cost(config, prompt=8)
    assert cost.lm.attention_by_layer == ((4, 2, 16, 16), (4, 1, 32, 32))
    assert cost.cache.bytes_per_token == 256  # 128 + 128
    text = render_llm(cost)
    assert "KV cache (sum over the layers of 2 x KV heads x head dim x bytes per element, as each" in text
    assert "KV cache (2 x layers x KV heads x head dim" not in text
