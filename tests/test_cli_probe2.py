"""Field probe 2 (CLI and option checks): a model file's EXAMPLE_INPUTS, plain `compare`'s
output options, nonsense bit widths in the compression what-if, and LLM mode on a
bidirectional encoder. Every mistake is one line and exit 2, never a traceback."""

import csv
import io
import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter import models
from flopmeter.cli import run


def model_file(folder: Path, examples: str | None, body: str = "") -> str:
    """A model file whose ``build()`` returns ``Net``: Linear(4, 2) on ``forward(x)``.
    Linear(4, 2) on a batch of B rows: MACs 4*2*B, params 4*2 + 2 = 10."""
    lines = [
        "import torch",
        "from torch import nn",
        "class Net(nn.Module):",
        "    def __init__(self):",
        "        super().__init__()",
        "        self.fc = nn.Linear(4, 2)",
        "    def forward(self, x):",
        "        return self.fc(x)",
        "def build():",
        "    return Net()",
        textwrap.dedent(body),
    ]
    if examples is not None:
        lines.append(f"EXAMPLE_INPUTS = {examples}")
    path = folder / "net.py"
    path.write_text("\n".join(lines) + "\n")
    return f"{path}:build"


def assert_usage_error(code: int, err: str, *messages: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("flopmeter: error:")]
    assert len(lines) == 1, err
    for message in messages:
        assert message in lines[0], err


def json_totals(argv: list[str]) -> dict:
    code, out, err = run([*argv, "-f", "json", "-q"])
    assert code == 0, err
    return json.loads(out)


class TestExampleInputs:
    @pytest.mark.parametrize(
        "examples",
        [
            "'1x4'",  # one spec string, not its characters
            "torch.randn(1, 4)",  # a tensor: its shape and dtype
            "(1, 4)",  # a shape tuple
            "[1, 4]",  # a shape list
            "['1x4']",  # a list of specs
            "[(1, 4)]",  # a list of shapes
            "[torch.randn(1, 4)]",  # a list of tensors
            "{'x': (1, 4)}",  # by argument name
            "{'x': '1x4'}",
        ],
    )
    def test_each_documented_kind_gives_the_input(self, tmp_path, examples):
        data = json_totals([model_file(tmp_path, examples)])
        assert [i["shape"] for i in data["inputs"]] == [[1, 4]]
        assert data["totals"]["macs"] == 8  # 4*2*1

    def test_a_tensor_keeps_its_dtype(self, tmp_path):
        path = tmp_path / "emb.py"
        path.write_text(
            "import torch\nfrom torch import nn\n"
            "def build():\n    return nn.Embedding(10, 3)\n"
            "EXAMPLE_INPUTS = torch.zeros(2, 5, dtype=torch.long)\n"
        )
        data = json_totals([f"{path}:build"])
        assert data["inputs"][0]["shape"] == [2, 5] and data["inputs"][0]["dtype"] == "int64"

    def test_a_dict_names_the_arguments(self, tmp_path):
        source = model_file(tmp_path, "{'x': torch.randn(3, 4)}")
        assert models.load_model(source).default_inputs == [models.InputSpec((3, 4), "float32", "x")]

    @pytest.mark.parametrize("examples", ["None", "'1x4'", "'garbage'", "object()", "[None]", "(1, -4)"])
    def test_input_replaces_example_inputs_entirely(self, tmp_path, examples):
        data = json_totals([model_file(tmp_path, examples), "--input", "3x4"])
        assert [i["shape"] for i in data["inputs"]] == [[3, 4]]
        assert data["totals"]["macs"] == 24  # 4*2*3

    def test_the_library_skips_it_when_asked(self, tmp_path):
        loaded = models.load_model(model_file(tmp_path, "None"), example_inputs=False)
        assert loaded.default_inputs == []

    @pytest.mark.parametrize(
        ("examples", "messages"),
        [
            ("None", ["EXAMPLE_INPUTS in", "is None (NoneType)", "expected a spec string", "--input"]),
            ("3", ["is 3 (int)", "expected"]),
            ("['1x4', None]", ["(list)", "its entry None (NoneType) is none of these"]),
            ("'abc'", ["EXAMPLE_INPUTS in", "bad input spec 'abc'"]),
            ("(1, -4)", ["EXAMPLE_INPUTS in", "negative size"]),
            ("{'x': 'y:1x4'}", ["EXAMPLE_INPUTS in", "names another argument, 'y'"]),
            ("{'not a name': '1x4'}", ["EXAMPLE_INPUTS in", "is not an argument name"]),
            ("torch.zeros(2, dtype=torch.complex64)", ["EXAMPLE_INPUTS in", "torch.complex64"]),
        ],
    )
    def test_anything_else_is_one_line_and_exit_2(self, tmp_path, examples, messages):
        code, _, err = run([model_file(tmp_path, examples), "-q"])
        assert_usage_error(code, err, *messages)

    def test_a_factory_returning_no_module_is_reported_first(self, tmp_path):
        source = model_file(tmp_path, "None", body="def three():\n    return 3\n")
        code, _, err = run([source.replace(":build", ":three"), "-q"])
        assert_usage_error(code, err, "returned int, expected a torch.nn.Module")


