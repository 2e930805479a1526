"""grid_sample's and affine_grid's backward, cdist's and pdist's backward (probe-5): hand
counts, directly on the op and from a model's backward=True.

grid_sample backward, per output gradient (N*C*out of them): the input's gradient 2 per
tap (bilinear 8, trilinear 16, bicubic 32, nearest 1 add); the grid's gradient bilinear
14, trilinear 45, bicubic 74, nearest 0; per grid coordinate the un-normalising 3, + 1
(the chain rule) with the grid's gradient.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter import registry
from flopmeter.cost import Cost
from flopmeter.formulas import distance, pooling
from flopmeter.tracing.events import OpEvent, TensorMeta
from test_coverage_layers import Fn  # a module calling a function

F = nn.functional


def op_cost(report, op: str) -> Cost:  # type: ignore[no-untyped-def]
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    return report.by_operator()[op].cost


class Sampler(nn.Module):
    """A spatial transformer: a learned affine grid samples a conv's output."""

    def __init__(self, mode: str = "bilinear", *, learn_input: bool = True, learn_grid: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1).requires_grad_(learn_input)
        self.theta = nn.Parameter(torch.eye(2, 3).unsqueeze(0), requires_grad=learn_grid)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = F.affine_grid(self.theta, [1, 2, 3, 3], align_corners=False)
        return F.grid_sample(self.conv(x), grid, mode=self.mode, align_corners=False).sum()


X = torch.randn(1, 1, 4, 4)


class TestGridSampleBackward:
    def test_registered(self):
        for op in ("grid_sampler_2d_backward", "grid_sampler_3d_backward", "cudnn_grid_sampler"):
            assert registry.kind_of("aten." + op) == "counted"
        for op in ("cudnn_grid_sampler_backward", "affine_grid_generator"):
            assert registry.kind_of("aten." + op) == "counted"

    def test_formula(self):
        # 18 output gradients, 18 grid coordinates (9 points * 2)
        both = pooling.grid_sample_backward(18, 18, "bilinear", input_grad=True, grid_grad=True)
        assert both.flops == 18 * (8 + 14) + 18 * (3 + 1)  # 396 + 72 = 468
        assert both.macs == 0
        assert pooling.grid_sample_backward(18, 18, "bilinear", input_grad=True, grid_grad=False).flops == 198
        assert pooling.grid_sample_backward(18, 18, "nearest", input_grad=True, grid_grad=True).flops == 72

    @pytest.mark.parametrize(
        ("mode", "learn_input", "learn_grid", "expected"),
        [
            ("bilinear", True, True, 468),  # 18 * (8 + 14) + 18 * (3 + 1)
            ("bilinear", True, False, 198),  # 18 * 8 + 18 * 3: the grid is fixed
            ("bilinear", False, True, 324),  # 18 * 14 + 18 * 4: the input is fixed
            ("nearest", True, True, 72),  # 18 * 1 + 18 * 3: the grid's gradient is zero
            ("bicubic", True, True, 1_980),  # 18 * (32 + 74) + 18 * 4
        ],
    )
    def test_from_a_training_step(self, mode, learn_input, learn_grid, expected):
        model = Sampler(mode, learn_input=learn_input, learn_grid=learn_grid)
        report = flopmeter.profile(model, X, backward=True)
        assert op_cost(report, "aten.grid_sampler_2d_backward").flops == expected
        # the forward: 18 outputs * (bilinear 9 | nearest 0 | bicubic 35) + 18 coordinates * 3
        forward = {"bilinear": 216, "nearest": 54, "bicubic": 684}[mode]
        assert op_cost(report, "aten.grid_sampler_2d").flops == forward

    def test_direct_call_and_3d(self):
        grad, x, grid = torch.randn(1, 2, 3, 3), torch.randn(1, 2, 4, 4), torch.rand(1, 3, 3, 2)
        call = Fn(
            lambda g, i, p: torch.ops.aten.grid_sampler_2d_backward(g, i, p, 0, 0, False, [True, False])
        )
        report = flopmeter.profile(call, (grad, x, grid))
        assert op_cost(report, "aten.grid_sampler_2d_backward").flops == 198  # 18 * 8 + 18 * 3
        # 3-d trilinear: x (1, 2, 3, 3, 3), grid 2x2x2 points: 16 output gradients * (16 + 45)
        # = 976, + 24 coordinates * 4 = 96 -> 1,072
        sampler = Fn(lambda v, g: F.grid_sample(v, g, align_corners=False).sum())
        volume = torch.randn(1, 2, 3, 3, 3, requires_grad=True)
        points = (torch.rand(1, 2, 2, 2, 3) * 2 - 1).requires_grad_()
        report = flopmeter.profile(sampler, (volume, points), backward=True)
        assert op_cost(report, "aten.grid_sampler_3d_backward").flops == 1_072

    def test_cudnn_sampler(self):
        # cuDNN's sampler (CUDA, bilinear, zeros, align_corners=True): the same counts
        def meta(*shape: int) -> TensorMeta:
            return TensorMeta(shape, "float32", 4)

        x, grid, out = meta(1, 2, 4, 4), meta(1, 3, 3, 2), meta(1, 2, 3, 3)
        forward = registry.cost_of(OpEvent("aten.cudnn_grid_sampler", (x, grid), {}, (out,)))
        assert forward is not None and forward.flops == 216  # 18 * 9 + 18 * 3
        event = OpEvent("aten.cudnn_grid_sampler_backward", (x, grid, out), {}, (x, grid))
        backward = registry.cost_of(event)
        assert backward is not None and backward.flops == 468  # both gradients, as above

    def test_affine_grid(self):
        report = flopmeter.profile(Sampler(), X)
        # 9 points * 2 coordinates, each a dot product of (x, y, 1) with a row of theta
        cost = op_cost(report, "aten.affine_grid_generator")
        assert (cost.macs, cost.flops) == (54, 90)  # 18 * 3, 18 * (2*3 - 1)
        # its backward runs as a bmm: theta's 6 entries, dot products over the 9 points
        report = flopmeter.profile(Sampler(learn_input=False), X, backward=True)
        cost = op_cost(report, "aten.bmm")
        assert (cost.macs, cost.flops) == (54, 102)  # 6 * 9, 6 * (2*9 - 1)
        volume = Fn(lambda t: F.affine_grid(t, [1, 1, 2, 2, 2], align_corners=False))
        cost = op_cost(flopmeter.profile(volume, torch.randn(1, 3, 4)), "aten.affine_grid_generator")
        assert (cost.macs, cost.flops) == (96, 168)  # 8 points * 3 coordinates, dots of 4: 24 * 7


