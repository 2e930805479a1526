"""Norms, activations, pooling, resampling, elementwise ops: hand counts, then traced."""

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.formulas import elementwise, normalization, pooling
from wrapped import Fn


def flops_of(module: nn.Module, *inputs: torch.Tensor, **kwargs) -> int:
    report = flopmeter.profile(module, inputs, **kwargs)
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    return report.flops


class TestNormalization:
    def test_layer_norm(self):
        # 2 rows of D=16: 2*(5*16+2) statistics + 2*32 affine (weight and bias)
        assert normalization.normalize_with_statistics(2, 16, weight=True, bias=True).flops == 228
        assert flops_of(nn.LayerNorm(16), torch.randn(2, 16)) == 228

    def test_group_norm(self):
        # 2 groups of D=2*9=18: 2*(5*18+2) = 184, affine on 36 elements: 72
        assert flops_of(nn.GroupNorm(2, 4), torch.randn(1, 4, 3, 3)) == 256

    def test_instance_norm(self):
        # 4 planes of 9, no affine, no running stats: 4*(5*9+2) = 188
        assert flops_of(nn.InstanceNorm2d(4), torch.randn(1, 4, 3, 3)) == 188

    def test_batch_norm_eval_and_train(self):
        bn = nn.BatchNorm2d(4)
        # eval: 2 per element (36) + 5 per channel (4) = 72 + 20
        assert flops_of(bn, torch.randn(1, 4, 3, 3)) == 92
        # train: statistics 4*(5*9+2) = 188, affine 72, running stats 7*4 = 28
        # (num_batches_tracked += 1 is an integer add: not a floating point operation)
        assert flops_of(bn, torch.randn(1, 4, 3, 3), train=True) == 288

    def test_rms_norm(self):
        # 2 rows of 16: 2*(3*16+2) + 32 weight multiplies = 132
        assert normalization.rms_norm(2, 16, weight=True).flops == 132
        assert flops_of(nn.RMSNorm(16), torch.randn(2, 16)) == 132


ACTIVATIONS = [
    (nn.ReLU(), 1),
    (nn.ReLU6(), 2),
    (nn.LeakyReLU(), 2),
    (nn.PReLU(), 2),
    (nn.ELU(), 4),
    (nn.SELU(), 5),
    (nn.CELU(), 5),
    (nn.Sigmoid(), 3),
    (nn.Tanh(), 1),
    (nn.Hardswish(), 5),
    (nn.Hardsigmoid(), 4),
    (nn.SiLU(), 4),
    (nn.Mish(), 5),
    (nn.Softplus(), 4),  # threshold compare, exp, add, log
    (nn.Softplus(beta=2.0), 6),  # + multiply, divide by beta
    (nn.GELU(), 5),
    (nn.GELU(approximate="tanh"), 9),
    (nn.LogSigmoid(), 4),
    (nn.Hardtanh(-2.0, 2.0), 2),
]


@pytest.mark.parametrize(
    "module,per_element", ACTIVATIONS, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else str(v)
)
def test_activations(module, per_element):
    assert flops_of(module, torch.randn(2, 8)) == 16 * per_element  # 16 elements


def test_weight_norm_recompute():
    """torch's weight_norm recomputes w = g * v / ||v||: v of 4 rows x 8, one norm per row
    (8 squares, 7 adds, 1 sqrt = 16), g / norm (1), then 32 multiplies:
    4*16 + 4 + 32 = 100 = 3*32 + 4. Over the whole tensor (dim=None) torch decomposes it
    into norm 2*32 + div 1 + mul 32 = 97 = 3*32 + 1: the same rule with one group."""
    assert elementwise.weight_norm(32, 4).flops == 100
    assert elementwise.weight_norm(32, 1).flops == 97
    v, g = torch.randn(4, 8), torch.randn(4, 1)
    weight_norm = Fn(lambda v, g: torch._weight_norm_interface(v, g, 0)[0])
    assert flops_of(weight_norm, v, g) == 100
    for dim, expected in ((0, 100), (None, 97)):  # the recompute is the overhead of a parametrized layer
        layer = nn.utils.parametrizations.weight_norm(nn.Linear(8, 4), dim=dim)
        overhead = flopmeter.profile(layer, torch.randn(2, 8)).overhead
        assert sum(entry.cost.flops for entry in overhead.values()) == expected


