"""Quantized and sparse contractions. Pure functions of shapes.

Integer MACs are MACs, but they are not floating point operations: a contraction
that multiplies integers (int8 x int8 -> int32) returns its MACs and 0 FLOPs, so an
int8 matmul is never passed off as FLOPs. Weight-only contractions (int8/int4
weights dequantized inside the kernel, float activations) compute in float and
count FLOPs the seed's way, like any float contraction.
"""

from __future__ import annotations

from ..cost import Cost
from . import contraction, recurrent


def integer_matmul(m: int, k: int, n: int) -> Cost:
    """(m x k) @ (k x n) in integers (int8 x int8 -> int32 accumulators):
    MACs = m*k*n; FLOPs = 0 (no floating point arithmetic). The requantizing bias add
    and rescale are integer/fixed-point work of the same kernel, not FLOPs either."""
    return Cost(macs=m * k * n, ptflops_macs=m * k * n)


def integer_conv(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    *,
    bias: bool,
    transposed: bool = False,
) -> Cost:
    """A quantized convolution: the MACs of the float conv formula
    (``contraction.conv``, groups included in the weight shape), 0 FLOPs."""
    dense = contraction.conv(input_shape, weight_shape, output_shape, bias=bias, transposed=transposed)
    return Cost(macs=dense.macs, ptflops_macs=dense.ptflops_macs)


def weight_only_matmul(m: int, k: int, n: int, *, bias: bool = False) -> Cost:
    """(m x k) float activations @ a (k x n) weight stored in fewer bits and widened
    inside the kernel: m*n dot products of length k in float.
    MACs = m*k*n; FLOPs = m*n*(2k-1), + m*n with a bias."""
    return contraction.dot_products(m * n, k, bias=bias)


def semi_structured_matmul(outputs: int, k: int, *, bias: bool = False, floating: bool = True) -> Cost:
    """A 2:4 sparse matmul: of every 4 weights along the reduction dim only 2 are
    stored and multiplied, so each of ``outputs`` dot products has k/2 terms.
    MACs = outputs*k/2; FLOPs = outputs*(2*(k/2) - 1) (+ outputs with a bias), 0 when
    the operands are integers."""
    cost = contraction.dot_products(outputs, k // 2, bias=bias)
    return cost if floating else Cost(macs=cost.macs, ptflops_macs=cost.ptflops_macs)


def dynamic_recurrent(
    mode: str,
    tokens: int,
    input_size: int,
    hidden: int,
    *,
    layers: int,
    directions: int,
    bias: bool,
    integer: bool,
) -> Cost:
    """A torch.ao dynamic quantized LSTM/GRU (``aten.quantized_lstm/gru``): the float
    cell's formula (``recurrent.recurrent_step``) per token, layer and direction, layer
    k > 0 reading ``hidden * directions`` features. With int8 weights the projections
    are ``quantized.linear_dynamic`` work: integer MACs, 0 FLOPs for them (bias
    included, as that op counts); the cell's gates stay float. fp16 weights: all float."""
    total = Cost()
    for layer in range(layers):
        size_in = input_size if layer == 0 else hidden * directions
        step = recurrent.recurrent_step(mode, size_in, hidden, bias=bias)
        if integer:
            step = Cost(
                macs=step.macs,
                flops=recurrent.CELL_POINTWISE[mode] * hidden,
                ptflops_macs=step.ptflops_macs,
            )
        total += step.scaled(tokens * directions)
    return total
