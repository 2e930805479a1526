"""Probe 13: ops earlier probes left uncounted or short (P12-N11): histc's and histogram's
min/max scan without a range, allclose, frexp and ldexp. Every expected value has its
arithmetic beside it (docs/formulas.md's conventions: a comparison or arithmetic operation
on floating-point values 1 FLOP, on integers and bools 0)."""

from __future__ import annotations

import pytest
import torch

import flopmeter
from wrapped import Fn


def flops(fn, *inputs: torch.Tensor) -> int:  # type: ignore[no-untyped-def]
    report = flopmeter.profile(Fn(fn), inputs)
    assert not report.unsupported, report.unsupported
    return report.flops


X = torch.randn(3, 4)  # 12 elements


class TestHistogramScan:
    def test_histc_without_a_range_scans_for_min_and_max(self) -> None:
        # binning 3 * 12 = 36; min and max of the data, 11 comparisons each: 2 * (12 - 1) = 22
        assert flops(lambda x: torch.histc(x, bins=5), X) == 36 + 22
        # min == max, not zero: the kernel scans all the same
        assert flops(lambda x: torch.histc(x, bins=5, min=1, max=1), X) == 36 + 22

    def test_histc_with_a_range_bins_only(self) -> None:
        assert flops(lambda x: torch.histc(x, bins=5, min=-1, max=1), X) == 3 * 12

    def test_histc_of_nothing_is_nothing(self) -> None:
        assert flops(lambda x: torch.histc(x[:0], bins=5), X) == 0  # no elements: no scan, no binning

    def test_histogram_scans_without_a_range_only(self) -> None:
        first = lambda x: torch.histogram(x, bins=5).hist  # noqa: E731
        assert flops(first, X) == 36 + 22  # as histc
        ranged = lambda x: torch.histogram(x, bins=5, range=(-1.0, 1.0)).hist  # noqa: E731
        assert flops(ranged, X) == 36
        # bin edges given: no scan (their binning keeps its 3 per element)
        edges = torch.tensor([-1.0, 0.0, 1.0])
        assert flops(lambda x: torch.histogram(x, bins=edges).hist, X) == 36


class TestAllclose:
    """torch.allclose runs torch.isclose inside its kernel (one op to the dispatcher), then
    ``all`` over bools (0). a (3, 4) against b (4,): 12 elements, 4 of b."""

    B = torch.randn(4)

    def test_default_tolerances(self) -> None:
        # a == b 12; |a - b|: sub, abs 2*12; isfinite 3*12; <= 12: 6*12 = 72;
        # rtol*|b| + atol: mul, abs, add over b's 4 elements, 3*4 = 12. 12 + 72 + 12 = 96
        assert flops(lambda a: torch.tensor(torch.allclose(a, self.B)), X) == 96

    def test_equal_nan_adds_isnan_of_each(self) -> None:
        # 96 + isnan(a) 12 + isnan(b) 4 = 112
        assert flops(lambda a: torch.tensor(torch.allclose(a, self.B, equal_nan=True)), X) == 112

    def test_zero_tolerances_are_an_equality_test(self) -> None:
        assert flops(lambda a: torch.tensor(torch.allclose(a, self.B, rtol=0, atol=0)), X) == 12
        # + isnan 12 + 4 = 28
        nan = lambda a: torch.tensor(torch.allclose(a, self.B, rtol=0, atol=0, equal_nan=True))  # noqa: E731
        assert flops(nan, X) == 28

    def test_integers_are_not_floating_point_work(self) -> None:
        ints = torch.arange(12).reshape(3, 4)
        assert flops(lambda a: torch.tensor(torch.allclose(a, a)), ints) == 0

    @pytest.mark.parametrize(
        "kw", [{}, {"equal_nan": True}, {"rtol": 0, "atol": 0}, {"rtol": 0.1, "atol": 0, "equal_nan": True}]
    )
    def test_equals_isclose_then_all(self, kw: dict) -> None:
        # the same ops torch.isclose shows the dispatcher one by one
        expected = flops(lambda a: torch.isclose(a, self.B, **kw).all(), X)
        assert flops(lambda a: torch.tensor(torch.allclose(a, self.B, **kw)), X) == expected


class TestFrexpLdexp:
    def test_frexp_is_one_elementary_function_per_element(self) -> None:
        # x = m * 2^e, both results from the float's fields: 1 * 12
        assert flops(lambda x: torch.frexp(x).mantissa, X) == 12

    def test_ldexp_is_pow_and_multiply(self) -> None:
        exponents = torch.randint(-3, 3, (3, 4), dtype=torch.int32)
        # x * 2^e: pow(2, e), multiply: 2 * 12 = 24
        assert flops(lambda x: torch.ldexp(x, exponents), X) == 24
        # broadcast: x (4,) against e (3, 4): 12 outputs, 24; in place likewise
        assert flops(lambda x: torch.ldexp(x, exponents), torch.randn(4)) == 24
        assert flops(lambda x: x.clone().ldexp_(exponents), X) == 24
