"""Probe 8: formulas of ops real models use (audio, video, detection, recommenders),
each counted by hand first. Findings and before/after numbers: docs/probe-8/formulas.md.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter import registry
from flopmeter.cost import Cost
from flopmeter.tracing.events import OpEvent, TensorMeta
from test_coverage_layers import Fn  # a module calling a function

F = nn.functional


def meta(*shape: int, dtype: str = "float32") -> TensorMeta:
    return TensorMeta(tuple(shape), dtype, 8 if dtype == "int64" else 4)


def op_cost(report, op: str) -> Cost:  # type: ignore[no-untyped-def]
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    return report.by_operator()[op].cost


def event_cost(op: str, args: tuple, outputs: tuple = ()) -> Cost:  # type: ignore[type-arg]
    cost = registry.cost_of(OpEvent(op, args, {}, outputs))
    assert cost is not None, f"{op} has no formula"
    return cost


# ----------------------------------------------------------------------------- recurrent
class Recurrent(nn.Module):
    """A recurrent layer whose input, initial h and initial c all need a gradient."""

    def __init__(self, layer: nn.Module, state: tuple[int, ...], cell: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.layer = layer
        self.scale = nn.Parameter(torch.ones(()))
        self.h0 = nn.Parameter(torch.zeros(state))
        self.c0 = nn.Parameter(torch.zeros(cell)) if cell else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = (self.h0, self.c0) if self.c0 is not None else self.h0
        return self.layer(x * self.scale, state)[0]


def _lstm_2x2_proj() -> nn.LSTM:
    torch.manual_seed(0)
    return nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)


def _cudnn_events(lstm: nn.LSTM) -> tuple[OpEvent, OpEvent]:
    """What CUDA records for ``_lstm_2x2_proj()`` on a (5, 2, 4) input (sequence first)."""
    weights = [meta(*w.shape) for w in lstm._flat_weights]
    x, hx, cx, out = meta(5, 2, 4), meta(4, 2, 3), meta(4, 2, 6), meta(5, 2, 6)
    forward = OpEvent(
        "aten._cudnn_rnn",
        (x, weights, 5, None, hx, cx, 2, 6, 3, 2, False, 0.0, True, True, [], None),
        {},
        (out, hx, cx),
    )
    backward = OpEvent(
        "aten._cudnn_rnn_backward",
        (
            x,
            weights,
            5,
            meta(8),
            hx,
            cx,
            out,
            out,
            None,
            None,
            2,
            6,
            3,
            2,
            False,
            0.0,
            True,
            True,
            [],
            None,
            meta(8),
            [True, True, True, True],
        ),
        {},
        (x, hx, cx),
    )
    return forward, backward


class TestRecurrentBackward:
    def test_cpu_lstm_training_step_counts_the_fused_backward(self):
        # LSTM(4, 6) on (3, 2, 4): 6 tokens, 2 sequences; torch's CPU kernel mkldnn_rnn_layer
        # and its backward. G*H = 24, I = 4, H = 6.
        model = Recurrent(nn.LSTM(4, 6), (1, 2, 6), (1, 2, 6))
        report = flopmeter.profile(model, torch.randn(3, 2, 4), backward=True)
        cost = op_cost(report, "aten.mkldnn_rnn_layer_backward")
        # dx 6*4 dots of 24: 576 MACs, 6*4*47 = 1,128; dh 6*6 dots of 24: 864 MACs, 6*6*47 = 1,692
        # pointwise 6*21*6 = 756; the carried gradients of h and c (6 - 2)*6 + (6 - 2)*6 = 48
        # weights 24*10 = 240, dots over 6 tokens: 1,440 MACs, 240*11 = 2,640; biases 2*24*5 = 240
        assert cost.macs == 576 + 864 + 1_440  # 2,880 = 2 x the forward's 1,440
        assert cost.flops == 1_128 + 1_692 + 756 + 48 + 2_640 + 240  # 6,504

    def test_fused_backward_equals_the_unfused_cells_autograd(self):
        # the same step with torch's fused kernel switched off: autograd through the cells' ops
        x = torch.randn(3, 2, 4)
        fused = flopmeter.profile(Recurrent(nn.LSTM(4, 6), (1, 2, 6), (1, 2, 6)), x, backward=True)
        with torch.backends.mkldnn.flags(enabled=False):
            unfused = flopmeter.profile(Recurrent(nn.LSTM(4, 6), (1, 2, 6), (1, 2, 6)), x, backward=True)
        assert "aten.mkldnn_rnn_layer_backward" not in unfused.by_operator()
        assert (fused.macs, fused.flops) == (unfused.macs, unfused.flops)  # (4,320, 10,139)

    def test_cudnn_lstm_with_a_projection(self):
        # LSTM(4, 6, proj_size=3, 2 layers, bidirectional) on 5 x 2 tokens: h has P = 3 units,
        # so W_hh is 24 x 3. Per token and direction, layer 1: 24*(4 + 3) + 3*6 = 186 MACs,
        # 2*168 + 19*6 + 3*11 = 483 FLOPs; layer 2 (input 2*3): 24*9 + 18 = 234, 2*216 + 114 + 33 = 579.
        forward, backward = _cudnn_events(_lstm_2x2_proj())
        cost = registry.cost_of(forward)
        assert cost is not None
        assert (cost.macs, cost.flops) == (20 * (186 + 234), 20 * (483 + 579))  # (8,400, 21,240)
        # backward, per direction: layer 1 dots (10*(4+3) of 24, 10*6 of 3) 1,680 + 180 MACs,
        # 70*47 + 60*5 = 3,590; pointwise 10*21*6 + 8*3 + 8*6 = 1,332; weights 186 over 10 tokens
        # 1,860 MACs, 186*19 = 3,534; biases 2*24*9 = 432 -> 3,720 MACs, 8,888 FLOPs.
        # layer 2: 2,160 + 180 + 2,340 = 4,680 MACs; 90*47 + 300 + 1,332 + 234*19 + 432 = 10,740.
        # the two directions' input gradients summed: 10*4 + 10*6 = 100 adds.
        cost = registry.cost_of(backward)
        assert cost is not None
        assert cost.macs == 2 * (3_720 + 4_680)  # 16,800
        assert cost.flops == 2 * (8_888 + 10_740) + 100  # 39,356

    def test_cudnn_numbers_equal_the_cpu_path_of_the_same_lstm(self):
        # on the CPU a projected LSTM runs unfused: the cells' ops, and autograd through them
        lstm = _lstm_2x2_proj()
        model = Recurrent(lstm, (4, 2, 3), (4, 2, 6))
        x = torch.randn(5, 2, 4)
        forward = flopmeter.profile(model, x).by_module()["layer"].total
        step = flopmeter.profile(model, x, backward=True).by_module()["layer"].total
        cudnn_forward, cudnn_backward = (registry.cost_of(e) for e in _cudnn_events(lstm))
        assert cudnn_forward is not None and cudnn_backward is not None
        assert (forward.macs, forward.flops) == (cudnn_forward.macs, cudnn_forward.flops)
        assert (step.macs - forward.macs, step.flops - forward.flops) == (
            cudnn_backward.macs,
            cudnn_backward.flops,
        )


# ------------------------------------------------------------------------- embedding_bag
class Bags(nn.Module):
    def __init__(self, mode: str, sparse: bool = False) -> None:
        super().__init__()
        self.bags = nn.EmbeddingBag(10, 4, mode=mode, sparse=sparse)

    def forward(self, indices, offsets, weights=None):  # type: ignore[no-untyped-def]
        return self.bags(indices, offsets, per_sample_weights=weights)


INDICES, OFFSETS = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9]), torch.tensor([0, 3, 5])  # bags of 3, 2, 3


class TestEmbeddingBagBackward:
    def test_training_step_of_each_mode(self):
        # 3 bags, D = 4, 8 gathered rows
        expected = {
            ("sum", False): 8 * 4,  # each gathered row's gradient added into the weight's: 32
            ("mean", False): 3 * 4 + 8 * 4,  # g / size once per bag, then the adds: 44
            ("max", False): 3 * 4,  # each bag's gradient added at its argmax row: 12
            ("sum", True): 0,  # a sparse gradient keeps the rows apart: no adds
            ("mean", True): 3 * 4,  # only the divides: 12
        }
        for (mode, sparse), flops in expected.items():
            report = flopmeter.profile(Bags(mode, sparse), (INDICES, OFFSETS), backward=True)
            assert op_cost(report, "aten._embedding_bag_backward").flops == flops, (mode, sparse)

    def test_per_sample_weights(self):
        weights = torch.rand(8, requires_grad=True)
        report = flopmeter.profile(Bags("sum"), (INDICES, OFFSETS, weights), backward=True)
        assert op_cost(report, "aten._embedding_bag_backward").flops == 8 * 4 + 8 * 4  # g*w, then add: 64
        # each weight's gradient: its bag's gradient . the row it scaled, 8 dots of 4
        cost = op_cost(report, "aten._embedding_bag_per_sample_weights_backward")
        assert (cost.macs, cost.flops) == (8 * 4, 8 * 7)  # (32, 56)

    def test_dense_and_sparse_kernels_share_the_formula(self):
        grad, indices, offsets = meta(3, 4), meta(8, dtype="int64"), meta(3, dtype="int64")
        dense = (grad, indices, indices, offsets, offsets, 10, False, 1, None)
        assert event_cost("aten._embedding_bag_dense_backward", dense).flops == 44  # mean: 12 + 32
        sparse = (grad, indices, offsets, indices, offsets, 10, False, 1, None)
        assert event_cost("aten._embedding_bag_sparse_backward", sparse).flops == 12


# ---------------------------------------------------------------------------- weight norm
class NormedConv(nn.Module):
    """A vocoder's weight-normalised Conv1d (HiFi-GAN, WaveNet): 3 x 2 x 3 weight, 3 slices."""

    def __init__(self, parametrized: bool) -> None:
        super().__init__()
        conv = nn.Conv1d(2, 3, 3)
        utils = nn.utils
        self.conv = utils.parametrizations.weight_norm(conv) if parametrized else utils.weight_norm(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class TestWeightNormBackward:
    def test_hook_weight_norm(self):
        report = flopmeter.profile(NormedConv(parametrized=False), torch.randn(1, 2, 8), backward=True)
        assert op_cost(report, "aten._weight_norm_interface").flops == 3 * 18 + 3  # 57
        # per slice sum(dw*v) 6 + 5, dg, dg/n, g/n 3; per element dv = a*(dw - v*c) 3:
        # 5*18 + 2*3 = 96
        assert op_cost(report, "aten._weight_norm_interface_backward").flops == 96

    def test_parametrized_weight_norm_backward_is_overhead_like_its_forward(self):
        report = flopmeter.profile(NormedConv(parametrized=True), torch.randn(1, 2, 8), backward=True)
        assert report.unsupported_ops() == {}
        assert report.overhead["aten._weight_norm_interface_backward"].cost.flops == 96
        assert report.overhead["aten._weight_norm_interface"].cost.flops == 57


# ------------------------------------------------------------------- data and no-work ops
class PackedGRU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 6, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([5, 3]), batch_first=True)
        return nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True)[0]