def two_models(folder: Path) -> tuple[str, str]:
    """wide: Sequential(Linear(8, 4)), params 8*4 + 4 = 36, MACs 8*4 = 32, FLOPs 2*32 = 64
    (the bias add completes the last of each row's 8 products: (2*8-1)*4 + 4);
    narrow: Sequential(Linear(8, 2)), params 18, MACs 16, FLOPs 32."""
    path = folder / "pair.py"
    path.write_text(
        "from torch import nn\n"
        "def wide():\n    return nn.Sequential(nn.Linear(8, 4))\n"
        "def narrow():\n    return nn.Sequential(nn.Linear(8, 2))\n"
        "EXAMPLE_INPUTS = ['1x8']\n"
    )
    return f"{path}:wide", f"{path}:narrow"


class TestPlainCompare:
    def test_json_quiet_is_json_with_the_ratios(self, tmp_path):
        code, out, err = run(["compare", *two_models(tmp_path), "-f", "json", "-q"])
        assert code == 0, err
        data = json.loads(out)
        assert data["compared_to"].endswith(":wide") and data["convention"] == "exact"
        narrow = data["rows"][1]
        assert (narrow["params"], narrow["macs"], narrow["flops"]) == (18, 16, 32)
        assert narrow["compression"] == 2.0  # 36 / 18
        assert narrow["flops_speedup"] == 2.0  # 64 / 32
        assert all("modules" not in report for report in data["reports"])  # -q: totals only
        assert data["reports"][0]["totals"]["macs"] == 32

    def test_json_without_quiet_holds_each_report_whole(self, tmp_path):
        code, out, err = run(["compare", *two_models(tmp_path), "-f", "json"])
        assert code == 0, err
        assert [r["modules"][1]["name"] for r in json.loads(out)["reports"]] == ["0", "0"]

    def test_quiet_text_is_the_totals_table_only(self, tmp_path):
        code, out, err = run(["compare", *two_models(tmp_path)])
        assert code == 0 and "shared modules" in out, err
        code, out, err = run(["compare", *two_models(tmp_path), "-q"])
        assert code == 0, err
        assert "shared modules" not in out and "2.00x" in out

    def test_csv_and_markdown(self, tmp_path):
        code, out, err = run(["compare", *two_models(tmp_path), "-f", "csv"])
        assert code == 0, err
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["macs"] for r in rows] == ["32", "16"] and rows[1]["flops_speedup"] == "2.0"
        code, out, err = run(["compare", *two_models(tmp_path), "-f", "markdown", "--units", "plain"])
        assert code == 0, err
        assert "| model | params | MACs | FLOPs | compression | FLOPs speedup |" in out
        assert out.count("| 2.00x | 2.00x |") == 1  # narrow's row
        assert "| 0 | Linear | 64 | 32 |" in out  # the shared module's FLOPs
        code, out, err = run(["compare", *two_models(tmp_path), "-f", "markdown", "-q"])
        assert code == 0 and "| model |" in out and "| 0 | Linear |" not in out, err

    def test_bench_times_every_model(self, tmp_path):
        code, out, err = run(["compare", *two_models(tmp_path), "--bench", "-f", "json", "-q"])
        assert code == 0, err
        rows = json.loads(out)["rows"]
        assert all(row["median_seconds"] > 0 for row in rows)
        assert rows[0]["measured_speedup"] == 1.0
        assert rows[1]["measured_speedup"] == pytest.approx(
            rows[0]["median_seconds"] / rows[1]["median_seconds"]
        )
        code, out, err = run(["compare", *two_models(tmp_path), "--bench", "--threads", "1"])
        assert code == 0 and "measured speedup" in out, err

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            (["--plot", "cmp.png"], "compare --plot is for the before/after table of --compression"),
            (["--hardware", "h100-sxm"], "compare --hardware is for"),
            (["--baseline", "float32"], "compare --baseline is for"),
            (["-f", "html"], "compare --format html is for"),
            (["--micronet", "imagenet"], "--micronet scores one model"),
            (["--compression", "--micronet", "imagenet"], "--micronet scores one model"),
            (["--threads", "1"], "--threads sets the threads --bench times with"),
            (["--bench", "--meta"], "--bench times real computation"),
        ],
    )
    def test_options_it_would_ignore_are_refused(self, tmp_path, options, message):
        code, out, err = run(["compare", *two_models(tmp_path), *options])
        assert_usage_error(code, err, message)
        assert out == "" and "counting" not in err  # refused before any model is built

    def test_bench_refuses_an_onnx_file(self, tmp_path):
        onnx_file = tmp_path / "m.onnx"
        onnx_file.write_bytes(b"")
        code, _, err = run(["compare", two_models(tmp_path)[0], str(onnx_file), "--bench"])
        assert_usage_error(code, err, "is an ONNX file")


