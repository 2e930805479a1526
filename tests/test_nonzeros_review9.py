"""Review of "nonzeros are read when asked for" (docs/compression.md): a plan on nonzeros
nobody counted, compressions the weight facts alone did not recognise (float8 weights,
quantize ops in a forward), ``compression=False``, and the docs' Python workflow."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopmeter
from flopmeter.compression import CompressionOptions

X = torch.randn(2, 8)


def _half_zero() -> nn.Linear:
    """Linear(8, 4) without bias, its first 4 input columns zeroed in place (no marker):
    every row keeps 4 of 8, nonzero 4*4 = 16 of 32."""
    layer = nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        layer.weight[:, :4] = 0
        layer.weight[:, 4:] = 1.0
    return layer


def test_a_sparsity_plan_on_uncounted_nonzeros_is_refused_not_taken_as_dense() -> None:
    counted = flopmeter.profile(_half_zero(), X, compression=True).compression
    plan = counted.assume(sparsity=0.5)
    # round(16 * 0.5) = 8 of the 16 nonzeros pruned: 8 left; MACs 2 rows x 8 = 16
    assert (plan.layers[""].weight_nonzero, plan.macs_effective) == (8, 16)
    plain = flopmeter.profile(_half_zero(), X).compression
    # taken as dense, the plan would keep 32 - round(32 * 0.5) = 16 (MACs 32): twice the truth
    with pytest.raises(ValueError, match=r"assume\(sparsity=\.\.\.\).*compression=True"):
        plain.assume(sparsity=0.5)
    with pytest.raises(ValueError, match="compression=True"):
        plain.assume(sparsity="2:4")
    bits = plain.assume(bits="w8a8")  # bits need no nonzeros: the plan stays unknown, as its view
    assert (bits.nonzeros_counted, bits.nonzero_params) == (False, None)
    assert bits.layers[""].weight_bits == 8


def test_assume_sparsity_with_count_nonzeros_false_is_refused() -> None:
    with pytest.raises(ValueError, match="assume_sparsity .* needs them counted"):
        CompressionOptions(assume_sparsity=0.5, count_nonzeros=False)
    with pytest.raises(TypeError, match="count_nonzeros must be True or False"):
        CompressionOptions(count_nonzeros="no")  # type: ignore[arg-type]
    CompressionOptions(assume_bits="w8a8", count_nonzeros=False)  # bits alone: fine


class _Float8Linear(nn.Module):
    """A weight stored in float8 (e4m3), widened in the forward; no marker but its dtype.
    Values: rows of [0, 0, 0, 0, 1, 1, 1, 1] (0 and 1 are exact in e4m3): 16 of 32 nonzero."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(_half_zero().weight.detach().to(torch.float8_e4m3fn), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.to(x.dtype))


