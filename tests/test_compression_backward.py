"""A backward profile of a pruned model: the gradient's multiply by the mask is
overhead, like the forward's weight_orig * weight_mask (hand counts)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import flopmeter


def _pruned() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 50))
    mask = torch.zeros(50, 100)
    mask[:, :25] = 1
    prune.custom_from_mask(model[0], "weight", mask)
    return model


def test_backward_mask_multiply_is_overhead() -> None:
    report = flopmeter.profile(_pruned(), torch.randn(1, 100), backward=True)
    # forward: addmm 50 * (2*100 - 1) + 50 bias = 10,000 FLOPs, 5,000 MACs
    assert (report.forward.flops, report.forward.macs) == (10_000, 5_000)
    # backward: grad_weight = grad_out^T (50x1) @ x (1x100): 5,000 MACs, 50*100*(2*1 - 1) = 5,000
    # FLOPs; grad_bias = sum over 1 row: 0 adds; x needs no gradient: no grad_input matmul
    assert (report.backward_cost.flops, report.backward_cost.macs) == (5_000, 5_000)
    assert report.flops == 15_000
    mul = report.overhead["aten.mul"]
    # forward weight_orig * weight_mask and backward grad_weight * weight_mask: 50*100 each
    assert (mul.calls, mul.backward_calls, mul.cost.flops) == (2, 1, 10_000)
    assert not any(r.op == "aten.mul" for r in report.ops)


def test_count_overhead_puts_both_multiplies_back() -> None:
    from flopmeter.compression import CompressionOptions

    options = CompressionOptions(count_overhead=True)
    report = flopmeter.profile(_pruned(), torch.randn(1, 100), backward=True, compression=options)
    assert report.flops == 15_000 + 10_000  # model work + the two 5,000-FLOP mask multiplies
    assert report.backward_cost.flops == 5_000 + 5_000


def test_input_gradient_matmul_stays_model_work() -> None:
    x = torch.randn(1, 100, requires_grad=True)
    report = flopmeter.profile(_pruned(), x, backward=True)
    # + grad_input = grad_out (1x50) @ W (50x100): 5,000 MACs, 100*(2*50 - 1) = 9,900 FLOPs
    assert report.backward_cost.flops == pytest.approx(5_000 + 9_900)
    assert report.overhead["aten.mul"].cost.flops == 10_000
