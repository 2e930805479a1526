"""Nonzeros are read when asked for: a profile of a dense-stored model does not read its
weights' values (about one pass over every weight) unless ``compression=True``, a
``CompressionOptions``, ``--compression``/``--assume-*``/``--micronet``, ``compare``, or
the model holds a compression recognised without values (docs/compression.md)."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize, prune

import flopmeter
import flopmeter.compression.facts as facts_module
from flopmeter.cli import main
from flopmeter.compression import CompressionOptions
from flopmeter.render.compression import NOT_COUNTED, view_summary_lines


def _half_zero() -> nn.Linear:
    """Linear(8, 4) without bias, its first 4 input columns zeroed in place (no marker):
    nonzero 4*4 = 16 of 4*8 = 32."""
    layer = nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        layer.weight[:, :4] = 0
        layer.weight[:, 4:] = 1.0
    return layer


def _no_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the weights' values were read")

    monkeypatch.setattr(facts_module, "_count_nonzeros", refuse)


X = torch.randn(2, 8)


def test_a_plain_profile_reads_no_weight_values(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_reads(monkeypatch)
    report = flopmeter.profile(_half_zero(), X)
    assert report.macs == 2 * 4 * 8  # rows 2 x out 4 x in 8 = 64: the op count is unchanged
    view = report.compression
    assert not view.nonzeros_counted
    layer = view.layers[""]
    assert (layer.weight_params, layer.weight_nonzero, view.sparsity) == (32, None, None)
    assert layer.structure == "unknown"
    assert NOT_COUNTED in view_summary_lines(view)
    assert view.to_dict()["nonzeros_counted"] is False


@pytest.mark.parametrize(
    "compression", [True, {}, CompressionOptions(), CompressionOptions(assume_bits="w8a8")], ids=repr
)
def test_asking_for_the_view_counts_them(compression: object) -> None:
    view = flopmeter.profile(_half_zero(), X, compression=compression).compression
    assert view.nonzeros_counted
    layer = view.layers[""]
    assert layer.weight_nonzero == 16  # 4 rows x 4 kept columns
    assert layer.macs_effective == 2 * 16  # 2 rows of x x 16 nonzero weights = 32
    assert NOT_COUNTED not in view_summary_lines(view)


def test_count_nonzeros_false_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_reads(monkeypatch)
    options = CompressionOptions(count_overhead=True, count_nonzeros=False)
    assert not flopmeter.profile(_half_zero(), X, compression=options).compression.nonzeros_counted


def _pruned() -> nn.Linear:
    layer = nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(1.0, 33.0).reshape(4, 8))
    prune.l1_unstructured(layer, "weight", amount=0.5)  # the 16 smallest magnitudes go
    return layer


class _Half(nn.Module):
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * torch.tensor([0.0, 1.0]).repeat(4)


def _parametrized() -> nn.Linear:
    layer = nn.Linear(8, 4, bias=False)
    parametrize.register_parametrization(layer, "weight", _Half())  # every other column zeroed
    return layer


@pytest.mark.parametrize("build", [_pruned, _parametrized], ids=["prune mask", "parametrization"])
def test_a_recognised_compression_is_counted_without_asking(build: object) -> None:
    view = flopmeter.profile(build(), X).compression  # type: ignore[operator]
    assert view.nonzeros_counted
    assert view.layers[""].weight_nonzero == 16  # half of 4 x 8 = 32


def test_a_model_pruned_in_place_after_a_plain_profile_is_unknown_not_pruned() -> None:
    """Counting at the first read of the view would show the pruned weights in the report
    taken before; the plain report says unknown instead."""
    layer = nn.Linear(8, 4, bias=False)
    before = flopmeter.profile(layer, X)
    with torch.no_grad():
        layer.weight.data[:, :4] = 0
    view = before.compression
    assert (view.nonzero_params, view.sparsity) == (None, None)
    after = flopmeter.profile(layer, X, compression=True)
    with pytest.raises(ValueError, match=r"before Report did not count .*compression=True"):
        flopmeter.compare(before, after)


def test_compare_of_models_counts_both() -> None:
    result = flopmeter.compare(nn.Linear(8, 4, bias=False), _half_zero(), X)
    assert result.after.nonzero_params == 16  # no bias: the nonzero weights only
    assert result.before.nonzero_params is not None and result.before.nonzero_params > 16


def test_micronet_needs_the_count() -> None:
    view = flopmeter.profile(_half_zero(), X).compression
    with pytest.raises(ValueError, match="compression=True"):
        flopmeter.micronet(view)


BUILDER = textwrap.dedent(
    """
    import torch

    def half_zero():
        layer = torch.nn.Linear(8, 4, bias=False)
        with torch.no_grad():
            layer.weight[:, :4] = 0
            layer.weight[:, 4:] = 1.0
        return layer
    """
)


def _cli(tmp_path: Path, *extra: str) -> tuple[int, str]:
    path = tmp_path / "zeros.py"
    path.write_text(BUILDER)
    out, err = io.StringIO(), io.StringIO()
    code = main([f"{path}:half_zero", "--input", "2x8", *extra], stdout=out, stderr=err)
    return code, out.getvalue()


def test_cli_counts_with_compression_only(tmp_path: Path) -> None:
    code, text = _cli(tmp_path, "--compression")
    assert code == 0
    assert "16 nonzero" in text and "50.0% sparse" in text  # 16 of 32 weights
    code, text = _cli(tmp_path, "--format", "json")
    assert code == 0
    view = json.loads(text)["compression"]
    assert (view["nonzeros_counted"], view["totals"]["nonzero_params"]) == (False, None)
    code, text = _cli(tmp_path, "--format", "json", "--assume-bits", "w8a8")
    assert json.loads(text)["compression"]["totals"]["nonzero_params"] == 16


def test_cli_micronet_counts(tmp_path: Path) -> None:
    code, text = _cli(tmp_path, "--micronet", "imagenet", "--format", "json")
    assert code == 0
    assert json.loads(text)["compression"]["nonzeros_counted"] is True


def test_one_recognised_compression_counts_every_weight() -> None:
    """A prune mask on one layer: the other layer's in-place zeros are counted too."""
    model = nn.Sequential(_pruned(), nn.Linear(4, 8, bias=False))
    with torch.no_grad():
        model[1].weight[:2] = 0  # 2 of 8 output rows x 4 inputs: 8 zeros of 32
    view = flopmeter.profile(model, X).compression
    assert [view.layers[name].weight_nonzero for name in ("0", "1")] == [16, 24]  # 32-16, 32-8