@pytest.fixture(scope="module")
def view():
    return flopmeter.profile(nn.Linear(8, 4), torch.randn(2, 8)).compression


class TestAssumedBits:
    @pytest.mark.parametrize(
        ("bits", "message"),
        [
            ("w3a99", "activation bits must be 1 to 64, got 99"),
            ("w0a8", "weight bits must be 1 to 64, got 0"),
            ("w64a0", "activation bits must be 1 to 64, got 0"),
            ("w65a8", "weight bits must be 1 to 64, got 65"),
            ("w4a16g0", "a group holds at least 1 weight"),
            (4, "a mapping from module-name prefix to such strings; got int"),
            ({"no.such.module": "w99a8"}, "weight bits must be 1 to 64"),  # checked unused too
            ({3: "w4a8"}, "module-name prefixes"),
        ],
    )
    def test_nonsense_is_a_value_error(self, view, bits, message):
        with pytest.raises(ValueError, match=message):
            view.assume(bits=bits)
        with pytest.raises(ValueError, match=message):
            flopmeter.CompressionOptions(assume_bits=bits)

    def test_the_ends_of_the_range(self, view):
        # Linear(8, 4) on 2 rows: 2*8*4 = 64 MACs; BOPs = MACs * w bits * a bits
        assert view.assume(bits="w1a1").layers[""].bops == 64  # 64*1*1
        assert view.assume(bits="w64a64").layers[""].bops == 262_144  # 64*64*64

    @pytest.mark.parametrize("bits", ["w3a99", "w0a0"])
    def test_cli_exit_2(self, bits):
        tiny = str(Path(__file__).parent / "fixtures" / "tiny_model.py")
        code, _, err = run([f"{tiny}:TinyNet", "--assume-bits", bits, "-q"])
        assert_usage_error(code, err, "must be 1 to 64")
        code, _, err = run(["compare", f"{tiny}:TinyNet", f"{tiny}:TinyNet", "--assume-bits", bits])
        assert_usage_error(code, err, "must be 1 to 64")


