"""Probe 14: a training step (``profile(..., backward=True)``) counted by hand, layer by
layer (docs/probe-14/backward.md). Each expected value has its arithmetic beside it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import sdpa_backward_flop_count

import flopmeter


def _backward_ops(report: flopmeter.Report) -> dict[str, int]:
    """FLOPs of each backward op, summed by op name."""
    ops: dict[str, int] = {}
    for record in report.ops:
        if record.phase == "backward":
            ops[record.op] = ops.get(record.op, 0) + record.cost.flops
    return ops


# ------------------------------------------------------------------ what is differentiated
def test_the_seed_gradient_is_no_op_of_the_models_forward() -> None:
    """The gradient of ones flopmeter seeds the backward with was recorded as an
    ``aten.ones_like`` in the forward: its bytes written were the output's twice."""
    model = nn.Linear(8, 1000)
    x = torch.randn(4, 8)
    report = flopmeter.profile(model, x, backward=True)
    forward_only = flopmeter.profile(model, x, train=True, shapes_only=False)
    assert report.forward.bytes_written == 16_000  # the output, 4 * 1000 * 4 B (was 32,000)
    assert report.forward == forward_only.forward
    assert "aten.ones_like" not in report.by_operator()
    assert report.backward_cost.macs == 32_000  # grad_weight 1000 * 8 * 4
    # still live memory: x 4*8*4 = 128 + output 16,000 + its gradient 16,000
    # + grad_weight 1000*8*4 = 32,000 + grad_bias 1000*4 = 4,000 = 68,128
    assert report.peak_activation_bytes == 68_128


class _WithLoss(nn.Module):
    def __init__(self, detach_loss: bool = False) -> None:
        super().__init__()
        self.head = nn.Linear(8, 5)
        self.detach_loss = detach_loss

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.head(x)
        loss = F.cross_entropy(logits, y)
        return {"loss": loss.detach() if self.detach_loss else loss, "logits": logits}


def test_an_output_holding_a_loss_is_trained_from_the_loss_alone() -> None:
    """As ``out.loss.backward()``: 4 rows of 5 classes. nll_loss_backward (mean) 2
    (-g / N once), log_softmax backward 4 * (4*5 - 1) = 76, head grad_weight 5*8*4 = 160
    MACs, (2*4 - 1) * 40 = 280 FLOPs, grad_bias (4 - 1) * 5 = 15: 373. Before, the logits
    got a gradient of ones as well: one add per logit more, 373 + 4*5 = 393."""
    model = _WithLoss()
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    report = flopmeter.profile(model, (x, y), backward=True)
    assert report.backward_cost.macs == 160
    assert report.backward_cost.flops == 373
    ops = _backward_ops(report)
    assert "aten.add" not in ops
    assert ops["aten._log_softmax_backward_data"] == 76
    assert all(p.grad is None for p in model.parameters())


def test_a_model_output_class_with_a_loss_is_trained_from_the_loss_alone() -> None:
    """transformers' ModelOutput (a transformers model given ``labels``): the same 373."""
    outputs = pytest.importorskip("transformers.modeling_outputs")

    class Wrapped(_WithLoss):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> object:  # type: ignore[override]
            return outputs.CausalLMOutput(**super().forward(x, y))

    report = flopmeter.profile(Wrapped(), (torch.randn(4, 8), torch.tensor([0, 1, 2, 3])), backward=True)
    assert report.backward_cost.flops == 373


def test_a_loss_without_grad_leaves_the_other_outputs_to_differentiate() -> None:
    """A detached ``loss``: the logits get the gradient of ones, grad_weight 280 + bias 15."""
    report = flopmeter.profile(
        _WithLoss(detach_loss=True), (torch.randn(4, 8), torch.tensor([0, 1, 2, 3])), backward=True
    )
    assert report.backward_cost.flops == 295  # (2*4 - 1) * 5*8 + (4 - 1) * 5


