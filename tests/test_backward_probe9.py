"""Probe 9: a training step's count on cases the backward sweep (benchmarks/backward_sweep.py)
found or checked by hand."""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import flopmeter


class Checkpointed(nn.Module):
    """Two linears recomputed in the backward by torch's (legacy) reentrant checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return checkpoint(self._body, x, use_reentrant=True)

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


def test_a_reentrant_checkpoint_is_counted_with_its_recomputed_forward() -> None:
    """``use_reentrant=True`` refuses ``torch.autograd.grad``; ``loss.backward()`` runs it.
    Batch 4: forward a 4*8*16 = 512 + b 4*16*8 = 512 MACs = 1,024. Backward: the whole
    body recomputed (reentrant: no early stop) 1,024, b's grad_input 512 + grad_weight 512,
    a's grad_input 512 (x requires grad) + grad_weight 512: 1,024 + 2,048 = 3,072."""
    model = Checkpointed()
    x = torch.randn(4, 8, requires_grad=True)
    grads = [p.grad for p in model.parameters()]
    report = flopmeter.profile(model, (x,), backward=True)
    assert report.forward.macs == 1_024
    assert report.backward_cost.macs == 3_072
    assert [p.grad for p in model.parameters()] == grads  # all None: nothing written
    assert x.grad is None


def test_a_reentrant_checkpoint_leaves_existing_grads_as_they_were() -> None:
    """A model mid-training (``.grad`` filled): the same count (no AccumulateGrad add is
    run, the grads are taken from None), and every grad is the same tensor, same values."""
    model = Checkpointed()
    x = torch.randn(4, 8, requires_grad=True)
    model(x).sum().backward()
    before = [(p.grad, p.grad.clone()) for p in model.parameters() if p.grad is not None]
    x_grad = x.grad.clone() if x.grad is not None else None
    report = flopmeter.profile(model, (x,), backward=True)
    assert report.backward_cost.macs == 3_072
    for p, (grad, values) in zip(model.parameters(), before, strict=True):
        assert p.grad is grad and torch.equal(grad, values)
    assert x.grad is not None and x_grad is not None and torch.equal(x.grad, x_grad)


def test_a_grouped_strided_transposed_convolution_backward() -> None:
    """ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2) on 2 x 4 x 5 x 5
    (out 2 x 6 x 10 x 10). Forward: each input element meets C_out/g x k x k weights:
    2*4*25 * 3*9 = 5,400 MACs. grad_input (a plain conv of the output gradient): 5,400;
    grad_weight (one dot product per weight, 4*3*9 = 108 weights, over N*H_in*W_in = 50
    terms): 5,400. FlopCounterMode says 16,200: its grad_weight ignores groups (2 x 5,400),
    as P6-D8 found for the forward-direction convolution."""
    conv = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False)
    with_input_grad = flopmeter.profile(conv, (torch.randn(2, 4, 5, 5, requires_grad=True),), backward=True)
    assert (with_input_grad.forward.macs, with_input_grad.backward_cost.macs) == (5_400, 10_800)
    without = flopmeter.profile(conv, (torch.randn(2, 4, 5, 5),), backward=True)
    assert without.backward_cost.macs == 5_400  # grad_weight only: nothing before needs grad_input


def test_a_strided_convolution_after_a_frozen_one_skips_its_grad_input() -> None:
    """resnet's layer2.0 after a frozen layer1, small: Conv2d(3, 4, 3, padding=1) frozen on
    2 x 3 x 8 x 8, then Conv2d(4, 8, 3, stride=2, padding=1) trainable (out 4 x 4).
    Forward: 2*4*64*27 = 13,824 + 2*8*16*36 = 9,216 = 23,040 MACs. Backward: the second's
    grad_weight 9,216 only (its input comes from a frozen conv and an input without grad);
    unfrozen, the first's grad_weight 13,824 and the second's grad_input 9,216 (the same
    MACs as its forward, stride 2 or not) join: 32,256."""
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False)
    )
    x = torch.randn(2, 3, 8, 8)
    model[0].weight.requires_grad_(False)
    frozen = flopmeter.profile(model, (x,), backward=True)
    assert (frozen.forward.macs, frozen.backward_cost.macs) == (23_040, 9_216)
    model[0].weight.requires_grad_(True)
    assert flopmeter.profile(model, (x,), backward=True).backward_cost.macs == 32_256