BERT = ["--set", "num_hidden_layers=1", "--set", "hidden_size=32", "--set", "num_attention_heads=2",
        "--set", "intermediate_size=64", "--set", "vocab_size=100"]  # fmt: skip


class TestLlmModeNeedsACausalModel:
    @pytest.mark.parametrize("config", ["BertConfig", "RobertaConfig"])
    @pytest.mark.parametrize(
        "mode", [["--prompt", "16", "--generate", "4"], ["--prompt", "16", "--training"]]
    )
    def test_an_encoder_is_refused(self, config, mode):
        pytest.importorskip("transformers")
        code, out, err = run([f"transformers:{config}", *BERT, *mode])
        assert_usage_error(
            code, err, "needs a causal language model", "is_decoder=False", "--set is_decoder=true"
        )
        assert out == ""

    def test_the_same_model_built_as_a_decoder_is_served(self):
        pytest.importorskip("transformers")
        code, out, err = run(["transformers:BertConfig", *BERT, "--set", "is_decoder=true", "--prompt", "16"])
        assert code == 0, err
        assert "Decode step" in out

    def test_the_library_refuses_an_encoder_module(self):
        transformers = pytest.importorskip("transformers")
        config = transformers.BertConfig(
            num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=100
        )
        with torch.device("meta"):
            model = transformers.BertForMaskedLM(config)
        with pytest.raises(
            ValueError, match="BertForMaskedLM from BertConfig runs as a bidirectional encoder"
        ):
            flopmeter.llm_cost(model, prompt=8)


def test_compare_notes_integer_macs_that_flops_leave_out(tmp_path):
    """An int8 model's FLOPs speedup is not a work ratio: a NOTE names its integer MACs."""
    pytest.importorskip("torchao")
    source = tmp_path / "models.py"
    source.write_text(
        "import torch\n"
        "from torch import nn\n"
        "def float_linear():\n"
        "    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Linear(16, 8))\n"
        "def int8_linear():\n"
        "    from torchao.quantization import quantize_, Int8DynamicActivationInt8WeightConfig\n"
        "    model = float_linear()\n"
        "    quantize_(model, Int8DynamicActivationInt8WeightConfig())\n"
        "    return model\n"
    )
    models = [f"{source}:float_linear", f"{source}:int8_linear"]
    code, out, err = run(["compare", *models, "-i", "3x16", "--units", "plain"])
    assert code == 0, err
    # 3 rows x 16 x 8 = 384 MACs, all integer in the int8 model; its float work: 24 FLOPs
    assert "NOTE: " in out and "384 of its 384 MACs are integer arithmetic" in out
    assert out.count("NOTE: ") == 1  # the float model does no integer work
    assert "32.00x" in out  # docs/compression.md: 768 float FLOPs against 24
    assert "--compression gives its BOPs and a speedup estimate" in out  # the NOTE points there
    code, out, err = run(["compare", *models, "-i", "3x16", "-f", "json"])
    rows = json.loads(out)["rows"]
    assert [row["integer_macs"] for row in rows] == [0, 384]
    assert rows[1]["flops_speedup"] == 768 / 24  # 2*16*8*3 = 768 (bias) against 24 float FLOPs


def test_compare_notes_the_integer_macs_of_a_quantized_onnx_file(tmp_path):
    """onnxruntime's quantize_dynamic: MatMulInteger is uint8 x int8 integer work."""
    pytest.importorskip("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).eval()
    dense, quantized = tmp_path / "dense.onnx", tmp_path / "q.onnx"
    torch.onnx.export(model, (torch.randn(1, 64),), str(dense), dynamo=False, opset_version=17)
    quantize_dynamic(str(dense), str(quantized), weight_type=QuantType.QInt8)
    code, out, err = run(["compare", str(dense), str(quantized), "-q"])
    assert code == 0, err
    # 64*64 + 64*10 = 4,736 MACs, every one a MatMulInteger in the quantized file
    assert "q.onnx: 4,736 of its 4,736 MACs are integer arithmetic" in out
    assert "its own report lists the integer contractions" in out  # --compression takes PyTorch models only
    assert out.count("NOTE: ") == 1