def test_an_integer_output_is_refused_saying_it_has_no_gradient() -> None:
    class Argmax(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(x).argmax(-1)

    with pytest.raises(ValueError, match=r"int64 \(an argmax") as error:
        flopmeter.profile(Argmax(), torch.randn(2, 4), backward=True)
    assert "no_grad" not in str(error.value)  # before: "does its forward run under torch.no_grad()"


# ------------------------------------------------------------------------ layers by hand
@pytest.mark.parametrize(("bias", "flops"), [(True, 944), (False, 896)])
def test_linear_backward_without_input_grad(bias: bool, flops: int) -> None:
    """Linear(8, 16) over N = 4 rows, input without grad: grad_weight 16*8*4 = 512 MACs,
    (2*4 - 1) * 128 = 896 FLOPs; grad_bias (4 - 1) * 16 = 48."""
    report = flopmeter.profile(nn.Linear(8, 16, bias=bias), torch.randn(4, 8), backward=True)
    assert report.backward_cost.macs == 512
    assert report.backward_cost.flops == flops


def test_strided_padded_convolution_backward() -> None:
    """Conv2d(4, 6, 3, stride 2, padding 1) on 2x4x9x9 (input grad): 5x5 outputs, forward
    2*6*25*36 = 10,800 MACs; grad_input 10,800 + grad_weight 10,800 = 21,600. FLOPs:
    grad_weight (2*50 - 1) * 216 = 21,384, grad_bias (50 - 1) * 6 = 294, grad_input
    2 * 10,800 - 648 (every one of the 2*4*81 inputs is reached) = 20,952: 42,630."""
    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    report = flopmeter.profile(nn.Conv2d(4, 6, 3, stride=2, padding=1), x, backward=True)
    assert report.forward.macs == 10_800
    assert report.backward_cost.macs == 21_600
    assert report.backward_cost.flops == 42_630


@pytest.mark.parametrize(("affine", "flops"), [(True, 2_200), (False, 1_400)])
def test_batch_norm_backward_in_train_mode(affine: bool, flops: int) -> None:
    """BatchNorm2d(4) on 2x4x5x5 = 200 elements: input 8 + weight 2 + bias 1 = 11 per
    element (2,200); without affine, input 7 (no gamma): 1,400."""
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    report = flopmeter.profile(nn.BatchNorm2d(4, affine=affine), x, backward=True)
    assert _backward_ops(report) == {"aten.native_batch_norm_backward": flops}


def test_layer_norm_backward_without_input_grad_is_its_parameters() -> None:
    """LayerNorm(8) on 3x8 = 24 elements, input without grad: weight 2 + bias 1 = 72."""
    report = flopmeter.profile(nn.LayerNorm(8), torch.randn(3, 8), backward=True)
    assert report.backward_cost.flops == 72  # 24 * (2 + 1)


@pytest.mark.parametrize(("sparse", "flops"), [(False, 64), (True, 0)])
def test_embedding_backward_dense_and_sparse(sparse: bool, flops: int) -> None:
    """8 lookups of 8 dims: the dense gradient scatter-adds each, 8*8 = 64; the sparse one
    keeps the rows as they are (values and indices, no add)."""
    report = flopmeter.profile(
        nn.Embedding(10, 8, sparse=sparse), torch.tensor([[1, 2, 3, 1], [0, 5, 6, 7]]), backward=True
    )
    assert report.backward_cost.flops == flops
    assert not report.unsupported_ops()


def test_overlapping_average_pooling_backward() -> None:
    """AvgPool2d(3, 2, 1) on 2x4x8x8: 4x4 outputs, windows in 1-d [-1,1],[1,3],[3,5],[5,7]
    hold 2+3+3+3 = 11 inputs, so 121 per plane; g / 9 once per output 128, then each input
    sums what reaches it: 121 - 64 adds per plane, 8 planes 456: 584."""
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    report = flopmeter.profile(nn.AvgPool2d(3, 2, 1), x, backward=True)
    assert report.backward_cost.flops == 584  # 128 + 8 * (121 - 64)


def test_tied_weights_add_their_two_gradients() -> None:
    """Embedding(10, 8) and Linear(8, 10) sharing one weight, 3 tokens: the head's
    grad_input 3*10*8 = 240 and grad_weight 240 MACs, (2*10 - 1) * 24 = 456 and
    (2*3 - 1) * 80 = 400 FLOPs; the embedding's 3*8 = 24 adds; the two weight gradients
    added, 10*8 = 80: 960."""

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 8)
            self.head = nn.Linear(8, 10, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.embed(ids))

    report = flopmeter.profile(Tied(), torch.tensor([[1, 2, 3]]), backward=True)
    assert report.backward_cost.macs == 480
    assert report.backward_cost.flops == 960  # 456 + 400 + 24 + 80
    assert report.modules["embed"].backward.flops == 104  # 24 + the add of 80


