"""Promises of README.md and docs/*.md that had no test (probe-5, area D: docs/probe-5/docs.md).

Each test names the sentence it holds to; each failed on the code before its fix."""

import json
import re
import socket
from pathlib import Path

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.cli import run
from flopmeter.render import formats
from test_compression import BUILDERS

ROOT = Path(__file__).parent.parent


def test_peak_takes_a_torch_dtype_as_well_as_its_name():
    """P5-D5, docs/speed.md: "`hw.peak(dtype)` takes torch dtype names". A torch.dtype itself
    (what `report.ops` and a model's parameters hold) raised AttributeError: 'split'."""
    t4 = flopmeter.hardware.get("t4")  # FP32 8.1, FP16 65, INT8 130 TOPS (its datasheet)
    assert t4.peak(torch.float16) == t4.peak("float16") == 65e12
    assert t4.peak(torch.qint8) == 130e12  # qint8 uses the int8 figure
    assert t4.peak(torch.float32) == 8.1e12
    assert t4.ridge_point(torch.float16) == pytest.approx(65e12 / 320e9)  # 203.1 FLOPs/byte
    with pytest.raises(TypeError, match="dtype name such as 'float16' or a torch.dtype, got 16"):
        t4.peak(16)  # type: ignore[arg-type]


def test_peak_refuses_a_dtype_name_it_does_not_know():
    """P5-R6: a name that is no dtype ("fp16", "bf16", a typo) silently got the float32 peak,
    8x too low for float16 on a T4; "torch.float16" (str of a dtype) too."""
    t4 = flopmeter.hardware.get("t4")
    for name in ("fp16", "bf16", "flaot16"):
        with pytest.raises(ValueError, match=f"unknown dtype {name!r}"):
            t4.peak(name)
    assert t4.peak("torch.float16") == 65e12
    # an ONNX float8 name (no underscore) is a float8 dtype: H100's FP8 1,978.9 TFLOP/s, not FP32's 67
    assert flopmeter.hardware.get("h100-sxm").peak("float8e4m3fn") == 1978.9e12


@pytest.fixture
def stack(tmp_path: Path) -> str:
    path = tmp_path / "stack.py"
    path.write_text(BUILDERS)  # dense(): Linear(100, 50), ReLU, Linear(50, 10); pruned(): 50 % of layer 0
    return str(path)


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown", "text"])
def test_compare_quiet_total_row_says_what_changed(stack: str, fmt: str) -> None:
    """P5-D2, README "`-q`: the totals only": `compare --compression -q` kept the total row
    but its `change` read "unchanged" for a model pruned in place (the full table's total
    says "in place"): the total's change was worked out from the rows -q had dropped."""
    args = ["compare", f"{stack}:dense", f"{stack}:pruned", "--input", "1x100", "--compression", "-f", fmt]
    code, quiet, err = run([*args, "-q"])
    assert code == 0, err
    code, full, err = run(args)
    assert code == 0, err
    if fmt == "json":
        rows = json.loads(quiet)["rows"]
        assert [(r["module"], r["change"]) for r in rows] == [("total", "in place")]
        total = json.loads(full)["rows"][-1]
        assert rows[0] == total  # the same total row, with or without -q
        # nonzeros after / before: (50*100/2 + 50 + 50*10 + 10) / (50*100 + 50 + 50*10 + 10) = 3,060 / 5,560
        assert total["nonzero_ratio"] == pytest.approx(3_060 / 5_560)
    else:
        assert "in place" in quiet and "unchanged" not in quiet.replace("(unchanged", "")


