"""Values an output shape depends on, computed on demand from the graph's constants.

ONNX's shape inference of some nodes reads input values, not only shapes: Resize's
``scales`` and ``sizes``, Upsample's ``scales``, Range's bounds. ``shapes.py`` folds
integer shape arithmetic as it goes; a value that is a float constant (the scales of
``nn.Upsample(scale_factor=2)``, a float Constant or initializer in both exporters) or
passes through float math (``Cast(Shape(x)) * 1.5``) is computed here, only when a
node's output shape is still unknown: the nodes that make it, back to initializers,
Constant nodes and already folded values, run once with onnx's reference
implementation (``onnx.reference.ReferenceEvaluator``). The walk back to those leaves
is hand-written (onnx.utils.Extractor would run shape inference on the whole model).
A value that depends on a graph input's data is known only at run time: the reason is
kept for the error that names it.
"""

from __future__ import annotations

from math import prod
from typing import Any

from .shapes import MAX_FOLDED_ELEMENTS, GraphTypes

# A constant subgraph longer than this is not evaluated (shape subgraphs are short).
MAX_NODES = 64


class ConstantValues:
    """Producers of the values of one graph seen so far, and the values computed."""

    def __init__(
        self, graph: Any, result: GraphTypes, opsets: dict[str, int], max_elements: int = MAX_FOLDED_ELEMENTS
    ) -> None:
        self.initializers = {t.name: t for t in graph.initializer}
        self.inputs = {i.name for i in graph.input} - set(self.initializers)
        self.result = result
        self.opsets = opsets
        self.producers: dict[str, tuple[int, Any]] = {}  # value -> (position, node)
        self.why_not = result.not_constant  # value -> why it is not a constant
        self.added = 0
        self.max_elements = max_elements  # of a computed tensor (initializers: MAX_FOLDED_ELEMENTS)

    def add(self, node: Any) -> None:
        """Record ``node`` (in graph order) as the producer of its outputs."""
        for name in node.output:
            if name:
                self.producers[name] = (self.added, node)
        self.added += 1

    def evaluate(self, name: str) -> Any:
        """The value of ``name`` as a numpy array, or None (the reason is in ``why_not``)."""
        if name in self.result.values:
            return self.result.values[name]
        if name in self.why_not:
            return None
        found = self._subgraph(name)
        if isinstance(found, str):
            self.why_not[name] = found
            return None
        nodes, feeds = found
        try:
            value = self._run(name, nodes, feeds)
        except Exception as error:  # the reference implementation refused: not a constant here
            self.why_not[name] = f"onnx's reference implementation could not compute it ({error})"
            return None
        self.result.values[name] = value
        return value

    def _subgraph(self, name: str) -> tuple[list[Any], dict[str, Any]] | str:
        """The nodes computing ``name`` in graph order and the values they start from,
        or why there are none."""
        from onnx import numpy_helper

        nodes: dict[int, Any] = {}
        feeds: dict[str, Any] = {}
        stack, seen = [name], set()
        while stack:
            value = stack.pop()
            if not value or value in seen:
                continue
            seen.add(value)
            if value in self.result.values:
                feeds[value] = self.result.values[value]
            elif value in self.why_not:
                return self.why_not[value]
            elif value in self.initializers:
                tensor = self.initializers[value]
                if tensor.data_location == 1 or prod(tensor.dims) > MAX_FOLDED_ELEMENTS:
                    return f"it is computed from the initializer {value!r}, whose data is external or large"
                feeds[value] = numpy_helper.to_array(tensor)
            elif value in self.producers:
                position, node = self.producers[value]
                if node.domain not in ("", "ai.onnx") or node.op_type in ("Loop", "Scan", "If"):
                    return f"it is computed by {node.op_type} node {node.name or value!r}"
                vt = self.result.types.get(value)
                if vt is None or not vt.static:
                    return f"it is computed from {value!r}, a tensor of unknown shape"
                if (size := prod(int(d) for d in vt.shape or ())) > self.max_elements:
                    what = "it has" if value == name else f"it is computed from {value!r}, of"
                    return f"{what} {size:,} elements, more than the {self.max_elements:,} read"
                nodes[position] = node
                if len(nodes) > MAX_NODES:
                    return f"more than {MAX_NODES} nodes compute it"
                stack.extend(node.input)
            elif value in self.inputs:
                if value == name:
                    return "it is a graph input: its value is known only at run time"
                return f"it is computed at run time from the graph input {value!r}"
            else:  # an outer scope's value inside a Loop / Scan / If body
                return f"it is computed at run time from {value!r}"
        return [nodes[p] for p in sorted(nodes)], feeds

    def _run(self, name: str, nodes: list[Any], feeds: dict[str, Any]) -> Any:
        import numpy as np
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        graph = helper.make_graph(
            nodes,
            "constant",
            [
                helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                for n, a in feeds.items()
            ],
            [
                helper.make_value_info(
                    name, helper.make_tensor_type_proto(self.result.types[name].elem_type, None)
                )
            ],
        )
        (value,) = ReferenceEvaluator(graph, opsets=self.opsets).run(None, feeds)
        return np.asarray(value)
