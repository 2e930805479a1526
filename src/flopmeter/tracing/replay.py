"""Repeated calls of a whole function on meta tensors, answered from the first one.

A transformer calls ``F.multi_head_attention_forward`` once per layer with the same
shapes. On meta tensors its body (~40 aten ops, none of them recorded: the call is counted
whole) gives the same result every time: outputs of the same shapes, strides and dtypes,
and the same rise and fall of live activation memory. So within one shapes-only run, the
first call with a given signature runs for real, and a repeat gets fresh meta outputs laid
out alike and the same memory accounting, without running the body again.

Only pure functions are replayed (``REPLAYABLE``), only when every tensor argument is a
meta tensor or a model weight and no gradient will flow, and only when the first call's
memory is exactly its outputs once it returns (nothing else kept alive).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from .events import PLAIN_TYPES

# Functions whose result depends only on the shapes, strides, dtypes and values of their
# arguments (no state, no side effects).
REPLAYABLE = frozenset({torch.nn.functional.multi_head_attention_forward})


class _Layout(NamedTuple):
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype


class Replay(NamedTuple):
    """What a repeat needs: the outputs' layouts (a tuple of layouts and Nones, or one
    layout) and how far live memory rose above its level at the call during the body."""

    outputs: _Layout | tuple[_Layout | None, ...]
    peak_rise: int


def signature(
    args: tuple[Any, ...], kwargs: dict[str, Any], weights: dict[int, str]
) -> tuple[Any, ...] | None:
    """Everything the call's result can depend on, hashable; None when the call must run:
    an argument of another kind, a real tensor that is not a model weight (``weights``:
    id -> role), or a tensor a gradient would flow to."""
    grad = torch.is_grad_enabled()
    key: list[Any] = []
    for name, value in (*((None, a) for a in args), *kwargs.items()):
        kind = type(value)
        if kind in PLAIN_TYPES:
            part: Any = (kind, value)
        elif isinstance(value, torch.Tensor):
            if (not value.is_meta and id(value) not in weights) or (grad and value.requires_grad):
                return None
            part = (tuple(value.shape), value.stride(), value.dtype, weights.get(id(value)))
        else:
            return None
        key.append((name, part))
    return tuple(key)


def layouts(out: Any) -> _Layout | tuple[_Layout | None, ...] | None:
    """The layouts of a result that is one meta tensor or a tuple of meta tensors and
    Nones; None for anything else (not replayed)."""
    if isinstance(out, torch.Tensor):
        return _layout(out)
    if type(out) is not tuple:
        return None
    found: list[_Layout | None] = []
    for value in out:
        if value is None:
            found.append(None)
            continue
        layout = _layout(value) if isinstance(value, torch.Tensor) else None
        if layout is None:
            return None
        found.append(layout)
    return tuple(found)


def _layout(tensor: torch.Tensor) -> _Layout | None:
    if not tensor.is_meta or type(tensor) is not torch.Tensor:
        return None
    return _Layout(tuple(tensor.shape), tensor.stride(), tensor.dtype)


def rebuild(outputs: _Layout | tuple[_Layout | None, ...]) -> Any:
    """Fresh meta tensors laid out as ``outputs`` says, in the same structure."""
    if isinstance(outputs, _Layout):
        return _empty(outputs)
    return tuple(None if layout is None else _empty(layout) for layout in outputs)


def _empty(layout: _Layout) -> torch.Tensor:
    return torch.empty_strided(layout.shape, layout.stride, dtype=layout.dtype, device="meta")
