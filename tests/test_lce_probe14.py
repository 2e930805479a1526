"""torch 2.14's chunked ``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``:
a custom op (``torch_nn._linear_cross_entropy_batch_chunked`` and ``_no_reduction``) whose
matmuls run inside it. Counted as the reference path (``options=None``) counts op by op,
with the gradients its forward computes when grad is on (docs/formulas.md, "Losses")."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopmeter
from flopmeter.formulas import losses

Options = getattr(torch.nn, "LinearCrossEntropyOptions", None)
if Options is None:  # an older torch: no chunked path to count
    pytest.skip("torch has no LinearCrossEntropyOptions", allow_module_level=True)

CHUNKED = "torch_nn._linear_cross_entropy_batch_chunked"
NO_REDUCTION = "torch_nn._linear_cross_entropy_batch_chunked_no_reduction"
N, H, V = 8, 16, 32


class LmHeadLoss(nn.Module):
    """An lm_head (V, H) and its loss, chunked (``options``) or the reference path."""

    def __init__(self, chunked: bool, reduction: str = "mean", bias: bool = True, weighted: bool = False):
        super().__init__()
        self.head = nn.Linear(H, V, bias=bias)
        self.register_buffer("class_weight", torch.rand(V) + 0.5 if weighted else None)
        self.chunked, self.reduction = chunked, reduction
        self.grad = False  # run the loss with grad on even in a forward-only profile
        self.ignore_index: int | None = None
        self.label_smoothing = 0.0

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(self.grad or torch.is_grad_enabled()):
            return F.linear_cross_entropy(
                x,
                self.head.weight,
                target,
                linear_bias=self.head.bias,
                weight=self.class_weight,
                reduction=self.reduction,
                ignore_index=self.ignore_index,
                label_smoothing=self.label_smoothing,
                options=Options(batch_chunk_size=3) if self.chunked else None,
            )


def indices() -> torch.Tensor:
    return torch.randint(0, V, (N,))


def probabilities() -> torch.Tensor:
    return torch.softmax(torch.randn(N, V), dim=1)


def profile(model, x, target, **kwargs):
    report = flopmeter.profile(model, (x, target), **kwargs)
    assert not report.unsupported_ops()
    return report


# ------------------------------------------------------------------ the formula by hand
def test_formula_by_hand_mean_with_bias():
    cost = losses.linear_cross_entropy(N, H, V, losses.MEAN, bias=True, weighted=False)
    assert cost.macs == 4096  # logits 8*16*32 = 4,096
    # logits 8*32*(2*16-1) = 7,936 + bias 8*32 = 256; log_softmax 8*(4*32-1) = 1,016;
    # nll 8 negates + 7 adds + 1 divide = 16: 9,224
    assert cost.flops == 9224


def test_formula_by_hand_sum_none_weighted_no_bias():
    # logits 7,936 + log_softmax 1,016 + nll 8 + 7 adds = 8,967
    assert losses.linear_cross_entropy(N, H, V, losses.SUM, bias=False, weighted=False).flops == 8967
    # ... + nll 8 negates, no reduction: 8,960
    assert losses.linear_cross_entropy(N, H, V, losses.NONE, bias=False, weighted=False).flops == 8960
    # weighted mean: 7,936 + 1,016 + 2*8 + 7 + 1 + 7 (the picked weights summed) = 8,983
    assert losses.linear_cross_entropy(N, H, V, losses.MEAN, bias=False, weighted=True).flops == 8983


def test_formula_by_hand_with_the_gradients():
    cost = losses.linear_cross_entropy(
        N, H, V, losses.MEAN, bias=True, weighted=False, grad_input=True, grad_weight=True, grad_bias=True
    )
    # forward 4,096 + dlogits @ W 8*32*16 = 4,096 + dlogits.T @ x 32*8*16 = 4,096: 12,288
    assert cost.macs == 12288
    # forward 9,224 + nll backward 2 + log_softmax backward 8*(4*32-1) = 1,016
    # + grad input 8*16*(2*32-1) = 8,064 + grad weight 32*16*(2*8-1) = 7,680
    # + grad bias 32*(8-1) = 224: 26,210
    assert cost.flops == 26210
    weight_only = losses.linear_cross_entropy(
        N, H, V, losses.SUM, bias=False, weighted=False, grad_weight=True
    )
    assert weight_only.macs == 8192  # 4,096 + 4,096
    # 7,936 + 1,016 + 15 + nll backward 1 + 1,016 + 7,680 = 17,664
    assert weight_only.flops == 17664


def test_formula_by_hand_probability_targets():
    cost = losses.linear_cross_entropy(N, H, V, losses.MEAN, bias=True, weighted=False, probabilities=True)
    # 8,192 + 1,016 + t*logp 8*32 = 256 + sum 255 + negate 1 + divide 1: 9,721
    assert cost.flops == 9721
    weighted = losses.linear_cross_entropy(N, H, V, losses.SUM, bias=True, weighted=True, probabilities=True)
    # 8,192 + 1,016 + 2*256 + 255 + 1: 9,976
    assert weighted.flops == 9976
    grads = losses.linear_cross_entropy(
        N, H, V, losses.MEAN, bias=True, weighted=False, probabilities=True, grad_weight=True, grad_bias=True
    )
    # 9,721 + (-g/N: 2 + g*t: 256) + 1,016 + 7,680 + 224 = 18,899
    assert grads.flops == 18899


# ------------------------------------------- equal to the reference path, op by op
@pytest.mark.parametrize("shapes_only", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_chunked_counts_what_the_reference_path_counts(shapes_only, reduction, bias, weighted):
    x, target = torch.randn(N, H), indices()
    target[0] = -100  # ignored: still counted, as nll counts it
    chunked = profile(LmHeadLoss(True, reduction, bias, weighted), x, target, shapes_only=shapes_only)
    reference = profile(LmHeadLoss(False, reduction, bias, weighted), x, target, shapes_only=shapes_only)
    assert chunked.macs == reference.macs == 4096  # 8*16*32
    assert chunked.flops == reference.flops
    assert chunked.total.ptflops_macs == reference.total.ptflops_macs  # ptflops' view too
    op = NO_REDUCTION if reduction == "none" else CHUNKED
    assert chunked.by_operator()[op].calls == 1


@pytest.mark.parametrize("shapes_only", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_chunked_probability_targets_count_what_the_reference_path_counts(shapes_only, reduction, weighted):
    x, target = torch.randn(N, H), probabilities()
    chunked = profile(LmHeadLoss(True, reduction, True, weighted), x, target, shapes_only=shapes_only)
    reference = profile(LmHeadLoss(False, reduction, True, weighted), x, target, shapes_only=shapes_only)
    assert CHUNKED in chunked.by_operator()
    assert chunked.macs == reference.macs == 4096
    assert chunked.flops == reference.flops


def test_the_ignore_index_is_counted_like_any_other_target():
    x, target = torch.randn(N, H), indices()
    model = LmHeadLoss(True)
    model.ignore_index = 3
    target[:4] = 3
    assert profile(model, x, target).flops == 9224  # as by hand: every row counted


def test_label_smoothing_takes_the_reference_path_and_is_counted_there():
    model = LmHeadLoss(True)
    model.label_smoothing = 0.1
    with pytest.warns(UserWarning, match="options.. ignored"):
        report = profile(model, torch.randn(N, H), indices())
    assert CHUNKED not in report.by_operator()
    assert report.macs == 4096


def test_a_single_row_is_one_row():
    # a 1-D input is unsqueezed to (1, H) before the op: 1*16*32 = 512 MACs
    report = profile(LmHeadLoss(True), torch.randn(H), torch.tensor(5))
    assert report.macs == 512


# ---------------------------------------------------- gradients computed in the forward
@pytest.mark.parametrize("shapes_only", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("input_grad", [False, True])
def test_with_grad_on_the_forward_op_counts_the_reference_forward_and_backward(
    shapes_only, reduction, input_grad
):
    x, target = torch.randn(N, H, requires_grad=input_grad), indices()
    model = LmHeadLoss(True, reduction)
    model.grad = True  # grad on inside a forward-only profile: the op computes the gradients
    chunked = profile(model, x, target, shapes_only=shapes_only)
    reference = profile(LmHeadLoss(False, reduction), x, target, backward=True)  # runs with values
    assert chunked.by_operator()[CHUNKED].calls == 1
    # logits 4,096 + grad weight 4,096 (+ grad input 4,096)
    assert chunked.macs == reference.macs == (12288 if input_grad else 8192)
    assert chunked.flops == reference.flops


def test_with_grad_on_the_op_writes_its_gradients():
    x, target = torch.randn(N, H, requires_grad=True), indices()
    model = LmHeadLoss(True)
    cost = profile(model, x, target).by_operator()[CHUNKED].cost
    # read x 8*16*4 = 512 + W 32*16*4 = 2,048 + target 8*8 = 64 + bias 32*4 = 128: 2,752
    assert (cost.bytes_read, cost.bytes_written) == (2752, 4)  # the loss, a float
    model.grad = True
    cost = profile(model, x, target).by_operator()[CHUNKED].cost
    assert cost.bytes_read == 2752
    assert cost.bytes_written == 4 + 512 + 2048 + 128  # loss + grad x + grad W + grad b = 2,692


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_backward_counts_the_gradients_once(reduction):
    x, target = torch.randn(N, H, requires_grad=True), indices()
    chunked = profile(LmHeadLoss(True, reduction), x, target, backward=True)
    reference = profile(LmHeadLoss(False, reduction), x, target, backward=True)
    assert chunked.macs == reference.macs == 12288  # 3 * 8*16*32: not a fourth product
    # the op's backward scales the stored gradients by the upstream gradient (``mul``):
    # x 8*16 = 128 + W 32*16 = 512 + b 32: 672 FLOPs more than the reference path
    assert chunked.flops == reference.flops + 672
    assert chunked.by_operator()[CHUNKED].calls == 1


def test_backward_of_the_no_reduction_op_recomputes_and_is_counted_op_by_op():
    x, target = torch.randn(N, H), indices()
    chunked = profile(LmHeadLoss(True, "none"), x, target, backward=True)
    reference = profile(LmHeadLoss(False, "none"), x, target, backward=True)
    # its backward recomputes the logits (4,096) and forms grad W (4,096) in Python, seen
    # op by op, beside the op's own 4,096, and its two dots of the 8 row weights (the
    # loss it recomputes and drops): 3*4,096 + 2*8 = 12,304; the reference: 4,096 + 4,096
    assert reference.macs == 8192
    assert chunked.by_operator()[NO_REDUCTION].cost.macs == 4096
    assert chunked.macs == 12304


def test_flop_counter_mode_counts_the_chunked_op_zero_silently():
    """docs/conventions.md: FlopCounterMode has no entry for the chunked ops and counts 0 for
    the whole lm_head and loss, where the reference path is its mm's 2*N*H*V."""
    from torch.utils.flop_counter import FlopCounterMode

    def counted(chunked: bool) -> int:
        model = LmHeadLoss(chunked).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as mode:
            model(torch.randn(N, H), indices())
        return mode.get_total_flops()

    assert counted(chunked=False) == 2 * N * H * V  # 2*8*16*32 = 8,192
    assert counted(chunked=True) == 0
    ours = flopmeter.profile(LmHeadLoss(chunked=True).eval(), (torch.randn(N, H), indices()))
    assert ours.macs == N * H * V  # 4,096
