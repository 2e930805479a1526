"""Probe 14 (three new users): a dynamo ONNX export of a model built without weights
drops every bias of all zeros (onnxscript's RemoveOptionalBiasFromConv / ...FromGemm):
zero-initialised conv and linear biases, and the bias an identity BatchNorm (gamma 1,
beta 0, mean 0, var 1: a freshly built model) folds to. The ONNX count then lacks their
adds and params, and the report states them in a NOTE beside the BatchNorm fold's.

Model on 1x3x8x8 (E = output elements, C = channels):
  0 Conv2d(3, 8, 3, p=1, bias=False) + 1 BatchNorm2d(8), identity: E = 8*8*8 = 512, C = 8
  3 Conv2d(8, 4, 1), zero bias:      E = 4*8*8 = 256, C = 4   (dropped)
  4 Conv2d(4, 4, 1, bias=False):     no bias in PyTorch        (nothing dropped)
  5 Conv2d(4, 4, 1), random bias:    kept
  7 Linear(256, 10), zero bias:      E = C = 10                (dropped)
  8 Linear(10, 6, bias=False):       no bias                   (nothing dropped)
  9 Linear(6, 5), random bias:       kept
Dropped: 3 biases, 512 + 256 + 10 = 778 adds, 8 + 4 + 10 = 22 params.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
import torch  # noqa: E402
from torch import nn  # noqa: E402

import flopmeter  # noqa: E402
from flopmeter.render.onnx_notes import onnx_lines  # noqa: E402

X = (1, 3, 8, 8)


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),  # as built: the identity, which folds to a zero bias
        nn.ReLU(),
        nn.Conv2d(8, 4, 1),
        nn.Conv2d(4, 4, 1, bias=False),
        nn.Conv2d(4, 4, 1),
        nn.Flatten(),
        nn.Linear(256, 10),
        nn.Linear(10, 6, bias=False),
        nn.Linear(6, 5),
    )
    with torch.no_grad():
        model[3].bias.zero_()
        model[7].bias.zero_()
        model[5].bias.uniform_(0.5, 1.5)  # nonzero: kept
        model[9].bias.uniform_(0.5, 1.5)
    return model.eval()


def _export(model: nn.Module, path: Path, dynamo: bool) -> Path:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(*X),), str(path), dynamo=dynamo)
    return path


def test_dynamo_dropped_zero_biases_are_counted_and_stated(tmp_path: Path) -> None:
    model = _model()
    torch_report = flopmeter.profile(model, torch.randn(*X))
    report = flopmeter.profile_onnx(_export(model, tmp_path / "m.onnx", dynamo=True))
    diff = report.options["onnx"]["differences"]
    assert diff["folded_batch_norm"] == 1
    assert diff["dropped_bias"] == 3
    assert diff["dropped_bias_adds"] == 8 * 8 * 8 + 4 * 8 * 8 + 10  # 512 + 256 + 10 = 778
    assert diff["dropped_bias_params"] == 8 + 4 + 10  # 22
    # the BN NOTE's gap (conv without bias: E + 5C = 512 + 40 = 552 FLOPs, C = 8 params)
    # plus the dropped biases' 778 adds and 22 params: every difference is stated
    assert torch_report.flops - report.flops == (512 + 5 * 8) + 778  # 1,330
    assert torch_report.params - report.params == 8 + 22  # 30
    assert torch_report.macs == report.macs
    notes = "\n".join(onnx_lines(report))
    assert "3 bias(es) of all zeros removed by the exporter's optimizer" in notes
    assert "FLOPs lower by their 778 adds" in notes and "params by their 22 elements" in notes


def test_trained_biases_are_not_reported_dropped(tmp_path: Path) -> None:
    model = _model()
    with torch.no_grad():  # nonzero biases and BatchNorm statistics: nothing to drop
        model[3].bias.uniform_(0.5, 1.5)
        model[7].bias.uniform_(0.5, 1.5)
        model[1].running_mean.uniform_()
        model[1].running_var.uniform_(0.5, 1.5)
        model[1].bias.uniform_(0.5, 1.5)
    report = flopmeter.profile_onnx(_export(model, tmp_path / "m.onnx", dynamo=True))
    diff = report.options["onnx"]["differences"]
    assert (diff["dropped_bias"], diff["dropped_bias_adds"], diff["dropped_bias_params"]) == (0, 0, 0)
    assert not any("bias(es) of all zeros" in line for line in onnx_lines(report))
    torch_report = flopmeter.profile(model, torch.randn(*X))
    assert torch_report.flops - report.flops == 512 + 5 * 8  # the BN NOTE's E + 5C alone
    assert torch_report.params - report.params == 8  # its C


def test_the_legacy_exporter_keeps_zero_biases(tmp_path: Path) -> None:
    model = _model()
    report = flopmeter.profile_onnx(_export(model, tmp_path / "m.onnx", dynamo=False))
    assert report.options["onnx"]["differences"]["dropped_bias"] == 0
    torch_report = flopmeter.profile(model, torch.randn(*X))
    assert torch_report.flops - report.flops == 512 + 5 * 8  # E + 5C: the fold's bias adds kept


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_exporters_merge_equal_initializers_which_count_once(tmp_path: Path, dynamo: bool) -> None:
    """docs/onnx.md's row: both exporters merge initializers of equal values.
    Linear(8, 8) + LayerNorm(8) + ReLU + Linear(8, 8) + LayerNorm(8), both Linear biases set
    equal (nonzero), both LayerNorms as built (weight ones, bias zeros): PyTorch
    2*(64 + 8) + 2*(8 + 8) = 176 params; ONNX keeps one copy of the bias, the LN weight and
    the LN bias: 176 - 3*8 = 152."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 8), nn.LayerNorm(8))
    with torch.no_grad():
        model[0].bias.uniform_(0.5, 1.5)
        model[3].bias.copy_(model[0].bias)
    model.eval()
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 8),), str(path), dynamo=dynamo)
    assert flopmeter.profile(model, torch.randn(2, 8)).params == 2 * (64 + 8) + 2 * (8 + 8)  # 176
    report = flopmeter.profile_onnx(path)
    assert report.params == 176 - 3 * 8  # 152: one bias, one LN weight, one LN bias merged away
    assert report.options["onnx"]["differences"]["dropped_bias"] == 0  # nonzero: none removed


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()