class TestSoftmaxAndReductions:
    def test_softmax(self):
        assert elementwise.softmax(3, 4).flops == 54  # 3 rows * (5*4-2)
        assert flops_of(nn.Softmax(-1), torch.randn(3, 4)) == 54
        assert flops_of(nn.LogSoftmax(-1), torch.randn(3, 4)) == 45  # 3 * (4*4-1)

    @pytest.mark.parametrize(
        "fn,expected",
        [
            (lambda x: x.sum(1), 9),  # 3 rows of 4: 3 adds each
            (lambda x: x.mean(1), 12),  # 3 adds + 1 divide per row
            (lambda x: x.var(1), 48),  # 4*4 per row
            (lambda x: x.std(1), 51),  # + sqrt
            (lambda x: x.amax(1), 9),
            (lambda x: x.cumsum(1), 9),
            (lambda x: x.norm(dim=1), 24),  # 2*4 per row
            (lambda x: torch.logsumexp(x, 1), 48),  # 4*4 per row
        ],
    )
    def test_reductions(self, fn, expected):
        assert flops_of(Fn(fn), torch.randn(3, 4)) == expected


class TestElementwise:
    def test_broadcasting_counts_outputs(self):
        assert flops_of(Fn(torch.add), torch.randn(4, 1), torch.randn(1, 5)) == 20  # 4x5 outputs

    @pytest.mark.parametrize(
        "fn,expected",
        [
            (lambda x: x * 2 + 1, 24),  # mul, add: 12 each
            (lambda x: torch.sqrt(x.abs()), 24),
            (lambda x: x.exp().log(), 24),
            (lambda x: x.pow(2), 12),
            (lambda x: torch.add(x, x, alpha=2), 24),  # alpha * other, + add
            (lambda x: x.clamp(min=0), 12),
            (lambda x: x.clamp(-1, 1), 24),
            (lambda x: torch.where(x > 0, x, 0.0), 24),  # compare, select
            (lambda x: x.reshape(4, 3).permute(1, 0).contiguous(), 0),  # views and a copy: no FLOPs
        ],
    )
    def test_pointwise(self, fn, expected):
        assert flops_of(Fn(fn), torch.randn(3, 4)) == expected

    def test_embedding_is_free_but_moves_bytes(self):
        report = flopmeter.profile(nn.Embedding(10, 4), torch.tensor([[1, 2, 3]]))
        assert report.flops == 0 and report.macs == 0
        assert report.bytes_read == 3 * 4 * 4 + 3 * 8  # the 3 picked rows (fp32) + 3 int64 ids
        assert report.bytes_written == 48


class TestPooling:
    def test_max_and_avg(self):
        assert flops_of(nn.MaxPool2d(2), torch.randn(1, 1, 4, 4)) == 12  # 4 outputs * (4-1)
        assert flops_of(nn.AvgPool2d(2), torch.randn(1, 1, 4, 4)) == 16  # 4 outputs * 4
        assert flops_of(nn.MaxPool1d(3), torch.randn(1, 2, 9)) == 12  # 6 outputs * 2
        assert flops_of(nn.AvgPool3d(2), torch.randn(1, 1, 4, 4, 4)) == 64  # 8 outputs * 8

    def test_adaptive_windows_exactly(self):
        # 5 -> 3: windows [0,2), [1,4), [3,5): sizes 2, 3, 2 -> 7; in 2-D: 7*7 = 49 cells
        assert pooling.adaptive_windows((5, 5), (3, 3)) == (49, 9)
        assert flops_of(nn.AdaptiveAvgPool2d(3), torch.randn(1, 1, 5, 5)) == 49
        assert flops_of(nn.AdaptiveMaxPool2d(3), torch.randn(1, 1, 5, 5)) == 40  # 49 - 9
        assert flops_of(nn.AdaptiveAvgPool1d(3), torch.randn(1, 2, 5)) == 14  # 2 planes * 7
        assert flops_of(nn.AdaptiveAvgPool2d(1), torch.randn(1, 2, 4, 4)) == 32  # mean: 16 per plane

    @pytest.mark.parametrize("mode,per_output", [("nearest", 0), ("bilinear", 9), ("bicubic", 35)])
    def test_interpolate_2d(self, mode, per_output):
        up = nn.Upsample(scale_factor=2, mode=mode)
        assert flops_of(up, torch.randn(1, 2, 3, 3)) == 72 * per_output  # 1x2x6x6 outputs

    def test_interpolate_1d_3d(self):
        assert flops_of(nn.Upsample(scale_factor=2, mode="linear"), torch.randn(1, 1, 4)) == 24  # 8 * 3
        assert flops_of(nn.Upsample(scale_factor=2, mode="trilinear"), torch.randn(1, 1, 2, 2, 2)) == 64 * 21