class Unpool(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled, where = F.max_pool2d(self.conv(x), 2, return_indices=True)
        return F.max_unpool2d(pooled, where, 2)  # SegNet's decoder


class TestDataOps:
    def test_a_packed_sequence_is_data(self):
        report = flopmeter.profile(PackedGRU(), torch.randn(2, 5, 4))
        assert report.unsupported_ops() == {}
        assert report.by_operator()["aten._pack_padded_sequence"].cost.flops == 0
        # 5 + 3 = 8 tokens through GRU(4, 6): 8 * (6*6*(4 + 6) + 14*6) = 8 * 444 = 3,552
        assert report.flops == 3_552

    def test_unpooling_is_data(self):
        report = flopmeter.profile(Unpool(), torch.randn(1, 2, 4, 4), backward=True)
        assert op_cost(report, "aten.max_unpool2d").flops == 0
        assert op_cost(report, "aten.max_pool2d_with_indices").flops == 8 * 3  # 8 outputs of 4: 24

    def test_merging_image_features_into_embeddings_is_data_both_ways(self):
        mask = torch.zeros(2, 5, 4, dtype=torch.bool)
        mask[:, 1:3] = True  # 16 places take 16 features (learned: they need a gradient)
        merge = _Scaled(lambda e: e.masked_scatter(mask, e[0, :4]))
        report = flopmeter.profile(merge, torch.randn(2, 5, 4), backward=True)
        assert op_cost(report, "aten.masked_scatter_backward").flops == 0

    def test_a_sparse_embedding_gradient_is_data(self):
        report = flopmeter.profile(
            nn.Embedding(10, 4, sparse=True), torch.tensor([[1, 2, 2, 3]]), backward=True
        )
        assert op_cost(report, "aten._sparse_coo_tensor_with_dims_and_tensors").flops == 0

    def test_linalg_error_check_is_no_work_and_the_solve_is_counted(self):
        report = flopmeter.profile(Fn(torch.linalg.solve), (torch.randn(2, 4, 4), torch.randn(2, 4, 3)))
        # (listed as unsupported until probe 13) per matrix LU of 4x4 49 + getrs of 3
        # right-hand sides 3 * 4 * (2*4 - 1) = 84: 2 * 133 = 266 (tests/test_numbers_probe13.py)
        assert report.unsupported_ops() == {} and report.flops == 266


# ------------------------------------------------------------------------ elementwise ops
class TestElementwise:
    def test_binary_functions(self):
        a, b = torch.randn(3, 5), torch.rand(3, 5) + 0.5  # 15 outputs
        expected = {
            torch.logaddexp: 15 * 7,  # max(a, b) + log1p(exp(-|a - b|)): 105
            torch.logaddexp2: 15 * 8,  # base 2: + the divide by ln 2: 120
            torch.hypot: 15 * 4,  # sqrt(a*a + b*b): 60
            torch.xlogy: 15 * 2,  # a * log(b): 30 (was counted as a multiply, 15)
            torch.special.xlog1py: 15 * 2,  # a * log1p(b): 30
            torch.fmax: 15,
            torch.fmin: 15,
            torch.copysign: 15,
        }
        for fn, flops in expected.items():
            report = flopmeter.profile(Fn(fn), (a, b))
            assert report.unsupported_ops() == {}, fn
            assert report.flops == flops, fn

    def test_unary_functions(self):
        x = torch.rand(3, 5) + 0.5
        expected = {
            torch.lgamma: 15,
            torch.digamma: 15,
            torch.i0: 15,
            torch.special.i0e: 15,
            torch.asinh: 15,
            torch.signbit: 15,
            torch.sinc: 15 * 3,  # sin(pi*x) / (pi*x): 45
            torch.frac: 15 * 2,  # x - trunc(x): 30
            torch.nan_to_num: 15 * 3,  # three tests and selects: 45
            torch.trace: 3 - 1,  # the diagonal of 3 x 5: 2 adds
        }
        for fn, flops in expected.items():
            report = flopmeter.profile(Fn(fn), x)
            assert report.unsupported_ops() == {}, fn
            assert report.flops == flops, fn

    def test_kl_div_counts_its_xlogy_as_log_and_multiply(self):
        x = torch.randn(3, 5)
        report = flopmeter.profile(Fn(lambda t: F.kl_div(t, t.softmax(-1), reduction="batchmean")), x)
        # t*log(t) 30, t*x 15, subtract 15, sum 14, / batch 1; softmax 3*(5*5 - 2) = 69
        assert report.flops == 30 + 15 + 15 + 14 + 1 + 69  # 144

    def test_outer_product_update(self):
        m, x, y = torch.randn(3, 4), torch.randn(3), torch.randn(4)
        cost = op_cost(flopmeter.profile(Fn(torch.addr), (m, x, y)), "aten.addr")
        assert (cost.macs, cost.flops) == (12, 12 * 2)  # 3*4 products of length 1, + M: 24
        scaled = Fn(lambda m, x, y: torch.addr(m, x, y, beta=3, alpha=2))
        cost = op_cost(flopmeter.profile(scaled, (m, x, y)), "aten.addr")
        assert cost.flops == 24 + 12 + 12  # alpha * and beta * once per output: 48


# ------------------------------------------------------------------ average pool backward
class TestAvgPoolBackward:
    def _backward(self, fn, shape):  # type: ignore[no-untyped-def]
        report = flopmeter.profile(_Scaled(fn), torch.randn(shape), backward=True)
        ops = [op for op in report.by_operator() if "avg_pool" in op and op.endswith("_backward")]
        assert len(ops) == 1, ops
        return op_cost(report, ops[0]).flops

    def test_overlapping_windows_sum_their_shares(self):
        # PoolFormer's token mixer: 3x3, stride 1, padding 1 on 4x4, 2 planes. Per dim the
        # clipped windows [0,2) [0,3) [1,4) [2,4) read cells 2, 3, 3, 2 times: 10 shares, 4 cells.
        # per plane 16 divides + 10*10 - 4*4 adds = 100 (was 2 per input element: 64)
        assert (
            self._backward(lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False), (1, 2, 4, 4)) == 200
        )

    def test_disjoint_windows_only_divide(self):
        # 2x2 windows on 4x4: 4 output gradients per plane, each divided once; every cell gets
        # one share (no add): 2 * 4 = 8 (was 64)
        assert self._backward(lambda x: F.avg_pool2d(x, 2), (1, 2, 4, 4)) == 8
        assert self._backward(lambda x: F.adaptive_avg_pool2d(x, 2), (1, 2, 4, 4)) == 8

    def test_video_pool_3d(self):
        # (2,3,3) stride (1,2,2) on 5x6x6 -> 4x2x2. D: hits 1,2,2,2,1 (8 shares, 5 cells);
        # H, W: windows [0,3) [2,5): hits 1,1,2,1,1,0 (6, 5). Per plane 16 + 8*6*6 - 5*5*5 = 179
        assert self._backward(lambda x: F.avg_pool3d(x, (2, 3, 3), (1, 2, 2)), (1, 2, 5, 6, 6)) == 2 * 179

    def test_adaptive_windows_that_do_not_divide(self):
        # 5x7x6 -> 2x3x4: D windows [0,3) [2,5) (6 shares, 5 cells); H [0,3) [2,5) [4,7) (9, 7);
        # W [0,2) [1,3) [3,5) [4,6) (8, 6). Per plane 24 + 6*9*8 - 5*7*6 = 246
        assert self._backward(lambda x: F.adaptive_avg_pool3d(x, (2, 3, 4)), (1, 2, 5, 7, 6)) == 2 * 246

    def test_ceil_mode_window_is_clipped(self):
        # avg_pool1d(3, 2, ceil_mode) on 6 -> 3 windows [0,3) [2,5) [4,6): hits 1,1,2,1,2,1
        # per plane 3 + 8 - 6 = 5
        assert self._backward(lambda x: F.avg_pool1d(x, 3, 2, ceil_mode=True), (1, 2, 6)) == 2 * 5


