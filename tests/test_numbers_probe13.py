"""Probe 13: hand counts of layers, losses and ops no earlier probe counted (padding modes,
non-divisible adaptive pools, cross entropy's variants, the embedding and ranking losses,
RMSNorm, CrossMapLRN2d, spectral norm, training steps), and the fixes: dense linear algebra
counted (LU, Cholesky, triangular solves), multi_margin_loss counted, vector norms without a
root for p = 0, 1, inf. Every expected value has its arithmetic beside it
(docs/formulas.md's conventions); each count is checked shapes-only and with values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopmeter
from flopmeter.formulas import linalg
from wrapped import Fn


def both(model, *inputs: torch.Tensor, **kwargs) -> flopmeter.Report:  # type: ignore[no-untyped-def]
    """The default (shapes-only) profile, checked equal to a run with values and complete."""
    if not isinstance(model, nn.Module):
        model = Fn(model)
    report = flopmeter.profile(model, inputs, **kwargs)
    values = flopmeter.profile(model, inputs, shapes_only=False, **kwargs)
    assert (report.flops, report.macs) == (values.flops, values.macs)
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    return report


def op_flops(report: flopmeter.Report, op: str) -> int:
    return report.by_operator()[op].cost.flops


# ----------------------------------------------------------------- dense linear algebra
A = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0))
SPD = A @ A.mT + 4 * torch.eye(4)
B = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1))
# LU of a 4x4 (r, c = 3, 2, 1, 0 below / right of each pivot): pivot search 7 + 5 + 3 = 15,
# divides 3 + 2 + 1 = 6, multiply-subtracts 9 + 4 + 1 = 14 (28 FLOPs): 49 FLOPs, 14 MACs
LU4, LU4_MACS = 49, 14
# getrs of one right-hand side, n = 4: L (unit) 6 multiply-subtracts, U 6 + 4 divides:
# 4 * (2*4 - 1) = 28 FLOPs, 12 MACs
GETRS4, GETRS4_MACS = 28, 12


class TestLinearAlgebra:
    def test_formulas(self):
        assert (linalg.lu(4, 4).flops, linalg.lu(4, 4).macs) == (LU4, LU4_MACS)
        # square closed form 2n^3/3 + n^2/2 - n/6 - 1 at n = 6: 144 + 18 - 1 - 1 = 160
        assert linalg.lu(6, 6).flops == 160
        # 5x3: steps (r, c) = (4, 2), (3, 1), (2, 0): pivot 9 + 7 + 5, divides 4 + 3 + 2,
        # updates 8 + 3 + 0 MACs (22 FLOPs): 21 + 9 + 22 = 52
        assert (linalg.lu(5, 3).flops, linalg.lu(5, 3).macs) == (52, 11)
        # Cholesky n = 6: 6 roots + 15 divides + 2 * (216 - 6)/6 = 70: 91, 35 MACs
        assert (linalg.cholesky(6).flops, linalg.cholesky(6).macs) == (91, 35)
        # nothing to do for 1x1 (det: the permutation's sign times u11, 1) and 0x0
        assert linalg.lu(1, 1).flops == 0 and linalg.det(1).flops == 1 and linalg.det(0).flops == 0

    def test_det_slogdet_inv(self):
        # det: LU + diag product 3 + sign 1 = 53, batch 2: 106
        report = both(torch.linalg.det, A)
        assert (report.flops, report.macs) == (2 * (LU4 + 4), 2 * LU4_MACS)
        # slogdet: LU + sgn 4 + prod 3 + sign 1 + abs 4 + log 4 + sum 3 = 49 + 19: 2 * 68 = 136
        assert both(lambda a: torch.linalg.slogdet(a)[1], A).flops == 2 * (LU4 + 19)
        # inv = solve(A, I): LU + 4 right-hand sides: 49 + 4 * 28 = 161 each, 2 * 161 = 322;
        # MACs 2 * (14 + 4 * 12) = 124
        report = both(torch.linalg.inv, A)
        assert (report.flops, report.macs) == (322, 124)
        assert both(torch.inverse, A).flops == 322

    def test_solves(self):
        # solve: LU of each A + 3 right-hand sides: 2 * (49 + 3 * 28) = 266, MACs 2 * (14 + 36) = 100
        report = both(torch.linalg.solve, A, B)
        assert (report.flops, report.macs) == (266, 100)
        # a vector right-hand side: 49 + 28 = 77
        assert both(torch.linalg.solve, A[0], B[0, :, 0]).flops == 77
        # X A = B (left=False): B's 2 * 3 rows are the right-hand sides: 266 again
        assert both(lambda a, b: torch.linalg.solve(a, b.mT, left=False), A, B).flops == 266
        # one A for a batch of 2 B: torch factorizes A once (its LU output is 4x4): 49 + 6 * 28 = 217
        report = both(torch.linalg.solve, A[0], B)
        assert (report.flops, report.macs) == (217, LU4_MACS + 6 * GETRS4_MACS)
        # linalg.lu (P, L, U) and lu_factor_ex: the LU, 2 * 49
        assert both(lambda a: torch.linalg.lu(a)[2], A).flops == 98
        assert both(lambda a: torch.linalg.lu_factor_ex(a)[0], A).flops == 98
        # lu_factor + lu_solve: 2 * 49 + 6 * 28 = 266 as solve
        report = both(lambda a, b: torch.linalg.lu_solve(*torch.linalg.lu_factor(a), b), A, B)
        assert op_flops(report, "aten.linalg_lu_factor_ex") == 98
        assert op_flops(report, "aten.linalg_lu_solve") == 6 * GETRS4
        # solve_triangular, upper, 6 right-hand sides of n 4: 6 * 4^2 = 96 FLOPs, 6 * 6 = 36 MACs;
        # a unit diagonal on the right (X A = B): 6 * (16 - 4) = 72
        report = both(lambda a, b: torch.linalg.solve_triangular(a.triu(), b, upper=True), A, B)
        assert (report.flops, report.macs) == (96, 36)
        unit = both(
            lambda a, b: torch.linalg.solve_triangular(
                a.triu(), b.mT, upper=True, left=False, unitriangular=True
            ),
            A,
            B,
        )
        assert unit.flops == 72
        # the deprecated triangular_solve counts the same: 96
        assert both(lambda a, b: torch.triangular_solve(b, a.triu())[0], A, B).flops == 96

    def test_cholesky_and_its_solve(self):
        # n = 4: 4 roots + 6 divides + 2 * (64 - 4)/6 = 20: 30, 10 MACs; batch 2: 60, 20
        report = both(torch.linalg.cholesky, SPD)
        assert (report.flops, report.macs) == (60, 20)
        # cholesky_solve: two triangular solves per right-hand side, 2 * 16 = 32: 6 * 32 = 192
        report = both(lambda b, s: torch.cholesky_solve(b, torch.linalg.cholesky(s)), B, SPD)
        assert op_flops(report, "aten.cholesky_solve") == 192 and report.flops == 60 + 192

    def test_glow_and_gp_training_steps_are_counted(self):
        class InvConv(nn.Module):  # Glow's invertible 1x1 convolution
            def __init__(self) -> None:
                super().__init__()
                self.weight = nn.Parameter(torch.eye(4) + 0.1 * torch.randn(4, 4))

            def forward(self, x):  # type: ignore[no-untyped-def]
                logdet = torch.slogdet(self.weight)[1] * x.shape[2] * x.shape[3]
                return F.conv2d(x, self.weight.view(4, 4, 1, 1)), logdet

        report = flopmeter.profile(InvConv(), (torch.randn(2, 4, 3, 3),), backward=True)
        assert report.unsupported_ops() == {}
        # forward: conv 72 outputs * (2*4 - 1) = 504; slogdet 49 + 19 = 68; 2 multiplies
        assert op_flops(report, "aten._linalg_slogdet") == 68
        # slogdet's backward solves A^H X = G for 4 right-hand sides with the saved LU: 4 * 28
        assert op_flops(report, "aten.linalg_lu_solve") == 112

        class GP(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.scale = nn.Parameter(torch.ones(()))

            def forward(self, x, y):  # type: ignore[no-untyped-def]
                k = torch.exp(-(torch.cdist(x, x) ** 2) / self.scale) + 1e-3 * torch.eye(x.shape[0])
                chol = torch.linalg.cholesky(k)
                return (y * torch.cholesky_solve(y, chol)).sum() + 2 * chol.diagonal().log().sum()

        report = flopmeter.profile(GP(), (torch.randn(6, 2), torch.randn(6, 1)), backward=True)
        assert report.unsupported_ops() == {}
        # n = 6: cholesky 91; cholesky_solve of 1 right-hand side 2 * 36 = 72
        assert op_flops(report, "aten.linalg_cholesky_ex") == 91
        assert report.by_operator()["aten.cholesky_solve"].calls == 2  # forward and backward

    def test_decompositions_reported_here_are_counted_since_probe_14(self):
        # qr and eigvalsh were listed as unsupported here; probe 14 counts them
        # (tests/test_linalg_probe14.py has their hand counts)
        for fn, op in (
            (lambda a: torch.linalg.qr(a)[0], "aten.linalg_qr"),
            (torch.linalg.eigvalsh, "aten._linalg_eigh"),
        ):
            report = flopmeter.profile(Fn(fn), (SPD,))
            assert report.unsupported_ops() == {} and op_flops(report, op) > 0


# --------------------------------------------------------------------- vector norms
@pytest.mark.parametrize(
    ("order", "flops"),
    [
        (2, 3 * 8),  # squares 4, sum 3, sqrt 1 per row of 4: 8, 3 rows
        (3, 3 * 8),  # |x|^3 4, sum 3, cube root 1
        (1, 3 * 7),  # |x| 4, sum 3, no root (was 24)
        (float("inf"), 3 * 7),  # |x| 4, max 3 compares (was 24)
        (-float("inf"), 3 * 7),
        (0, 3 * 7),  # x != 0 4, count 3 (was 24)
    ],
)
def test_vector_norm_has_a_root_only_where_p_needs_one(order, flops) -> None:  # type: ignore[no-untyped-def]
    assert both(lambda a: torch.linalg.vector_norm(a, ord=order, dim=1), torch.randn(3, 4)).flops == flops
    assert both(lambda a: torch.norm(a, p=order, dim=1), torch.randn(3, 4)).flops == flops


def test_frobenius_and_normalize() -> None:
    assert both(lambda a: torch.norm(a), torch.randn(3, 4)).flops == 24  # 12 squares, 11 adds, sqrt
    # F.normalize(dim=1) on 3x4: norms 3 * 8 = 24, clamp_min 3, divides 12: 39
    assert both(lambda a: F.normalize(a, dim=1), torch.randn(3, 4)).flops == 39


# ---------------------------------------------------------------- multi_margin_loss
class TestMultiMarginLoss:
    X, T = torch.randn(3, 4), torch.tensor([0, 3, 1])

    def test_forward(self):
        # per sample 3 terms * (z 2 + compare 1) + 2 adds + /4 = 12; 3 samples 36; mean 2 + 1: 39
        assert both(nn.MultiMarginLoss(), self.X, self.T).flops == 39
        assert both(nn.MultiMarginLoss(reduction="none"), self.X, self.T).flops == 36
        # p = 2 and a class weight: 3 * (3 * 5 + 2 + 1) = 54, + 3: 57
        assert both(nn.MultiMarginLoss(p=2, weight=torch.rand(4)), self.X, self.T).flops == 57

    def test_backward(self):
        x = self.X.clone().requires_grad_()
        report = flopmeter.profile(Fn(F.multi_margin_loss), (x, self.T), backward=True)
        assert report.unsupported_ops() == {}
        # g 1 + 3 samples * 3 terms * (z 2, compare 1, -= 1) + 12 multiplies by the loss's grad: 49
        assert op_flops(report, "aten.multi_margin_loss_backward") == 49
        report = flopmeter.profile(
            Fn(lambda a, t: F.multi_margin_loss(a, t, p=2, weight=torch.rand(4))), (x, self.T), backward=True
        )
        # per term + 2 (2*g*z) + 1 (weight): 1 + 9 * 7 + 12 = 76
        assert op_flops(report, "aten.multi_margin_loss_backward") == 76


# ------------------------------------------------ hand counts that were right (pinned)
class TestConvolutionPaddingModes:
    X = torch.randn(1, 3, 10, 10)

    def test_padding_modes_and_same(self):
        # 8 * 100 outputs of 27 terms + bias: 800 * 54 = 43,200 FLOPs, 21,600 MACs: 'same' (3x3),
        # reflect, circular, replicate (a pad, 0 FLOPs, then a conv with padding 0)
        for layer in (
            nn.Conv2d(3, 8, 3, padding="same"),
            nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"),
            nn.Conv2d(3, 8, 3, padding=1, padding_mode="circular"),
            nn.Conv2d(3, 8, 3, padding=1, padding_mode="replicate"),
        ):
            report = both(layer, self.X)
            assert (report.flops, report.macs) == (43_200, 21_600), layer
        # 'same' with an even kernel (torch pads 1 left, 2 right): 800 * (2*48 - 1) = 76,000
        report = both(nn.Conv2d(3, 8, 4, padding="same", bias=False), self.X)
        assert (report.flops, report.macs) == (76_000, 38_400)
        # Conv1d 'same', dilation 2, groups 2 on 2x4x20: 240 outputs of 2*3 terms + bias: 240 * 12
        report = both(nn.Conv1d(4, 6, 3, padding="same", dilation=2, groups=2), torch.randn(2, 4, 20))
        assert (report.flops, report.macs) == (2_880, 1_440)

    def test_reflect_pad_bytes(self):
        # the pad reads 3*25*4 = 300 B and writes 3*49*4 = 588 B; the conv reads those 588, the
        # weight 432 and the bias 16: 1,336 read; writes 588 + 4*25*4 = 988
        conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
        report = both(conv, torch.randn(1, 3, 5, 5))
        assert (report.bytes_read, report.bytes_written) == (1_336, 988)

    def test_transposed_1d_and_2d(self):
        # ConvTranspose1d(4, 6, 3, s 2, p 1, output_padding 1, groups 2, dilation 2) on 2x4x5 -> 12:
        # MACs 2*4*5 * 3 * 3 = 360; products land on even full positions 0..12, the output keeps
        # 1..12: 6 reached per row, 2*6 rows: R = 72; FLOPs 2*360 - 72 = 648
        layer = nn.ConvTranspose1d(
            4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=2, bias=False
        )
        report = both(layer, torch.randn(2, 4, 5))
        assert (report.flops, report.macs) == (648, 360)
        # ConvTranspose2d(4, 4, 3, s 2, p 1, op 1, groups 2) on 1x4x3x3 with bias: 4*9 * 2 * 9 = 648
        # MACs, 2 * 648 FLOPs
        layer2 = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=2)
        report = both(layer2, torch.randn(1, 4, 3, 3))
        assert (report.flops, report.macs) == (1_296, 648)


def test_adaptive_pools_with_uneven_windows() -> None:
    # 5 -> 3: windows [0,2) [1,4) [3,5): 2, 3, 2; 7 -> 4: [0,2) [1,4) [3,6) [5,7): 2, 3, 3, 2
    # avg: (2+3+2) * (2+3+3+2) = 70 per plane, 2 planes 140; max: 140 - 24 outputs = 116
    assert both(nn.AdaptiveAvgPool2d((3, 4)), torch.randn(1, 2, 5, 7)).flops == 140
    assert both(nn.AdaptiveMaxPool2d((3, 4)), torch.randn(1, 2, 5, 7)).flops == 116
    assert both(nn.AdaptiveAvgPool1d(3), torch.randn(2, 3, 5)).flops == 6 * 7  # 42
    # 10 -> 4: [0,3) [2,5) [5,8) [7,10): 4 windows of 3: 4 * 2 = 8
    assert both(nn.AdaptiveMaxPool1d(4), torch.randn(1, 1, 10)).flops == 8


class TestLosses:
    X = torch.randn(4, 5)
    T = torch.tensor([0, 2, 4, 1])
    P = torch.softmax(torch.randn(4, 5), 1)

    def test_cross_entropy_variants(self):
        # log_softmax 4 * (4*5 - 1) = 76 + nll mean 4 + 3 + 1 = 84; ignore_index counts every target
        assert both(F.cross_entropy, self.X, self.T).flops == 84
        assert both(lambda a, t: F.cross_entropy(a, t, ignore_index=0), self.X, self.T).flops == 84
        # label_smoothing: + -sum over classes (16 + 4), masked_fill 4, sum 3, / count 1,
        # (1 - ls) * nll 1, * ls/C 1, + 1: 84 + 31 = 115
        assert both(lambda a, t: F.cross_entropy(a, t, label_smoothing=0.1), self.X, self.T).flops == 115
        # probability targets: 76 + (x * p) 20 + sum 19 + negate 1 + / 4 rows 1 = 117;
        # with smoothing p * 0.9 + 0.02: + 40 = 157
        assert both(F.cross_entropy, self.X, self.P).flops == 117
        assert both(lambda a, p: F.cross_entropy(a, p, label_smoothing=0.1), self.X, self.P).flops == 157

    def test_kl_div(self):
        log_p = torch.log_softmax(torch.randn(4, 5), 1)
        # xlogy(t, t) 2 + t * x 1 + sub 1 = 4 per element, 80; sum 19; / batch 1: 100
        assert both(nn.KLDivLoss(reduction="batchmean"), log_p, self.P).flops == 100
        # log_target: exp(t) * (t - x): 3 per element, 60 + 19 + 1 = 80
        assert both(nn.KLDivLoss(reduction="batchmean", log_target=True), log_p, self.P.log()).flops == 80

    def test_embedding_and_ranking_losses(self):
        a, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)
        # triplet: two pairwise distances (sub 32, +eps 32, norm 4 * 16) 128 each; margin +
        # d_pos 4, - d_neg 4, clamp 4; mean 4: 272
        assert both(nn.TripletMarginLoss(), a, p, n).flops == 272
        # cosine embedding: x1*x2 sum 32 + 28 = 60, two squared norms + eps 64 each, product and
        # sqrt 8, cos 4, 1 - cos 4, (cos - margin).clamp 8, 2 * (== 4, where 4) 16, + 4; mean 4: 236
        assert both(nn.CosineEmbeddingLoss(), a, p, torch.tensor([1.0, -1, 1, -1])).flops == 236
        # margin ranking on 6: -y 6, x1 - x2 6, * 6, + margin 6, clamp 6, mean 6: 36
        y6 = torch.tensor([1.0, -1, 1, 1, -1, 1])
        assert both(nn.MarginRankingLoss(), torch.randn(6), torch.randn(6), y6).flops == 36
        # hinge embedding on 10: margin - x 10, clamp 10, 2 * (!= 10, where 10) 40, + 10; mean 10: 80
        y10 = torch.tensor([[1.0, -1, 1, 1, -1], [1, 1, -1, 1, -1]])
        assert both(nn.HingeEmbeddingLoss(), torch.randn(2, 5), y10).flops == 80

    def test_likelihood_losses(self):
        # Poisson, log input: exp(x) - t * x 3 per element, 30 + mean 10 = 40; else
        # x - t * log(x + eps) 4 per element: 50
        assert both(nn.PoissonNLLLoss(), torch.randn(10), torch.rand(10)).flops == 40
        assert both(nn.PoissonNLLLoss(log_input=False), torch.rand(10), torch.rand(10)).flops == 50
        # Gaussian NLL on 12: var < 0 12 (any() on bools 0), clamp 12, 0.5 * (log var + (x - t)^2
        # / var) 6 * 12 = 72, mean 12: 108
        assert both(nn.GaussianNLLLoss(), torch.randn(4, 3), torch.randn(4, 3), torch.rand(4, 3)).flops == 108
        # multilabel soft margin on 3x4: 2 log_sigmoid 4 * 12, -x 12, t * 12, 1 - t 12, * 12,
        # + 12, negate 12 = 168; sum per row 9, / C 3; mean 3: 183
        target = torch.randint(0, 2, (3, 4)).float()
        assert both(nn.MultiLabelSoftMarginLoss(), torch.randn(3, 4), target).flops == 183


def test_norm_layers() -> None:
    # RMSNorm(8) on 6 rows: (3*8 + 2) + 8 weight multiplies = 34 per row: 204; without weight 156
    assert both(nn.RMSNorm(8), torch.randn(2, 3, 8)).flops == 204
    assert both(nn.RMSNorm(8, elementwise_affine=False), torch.randn(2, 3, 8)).flops == 156
    # CrossMapLRN2d(3) on 1x4x3x3 (planes of 9): x^2 36; first scale 2 adds of a plane 18;
    # running window: + next plane (c = 1, 2) 18, - previous (c = 3, alpha -1: 2 each) 18;
    # * alpha/size 36, + k 36, ^-beta 36, * x 36: 234
    assert both(nn.CrossMapLRN2d(3), torch.randn(1, 4, 3, 3)).flops == 234


def test_spectral_norm_is_overhead_and_counts_its_power_iteration() -> None:
    layer = nn.utils.parametrizations.spectral_norm(nn.Linear(4, 3))
    x = torch.randn(2, 4)
    # the layer alone: 2 * 3 outputs of 4 terms + bias: 48 FLOPs, 24 MACs
    assert (flopmeter.profile(layer, (x,)).flops, flopmeter.profile(layer, (x,)).macs) == (48, 24)
    # with the parametrization (docs/compression.md's overhead put back), eval: sigma = u . (W v):
    # mv 3 * 7 = 21 (12 MACs), vdot 5 (3 MACs), W / sigma 12: + 38 -> 86, 39 MACs
    report = flopmeter.profile(layer, (x,), compression={"count_overhead": True})
    assert (report.flops, report.macs) == (86, 39)
    # training adds one power iteration: mv 21 + normalize(3) 6 + 1 + 3, mv W^T u 4 * 5 = 20
    # + normalize(4) 8 + 1 + 4: + 64 -> 150, MACs + 24 -> 63
    report = flopmeter.profile(layer, (x,), train=True, compression={"count_overhead": True})
    assert (report.flops, report.macs) == (150, 63)


class TestTrainingSteps:
    def test_mlp(self):
        mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        report = flopmeter.profile(mlp, (torch.randn(3, 4),), backward=True)
        # forward: 3*8*2*4 = 192 (96 MACs), relu 24, 3*2*2*8 = 96 (48 MACs): 312
        # backward: dx2 = g @ W2 3*8 dots of 2: 72 (48 MACs); dW2 2*8 dots of 3: 80 (48); db2 2 * 2;
        # relu' 24; dW1 8*4 dots of 3: 160 (96); db1 8 * 2 = 16 (the input needs no gradient): 356
        assert (report.flops, report.macs) == (312 + 356, 144 + 192)

    def test_conv_net(self):
        net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(18, 1))
        report = flopmeter.profile(net, (torch.randn(1, 1, 5, 5),), backward=True)
        # forward: conv 18 outputs * 18 = 324 (162 MACs); linear 18 MACs, 36
        # backward: linear dx 18 * 1 (18 MACs), dW 18 (18 MACs), db a sum over 1 row 0;
        # conv dW 18 weights over 9 positions 18 * 17 = 306 (162 MACs), db 2 * 8 = 16: 358
        assert (report.flops, report.macs) == (324 + 36 + 358, 162 + 18 + 198)
        assert op_flops(report, "aten.convolution_backward") == 322


def test_packed_bidirectional_two_layer_gru() -> None:
    from torch.nn.utils.rnn import pack_padded_sequence

    class Packed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(3, 5, num_layers=2, bidirectional=True, batch_first=True)

        def forward(self, x):  # type: ignore[no-untyped-def]
            lengths = torch.tensor([2, 4, 1])
            return self.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))[0].data

    # 7 real tokens; per token and direction layer 1: 3*5*(3+5) = 120 MACs, 6*5*8 + 14*5 = 310;
    # layer 2 (input 10): 225 MACs, 6*5*15 + 70 = 520: 7 * 2 * (310 + 520) = 11,620, 7 * 2 * 345
    report = both(Packed(), torch.randn(3, 4, 3))
    assert (report.flops, report.macs) == (11_620, 4_830)


def test_per_module_attribution_of_a_toy_model() -> None:
    class Toy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
            self.pool = nn.AdaptiveAvgPool2d((3, 2))
            self.norm = nn.RMSNorm(6)
            self.gru = nn.GRU(6, 5, batch_first=True)
            self.head = nn.Linear(5, 3)
            self.mix = nn.Parameter(torch.eye(3) + 0.1 * torch.randn(3, 3))

        def forward(self, x):  # type: ignore[no-untyped-def]
            y = self.pool(self.conv(x)).flatten(2)
            y = self.gru(self.norm(y))[0][:, -1]
            return self.head(y) @ self.mix + torch.linalg.slogdet(self.mix)[1]

    modules = both(Toy(), torch.randn(1, 3, 5, 5)).by_module()
    expected = {
        "conv": (5_400, 2_700),  # 100 outputs * (2*27 + 1 bias - 1)
        "pool": (168, 0),  # (2+3+2) * (3+3) = 42 per plane, 4 planes
        "norm": (104, 0),  # 4 rows * (3*6 + 2 + 6)
        "gru": (1_600, 660),  # 4 tokens * (6*5*11 + 14*5), 4 * 3*5*11 MACs
        "head": (30, 15),  # 3 outputs of 5 + bias
        # (1x3) @ (3x3): 3 * 5 = 15 (9 MACs); slogdet 3x3: LU (pivot 5 + 3, divides 3, updates
        # 4 + 1 MACs) 21 + 5*3 - 1 = 35 (5 MACs); + 3
        "": (53, 14),
    }
    for name, (flops, macs) in expected.items():
        assert (modules[name].own.flops, modules[name].own.macs) == (flops, macs), name
    assert (modules[""].total.flops, modules[""].total.macs) == (7_355, 3_389)


def test_flop_counter_counts_no_linear_algebra() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        torch.linalg.solve(A, B)
    assert counter.get_total_flops() == 0  # no entry for _linalg_solve_ex: silent
    report = flopmeter.profile(Fn(torch.linalg.solve), (A, B))
    # 2 * MACs: 2 * (2 * (14 + 3 * 12)) = 200; ptflops counts nothing for it
    assert report.flops_as("2mac") == 200 and report.flops_as("ptflops") == 0


def test_addmv_scales_like_addmm() -> None:
    v, m, x = torch.randn(3), torch.randn(3, 4), torch.randn(4)
    # 3 dots of 4 + the bias: 3 * 8 = 24, 12 MACs
    assert both(torch.addmv, v, m, x).flops == 24
    # beta 0.5, alpha 2: + 3 multiplies each: 30 (was 24)
    assert both(lambda *a: torch.addmv(*a, beta=0.5, alpha=2), v, m, x).flops == 30
    # beta 0: no bias: 3 * 7 = 21 (was 24)
    assert both(lambda *a: torch.addmv(*a, beta=0), v, m, x).flops == 21
    # a Linear on one sample (1-D input): 24
    assert both(nn.Linear(4, 3), torch.randn(4)).flops == 24


@pytest.mark.parametrize(
    ("layer", "shape", "backward"),
    [
        # grad_input 7 per element without a weight (was 8: a gamma multiply that does not run)
        (nn.LayerNorm(8, elementwise_affine=False), (2, 8), 16 * 7),  # 112 (was 128)
        (nn.LayerNorm(8), (2, 8), 16 * (8 + 2 + 1)),  # input 8, weight 2, bias 1: 176
        (nn.LayerNorm(8, bias=False), (2, 8), 16 * (8 + 2)),  # 160
        (nn.GroupNorm(2, 4, affine=False), (2, 4, 3), 24 * 7),  # 168 (was 192)
        (nn.GroupNorm(2, 4), (2, 4, 3), 24 * 11),  # 264
        (nn.BatchNorm1d(4, affine=False), (3, 4), 12 * 7),  # training statistics: 84 (was 96)
        (nn.BatchNorm1d(4), (3, 4), 12 * 11),  # 132
        (nn.InstanceNorm1d(4), (2, 4, 5), 40 * 7),  # a batch norm over 8 instances: 280 (was 320)
    ],
)
def test_norm_backward_without_a_weight(layer, shape, backward) -> None:  # type: ignore[no-untyped-def]
    x = torch.randn(*shape, requires_grad=True)
    report = flopmeter.profile(layer, (x,), backward=True)
    assert report.unsupported_ops() == {}
    op = [name for name in report.by_operator() if name.endswith("norm_backward")]
    assert len(op) == 1 and op_flops(report, op[0]) == backward


def test_special_functions_round_and_dist() -> None:
    x, y = torch.rand(3, 4) + 0.1, torch.rand(3, 4) + 0.1
    # 1 per element, as lgamma and i0 (were listed as unsupported): 12 each
    for fn in (
        torch.special.bessel_j0,
        torch.special.bessel_y1,
        torch.special.modified_bessel_k0,
        torch.special.scaled_modified_bessel_k1,
        torch.special.spherical_bessel_j0,
        torch.special.airy_ai,
    ):
        assert both(fn, x).flops == 12, fn
    for fn2 in (torch.igamma, torch.igammac, torch.special.zeta):
        assert both(fn2, x, y).flops == 12, fn2
    assert both(torch.special.entr, x).flops == 12 * 4  # x > 0, log, multiply, negate: 48
    # round with decimals: x * 100, round, / 100: 36 (was 12); without: 12
    assert both(lambda a: torch.round(a, decimals=2), x).flops == 36
    assert both(torch.round, x).flops == 12
    # dist, p 2 on 12 elements: 12 subtracts, 12 squares, 11 adds, sqrt: 36 (was unsupported);
    # p 1: no root, 35; p 3 against a broadcast row: 36
    assert both(torch.dist, x, y).flops == 36
    assert both(lambda a, b: torch.dist(a, b, 1), x, y).flops == 35
    assert both(lambda a, b: torch.dist(a, b, 3), x, y[0]).flops == 36
    # polynomials of a degree stay reported
    report = flopmeter.profile(Fn(lambda a: torch.special.chebyshev_polynomial_t(a, 3)), (x,))
    assert list(report.unsupported_ops()) == ["aten.special_chebyshev_polynomial_t"]


def test_lu_without_pivoting_has_no_pivot_search():
    """CUDA's ``torch.linalg.lu_factor(A, pivot=False)``: the formula drops the search alone."""
    from flopmeter.cost import Cost
    from flopmeter.formulas import linalg

    # 4x4: divides 3 + 2 + 1 = 6, updates 9 + 4 + 1 = 14 MACs: 6 + 2*14 = 34 FLOPs
    assert linalg.lu(4, 4, pivot=False) == Cost(macs=14, flops=34)
    # with pivoting: + the search 7 + 5 + 3 = 15 -> 49
    assert linalg.lu(4, 4) == Cost(macs=14, flops=49)
