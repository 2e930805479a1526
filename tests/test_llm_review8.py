"""Review of probe 8's LLM-mode change (R8 ids in probe8-review.md): each test failed before its fix."""

import pytest

from flopmeter.llm import llm_cost
from flopmeter.render.llm import render_llm

transformers = pytest.importorskip("transformers")


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