class TestContractionsTraced:
    def test_conv_transpose_with_output_padding_groups_dilation(self):
        conv = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1)
        report = flopmeter.profile(conv, torch.randn(1, 4, 5, 5))
        # each of 4*25 inputs times (6/2)*9 weights = 2,700 MACs
        assert report.macs == 2_700
        assert report.flops == 2 * 2_700 - 600 + 600  # outputs 6*10*10 = 600, bias adds 600

    def test_dilated_strided_conv1d_conv3d(self):
        c1 = flopmeter.profile(nn.Conv1d(2, 4, 3, stride=2, dilation=2), torch.randn(1, 2, 11))
        # dilated kernel spans 5: (11-5)//2+1 = 4 outputs per channel; 4 channels, dots of 2*3
        assert c1.macs == 96  # 4*4*6
        c3 = flopmeter.profile(nn.Conv3d(2, 3, 3, bias=False), torch.randn(1, 2, 4, 4, 4))
        assert c3.flops == 2_568  # (2*54-1) * 24

    def test_einsum_tensordot_bilinear(self):
        a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
        assert flopmeter.profile(Fn(lambda a, b: torch.einsum("bij,bjk->bik", a, b)), (a, b)).macs == 120
        assert flopmeter.profile(Fn(lambda a, b: torch.tensordot(a, b, dims=([2], [1]))), (a, b)).macs == 240
        outer = flopmeter.profile(
            Fn(lambda x, y: torch.einsum("i,j->ij", x, y)), (torch.randn(3), torch.randn(4))
        )
        assert outer.flops == 12 and outer.macs == 0  # 12 products, nothing accumulated
        report = flopmeter.profile(nn.Bilinear(3, 4, 5), (torch.randn(2, 3), torch.randn(2, 4)))
        assert report.macs == 120  # 2 rows * 5 outputs * 3*4
        assert report.unsupported_ops() == {}


def test_integer_arithmetic_is_not_flops():
    ids = torch.arange(6).reshape(2, 3)
    report = flopmeter.profile(Fn(lambda i: (i + 1) * 2 > 3), ids)
    assert report.flops == 0 and report.unsupported_ops() == {}
    assert report.bytes_read > 0  # the memory traffic still counts
    assert flopmeter.profile(Fn(lambda x: x > 0), torch.randn(4)).flops == 4  # float compares are FLOPs


class TestOpLists:
    def test_views_are_free_and_apart_from_unsupported(self):
        from flopmeter import registry

        assert registry.kind_of("aten.view") == "view"
        assert registry.kind_of("aten.cat") == "data"
        assert registry.kind_of("aten.convolution") == "counted"
        assert registry.kind_of("aten.relu_") == "counted"  # in-place shares the formula
        # the degree of an orthogonal polynomial is a value: no formula
        assert registry.kind_of("aten.special_chebyshev_polynomial_t") == "unsupported"

    def test_unsupported_op_is_reported_with_calls_and_shapes(self):
        # (eigvalsh was the example until probe 14 counted it)
        chebyshev = Fn(lambda x: torch.special.chebyshev_polynomial_t(x, x))
        report = flopmeter.profile(chebyshev, torch.randn(2, 3, 3))
        entry = report.unsupported_ops()["aten.special_chebyshev_polynomial_t"]
        assert entry.calls == 1 and entry.shapes == ["(2x3x3:float32, 2x3x3:float32)"]
        assert "WARNING: aten.special_chebyshev_polynomial_t has no formula" in str(report)


