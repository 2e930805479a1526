"""ONNX sequences: the elements of a sequence value, followed through the ops that build one
(SequenceConstruct, SequenceEmpty, SequenceInsert, SequenceErase, SplitToSequence), so the ops
that read one (ConcatFromSequence, SequenceAt, SequenceLength) get the shapes ONNX's own
inference cannot give: a sequence type has an element type but no length, so it leaves
ConcatFromSequence's axis unknown. A sequence made any other way (a Loop's scan output,
SequenceMap) or from a value known only at run time (SplitToSequence's ``split`` a graph
input) has no known elements; what reads it stays unknown, and the error says why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .shapes import GraphTypes, ValueType

# the ops whose output is a sequence flopmeter follows
BUILDERS = frozenset(
    {"SequenceConstruct", "SequenceEmpty", "SequenceInsert", "SequenceErase", "SplitToSequence"}
)


@dataclass(frozen=True)
class Item:
    """One element of a sequence: the tensor put in (``name``; None for a split's piece)."""

    name: str | None
    type: ValueType


def follow(node: Any, result: GraphTypes) -> dict[str, ValueType]:
    """Record the elements of ``node``'s sequence output (``result.sequence_items``) when its
    inputs determine them; return the tensor types of a reading op's outputs that the elements
    of its sequence input determine ({} otherwise)."""
    op = node.op_type
    if op in BUILDERS:
        items = _built(node, result)
        if items is not None and node.output and node.output[0]:
            result.sequence_items[node.output[0]] = items
        return {}
    items = result.sequence_items.get(node.input[0]) if node.input else None
    if items is None or not node.output or not node.output[0]:
        return {}
    if op == "ConcatFromSequence":
        concat = _concat(node, items)
        return {node.output[0]: concat} if concat is not None else {}
    if op == "SequenceAt":
        index = _position(node, result, 1, len(items))
        return {node.output[0]: items[index].type} if index is not None and index < len(items) else {}
    if op == "SequenceLength":
        import numpy as np

        from .shapes import ValueType

        result.values[node.output[0]] = np.array(len(items), dtype=np.int64)
        return {node.output[0]: ValueType(7, ())}  # an int64 scalar
    return {}


def known(result: GraphTypes, name: str) -> bool:
    """Whether the sequence ``name``'s elements, and each one's shape, are known."""
    items = result.sequence_items.get(name)
    return items is not None and all(item.type.static for item in items)


def _built(node: Any, result: GraphTypes) -> list[Item] | None:
    op, inputs = node.op_type, list(node.input)
    if op == "SequenceEmpty":
        return []
    if op == "SequenceConstruct":
        types = [result.types.get(name) for name in inputs]
        return (
            [Item(n, t) for n, t in zip(inputs, types, strict=True) if t is not None] if all(types) else None
        )
    if op == "SplitToSequence":
        return _split(node, result)
    items = result.sequence_items.get(inputs[0]) if inputs else None
    if items is None:
        return None
    if op == "SequenceInsert":
        tensor = result.types.get(inputs[1]) if len(inputs) > 1 else None
        # position in [-n, n] of the n elements: a negative one counts from n (-1: before the
        # last, as onnxruntime and ONNX's reference ``list.insert``), n (or none) appends
        at = _position(node, result, 2, len(items), end=len(items))
        return None if tensor is None or at is None else [*items[:at], Item(inputs[1], tensor), *items[at:]]
    at = _position(node, result, 1, len(items))  # SequenceErase
    return None if at is None or at >= len(items) else [*items[:at], *items[at + 1 :]]


def _position(node: Any, result: GraphTypes, index: int, size: int, end: int | None = None) -> int | None:
    """The non-negative position given by input ``index`` of a sequence of ``size``
    elements (a negative one counts from ``size``); absent, ``end`` (the last element,
    ``size - 1``, unless given: SequenceInsert's ``size`` appends). None when its value is
    not known or out of range (``[0, size)``, and ``end`` itself)."""
    last = max(size - 1, 0) if end is None else end
    inputs = list(node.input)
    if len(inputs) <= index or not inputs[index]:
        return last
    value = result.values.get(inputs[index])
    if value is None or value.size != 1:
        return None
    at = int(value.reshape(-1)[0])
    at = at + size if at < 0 else at
    return at if 0 <= at < size or at == last else None


def _split(node: Any, result: GraphTypes) -> list[Item] | None:
    from .shapes import ValueType

    source = result.types.get(node.input[0])
    if source is None or not source.static or source.shape is None:
        return None
    shape = [int(d) for d in source.shape]
    attrs = {a.name: a.i for a in node.attribute}
    axis = attrs.get("axis", 0) % max(len(shape), 1)
    total = shape[axis]
    if len(node.input) > 1 and node.input[1]:
        split = result.values.get(node.input[1])
        if split is None:
            return None
        if split.ndim == 0:  # pieces of that size, the last one shorter
            step = int(split)
            sizes = [min(step, total - start) for start in range(0, total, step)] if step > 0 else []
        else:
            sizes = [int(s) for s in split.reshape(-1)]
        pieces = [tuple(shape[:axis] + [size] + shape[axis + 1 :]) for size in sizes]
    elif attrs.get("keepdims", 1):
        pieces = [tuple(shape[:axis] + [1] + shape[axis + 1 :])] * total
    else:
        pieces = [tuple(shape[:axis] + shape[axis + 1 :])] * total
    return [Item(None, ValueType(source.elem_type, piece)) for piece in pieces]


def _concat(node: Any, items: list[Item]) -> ValueType | None:
    """ConcatFromSequence's output: the elements joined along ``axis``, or stacked along a new
    one (``new_axis=1``); None when an element's shape is unknown or there is none."""
    from .shapes import ValueType

    if not items or not all(item.type.static and item.type.shape is not None for item in items):
        return None
    shapes = [[int(d) for d in item.type.shape or ()] for item in items]
    attrs = {a.name: a.i for a in node.attribute}
    first, axis = shapes[0], attrs.get("axis", 0)
    if attrs.get("new_axis", 0):
        axis = axis % (len(first) + 1)
        return ValueType(items[0].type.elem_type, tuple(first[:axis] + [len(items)] + first[axis:]))
    axis = axis % max(len(first), 1)
    joined = sum(shape[axis] for shape in shapes)
    return ValueType(items[0].type.elem_type, tuple(first[:axis] + [joined] + first[axis + 1 :]))
