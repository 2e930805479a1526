"""Peak activation memory of an ONNX graph from tensor lifetimes (no run needed).

Walking the nodes in their (topological) order:
- the graph's inputs are live for the whole run (as the PyTorch path holds them);
- a node's output is allocated when the node runs and freed after its last
  consumer; a graph output stays live to the end; an output nothing reads is freed
  right after its producer;
- a view op's output (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Slice,
  Transpose, Expand: ``ops.VIEW_OPS``, views in PyTorch too) allocates nothing and
  keeps its base alive until its own last use;
- initializers, Constant outputs and folded shape values are constants, not
  activations. Temporaries inside Loop / Scan / If bodies are not included.
The peak is the largest sum of live bytes just after a node's outputs are allocated.
"""

from __future__ import annotations

from typing import Any

from . import ops
from .count import BITS, DTYPES
from .shapes import GraphTypes


def _nbytes(types: GraphTypes, name: str) -> int:
    vt = types.types.get(name)
    if vt is None or not vt.static:
        return 0
    numel = 1
    for d in vt.shape or ():
        numel *= int(d)
    dtype, size = DTYPES.get(vt.elem_type, ("unknown", 1))
    return (numel * BITS[dtype] + 7) // 8 if dtype in BITS else numel * size


def peak_activation_bytes(graph: Any, types: GraphTypes) -> int:
    """The peak of live activation bytes over one run of ``graph`` (see the module doc)."""
    nodes = list(graph.node)
    constants = {t.name for t in graph.initializer} | set(types.values)
    base: dict[str, str] = {}  # a view's output -> the tensor it aliases
    for node in nodes:
        if node.op_type == "Constant":
            constants.update(node.output)
        elif (
            ops.onnx_op_name("" if node.domain == "ai.onnx" else node.domain, node.op_type) in ops.VIEW_OPS
            and node.input
            and node.output
        ):
            source = node.input[0]
            base[node.output[0]] = base.get(source, source)
    end = len(nodes)
    last_use: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            if name:
                last_use[base.get(name, name)] = index
    for output in graph.output:
        last_use[base.get(output.name, output.name)] = end
    inputs = [i.name for i in graph.input if i.name not in constants]
    live = sum(_nbytes(types, name) for name in inputs)
    peak = live
    freed_at: dict[int, list[str]] = {}
    for index, node in enumerate(nodes):
        for name in node.output:
            if not name or name in constants or name in base:
                continue
            live += _nbytes(types, name)
            freed_at.setdefault(last_use.get(name, index), []).append(name)
        peak = max(peak, live)
        for name in freed_at.pop(index, []):
            live -= _nbytes(types, name)
    return peak