def test_matmul_broadcasting():
    # (2,3,4) @ (4,5): 2*3*5 dots of length 4
    report = flopmeter.profile(Fn(torch.matmul), (torch.randn(2, 3, 4), torch.randn(4, 5)))
    assert report.macs == 120 and report.flops == 210  # 30 * (2*4-1)
    # (2,1,3,4) @ (5,4,6): broadcast batch 2x5 = 10 products of 3x4 @ 4x6
    report = flopmeter.profile(Fn(torch.matmul), (torch.randn(2, 1, 3, 4), torch.randn(5, 4, 6)))
    assert report.macs == 720  # 10 * 3*6*4
    # vector @ matrix and matrix @ vector
    assert flopmeter.profile(Fn(torch.matmul), (torch.randn(4), torch.randn(4, 5))).macs == 20
    assert flopmeter.profile(Fn(torch.matmul), (torch.randn(5, 4), torch.randn(4))).macs == 20


def test_dropout_in_training_costs_two_flops_per_element_on_every_path():
    """The CPU runs dropout as bernoulli_ (a random draw: 0 FLOPs, like normal_ and
    uniform_), div_ of the mask by 1-p and a multiply; the fused native_dropout (CUDA)
    as one op of 2 per element. Both give 2 per element (docs/formulas.md). The draw
    had been counted as 1 per element: 3 on the CPU."""
    x = torch.randn(2, 3, 4, 4)  # 96 elements
    report = flopmeter.profile(nn.Dropout(0.5), x, train=True)
    assert report.total.flops == 2 * 96  # div_ 96 + mul 96 = 192
    draw = report.operators["aten.bernoulli_"]
    assert (draw.calls, draw.cost.flops, draw.cost.bytes_written) == (1, 0, 96 * 4)

    class Fused(nn.Module):  # what CUDA's dropout dispatches to, called directly
        def forward(self, x):
            return torch.native_dropout(x, 0.5, True)[0]

    fused = flopmeter.profile(Fused(), x, train=True)
    assert fused.operators["aten.native_dropout"].cost.flops == 2 * 96  # = 192


