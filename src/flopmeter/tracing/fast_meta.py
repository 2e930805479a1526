"""Results of common aten ops built directly on meta, for ops whose meta kernels are
slow Python reference code (0.03-2 ms a call: hardswish, cat, max pooling, a permuted
``empty_like``). Each builder returns fresh meta tensors of exactly the shape, dtype and
layout the CPU kernel returns, or None to leave the call to the op's own kernel; the
tests (tests/test_fast_meta.py) compare every builder with torch's kernels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch._prims_common import compute_elementwise_output_strides

if TYPE_CHECKING:
    from .recorder import _OpFacts


# Shape-preserving floating-point ops whose meta kernels are slow Python decompositions
# (hardswish on meta costs ~2 ms a call): on meta their result is an empty tensor like
# the input, made here directly.
_UNARY_SAME_SHAPE = frozenset(
    "relu relu_ hardswish hardswish_ hardsigmoid hardsigmoid_ hardtanh hardtanh_ sigmoid sigmoid_ "
    "tanh tanh_ silu silu_ gelu gelu_ elu elu_ leaky_relu leaky_relu_ mish mish_ softplus".split()
)


_BINARY = frozenset("add add_ sub sub_ mul mul_ div div_".split())

FAST_META_OPS = (
    _UNARY_SAME_SHAPE
    | _BINARY
    | {
        "mm",
        "addmm",
        "bmm",
        "_softmax",
        "_safe_softmax",
        "_log_softmax",
        "native_layer_norm",
        "native_batch_norm",
        "_native_batch_norm_legit_no_training",
        "mean",
        "convolution",
        "cat",
        "max_pool2d_with_indices",
        "log_sigmoid_forward",
        "_grouped_mm",
    }
)


def _empty_like(tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.empty_like`` on meta without its Python reference implementation: a dense
    tensor's strides are kept as they are, which is what ``empty_like`` does."""
    if (
        tensor.is_contiguous()
        or tensor.is_contiguous(memory_format=torch.channels_last)
        or _non_overlapping_and_dense(tensor.shape, tensor.stride())
    ):
        return torch.empty_strided(tensor.shape, tensor.stride(), dtype=dtype or tensor.dtype, device="meta")
    return torch.empty_like(tensor, dtype=dtype, device="meta")


def _non_overlapping_and_dense(shape: torch.Size, stride: tuple[int, ...]) -> bool:
    """Whether the elements fill their memory exactly once in some order of the dims
    (a transposed or permuted contiguous tensor): then the CPU ``empty_like`` keeps the
    strides as they are. The dims sorted by stride, size-1 dims last, must have strides
    1, size0, size0*size1, ... (c10's check; torch exposes it to Python only as slow
    reference code)."""
    if len(shape) == 1:
        return shape[0] < 2 or stride[0] == 1
    required = 1
    for dim in sorted(range(len(shape)), key=lambda d: (shape[d] < 2, stride[d])):
        if shape[dim] < 2:
            return True
        if stride[dim] != required:
            return False
        required *= shape[dim]
    return True


