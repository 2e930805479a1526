"""Each distinct op call costed once per profile.

A model repeats its ops: a 12-layer encoder runs each of its ops 12 times with the same
shapes, a CNN runs the same convolution in every block of a stage. The built-in formulas
(``registry.cost_of``) read nothing but the event's op, arguments and outputs, so two
calls that agree on those cost the same: ``CostMemo`` works each out once and hands the
same result to the repeats. (User formulas are not memoized: they may keep state.)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from . import registry
from .cost import Cost
from .registry import CountOptions
from .tracing.events import OpEvent, TensorMeta


class Counted(NamedTuple):
    """What the report needs of one op call: its cost (None: no formula), the dtype it
    computes in and the shapes of its tensor inputs."""

    cost: Cost | None
    dtype: str
    shapes: tuple[tuple[int, ...], ...]


class CostMemo:
    """``registry.cost_of`` with the dtype and input shapes, once per distinct call."""

    def __init__(self, options: CountOptions) -> None:
        self._options = options
        self._known: dict[tuple[Any, ...], Counted] = {}

    def count(self, event: OpEvent) -> Counted:
        key = signature(event)
        if key is not None:
            try:
                found = self._known.get(key)
            except TypeError:  # an unhashable value inside a shape
                key, found = None, None
            if found is not None:
                return found
        counted = Counted(
            registry.cost_of(event, self._options),
            compute_dtype(event),
            tuple([t.shape for t in event.tensor_inputs()]),
        )
        if key is not None:
            self._known[key] = counted
        return counted


class _Unlisted(Exception):
    """A value ``signature`` does not know how to compare (an opaque object)."""


def signature(event: OpEvent) -> tuple[Any, ...] | None:
    """A hashable description of everything a built-in formula can read of ``event``
    (op, overload, arguments, outputs); None when an argument is something else than a
    TensorMeta, number, string, None or a list/tuple of these (a packed weight object,
    whose formula looks it up by identity)."""
    try:
        kwargs = event.kwargs
        described = _frozen(kwargs.values()) + tuple(kwargs) if kwargs else ()
        return (event.op, event.overload, event.outputs, _frozen(event.args), described)
    except _Unlisted:
        return None


def _frozen(values: Any) -> tuple[Any, ...]:
    """``values`` as one flat tuple in which equal means the same to a formula: each
    number and list comes after its type (``1``, ``1.0`` and ``True`` are equal in
    Python, a list and a tuple of the same items too; a formula may tell them apart)."""
    key: list[Any] = []
    for value in values:
        kind = type(value)
        if kind is TensorMeta or kind is str or value is None:
            key.append(value)
        elif kind is int or kind is float or kind is bool:
            key.append(kind)
            key.append(value)
        elif kind is list or kind is tuple:
            key.append(kind)
            key.append(_frozen(value))
        else:
            raise _Unlisted
    return tuple(key)


def compute_dtype(event: OpEvent) -> str:
    """The dtype an op computes in: its first floating input's, else its output's."""
    for tensor in event.tensor_inputs():
        if tensor.is_floating:
            return tensor.dtype
    return event.outputs[0].dtype if event.outputs else "float32"