class LeafInside(nn.Module):
    """As transformers' Wav2Vec2FeatureEncoder in training: the forward makes its own leaf
    that requires grad (``hidden.requires_grad = True``), so ``loss.backward()`` runs the
    first convolution's grad_input too."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = x[:, None]
        hidden.requires_grad = True
        return self.conv(hidden)


def test_a_leaf_the_forward_makes_gets_its_gradient_as_in_training() -> None:
    """Conv1d(1, 4, 3) on 2 x 1 x 10 (8 outputs): forward 2*4*8*3 = 192 MACs; backward
    grad_weight 192 + grad_input 192 (the leaf requires grad) = 384, as FlopCounterMode
    around ``loss.backward()`` counts (wav2vec2's first conv: 2*32*79*10 = 50,560 MACs were
    missing). Nothing is written to the leaf or the weight."""
    model = LeafInside()
    report = flopmeter.profile(model, (torch.randn(2, 10),), backward=True)
    assert (report.forward.macs, report.backward_cost.macs) == (192, 384)
    assert model.conv.weight.grad is None


class NonReentrant(Checkpointed):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return checkpoint(self._body, x, use_reentrant=False)


def test_a_non_reentrant_checkpoint_counts_the_recompute_it_runs() -> None:
    """``use_reentrant=False`` (transformers' default) stops recomputing once the saved
    tensors are back: a (4*8*16 = 512) and the relu, not b, whose output nothing saved.
    Backward, x without grad: recompute 512 + b grad_input 512 + grad_weight 512 + a
    grad_weight 512 = 2,048 (FlopCounterMode: 2,048 too)."""
    report = flopmeter.profile(NonReentrant(), (torch.randn(4, 8),), backward=True)
    assert (report.forward.macs, report.backward_cost.macs) == (1_024, 2_048)


def test_bilinear_backward_counts_each_gradient_as_one_more_forward() -> None:
    """nn.Bilinear(8, 6, 5) on x1 (3, 8), x2 (3, 6): forward B*O*I1*I2 = 3*5*8*6 = 720 MACs.
    Each gradient is one more ``_trilinear`` over the same 3 x 5 x 8 x 6 products: dW
    (g, x1, x2 summed over the batch), dx1 (g, W, x2 summed over O and I2), dx2 (g, W, x1):
    720 MACs each. The dW call used to raise an IndexError (its second argument is g, not a
    3-d weight) and dx1/dx2 were counted as 600 (in1 read from g, B as 24 // 5 = 4)."""
    layer = nn.Bilinear(8, 6, 5)
    x1, x2 = torch.randn(3, 8, requires_grad=True), torch.randn(3, 6, requires_grad=True)
    report = flopmeter.profile(layer, (x1, x2), backward=True)
    assert (report.forward.macs, report.backward_cost.macs) == (720, 3 * 720)
    # dW alone: outputs O*I1*I2 = 240 dot products of B = 3 terms (2*3 - 1 = 5 FLOPs each),
    # after the cheapest pair's products g*x2, 3*5*6 = 90: 240*5 + 90 = 1,290 FLOPs
    weight_only = flopmeter.profile(layer, (x1.detach(), x2.detach()), backward=True)
    trilinear = [r for r in weight_only.ops if r.phase == "backward" and r.op.endswith("_trilinear")]
    assert [(r.cost.macs, r.cost.flops) for r in trilinear] == [(720, 1_290)]
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)
    assert flopmeter.profile(layer, (x1, x2), backward=True).backward_cost.macs == 2 * 720


def test_a_recomputed_forward_is_charged_to_the_modules_it_runs() -> None:
    """``use_reentrant=False``: b's backward needs relu(a(x)), so torch recomputes a (512
    MACs) while b's backward node runs. The recompute is a's forward run again: a's
    backward = 512 + its grad_weight 512 = 1,024; b's = grad_input 512 + grad_weight 512 =
    1,024 (was 1,536 for b and 512 for a: the recompute went to the node that asked)."""
    report = flopmeter.profile(NonReentrant(), (torch.randn(4, 8),), backward=True)
    modules = report.by_module()
    assert (modules["a"].backward.macs, modules["b"].backward.macs) == (1_024, 1_024)
    assert modules[""].backward.macs == 2_048


def test_reentrant_recompute_is_charged_to_the_modules_it_runs() -> None:
    """The reentrant checkpoint recomputes a and b (1,024) inside its backward node, which
    no module's forward made (the root's). a: recompute 512 + grad_input 512 + grad_weight
    512 = 1,536; b likewise 1,536: 3,072 in all."""
    report = flopmeter.profile(Checkpointed(), (torch.randn(4, 8, requires_grad=True),), backward=True)
    modules = report.by_module()
    assert (modules["a"].backward.macs, modules["b"].backward.macs) == (1_536, 1_536)


class ScaledCheckpoint(Checkpointed):
    """A tensor that requires grad held in a plain attribute (not a parameter), used only
    inside the reentrant checkpoint: the outer graph has no edge to it (the checkpoint's
    node leads only to its tensor inputs), so its ``.grad`` is written when the recompute's
    own ``backward()`` runs."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.ones(8, requires_grad=True)

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x))) * self.scale


def test_a_reentrant_checkpoint_leaves_a_tensor_used_only_inside_it_as_it_was() -> None:
    """Batch 4 (x requires grad: a reentrant checkpoint of inputs without grad has no
    backward). MACs as Checkpointed's: forward 1,024, backward 3,072 (recompute 1,024, a's
    and b's grad_input and grad_weight 512 each); scale's grad is elementwise work (FLOPs
    only). With scale.grad already set the count is the same (taken from None: no
    accumulating add of 8 FLOPs), and scale.grad is the same tensor with the same values
    afterwards; None stays None."""
    model = ScaledCheckpoint()
    x = torch.randn(4, 8, requires_grad=True)
    fresh = flopmeter.profile(model, (x,), backward=True)
    assert (fresh.forward.macs, fresh.backward_cost.macs) == (1_024, 3_072)
    assert model.scale.grad is None
    grad = torch.full((8,), 7.0)
    model.scale.grad = grad
    again = flopmeter.profile(model, (x,), backward=True)
    assert again.backward_cost.flops == fresh.backward_cost.flops
    assert model.scale.grad is grad and torch.equal(grad, torch.full((8,), 7.0))


def test_a_reentrant_checkpoint_does_not_read_the_grad_of_a_non_leaf_input() -> None:
    """An input made from a leaf (``a * 2``): ``.grad`` of a non-leaf is not written by
    ``backward()`` and reading it warns ("not a leaf Tensor"); the leaf behind it keeps its
    grad."""
    leaf = torch.randn(4, 8, requires_grad=True)
    leaf.grad = torch.zeros(4, 8)
    grad = leaf.grad
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flopmeter.profile(Checkpointed(), (leaf * 2,), backward=True)
    assert leaf.grad is grad and not grad.any()


def test_a_reentrant_checkpoint_runs_no_post_accumulate_grad_hook() -> None:
    """Training with the optimizer step fused into the backward (PyTorch's tutorial: an
    ``Adam.step`` in each parameter's post-accumulate-grad hook). ``autograd.grad`` never
    runs these hooks; the ``backward()`` a reentrant checkpoint needs would run them once
    per parameter (4 here), stepping the user's optimizer. None runs in the profile; each
    still runs in the user's own backward afterwards."""
    model = Checkpointed()
    stepped: list[torch.Tensor] = []
    for parameter in model.parameters():
        parameter.register_post_accumulate_grad_hook(stepped.append)
    x = torch.randn(4, 8, requires_grad=True)
    assert flopmeter.profile(model, (x,), backward=True).backward_cost.macs == 3_072
    assert stepped == []
    model(x).sum().backward()
    assert len(stepped) == 4  # a.weight, a.bias, b.weight, b.bias
