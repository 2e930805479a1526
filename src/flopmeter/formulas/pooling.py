"""Pooling and resampling. Pure functions of sizes.

Every window is taken as full (padding cells counted like real ones).
"""

from __future__ import annotations

from math import ceil, floor, prod

from ..cost import Cost
from . import contraction


def max_pool(outputs: int, window: int, *, input_elements: int) -> Cost:
    """Max over a window of ``window`` cells: window-1 comparisons per output.
    ptflops counts one MAC per input element."""
    return Cost(flops=outputs * max(window - 1, 0), ptflops_macs=input_elements)


def avg_pool(outputs: int, window: int, *, input_elements: int) -> Cost:
    """Average of ``window`` cells: window-1 adds + 1 divide = window per output.
    ptflops counts one MAC per input element."""
    return Cost(flops=outputs * window, ptflops_macs=input_elements)


def adaptive_windows(in_sizes: tuple[int, ...], out_sizes: tuple[int, ...]) -> tuple[int, int]:
    """(sum over outputs of window size, number of outputs) for adaptive pooling.

    Output i of a dimension of size I -> O pools cells floor(i*I/O) .. ceil((i+1)*I/O)-1;
    windows are separable, so the total is the product over dimensions of the sums.
    """
    total = 1
    for size_in, size_out in zip(in_sizes, out_sizes, strict=True):
        total *= sum(
            ceil((i + 1) * size_in / size_out) - floor(i * size_in / size_out) for i in range(size_out)
        )
    return total, prod(out_sizes)


def adaptive_hits(in_size: int, out_size: int) -> list[int]:
    """Along one dim of an adaptive pool, how many output windows read each input cell."""
    hits = [0] * in_size
    for i in range(out_size):
        for cell in range(floor(i * in_size / out_size), ceil((i + 1) * in_size / out_size)):
            hits[cell] += 1
    return hits


def avg_pool_backward(planes: int, outputs: int, hits: list[list[int]]) -> Cost:
    """The gradient of average pooling for ``planes`` = N*C planes of ``outputs`` windows:
    each output gradient divided by its window's divisor once (1), then every input cell
    sums the shares of the windows that read it (hits per cell, one list per dim:
    separable): per plane ∏ Σ hits - ∏ #{cells hit} adds (a cell's first share needs no
    add, as in fold_sums). Non-overlapping windows: the divides only."""
    terms = covered = 1
    for dim_hits in hits:
        terms *= sum(dim_hits)
        covered *= sum(1 for h in dim_hits if h)
    return Cost(flops=planes * (outputs + terms - covered))


def adaptive_pool(
    channels: int,
    in_sizes: tuple[int, ...],
    out_sizes: tuple[int, ...],
    *,
    kind: str,
) -> Cost:
    """Adaptive average (window FLOPs per output) or max (window-1) pooling, exactly,
    for ``channels`` = N*C planes. ptflops counts one MAC per input element."""
    cells, outputs = adaptive_windows(in_sizes, out_sizes)
    per_plane = cells if kind == "avg" else cells - outputs
    return Cost(flops=channels * per_plane, ptflops_macs=channels * prod(in_sizes))


# FLOPs per output element of each interpolation mode: a linear interpolation
# a + t*(b - a) is 3 FLOPs; bilinear is 3 of them, trilinear 7; bicubic is 5 cubic
# interpolations of 4 points (4 multiplies, 3 adds = 7 each), tricubic (ONNX's 3-d cubic
# GridSample) 16 + 4 + 1 = 21 of them; nearest only copies.
INTERPOLATION_PER_OUTPUT = {
    "nearest": 0,
    "nearest_exact": 0,
    "linear": 3,
    "bilinear": 9,
    "trilinear": 21,
    "bicubic": 35,
    "tricubic": 147,
}


# grid_sample: a normalised coordinate x in [-1, 1] to a cell index, ((x + 1) * size - 1) / 2
# (align_corners: (x + 1) / 2 * (size - 1)): 3 FLOPs.
GRID_UNNORMALIZE_PER_COORDINATE = 3


def grid_interpolation(family: str, dims: int) -> str:
    """The interpolation a grid sample of ``dims`` sampled dims runs per output, for a mode
    ``family`` ("linear", "cubic" or "nearest"): linear is bilinear over 2 dims and
    trilinear over 3, cubic bicubic and tricubic (ONNX's 3-d cubic GridSample)."""
    if family == "linear":
        return {1: "linear", 3: "trilinear"}.get(dims, "bilinear")
    if family == "cubic":
        return "tricubic" if dims == 3 else "bicubic"
    return "nearest"