def test_quiet_json_holds_no_per_layer_list(stack: str) -> None:
    """P5-D3, README "`-q` prints the totals only, in the chosen `--format` (JSON stays JSON)":
    the JSON of `-q` kept the compression view's per-layer list (3,000 lines for resnet50)
    and, with --roofline, the roofline's per-module rows."""
    code, out, err = run([f"{stack}:pruned", "--input", "1x100", "-f", "json", "-q", "--roofline", "t4"])
    assert code == 0, err
    data = json.loads(out)
    assert "modules" not in data and "operators" not in data
    assert "layers" not in data["compression"] and "modules" not in data["roofline"]
    # the totals stay: MACs 100*50 + 50*10 = 5,500; nonzeros 50*100/2 + 50 + 50*10 + 10 = 3,060
    assert data["compression"]["totals"]["macs_dense"] == 5_500
    assert data["compression"]["totals"]["nonzero_params"] == 3_060
    assert data["roofline"]["latency_seconds"] > 0
    code, out, err = run(
        ["compare", f"{stack}:dense", f"{stack}:pruned", "--input", "1x100", "-f", "json", "-q"]
    )
    assert code == 0, err
    assert all("layers" not in report["compression"] for report in json.loads(out)["reports"])
    code, full, err = run([f"{stack}:pruned", "--input", "1x100", "-f", "json"])  # without -q: every layer
    assert [layer["name"] for layer in json.loads(full)["compression"]["layers"]] == ["0", "2"]


def _documented_json_keys() -> set[str]:
    """The first column of the table in docs/json-schema.md."""
    text = (ROOT / "docs" / "json-schema.md").read_text()
    return set(re.findall(r"^\| `(\w+)` \|", text, flags=re.MULTILINE))


def test_every_top_level_json_key_is_documented() -> None:
    """P5-D1, docs/json-schema.md "(The keys above are checked by tests/test_golden.py.)":
    they were not; `overhead` and `compression` were written but not documented, and the doc
    said the JSON drops the compression view and the overhead bucket."""
    model = nn.Sequential(nn.Linear(4, 3))
    report = flopmeter.profile(model, torch.randn(2, 4))
    hw = flopmeter.hardware.get("t4")
    sweep = flopmeter.predict_batches(model, torch.randn(2, 4), batch_sizes=[1, 2], hardware=hw)
    timing = flopmeter.benchmark(model, torch.randn(2, 4), warmup=1, repeat=1)
    data = json.loads(formats.to_json(report, roofline=report.roofline(hw), timings=timing, sweep=sweep))
    assert set(data) == _documented_json_keys()
    assert data["totals"]["macs"] == 24  # 2 rows * 4 * 3


def test_ptflops_default_counts_relu_and_pooling_layers_twice():
    """P5-D4, README and docs/conventions.md: ptflops 0.7.5's default was said to count
    "each nn.ReLU twice"; it counts every ReLU *and pooling* layer twice (its module hook
    and the patched F.* the module calls): alexnet 716,441,128 - 715,561,896 = 879,232 =
    ReLU 493,184 + MaxPool inputs 376,832 + AdaptiveAvgPool inputs 9,216."""
    ptflops = pytest.importorskip("ptflops")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    options = dict(as_strings=False, print_per_layer_stat=False)
    theirs, _ = ptflops.get_model_complexity_info(model, (3, 8, 8), **options)
    once, _ = ptflops.get_model_complexity_info(
        model, (3, 8, 8), backend_specific_config={"count_functional": False}, **options
    )
    ours, _ = flopmeter.get_model_complexity_info(model, (3, 8, 8), **options)
    # conv 4*8*8 * 3*3*3 = 6,912 MACs + 256 bias adds; ReLU 256; MaxPool 256 inputs;
    # AdaptiveAvgPool 4*4*4 = 64 inputs; Linear 4*2 = 8 MACs + 2 bias adds: 7,754
    assert ours == once == 7_754
    assert theirs - once == 256 + 256 + 64  # ReLU, MaxPool and AdaptiveAvgPool each counted again


