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
    covered: int | None = None,
) -> Cost:
    """N-d convolution (1d/2d/3d, grouped, dilated, strided), batch included.

    Regular: each of the N*C_o*prod(out_spatial) outputs is a dot product of length
    (C_i/groups)*prod(K): FLOPs = (2*C_i/groups*K^d - 1)*prod(out)*C_o*N, + outputs
    with bias. Dilation and stride change only the output size.

    Transposed: weight is (C_i, C_o/groups, *K); each input element is multiplied by
    C_o/groups*prod(K) weights and scattered, so MACs = N*C_i*prod(in_spatial)*
    C_o/groups*prod(K). Every product is added into some output: the adds are
    MACs - R, R = the outputs that receive a term (each one's first term needs no add),
    so FLOPs = 2*MACs - R, and 2*MACs with bias (one more add for each of those R; an
    output no product reaches is the bias alone). ``covered``: R, when not every output
    receives a term (``transposed_conv_covered``: output_padding, stride > kernel);
    None for all of them.
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
    reached = out_elems if covered is None else covered
    flops = 2 * macs if bias else max(2 * macs - reached, 0)
    return Cost(macs=macs, flops=flops, ptflops_macs=macs + (out_elems if bias else 0))


def transposed_conv_covered(
    output_shape: tuple[int, ...],
    input_spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
) -> int:
    """How many outputs of a transposed conv receive at least one product. Along each
    spatial dim, input i and kernel tap j write output i*stride - padding + j*dilation;
    an output is reached when each of its coordinates is, so the count is N*C_o times
    the product over dims of the positions in [0, out) that some (i, j) writes. With
    output_padding (or stride > dilation*(kernel-1)+1) some positions get nothing:
    ConvTranspose2d(k=3, s=2) on 5x5 with output_padding=1 writes rows 0..10 of 12."""
    reached = prod(output_shape[:2])
    spatial = output_shape[2:]
    for length_out, length_in, k, s, p, d in zip(
        spatial, input_spatial, kernel, stride, padding, dilation, strict=True
    ):
        if d == 1 and s <= k:  # each input's taps reach the next one's: one run of positions
            first, last = -p, (length_in - 1) * s - p + k - 1
            reached *= max(0, min(last, length_out - 1) - max(first, 0) + 1)
        else:
            reached *= sum(1 for hits in scatter_hits(length_out, length_in, k, s, p, d) if hits)
    return reached


def scatter_hits(
    length_out: int, length_in: int, kernel: int, stride: int, padding: int, dilation: int
) -> list[int]:
    """Along one dim of a scatter (a transposed conv, col2im), how many (input i, tap j)
    pairs land on each output position o = i*stride - padding + j*dilation in [0, length_out)."""
    hits = [0] * length_out
    for i in range(max(length_in, 0)):
        for j in range(kernel):
            o = i * stride - padding + j * dilation
            if 0 <= o < length_out:
                hits[o] += 1
    return hits


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


def trilinear(shapes: list[tuple[int, ...]], summed: list[int]) -> Cost:
    """``aten._trilinear`` (nn.Bilinear and each of its gradients): three tensors broadcast
    to one shape P (each already unsqueezed at its expand dims), multiplied and summed
    over the ``summed`` dims: the cheapest pair's products first (FLOPs
    only: the outer products x1_i*x2_j in the forward), then one dot product per output of
    length prod(P's summed dims). MACs = prod(P). Forward: P = B x O x I1 x I2, the
    same numbers as y_o = x1ᵀ A_o x2 counted as B·I1·I2 outer products, then B·O dot
    products of I1·I2 terms.
    """
    full = [max(sizes) for sizes in zip(*shapes, strict=True)]
    length = prod(full[d] for d in summed)
    pair = min(
        prod(max(a, b) for a, b in zip(shapes[i], shapes[j], strict=True))
        for i, j in ((0, 1), (0, 2), (1, 2))
    )
    contraction = dot_products(prod(full) // length if length else 0, length)
    return Cost(macs=contraction.macs, flops=pair + contraction.flops, ptflops_macs=contraction.ptflops_macs)