def fast_meta(op: _OpFacts, args: tuple[Any, ...], tensors: list[torch.Tensor], checked: bool = False) -> Any:
    """The result of the op on all-meta floating inputs, for common ops whose meta
    kernels are slow (Python decompositions: 0.03-2 ms a call); None to run the op's own
    kernel. Results are fresh meta tensors of exactly the shape, dtype and layout the op
    returns; anything unusual (odd layouts, invalid shapes) is left to the op's kernel.
    ``checked``: the caller made sure every input is meta or a model weight read here
    only for its shape (the op then writes nothing)."""
    if not (checked or all(t.is_meta for t in tensors)) or not tensors[0].is_floating_point():
        return None
    name = op.short
    first = tensors[0]
    if name in _UNARY_SAME_SHAPE and len(tensors) == 1 and op.overload in ("default", ""):
        return first if name.endswith("_") else _empty_like(first)
    if name == "log_sigmoid_forward" and len(tensors) == 1:
        # (output, buffer): the CPU kernel writes both contiguous, whatever the input's layout
        return tuple(torch.empty(first.shape, dtype=first.dtype, device="meta") for _ in range(2))
    if name in _BINARY and len(args) >= 2 and isinstance(args[0], torch.Tensor):
        shape = _broadcast_shape(tensors)
        if shape is None:
            return None  # shapes that do not broadcast: the op's kernel raises
        if name.endswith("_"):
            return args[0] if args[0].shape == shape else None
        dtype = torch.result_type(args[0], args[1])
        if dtype != first.dtype and not dtype.is_floating_point:
            return None
        if first.shape == shape and (len(tensors) == 1 or all(t.is_contiguous() for t in tensors)):
            return _empty_like(first, dtype)
        if first.shape == shape:
            return torch.empty_like(first, dtype=dtype, device="meta")
        if all(t.is_contiguous() for t in tensors):
            return torch.empty(shape, dtype=dtype, device="meta")
        # broadcast from other layouts: TensorIterator lays the result out after the
        # inputs' strides (a permuted input gives a permuted sum), as torch's refs compute
        strides = compute_elementwise_output_strides(*(t.expand(shape) for t in tensors))
        return torch.empty_strided(shape, strides, dtype=dtype, device="meta")
    if name in ("mm", "addmm") and len(tensors) in (2, 3):
        a, b = tensors[-2], tensors[-1]
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0]:
            return torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device="meta")
    if name == "bmm" and len(tensors) == 2:
        a, b = tensors
        if a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0] and a.shape[2] == b.shape[1]:
            return torch.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=a.dtype, device="meta")
    if name in ("_softmax", "_safe_softmax", "_log_softmax") and len(tensors) == 1:
        half_to_float = len(args) > 2 and bool(args[2])  # the CPU/CUDA kernels write contiguous results
        return torch.empty(first.shape, dtype=torch.float32 if half_to_float else first.dtype, device="meta")
    if name == "native_layer_norm":
        axis = first.ndim - len(args[1])
        stats = torch.empty((*first.shape[:axis], *([1] * len(args[1]))), dtype=first.dtype, device="meta")
        return torch.empty(first.shape, dtype=first.dtype, device="meta"), stats, _empty_like(stats)
    if name == "native_batch_norm" or name == "_native_batch_norm_legit_no_training":
        training = bool(args[5]) if name == "native_batch_norm" else False
        stat_shape = (first.shape[1],) if training and first.ndim > 1 else (0,)
        low = first.dtype in (torch.float16, torch.bfloat16)
        stat = torch.empty(stat_shape, dtype=torch.float32 if low else first.dtype, device="meta")
        return _empty_like(first), stat, torch.empty(stat_shape, dtype=stat.dtype, device="meta")
    if name == "mean" and op.overload == "dim" and len(tensors) == 1:
        return _mean_on_meta(first, args)
    if name == "convolution" and len(tensors) in (2, 3):
        return _convolution_on_meta(args, tensors)
    if name == "cat" and op.overload == "default":
        return _cat_on_meta(args, tensors)
    if name == "max_pool2d_with_indices" and len(tensors) == 1:
        return _max_pool2d_on_meta(first, args)
    if name == "_grouped_mm":
        return _grouped_mm_on_meta(args)
    return None


def _grouped_mm_on_meta(args: tuple[Any, ...]) -> torch.Tensor | None:
    """A mixture of experts' grouped GEMM, rows (M, K) routed to experts (G, K, N): (M, N),
    contiguous, as the CPU kernel returns it. torch's meta kernel takes bfloat16 only (and
    float16 with cuBLASLt), so a float32 or float16 MoE could not be traced on meta at all."""
    a, b = args[0], args[1]
    other_out_dtype = len(args) > 4 and args[4] not in (None, a.dtype)  # left to the kernel's checks
    if a.ndim != 2 or b.ndim != 3 or a.shape[1] != b.shape[1] or a.dtype != b.dtype or other_out_dtype:
        return None
    return torch.empty((a.shape[0], b.shape[2]), dtype=a.dtype, device="meta")