@pytest.fixture
def no_sockets(monkeypatch):
    """Any network connection fails the test (timm and transformers download through
    huggingface_hub, torchvision through torch.hub: all open a socket)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    "source, settings, macs",
    [
        # resnet18 at its 224x224 crop: 1,814,073,344 MACs (torchvision's resnet18 has the same layers)
        ("timm:resnet18", [], 1_814_073_344),
        # one BERT layer of width 32, 128 tokens: Q, K, V, O 4*32*32 + FFN 2*32*37 = 6,464 per token
        # * 128 = 827,392; attention 2 * 128*128*32 = 1,048,576; pooler 32*32 = 1,024: 1,876,992
        (
            "transformers:BertConfig",
            ["--set", "num_hidden_layers=1", "--set", "hidden_size=32", "--set", "intermediate_size=37"]
            + ["--set", "num_attention_heads=2", "--input", "input_ids:1x128:int64"],
            1_876_992,
        ),
    ],
)
def test_timm_and_transformers_sources_build_offline(no_sockets, source, settings, macs):
    """P5-D7, README "No weights are downloaded": tested for torchvision only
    (tests/test_model_sources.py); timm and transformers sources are built from their
    configs with the network refused."""
    code, out, err = run([source, *settings, "-f", "json", "-q"])
    assert code == 0, err
    assert json.loads(out)["totals"]["macs"] == macs


def _torch_entry_points() -> dict[str, object]:
    """The functions a patching counter (ptflops, thop, DeepSpeed's profiler) replaces."""
    import torch.nn.functional as F

    names = ["relu", "conv2d", "linear", "scaled_dot_product_attention", "softmax", "layer_norm"]
    found: dict[str, object] = {f"F.{name}": getattr(F, name) for name in names}
    found |= {"torch.matmul": torch.matmul, "torch.einsum": torch.einsum, "torch.bmm": torch.bmm}
    found |= {"Tensor.__matmul__": torch.Tensor.__matmul__, "Tensor.matmul": torch.Tensor.matmul}
    found |= {"Module.__call__": nn.Module.__call__, "Linear.forward": nn.Linear.forward}
    return found


@pytest.mark.parametrize("shapes_only", [None, False])
def test_nothing_is_patched_while_counting(shapes_only):
    """P5-D8, README "Nothing is patched": the one check (tests/test_no_trace.py) looked after
    the profile, and half of it (`torch.matmul is torch.matmul`) could not fail. Here the
    model's forward itself sees the functions torch had before the call."""
    seen: list[dict[str, object]] = []

    class Looks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            seen.append(_torch_entry_points())
            return torch.nn.functional.relu(self.fc(x)) @ torch.ones(4, 2)

    before = _torch_entry_points()
    report = flopmeter.profile(Looks(), torch.randn(3, 4), shapes_only=shapes_only)
    # fc 3*4*4 = 48 MACs, (3x4) @ (4x2) = 24 MACs
    assert report.macs == 72 and seen
    assert all(entry == before for entry in seen)
    assert _torch_entry_points() == before


def test_profiling_a_compiled_module_compiles_nothing():
    """P5-D9, docs/modes.md "`torch.compile`d modules ... and profiling compiles nothing":
    the listed test (tests/test_modes.py) checked the numbers and names only."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    compiled = torch.compile(model)
    report = flopmeter.profile(compiled, torch.randn(2, 4))
    assert report.macs == 32  # 2 rows * 4 * 4
    assert list(report.modules) == ["", "0", "1"]  # the original's names
    assert counters["frames"]["total"] == 0  # dynamo was never asked to compile a frame
    compiled(torch.randn(2, 4))  # a plain call does compile: the counter is live
    assert counters["frames"]["total"] >= 1
    torch._dynamo.reset()


@pytest.mark.parametrize(
    "source, setting",
    [
        ("torchvision:resnet18", "weights=IMAGENET1K_V1"),
        ("torchvision:fcn_resnet50", "weights_backbone=DEFAULT"),
    ]
    + [("timm:resnet18", "pretrained=true")],
)
def test_settings_that_ask_for_weights_are_refused(no_sockets, source, setting):
    """P5-D10, README "No weights are downloaded: every `*weights*` argument of a torchvision
    builder is off": `--set weights=IMAGENET1K_V1` turned it back on and torchvision began a
    45 MB download (refused here only because the test has no network: a user's machine would
    have downloaded it); timm's `--set pretrained=true` failed with "got multiple values"."""
    code, out, err = run([source, "--set", setting, "--meta", "-q"])
    assert code == 2 and out == ""
    assert "would download weights, and flopmeter never does" in err and "network access" not in err


def test_settings_that_keep_weights_off_are_taken(no_sockets):
    """P5-D10: `--set pretrained=false` (timm) and `weights_backbone=null` (torchvision) say
    what flopmeter does anyway: accepted (timm's had failed with "got multiple values")."""
    code, out, err = run(["timm:resnet18", "--set", "pretrained=false", "-f", "json", "-q"])
    assert code == 0, err
    assert json.loads(out)["totals"]["macs"] == 1_814_073_344  # resnet18 at 224x224
    assert run(["torchvision:fcn_resnet50", "--set", "weights_backbone=null", "--meta", "-q"])[0] == 0


def _tests_named_in_the_docs() -> list[str]:
    """Every `test_name` README.md and docs/*.md give as the test of a promise (test files'
    names, `test_x.py` / `tests/test_x`, left out)."""
    texts = [(ROOT / "README.md").read_text(), *(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))]
    names = set()
    for text in texts:
        names |= set(re.findall(r"(?<![/\w])(test_\w+)(?!\.py|\w)", text))
    return sorted(name for name in names if not (ROOT / "tests" / f"{name}.py").exists())