class _Scaled(nn.Module):
    """fn(x * p): a learned scale makes the input need a gradient."""

    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn = fn
        self.p = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x * self.p)


# ---------------------------------------------------------------- deformable convolution
class Deformable(nn.Module):
    """DCN: a conv predicts the offsets (and with ``mask``, DCNv2's modulation) of a
    DeformConv2d(2, 4, 3, groups=2) on 8x8 -> 6x6."""

    def __init__(self, mask: bool, bias: bool = False) -> None:
        super().__init__()
        import torchvision

        self.offsets = nn.Conv2d(2, 18 + (9 if mask else 0), 3)
        self.dcn = torchvision.ops.DeformConv2d(2, 4, 3, groups=2, bias=bias)
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.offsets(x)
        if self.mask:
            return self.dcn(x, o[:, :18], o[:, 18:].sigmoid())
        return self.dcn(x, o)


X8 = torch.randn(1, 2, 8, 8)


class TestDeformConv2d:
    # 144 outputs (4 x 6 x 6), each a dot of C_in/groups * K = 9 sampled values: 144 * 17 =
    # 2,448 (+ 144 with the layer's bias); 648 sampled values (2 channels x 9 taps x 36
    # positions) at 7 each = 4,536; 324 sample points (9 taps x 36) at 10 each = 3,240.
    def test_forward(self):
        cost = op_cost(flopmeter.profile(Deformable(mask=False), X8), "torchvision.deform_conv2d")
        assert cost.macs == 144 * 9  # 1,296
        assert cost.flops == 2_448 + 4_536 + 3_240  # 10,224
        cost = op_cost(flopmeter.profile(Deformable(mask=False, bias=True), X8), "torchvision.deform_conv2d")
        assert cost.flops == 10_224 + 144  # the bias: 10,368 (a bias-free layer's zeros are not)
        cost = op_cost(flopmeter.profile(Deformable(mask=True), X8), "torchvision.deform_conv2d")
        assert cost.flops == 10_224 + 648  # one mask multiply per sampled value: 10,872

    def test_backward(self):
        report = flopmeter.profile(Deformable(mask=False), X8, backward=True)
        cost = op_cost(report, "torchvision._deform_conv2d_backward")
        # columns' gradient: 648 dots of C_out/groups = 2: 1,296 MACs, 648 * 3 = 1,944;
        # weight's: 36 weights, dots over 36 positions: 1,296 MACs, 36 * 71 = 2,556;
        # per column input 8 + offsets 14 + resample 7 = 29: 18,792; sample points 3,240
        assert cost.macs == 2 * 1_296
        assert cost.flops == 1_944 + 2_556 + 18_792 + 3_240  # 26,532
        report = flopmeter.profile(Deformable(mask=True, bias=True), X8, backward=True)
        # with the mask per column 29 + 1 (input) + 2 (offsets) + 9 (mask) + 1 (resample) = 42;
        # the bias's gradient 4 sums of 36: 140
        cost = op_cost(report, "torchvision._deform_conv2d_backward")
        assert cost.flops == 1_944 + 2_556 + 648 * 42 + 3_240 + 140  # 35,096

    def test_ptflops_view_equals_ptflops_rule(self):
        ptflops = pytest.importorskip("ptflops")
        for mask, bias in ((False, False), (True, True)):
            model = Deformable(mask, bias)
            # a real input: ptflops' default is an uninitialised tensor, and torchvision's
            # kernel crashes on garbage offsets
            theirs, _ = ptflops.get_model_complexity_info(
                model, (2, 8, 8), as_strings=False, print_per_layer_stat=False,
                input_constructor=lambda _: {"x": X8}, backend_specific_config={"count_functional": False},
            )  # fmt: skip
            # DeformConv2d: MACs 1,296 + 24 per tap and position 24 * 9 * 36 = 7,776 (25 with a mask)
            assert flopmeter.profile(model, X8).flops_as("ptflops") == theirs


