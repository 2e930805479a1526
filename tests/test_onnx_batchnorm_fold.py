"""The NOTE for a BatchNorm the exporter folded into its Conv states the gap to the
PyTorch count for both kinds of Conv, and the gap measured is the one it states.

Conv2d(3, 8, 3, padding=1) + BatchNorm2d(8) on 1x3x16x16: E = 8*16*16 = 2,048 output
elements, C = 8 channels. PyTorch: the BN costs 2E + 5C FLOPs and 2C params (gamma,
beta); the Conv bias (when there is one) E adds and C params. ONNX: one Conv whose
bias holds the folded shift: E adds, C params.
- Conv without bias: FLOPs gap 2E + 5C - E = E + 5C, params gap 2C - C = C;
- Conv with a bias:  FLOPs gap (E + 2E + 5C) - E = 2E + 5C, params gap (C + 2C) - C = 2C.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
import torch  # noqa: E402

import flopmeter  # noqa: E402
from flopmeter.onnx import profile_onnx  # noqa: E402
from flopmeter.render.onnx_notes import onnx_lines  # noqa: E402

E, C = 8 * 16 * 16, 8  # 2,048 output elements, 8 channels


def _conv_bn(bias: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=bias), torch.nn.BatchNorm2d(8))
    with torch.no_grad():  # non-trivial statistics: the exporters drop an identity BatchNorm
        for param in model.parameters():
            param.uniform_(0.5, 1.5)
        model[1].running_mean.uniform_()
        model[1].running_var.uniform_(0.5, 1.5)
    return model.eval()


def _export(model: torch.nn.Module, path: Path, dynamo: bool) -> Path:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), str(path), dynamo=dynamo)
    return path


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize(
    ("bias", "flops_gap", "params_gap"),
    [
        (False, E + 5 * C, C),  # 2,048 + 40 = 2,088 FLOPs; 8 params
        (True, 2 * E + 5 * C, 2 * C),  # 4,096 + 40 = 4,136 FLOPs; 16 params
    ],
    ids=["conv-without-bias", "conv-with-bias"],
)
def test_folded_batch_norm_gap_is_the_one_the_note_states(
    tmp_path: Path, dynamo: bool, bias: bool, flops_gap: int, params_gap: int
) -> None:
    model = _conv_bn(bias)
    torch_report = flopmeter.profile(model, torch.randn(1, 3, 16, 16))
    report = profile_onnx(_export(model, tmp_path / "bn.onnx", dynamo))
    assert report.options["onnx"]["differences"]["folded_batch_norm"] == 1
    assert torch_report.macs == report.macs == 8 * 16 * 16 * 3 * 3 * 3  # 55,296
    assert torch_report.flops - report.flops == flops_gap
    assert torch_report.params - report.params == params_gap
    # ONNX: (2*27 - 1) * E products and sums + E folded-bias adds = 108,544 + 2,048 = 110,592
    assert report.flops == (2 * 27 - 1) * E + E
    assert report.params == 8 * 3 * 3 * 3 + C  # 216 + 8 = 224
    # PyTorch: the conv (its E bias adds if any) + the BN's 2E + 5C = 4,096 + 40 = 4,136
    # without bias: 108,544 + 4,136 = 112,680; with: 110,592 + 4,136 = 114,728
    assert torch_report.flops == (2 * 27 - 1) * E + (E if bias else 0) + 2 * E + 5 * C
    assert torch_report.params == 216 + (C if bias else 0) + 2 * C  # 232 or 240


def test_the_note_states_both_cases(tmp_path: Path) -> None:
    report = profile_onnx(_export(_conv_bn(False), tmp_path / "bn.onnx", dynamo=False))
    note = next(line for line in onnx_lines(report) if "folded into Convs" in line)
    assert "FLOPs lower by E + 5C and params by C if the PyTorch Conv had no bias" in note
    assert "by 2E + 5C and 2C if it had one" in note
