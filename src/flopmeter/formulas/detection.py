"""Detection ops (torchvision's ``nms`` and ``roi_align``). Pure functions of sizes.

Both follow torchvision's CPU kernels; the conventions are in docs/formulas.md.
"""

from __future__ import annotations

from math import ceil, log2

from ..cost import Cost

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
