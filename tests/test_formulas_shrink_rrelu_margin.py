"""Activation and loss ops a training step ran without a formula (probe-5 sweep of the
torch.nn layers): hardshrink/softshrink backward, RReLU, soft margin loss. Hand counts on
x = 2x4x6 (48 elements)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter

F = nn.functional
X = torch.randn(2, 4, 6)


class Scaled(nn.Module):
    """fn(x * p): a parameter before the op, so its backward runs."""

    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn = fn
        self.p = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x * self.p).sum()


def flops(model: nn.Module, op: str, **kwargs) -> int:  # type: ignore[no-untyped-def]
    report = flopmeter.profile(model, X, backward=True, **kwargs)
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    return report.by_operator()[op].cost.flops


@pytest.mark.parametrize("layer", [nn.Hardshrink(), nn.Softshrink()])
def test_shrink_backward(layer):
    name = type(layer).__name__.lower()
    # g unless -lambda <= x <= lambda: two compares per element, 48 * 2
    assert flops(Scaled(layer), f"aten.{name}_backward") == 96
    assert flops(Scaled(layer), f"aten.{name}") == 96  # forward (unchanged): 2 per element


def test_rrelu():
    train = Scaled(nn.RReLU()).train()
    # training: a drawn slope per element (0), compare and multiply: 48 * 2; backward g * noise
    assert flops(train, "aten.rrelu_with_noise") == 96
    assert flops(train, "aten.rrelu_with_noise_backward") == 48
    # eval: a fixed slope, leaky_relu's backward (compare, multiply): 48 * 2
    assert flops(Scaled(nn.RReLU()), "aten.rrelu_with_noise_backward", train=False) == 96


def test_soft_margin_loss():
    class Loss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.soft_margin_loss(x * self.p, torch.ones_like(x))

    # log(1 + exp(-t*x)) 5 per element + 'mean' 47 adds + 1 divide = 240 + 48 = 288
    assert flops(Loss(), "aten.soft_margin_loss") == 288
    # -t * sigmoid(-t*x) * g 7 per element + 'mean' 1 (g/n once) = 337
    assert flops(Loss(), "aten.soft_margin_loss_backward") == 337