def test_cli_assume_sparsity_counts(tmp_path: Path) -> None:
    code, text = _cli(tmp_path, "--format", "json", "--assume-sparsity", "0.5")
    assert code == 0
    assert json.loads(text)["compression"]["nonzeros_counted"] is True


def test_compare_refuses_an_opt_out_of_the_count() -> None:
    for options in (False, CompressionOptions(count_nonzeros=False), {"count_nonzeros": False}):
        with pytest.raises(ValueError, match="compare counts the nonzeros"):
            flopmeter.compare(nn.Linear(8, 4), _half_zero(), X, compression=options)


def test_micronet_on_meta_says_its_nonzeros_were_unknown() -> None:
    """On meta the values are unknown: the score takes every weight as nonzero and says so
    (it had printed the dense score unlabelled)."""
    from flopmeter.render.compression import micronet_line

    with torch.device("meta"):
        layer = nn.Linear(8, 4, bias=False)
    score = flopmeter.micronet(flopmeter.profile(layer, torch.randn(2, 8, device="meta")).compression)
    # storage: 32 weights at the 16-bit freebie, 32 * 16 / 32 = 16.0 (dense: no mask)
    assert (score.storage, score.as_if_dense) == (16.0, True)
    assert micronet_line(score).endswith("(as if dense: nonzeros unknown)")
    counted = flopmeter.micronet(flopmeter.profile(_half_zero(), X, compression=True).compression)
    assert not counted.as_if_dense and "as if dense" not in micronet_line(counted)