def _plainly_contiguous(tensor: torch.Tensor) -> bool:
    """Contiguous, and not also laid out channels-last (then the kernels' choice of
    layout for the result is theirs to make)."""
    if not tensor.is_contiguous():
        return False
    if tensor.ndim == 4:
        return not tensor.is_contiguous(memory_format=torch.channels_last)
    if tensor.ndim == 5:
        return not tensor.is_contiguous(memory_format=torch.channels_last_3d)
    return True


def _cat_on_meta(args: tuple[Any, ...], tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """``cat(tensors, dim)`` of contiguous tensors of one dtype and rank that agree off
    ``dim``: a contiguous result whose ``dim`` is the sum of theirs."""
    parts = args[0]
    if not isinstance(parts, (list, tuple)) or len(parts) != len(tensors) or not tensors:
        return None
    first = tensors[0]
    ndim = first.ndim
    dim = args[1] if len(args) > 1 else 0
    if ndim == 0 or not isinstance(dim, int) or not -ndim <= dim < ndim:
        return None
    dim %= ndim
    before, after = first.shape[:dim], first.shape[dim + 1 :]
    total = 0
    for t in tensors:
        if t.ndim != ndim or t.dtype != first.dtype or not _plainly_contiguous(t):
            return None
        if t.shape[:dim] != before or t.shape[dim + 1 :] != after:
            return None
        total += t.shape[dim]
    return torch.empty((*before, total, *after), dtype=first.dtype, device="meta")


def _max_pool2d_on_meta(x: torch.Tensor, args: tuple[Any, ...]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``max_pool2d_with_indices`` of a contiguous (N, C, H, W) or (C, H, W) input:
    contiguous values and int64 indices of size
    out = floor_or_ceil((in + 2p - d(k-1) - 1) / s) + 1, less one if ceil mode would
    start the last window past the padded input."""
    if x.ndim not in (3, 4) or not _plainly_contiguous(x):
        return None
    kernel = args[1] if len(args) > 1 else None
    stride = args[2] if len(args) > 2 else []  # empty: the kernel size
    padding = args[3] if len(args) > 3 else [0]
    dilation = args[4] if len(args) > 4 else [1]
    ceil_mode = bool(args[5]) if len(args) > 5 else False
    pairs = []
    for value in (kernel, stride or kernel, padding, dilation):
        if not isinstance(value, (list, tuple)) or len(value) not in (1, 2):
            return None
        pairs.append((value[0], value[-1]))
    sizes = []
    for axis in range(2):
        size = x.shape[x.ndim - 2 + axis]
        k, s, p, d = (pair[axis] for pair in pairs)
        if k <= 0 or s <= 0 or d <= 0 or p < 0 or p > k // 2:
            return None
        out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (out - 1) * s >= size + p:
            out -= 1
        if out < 1:
            return None
        sizes.append(out)
    shape = (*x.shape[:-2], *sizes)
    return torch.empty(shape, dtype=x.dtype, device="meta"), torch.empty(
        shape, dtype=torch.int64, device="meta"
    )


def _broadcast_shape(tensors: list[torch.Tensor]) -> tuple[int, ...] | torch.Size | None:
    """The broadcast shape of the tensors (sizes aligned from the right; a size-1
    dimension stretches), or None if they do not broadcast. ``torch.broadcast_shapes``
    gives the same in Python reference code at ~30 us a call; most calls here have one
    shape."""
    shape = tensors[0].shape
    if all(t.shape == shape for t in tensors):
        return shape
    ndim = max(t.ndim for t in tensors)
    sizes = [1] * ndim
    for t in tensors:
        for axis, size in enumerate(t.shape, start=ndim - t.ndim):
            if size != 1:
                if sizes[axis] not in (1, size):
                    return None
                sizes[axis] = size
    return tuple(sizes)


def _mean_on_meta(x: torch.Tensor, args: tuple[Any, ...]) -> torch.Tensor | None:
    """``mean.dim(x, dims, keepdim)`` of a contiguous tensor: a contiguous result."""
    dims = args[1] if len(args) > 1 else None
    keepdim = bool(args[2]) if len(args) > 2 else False
    if not x.is_contiguous() or not isinstance(dims, (list, tuple)) or not dims or x.ndim == 0:
        return None
    reduced = {d % x.ndim for d in dims}
    shape = [1 if d in reduced else size for d, size in enumerate(x.shape) if keepdim or d not in reduced]
    return torch.empty(shape, dtype=x.dtype, device="meta")


def _convolution_on_meta(args: tuple[Any, ...], tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """A plain (not transposed) convolution of contiguous input and weight writes a
    contiguous (N, C_out, *spatial) result; out = (in + 2p - d(k-1) - 1) // s + 1."""
    x, weight = tensors[0], tensors[1]
    if len(args) < 9 or args[6] or x is not args[0] or weight is not args[1]:
        return None
    stride, padding, dilation, groups = args[3], args[4], args[5], args[8]
    x_shape, w_shape = x.shape, weight.shape
    spatial = len(w_shape) - 2
    if spatial < 1 or len(x_shape) != len(w_shape) or not (x.is_contiguous() and weight.is_contiguous()):
        return None  # aten.convolution takes batched input only; its kernel raises
    if not (len(stride) == len(padding) == len(dilation) == spatial):
        return None
    if x_shape[1] != w_shape[1] * groups or w_shape[0] % groups:
        return None
    sizes = [
        (size + 2 * pad - dil * (k - 1) - 1) // st + 1
        for size, pad, dil, k, st in zip(x_shape[2:], padding, dilation, w_shape[2:], stride, strict=True)
    ]
    if min(sizes) <= 0:
        return None
    shape = [x_shape[0], w_shape[0], *sizes]
    return torch.empty(shape, dtype=x.dtype, device="meta")


# Ops whose meta kernel gives the CUDA layout of some results when their integer inputs
# are on meta too (as a shapes-only run puts them); ``as_on_cpu`` gives the CPU's.
CPU_LAYOUT_OPS = frozenset({"_embedding_bag", "_embedding_bag_forward_only"})


def as_on_cpu(op: _OpFacts, args: tuple[Any, ...], out: Any) -> Any:
    """``out`` of a meta kernel (which ran its checks) with the results laid out as the
    CPU kernel lays them out. ``_embedding_bag``: (output, offset2bag, bag_size,
    max_indices); the CPU sizes offset2bag by the indices unless a plain sum takes the
    fast path (0), bag_size by the bags (by the offsets for a sum ``_forward_only``),
    max_indices like bag_size, or like the output in max mode (checked against the CPU
    kernel in tests/test_fast_meta.py)."""
    if op.short not in CPU_LAYOUT_OPS or not isinstance(out, tuple) or len(out) != 4 or len(args) < 3:
        return out
    weight, indices, offsets = args[0], args[1], args[2]
    mode = args[4] if len(args) > 4 else 0
    per_sample_weights = args[6] if len(args) > 6 else None
    include_last_offset = bool(args[7]) if len(args) > 7 else False
    padding_idx = args[8] if len(args) > 8 and args[8] is not None else -1
    output = out[0]
    fast_sum = (
        weight.dtype in (torch.float32, torch.float16, torch.bfloat16)  # bfloat16 too (probe 14)
        and weight.stride(1) == 1
        and output.stride(1) == 1
        and padding_idx < 0
        and (per_sample_weights is None or per_sample_weights.stride(0) == 1)
    )
    bags = offsets.shape[0] - (1 if include_last_offset else 0)
    offset2bag = (indices.shape[0],) if mode in (1, 2) or not fast_sum else (0,)
    forward_only_sum = op.short == "_embedding_bag_forward_only" and mode == 0
    bag_size = (offsets.shape[0],) if forward_only_sum else (bags,)
    max_indices = (bags, weight.shape[1]) if mode == 2 else bag_size
    return (
        output,
        *(
            torch.empty(shape, dtype=offsets.dtype, device="meta")
            for shape in (offset2bag, bag_size, max_indices)
        ),
    )
