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


TINY_LLAMA_FILE = """import torch
import transformers


def llama(layers=2):
    config = transformers.LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, vocab_size=100,
    )
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def int8():
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model = llama()
    quantize_(model, Int8WeightOnlyConfig())
    return model


def linear():
    return torch.nn.Linear(4, 4)


def bert():
    config = transformers.BertConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4, vocab_size=100
    )
    return transformers.BertForMaskedLM(config).eval()
"""


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "lm.py"
    path.write_text(TINY_LLAMA_FILE)
    return str(path)


def _numbers(cost_dict):
    """The prefill and the decode steps of ``to_dict()``: what both ways must agree on."""
    keys = (
        "prefill",
        "first_decode",
        "last_decode",
        "prefill_fit",
        "decode_fit",
        "params",
        "kv_bytes_per_token",
    )
    return {key: cost_dict[key] for key in keys}


def test_a_model_file_in_llm_mode_gives_the_python_apis_numbers(model_file, tiny_llama_config):
    """docs/llm.md: FILE.py:CALLABLE --prompt passes the model the file builds to llm_cost, as
    flopmeter.llm_cost(model, ...) does in Python: the same prefill and decode numbers."""
    import json

    import flopmeter

    transformers = pytest.importorskip("transformers")
    code, out, err = run([model_file + ":llama", "--prompt", "16", "--generate", "4", "--format", "json"])
    assert code == 0, err
    model = transformers.AutoModelForCausalLM.from_config(tiny_llama_config).eval()
    expected = flopmeter.llm_cost(model, prompt=16, generate=4).to_dict()
    cli = json.loads(out)
    assert cli["prefill"]["flops"] > 0 and cli["last_decode"]["context"] == 18  # 16 + 2 generated before
    assert _numbers(cli) == _numbers(expected)
    # --set passes the factory's arguments, as when counting one forward: 1 layer, not 2
    code, out, err = run([model_file + ":llama", "--set", "layers=1", "--prompt", "16", "--format", "json"])
    assert code == 0, err
    assert json.loads(out)["layers"] == 1 and expected["layers"] == 2
    # --meta builds the file's model on meta: the same counts
    code, out, err = run(
        [model_file + ":llama", "--meta", "--prompt", "16", "--generate", "4", "--format", "json"]
    )
    assert code == 0, err
    assert _numbers(json.loads(out)) == _numbers(expected)


def test_a_quantized_model_file_reads_its_stored_weight_bytes(model_file):
    """torchao Int8WeightOnlyConfig in FILE.py: a decode step reads the int8 values and the
    scales, as tests/test_llm_compressed_bytes.py counts through Python."""
    import json

    pytest.importorskip("torchao.quantization")
    code, out, err = run([model_file + ":int8", "--prompt", "16", "--generate", "4", "--format", "json"])
    assert code == 0, err
    first = json.loads(out)["first_decode"]
    # 80,128 int8 weights * 1 B + 1,124 float32 row scales * 4 = 4,496 + 1,568 other = 86,192
    assert (first["context"], first["bytes"]["paged"]["weights"]) == (16, 86_192), first


def test_a_model_file_in_training_mode(model_file, tiny_llama_config):
    import flopmeter

    transformers = pytest.importorskip("transformers")
    """--training with a model file: training_step(model, ...)'s forward and backward FLOPs."""
    code, out, err = run([model_file + ":llama", "--prompt", "16", "--training", "--units", "plain"])
    assert code == 0, err
    model = transformers.AutoModelForCausalLM.from_config(tiny_llama_config).eval()
    step = flopmeter.training_step(model, tokens=16)
    expected = f"forward {step.forward_flops:,} FLOPs · backward {step.backward_flops:,} FLOPs"
    assert expected in out and step.forward_flops > 0, out


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("linear", "LLM mode needs a causal language model"),  # no .config at all
        ("bert", "causal"),  # a transformers model that is no causal LM: llm_cost's ValueError
    ],
)
def test_a_model_file_that_is_no_causal_lm_is_exit_2(model_file, factory, message):
    code, out, err = run([model_file + ":" + factory, "--prompt", "8"])
    assert code == 2 and message in err and "Traceback" not in err, err
    assert out == ""


def test_dtype_is_refused_for_a_model_file(model_file):
    """--dtype builds a config in that dtype; a model file's model is used as it is built."""
    code, out, err = run([model_file + ":llama", "--prompt", "8", "--dtype", "float16"])
    assert code == 2 and "--dtype builds a config" in err, err


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
