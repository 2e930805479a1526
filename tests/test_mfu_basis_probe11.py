"""Probe 11: the training table says what its MFU divided by, and says when MFU is above 100 %."""

import pytest

transformers = pytest.importorskip("transformers")

import flopmeter  # noqa: E402
from flopmeter.render.llm import render_training  # noqa: E402


def _config():
    return transformers.LlamaConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=128,
        vocab_size=256,
        max_position_embeddings=128,
    )


@pytest.fixture(scope="module")
def step():
    return flopmeter.training_step(_config(), tokens=16, batch=2)


def test_mfu_by_hand_and_its_basis_line(step):
    # N_mm = 2 x (4 x 64^2 + 3 x 64 x 128) + 256 x 64 (lm_head) = 98,304;
    # 6N + 12 L H Q T = 589,824 + 12 x 2 x 4 x 16 x 16 = 614,400 FLOPs per token;
    # 2 x 16 tokens in 1 ms = 32,000 tokens/s on 2 x 312e12 (A100 bf16, dense):
    # 614,400 x 32,000 / 624e12 = 3.1508e-5
    a100 = flopmeter.hardware.get("a100-sxm-80gb")
    mfu = step.mfu(a100, devices=2, step_time=1e-3)
    assert mfu["6N+12LHQT (N=N_mm)"] == pytest.approx(614_400 * 32_000 / 624e12)
    assert step.rate(step_time=1e-3) == 32_000
    text = render_training(step, mfu, basis=(a100, 2, 32_000.0))
    assert "x 32,000.0 tokens/s / (2 x 312.0 TFLOP/s, the dense bfloat16 peak of a100-sxm-80gb)" in text
    assert "MFU above 100 %" not in text


def test_mfu_above_100_percent_is_said(step):
    # 614,400 x 1e9 tokens/s / 312e12 = 1.969: 196.9 %
    a100 = flopmeter.hardware.get("a100-sxm-80gb")
    mfu = step.mfu(a100, tokens_per_second=1e9)
    assert mfu["traced full"] == pytest.approx(614_400 * 1e9 / 312e12)
    text = render_training(step, mfu, basis=(a100, 1, 1e9))
    assert "196.9 %" in text and "NOTE: MFU above 100 %" in text


def test_mfu_divides_by_the_peak_of_the_dtype_the_step_ran_in():
    # a float32 model traced under bfloat16 autocast does its matmuls in bfloat16: MFU must
    # divide by the bfloat16 peak (989.4 TFLOP/s on h100-sxm), not float32's (67.0): the
    # float32 one read MFU 989.4 / 67 = 14.8x too high (review R11-11)
    import torch

    model = transformers.LlamaForCausalLM(_config())  # float32
    plain = flopmeter.training_step(model, tokens=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = flopmeter.training_step(model, tokens=8)
    assert (plain.dtype, plain.peak("h100-sxm")) == ("float32", 67.0e12)
    assert (mixed.dtype, mixed.peak("h100-sxm")) == ("bfloat16", 989.4e12)
    rate = 10_000.0
    assert mixed.mfu("h100-sxm", tokens_per_second=rate)["traced full"] == pytest.approx(
        plain.mfu("h100-sxm", tokens_per_second=rate)["traced full"] * 67.0 / 989.4, rel=0.05
    )  # the same step within the FLOPs autocast moves (a float32 norm's casts)