class TestProbe4Audit:
    """Ops whose count disagreed with its own stated convention (probe-4, P4-F*)."""

    def test_kthvalue_and_whole_tensor_median(self):
        x = torch.randn(3, 5)
        # kthvalue(x, k=2, dim=1): 3 rows of 5, 5*ceil(log2 5) = 15 each: 45 (k was read as dim: 30)
        assert flops_of(Fn(lambda x: torch.kthvalue(x, 2, 1)), x) == 45
        # median() of all 15 values: 15*ceil(log2 15) = 60 (had been 3 rows of 5: 45)
        assert flops_of(Fn(lambda x: x.median()), x) == 60
        assert flops_of(Fn(lambda x: x.nanmedian()), x) == 60
        assert flops_of(Fn(lambda x: x.median(1)), x) == 45  # 3 rows of 5

    def test_embedding_bag_modes(self):
        weight, ids, offsets = torch.randn(10, 4), torch.tensor([1, 2, 3, 4, 5, 6]), torch.tensor([0, 2])
        bag = lambda mode, **kw: Fn(lambda w: nn.functional.embedding_bag(ids, w, offsets, mode=mode, **kw))  # noqa: E731
        # 2 bags (2 and 4 rows) of width 4: (6 - 2) * 4 = 16 adds / comparisons
        assert flops_of(bag("sum"), weight) == 16
        assert flops_of(bag("max"), weight) == 16
        assert flops_of(bag("mean"), weight) == 24  # + 2 bags * 4 divides
        # per_sample_weights multiply each of the 6 gathered rows: 16 + 6*4 = 40
        assert flops_of(bag("sum", per_sample_weights=torch.rand(6)), weight) == 40
        # with grad the op is _embedding_bag (without: _embedding_bag_forward_only), same count
        training = flopmeter.profile(nn.EmbeddingBag(10, 4, mode="sum"), (ids, offsets), backward=True)
        assert training.by_operator()["aten._embedding_bag"].cost.flops == 16

    def test_softplus_counts_its_threshold_compare(self):
        # beta*x > threshold ? x : log(1 + exp(x)): compare, exp, add, log = 4 per element
        assert flops_of(nn.Softplus(), torch.randn(3, 4)) == 48
        assert flops_of(nn.Softplus(beta=2.0), torch.randn(3, 4)) == 72  # + multiply, divide

    def test_logcumsumexp_is_a_logaddexp_per_step(self):
        # 3 rows of 5: 4 steps of max, sub, abs, neg, exp, log1p, add (7) = 3*4*7 = 84
        assert flops_of(Fn(lambda x: torch.logcumsumexp(x, 1)), torch.randn(3, 5)) == 84
        assert flops_of(Fn(lambda x: torch.cumsum(x, 1)), torch.randn(3, 5)) == 12  # 3 * 4 adds

    def test_antialiased_interpolation_reads_every_tap(self):
        # 8x8 -> 2x2 bilinear antialias: support 1 * scale 4 = 4, each output reads 6 cells per
        # dimension. Width pass 8 rows * 2 * (2*6-1) = 176, height pass 2 * 2 * 11 = 44: 220
        assert pooling.antialias_taps(8, 2, 4.0, 2) == [6, 6]
        vec = Fn(lambda x: torch.ops.aten._upsample_bilinear2d_aa.vec(x, None, False, [0.25, 0.25]))
        assert flops_of(vec, torch.randn(1, 1, 8, 8)) == 220  # the scale_factors overload alike
        down = Fn(lambda x: nn.functional.interpolate(x, size=(2, 2), mode="bilinear", antialias=True))
        assert flops_of(down, torch.randn(1, 1, 8, 8)) == 220
        # 3x3 -> 6x6 bicubic antialias: taps 2,3,3,3,3,2 per dimension, sum of (2t-1) = 26;
        # width pass 3 rows * 26 = 78, height pass 6 columns * 26 = 156: 234
        up = Fn(lambda x: nn.functional.interpolate(x, scale_factor=2, mode="bicubic", antialias=True))
        assert flops_of(up, torch.randn(1, 1, 3, 3)) == 234
        # only the width changes (4x8 -> 4x2): one pass, 4 rows * 2 * 11 = 88
        assert (
            flops_of(
                Fn(lambda x: nn.functional.interpolate(x, size=(4, 2), mode="bilinear", antialias=True)),
                torch.randn(1, 1, 4, 8),
            )
            == 88
        )

    def test_antialias_taps_match_the_kernels_nonzero_weights(self):
        # each output's nonzero weights (a row of the Jacobian) are the taps counted
        for mode, size in (("bilinear", 2), ("bicubic", 4)):
            x = torch.randn(1, 1, 1, 10)
            jac = torch.autograd.functional.jacobian(
                lambda t, m=mode: nn.functional.interpolate(t, size=(1, 3), mode=m, antialias=True), x
            ).reshape(3, 10)
            assert (jac != 0).sum(1).tolist() == pooling.antialias_taps(10, 3, 10 / 3, size)

    def test_grid_sample_2d_and_3d(self):
        sample = Fn(lambda x, g: nn.functional.grid_sample(x, g, align_corners=False))
        # 2-d: 2 channels * 3x3 outputs = 18, bilinear 9 each = 162; 9 grid points * 2
        # coordinates * 3 to un-normalise = 54 (shared by the channels; had been 4 per output): 216
        assert flops_of(sample, torch.randn(1, 2, 4, 4), torch.rand(1, 3, 3, 2) * 2 - 1) == 216
        # 3-d (had no formula): 2 * 27 outputs * trilinear 21 = 1,134 + 27 points * 3 * 3 = 243
        assert flops_of(sample, torch.randn(1, 2, 4, 4, 4), torch.rand(1, 3, 3, 3, 3) * 2 - 1) == 1_377
        nearest = Fn(lambda x, g: nn.functional.grid_sample(x, g, mode="nearest", align_corners=False))
        assert flops_of(nearest, torch.randn(1, 2, 4, 4), torch.rand(1, 3, 3, 2)) == 54  # coordinates only


