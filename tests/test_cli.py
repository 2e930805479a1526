"""The flopmeter command, in-process: every option and every error path."""

import json
from pathlib import Path

import pytest

from flopmeter.cli import run

TINY = str(Path(__file__).parent / "fixtures" / "tiny_model.py")


class TestMainJob:
    def test_alexnet_tree(self):
        code, out, err = run(["torchvision:alexnet"])
        assert code == 0, err
        assert out.startswith("torchvision:alexnet: 61.10 M params")
        assert "714.19 MMACs" in out and "AlexNet(" in out and "(features): Sequential(" in out
        assert "counting torchvision:alexnet" in err  # progress goes to stderr

    def test_json_totals_equal_the_library(self):
        import torch
        import torchvision

        import flopmeter

        code, out, _ = run(["torchvision:alexnet", "--format", "json"])
        data = json.loads(out)
        report = flopmeter.profile(torchvision.models.alexnet(), torch.randn(1, 3, 224, 224))
        assert data["totals"]["flops"] == report.flops and data["totals"]["macs"] == report.macs
        assert data["totals"]["params"] == 61_100_840
        assert data["versions"]["torch"]


class TestOptions:
    def test_file_source_and_example_inputs(self):
        code, out, _ = run([f"{TINY}:TinyNet", "-q"])
        assert code == 0
        assert (
            out
            == "tiny_model.py:TinyNet: 5.35 K params (5.35 K trainable), 18.94 KMACs, 38.40 KFLOPs for batch 1\n".replace(
                "tiny_model.py", TINY.rsplit("/", 1)[0] + "/tiny_model.py"
            )
        )

    def test_input_batch_size_and_set(self):
        code, out, _ = run([f"{TINY}:TinyNet", "--input", "2x3x8x8", "--units", "plain", "-q"])
        assert "76,800 FLOPs for batch 2" in out  # 2*38,400
        code, out, _ = run([f"{TINY}:TinyNet", "--batch-size", "4", "--units", "plain", "-q"])
        assert "153,600 FLOPs for batch 4" in out and "per sample: 18,944 MACs" in out
        code, out, _ = run([f"{TINY}:TinyNet", "--set", "width=4", "--units", "plain", "-q"])
        # width 4: conv 256 outputs * 27 = 6,912 MACs; fc 256*10 = 2,560 MACs
        assert "9,472 MACs" in out

    @pytest.mark.parametrize(
        "convention,expected",
        [
            ("exact", "38,400 FLOPs"),
            ("2mac", "37,888 FLOPs(2MAC)"),
            ("mac", "18,944 FLOPs(MAC)"),
            ("ptflops", "19,978 MAC(ptflops)"),
        ],
    )
    def test_convention(self, convention, expected):
        # ptflops: 13,824 + 512 bias + 512 relu + 5,120 + 10 bias = 19,978
        code, out, _ = run([f"{TINY}:TinyNet", "--convention", convention, "--units", "plain", "-q"])
        assert expected in out

    def test_depth_units_precision(self):
        code, out, _ = run(["torchvision:resnet18", "--depth", "1", "--units", "G", "--precision", "3"])
        assert "(layer1): Sequential(" in out and "(0): BasicBlock" not in out
        assert "1.814 GMACs" in out

    def test_by_op_sort_top(self):
        code, out, _ = run([f"{TINY}:TinyNet", "--by", "op"])
        assert "aten.convolution" in out and "aten.addmm" in out
        code, out, _ = run([f"{TINY}:TinyNet", "--sort", "flops", "--top", "2"])
        rows = [line.split()[0] for line in out.splitlines()[4:]]
        # --top ranks leaves (containers repeat their children's cost): conv 27,648 > fc 10,240 FLOPs
        assert rows == ["conv", "fc"]

    def test_formats(self, tmp_path):
        assert run([f"{TINY}:TinyNet", "-f", "csv"])[1].startswith("module,type,depth")
        assert "| conv | Conv2d |" in run([f"{TINY}:TinyNet", "-f", "markdown"])[1]
        assert "module" in run([f"{TINY}:TinyNet", "-f", "table"])[1]
        target = tmp_path / "cost.json"
        code, out, err = run([f"{TINY}:TinyNet", "-f", "json", "-o", str(target)])
        assert code == 0 and out == "" and json.loads(target.read_text())["totals"]["flops"] == 38_400

    def test_backward_and_train(self):
        code, out, _ = run([f"{TINY}:TinyNet", "--backward", "--units", "plain", "-q"])
        assert "(forward + backward)" in out and "backward" in out
        assert run([f"{TINY}:TinyNet", "--train", "-q"])[0] == 0

    def test_meta(self):
        code, out, _ = run(["torchvision:resnet18", "--meta", "--units", "plain", "-q"])
        assert code == 0 and "1,814,073,344 MACs" in out

    def test_compare(self):
        code, out, err = run(["compare", "torchvision:resnet18", "torchvision:resnet34", "--units", "G"])
        assert code == 0
        assert "compression" in out and "speedup" in out and "0.50x" in out
        assert "[1/2]" in err and "[2/2]" in err
        assert "shared modules" in out and "layer1" in out

    def test_help_documents_every_option_with_examples(self, capsys):
        code, out, _ = run(["--help"])
        assert code == 0
        text = capsys.readouterr().out
        for option in [
            "--input",
            "--set",
            "--meta",
            "--depth",
            "--by",
            "--convention",
            "--units",
            "--precision",
            "--batch-size",
            "--sort",
            "--top",
            "--backward",
            "-q",
            "--format",
            "examples:",
        ]:
            assert option in text, option


