"""Review of probe 14's merged branches (docs/probe-14/code-review.md): interactions of the
branches developed side by side (complex values x linear algebra, complex x the ptflops
view). Every expected value has its hand arithmetic beside it.
"""

from __future__ import annotations

import torch

import flopmeter
from flopmeter.formulas import complex_values, linalg
from test_coverage_layers import Fn  # a module calling a function


def test_complex_qr_is_lawn41s_complex_count():
    """LAWN 41 counts complex arithmetic as 6 real FLOPs a multiplication and 2 an addition;
    the contraction rule (6 per MAC, 2 per other FLOP) weighed linalg's MACs (LAWN 41's
    additions) as multiplications. qr of 5 x 3, reduced:
    geqrf(5, 3): mults 5*9 - 27/3 + 15 + 9/2 + 23*3/6 = 45 - 9 + 15 + 4.5 + 11.5 = 67,
                 adds 45 - 9 + 4.5 + 5*3/6 = 43;
    orgqr(5, 3, 3): common 2*5*3*3 - (5 + 3)*9 + 2*27/3 = 90 - 72 + 18 = 36,
                 mults 36 + 2*3*3 - 9 - 5*3/3 = 40, adds 36 + 9 - 15 + 3/3 = 31;
    mults 67 + 40 = 107, adds 43 + 31 = 74."""
    real = flopmeter.profile(Fn(lambda a: torch.linalg.qr(a)), (torch.randn(5, 3),))
    assert (real.macs, real.flops) == (74, 107 + 74)  # 181
    for shapes_only in (False, True):
        z = flopmeter.profile(
            Fn(lambda a: torch.linalg.qr(a)),
            (torch.randn(5, 3, dtype=torch.complex64),),
            shapes_only=shapes_only,
        )
        assert z.macs == 4 * 74  # 296 real MACs
        assert z.flops == 6 * 107 + 2 * 74  # 642 + 148 = 790 (the contraction rule gave 6*74 + 2*107 = 658)
        assert z.total.ptflops_macs == 0  # ptflops counts no qr, complex or not (was 2*74 = 148)


def test_lawn41_complex_count_of_the_formulas():
    """complex_values.lawn41 of sytrf(4): mults 64/6 + 16/2 + 40/3 = 32, adds (64 - 4)/6 = 10
    (rounded from 10.67 + 8 + 13.33 = 32 exactly): complex 6*32 + 2*10 = 212 FLOPs, 40 MACs."""
    work = linalg.sytrf(4)
    assert (work.macs, work.flops) == (10, 42)  # adds 10, mults 32
    assert complex_values.lawn41(work) == flopmeter.Cost(macs=40, flops=6 * 32 + 2 * 10)  # 212


def test_complex_cholesky_ptflops_view_counts_only_the_matmul():
    """The ptflops view of a complex linalg op whose real one counts 0: 0, not a negative
    number of bias adds. a^H a of a 5 x 3 complex matrix: 3*3*5 = 45 complex MACs, ptflops
    4*45 = 180 real MACs; cholesky of the 3 x 3 result: macs (27 - 3)/6 = 4, ptflops 0
    (before: 4*4 + 2*(0 - 4) = 8 more, 188)."""
    a = torch.randn(5, 3, dtype=torch.complex64)
    report = flopmeter.profile(Fn(lambda a: torch.linalg.cholesky(a.mH @ a)), (a,))
    assert report.total.ptflops_macs == 4 * 45  # 180
    assert report.macs == 4 * 45 + 4 * 4  # 180 + 16 = 196 real MACs


def test_contraction_ptflops_with_bias_unchanged():
    """A complex linear with bias keeps its ptflops view: M = 3*8*5 = 120 MACs, P = 120 + 15
    bias adds: 4*120 + 2*15 = 510 (test_complex_probe14's value)."""
    work = flopmeter.Cost(macs=120, flops=2 * 120, ptflops_macs=135)
    assert complex_values.contraction(work).ptflops_macs == 4 * 120 + 2 * 15  # 510


def test_a_conjugate_input_is_resolved_in_both_modes():
    """A lazy conjugate (``z.conj()``: a conj bit, no copy) is resolved by a clone before the
    reshape; ``.to("meta")`` dropped the bit, so a shapes-only run counted a view there.
    4 x 8 complex64: clone reads 32*8 = 256 B, writes 256; abs 32*4 = 128 FLOPs, reads 256,
    writes 32*4 = 128; sum 31 adds, reads 128: 159 FLOPs, 256 + 256 + 128 = 640 B read."""
    z = torch.randn(4, 8, dtype=torch.complex64).conj()
    for shapes_only in (False, True):
        report = flopmeter.profile(Fn(lambda a: a.reshape(-1).abs().sum()), (z,), shapes_only=shapes_only)
        assert sorted(r.op for r in report.ops) == ["aten.abs", "aten.clone", "aten.sum"]
        assert report.flops == 4 * 32 + 31  # 159
        assert report.total.bytes_read == 256 + 256 + 128  # 640
    negative = torch.randn(4, 8, dtype=torch.complex64).conj().imag  # a neg bit: resolved the same way
    counts = {
        so: flopmeter.profile(Fn(lambda a: a.reshape(-1).sum()), (negative,), shapes_only=so).total.bytes_read
        for so in (False, True)
    }
    assert counts[False] == counts[True]


def test_complex_pow_to_the_exponents_torch_multiplies_out():
    """torch's pow kernel runs z ** 2 as z·z, z ** 3 as z·z·z, z ** -1 as 1/z, z ** 0.5 as
    sqrt (ATen PowKernel), and z.square() is pow(z, 2): per element 6 (4 mul + 2 add),
    12, 6 ((a - bi)/(a² + b²)), 11 (sqrt), not exp(p·log z)'s 13; ** 1 is a copy (0).
    Another real exponent stays 13 (log 6, times p 2, exp 5)."""
    z = torch.randn(10, dtype=torch.complex64)
    for call, per in (
        (lambda a: a.square(), 6),
        (lambda a: a**2, 6),
        (lambda a: a**3, 12),
        (lambda a: a**-1, 6),
        (lambda a: a**0.5, 11),
        (lambda a: a**2.5, 13),
    ):
        for shapes_only in (False, True):
            assert flopmeter.profile(Fn(call), (z,), shapes_only=shapes_only).flops == 10 * per