class PositionSensitive(nn.Module):
    """R-FCN's head: position-sensitive RoIAlign of a conv's 8 maps into 2 x (2x2 bins)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torchvision

        rois = torch.tensor([[0, 0.0, 0.0, 4.0, 4.0], [0, 1.0, 1.0, 7.0, 6.0]])
        return torchvision.ops.ps_roi_align(self.conv(x), rois, (2, 2), 1.0, 2)


def test_position_sensitive_roi_align_counts_as_roi_align():
    report = flopmeter.profile(PositionSensitive(), X8, backward=True)
    # 2 regions x 2 output channels x 4 bins = 16 outputs, S = 2*2 samples: 16 * 8*4 = 512;
    # 2 * 4 bins * 4 samples = 32 sample points * 8 = 256
    assert op_cost(report, "torchvision.ps_roi_align").flops == 512 + 256  # 768
    # backward: 16 * (8*4 + 1) + 256 = 784
    assert op_cost(report, "torchvision._ps_roi_align_backward").flops == 16 * 33 + 256


# ---------------------------------------------------------------------------- RMSNorm (CUDA)
class TestFusedRmsNormBackward:
    def test_cuda_kernel_backward(self):
        # what CUDA records for F.rms_norm(x (3, 8), (8,), weight) with backward: 24 elements
        grad, x, rstd, weight = meta(3, 8), meta(3, 8), meta(3, 1), meta(8)
        both = event_cost("aten._fused_rms_norm_backward", (grad, x, [8], rstd, weight, [True, True]))
        # input 24 * (x_hat 1 + g*w 1 + row sum 2 + combine 3) = 168; weight 24 * 2 = 48
        assert both.flops == 168 + 48  # 216
        frozen = event_cost("aten._fused_rms_norm_backward", (grad, x, [8], rstd, None, [True, False]))
        assert frozen.flops == 24 * 6  # no weight: 144
        forward = event_cost("aten._fused_rms_norm", (x, [8], weight, 1e-6), (x, rstd))
        assert forward.flops == 3 * (3 * 8 + 2) + 24  # 102, as the CPU path's ops


# -------------------------------------------------------------------------------- peers
class TestPeers:
    def test_flop_counter_counts_nothing_for_cpu_attention_and_some_contractions(self):
        from torch.utils.flop_counter import FlopCounterMode

        q, k, v = torch.randn(1, 2, 6, 4), torch.randn(1, 2, 10, 4), torch.randn(1, 2, 10, 4)
        calls = {
            "sdpa": (F.scaled_dot_product_attention, (q, k, v), 2 * 2 * 6 * 10 * (4 + 4)),  # 1,920
            "addbmm": (
                torch.addbmm,
                (torch.randn(3, 4), torch.randn(2, 3, 5), torch.randn(2, 5, 4)),
                2 * 120,
            ),
            "mv": (torch.mv, (torch.randn(3, 5), torch.randn(5)), 2 * 15),
            "dot": (torch.dot, (torch.randn(5), torch.randn(5)), 2 * 5),
        }
        for name, (fn, args, ours) in calls.items():
            with FlopCounterMode(display=False) as counter:
                fn(*args)
            assert counter.get_total_flops() == 0, name
            assert flopmeter.profile(Fn(fn), args).flops_as("2mac") == ours, name

    def test_fvcore_estimates_einsum_from_numpys_path_and_skips_baddbmm(self):
        fvcore = pytest.importorskip("fvcore.nn")
        import logging

        cases = {
            # torch runs a·W (2*4*5 outputs of 3: 120 MACs), then a bmm over j (2*4 of 5: 40)
            "einsum": (
                lambda a, w, b: torch.einsum("bi,oij,bj->bo", a, w, b),
                (torch.randn(2, 3), torch.randn(4, 3, 5), torch.randn(2, 5)),
                160,
                135,  # numpy's optimal path: outer product 30 + 2 * 120 = 270 "FLOPs", halved
            ),
            "baddbmm": (
                torch.baddbmm,
                (torch.randn(2, 3, 4), torch.randn(2, 3, 5), torch.randn(2, 5, 4)),
                120,
                0,
            ),
        }
        logging.disable(logging.WARNING)
        try:
            for name, (fn, args, ours, theirs) in cases.items():
                analysis = fvcore.FlopCountAnalysis(Fn(fn), args)
                analysis.unsupported_ops_warnings(False)
                assert analysis.total() == theirs, name
                assert flopmeter.profile(Fn(fn), args).flops_as("mac") == ours, name
        finally:
            logging.disable(logging.NOTSET)


class TestComplex:
    def test_complex_conv_is_counted_as_the_three_real_convs_torch_runs(self):
        from torch.utils.flop_counter import FlopCounterMode

        x, w = torch.randn(1, 2, 8, dtype=torch.cfloat), torch.randn(3, 2, 3, dtype=torch.cfloat)
        report = flopmeter.profile(Fn(F.conv1d), (x, w))
        conv = op_cost(report, "aten.convolution")
        # 18 complex outputs (3 x 6), dots of 2*3 = 6: 108 complex MACs; Gauss's trick runs 3 real convs
        assert report.by_operator()["aten.convolution"].calls == 3
        assert (conv.macs, conv.flops) == (3 * 108, 3 * 18 * 11)  # (324, 594)
        with FlopCounterMode(display=False) as counter:
            F.conv1d(x, w)
        assert counter.get_total_flops() == 2 * 324
        # a complex mm stays one op, counted in real arithmetic (probe 14): 3*4 dots of 5
        # complex MACs, 60, at 4 real MACs each = 240; each dot 5 complex multiplies (6) and
        # 4 complex adds (2): 12 * (5*6 + 4*2) = 456 real FLOPs
        a, b = torch.randn(3, 5, dtype=torch.cfloat), torch.randn(5, 4, dtype=torch.cfloat)
        mm = op_cost(flopmeter.profile(Fn(torch.mm), (a, b)), "aten.mm")
        assert (mm.macs, mm.flops) == (240, 456)


class TestEmbeddingMaxNorm:
    def test_renorm_of_the_looked_up_rows(self):
        table = nn.Embedding(10, 4, max_norm=1.0)
        before = table.weight.detach().clone()
        report = flopmeter.profile(table, torch.tensor([[1, 2, 2, 3]]))
        # 4 looked-up rows of D = 4: norm 2*4, compare 1, scale 2 + 4 multiplies: 4 * (3*4 + 3)
        assert op_cost(report, "aten.embedding_renorm_").flops == 60
        assert torch.equal(table.weight, before)  # the in-place renorm is undone


# ------------------------------------------------------------------------------ CTC loss
class CtcHead(nn.Module):
    """A speech recogniser's head: frames -> 5 classes (blank 0) -> CTC against targets."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 5)

    def forward(self, frames, targets, frame_lengths, target_lengths):  # type: ignore[no-untyped-def]
        return F.ctc_loss(self.head(frames).log_softmax(-1), targets, frame_lengths, target_lengths)


