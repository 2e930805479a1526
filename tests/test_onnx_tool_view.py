"""The onnx-tool convention: onnx-tool's weighted per-node MACs, on one-node graphs
(the rules in flopmeter/onnx/onnx_tool.py; resnet18 in test_onnx_models.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")
from flopmeter.cli import main  # noqa: E402
from flopmeter.onnx import profile_onnx  # noqa: E402
from test_onnx_formulas import one_node  # noqa: E402


@pytest.mark.parametrize(
    ("op", "inputs", "weights", "attrs", "expected"),
    [
        # exp 32 + divide 4 per element: 2*10*36
        ("Softmax", {"x": [2, 10]}, {}, {}, 720),
        # 3 mul + 4 add per element, + add, sqrt 24, divide 4 per row: 4*8*7 + 4*29
        ("LayerNormalization", {"x": [4, 8]}, {"s": [8], "b": [8]}, {}, 224 + 116),
        # outputs x K + one bias add per output: 4*3*8 + 4*3
        ("Gemm", {"a": [4, 8]}, {"b": [8, 3], "c": [3]}, {}, 96 + 12),
        # 2 compares per element, whatever inputs are given
        ("Clip", {"x": [5, 6]}, {}, {}, 60),
        # a divide is 4, times max(1, inputs - 1) = 1: 3*7*4
        ("Div", {"x": [3, 7], "y": [3, 7]}, {}, {}, 84),
        # Sum of 3 operands: 2 adds per element: 2*5*2
        ("Sum", {"x": [2, 5], "y": [2, 5], "z": [2, 5]}, {}, {}, 20),
        # MaxPool 2x2 stride 2 over 1x1x4x4: 4 outputs x 4 compares
        ("MaxPool", {"x": [1, 1, 4, 4]}, {}, {"kernel_shape": [2, 2], "strides": [2, 2]}, 16),
        # Erf: no cost in onnx-tool
        ("Erf", {"x": [3, 3]}, {}, {}, 0),
    ],
)
def test_onnx_tool_rules_by_hand(op: str, inputs: dict, weights: dict, attrs: dict, expected: int) -> None:
    report = profile_onnx(one_node(op, inputs, weights, opset=17, **attrs))
    assert report.flops_as("onnx-tool") == expected


def test_ops_onnx_tool_has_no_rule_for_are_listed_not_hidden() -> None:
    q = {"q": [1, 2, 4, 8], "k": [1, 2, 4, 8], "v": [1, 2, 4, 8]}
    report = profile_onnx(one_node("Attention", q, {}, opset=23))
    assert report.macs == 2 * 4 * 4 * (8 + 8)  # counted by flopmeter: 512
    assert report.flops_as("onnx-tool") == 0
    assert report.options["onnx"]["onnx_tool_no_rule"] == {"onnx.Attention": 1}


def test_onnx_tool_view_is_refused_for_pytorch_reports() -> None:
    import torch

    import flopmeter

    report = flopmeter.profile(torch.nn.Linear(4, 3), input_shape=(2, 4))
    with pytest.raises(ValueError, match="onnx-tool convention is a view of ONNX reports only"):
        report.flops_as("onnx-tool")


def test_cli_convention_onnx_tool(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import onnx

    path = tmp_path / "softmax.onnx"
    onnx.save(one_node("Softmax", {"x": [2, 10]}, {}, opset=17), str(path))
    assert main([str(path), "--convention", "onnx-tool"]) == 0
    assert "720 MAC(onnx-tool)" in capsys.readouterr().out  # 2*10*(32 + 4)
    assert main(["torchvision:alexnet", "--convention", "onnx-tool"]) == 2
    assert "ONNX reports only" in capsys.readouterr().err
