"""Gradients of ``embedding_bag`` (nn.EmbeddingBag: recommenders, fastText-style text
models). Pure functions of sizes; the forward's formula is in registry.py.
"""

from __future__ import annotations

from ..cost import Cost
from .contraction import dot_products

SUM, MEAN, MAX = 0, 1, 2


def embedding_bag_backward(
    bags: int, width: int, gathered: int, *, mode: int, weighted: bool, sparse: bool
) -> Cost:
    """The weight gradient of ``bags`` bags of ``width`` D over ``gathered`` looked-up rows n.

    A mean's gradient g / size is computed once per bag (B*D divides); ``per_sample_weights``
    multiply each gathered row's gradient (n*D). A dense gradient then adds each gathered
    row's gradient into its weight row (n*D adds; max mode only the bag's argmax row: B*D);
    a sparse one keeps the rows apart (no adds). ``scale_grad_by_freq`` and ``padding_idx``
    depend on values and are not counted (as for ``embedding``)."""
    flops = bags * width if mode == MEAN else 0
    if weighted:
        flops += gathered * width
    if not sparse:
        flops += (bags if mode == MAX else gathered) * width
    return Cost(flops=flops)


def per_sample_weights_backward(gathered: int, width: int) -> Cost:
    """The gradient of each per-sample weight: its bag's gradient dotted with the row it
    scaled, one dot product of D per gathered row."""
    return dot_products(gathered, width)


def embedding_renorm(rows: int, width: int) -> Cost:
    """``nn.Embedding(max_norm=...)``: each looked-up row's p-norm (D powers, D-1 adds, a
    root: 2D), compared with max_norm (1), and when above it scaled by
    max_norm / (norm + 1e-7) (2, then D multiplies): 3D + 3 per row. Which rows are above
    depends on values, and repeated indices are renormed once: ``rows`` = the indices
    looked up, the most the call does."""
    return Cost(flops=rows * (3 * width + 3))
