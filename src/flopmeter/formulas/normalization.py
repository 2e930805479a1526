"""Normalization layers. Pure functions of sizes.

Statistics of a group of D values (LayerNorm row, BatchNorm channel, GroupNorm group):
mean: D-1 adds + 1 divide = D; centre x - mean: D; square: D; sum: D-1; divide: 1;
+eps: 1; rsqrt: 1; scale the centred values by rstd: D. Total 5D + 2 per group.
An affine weight is one multiply per element, an affine bias one add per element.
"""

from __future__ import annotations

from ..cost import Cost


def normalize_with_statistics(groups: int, group_size: int, *, weight: bool, bias: bool) -> Cost:
    """LayerNorm / GroupNorm / train-mode BatchNorm over ``groups`` groups of ``group_size``.

    FLOPs = groups*(5*D + 2) + elements*(weight + bias), elements = groups*D.
    ptflops counts one MAC per element, two with an affine transform.
    """
    elements = groups * group_size
    affine_ops = elements * (int(weight) + int(bias))
    flops = groups * (5 * group_size + 2) + affine_ops
    return Cost(flops=flops, ptflops_macs=elements * (2 if (weight or bias) else 1))


def batch_norm_inference(elements: int, channels: int, *, affine: bool) -> Cost:
    """Eval-mode BatchNorm with running statistics, folded per channel.

    Per channel: var+eps, rsqrt, (times gamma), mean*scale, (beta minus it):
    5 FLOPs with affine, 3 without. Per element: x*scale + shift = 2.
    FLOPs = 2*elements + channels*(5 if affine else 3).
    ptflops counts one MAC per element, two with affine.
    """
    return Cost(
        flops=2 * elements + channels * (5 if affine else 3),
        ptflops_macs=elements * (2 if affine else 1),
    )


def running_stats_update(channels: int) -> Cost:
    """Train-mode BatchNorm updates running mean and var: (1-m)*r + m*s, each 3 FLOPs,
    plus the unbiased-variance correction (1 multiply): 7 FLOPs per channel."""
    return Cost(flops=7 * channels)


def rms_norm(groups: int, group_size: int, *, weight: bool) -> Cost:
    """RMSNorm over ``groups`` rows of D: square D, mean D (D-1 adds + 1 divide),
    +eps 1, rsqrt 1, scale D -> 3D + 2 per row; a weight is D more multiplies.
    Equals the ops of the unfused implementation (pow, mean, add, rsqrt, mul, mul).
    ptflops has no rule for RMSNorm (nn.RMSNorm or written out): 0 in its view."""
    elements = groups * group_size
    return Cost(flops=groups * (3 * group_size + 2) + (elements if weight else 0))


def rms_norm_backward(elements: int, *, weight: bool, input_grad: bool, weight_grad: bool) -> Cost:
    """The gradients of RMSNorm, per element as the LayerNorm backward's: the input's
    6 (recompute x_hat = x*rstd 1, one row sum of g*x_hat 2, combine x_hat*c, subtract,
    times rstd 3), 7 with a weight (g*w 1); the weight's 2 (multiply by x_hat, accumulate)."""
    per_element = (6 + int(weight)) * int(input_grad) + 2 * int(weight_grad)
    return Cost(flops=elements * per_element)