class TestCtcLoss:
    def test_forward_and_backward(self):
        # 12 frames, batch 2, targets padded to S = 4: 2S + 1 = 9 states
        args = (
            torch.randn(12, 2, 3),
            torch.randint(1, 5, (2, 4)),
            torch.tensor([12, 10]),
            torch.tensor([4, 3]),
        )
        report = flopmeter.profile(CtcHead(), args, backward=True)
        # alpha: 11 steps * 9 states * 13 + the final logsumexp 9, per sequence
        assert op_cost(report, "aten._ctc_loss").flops == 2 * (11 * 9 * 13 + 9)  # 2,592
        # beta as alpha 1,287; alpha*beta into each label's sum 12 * 9 * 8 = 864;
        # each (frame, class) gradient 12 * 5 * 6 = 360
        assert op_cost(report, "aten._ctc_loss_backward").flops == 2 * (1_287 + 864 + 360)  # 5,022


# ------------------------------------------------------------------- attention backends
class LearnedAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.ones(()))

    def forward(self, q, k, v):  # type: ignore[no-untyped-def]
        return F.scaled_dot_product_attention(q * self.p, k * self.p, v * self.p)


class TestAttentionBackends:
    def test_math_and_flash_backward_have_the_same_macs(self):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        args = (torch.randn(1, 2, 6, 4), torch.randn(1, 2, 10, 4), torch.randn(1, 2, 10, 4))
        totals = {}
        for backend in (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION):
            with sdpa_kernel(backend):
                report = flopmeter.profile(LearnedAttention(), args, backward=True)
            assert report.unsupported_ops() == {}
            totals[backend] = (report.macs, report.flops)
        # forward 2 heads * 6*10*(4 + 4) = 960 MACs; backward twice that: 2,880 in all
        assert totals[SDPBackend.MATH][0] == totals[SDPBackend.FLASH_ATTENTION][0] == 3 * 960
        assert totals[SDPBackend.MATH][1] == 7_179  # the math path's ops (docs/formulas.md)
        assert totals[SDPBackend.FLASH_ATTENTION][1] == 7_027