class Distances(nn.Module):
    """cdist of 5 points against 4 (batch 2), pdist of 5 points, in 3-d, all learned."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.scale
        return torch.cdist(y, y[:, :4], p=self.p).sum() + F.pdist(y[0], p=self.p).sum()


class TestDistanceBackward:
    def test_registered(self):
        assert registry.kind_of("aten._cdist_backward") == "counted"
        assert registry.kind_of("aten._pdist_backward") == "counted"

    def test_formula(self):
        # x1 (2, 5, 3) against x2 (2, 4, 3), p = 2: 40 pairs * g/D (1) + 120 terms * d*s (sub,
        # mul: 2) + 30 gradient elements * (4 - 1) adds = 40 + 240 + 90 = 370
        assert distance.cdist_backward(2, 5, 4, 3, 2.0).flops == 370
        # pdist of 5 points in 3-d, p = 2: 10 pairs * 1 + 30 terms * 2 + 15 elements * (5 - 2) = 115
        assert distance.pdist_backward(5, 3, 2.0).flops == 115
        assert distance.pdist_backward(1, 3, 2.0).flops == 0  # no pair

    @pytest.mark.parametrize(
        ("p", "cdist", "pdist"),
        [
            # cdist: two calls (x1's and x2's gradient: 5 rows against 4, then 4 against 5),
            # 40 pairs and 120 terms each; sums 2*5*3*(4-1) = 90 and 2*4*3*(5-1) = 96 adds.
            # pdist: 10 pairs, 30 terms, 15 elements * 3 adds = 45.
            (0.0, 0, 0),  # the gradient of a count of nonzeros is zero (torch returns zeros)
            (1.0, 2 * 120 * 3 + 90 + 96, 30 * 3 + 45),  # sign(d)*g: 3 per term -> 906; 135
            (2.0, 2 * (40 + 120 * 2) + 90 + 96, 10 + 30 * 2 + 45),  # 746; 115
            (3.0, 2 * (40 * 2 + 120 * 5) + 90 + 96, 10 * 2 + 30 * 5 + 45),  # 1,546; 215
            (float("inf"), 2 * 120 * 6 + 90 + 96, 30 * 6 + 45),  # 1,626; 225
        ],
    )
    def test_from_a_training_step(self, p, cdist, pdist):
        report = flopmeter.profile(Distances(p), torch.randn(2, 5, 3), backward=True)
        assert report.by_operator()["aten._cdist_backward"].calls == 2
        assert op_cost(report, "aten._cdist_backward").flops == cdist
        assert op_cost(report, "aten._pdist_backward").flops == pdist
        # the forwards (unchanged): 40 pairs * (3*3 - 1 + root), 10 pairs * the same
        root = 0 if p in (0.0, 1.0, float("inf")) else 1
        assert op_cost(report, "aten._cdist_forward").flops == 40 * (8 + root)
        assert op_cost(report, "aten._pdist_forward").flops == 10 * (8 + root)

    def test_unbatched_direct_call(self):
        # cdist of (5, 3) against (4, 3): grad (5, 4); p = 1: 60 terms * 3 + 15 * 3 adds = 225
        call = Fn(lambda g, a, b, d: torch.ops.aten._cdist_backward(g, a, b, 1.0, d))
        a, b = torch.randn(5, 3), torch.randn(4, 3)
        report = flopmeter.profile(call, (torch.randn(5, 4), a, b, torch.cdist(a, b, p=1.0)))
        assert op_cost(report, "aten._cdist_backward").flops == 225


class TestEuclideanByMatmul:
    """cdist with p = 2 and more than 25 rows or columns (torch's default compute mode)
    runs ``_euclidean_dist``: ||x||² + ||y||² - 2x·y as one matmul (probe-5: unsupported)."""

    def test_registered(self):
        assert registry.kind_of("aten._euclidean_dist") == "counted"

    def test_more_than_25_points(self):
        report = flopmeter.profile(Fn(lambda a: torch.cdist(a, a)), torch.randn(2, 30, 3))
        cost = op_cost(report, "aten._euclidean_dist")
        # per batch, P = R = 30, M = 3: norms 30*(2*3-1) twice = 300, -2x 90, the matmul
        # 900 dots of M + 2 = 5: 900*9 = 8,100 FLOPs, 4,500 MACs, clamp and sqrt 1,800
        # -> 10,290; 2 batches: 20,580 FLOPs, 9,000 MACs
        assert (cost.flops, cost.macs) == (20_580, 9_000)
        assert distance.euclidean_by_matmul(2, 30, 30, 3).flops == 20_580

    @pytest.mark.parametrize("shapes_only", [True, False])
    def test_asked_for(self, shapes_only):
        call = Fn(lambda a: torch.cdist(a, a, compute_mode="use_mm_for_euclid_dist"))
        report = flopmeter.profile(call, torch.randn(2, 5, 3), shapes_only=shapes_only)
        cost = op_cost(report, "aten._euclidean_dist")
        # per batch: 5*8 + 5*5 + 25*(2*3+5) = 40 + 25 + 275 = 340; MACs 25*5 = 125
        assert (cost.flops, cost.macs) == (680, 250)


class TestPaddingBackward:
    """Reflection and replication padding's backward (a training step of a ReflectionPad2d
    generator, torch.stft's centre padding when the signal needs a gradient; probe-5:
    unsupported): one add per padded cell."""

    @pytest.mark.parametrize(
        ("pad", "shape", "op", "expected"),
        [
            (nn.ReflectionPad2d(1), (1, 2, 4, 4), "reflection_pad2d_backward", 40),  # 2 * (36 - 16)
            (
                nn.ReplicationPad2d((1, 2, 0, 1)),
                (1, 2, 4, 4),
                "replication_pad2d_backward",
                38,
            ),  # 2 * (5*7 - 16)
            (nn.ReflectionPad1d(2), (2, 3, 5), "reflection_pad1d_backward", 24),  # 6 rows * (9 - 5)
            (nn.ReplicationPad3d(1), (1, 1, 2, 2, 2), "replication_pad3d_backward", 56),  # 4^3 - 2^3
        ],
    )
    def test_training_step(self, pad, shape, op, expected):
        x = torch.randn(*shape, requires_grad=True)
        report = flopmeter.profile(Fn(lambda t: pad(t).sum()), x, backward=True)
        assert op_cost(report, "aten." + op).flops == expected

    def test_stft_of_a_learned_signal(self):
        class FrontEnd(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.gain = nn.Parameter(torch.ones(64))

            def forward(self, wave: torch.Tensor) -> torch.Tensor:
                window = torch.hann_window(8, device=wave.device)
                return torch.stft(wave * self.gain, 8, 2, window=window, return_complex=True).abs().sum()

        report = flopmeter.profile(FrontEnd(), torch.randn(2, 64), backward=True)
        # the centre padding (4 each side, reflect) of 2 signals: 2 * 8 padded cells added back
        assert op_cost(report, "aten.reflection_pad1d_backward").flops == 16


class TestFold:
    """col2im (F.fold, and F.unfold's backward) sums overlapping blocks: it was a data op
    (0 FLOPs). Per dimension, hits(p) = the (block, kernel offset) pairs landing on p."""

    def test_registered(self):
        assert registry.kind_of("aten.col2im") == "counted"

    def test_fold(self):
        # 2 channels of 2x2 blocks, 3x3 of them, into 4x4: per dim hits 1, 2, 2, 1 (sum 6,
        # 4 covered): per plane 6*6 - 4*4 = 20 adds, 2 planes
        report = flopmeter.profile(Fn(lambda t: F.fold(t, (4, 4), 2)), torch.randn(1, 8, 9))
        assert op_cost(report, "aten.col2im").flops == 40
        assert pooling.fold_sums(2, (4, 4), (2, 2), (1, 1), (0, 0), (1, 1)).flops == 40

    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            ({"kernel_size": 2}, 40),  # as above
            ({"kernel_size": 2, "stride": 2}, 0),  # blocks do not overlap: a copy
            # 3x3 with padding 1: hits 2, 3, 3, 2 (sum 10, 4 covered): 2 * (100 - 16) = 168
            ({"kernel_size": 3, "padding": 1}, 168),
        ],
    )
    def test_unfold_backward(self, kwargs, expected):
        x = torch.randn(1, 2, 4, 4, requires_grad=True)
        report = flopmeter.profile(Fn(lambda t: F.unfold(t, **kwargs).sum()), x, backward=True)
        assert op_cost(report, "aten.col2im").flops == expected