class TestErrors:
    @pytest.mark.parametrize(
        "argv,message",
        [
            (["torchvision:alexnetx"], "unknown torchvision model 'alexnetx'; did you mean alexnet?"),
            (["torchvision:"], "has no name after 'torchvision:'"),
            (["nosuch:thing"], "unknown model source 'nosuch:thing'"),
            (["torchvision:alexnet", "--input", "1by3"], "expected a shape like 1x3x224x224"),
            (["torchvision:alexnet", "--input", "1x3:float99"], "unknown dtype 'float99'"),
            (["torchvision:alexnet", "--set", "oops"], "expected KEY=VALUE"),
            (["torchvision:alexnet", "--batch-size", "0"], "--batch-size must be at least 1"),
            ([f"{TINY}:Nope"], "unknown callable"),
            ([f"{TINY}:not_a_model"], "expected a torch.nn.Module"),
            (["missing.py:build"], "no such Python file"),
            (["transformers:NotAConfig"], "unknown transformers config"),
            (["compare", "torchvision:alexnet"], "compare needs at least two models"),
        ],
    )
    def test_usage_errors_exit_2(self, argv, message):
        code, out, err = run(argv)
        assert code == 2
        assert message in err

    def test_argparse_errors_exit_2(self, capsys):
        assert run(["torchvision:alexnet", "--convention", "nope"])[0] == 2
        assert "invalid choice" in capsys.readouterr().err

    def test_model_failure_exits_1_with_short_message(self):
        code, out, err = run([f"{TINY}:TinyNet", "--input", "1x4x8x8"])
        assert code == 1
        assert "the model failed" in err and "module 'conv'" in err and "Traceback" not in err


def test_malformed_config_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    code, _, err = run([f"transformers:{bad}"])
    assert code == 2 and "cannot read a transformers config" in err
    no_type = tmp_path / "typeless.json"
    no_type.write_text('{"hidden_size": 8}')
    code, _, err = run([f"transformers:{no_type}"])
    assert code == 2 and "has no 'model_type'" in err


def test_transformers_config_file_with_overrides(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        '{"model_type": "bert", "hidden_size": 64, "num_attention_heads": 4, '
        '"intermediate_size": 128, "num_hidden_layers": 4}'
    )
    code, out, err = run(
        [
            f"transformers:{tmp_path}",
            "--set",
            "num_hidden_layers=2",
            "--input",
            "input_ids:1x16:int64",
            "--units",
            "plain",
            "-q",
        ]
    )
    assert code == 0, err
    assert "1,118,208 MACs" in out  # the hand count of test_zoo's tiny BERT