# ---------------------------------------------------------------------- a real user's model
def test_wav2vec2_ctc_training_step_has_no_unsupported_op():
    transformers = pytest.importorskip("transformers")
    config = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, vocab_size=12, feat_extract_norm="group",
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.Wav2Vec2ForCTC(config)
    inputs = {"input_values": torch.randn(2, 800), "labels": torch.randint(1, 12, (2, 5))}
    report = flopmeter.profile(model, inputs, backward=True)
    # before probe 8: _ctc_loss, _ctc_loss_backward and _weight_norm_interface_backward unsupported
    assert report.unsupported_ops() == {}
    # 800 samples -> (800 - 10) // 5 + 1 = 159 -> (159 - 3) // 2 + 1 = 79 frames; labels of 5: 11 states
    assert op_cost(report, "aten._ctc_loss").flops == 2 * (78 * 11 * 13 + 9)  # 22,326
    # the positional conv's weight (32, 8, 16) normalised over dim 2: 16 slices of 256; a
    # parametrization's recompute, so in the overhead bucket (docs/compression.md)
    overhead = report.overhead["aten._weight_norm_interface_backward"].cost
    assert overhead.flops == 5 * 4_096 + 2 * 16  # 20,512


class Reparametrised(nn.Module):
    """A VAE's sampling step (and a diffusion training step's noise): mu + eps * std."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(5, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.encoder(x).chunk(2, -1)
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


class TestRandomDraws:
    def test_noise_is_a_draw_not_an_unsupported_op(self):
        report = flopmeter.profile(Reparametrised(), torch.rand(3, 5))
        assert report.unsupported_ops() == {}  # randn_like was unsupported
        # Linear 3*8 outputs * 2*5 = 240; 0.5*logvar, exp, eps*std, mu + 4 * 12 = 48
        assert report.flops == 240 + 48  # 288

    def test_every_sampler_is_a_draw(self):
        x = torch.rand(3, 5) + 0.1
        samplers = [
            lambda t: torch.multinomial(t, 2).float(),
            torch.poisson,
            torch._standard_gamma,
            torch.rand_like,
            lambda t: torch.normal(t, 1.0),
            lambda t: t.clone().cauchy_(),
            lambda t: torch.distributions.Normal(0.0, 1.0).log_prob(t),  # its _is_all_true check
        ]
        for sampler in samplers:
            report = flopmeter.profile(Fn(sampler), x, shapes_only=False)
            assert report.unsupported_ops() == {}, sampler


class TestComplexAndGeometry:
    def test_complex_construction_and_functions(self):
        a, b = torch.rand(3, 5), torch.rand(3, 5)  # 15 elements
        expected = {
            "complex": (torch.complex, 0),  # interleaving real and imaginary parts: data
            "polar": (torch.polar, 15 * 4),  # r*cos(t), r*sin(t): 60
            "angle": (lambda x, y: torch.complex(x, y).angle(), 15),  # atan2(imag, real)
            "conj_physical": (lambda x, y: torch.conj_physical(torch.complex(x, y)), 15),
            "heaviside": (torch.heaviside, 15),
            "deg2rad": (lambda x, y: torch.deg2rad(x), 15),
            "cross": (lambda x, y: torch.linalg.cross(x[:, :3], y[:, :3]), 9 * 3),  # 2 mul + sub: 27
            "renorm": (lambda x, y: torch.renorm(x, 2, 0, 1.0), 3 * (3 * 5 + 3)),  # 3 rows of 5: 54
            "rot90": (lambda x, y: torch.rot90(x), 0),
            "diag_embed": (lambda x, y: torch.diag_embed(x), 0),
        }
        for name, (fn, flops) in expected.items():
            report = flopmeter.profile(Fn(fn), (a, b))
            assert report.unsupported_ops() == {}, name
            assert report.flops == flops, name


class TestCudaKernelsAndSmallBackwards:
    def test_fused_cell_backward(self):
        # CUDA's nn.LSTMCell / nn.GRUCell training step, 2 rows, H = 6 (OpEvents: no GPU here)
        h, gates = meta(2, 6), meta(2, 24)
        lstm = event_cost("aten._thnn_fused_lstm_cell_backward_impl", (h, h, h, h, gates, True))
        # 2*6 units * (21 + 1 for the next step's dc) + the bias sum 24 * (2 - 1)
        assert lstm.flops == 12 * 22 + 24  # 288
        lstm = event_cost("aten._thnn_fused_lstm_cell_backward_impl", (h, None, h, h, gates, False))
        assert lstm.flops == 12 * 21  # no dc from a next step, no bias: 252
        gru = event_cost("aten._thnn_fused_gru_cell_backward", (h, meta(2, 30), True))
        assert gru.flops == 12 * 15 + 2 * 18  # two bias sums of 3H: 216

    def test_masked_softmax_and_dropout_kernels(self):
        x = meta(2, 3, 5)  # 6 rows of 5
        forward = registry.cost_of(OpEvent("aten._masked_softmax", (x, x, None, None), {}, (x,)))
        assert forward is not None and forward.flops == 6 * (5 * 5 - 2) + 30  # softmax + masked_fill: 168
        backward = registry.cost_of(OpEvent("aten._masked_softmax_backward", (x, x, x, None), {}, (x,)))
        assert backward is not None and backward.flops == 6 * (4 * 5 - 1) + 30  # 144
        y = meta(3, 4)
        dropout = registry.cost_of(OpEvent("aten._fused_dropout", (y, 0.1), {}, (y, y)))
        assert dropout is not None and dropout.flops == 12 * 2  # as native_dropout: 24
        scale = registry.cost_of(OpEvent("aten._masked_scale", (y, y, 1.1), {}, (y,)))
        assert scale is not None and scale.flops == 12  # as native_dropout_backward

    def test_logit_backward(self):
        report = flopmeter.profile(
            _Scaled(lambda t: torch.logit(t.sigmoid(), eps=1e-6)), torch.randn(3, 5), backward=True
        )
        # g / (x * (1 - x)): 3, + the eps range test 2, per element
        assert op_cost(report, "aten.logit_backward").flops == 15 * 5  # 75


class TestSearchAndUnique:
    def test_binary_searches_compare_floats(self):
        cdf, u = torch.rand(4, 8).sort(-1)[0], torch.rand(4, 16)  # NeRF's hierarchical sampling
        report = flopmeter.profile(Fn(lambda c, q: torch.searchsorted(c, q, right=True)), (cdf, u))
        assert op_cost(report, "aten.searchsorted").flops == 64 * 4  # 64 queries * ceil(log2 9) = 256
        report = flopmeter.profile(Fn(torch.bucketize), (torch.rand(3, 5), torch.linspace(0, 1, 7)))
        assert op_cost(report, "aten.bucketize").flops == 15 * 3  # ceil(log2 8) = 3: 45
        report = flopmeter.profile(Fn(torch.bucketize), (torch.randint(0, 9, (3, 5)), torch.arange(7)))
        assert op_cost(report, "aten.bucketize").flops == 0  # integers: not floating point

    def test_unique_sorts_then_compares_neighbours(self):
        x = torch.randn(10)
        report = flopmeter.profile(Fn(torch.unique), x, shapes_only=False)
        assert op_cost(report, "aten._unique2").flops == 10 * 4 + 9  # sort 10*ceil(log2 10) + 9: 49
        report = flopmeter.profile(Fn(torch.unique_consecutive), x, shapes_only=False)
        assert op_cost(report, "aten.unique_consecutive").flops == 9


def test_in_place_masked_fill_counts_as_masked_fill():
    x, mask = torch.randn(3, 5), torch.rand(3, 5) > 0.5
    out_of_place = flopmeter.profile(Fn(lambda t: t.masked_fill(mask, 0.0)), x)
    in_place = flopmeter.profile(Fn(lambda t: t.clone().masked_fill_(mask, 0.0)), x)
    assert op_cost(out_of_place, "aten.masked_fill").flops == 15  # a select per element
    assert op_cost(in_place, "aten.masked_fill_").flops == 15  # was 0 (listed as a data op)
