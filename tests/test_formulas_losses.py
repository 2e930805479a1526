"""Losses and the backward ops the zoo sweep found without a formula (P3-Z22): hand
counts, then traced. Inputs are 4x5 (20 elements, 4 samples of 5 classes)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopmeter
from flopmeter.formulas import detection, losses, pooling


class Loss(nn.Module):
    """fn(x * p, *rest): the scale p gives the inputs a gradient in a backward pass."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn
        self.p = nn.Parameter(torch.ones(1))

    def forward(self, x, *rest):
        return self.fn(x * self.p, *rest)


def op_flops(module: nn.Module, inputs, op: str, **kwargs) -> int:
    report = flopmeter.profile(module, inputs, **kwargs)
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    return report.by_operator()[op].cost.flops


X, T, Y = torch.randn(4, 5), torch.tensor([0, 2, 4, 1]), torch.rand(4, 5)


class TestNll:
    def test_formula(self):
        assert losses.nll_loss(4, losses.NONE, weighted=False).flops == 4  # 4 negates
        assert losses.nll_loss(4, losses.SUM, weighted=False).flops == 7  # 4 + 3 adds
        assert losses.nll_loss(4, losses.MEAN, weighted=False).flops == 8  # 4 + 3 + 1 divide
        # weighted mean: 4 negates + 4 weight multiplies + 3 adds + 1 divide + 3 adds of weights
        assert losses.nll_loss(4, losses.MEAN, weighted=True).flops == 15

    @pytest.mark.parametrize("reduction,expected", [("none", 4), ("sum", 7), ("mean", 8)])
    def test_traced_forward(self, reduction, expected):
        module = Loss(lambda x, t: F.nll_loss(x, t, reduction=reduction))
        assert op_flops(module, (X, T), "aten.nll_loss_forward") == expected

    def test_cross_entropy_is_log_softmax_plus_nll(self):
        # log_softmax 4 rows * (4*5-1) = 76, nll mean 8
        report = flopmeter.profile(nn.CrossEntropyLoss(), (X, T))
        assert report.flops == 84 and report.unsupported_ops() == {}

    def test_ignore_index_counts_every_sample(self):
        # values decide which targets are ignored: all 4 counted, the most the call does
        module = Loss(lambda x, t: F.nll_loss(x, t, ignore_index=2))
        assert op_flops(module, (X, T), "aten.nll_loss_forward") == 8

    def test_backward(self):
        # mean: -g / total_weight once = 2; sum: -g = 1; none: 4 negates
        assert losses.nll_loss_backward(4, losses.MEAN, weighted=False).flops == 2
        assert losses.nll_loss_backward(4, losses.SUM, weighted=False).flops == 1
        assert losses.nll_loss_backward(4, losses.NONE, weighted=True).flops == 8  # 4 * (negate + weight)
        weights = torch.rand(5)
        module = Loss(lambda x, t: F.nll_loss(x, t, weight=weights))
        # 4 weight multiplies + the scalar -g / total_weight (2) = 6
        assert op_flops(module, (X, T), "aten.nll_loss_backward", backward=True) == 6

    def test_2d(self):
        x, t = torch.randn(2, 5, 3, 3), torch.randint(0, 5, (2, 3, 3))
        module = Loss(lambda x, t: F.nll_loss(x, t, reduction="sum"))
        assert op_flops(module, (x, t), "aten.nll_loss2d_forward") == 35  # 18 targets: 18 + 17
        assert op_flops(module, (x, t), "aten.nll_loss2d_backward", backward=True) == 1  # -g


