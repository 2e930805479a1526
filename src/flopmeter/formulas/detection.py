"""Detection ops (torchvision's ``nms`` and ``roi_align``). Pure functions of sizes.

Both follow torchvision's CPU kernels; the conventions are in docs/formulas.md.
"""

from __future__ import annotations

from math import ceil, log2

from ..cost import Cost
from .contraction import dot_products

# One pair of boxes in non-maximum suppression, as the kernel computes it:
# intersection corners 4 (max, max, min, min), width and height 2 subtracts + 2 clamps
# at 0, intersection 1 multiply, union 2 (area_i + area_j - inter), IoU 1 divide,
# the threshold test 1 comparison.
NMS_FLOPS_PER_PAIR = 13
# One box's area: (x2 - x1) * (y2 - y1).
NMS_FLOPS_PER_AREA = 3


def nms(boxes: int) -> Cost:
    """Non-maximum suppression of ``boxes`` boxes: sort the scores (n*ceil(log2 n)
    comparisons, the sort convention), the area of every box, then the IoU test of every
    pair i < j, n(n-1)/2 of them. That is the dense upper triangle the CUDA kernel
    computes; the CPU kernel skips boxes already suppressed, so for it this is the most
    work the call can do (which pairs it skips depends on the values)."""
    if boxes <= 0:
        return Cost()
    sort = boxes * ceil(log2(boxes)) if boxes > 1 else 0
    pairs = boxes * (boxes - 1) // 2
    return Cost(flops=sort + NMS_FLOPS_PER_AREA * boxes + NMS_FLOPS_PER_PAIR * pairs)


# The four bilinear weights of one sample point: ly = y - y_low, lx = x - x_low,
# hy = 1 - ly, hx = 1 - lx (4 subtracts) and w1..w4 = hy*hx, hy*lx, ly*hx, ly*lx (4).
ROI_ALIGN_FLOPS_PER_SAMPLE_POINT = 8
# One sample of one channel: w1*v1 + w2*v2 + w3*v3 + w4*v4 (4 multiplies, 3 adds) and
# its add into the bin's sum (1): the bin's S samples cost 8S - 1, its mean 1 divide more.
ROI_ALIGN_FLOPS_PER_SAMPLE = 8


def roi_align(rois: int, channels: int, bins: int, samples_per_bin: int) -> Cost:
    """RoIAlign: ``rois`` regions, each pooled to ``bins`` = PH*PW bins of ``channels``
    channels, each bin the mean of ``samples_per_bin`` bilinear samples. The sample
    weights are computed once per sample point and shared by all channels.
    Per output element 8S FLOPs; per sample point 8."""
    points = rois * bins * samples_per_bin
    outputs = rois * channels * bins
    return Cost(
        flops=outputs * ROI_ALIGN_FLOPS_PER_SAMPLE * samples_per_bin
        + points * ROI_ALIGN_FLOPS_PER_SAMPLE_POINT
    )


def roi_align_backward(rois: int, channels: int, bins: int, samples_per_bin: int) -> Cost:
    """The gradient of RoIAlign: each output gradient is divided by the bin's sample
    count (1), then each sample adds w1..w4 times it to its four input cells (4 multiplies,
    4 adds: 8); the sample weights cost 8 per sample point as in the forward.
    Per output-gradient element 8S + 1 FLOPs; per sample point 8."""
    points = rois * bins * samples_per_bin
    outputs = rois * channels * bins
    return Cost(
        flops=outputs * (ROI_ALIGN_FLOPS_PER_SAMPLE * samples_per_bin + 1)
        + points * ROI_ALIGN_FLOPS_PER_SAMPLE_POINT
    )


# Deformable convolution (torchvision.ops.deform_conv2d, DCNv1/v2). One sample point is a
# kernel tap at an output position in one offset group: its coordinates are the tap's grid
# position plus the learned offsets (2 adds) and its four bilinear weights cost 8, as
# RoIAlign's; shared by the channels of the group. Each sampled value (a column of the
# im2col matrix, one per input channel, tap and output position) is w1*v1 + ... + w4*v4 (7),
# times the mask with DCNv2 (1). The columns then meet the weight in one GEMM per group.
DEFORM_FLOPS_PER_SAMPLE_POINT = 2 + ROI_ALIGN_FLOPS_PER_SAMPLE_POINT
DEFORM_FLOPS_PER_SAMPLE = 7


# ptflops' DeformConv2d rule: the convolution's MACs + 24 per kernel tap and output position
# ("4 x 5 ... bilinear interpolation" and "4 ... fractional coordinates"), 25 with a mask.
PTFLOPS_DEFORM_PER_TAP_POSITION = 24


def deform_conv2d(
    outputs: int, length: int, columns: int, points: int, taps_positions: int, *, mask: bool, bias: bool
) -> Cost:
    """``outputs`` = N*C_out*Ho*Wo results, each a dot product of ``length`` = C_in/groups*K
    sampled values (+ the layer's bias: torchvision adds zeros when it has none, not
    counted); ``columns`` = N*C_in*K*Ho*Wo sampled values; ``points`` =
    N*offset_groups*K*Ho*Wo sample points; ``taps_positions`` = N*K*Ho*Wo (ptflops' rule).
    MACs as a convolution's."""
    gemm = dot_products(outputs, length, bias=bias)
    sampling = columns * (DEFORM_FLOPS_PER_SAMPLE + int(mask)) + points * DEFORM_FLOPS_PER_SAMPLE_POINT
    extra = (PTFLOPS_DEFORM_PER_TAP_POSITION + int(mask)) * taps_positions
    return Cost(macs=gemm.macs, flops=gemm.flops + sampling, ptflops_macs=gemm.ptflops_macs + extra)


def deform_conv2d_backward(
    out_channels: int,
    out_per_group: int,
    weights: int,
    positions: int,
    columns: int,
    points: int,
    *,
    mask: bool,
    bias: bool,
) -> Cost:
    """The five gradients, which torchvision's kernel always computes. ``positions`` =
    N*Ho*Wo, ``weights`` = the weight's elements, ``out_per_group`` = C_out/groups.
    Columns: weightᵀ·grad, ``columns`` dot products of C_out/groups. Input: each column's
    gradient (times the mask) spread over its 4 cells, w_i·g added: 8 (+1). Offsets: per
    column and coordinate the bilinear's derivative along it (a lerp of two neighbour
    differences, 5) times g, summed over the channels (2): 14 per column (+2 with the mask).
    Mask: the sample again (7) times g, summed (2): 9. Weight: the columns sampled again
    (7, +1) and one dot product per weight over the positions. Bias (the layer's): a sum
    per channel.
    The sample points' coordinates and weights (10 each) once. MACs: twice the forward's."""
    per_column = 8 + 14 + DEFORM_FLOPS_PER_SAMPLE + (1 + 2 + 9 + 1 if mask else 0)
    return (
        dot_products(columns, out_per_group)
        + dot_products(weights, positions)
        + Cost(flops=columns * per_column + points * DEFORM_FLOPS_PER_SAMPLE_POINT)
        + Cost(flops=out_channels * (positions - 1) if bias else 0)
    )