class TestProbe4Backward:
    """Backward (and a few forward) ops a training step of common layers ran without a
    formula (probe-4): hand counts on x = 1x2x6x6 (72 elements)."""

    X = torch.randn(1, 2, 6, 6)

    def op(self, fn, op: str, *, backward: bool = True) -> int:
        class Scaled(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.p = nn.Parameter(torch.ones(1))

            def forward(self, x):
                return fn(x * self.p).sum()

        report = flopmeter.profile(Scaled(), self.X, backward=backward)
        assert report.unsupported_ops() == {}, report.unsupported_ops()
        return report.by_operator()[op].cost.flops

    def test_interpolation_backward(self):
        up = lambda mode: lambda x: nn.functional.interpolate(x, scale_factor=2, mode=mode)  # noqa: E731
        # 2 planes of 12x12 = 288 output gradients, each adds w*g to its 4 (bilinear) or 16
        # (bicubic) cells: 2 per cell
        assert self.op(up("bilinear"), "aten.upsample_bilinear2d_backward") == 288 * 8
        assert self.op(up("bicubic"), "aten.upsample_bicubic2d_backward") == 288 * 32

    def test_antialiased_backward(self):
        # 6 -> 3 bilinear antialias: scale 2, support 2, taps 3, 4, 3 per dimension.
        # forward: sum(2t - 1) = 17; width pass 6 rows * 17 + height pass 3 * 17 = 153 per plane
        # backward (torch's kernel is direct, not separable; P4-R7): each of the 3x3 output
        # gradients adds w_y*w_x*g to its taps_h*taps_w cells, 2 each: 2 * (3+4+3) * (3+4+3)
        # = 200 per plane; 2 planes each
        aa = lambda x: nn.functional.interpolate(x, size=(3, 3), mode="bilinear", antialias=True)  # noqa: E731
        assert self.op(aa, "aten._upsample_bilinear2d_aa") == 306
        assert self.op(aa, "aten._upsample_bilinear2d_aa_backward") == 400

    def test_pool_backward_and_fractional(self):
        # 2 planes * 3x3 = 18 output gradients, each added at its argmax
        assert (
            self.op(lambda x: nn.functional.adaptive_max_pool2d(x, 3), "aten.adaptive_max_pool2d_backward")
            == 18
        )
        frac = lambda x: nn.functional.fractional_max_pool2d(x, 2, output_size=3)  # noqa: E731
        assert self.op(frac, "aten.fractional_max_pool2d") == 54  # 18 outputs * (4 - 1)
        assert self.op(frac, "aten.fractional_max_pool2d_backward") == 18

    def test_glu_prelu_backward_and_cdist(self):
        # glu over dim 1: 36 output gradients * (sigmoid 3 + 1 + 4) = 288
        assert self.op(lambda x: nn.functional.glu(x, 1), "aten.glu_backward") == 288
        # prelu: 72 elements * (compare, g or w*g, x*g) = 216
        prelu = lambda x: nn.functional.prelu(x, torch.tensor([0.2]))  # noqa: E731
        assert self.op(prelu, "aten._prelu_kernel_backward") == 216
        # cdist of 2 batches of 6 points in 6-d: 72 pairs * (6 sub + 6 square + 5 adds + sqrt) = 1,296
        assert self.op(lambda x: torch.cdist(x[0], x[0]), "aten._cdist_forward", backward=False) == 1_296
        # pdist of 6 points in 6-d (x[0, 0]): 15 pairs * 18 = 270; p = 1 takes no root: 15 * 17 = 255
        assert self.op(lambda x: nn.functional.pdist(x[0, 0]), "aten._pdist_forward", backward=False) == 270
        assert (
            self.op(lambda x: nn.functional.pdist(x[0, 0], p=1), "aten._pdist_forward", backward=False) == 255
        )