def grid_sample(outputs: int, coordinates: int, mode: str) -> Cost:
    """grid_sample to ``outputs`` = N*C*out elements from a grid of ``coordinates`` =
    points * d values: the mode's interpolation per output (as ``interpolate``), and 3 per
    coordinate to un-normalise it (shared by the channels). The padding modes' clamps
    and reflections are not counted."""
    return Cost(
        flops=outputs * INTERPOLATION_PER_OUTPUT[mode] + coordinates * GRID_UNNORMALIZE_PER_COORDINATE
    )


# The backward of interpolation: each output gradient g adds w*g to each of its taps
# (1 multiply + 1 add per tap); linear 2 taps, bilinear 4, trilinear 8, bicubic 16.
INTERPOLATION_BACKWARD_PER_OUTPUT = {"linear": 4, "bilinear": 8, "trilinear": 16, "bicubic": 32}


def interpolate(outputs: int, mode: str) -> Cost:
    """Resampling to ``outputs`` elements. ptflops counts one MAC per output element."""
    return Cost(flops=outputs * INTERPOLATION_PER_OUTPUT[mode], ptflops_macs=outputs)


# Taps of the antialiasing filters (torch's interp_size): bilinear's triangle spans 2
# input cells, bicubic's cubic 4, widened by the scale when downsampling.
def nearest_sources(in_size: int, out_size: int, scale: float | None, *, exact: bool) -> int:
    """How many of ``in_size`` cells nearest-neighbour resampling to ``out_size`` reads:
    output i reads floor(i * s) (floor((i + 0.5) * s) for nearest-exact), s = 1/scale when
    a scale was given, else in/out; clamped to the last cell."""
    step = 1.0 / scale if scale else in_size / out_size
    offset = 0.5 if exact else 0.0
    return len({min(int((i + offset) * step), in_size - 1) for i in range(out_size)})


def upsample_nearest_backward(planes: int, out_sizes: tuple[int, ...], hit_sizes: tuple[int, ...]) -> Cost:
    """Each input gradient is the sum of the output gradients that copied it: with O
    output cells per plane and H input cells read (H = the product of each dimension's
    cells read), O - H adds per plane."""
    outputs = hit = 1
    for out_size, read in zip(out_sizes, hit_sizes, strict=True):
        outputs *= out_size
        hit *= read
    return Cost(flops=planes * (outputs - hit))


ANTIALIAS_INTERP_SIZE = {"bilinear": 2, "bicubic": 4}


def antialias_taps(in_size: int, out_size: int, scale: float, interp_size: int) -> list[int]:
    """Input cells each output of one dimension weighs with ``antialias=True``: the
    filter's support is interp_size/2, times ``scale`` (input cells per output) when
    downsampling; output i, centred at scale*(i + 0.5), reads the cells from
    max(int(centre - support + 0.5), 0) to min(int(centre + support + 0.5), in_size)."""
    support = interp_size / 2 * (scale if scale >= 1.0 else 1.0)
    taps = []
    for i in range(out_size):
        centre = scale * (i + 0.5)
        low = max(int(centre - support + 0.5), 0)
        high = min(int(centre + support + 0.5), in_size)
        taps.append(max(high - low, 0))
    return taps


def antialiased_interpolate(
    planes: int,
    in_sizes: tuple[int, ...],
    out_sizes: tuple[int, ...],
    scales: tuple[float, ...],
    mode: str,
    *,
    backward: bool = False,
) -> Cost:
    """``antialias=True`` resampling: separable passes, the last dimension first; each
    output of a pass is a weighted sum of its taps (taps multiplies + taps-1 adds). A
    dimension whose size does not change is not resampled. (The weights, computed once
    per output index and shared by every plane and row, are not counted, as for the
    plain modes.) The backward is not separable in torch's kernel: each output gradient
    adds w_y*w_x*g to every one of its taps_h*taps_w input cells, 2 per cell as the plain
    modes' backward (every dimension's taps, a same-size one too). ptflops counts one MAC
    per output element."""
    if backward:
        cells = prod(
            sum(antialias_taps(i, o, s, ANTIALIAS_INTERP_SIZE[mode]))
            for i, o, s in zip(in_sizes, out_sizes, scales, strict=True)
        )
        return Cost(flops=planes * 2 * cells, ptflops_macs=planes * prod(out_sizes))
    current = list(in_sizes)
    flops = 0
    for dim in reversed(range(len(in_sizes))):
        if in_sizes[dim] == out_sizes[dim]:
            continue
        taps = antialias_taps(in_sizes[dim], out_sizes[dim], scales[dim], ANTIALIAS_INTERP_SIZE[mode])
        current[dim] = out_sizes[dim]
        rows = prod(current) // out_sizes[dim]  # the other dimensions at this pass
        flops += rows * sum(2 * t - 1 for t in taps if t > 0)
    return Cost(flops=planes * flops, ptflops_macs=planes * prod(out_sizes))