class _QuantizedInForward(nn.Module):
    """Quantizes its float weight in its forward (quantize_per_tensor -> dequantize): the
    trace's overhead bucket sees it, the weight facts do not. Same values: 16 of 32."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(_half_zero().weight.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch.quantize_per_tensor(self.weight, 0.5, 0, torch.qint8).dequantize()
        return F.linear(x, weight)


@pytest.mark.parametrize("build", [_Float8Linear, _QuantizedInForward], ids=["float8 weight", "quantize ops"])
def test_a_compression_seen_only_in_dtype_or_trace_is_counted_without_asking(build: type) -> None:
    view = flopmeter.profile(build(), X).compression
    assert view.nonzeros_counted
    layer = view.layers[""]
    assert (layer.weight_params, layer.weight_nonzero) == (32, 16)  # 4 rows x 4 kept of 8
    assert layer.macs_effective == 2 * 16  # 2 rows of x x 16 nonzero weights = 32


def test_a_float16_model_is_not_a_compression() -> None:
    """Half precision is how a model runs, not a compression: left uncounted."""
    view = flopmeter.profile(_half_zero().half(), X.half()).compression
    assert (view.nonzeros_counted, view.nonzero_params) == (False, None)


def test_compression_false_means_not_asked() -> None:
    plain = flopmeter.profile(_half_zero(), X, compression=False).compression
    assert (plain.nonzeros_counted, plain.nonzero_params) == (False, None)
    with pytest.raises(TypeError, match="compression must be True, False"):
        flopmeter.profile(_half_zero(), X, compression="yes")


def test_the_docs_python_workflow_runs_as_written() -> None:
    """docs/compression.md's Python block: profile(..., compression=True), then the view,
    a plan and the MicroNet score; a plain profile's view refuses the score."""
    model = nn.Sequential(_half_zero(), nn.ReLU(), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[2].weight.fill_(1.0)
    report = flopmeter.profile(model, X, compression=True)
    view = report.compression
    # weights 32 + 8 = 40, nonzero 16 + 8 = 24: sparsity 16/40 = 0.4; MACs eff. 2*16 + 2*8 = 48
    assert (view.sparsity, view.macs_effective) == (pytest.approx(0.4), 48)
    assert view.layers["0"].structure == "4:8"  # [0,0,0,0,1,1,1,1]: at most 4 of every 8
    plan = view.assume(sparsity="2:4", bits="w8a8")
    # 2:4 keeps 2 of each 4: row of 8 -> at most 4, the zeroed layer keeps its 4; Linear(4,2) 2 of 4
    assert [plan.layers[n].weight_nonzero for n in ("0", "2")] == [16, 4]
    # every layer at 32 bits: the 16-bit freebie; storage in 32-bit params: layer 0 keeps 16
    # values x 16 bits + a 32-bit mask = 288 (< 32 x 16 dense), layer 2 8 x 16 = 128: 416 / 32 = 13
    assert flopmeter.micronet(view, "imagenet").storage == 13.0
    plain = flopmeter.profile(model, X).compression
    with pytest.raises(ValueError, match="compression=True"):
        flopmeter.micronet(plain, "imagenet")


def test_probe7_p7_12_stays_fixed_for_a_weight_pruned_in_place() -> None:
    """P7-12 with the zeros written in place (``prune.remove`` leaves them so): Linear(16, 8)
    rows 4..7 zero, 64 of 128 kept. 2:4 keeps min(8, row): 4 live rows x 8 = 32, MACs 2 rows
    of x x 32 = 64. A plain profile's plan took the weight as dense (64 kept, MACs 128): refused."""
    layer = nn.Linear(16, 8)
    with torch.no_grad():
        layer.weight[4:] = 0
    x = torch.randn(2, 16)
    two_four = flopmeter.profile(layer, x, compression=True).compression.assume(sparsity="2:4")
    assert (two_four.layers[""].weight_nonzero, two_four.layers[""].macs_effective) == (32, 64)
    with pytest.raises(ValueError, match="compression=True"):
        flopmeter.profile(layer, x).compression.assume(sparsity="2:4")


class _Int8Weight(nn.Module):
    """A hand-made int8 weight-only layer (an int8 Parameter and a float scale: not one of
    the recognised formats, listed as unrecognised) beside a float layer with zeros."""

    def __init__(self) -> None:
        super().__init__()
        self.qweight = nn.Parameter(torch.ones(4, 8, dtype=torch.int8), requires_grad=False)
        self.float_layer = _half_zero()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.float_layer(x) + F.linear(x, self.qweight.to(x.dtype) * 0.5)


def test_an_integer_weight_makes_the_float_weights_counted() -> None:
    view = flopmeter.profile(_Int8Weight(), X).compression
    assert view.nonzeros_counted
    assert view.unrecognised == ["qweight (Parameter of int8)"]
    assert view.layers["float_layer"].weight_nonzero == 16  # 4 rows x 4 kept of 8


def test_count_nonzeros_false_does_not_stop_a_recognised_compression() -> None:
    from torch.nn.utils import prune

    model = nn.Sequential(nn.Linear(8, 8, bias=False), _half_zero())
    prune.custom_from_mask(model[0], "weight", torch.ones(8, 8))  # a mask keeping all 64
    view = flopmeter.profile(model, X, compression=CompressionOptions(count_nonzeros=False)).compression
    assert view.nonzeros_counted
    assert [view.layers[n].weight_nonzero for n in ("0", "1")] == [64, 16]  # the mask's 64; 4 rows x 4 of 8


def test_an_uncounted_view_gives_the_dense_effective_numbers_in_json() -> None:
    """docs/compression.md: with "nonzeros_counted": false, macs_effective, bops_relative and
    bytes_ideal are the dense model's: MACs 2 rows x 4 x 8 = 64, BOPs 64 x 32 x 32 of the same,
    bytes 32 weights x 4 = 128 (the counted view's: 32 MACs, 16 x 4 + 32 / 8 = 68 bytes)."""
    totals = flopmeter.profile(_half_zero(), X).to_dict()["compression"]["totals"]
    assert (totals["macs_effective"], totals["bops_relative"], totals["bytes_ideal"]) == (64, 1.0, 128)
    counted = flopmeter.profile(_half_zero(), X, compression=True).to_dict()["compression"]["totals"]
    assert (counted["macs_effective"], counted["bytes_ideal"]) == (32, 68)