def test_a_frozen_first_layer_runs_no_gradient_and_neither_does_what_feeds_it() -> None:
    """Linear(8, 16) frozen, ReLU, Linear(16, 4), input without grad: only the last
    layer's grad_weight 4*16*4 = 256 MACs ((2*4 - 1) * 64 = 448 FLOPs) and grad_bias
    (4 - 1) * 4 = 12; no ReLU backward (nothing before it needs a gradient)."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    model[0].requires_grad_(False)
    report = flopmeter.profile(model, torch.randn(4, 8), backward=True)
    assert report.backward_cost.macs == 256
    assert report.backward_cost.flops == 460  # 448 + 12
    assert report.modules["0"].backward.flops == report.modules["1"].backward.flops == 0
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]


def test_attention_backward_leaves_out_the_fused_kernels_recompute() -> None:
    """B*H = 4 heads, L = S = 5, E = Ev = 4: forward 4 * 25 * (4 + 4) = 800 MACs; the
    backward's four contractions 2 * 800 = 1,600 (docs/formulas.md). FlopCounterMode's
    formula for the fused kernels adds the recomputed Q K^T: 5 bmm of 2*4*25*4 = 800
    FLOPs each, 4,000 FLOPs = 2,000 MACs, 2.5 x the forward."""

    class Attend(nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return F.scaled_dot_product_attention(q, k, v)

    q, k, v = (torch.randn(2, 2, 5, 4, requires_grad=True) for _ in range(3))
    report = flopmeter.profile(Attend(), (q, k, v), backward=True)
    assert report.forward.macs == 800
    assert report.backward_cost.macs == 1_600
    shape = (2, 2, 5, 4)
    assert sdpa_backward_flop_count(shape, shape, shape, shape) == 4_000


def test_a_training_step_runs_and_counts_the_models_backward_hooks() -> None:
    """A module backward hook fires once; a weight hook clamping its gradient runs
    clamp on 16*8 = 128 elements, 2 compares each: 256 FLOPs, charged to layer 0
    (grad_weight (2*4 - 1) * 128 = 896 + grad_bias (4 - 1) * 16 = 48 + 256 = 1,200)."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    seen: list[int] = []
    model[2].register_full_backward_hook(lambda module, grad_in, grad_out: seen.append(1))
    model[0].weight.register_hook(lambda grad: grad.clamp(-1, 1))
    report = flopmeter.profile(model, torch.randn(4, 8), backward=True)
    assert seen == [1]
    assert _backward_ops(report)["aten.clamp"] == 256
    assert report.modules["0"].backward.flops == 1_200
    assert len(model[0].weight._backward_hooks or {}) == 1
    assert model[0].weight.grad is None


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def test_a_training_step_under_bfloat16_autocast_counts_the_same_ops_in_bfloat16() -> None:
    """Batch 4, input without grad: layer 2 grad_input 4*4*16 = 256 + grad_weight 256,
    layer 0 grad_weight 16*8*4 = 512: 1,024 MACs; FLOPs 2 * 448 + 896 (the three mm) +
    12 + 48 (the bias sums) + 64 (ReLU backward) = 1,916. Autocast's casts of the
    gradients back to the float32 weights are moves, 0 FLOPs."""
    model, x = _mlp(), torch.randn(4, 8)
    plain = flopmeter.profile(model, x, backward=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = flopmeter.profile(model, x, backward=True)
    assert (mixed.backward_cost.macs, mixed.backward_cost.flops) == (1_024, 1_916)
    assert (plain.backward_cost.macs, plain.backward_cost.flops) == (1_024, 1_916)
    matmuls = {r.dtype for r in mixed.ops if r.phase == "backward" and r.op == "aten.mm"}
    assert matmuls == {"bfloat16"}
    assert all(p.grad is None and p.dtype == torch.float32 for p in model.parameters())


def test_a_training_step_asked_for_under_no_grad_is_counted_as_outside() -> None:
    """The same 1,024 MACs as above; the caller's grad mode is off again afterwards."""
    model, x = _mlp(), torch.randn(4, 8)
    with torch.no_grad():
        report = flopmeter.profile(model, x, backward=True)
        assert not torch.is_grad_enabled()
    assert (report.backward_cost.macs, report.backward_cost.flops) == (1_024, 1_916)


# --------------------------------------------------------------- per-module attribution
def test_an_in_place_relus_backward_is_charged_to_the_relu() -> None:
    """ReLU(inplace=True) (every torchvision ResNet, VGG, AlexNet) rebases its input onto
    its own autograd node; its threshold_backward went to the parent. Conv2d(3, 4, 3) on
    2x3x6x6: 2*4*4*4 = 128 ReLU outputs, 1 FLOP each in the backward."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 3))
    report = flopmeter.profile(model, torch.randn(2, 3, 6, 6), backward=True)
    assert report.modules["2"].backward.flops == 128
    owned = sum(report.modules[name].backward.flops for name in ("0", "1", "2", "3"))
    assert owned == report.backward_cost.flops  # nothing left to the Sequential itself


def test_a_residual_blocks_relu_called_twice_in_place_is_charged_to_the_relu() -> None:
    """``out += identity; out = self.relu(out)`` as torchvision's BasicBlock: the ReLU,
    called twice, has 2 * 2*4*6*6 = 576 outputs, 1 FLOP each in the backward (before: 0,
    all in the block); the in-place add passes the gradient on (no FLOPs)."""

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.conv2(self.relu(self.conv1(x)))
            out += x
            return self.relu(out)

    report = flopmeter.profile(Block(), torch.randn(2, 4, 6, 6), backward=True)
    assert report.modules["relu"].backward.flops == 576  # 2 calls * 288
    assert report.modules["relu"].calls == 2
    children = sum(report.modules[name].backward.flops for name in ("conv1", "conv2", "relu"))
    assert children == report.backward_cost.flops


def test_a_model_without_parameters_is_not_told_to_unfreeze_them() -> None:
    with pytest.raises(ValueError, match="the model has no parameters and no input requires grad") as error:
        flopmeter.profile(nn.ReLU(), torch.randn(2, 3), backward=True)
    assert "unfreeze" not in str(error.value)
    # an input that requires grad is something to differentiate: ReLU's backward, 6 outputs
    report = flopmeter.profile(nn.ReLU(), torch.randn(2, 3, requires_grad=True), backward=True)
    assert report.backward_cost.flops == 6  # threshold_backward, 1 per element