class TestPointwiseLosses:
    @pytest.mark.parametrize(
        "fn,op,expected",
        [
            (F.mse_loss, "aten.mse_loss", 60),  # 20 * (sub, square) + mean 20 = 40 + 20
            (F.huber_loss, "aten.huber_loss", 120),  # 20 * 5 + 20
            (F.smooth_l1_loss, "aten.smooth_l1_loss", 140),  # 20 * 6 + 20
            # beta 0 is L1 (F.smooth_l1_loss then calls l1_loss; the op itself): 20 * 2 + 20
            (lambda x, y: torch.ops.aten.smooth_l1_loss(x, y, 1, 0.0), "aten.smooth_l1_loss", 60),
            (F.binary_cross_entropy_with_logits, "aten.binary_cross_entropy_with_logits", 160),  # 20*7 + 20
        ],
    )
    def test_forward_mean(self, fn, op, expected):
        assert op_flops(Loss(fn), (X, Y), op) == expected

    def test_reductions(self):
        sums = Loss(lambda x, y: F.mse_loss(x, y, reduction="sum"))
        assert op_flops(sums, (X, Y), "aten.mse_loss") == 59  # 40 + 19 adds
        none = Loss(lambda x, y: F.mse_loss(x, y, reduction="none"))
        assert op_flops(none, (X, Y), "aten.mse_loss") == 40

    def test_binary_cross_entropy_weights(self):
        w, pos = torch.rand(4, 5), torch.rand(5)
        module = Loss(lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pos))
        # 20 * (7 + 4 pos_weight + 1 weight) + mean 20 = 260
        assert op_flops(module, (X, Y), "aten.binary_cross_entropy_with_logits") == 260
        probs = torch.rand(4, 5) * 0.9 + 0.05
        bce = Loss(lambda x, y: F.binary_cross_entropy(x, y, weight=w, reduction="sum"))
        # 20 * (9 + 1 weight) + 19 adds = 219
        assert op_flops(bce, (probs, Y), "aten.binary_cross_entropy") == 219
        # backward: 20 * (6 + 1 weight), no scalar for 'sum' = 140
        assert op_flops(bce, (probs, Y), "aten.binary_cross_entropy_backward", backward=True) == 140

    @pytest.mark.parametrize(
        "fn,op,per",
        [(F.mse_loss, "aten.mse_loss_backward", 3), (F.huber_loss, "aten.huber_loss_backward", 5)],
    )
    def test_backward_mean(self, fn, op, per):
        # 20 elements * per + the scalar 1/n of 'mean'
        assert op_flops(Loss(fn), (X, Y), op, backward=True) == 20 * per + 1

    def test_smooth_l1_backward(self):
        assert op_flops(Loss(F.smooth_l1_loss), (X, Y), "aten.smooth_l1_loss_backward", backward=True) == 121

    def test_l1_loss_decomposes_and_its_sign_is_counted(self):
        # backward runs sgn (1 per element) among the decomposed ops
        assert op_flops(Loss(F.l1_loss), (X, Y), "aten.sgn", backward=True) == 20


class TestBackwardOps:
    def test_upsample_nearest_backward(self):
        # 2 planes, 3x3 -> 6x6: each input gradient sums its 4 copies: 2 * (36 - 9) = 54 adds
        up = Loss(lambda x: F.interpolate(x, scale_factor=2).sum())
        assert (
            op_flops(up, (torch.randn(1, 2, 3, 3),), "aten.upsample_nearest2d_backward", backward=True) == 54
        )
        # 1-d 3 -> 6: 2 planes * (6 - 3) = 6; 3-d 2^3 -> 4^3: 64 - 8 = 56
        assert op_flops(up, (torch.randn(1, 2, 3),), "aten.upsample_nearest1d_backward", backward=True) == 6
        assert (
            op_flops(up, (torch.randn(1, 1, 2, 2, 2),), "aten.upsample_nearest3d_backward", backward=True)
            == 56
        )

    def test_upsample_nearest_backward_downsampling(self):
        # 5 -> 2 (scale 0.5 reads cells 0 and 2): every output is one read, nothing to add
        down = Loss(lambda x: F.interpolate(x, scale_factor=0.5).sum())
        assert op_flops(down, (torch.randn(1, 1, 5),), "aten.upsample_nearest1d_backward", backward=True) == 0
        # 3 -> 5 by size: cells floor(i * 3/5) = 0,0,1,1,2: 5 - 3 = 2 adds
        assert pooling.nearest_sources(3, 5, None, exact=False) == 3
        to_five = Loss(lambda x: F.interpolate(x, size=5).sum())
        assert (
            op_flops(to_five, (torch.randn(1, 1, 3),), "aten.upsample_nearest1d_backward", backward=True) == 2
        )

    def test_roi_align_backward(self):
        torchvision = pytest.importorskip("torchvision")
        # 1 roi, 2 channels, 2x2 bins, S = 2*2 = 4: outputs 8 * (8*4 + 1) + points 4*4 * 8 = 264 + 128
        assert detection.roi_align_backward(1, 2, 4, 4).flops == 392
        rois = torch.tensor([[0, 0.0, 0, 3, 3]])
        module = Loss(lambda x: torchvision.ops.roi_align(x, rois, 2, sampling_ratio=2).sum())
        assert (
            op_flops(module, (torch.randn(1, 2, 6, 6),), "torchvision._roi_align_backward", backward=True)
            == 392
        )


def test_llama_training_step_has_no_unsupported_op():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        num_hidden_layers=1,
        hidden_size=32,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        vocab_size=50,
    )
    model = transformers.LlamaForCausalLM(config)
    ids = torch.randint(0, 50, (2, 8))
    report = flopmeter.profile(model, {"input_ids": ids, "labels": ids}, backward=True)
    assert report.unsupported_ops() == {}
    ops = report.by_operator()
    # 2*8 shifted targets (the last of each row is padding, still counted): 16 + 15 adds + 1 divide
    assert ops["aten.nll_loss_forward"].cost.flops == 32
    assert ops["aten.nll_loss_backward"].cost.flops == 2  # -g / total_weight