def _fx_int8(model: nn.Module, x: torch.Tensor) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(model, get_default_qconfig_mapping("fbgemm"), (x,))
        with torch.no_grad():
            prepared(x)
        return convert_fx(prepared)


def test_compare_warns_when_the_after_model_folded_the_before_models_batch_norms() -> None:
    """A researcher compares torchvision's (unfused) float model with its FX int8 model:
    prepare_fx folds each BatchNorm into its conv, so the 2 BN calls of the float model
    are gone from the int8 one and the speedup estimate credits their removal to the
    quantization (resnet18 on a100: 2.13x against the unfused model, 1.58x against the
    fused one). compare says so; against the fused float model it does not."""
    from torch.ao.quantization.quantize_fx import fuse_fx

    x = torch.randn(1, 3, 16, 16)
    int8 = _fx_int8(copy.deepcopy(_cnn()), x)
    unfused = flopmeter.compare(_cnn(), int8, x)
    text = "\n".join(unfused.warnings)
    assert "runs 2 more batch norm(s) than" in text  # 2 BatchNorm2d calls - 0
    assert "fused float model" in text and "WARNING" in unfused.to_markdown()
    fused = flopmeter.compare(fuse_fx(_cnn()), int8, x)
    assert not any("batch norm" in w for w in fused.warnings)  # 0 - 0
    assert unfused.speedup_estimate > fused.speedup_estimate  # the fold's ops credited


def test_the_readme_names_every_extra_of_pyproject() -> None:
    """README's install screen lists the extras a user installs by name (a researcher
    found `compression` and `transformers` only by reading pyproject.toml)."""
    import re
    import tomllib

    root = Path(__file__).resolve().parent.parent
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    line = (root / "README.md").read_text().split("Extras:", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z]+)`", line))
    assert set(extras) <= named, sorted(set(extras) - named)
