"""Probe 14: the linear-algebra decompositions that were reported as unsupported are
counted (docs/formulas.md, "Dense linear algebra"). Householder QR and the routines around
it (geqrf, householder_product/orgqr, ormqr), LDL^T, cholesky_inverse: LAPACK Working Note
41's operation counts (multiplications + additions; MACs = the additions). The iterative
ones (svd, eigh, eig, and pinv built on them) and matrix_exp: estimates (Golub & Van Loan's
leading-order counts; matrix_exp's degree and squarings depend on the values). Every
expected value has its arithmetic beside it; each profile is checked shapes-only and with
values (geqrf, ormqr, lstsq and histogram have no meta kernel: there both runs use values).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.formulas import linalg
from wrapped import Fn


def both(model, *inputs: torch.Tensor) -> flopmeter.Report:  # type: ignore[no-untyped-def]
    """The default (shapes-only) profile, checked equal to a run with values and complete."""
    if not isinstance(model, nn.Module):
        model = Fn(model)
    report = flopmeter.profile(model, inputs)
    values = flopmeter.profile(model, inputs, shapes_only=False)
    assert (report.flops, report.macs) == (values.flops, values.macs)
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    return report


def op_cost(report: flopmeter.Report, op: str) -> tuple[int, int]:
    cost = report.by_operator()[op].cost
    return cost.flops, cost.macs


TALL = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))  # batch 2 of 5 x 3
WIDE = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
SQUARE = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(2))
SPD = SQUARE @ SQUARE.mT + 4 * torch.eye(4)
RHS = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(3))

# geqrf of 5 x 3 (m >= n): mults mn^2 - n^3/3 + mn + n^2/2 + 23n/6 = 45 - 9 + 15 + 4.5 + 11.5 = 67,
# adds mn^2 - n^3/3 + n^2/2 + 5n/6 = 45 - 9 + 4.5 + 2.5 = 43: 110 FLOPs, 43 MACs
GEQRF_5x3, GEQRF_5x3_MACS = 67 + 43, 43
# orgqr, Q 5 x 3 from 3 reflectors: common 2mnk - (m + n)k^2 + 2k^3/3 = 90 - 72 + 18 = 36;
# mults 36 + 2nk - k^2 - 5k/3 = 36 + 18 - 9 - 5 = 40, adds 36 + nk - mk + k/3 = 36 + 9 - 15 + 1 = 31
ORGQR_5x3, ORGQR_5x3_MACS = 40 + 31, 31
# orgqr, Q 5 x 5 from 3 reflectors: common 150 - 90 + 18 = 78; mults 78 + 30 - 9 - 5 = 94,
# adds 78 + 15 - 15 + 1 = 79
ORGQR_5x5 = 94 + 79
# ormqr from the left, C 5 x 2, 3 reflectors: mults kn(2m + 2 - k) = 6 * 9 = 54,
# adds kn(2m + 1 - k) = 6 * 8 = 48
ORMQR_5x2, ORMQR_5x2_MACS = 54 + 48, 48
# thin SVD of 5 x 3 (M 5, N 3): min(14MN^2 + 8N^3, 6MN^2 + 20N^3) = min(630 + 216, 270 + 540) = 810
SVD_THIN_5x3 = 810


class TestHouseholderQR:
    def test_formulas(self):
        assert (linalg.geqrf(5, 3).flops, linalg.geqrf(5, 3).macs) == (GEQRF_5x3, GEQRF_5x3_MACS)
        # m < n, 3 x 5: mults nm^2 - m^3/3 + 2nm - m^2/2 + 23m/6 = 45 - 9 + 30 - 4.5 + 11.5 = 73,
        # adds nm^2 - m^3/3 + nm - m^2/2 + 5m/6 = 45 - 9 + 15 - 4.5 + 2.5 = 49
        assert (linalg.geqrf(3, 5).flops, linalg.geqrf(3, 5).macs) == (73 + 49, 49)
        assert (linalg.orgqr(5, 3, 3).flops, linalg.orgqr(5, 3, 3).macs) == (ORGQR_5x3, ORGQR_5x3_MACS)
        assert linalg.orgqr(5, 5, 3).flops == ORGQR_5x5
        # square n = k = 6: 4n^3/3 + n^2 - 4n/3 (mults 2n^3/3 + n^2 - 5n/3 = 144 + 36 - 10 = 170,
        # adds 2n^3/3 + n/3 = 144 + 2 = 146): 316
        assert linalg.orgqr(6, 6, 6).flops == 316
        assert (linalg.ormqr(5, 2, 3).flops, linalg.ormqr(5, 2, 3).macs) == (ORMQR_5x2, ORMQR_5x2_MACS)
        # from the right, C 2 x 5, 3 reflectors: mults k(m(2n - k) + m + n + (1 - k)/2)
        # = 3 * (14 + 2 + 5 - 1) = 60, adds km(2n + 1 - k) = 3 * 2 * 8 = 48
        assert linalg.ormqr(2, 5, 3, left=False).flops == 60 + 48
        assert linalg.geqrf(0, 3) == linalg.orgqr(5, 3, 0) == linalg.ormqr(5, 0, 3) == linalg.qr(4, 0)

    def test_qr_modes(self):
        # reduced: geqrf + Q 5 x 3: 2 * (110 + 71) = 362 FLOPs, 2 * (43 + 31) = 148 MACs
        report = both(lambda a: torch.linalg.qr(a), TALL)
        assert (report.flops, report.macs) == (2 * (GEQRF_5x3 + ORGQR_5x3), 2 * (43 + 31))
        # complete: Q 5 x 5 from the 3 reflectors: 2 * (110 + 173) = 566
        assert both(lambda a: torch.linalg.qr(a, mode="complete"), TALL).flops == 2 * (GEQRF_5x3 + ORGQR_5x5)
        # 'r': no Q, 2 * 110 = 220
        assert both(lambda a: torch.linalg.qr(a, mode="r")[1], TALL).flops == 2 * GEQRF_5x3
        # wide 3 x 5: geqrf 122 + Q 3 x 3 from 3 reflectors (common 54 - 54 + 18 = 18; mults
        # 18 + 18 - 9 - 5 = 22, adds 18 + 9 - 9 + 1 = 19): 122 + 41 = 163, complete the same
        assert both(lambda a: torch.linalg.qr(a), WIDE).flops == 163
        assert both(lambda a: torch.linalg.qr(a, mode="complete"), WIDE).flops == 163

    def test_geqrf_householder_product_ormqr(self):
        # geqrf 2 * 110, then Q from its reflectors 2 * 71: each op once
        report = both(lambda a: torch.linalg.householder_product(*torch.geqrf(a)), TALL)
        assert op_cost(report, "aten.geqrf") == (2 * GEQRF_5x3, 2 * GEQRF_5x3_MACS)
        assert op_cost(report, "aten.linalg_householder_product") == (2 * ORGQR_5x3, 2 * ORGQR_5x3_MACS)
        # torch.orgqr is householder_product: 2 * 71 = 142
        report = both(lambda a: torch.orgqr(*torch.geqrf(a)), TALL)
        assert op_cost(report, "aten.linalg_householder_product")[0] == 2 * ORGQR_5x3
        # Q^T C for C 5 x 2: 2 * 102 = 204
        report = both(lambda a, c: torch.ormqr(*torch.geqrf(a), c, transpose=True), TALL, RHS)
        assert op_cost(report, "aten.ormqr") == (2 * ORMQR_5x2, 2 * ORMQR_5x2_MACS)
        # C Q with C 2 x 5 (from the right): 2 * 108 = 216
        report = both(lambda a, c: torch.ormqr(*torch.geqrf(a), c.mT, left=False), TALL, RHS)
        assert op_cost(report, "aten.ormqr")[0] == 2 * 108


class TestIterativeEstimates:
    def test_svd_formulas(self):
        # values only, 5 x 3: min(4MN^2 - 4N^3/3, 2MN^2 + 2N^3) = min(180 - 36, 90 + 54) = 144
        assert linalg.svd(5, 3, vectors=False).flops == 144
        assert linalg.svd(5, 3).flops == SVD_THIN_5x3
        # full U (5 x 5), V: min(4M^2N + 8MN^2 + 9N^3, 4M^2N + 22N^3) = min(300 + 360 + 243, 300 + 594)
        assert linalg.svd(5, 3, full=True).flops == 894
        # a wide matrix is decomposed as its transpose
        assert linalg.svd(3, 5) == linalg.svd(5, 3) and linalg.svd(3, 5, full=True).flops == 894
        # square 4 x 4: values min(256 - 256/3, 256) = 170.67 -> 171; vectors, thin = full:
        # min(4 + 8 + 9, 26) * 64 = 21 * 64 = 1344
        assert linalg.svd(4, 4, vectors=False).flops == 171
        assert linalg.svd(4, 4).flops == linalg.svd(4, 4, full=True).flops == 1344
        # a tall-skinny matrix takes R-SVD (QR first): 100 x 2 values min(1600 - 32/3, 800 + 16)
        assert linalg.svd(100, 2, vectors=False).flops == 816
        # MACs: half the FLOPs; batch multiplies
        assert linalg.svd(5, 3, batch=3) == flopmeter.Cost(macs=3 * 405, flops=3 * 810)
        assert linalg.svd(0, 3) == flopmeter.Cost()

    def test_eig_formulas(self):
        # symmetric n = 4: values 4n^3/3 = 85.33 -> 85, vectors 9n^3 = 576
        assert (linalg.eigh(4, vectors=False).flops, linalg.eigh(4).flops) == (85, 576)
        # general n = 4: values 10n^3 = 640, vectors 25n^3 = 1600 (MACs 800)
        general = linalg.eig(4)
        assert (linalg.eig(4, vectors=False).flops, general.flops, general.macs) == (640, 1600, 800)
        assert linalg.eigh(0) == linalg.eig(0) == flopmeter.Cost()

    def test_svd_profiles(self):
        # thin SVD of a batch of 2 tall matrices: 2 * 810 = 1620, MACs 2 * 405
        report = both(lambda a: torch.linalg.svd(a, full_matrices=False), TALL)
        assert (report.flops, report.macs) == (2 * SVD_THIN_5x3, 2 * 405)
        # full_matrices=True (the default): 2 * 894 = 1788
        assert both(torch.linalg.svd, TALL).flops == 2 * 894
        # a wide one, thin: 810; torch.svd (some=True): the thin one too
        assert both(lambda a: torch.linalg.svd(a, full_matrices=False), WIDE).flops == SVD_THIN_5x3
        assert both(torch.svd, TALL).flops == 2 * SVD_THIN_5x3

    def test_values_only_functions_run_with_vectors_under_a_mode(self):
        # ATen computes U and V for svdvals whenever a dispatch mode is active (to keep the
        # values differentiable), so that is what runs and is counted: 2 * 810, not 2 * 144
        report = both(torch.linalg.svdvals, TALL)
        assert report.flops == 2 * SVD_THIN_5x3
        # eigvalsh likewise: 2 * 9 * 64 = 1152; eigvals 2 * 25 * 64 = 3200
        assert both(torch.linalg.eigvalsh, SPD).flops == 2 * 576
        assert both(torch.linalg.eigvals, SQUARE).flops == 2 * 1600

    def test_eig_profiles(self):
        report = both(torch.linalg.eigh, SPD)  # 2 * 576
        assert (report.flops, report.macs) == (1152, 576)
        assert both(torch.linalg.eig, SQUARE).flops == 3200  # 2 * 1600

    def test_composites_count_their_decomposition_once(self):
        # matrix_norm 'nuc': the thin SVD 1620 + the sum of 3 values per matrix 2 * 2 = 4
        report = both(lambda a: torch.linalg.matrix_norm(a, "nuc"), TALL)
        assert report.flops == 2 * SVD_THIN_5x3 + 4
        # spectral norm: the SVD + the max of 3 values, 2 compares per matrix: 1620 + 4
        assert both(lambda a: torch.linalg.matrix_norm(a, 2), TALL).flops == 2 * SVD_THIN_5x3 + 4
        # cond (2-norm) of 4 x 4: SVD 2 * 1344 + s_max / s_min 2 = 2690
        assert both(torch.linalg.cond, SQUARE).flops == 2 * 1344 + 2
        # matrix_rank: one SVD among its ops
        report = both(torch.linalg.matrix_rank, TALL)
        assert op_cost(report, "aten._linalg_svd")[0] == 2 * SVD_THIN_5x3

    def test_low_rank_decompositions_are_counted_op_by_op(self):
        # svd_lowrank(q=2, niter=2) on 5 x 3: qr of A R (5 x 2), then twice qr of A^H Q (3 x 2)
        # and of A Q (5 x 2); the SVD of Q^H A (2 x 3).
        # qr 5 x 2: geqrf (mults 20 - 8/3 + 10 + 2 + 23/3 = 37, adds 20 - 8/3 + 2 + 5/3 = 21) 58
        # + Q (common 40 - 28 + 16/3; mults 12 + 16/3 + 8 - 4 - 10/3 = 18, adds 12 + 16/3 + 4
        # - 10 + 2/3 = 12) 30 = 88; qr 3 x 2: geqrf (12 - 8/3 + 6 + 2 + 23/3 = 25,
        # 12 - 8/3 + 2 + 5/3 = 13) 38 + Q (common 24 - 20 + 16/3; 10 and 8) 18 = 56
        # SVD 2 x 3, thin: min(14 * 3 * 4 + 8 * 8, 6 * 3 * 4 + 20 * 8) = min(232, 232) = 232
        for fn in (lambda a: torch.svd_lowrank(a, q=2)[1], lambda a: torch.pca_lowrank(a, q=2)[1]):
            report = both(fn, TALL)
            assert op_cost(report, "aten.linalg_qr")[0] == 2 * (3 * 88 + 2 * 56)  # 752
            assert op_cost(report, "aten._linalg_svd")[0] == 2 * 232

    def test_training_steps_have_no_unsupported_op(self):
        class Spectral(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.weight = nn.Parameter(torch.randn(4, 4))

            def forward(self, x):  # type: ignore[no-untyped-def]
                w = self.weight + x
                q, r = torch.linalg.qr(w)
                return torch.linalg.svdvals(w).sum() + torch.linalg.eigvalsh(w @ w.mT).sum() + r.sum()

        report = flopmeter.profile(Spectral(), (torch.zeros(4, 4),), backward=True)
        assert report.unsupported_ops() == {}
        # forward: qr 4 x 4 (geqrf: mults 64 - 64/3 + 16 + 8 + 46/3 = 82, adds 64 - 64/3 + 8
        # + 10/3 = 54; Q: mults 128/3 + 16 - 20/3 = 52, adds 128/3 + 4/3 = 44): 232
        assert op_cost(report, "aten.linalg_qr")[0] == 82 + 54 + 52 + 44

    def test_training_steps_of_pinv_lstsq_and_matrix_exp(self):
        class Solver(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.weight = nn.Parameter(0.3 * torch.randn(4, 4))

            def forward(self, x):  # type: ignore[no-untyped-def]
                w = self.weight + x
                solution = torch.linalg.lstsq(w, x[:, :2] + 1).solution
                return torch.linalg.pinv(w).sum() + solution.sum() + torch.linalg.matrix_exp(w).sum()

        report = flopmeter.profile(Solver(), (torch.zeros(4, 4),), backward=True)
        assert report.unsupported_ops() == {}
        # matrix_exp's backward is the matrix_exp of an 8 x 8 block matrix: 1380 forward +
        # (10 * 512 + 46 * 64 + 4 = 8068) backward
        exp = report.by_operator()["aten.linalg_matrix_exp"]
        assert exp.calls == 2 and exp.cost.flops == 1380 + 8068

    def test_norms_and_powers_without_a_decomposition(self):
        # matrix_norm 'fro' is a vector norm over 15 values: 2 * (2 * 15) = 60
        report = both(lambda a: torch.linalg.matrix_norm(a), TALL)
        assert set(report.by_operator()) == {"aten.linalg_vector_norm"} and report.flops == 60
        # matrix_power 3: 2 bmm of 2 x (4 x 4 @ 4 x 4), 2 * 2 * 16 * 7 = 448; -1: inv, no bmm
        assert both(lambda a: torch.linalg.matrix_power(a, 3), SQUARE).flops == 448
        assert set(both(lambda a: torch.linalg.matrix_power(a, -1), SQUARE).by_operator()) >= {
            "aten.linalg_inv_ex"
        }


class TestMatrixExpPinvLstsq:
    def test_matrix_exp(self):
        # n = 4: 10n^3 + 46n^2 + 4 = 640 + 736 + 4 = 1380 (5 products 5 * 16 * 7 = 560, linear
        # combinations 45 * 16 = 720, adds 48, 1-norm 31, scale 16 + 5), MACs 5 * 64 = 320
        report = both(torch.linalg.matrix_exp, SQUARE)
        assert (report.flops, report.macs) == (2 * 1380, 2 * 320)
        assert linalg.matrix_exp(1, batch=3).flops == 3  # one exp each
        assert linalg.matrix_exp(0) == flopmeter.Cost()

    def test_pinv_is_one_op(self):
        # thin SVD 810 + tolerance 2 + (compare, 1/s, where) 3 * 3 + V diag 3 * 3
        # + (3 x 3 @ 3 x 5) 15 * 5 = 905 per matrix; MACs 405 + 45
        report = both(torch.linalg.pinv, TALL)
        assert (report.flops, report.macs) == (2 * 905, 2 * 450)
        assert set(report.by_operator()) == {"aten.linalg_pinv"}  # its SVD is not counted again
        # wide 3 x 5: V is 5 x 3, so V diag 15 and (5 x 3 @ 3 x 3) 15 * 5:
        # 810 + 2 + 9 + 15 + 75 = 911
        assert both(torch.linalg.pinv, WIDE).flops == 911
        # hermitian: eigh 576 + |w| 4 + max 3 + tolerance 2 + 3 * 4 + U diag 16 + 16 * 7 = 725
        assert both(lambda a: torch.linalg.pinv(a, hermitian=True), SPD).flops == 2 * 725
        assert both(torch.pinverse, TALL).flops == 2 * 905

    def test_lstsq(self):
        # gelsy (the CPU default) and gels: geqrf 110 + ormqr(C 5 x 2) 102 + triangular solves
        # 2 * 3^2 = 18: 230 per system, 2 * 230 = 460
        assert both(lambda a, b: torch.linalg.lstsq(a, b).solution, TALL, RHS).flops == 460
        assert both(lambda a, b: torch.linalg.lstsq(a, b, driver="gels").solution, TALL, RHS).flops == 460
        # a vector right-hand side: ormqr(C 5 x 1) (mults 3 * 9 = 27, adds 3 * 8 = 24) 51 + 9:
        # 2 * (110 + 51 + 9) = 340
        assert both(lambda a, b: torch.linalg.lstsq(a, b[..., 0]).solution, TALL, RHS).flops == 340
        # gelsd: thin SVD 810 + U^T B 3 * 2 * 9 = 54 + divides 6 + V (.) 3 * 2 * 5 = 30: 900
        report = both(lambda a, b: torch.linalg.lstsq(a, b, driver="gelsd").solution, TALL, RHS)
        assert report.flops == 2 * 900


class TestLDLAndCholeskyInverse:
    def test_ldl(self):
        # sytrf n = 4: mults n^3/6 + n^2/2 + 10n/3 = 32/3 + 8 + 40/3 = 32, adds (64 - 4)/6 = 10
        report = both(lambda a: torch.linalg.ldl_factor(a)[0], SPD)
        assert (report.flops, report.macs) == (2 * 42, 2 * 10)
        # ldl_solve, 2 * 2 right-hand sides of n 4: n^2 + n(n - 1) = 28 each, 112
        report = both(lambda a, b: torch.linalg.ldl_solve(*torch.linalg.ldl_factor(a), b), SPD, RHS[:, :4])
        assert op_cost(report, "aten.linalg_ldl_solve") == (4 * 28, 4 * 12)

    def test_cholesky_inverse_and_lu_unpack(self):
        # potri n = 4: mults n^3/3 + n^2 + 2n/3 = 64/3 + 16 + 8/3 = 40, adds n^3/3 - n^2/2 + n/6
        # = 64/3 - 8 + 2/3 = 14: 54, batch 2: 108
        report = both(lambda s: torch.cholesky_inverse(torch.linalg.cholesky(s)), SPD)
        assert op_cost(report, "aten.cholesky_inverse") == (108, 28)
        # lu_unpack copies L and U out and builds P from integer pivots: data, only the LU counted
        report = both(lambda a: torch.lu_unpack(*torch.linalg.lu_factor(a))[1], SQUARE)
        assert report.flops == 2 * 49  # LU of 4 x 4: 49 (tests/test_numbers_probe13.py)


class TestHistogramDensity:
    X = torch.randn(5, 3, generator=torch.Generator().manual_seed(4))

    @pytest.mark.parametrize(
        ("call", "flops"),
        [
            # binning 3 * 15 = 45; density over 4 bins: sum 3, / sum 4, widths 4, / width 4: 15
            (lambda x: torch.histogram(x, 4, range=(-1.0, 1.0), density=True)[0], 45 + 15),
            (lambda x: torch.histogram(x, 4, range=(-1.0, 1.0))[0], 45),
            # without a range: + the min/max scan 2 * 14 = 28
            (lambda x: torch.histogram(x, 4, density=True)[0], 45 + 28 + 15),
            # 3 bins from 4 edges: 45 + 4 * 3 - 1 = 56
            (lambda x: torch.histogram(x, torch.linspace(-1, 1, 4), density=True)[0], 45 + 11),
            # weights + 15 (the abs is 15 more): 45 + 15 + 15 + 15
            (lambda x: torch.histogram(x, 4, range=(-1.0, 1.0), weight=x.abs(), density=True)[0], 90),
        ],
    )
    def test_density_divisions(self, call, flops) -> None:  # type: ignore[no-untyped-def]
        assert both(call, self.X).flops == flops


class TestHistogramdd:
    POINTS = torch.randn(6, 2, generator=torch.Generator().manual_seed(5))  # 6 points in 2 dims

    def test_bin_counts_without_a_range(self):
        # _histogramdd_bin_edges: min and max of each dim, 2 * (6 - 1) * 2 = 20; from_bin_cts
        # makes its edges again (20) and bins 3 per coordinate, 3 * 12 = 36: 56
        report = both(lambda x: torch.histogramdd(x, [2, 3])[0], self.POINTS)
        assert op_cost(report, "aten._histogramdd_bin_edges")[0] == 20
        assert op_cost(report, "aten._histogramdd_from_bin_cts")[0] == 20 + 36

    def test_density_and_weights(self):
        # a range: no scans; density over H = 2 * 3 = 6 cells in D = 2 dims: sum 5, / sum 6,
        # widths 2 + 3, / width 6 + 6: (D + 2)H - 1 + 5 = 23 + 5 = 28; 36 + 28 = 64
        fn = lambda x: torch.histogramdd(x, [2, 3], range=[-1.0, 1.0, -1.0, 1.0], density=True)[0]  # noqa: E731
        assert both(fn, self.POINTS).flops == 64
        # bin edges as tensors (2 and 3 bins), weights (+ 6, their abs 6 more), density 28:
        # 36 + 6 + 28 + 6 = 76
        fn = lambda x: torch.histogramdd(  # noqa: E731
            x, [torch.linspace(-1, 1, 3), torch.linspace(-1, 1, 4)], weight=x[:, 0].abs(), density=True
        )[0]
        report = both(fn, self.POINTS)
        assert op_cost(report, "aten._histogramdd_from_bin_tensors")[0] == 36 + 6 + 28
        assert report.flops == 76
