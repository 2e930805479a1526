"""Review of probe 8's LLM-mode change (R8 ids in docs/probe-8/review.md): each test failed before its fix."""

import pytest

from flopmeter.llm import llm_cost
from flopmeter.render.llm import render_llm

transformers = pytest.importorskip("transformers")

from test_llm_probe8 import tiny_mimo_v2_flash  # noqa: E402 - needs transformers, as that module does


def test_chunked_layers_are_not_read_as_sliding_windows_from_the_cache() -> None:
    """R8-1: transformers caches a chunked-attention layer (Llama 4) in a DynamicSlidingWindowLayer
    whose sliding_window is the chunk; probe 8 took windows from the cache for every layer the config
    gives none, so Llama 4's chunked layers became sliding-window ones too: the header said
    "sliding-window attention: window 8 on 1 of 2 layers" and the decode note spoke of a window."""
    config = transformers.Llama4TextConfig(
        vocab_size=100, hidden_size=64, intermediate_size=128, intermediate_size_mlp=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, attention_chunk_size=8,
        num_local_experts=2, num_experts_per_tok=1, no_rope_layers=[1, 0], interleave_moe_layer_step=1,
    )  # fmt: skip
    cost = llm_cost(config, prompt=24, generate=4)
    assert cost.lm.chunks == (8, None)  # layer 0 chunked (it has rope), layer 1 full (NoPE)
    assert cost.lm.windows == (None, None)  # before: (8, None), the chunk again as a window
    text = render_llm(cost)
    assert "sliding-window attention" not in text
    assert "chunked attention (chunk 8) makes a decode step's cost piecewise" in text
    # the cache is unchanged by the fix: 2*2*16*2 B = 128 per token and layer; at 27 tokens (24 +
    # 4 - 1) layer 0 holds its chunk's 27 - 24 = 3 tokens, layer 1 27: 30*128 = 3,840 B
    assert cost.cache.bytes(27) == 3_840


def test_a_loop_model_with_hybrid_layers_of_their_own_heads_decodes_and_sizes_its_copies() -> None:
    """R8-3: Inkling-2-Loop runs layers 2-3 twice and caches the second pass in copies of their
    cache layers (as Dory). A decode step raised ValueError ("Cannot call `update_conv_state` on a
    non-LinearAttention layer") from the plain cache layers flopmeter appended for the copies; and
    the copy of the sliding layer (4 KV heads of 8, its swa_ heads) was clipped to the config's 2
    KV heads (the Falcon-40B guard, read with the model's global heads for a copy)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    config = CONFIG_MAPPING["inkling2_loop_text"](
        vocab_size=128, unpadded_vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, swa_num_attention_heads=4,
        swa_num_key_value_heads=4, swa_head_dim=8, sliding_window_size=8, layer_types=["hybrid_sliding", "hybrid"] * 3,
        n_routed_experts=4, num_experts_per_tok=2, n_layers_per_attn_res_block=2, loop_layer_index_start=2,
        loop_layer_index_end=4, loop_num_passes=2, loop_gate_rank=8, max_position_embeddings=256,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    model = transformers.AutoModelForCausalLM.from_config(config)  # float32: its lm_head runs in float32
    cost = llm_cost(model, prompt=24)
    # 6 layers + the second pass's copies of layers 2 (sliding) and 3: 8 cache layers, each
    # 64 elements a token (sliding 4 x (8 + 8), full 2 x (16 + 16)) x 4 B = 256: 2,048 B per token
    # (before: the sliding copy clipped to 2 x 16 = 32 elements, 128 B: 1,920)
    assert cost.cache.bytes_per_token == 2_048
    # 5 tokens: 5 x 2,048 = 10,240 B, the bytes of the cache transformers fills in a real forward
    assert cost.cache.bytes(5) == 10_240
    # decode after 24 reads 4 sliding layers x 8 + 4 full x 25 = 132 tokens x 256 B = 33,792
    # (before: ValueError from the decode trace)
    assert cost.decode(24).bytes("paged").kv_read == 33_792
    # a cached token costs 4 full-attention runs (layers 1, 3, 5 and 3 again) x 2*4*(16+16) = 1,024
    assert cost.decode(25).flops_2mac - cost.decode(24).flops_2mac == 1_024


def test_layers_whose_code_caches_more_kv_heads_than_the_config_say_so_in_the_header() -> None:
    """R8-4: MiMo-V2-Flash's sliding layers attend with twice num_key_value_heads (its modeling
    code); P8-7 sized their cache so, but the header and JSON ``attention_by_layer`` kept the
    config's 1 KV head for every layer, beside a KV line saying the layers differ."""
    cost = llm_cost(tiny_mimo_v2_flash(), prompt=24)
    # layer 0 (full): 1 KV head of 16; layer 1 (sliding): 2 x 1 = 2 KV heads of 16
    assert cost.lm.attention_by_layer == ((4, 1, 16, 16), (4, 2, 16, 16))  # before: (4, 1, 16, 16) twice
    assert "4 heads (1 KV), head dim 16 on layer 0; 4 heads (2 KV), head dim 16 on layer 1" in render_llm(
        cost
    )
    # the cache as P8-7: 1 x 32 x 2 B = 64 + 2 x 32 x 2 B = 128
    assert cost.cache.layer_bytes == (64, 128)
