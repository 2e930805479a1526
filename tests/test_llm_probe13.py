"""Probe 13: LLM-mode leftovers of probe 12 (P12-L8: Mamba-2's chunk padding said under the
training table and the prefill)."""

from __future__ import annotations

import pytest

transformers = pytest.importorskip("transformers")


def tiny_falcon_h1(chunk: int = 256) -> object:
    """2 layers, each attention (4 heads, 2 KV) beside a Mamba-2 mixer (4 heads of 32, state 8)."""
    return transformers.FalconH1Config(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100, mamba_n_heads=4, mamba_d_head=32, mamba_d_state=8,
        mamba_n_groups=1, mamba_expand=2, mamba_d_ssm=128, mamba_chunk_size=chunk,
    )  # fmt: skip


def test_training_says_the_mamba2_scan_pads_to_its_chunk() -> None:
    """P12-L8: 16 tokens of a tiny Falcon-H1 traced 9.08 M FLOPs per token against PaLM's 822,528:
    transformers' torch Mamba-2 path pads the scan to a chunk of 256, without a word."""
    from flopmeter.llm.training import training_step
    from flopmeter.render.llm import render_training

    step = training_step(tiny_falcon_h1(), tokens=16)
    assert step.lm.scan_chunks == (2, 256)  # two mixers, chunk 256
    text = render_training(step)
    # 16 tokens padded to ceil(16 / 256) * 256 = 256
    assert (
        "NOTE: FalconH1ForCausalLM's 2 Mamba-2 layers run transformers' torch path (no mamba_ssm kernels), "
        "whose chunked scan pads the 16 tokens to 256 (a chunk of 256): the traced rows count the padded "
        "positions' scan"
    ) in text
    # the closed form it is set against: 6 N_mm + 12 L H Q T = 6 * 132,992 + 12 * 2 * 4 * 16 * 16 = 822,528
    assert "822.53 K" in text


def test_no_padding_note_at_a_multiple_of_the_chunk() -> None:
    from flopmeter.llm.training import training_step
    from flopmeter.render.llm import render_training

    # chunk 8: 16 tokens are two whole chunks (16 % 8 = 0), 12 are padded to 16 (ceil(12 / 8) * 8)
    assert "Mamba-2" not in render_training(training_step(tiny_falcon_h1(8), tokens=16))
    assert "pads the 12 tokens to 16 (a chunk of 8)" in render_training(
        training_step(tiny_falcon_h1(8), tokens=12)
    )


def test_the_prefill_says_it_too() -> None:
    from flopmeter.llm import llm_cost
    from flopmeter.render.llm import render_llm

    cost = llm_cost(tiny_falcon_h1(), prompt=24)
    # 24 tokens padded to 256; the decode step runs the one-token update, no scan
    assert "whose chunked scan pads the 24 tokens to 256 (a chunk of 256): the prefill counts" in render_llm(
        cost
    )


def test_a_transformer_has_no_scan() -> None:
    from flopmeter.llm import language_model

    config = transformers.LlamaConfig(
        num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=64,
    )  # fmt: skip
    assert language_model(config).scan_chunks is None


def test_a_tied_table_is_said_in_the_header() -> None:
    """P12-R2: with tie_word_embeddings the header read "embeddings 0" and nothing else: the table
    is counted once, as lm_head, which the header now says."""
    import json

    from flopmeter.llm import llm_cost
    from flopmeter.render.llm import render_llm

    def config(tied: bool) -> object:
        return transformers.Qwen2Config(
            num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=64, tie_word_embeddings=tied,
        )  # fmt: skip

    tied, untied = llm_cost(config(True), prompt=8), llm_cost(config(False), prompt=8)
    # the table: vocab 64 x hidden 32 = 2,048. Layer: q 32*32 + k, v 32*16 each + o 32*32 = 3,072;
    # MLP 3*32*64 = 6,144: 9,216 (Kaplan N); N_mm = 9,216 + lm_head 2,048 = 11,264 either way
    assert (tied.lm.params.matmul, tied.lm.params.kaplan, tied.lm.params.lm_head) == (11_264, 9_216, 2_048)
    assert (tied.lm.params.embedding, untied.lm.params.embedding) == (0, 2_048)
    # N_total: untied holds the table twice, tied once: 2,048 apart
    assert untied.lm.params.total - tied.lm.params.total == 2_048
    assert tied.lm.params.tied and not untied.lm.params.tied
    header = next(line for line in render_llm(tied).splitlines() if line.startswith("params:"))
    assert header.endswith(
        "embeddings 0 (tied: the input table is lm_head's weight, its 2,048 counted once, in N_mm)"
    )
    assert next(line for line in render_llm(untied).splitlines() if line.startswith("params:")).endswith(
        "embeddings 2,048"
    )
    assert json.loads(json.dumps(tied.to_dict()))["params"]["tied"] is True
