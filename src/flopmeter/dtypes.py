"""Bits per element of a dtype, by name: one table for torch and ONNX names alike."""

from __future__ import annotations

from typing import Any

# Names whose width is not in the name: floating, quantized, bool.
_BITS = {
    "float64": 64,
    "float32": 32,
    "float16": 16,
    "bfloat16": 16,
    "qint8": 8,
    "quint8": 8,
    "qint32": 32,
    "quint4x2": 4,
    "quint2x4": 2,
    "bool": 1,
}


def dtype_bits(dtype: Any) -> int | None:
    """Bits per value of a dtype (``torch.int4`` and ONNX "int4" -> 4, ``float8_e4m3fn``
    and "float8e4m3fn" -> 8, "float4e2m1" -> 4), or None for a name not known here."""
    name = str(dtype).removeprefix("torch.")
    if name in _BITS:
        return _BITS[name]
    for prefix in ("float8", "float4"):
        if name.startswith(prefix):
            return int(prefix[len("float") :])
    for prefix in ("uint", "int"):
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            return int(name[len(prefix) :])
    return None
