"""Patterns that exporters decompose, folded back into the op PyTorch counted.

- attention: MatMul(q, k^T) [* or / scale] [+ mask | Where] -> Softmax [-> IsNaN/Where]
  -> MatMul(., v), with the scale multiplies of q and k (dynamo opset 18) and the
  mask's bool-to-float Where of the same fx node: one attention op, counted by
  ``formulas.attention`` (causal when the fx metadata says ``is_causal`` or a Trilu
  builds the mask);
- MatMul + Add of a 1-d bias initializer: one linear layer (the bias adds are the
  same FLOPs; ptflops counts them as MACs);
- Sqrt -> Reciprocal (or 1 / Sqrt): one rsqrt (1 FLOP per element, as aten.rsqrt);
- GroupNorm, which both exporters write as Reshape -> InstanceNormalization (with an
  all-ones scale and zero bias of their own) -> Reshape -> Mul(weight) -> Add(bias):
  one group norm, its affine transform counted once (as aten.native_group_norm).

GELU (Div, Erf, Add, Mul, Mul) and SiLU (Sigmoid, Mul) cost the same FLOPs split as
decomposed, so they are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .shapes import GraphTypes


@dataclass
class Fold:
    """Nodes (by index) counted as one op. ``anchor`` is the node whose module the op
    is charged to; ``extra`` holds the facts the op's formula needs."""

    op: str
    anchor: int
    members: list[int]
    extra: dict[str, Any] = field(default_factory=dict)


class GraphIndex:
    """Producers and consumers of every value of one graph."""

    def __init__(self, nodes: list[Any], initializers: set[str], types: GraphTypes) -> None:
        self.nodes = nodes
        self.initializers = initializers
        self.types = types
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = {}
        for index, node in enumerate(nodes):
            for name in node.output:
                self.producer[name] = index
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(index)

    def node_of(self, value: str) -> Any:
        index = self.producer.get(value)
        return None if index is None else self.nodes[index]

    def is_scalar_constant(self, value: str) -> bool:
        vt = self.types.types.get(value)
        constant = value in self.initializers or (
            self.node_of(value) is not None and self.node_of(value).op_type == "Constant"
        )
        return (
            constant
            and vt is not None
            and vt.shape is not None
            and len(vt.shape) <= 1
            and (not vt.shape or vt.shape[0] == 1)
        )

    def is_scalar(self, value: str) -> bool:
        """One element: a constant, or a scale computed at run time from shapes
        (the legacy exporter's ``Sqrt(Cast(Shape(q)[-1]))``)."""
        vt = self.types.types.get(value)
        return vt is not None and vt.static and all(d == 1 for d in vt.shape or ())

    def sole_consumer(self, value: str) -> int | None:
        users = self.consumers.get(value, [])
        return users[0] if len(users) == 1 else None


def find_folds(index: GraphIndex, fx_of: dict[int, str]) -> list[Fold]:
    """Every pattern found; a node belongs to at most one fold."""
    taken: set[int] = set()
    folds: list[Fold] = []
    for position, node in enumerate(index.nodes):
        if node.op_type == "Softmax" and position not in taken:
            fold = _attention(index, position, fx_of)
            if fold and not taken.intersection(fold.members):
                taken.update(fold.members)
                folds.append(fold)
    for position in range(len(index.nodes)):
        if position in taken:
            continue
        fold = _bias_add(index, position) or _rsqrt(index, position) or group_norm(index, position)
        if fold and not taken.intersection(fold.members):
            taken.update(fold.members)
            folds.append(fold)
    return folds