def test_every_test_the_docs_name_exists():
    """docs/modes.md: "Each line is checked by a test (named in brackets)"; docs/field-reports.md
    had this check for its own table only."""
    defined = set()
    for path in (ROOT / "tests").glob("*.py"):
        defined |= set(re.findall(r"^\s*def (test_\w+)\(", path.read_text(), flags=re.M))
    named = _tests_named_in_the_docs()
    assert len(named) > 100
    assert [name for name in named if name not in defined] == []


def test_json_holds_every_module_and_operator_whatever_top_depth_and_by(stack: str) -> None:
    """README: "`--top`, `--depth` and `--by op` apply to the table, CSV and Markdown alike
    (JSON always holds every module and operator)": no test held the JSON half."""
    source = [f"{stack}:dense", "--input", "1x100", "-f", "json"]
    code, plain, err = run(source)
    assert code == 0, err
    for options in (
        ["--top", "1"],
        ["--depth", "0"],
        ["--by", "op"],
        ["--top", "1", "--depth", "1", "--by", "op"],
    ):
        code, out, err = run([*source, *options])
        assert code == 0, err
        data = json.loads(out)
        assert [m["name"] for m in data["modules"]] == ["", "0", "1", "2"]  # Linear, ReLU, Linear
        assert sorted(o["op"] for o in data["operators"]) == sorted(
            o["op"] for o in json.loads(plain)["operators"]
        )
        assert data["totals"]["macs"] == 5_500  # 100*50 + 50*10


README = (ROOT / "README.md").read_text()


def test_readme_alexnet_printout_is_what_the_tool_prints() -> None:
    """The README's first output block and its 30-second Python numbers, against the tool
    (nothing held them: a change to the tree's layout or a count would have left them stale)."""
    code, out, err = run(["torchvision:alexnet", "--meta"])
    assert code == 0, err
    block = README.split("```\ntorchvision:alexnet:", 1)[1].split("```", 1)[0]
    shown = ["torchvision:alexnet:" + block.splitlines()[0], *block.splitlines()[1:]]
    printed = out.splitlines()
    for line in shown:
        if line.strip() == "...":
            continue
        stem = line.removesuffix("...)")  # a long line the README cuts
        assert any(p == line or (stem != line and p.startswith(stem)) for p in printed), line
    model = __import__("torchvision").models.alexnet()
    report = flopmeter.profile(model, torch.randn(1, 3, 224, 224))
    convs = 70_276_800 + 223_948_800 + 112_140_288 + 149_520_384 + 99_680_256  # C_o*H_o*W_o*C_i*K*K each
    linears = 9_216 * 4_096 + 4_096 * 4_096 + 4_096 * 1_000
    elementwise = 493_184 + 706_560 + 9_216  # ReLU outputs, max pool 8 per output, adaptive avg
    expected = {
        "report.params": (report.params, 61_100_840),
        "report.macs": (report.macs, convs + linears),  # 714,188,480
        "report.flops": (report.flops, 2 * (convs + linears) + elementwise),  # bias adds make 2 per MAC
        'report.flops_as("2mac")': (report.flops_as("2mac"), 2 * (convs + linears)),
        'report.by_module()["features.0"].total.macs': (
            report.by_module()["features.0"].total.macs,
            3 * 11 * 11 * 55 * 55 * 64,
        ),
    }
    for code_text, (got, by_hand) in expected.items():
        assert got == by_hand, code_text
        assert re.search(rf"{re.escape(code_text)}\s+# {got:_}\b", README), (
            f"README's {code_text} is not {got:_}"
        )


