"""LLM mode from the command line, as the README shows it."""

import pytest

from flopmeter.cli import run

pytest.importorskip("transformers")


def test_readme_command_prints_prefill_decode_and_tokens_per_second_on_two_presets():
    """The README's command: the default LlamaConfig is Llama-2-7B's shape."""
    code, out, err = run(
        [
            "transformers:LlamaConfig",
            "--prompt",
            "2048",
            "--generate",
            "256",
            "--roofline",
            "h100-sxm,a100-sxm-80gb",
        ]
    )
    assert code == 0, err
    assert "Prefill, T = 2048" in out and "Decode step at n = 2048 (first)" in out
    # the exact forms: prefill with the last position's logits, decode 2*N_mm + 4*L*d*(n+1)
    assert "decode(n)  = 524,288*n + 13,214,679,040" in out
    assert "prefill(T) = 524,288*T^2 + 12,952,010,752*T + 262,144,000" in out
    assert "512.00 KiB per token" in out  # 2*32*32*128*2 B
    # 28,725,003,419,648 / 2048 per prompt token, against 2 N_total = 13,476,831,232
    assert "per token: 14.03 GFLOPs" in out and "2 N_total = 13.48 GFLOPs" in out
    rows = [line for line in out.splitlines() if line.startswith(("h100-sxm ", "a100-sxm-80gb "))]
    assert len(rows) == 2 and "tokens/s" in out and all(" ms " in row for row in rows)


def test_training_mfu_from_the_command_line():
    code, out, err = run(
        [
            "transformers:LlamaConfig",
            "--set",
            "num_hidden_layers=1",
            "--set",
            "hidden_size=64",
            "--set",
            "intermediate_size=128",
            "--set",
            "num_attention_heads=4",
            "--set",
            "vocab_size=100",
            "--prompt",
            "32",
            "--training",
            "--roofline",
            "a100-sxm-80gb",
            "--step-time",
            "0.001",
        ]
    )
    assert code == 0, err
    for convention in ("traced full", "traced causal", "6N+12LHQT (N=N_mm)", "6N (N=N_total)"):
        assert convention in out
    assert "MFU" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["torchvision:resnet18", "--prompt", "8"], "transformers causal LM config"),
        (["transformers:LlamaConfig", "--prompt", "0"], "--prompt T with T >= 1"),
        (["transformers:T5Config", "--set", "num_layers=1", "--prompt", "8"], "causal language model"),
    ],
)
def test_llm_mode_usage_errors_exit_2(argv, message):
    code, out, err = run(argv)
    assert code == 2 and message in err, err


def test_a_model_file_in_llm_mode_is_pointed_to_python(tmp_path):
    """docs/llm.md: the command line takes a config; a model object (a compressed one built in
    FILE.py) goes through ``flopmeter.llm_cost(model, ...)``: refused with exit 2 saying so."""
    source = tmp_path / "net.py"
    source.write_text("import torch\n\ndef model():\n    return torch.nn.Linear(4, 4)\n")
    code, out, err = run([str(source), "--prompt", "8"])
    assert code == 2 and "a model object (from FILE.py" in err and "flopmeter.llm_cost(model" in err, err


SMALL = [
    "--set",
    "num_hidden_layers=2",
    "--set",
    "hidden_size=64",
    "--set",
    "intermediate_size=128",
    "--set",
    "num_attention_heads=4",
    "--set",
    "num_key_value_heads=2",
    "--set",
    "vocab_size=100",
]


def test_what_if_rows_per_module_tables_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "length.png"
    code, out, err = run(
        ["transformers:LlamaConfig", *SMALL, "--prompt", "64", "--generate", "4", "--roofline", "h100-sxm"]
        + ["--kv-dtype", "int4", "--weight-bits", "4", "--depth", "1", "--plot", str(plot)]
    )
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("h100-sxm ")]
    assert [row.split()[1] for row in rows] == ["16/16", "4/4"]  # native, then the what-if
    assert "declared (4 bits): 64 B per token" in out  # 2*2*2*16 * 4/8 bits
    assert "Prefill per module" in out and "lm_head" in out
    assert plot.stat().st_size > 0


def test_json_output_carries_the_exact_numbers():
    import json

    code, out, err = run(
        ["transformers:LlamaConfig", *SMALL, "--prompt", "64", "--roofline", "h100-sxm", "-f", "json"]
    )
    assert code == 0, err
    data = json.loads(out)
    # decode f(n) = 2*N_mm + 2*L*4*32*(n+1) = 160,256 + 512*(n+1) (see test_llm_small)
    assert data["first_decode"]["flops_2mac"] == 160_256 + 512 * 65
    assert data["decode_fit"]["coefficients"] == [160_768, 512] and data["decode_fit"]["exact"]
    assert data["kv_bytes_per_token"] == 256
    assert data["roofline"][0]["hardware"] == "h100-sxm" and data["roofline"][0]["tokens_per_second"] > 0
    code, out, err = run(["transformers:LlamaConfig", *SMALL, "--prompt", "8", "-f", "csv"])
    assert code == 2 and "not csv" in err


def test_batch_size_serves_several_sequences():
    import json

    code, out, err = run(
        ["transformers:LlamaConfig", *SMALL, "--prompt", "64", "--batch-size", "4", "-f", "json"]
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["batch"] == 4
    assert data["first_decode"]["flops_2mac"] == 4 * (160_256 + 512 * 65)
    assert data["first_decode"]["bytes"]["paged"]["kv_read"] == 4 * 65 * 256


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--generate", "0"], "--generate must be at least 1, got 0"),
        (["--generate", "-1"], "--generate must be at least 1, got -1"),
        (["--source", "0"], "--source must be at least 1, got 0"),
        (["--roofline", "h100-sxm", "--weight-bits", "0"], "--weight-bits must be at least 1, got 0"),
        (
            ["--roofline", "h100-sxm", "--weight-bits", "100"],
            "--weight-bits must be at most 64 (float64's bits per weight), got 100",
        ),
        (["--kv-dtype", "100"], "--kv-dtype: bits per element must be at most 64 (float64's), got 100"),
        (["--kv-dtype", "int3"], "--kv-dtype: unknown cache dtype 'int3'"),
        (["--kv-dtype", "0"], "--kv-dtype: bits per element must be positive, got 0"),
        (["--dtype", "float7"], "--dtype: unknown dtype 'float7'"),
    ],
)
def test_llm_option_values_refused_before_the_model_is_built(option, message, monkeypatch):
    """Probe 12 (P12-U1): these were refused only after building the model (--weight-bits 0 after
    tracing the whole cost), their messages naming Python's argument (``generate must be ...``);
    README: a bad option value is checked before anything is counted, exit 2."""
    import flopmeter.cli_llm

    def never(*args, **kwargs):
        raise AssertionError("the model was built before the option was checked")

    monkeypatch.setattr(flopmeter.cli_llm, "load_model", never)
    code, out, err = run(["transformers:LlamaConfig", *SMALL, "--prompt", "8", *option])
    assert code == 2 and message in err, err
    assert "Traceback" not in err and out == ""
