"""LLM mode's edges a new user meets: options without --prompt, a very long generation."""

from fractions import Fraction
from pathlib import Path

import pytest

from flopmeter.cli import run
from flopmeter.llm.phases import Bytes
from flopmeter.llm.serving import EXACT_STEPS, PhaseTime, decode_steps_seconds


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--generate", "10"], "--generate is an option of LLM mode"),
        (["--kv-dtype", "fp8", "--devices", "4"], "--kv-dtype, --devices are options of LLM mode"),
        (["--dtype", "float16", "--step-time", "1"], "--dtype, --step-time are options of LLM mode"),
    ],
)
def test_llm_options_without_prompt_are_refused_not_ignored(argv: list[str], named: str) -> None:
    code, out, err = run(["torchvision:resnet18", *argv])
    assert code == 2 and named in err and "--prompt T" in err and out == ""


def test_bench_in_llm_mode_is_refused_not_ignored() -> None:
    code, out, err = run(["transformers:LlamaConfig", "--prompt", "16", "--bench"])
    assert code == 2 and "--bench does not time LLM mode" in err and out == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--weight-bits", "4"], "--weight-bits scales the roofline's weight bytes: add --roofline"),
        (["--training", "--generate", "8"], "--generate is for serving"),
    ],
)
def test_llm_options_that_would_do_nothing_are_refused(argv: list[str], message: str) -> None:
    code, out, err = run(["transformers:LlamaConfig", "--prompt", "16", *argv])
    assert code == 2 and message in err and out == ""


def test_a_long_generation_sums_its_steps_without_visiting_each() -> None:
    calls: list[int] = []

    def step(n: int) -> PhaseTime:  # compute 1 us per cached token; memory 5 ms + 1 ns per token
        calls.append(n)
        return PhaseTime(0, 0, 1e-6 * n, 5e-3 + 1e-9 * n)

    steps = 1_000_000
    # by hand: memory rules while 1e-6 n < 5e-3 + 1e-9 n, i.e. n <= 5005 (contexts 100 .. 5005),
    # compute from n = 5006 to 1,000,099
    memory = sum(5e-3 + 1e-9 * n for n in range(100, 5006))
    compute = 1e-6 * (5006 + 1_000_099) * (1_000_099 - 5006 + 1) / 2
    assert decode_steps_seconds(step, 100, steps) == pytest.approx(memory + compute, rel=1e-12)
    assert len(calls) == EXACT_STEPS + 1  # run ends only, not a million steps
    calls.clear()
    short = decode_steps_seconds(step, 100, 300)  # short generations: step by step, exactly
    assert short == sum(max(1e-6 * n, 5e-3 + 1e-9 * n) for n in range(100, 400))
    assert len(calls) == 300


def test_bytes_print_whole_counts_as_ints() -> None:
    split = Bytes(100, Fraction(2113536), Fraction(7, 2), 8)
    assert repr(split) == "Bytes(weights=100, kv_read=2113536, kv_write=7/2, activations=8)"


TINY_LLAMA = ["--set", "num_hidden_layers=1", "--set", "hidden_size=64", "--set", "intermediate_size=128",
              "--set", "num_attention_heads=4", "--set", "num_key_value_heads=4", "--set", "vocab_size=100",
              "--set", "max_position_embeddings=64"]  # fmt: skip


def test_a_generation_past_the_models_positions_is_noted() -> None:
    code, out, err = run(["transformers:LlamaConfig", *TINY_LLAMA, "--prompt", "60", "--generate", "10"])
    assert code == 0, err
    assert "reach 69 positions, beyond the config's max_position_embeddings (64)" in out  # 60 + 10 - 1
    code, out, err = run(["transformers:LlamaConfig", *TINY_LLAMA, "--prompt", "60", "--generate", "5"])
    assert code == 0 and "max_position_embeddings" not in out  # 60 + 5 - 1 = 64 fits


def test_a_model_directory_works_in_llm_mode(tmp_path: Path) -> None:
    """README: a config.json or a model directory is a transformers source; LLM mode refused the directory."""
    transformers = pytest.importorskip("transformers")
    transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64).save_pretrained(tmp_path)
    code, out, err = run([str(tmp_path), "--prompt", "8"])
    assert code == 0, err
    assert "GPT2LMHeadModel: 1 layers, hidden 32" in out
