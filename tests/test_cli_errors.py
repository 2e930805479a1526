"""The command never shows a traceback for a user's mistake (field report probe-1 §3-5).

Exit codes: 0 ok, 2 usage, 1 the model failed (building or running it), 130 interrupted,
141 the output pipe closed. Options are checked before the model is built.
"""

import json
import sys
import textwrap
from pathlib import Path

import pytest

from flopmeter import cli
from flopmeter.cli import run

TINY = str(Path(__file__).parent / "fixtures" / "tiny_model.py")


def write(folder: Path, name: str, source: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def assert_clean(code: int, err: str, expected_code: int, *messages: str) -> None:
    assert code == expected_code, err
    assert "Traceback" not in err
    for message in messages:
        assert message in err, err


class TestModelFiles:
    """B2-B15: FILE.py problems are short messages, exit 1 (its code failed) or 2 (our usage)."""

    @pytest.mark.parametrize(
        "source,argv,code,message",
        [
            ("def build(:\n    pass\n", [], 1, "SyntaxError at line 1"),
            (
                "def build():\n    raise RuntimeError('factory exploded')\n",
                [],
                1,
                "raised RuntimeError (line 2)",
            ),
            ("import no_such_package_xyz\n", [], 1, "No module named 'no_such_package_xyz'"),
            ("import sys\nsys.exit(3)\n", [], 1, "called sys.exit(3)"),
            (
                "import torch\ndef build(width):\n    return torch.nn.Linear(4, width)\n",
                ["--input", "1x4"],
                2,
                "needs width: give --set width=VALUE",
            ),
            (
                "import torch\ndef build():\n    return torch.nn.Linear(4, 4)\n",
                ["--set", "depth=8"],
                2,
                "unexpected keyword argument 'depth'",
            ),
        ],
    )
    def test_file_errors(self, tmp_path, source, argv, code, message):
        path = write(tmp_path, "model_file.py", source)
        assert_clean(*run([f"{path}:build", *argv])[::2], code, message)

    def test_sys_exit_in_forward(self, tmp_path):
        source = """\
            import sys
            import torch

            class Quits(torch.nn.Module):
                def forward(self, x):
                    sys.exit(4)
            """
        path = write(tmp_path, "quits.py", source)
        assert_clean(*run([f"{path}:Quits", "--input", "1x4"])[::2], 1, "it called sys.exit(4)")

    def test_not_callable_attribute(self, tmp_path):
        path = write(tmp_path, "good.py", "NOT_CALLABLE = 3\n")
        assert_clean(*run([f"{path}:NOT_CALLABLE"])[::2], 2, "is not a class or function (it is 3")

    def test_future_annotations_dataclass_and_lazy_sibling_import(self, tmp_path):
        write(tmp_path, "helper_layers.py", "import torch\nLAYER = torch.nn.Linear\n")
        path = write(
            tmp_path,
            "net.py",
            """\
            from __future__ import annotations

            from dataclasses import dataclass

            import torch


            @dataclass
            class Cfg:
                width: int = 16


            def build():
                import helper_layers  # a sibling, imported while the factory runs

                return helper_layers.LAYER(4, Cfg().width)
            """,
        )
        saved_path, saved_modules = list(sys.path), set(sys.modules)
        code, out, err = run([f"{path}:build", "--input", "1x4", "--units", "plain", "-q"])
        assert code == 0, err
        assert "64 MACs" in out  # Linear(4, 16): 4*16
        assert sys.path == saved_path
        assert "helper_layers" not in sys.modules and not set(sys.modules) - saved_modules - {
            name for name in sys.modules if not name.startswith(("helper", "flopmeter_user"))
        }


class TestSettings:
    """B20-B29: --set and config.json mistakes are usage errors with the key named."""

    @pytest.mark.parametrize(
        "argv,message",
        [
            (["torchvision:resnet18", "--set", "foo=1"], "torchvision:resnet18 has no setting 'foo'"),
            (["torchvision:resnet18", "--set", "num_classes=abc"], "rejected --set num_classes='abc'"),
            (
                ["transformers:LlamaConfig", "--set", "num_hiden_layers=2", "--meta"],
                "LlamaConfig has no setting 'num_hiden_layers'; did you mean num_hidden_layers?",
            ),
            (
                ["transformers:LlamaConfig", "--set", "num_hidden_layers=abc", "--meta"],
                "expected int, got str",
            ),
            (  # probe 7: transformers builds num_hidden_layers=-1 as a model with no layers
                ["transformers:LlamaConfig", "--set", "num_hidden_layers=-1", "--meta"],
                "LlamaConfig num_hidden_layers=-1: a count or size, 32 by default, cannot be negative",
            ),
            (["transformers:llama"], "did you mean transformers:LlamaConfig?"),
            (
                ["transformers:LlamaModel"],
                "is a model class; flopmeter builds from a config: transformers:LlamaConfig",
            ),
        ],
    )
    def test_usage_errors(self, argv, message):
        assert_clean(*run(argv)[::2], 2, message)

    @pytest.mark.parametrize("mode", [["--meta"], ["--prompt", "24"]])
    def test_a_build_error_after_set_names_the_keys(self, mode):
        """P12-L7: the config takes vocab_size=100 but the model does not build (Phi3Config's
        pad_token_id 32,000 is outside the vocabulary: the embedding's padding_idx fails);
        was exit 1 "the model failed", now exit 2 naming the --set keys and the fix."""
        argv = ["transformers:Phi3Config", "--set", "vocab_size=100", "--set", "num_hidden_layers=1", *mode]
        assert_clean(
            *run(argv)[::2],
            2,
            "building transformers:Phi3Config from --set vocab_size=100, num_hidden_layers=1 raised "
            "AssertionError: Padding_idx must be within num_embeddings; the config took these values",
            "(its pad_token_id 32000 is outside vocab_size 100: add --set pad_token_id=null, or an id below 100)",
        )

    def test_the_same_build_error_from_a_config_file_is_the_models(self, tmp_path):
        # no --set: the values are the file's, so the model failed (exit 1), as before
        path = write(
            tmp_path, "config.json", '{"model_type": "phi3", "vocab_size": 100, "num_hidden_layers": 1}'
        )
        assert_clean(
            *run([f"transformers:{path}", "--meta"])[::2],
            1,
            "the model failed: building transformers:",
            "raised AssertionError: Padding_idx must be within num_embeddings",
        )

    def test_config_json_that_is_a_list(self, tmp_path):
        path = write(tmp_path, "list.json", "[1, 2]")
        assert_clean(*run([f"transformers:{path}"])[::2], 2, "holds a JSON list")

    def test_unknown_model_type_gets_close_matches_only(self, tmp_path):
        path = write(tmp_path, "config.json", '{"model_type": "lama"}')
        code, _, err = run([f"transformers:{path}"])
        assert_clean(code, err, 2, "unknown model_type 'lama'; did you mean", "llama")
        assert len(err) < 400  # not the 12 KB list of every model type (B18)

    def test_bare_config_path_is_a_transformers_source(self, tmp_path):
        write(
            tmp_path,
            "config.json",
            '{"model_type": "bert", "hidden_size": 64, "num_attention_heads": 4, '
            '"intermediate_size": 128, "num_hidden_layers": 2}',
        )
        for source in (str(tmp_path / "config.json"), str(tmp_path)):
            code, out, err = run([source, "--input", "input_ids:1x16:int64", "--units", "plain", "-q"])
            assert code == 0, err
            assert "1,118,208 MACs" in out  # the hand count of test_zoo's tiny BERT


def _no_model(*args, **kwargs):
    raise AssertionError("the model was built before the options were checked")


class TestCheckedBeforeCounting:
    """C2-C8, A25, C17-C22, C12, A16: refused with exit 2 before the model is built."""

    @pytest.mark.parametrize(
        "argv,message",
        [
            (["-o", "{tmp}/nodir/x.txt"], "the folder {tmp}/nodir does not exist"),
            (["-o", "{tmp}"], "is a directory"),
            (["--html", "{tmp}/nodir/r.html"], "--html"),
            (["--plot", "{tmp}/nodir/x.png"], "--plot"),
            (["--plot", "{tmp}/x.xyz"], "unknown image type 'xyz'"),
            (["--roofline", "h900"], "unknown hardware 'h900'; did you mean h200?"),
            (["--input", "1x3x"], "bad input spec '1x3x'"),
            (["--input", "x:1x3x224x224:int64:extra"], "too many ':' fields"),
            (["--precision", "-1"], "--precision takes 0 to 12 decimals, got -1"),
            (["--precision", "30"], "--precision takes 0 to 12 decimals, got 30"),
            (["--top", "0"], "--top must be at least 1, got 0"),
            (["--top", "-3"], "--top must be at least 1, got -3"),
            (["--depth", "-1"], "--depth must be 0"),
            (["--by", "op", "--format", "tree"], "--by op prints a table"),
            (["--batch-sizes", "1,8"], "--batch-sizes needs --bench"),
            (["--per-module"], "--per-module needs --bench"),
            (["--bench", "--batch-sizes", "1,x"], "--batch-sizes takes numbers"),
            (["--bench", "--meta"], "drop --meta"),
            (["--set", "oops"], "expected KEY=VALUE"),
            (["--input", "0x3x224x224"], "a batch of 0 has nothing to count"),
            (["--format", "tree", "--top", "3"], "--top and --sort pick table rows"),
            (["--by", "op", "--sort", "macs"], "--by op rows are always sorted"),
            # P5-S17: the per-module speed tables replaced the operator table, or were dropped
            (["--by", "op", "--roofline", "t4"], "--roofline estimates per module"),
            (["--by", "op", "--roofline", "t4", "-f", "csv"], "--roofline estimates per module"),
            (["--by", "op", "--bench"], "--bench prints its timing tables in place"),
        ],
    )
    def test_refused_before_building(self, monkeypatch, tmp_path, argv, message):
        monkeypatch.setattr(cli, "load_model", _no_model)
        argv = [a.format(tmp=tmp_path) for a in argv]
        assert_clean(*run(["torchvision:alexnet", *argv])[::2], 2, message.format(tmp=tmp_path))

    def test_compare_checks_every_source_first(self, monkeypatch):
        monkeypatch.setattr(cli, "load_model", _no_model)
        assert_clean(*run(["compare", "torchvision:alexnet", "torchvision:foo"])[::2], 2, "'foo'")

    def test_unwritable_output_after_counting_is_a_message(self):
        if not Path("/dev/full").exists():
            pytest.skip("no /dev/full")
        assert_clean(*run([TINY + ":TinyNet", "-o", "/dev/full"])[::2], 2, "cannot write: No space left")

    def test_inputs_the_model_does_not_take(self):
        code, _, err = run([TINY + ":TinyNet", "--input", "1x3x8x8", "--input", "1x3x8x8"])
        assert_clean(code, err, 2, "TinyNet.forward(x: torch.Tensor)", "cannot take the 2 --input")


class TestFormats:
    def test_quiet_json_stays_json(self, tmp_path):
        code, out, err = run([TINY + ":TinyNet", "-q", "--format", "json"])
        data = json.loads(out)
        assert data["totals"]["flops"] == 38_400 and "modules" not in data
        target = tmp_path / "t.json"
        assert run([TINY + ":TinyNet", "-q", "-f", "json", "-o", str(target)])[0] == 0
        assert json.loads(target.read_text())["totals"]["macs"] == 18_944

    def test_quiet_csv_is_the_root_row(self):
        out = run([TINY + ":TinyNet", "-q", "-f", "csv"])[1].splitlines()
        assert len(out) == 2 and out[1].startswith("(root),TinyNet,0,1,5354,")

    def test_by_op_csv_and_markdown_list_operators(self):
        lines = run([TINY + ":TinyNet", "--by", "op", "-f", "csv"])[1].splitlines()
        assert lines[0].startswith("operator,kind,calls,macs")
        # conv: 13,824 MACs, 27,648 FLOPs; addmm 5,120 / 10,240; relu 0 / 512
        assert lines[1].startswith("aten.convolution,counted,1,13824,27648")
        assert lines[2].startswith("aten.addmm,counted,1,5120,10240")
        markdown = run([TINY + ":TinyNet", "--by", "op", "-f", "markdown", "--top", "1"])[1]
        assert "| `aten.convolution` | 1 |" in markdown and "aten.addmm" not in markdown

    def test_top_and_depth_apply_to_csv_and_markdown(self):
        rows = run(["torchvision:resnet18", "--top", "3", "-f", "csv"])[1].splitlines()[1:]
        # leaves only: the 3x3 convs of layer1 (115.6 M MACs each) lead; no container rows
        assert len(rows) == 3 and all(",Conv2d," in r for r in rows)
        rows = run(["torchvision:resnet18", "--depth", "1", "-f", "csv"])[1].splitlines()[1:]
        assert [r.split(",")[0] for r in rows] == [
            "(root)",
            "conv1",
            "bn1",
            "relu",
            "maxpool",
            "layer1",
            "layer2",
            "layer3",
            "layer4",
            "avgpool",
            "fc",
        ]
        markdown = run(["torchvision:resnet18", "--top", "3", "-f", "markdown"])[1]
        assert markdown.count("| Conv2d |") == 3 and "| Sequential |" not in markdown

    def test_csv_keeps_unsupported_ops_and_notes_them(self, tmp_path):
        path = write(
            tmp_path,
            "eig.py",
            """\
            import torch

            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = torch.nn.Linear(1, 4)

                def forward(self, x):
                    # an op without a formula (eigvalsh until probe 14 counted it)
                    return self.fc(torch.special.chebyshev_polynomial_t(x, x)[..., :1])
            """,
        )
        code, out, err = run([f"{path}:Net", "--input", "2x3x3", "-f", "csv"])
        assert code == 0, err
        assert out.splitlines()[-1] == "aten.special_chebyshev_polynomial_t,unsupported op,,1" + "," * 11
        assert "not counted, no formula: aten.special_chebyshev_polynomial_t (1x)" in err
        tree = run([f"{path}:Net", "--input", "2x3x3"])[1].splitlines()
        # the warning sits under the report and quotes the module name
        warning = "  WARNING: aten.special_chebyshev_polynomial_t has no formula"
        assert tree[-1].startswith(warning) and "(root)" in tree[-1]

    def test_markdown_row_survives_a_newline_in_a_name(self):
        import torch

        from flopmeter import profile

        model = torch.nn.Sequential()
        model.add_module("a\nb|c", torch.nn.Linear(2, 2))
        markdown = profile(model, torch.randn(1, 2)).to_markdown()
        assert "| a\\nb\\|c | Linear |" in markdown

    def test_version_and_usage(self, capsys):
        assert run(["--version"])[0] == 0
        assert capsys.readouterr().out.startswith("flopmeter 0.")
        run(["--help"])
        usage = capsys.readouterr().out.split("\n\n")[0]
        assert "flopmeter compare" in usage and "--version" in usage

    def test_bench_on_a_model_without_parameters(self, tmp_path):
        path = write(tmp_path, "relu.py", "import torch\ndef build():\n    return torch.nn.ReLU()\n")
        code, out, err = run([f"{path}:build", "--input", "1x4", "--bench", "--warmup", "1", "--repeat", "2"])
        assert code == 0, err
        assert "median" in out


def test_report_tables_refuse_a_negative_depth_or_top():
    from flopmeter.render import formats, text
    from handmade import handmade_report

    report = handmade_report()
    with pytest.raises(ValueError, match="depth must be"):
        report.to_markdown(depth=-1)
    with pytest.raises(ValueError, match="top must be at least 1"):
        text.render_table(report, top=0)
    assert formats.to_csv(report, depth=0).splitlines()[1].startswith("(root),Net,0,")