def _attention(index: GraphIndex, softmax: int, fx_of: dict[int, str]) -> Fold | None:
    nodes = index.nodes
    members = [softmax]
    masked = scaled = False
    value = nodes[softmax].input[0]
    scores = None
    mask_values: list[str] = []
    masks: list[tuple[str, str]] = []  # (how the mask applies, its value): for a causal test by value
    for _ in range(6):  # back through mask adds and scalings to the scores MatMul
        producer = index.producer.get(value)
        if producer is None:
            return None
        node = nodes[producer]
        if node.op_type == "MatMul":
            scores = producer
            break
        if node.op_type in ("Add", "Where"):
            big = [v for v in node.input if _same_shape(index, v, value)]
            if not big:
                return None
            # a bias of the scores' own shape (T5's position bias) is the mask: follow the scores
            big.sort(key=lambda v: index.node_of(v) is not None and index.node_of(v).op_type == "MatMul")
            masked = True
            mask_values += [v for v in node.input if v != big[-1]]
            if node.op_type == "Add":  # scores + (0 where kept, -inf where masked)
                masks += [("add", v) for v in node.input if v != big[-1]]
            else:  # Where(keep, scores, -inf) or Where(drop, -inf, scores)
                masks.append(("keep" if node.input[1] == big[-1] else "drop", node.input[0]))
            members.append(producer)
            value = big[-1]
        elif node.op_type in ("Mul", "Div") and index.is_scalar_constant(node.input[1]):
            members.append(producer)
            value = node.input[0]
            scaled = True
        else:
            return None
    if scores is None:
        return None
    members.append(scores)
    operand_scalings = []
    for operand in nodes[scores].input:  # q * s and k * s (dynamo, legacy), with a single use
        producer = index.producer.get(operand)
        if producer is not None and nodes[producer].op_type in ("Mul", "Div"):
            if index.is_scalar(nodes[producer].input[1]) and index.sole_consumer(operand) == scores:
                operand_scalings.append(producer)
    if len(operand_scalings) == 2:  # the exporters' SDPA: both q and k scaled by sqrt(scale)
        members += operand_scalings
        scaled = True
    # else a model's own `q * scale` (Swin) stays a Mul of its own, as PyTorch counts it
    value = nodes[softmax].output[0]
    output = None
    for _ in range(4):  # forward through the NaN guard and casts to the MatMul with v
        users = index.consumers.get(value, [])
        types = {nodes[u].op_type: u for u in users}
        if len(users) == 1 and nodes[users[0]].op_type == "MatMul" and nodes[users[0]].input[0] == value:
            output = users[0]
            break
        if set(types) == {"IsNaN", "Where"}:
            members += [types["IsNaN"], types["Where"]]
            value = nodes[types["Where"]].output[0]
        elif len(users) == 1 and nodes[users[0]].op_type in ("Cast", "Dropout", "Identity"):
            members.append(users[0])
            value = nodes[users[0]].output[0]
        else:
            return None
    if output is None:
        return None
    members.append(output)
    fx = fx_of.get(softmax, "")
    for mask in mask_values:  # the bool mask turned into -inf/0 by the same fx node
        producer = index.producer.get(mask)
        if producer is not None and fx and fx_of.get(producer) == fx:
            members.append(producer)
    causal = "is_causal = True" in fx or _built_by_trilu(index, mask_values)
    scaled = scaled or "scaled_dot_product_attention" in fx  # PyTorch's SDPA scales (by 1.0 too)
    return Fold("pattern.attention", scores, sorted(set(members)), {
        "scores": scores, "output": output, "masked": masked, "causal": causal, "scaled": scaled,
        "masks": masks,
    })  # fmt: skip


def _built_by_trilu(index: GraphIndex, values: list[str]) -> bool:
    seen: set[str] = set()
    stack = list(values)
    while stack and len(seen) < 64:
        value = stack.pop()
        if value in seen:
            continue
        seen.add(value)
        node = index.node_of(value)
        if node is None:
            continue
        if node.op_type == "Trilu":
            return True
        stack.extend(v for v in node.input if v)
    return False


def _same_shape(index: GraphIndex, a: str, b: str) -> bool:
    ta, tb = index.types.types.get(a), index.types.types.get(b)
    return ta is not None and tb is not None and ta.shape == tb.shape and a in index.producer


def _bias_add(index: GraphIndex, position: int) -> Fold | None:
    node = index.nodes[position]
    if node.op_type != "Add" or len(node.input) != 2:
        return None
    for operand, bias in (node.input, reversed(node.input)):
        producer = index.producer.get(operand)
        bias_type = index.types.types.get(bias)
        if (
            producer is not None
            and index.nodes[producer].op_type == "MatMul"
            and index.sole_consumer(operand) == position
            and bias in index.initializers
            and bias_type is not None
            and bias_type.shape is not None
            and len(bias_type.shape) == 1
        ):
            return Fold(
                "pattern.linear", producer, [producer, position], {"matmul": producer, "add": position}
            )
    return None


def _rsqrt(index: GraphIndex, position: int) -> Fold | None:
    node = index.nodes[position]
    if node.op_type == "Reciprocal":
        source = node.input[0]
    elif node.op_type == "Div" and index.is_scalar_constant(node.input[0]):
        source = node.input[1]
    else:
        return None
    producer = index.producer.get(source)
    if producer is None or index.nodes[producer].op_type != "Sqrt" or index.sole_consumer(source) != position:
        return None
    return Fold("pattern.rsqrt", producer, [producer, position], {"input": index.nodes[producer].input[0]})


def group_norm(index: GraphIndex, position: int) -> Fold | None:
    """InstanceNormalization between two Reshapes (the exporters' GroupNorm), with the
    Mul by a weight and the Add of a bias that follow it when present."""
    node = index.nodes[position]
    if node.op_type != "InstanceNormalization" or any(
        v.endswith((".weight", ".bias")) for v in node.input[1:]
    ):
        return None  # an InstanceNorm module's own weights (named after it): not a GroupNorm
    source = index.node_of(node.input[0])
    after = index.sole_consumer(node.output[0])
    if (
        source is None
        or source.op_type != "Reshape"
        or after is None
        or index.nodes[after].op_type != "Reshape"
    ):
        return None
    members, extra = [position], {"norm": position, "weight": False, "bias": False}
    value = index.nodes[after].output[0]
    for op, key in (("Mul", "weight"), ("Add", "bias")):
        user = index.sole_consumer(value)
        if user is None or index.nodes[user].op_type != op:
            break
        operands = [v for v in index.nodes[user].input if v != value]
        if len(operands) != 1 or operands[0] not in index.initializers:
            break
        members.append(user)
        extra[key] = True
        value = index.nodes[user].output[0]
    return Fold("pattern.group_norm", position, members, extra)
