"""Contractions: convolution and matrix products. Pure functions of shapes.

Convention (the seed article's): an output element that is a dot product of length
n costs n multiplications and n-1 additions; a bias adds one more addition. So a
contraction with M outputs of length n costs ``M*(2n-1)`` FLOPs, ``M*2n`` with bias,
and ``M*n`` MACs either way.
"""

from __future__ import annotations

from math import prod

from ..cost import Cost


def dot_products(outputs: int, length: int, bias: bool = False) -> Cost:
    """``outputs`` dot products of ``length`` terms each.

    FLOPs = outputs * (2*length - 1), plus ``outputs`` if a bias is added.
    MACs = outputs * length. ptflops counts MACs plus one per bias add.
    """
    if outputs == 0 or length == 0:
        return Cost(flops=outputs if bias else 0, ptflops_macs=outputs if bias else 0)
    bias_adds = outputs if bias else 0
    return Cost(
        macs=outputs * length,
        flops=outputs * (2 * length - 1) + bias_adds,
        ptflops_macs=outputs * length + bias_adds,
    )


def conv(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    *,
    bias: bool,
    transposed: bool = False,
    groups: int = 1,
) -> Cost:
    """N-d convolution (1d/2d/3d, grouped, dilated, strided), batch included.

    Regular: each of the N*C_o*prod(out_spatial) outputs is a dot product of length
    (C_i/groups)*prod(K): FLOPs = (2*C_i/groups*K^d - 1)*prod(out)*C_o*N, + outputs
    with bias. Dilation and stride change only the output size.

    Transposed: weight is (C_i, C_o/groups, *K); each input element is multiplied by
    C_o/groups*prod(K) weights and scattered, so MACs = N*C_i*prod(in_spatial)*
    C_o/groups*prod(K). Every product is added into some output: the adds are
    MACs - outputs (each output's first term needs no add), so FLOPs = 2*MACs -
    outputs (+ outputs with bias), assuming every output receives a term.
    """
    out_elems = prod(output_shape)
    kernel = prod(weight_shape[2:])
    if not transposed:
        in_per_group = weight_shape[1]
        return dot_products(out_elems, in_per_group * kernel, bias=bias)
    c_in = weight_shape[0]
    out_per_group = weight_shape[1]
    batch, in_spatial = input_shape[0], prod(input_shape[2:])
    macs = batch * c_in * in_spatial * out_per_group * kernel
    bias_adds = out_elems if bias else 0
    flops = max(2 * macs - out_elems, 0) + bias_adds
    return Cost(macs=macs, flops=flops, ptflops_macs=macs + bias_adds)


def matmul(batch: int, m: int, k: int, n: int, *, bias_adds: int = 0, extra_scalings: int = 0) -> Cost:
    """``batch`` products of (m x k) @ (k x n): batch*m*n dot products of length k.

    FLOPs = batch*m*n*(2k-1) + bias_adds + extra_scalings (alpha/beta multiplies).
    ptflops counts MACs plus the bias tensor's elements (``bias_adds`` here).
    """
    base = dot_products(batch * m * n, k)
    return Cost(
        macs=base.macs,
        flops=base.flops + bias_adds + extra_scalings,
        ptflops_macs=base.macs + bias_adds,
    )


def bilinear(batch: int, in1: int, in2: int, out: int, *, bias: bool) -> Cost:
    """y_o = x1^T A_o x2 + b_o, for each of ``batch`` rows and ``out`` features.

    Computed as (x1 outer x2) contracted with A: in1*in2 products x1_i*x2_j per row,
    then per output a dot product of length in1*in2 with A_o.
    FLOPs = batch*in1*in2 + batch*out*(2*in1*in2 - 1) + batch*out (bias).
    MACs = batch*out*in1*in2 (the outer products are counted as FLOPs only).
    """
    outer = batch * in1 * in2
    contraction = dot_products(batch * out, in1 * in2, bias=bias)
    return Cost(
        macs=contraction.macs,
        flops=outer + contraction.flops,
        ptflops_macs=contraction.ptflops_macs,
    )