LLM_SMALL = ["transformers:LlamaConfig", "--prompt", "8"] + [
    item
    for setting in ("num_hidden_layers=2", "hidden_size=64", "intermediate_size=128")
    + ("num_attention_heads=4", "num_key_value_heads=2", "vocab_size=100")
    for item in ("--set", setting)
]


@pytest.mark.parametrize(
    "options, named",
    [
        (["-q"], "-q"),
        (["--top", "3"], "--top"),
        (["--by", "op"], "--by"),
        (["--html", "llm.html"], "--html"),
        (["--input", "input_ids:1x8:int64"], "--input"),
        (["--backward"], "--backward"),
        (["--compression"], "--compression"),
        (["--assume-bits", "w8a8"], "--assume-bits"),
        (["--convention", "mac"], "--convention"),
        (["--no-fold"], "--no-fold"),
        (["--threads", "2"], "--threads"),
        (["--training", "--micronet", "imagenet"], "--micronet"),
        # P5-R3: these were refused first as "add --bench" / "needs --bench", and LLM mode then
        # refuses --bench: two refusals, the first one pointing the wrong way
        (["--warmup", "3"], "--warmup"),
        (["--repeat", "3"], "--repeat"),
        (["--per-module"], "--per-module"),
        (["--batch-sizes", "1,2"], "--batch-sizes"),
        (["--dim", "T=3"], "--dim"),  # was "binds the symbolic dims of an ONNX file"
    ],
)
def test_llm_mode_refuses_the_options_it_would_ignore(options, named, tmp_path, monkeypatch):
    """P5-D14, docs/llm.md "Options of the other mode are refused too (exit 2, before any trace)":
    the options of a forward count were all taken and ignored in LLM mode: `--html` wrote no
    file, `--input` and `--backward` changed nothing, `-q` printed the whole report, exit 0."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run([*LLM_SMALL, *options])
    assert code == 2 and out == ""
    assert f"{named}: not taken in LLM mode" in err and "on meta" not in err  # before any trace
    assert not (tmp_path / "llm.html").exists()


def test_llm_mode_writes_its_report_to_the_output_file(tmp_path):
    """P5-D14: `-o FILE` in LLM mode wrote nothing to FILE (the report went to stdout)."""
    code, shown, err = run([*LLM_SMALL, "--generate", "4"])
    assert code == 0, err
    target = tmp_path / "llm.txt"
    code, out, err = run([*LLM_SMALL, "--generate", "4", "-o", str(target)])
    assert code == 0 and out == "" and f"wrote {target}" in err
    assert target.read_text() == shown
    # the first decode step, n = 8 cached: 2*N_mm + 2*(2 layers * 2 matmuls * 4 heads * 16 * 9 positions)
    # = 160,256 + 4,608 = 164,864 FLOPs (2 x MACs; N_mm as in tests/test_llm_cli.py)
    lines = shown.splitlines()
    first = lines.index("Decode step at n = 8 (first)")
    assert lines[first + 1].startswith("  FLOPs 164.86 KFLOPs (2 x MACs)")
    code, _, err = run([*LLM_SMALL, "--meta"])  # a no-op here (LLM mode builds on meta): taken
    assert code == 0, err


@pytest.mark.parametrize(
    "options",
    [["--compression"], ["--compression", "-q"], ["--assume-bits", "w8a8"], ["--micronet", "imagenet", "-q"]]
    + [["--count-overhead"]],
)
def test_compression_options_on_an_onnx_file_are_a_usage_error(tmp_path: Path, options: list[str]) -> None:
    """P5-D15, README "A user's mistake never prints a Python traceback": `model.onnx
    --compression -q` (and `--assume-bits`, `--micronet`) printed one, `AttributeError:
    'NoneType' object has no attribute 'overhead_total'`, exit 1 (an ONNX report has no
    compression view); `--count-overhead` was ignored in silence."""
    onnx = pytest.importorskip("onnx")
    from test_onnx_user_edges import hand_graph

    path = tmp_path / "hand.onnx"
    onnx.save(hand_graph(), str(path))
    code, out, err = run([str(path), "--dim", "T=5", *options])
    assert code == 2 and out == ""
    assert f"{options[0]}: the compression view needs a PyTorch model" in err
    assert run([str(path), "--dim", "T=5", "-q"])[0] == 0


def test_warmup_and_repeat_without_bench_are_refused(stack: str) -> None:
    """P5-D16: `--warmup 3` or `--repeat 3` without `--bench` were taken and ignored in silence
    (as `--per-module` and `--threads` already were not)."""
    source = [f"{stack}:dense", "--input", "1x100", "-q"]
    code, out, err = run([*source, "--warmup", "3"])
    assert code == 2 and out == "" and "--warmup counts the runs of --bench: add --bench" in err
    code, out, err = run([*source, "--repeat", "3", "--warmup", "2"])
    assert code == 2 and "--warmup and --repeat count the runs of --bench" in err
    code, out, err = run([*source, "--bench", "--warmup", "1", "--repeat", "1"])
    assert code == 0 and "measured on cpu, 1 warm-up + 1 timed runs" in out, err


def test_a_model_given_to_llm_cost_is_used_as_it_is_and_left_as_it_was():
    """docs/llm.md: "A model you pass is used as it is and left as it was" (only the config's
    half had a test, tests/test_llm_probe3.py::test_the_users_config_is_left_as_it_was)."""
    transformers = pytest.importorskip("transformers")
    from flopmeter.llm.training import training_step

    config = transformers.LlamaConfig(
        num_hidden_layers=2,
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    config.vocab_size = 100
    model = transformers.AutoModelForCausalLM.from_config(config).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    settings = {k: str(v) for k, v in vars(model.config).items()}
    layout = [(m.training, sorted(vars(m))) for m in model.modules()]
    cost = flopmeter.llm_cost(model, prompt=8, generate=3)
    # per token and layer: q 64*64 + k, v 2*64*32 + o 64*64 + MLP 3*64*128 = 36,864 MACs; lm_head 64*100
    # at the last position; attention 2 matmuls * 4 heads * 8*8 * 16 per layer
    assert cost.prefill.flops_2mac == 2 * (8 * 2 * 36_864 + 64 * 100 + 2 * 2 * 4 * 8 * 8 * 16)  # 1,225,216
    training_step(model, tokens=8)
    assert next(model.parameters()).dtype == torch.float32  # used as it is, not rebuilt in bfloat16
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert {k: str(v) for k, v in vars(model.config).items()} == settings
    assert [(m.training, sorted(vars(m))) for m in model.modules()] == layout


def test_compare_refuses_dim_without_an_onnx_file(stack: str) -> None:
    """P5-D21: `flopmeter MODEL --dim T=1` on a PyTorch model is refused, but `compare A B --dim
    T=1` with no ONNX file among them took it and ignored it."""
    models = ["compare", f"{stack}:dense", f"{stack}:pruned", "--input", "1x100"]
    code, out, err = run([*models, "--dim", "T=1"])
    assert code == 2 and out == "" and "no model compared is one" in err and "counting" not in err
    code, out, err = run([*models, "-f", "json", "-q"])
    assert code == 0, err
    assert [row["macs"] for row in json.loads(out)["rows"]] == [5_500, 5_500]  # 100*50 + 50*10 each
