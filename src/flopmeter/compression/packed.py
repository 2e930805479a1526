"""torch.ao packed weights (``torch.ScriptObject``): their logical layout.

Quantized linear and conv modules keep their weight in a packed object that only
``unpack()`` opens. The quantized op formulas need the weight's shape (and a conv's
groups and direction); the compression view needs its bits, scales and nonzeros.
Both come from here, read once per profile before the trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class PackedLayout:
    """What one packed weight holds, in logical (unpacked) terms.

    ``weight_shape`` as the float module's weight; ``dtype``: qint8, quint8, quint4x2,
    float16 (dynamic fp16) or float32; ``scheme``: per_tensor, per_channel or none;
    ``n_scales``: scales stored (1 per tensor, C_out per channel); ``nonzero``: weights
    whose integer value differs from their zero point (None when not readable);
    ``scale_bytes``: the scales and zero points as torch stores them (per channel
    ``q_per_channel_scales()`` float64 and ``q_per_channel_zero_points()`` int64, per tensor
    a double and an int64: 16 B a scale), 0 for an unquantized (fp16) weight.
    """

    weight_shape: tuple[int, ...]
    has_bias: bool
    transposed: bool
    groups: int
    dtype: str
    scheme: str
    n_scales: int
    nonzero: int | None
    bias_numel: int
    scale_bytes: int = 0


def is_packed(value: Any) -> bool:
    """Whether ``value`` is a torch.ao packed-params object (linear or conv)."""
    return isinstance(value, torch.ScriptObject) and bool(value._has_method("unpack"))  # type: ignore[attr-defined]


def layout_of(packed: Any, dtype: torch.dtype | None = None) -> PackedLayout:
    """Open a packed object with ``unpack()``. ``dtype`` overrides the weight dtype (a
    dynamic fp16 linear unpacks to float32 but stores float16)."""
    return layout_and_nonzeros(packed, dtype)[0]


def layout_and_nonzeros(packed: Any, dtype: torch.dtype | None = None) -> tuple[PackedLayout, torch.Tensor]:
    """``layout_of`` and the weight's map of nonzeros (bool, the unpacked weight's shape:
    integer value != zero point), from which the view reads each output row's nonzeros,
    the all-zero input channels and an N:M pattern, as for a float weight."""
    unpacked = packed.unpack()
    weight, bias = unpacked[:2] if isinstance(unpacked, tuple) else (unpacked, None)
    transposed = bool(packed.transpose()) if packed._has_method("transpose") else False
    groups = int(packed.groups()) if packed._has_method("groups") else 1
    scheme, n_scales, nonzero, scale_bytes = "none", 0, None, 0
    if weight.is_quantized:
        if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            scales, zero = weight.q_per_channel_scales(), weight.q_per_channel_zero_points()
            scheme, n_scales = "per_channel", int(scales.numel())
            scale_bytes = scales.numel() * scales.element_size() + zero.numel() * zero.element_size()
            zero = zero.reshape([-1 if d == weight.q_per_channel_axis() else 1 for d in range(weight.dim())])
        else:
            scheme, n_scales = "per_tensor", 1
            scale_bytes = 8 + 8  # q_scale() a double, q_zero_point() an int64 (the quantizer's fields)
            zero = torch.tensor(weight.q_zero_point())
        nonzeros = weight.int_repr().to(torch.int32) != zero
    else:
        nonzeros = weight != 0
    nonzero = int(torch.count_nonzero(nonzeros))
    name = str(dtype or weight.dtype).removeprefix("torch.")
    return PackedLayout(
        weight_shape=tuple(weight.shape),
        has_bias=bias is not None,
        transposed=transposed,
        groups=groups,
        dtype=name,
        scheme=scheme,
        n_scales=n_scales,
        nonzero=nonzero,
        bias_numel=int(bias.numel()) if bias is not None else 0,
        scale_bytes=scale_bytes,
    ), nonzeros