# grid_sample's backward, per channel-output gradient g (the derivative of the forward's
# lerp form above):
# - the input's gradient: g added to each tap cell with its weight, 2 per tap, as the
#   upsample backward (nearest: one add to the one cell read);
# - the grid's gradient, per coordinate: the derivative of the interpolation along it,
#   times g (1), summed over the channels (1). Bilinear: a linear interpolation (3) of the
#   2 neighbour differences (2) = 5, + 2 = 7 per coordinate, 14 for 2 (torch's CPU kernel:
#   gx += ((ne - nw)*s + (se - sw)*n) * g); trilinear: a bilinear interpolation (9) of 4
#   differences (4) = 13, + 2 = 15, 45 for 3; bicubic: the forward's 35 with one axis's
#   cubic weights replaced by their derivatives, + 2 = 37, 74 for 2; nearest: 0 (torch
#   returns zeros).
GRID_INPUT_GRAD_PER_OUTPUT = {"nearest": 1, **INTERPOLATION_BACKWARD_PER_OUTPUT}
GRID_GRID_GRAD_PER_OUTPUT = {"nearest": 0, "bilinear": 14, "trilinear": 45, "bicubic": 74}
# the grid's gradient through the un-normalising: one multiply per coordinate
GRID_CHAIN_PER_COORDINATE = 1


def grid_sample_backward(
    outputs: int, coordinates: int, mode: str, *, input_grad: bool, grid_grad: bool
) -> Cost:
    """The backward of grid_sample for ``outputs`` = N*C*out output gradients and
    ``coordinates`` = grid elements (points * d): per coordinate the forward's
    un-normalising (3), + 1 with the grid's gradient (the chain rule through it); per
    output gradient the input's and the grid's parts above, each when asked for. (The
    weights shared by the channels are not counted, as in the forward.)"""
    per_output = (GRID_INPUT_GRAD_PER_OUTPUT[mode] if input_grad else 0) + (
        GRID_GRID_GRAD_PER_OUTPUT[mode] if grid_grad else 0
    )
    per_coordinate = GRID_UNNORMALIZE_PER_COORDINATE + (
        GRID_CHAIN_PER_COORDINATE if grid_grad and mode != "nearest" else 0
    )
    return Cost(flops=outputs * per_output + coordinates * per_coordinate)


def padding_backward(output_gradients: int, input_elements: int) -> Cost:
    """The backward of reflection and replication padding: each padded cell's gradient
    is added to the input cell it copied (a reflected or the edge one): one add per
    padded cell, output gradients - input elements (0 when nothing was padded)."""
    return Cost(flops=max(output_gradients - input_elements, 0))


def fold_sums(
    planes: int,
    out_sizes: tuple[int, ...],
    kernel: tuple[int, ...],
    dilation: tuple[int, ...],
    padding: tuple[int, ...],
    stride: tuple[int, ...],
) -> Cost:
    """col2im (``F.fold``, and ``F.unfold``'s backward): every block's value is added at
    its place in the output; places in the padding are dropped. Per dimension, position
    p receives the (block l, kernel offset k) with l*stride + k*dilation - padding = p;
    the dimensions are separable, so per plane the adds are ∏ Σ_p hits(p) - ∏ #{p hit}
    (each covered position's first value needs no add)."""
    terms = covered = 1
    for size, k, d, pad, s in zip(out_sizes, kernel, dilation, padding, stride, strict=True):
        blocks = (size + 2 * pad - d * (k - 1) - 1) // s + 1
        hits = contraction.scatter_hits(size, blocks, k, s, pad, d)  # the transposed conv's geometry
        terms *= sum(hits)
        covered *= sum(1 for h in hits if h)
    return Cost(flops=planes * (terms - covered))
