"""Loop, Scan and If: which bodies run, how many times, and with which input types.

- Loop: the trip count is the user's when given (``dims={"<node name>": N}``, CLI
  ``--dim NAME=N``); else its ``M`` input when that folds to a constant (a literal, or
  shape arithmetic on a dim the user bound). A body whose condition output is not
  simply passed through may end the loop early: M is then an upper bound, and the
  facts say so. No M (a while loop) and no user value is an error naming the node.
- Scan (opset >= 9): one iteration per slice of the first scan input along its axis.
- If: the branch the condition selects when it folds to a constant; otherwise BOTH
  branches are counted (an upper bound) and the facts say so.

Each body is typed by ``shapes.infer_graph`` with the outer scope's types and folded
values visible. Loop-carried values whose shapes change between iterations (a growing
sequence) are typed iteration by iteration; once an iteration leaves them unchanged,
every later iteration is the same and is counted as a multiple of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any

from .load import OnnxModelError, opset_versions
from .shapes import GraphTypes, ValueType, from_proto, infer_graph

CONTROL_OPS = ("Loop", "Scan", "If")
NO_LIMIT = 2**31  # a larger Loop M is an exporter's "no limit": a while loop
MAX_TYPED_ITERATIONS = 4096


@dataclass
class BodyRun:
    """One typing of a body, counted ``times`` times."""

    graph: Any  # onnx.GraphProto
    types: GraphTypes
    times: int
    label: str  # "body", "then_branch", "else_branch"


@dataclass
class ControlFlow:
    """What a Loop / Scan / If node runs, and how its count was decided."""

    op: str
    node: str
    runs: list[BodyRun]
    trips: int | None  # Loop / Scan iterations; None for If
    source: str  # "constant", "user", "scan axis", "condition constant", "condition unknown"
    upper_bound: bool  # Loop: the body may end it early; If: both branches counted
    branch: str = ""  # If: "then", "else" or "both"

    def facts(self, module: str) -> dict[str, Any]:
        return {
            "node": self.node,
            "op": self.op,
            "module": module,
            "trips": self.trips,
            "source": self.source,
            "upper_bound": self.upper_bound,
            "branch": self.branch,
        }


def control_key(node: Any) -> str:
    """The name a user gives a trip count under: the node's name, else its first output."""
    return node.name or node.output[0]


def control_keys(graph: Any) -> set[str]:
    """Keys of every Loop in ``graph`` and its subgraphs (names a trip count may bind)."""
    keys: set[str] = set()
    for node in graph.node:
        if node.op_type == "Loop":
            keys.add(control_key(node))
        for attribute in node.attribute:
            if attribute.type == 5:  # GRAPH
                keys |= control_keys(attribute.g)
    return keys


def infer_control(model: Any, node: Any, outer: GraphTypes) -> dict[str, ValueType]:
    """Type the bodies of one control node; record a ControlFlow in ``outer.control``
    and return the node's output types."""
    handler = {"Loop": _loop, "Scan": _scan, "If": _if}[node.op_type]
    flow, outputs = handler(model, node, outer)
    outer.control[node.output[0]] = flow
    return outputs


def _subgraph(node: Any, name: str) -> Any:
    for attribute in node.attribute:
        if attribute.name == name:
            return attribute.g
    raise OnnxModelError(f"node {node.name!r} ({node.op_type}) has no {name!r} subgraph")


def _scope(
    outer: GraphTypes, inputs: dict[str, ValueType], known: dict[str, Any] | None = None
) -> GraphTypes:
    """A subgraph's starting types: the outer scope's values plus its own inputs
    (``known``: input values that hold in every iteration)."""
    values = {k: v for k, v in outer.values.items() if k not in inputs}
    values.update(known or {})
    return GraphTypes(
        types={**outer.types, **inputs},
        values=values,
        unbound=outer.unbound,
        trip_counts=outer.trip_counts,
        dims=outer.dims,
    )


def _input_type(outer: GraphTypes, name: str, declared: Any) -> ValueType:
    """The outer value's type, else the body's declared input type."""
    vt = outer.types.get(name)
    if vt is not None and vt.shape is not None:
        return vt
    return from_proto(declared.type) or ValueType(0, None)


def _output_type(types: GraphTypes, output: Any) -> ValueType:
    return types.types.get(output.name) or from_proto(output.type) or ValueType(0, None)


def _elements(vt: ValueType) -> int:
    return prod(d for d in vt.shape or () if isinstance(d, int))


def _label(node: Any) -> str:
    return f"{node.op_type} {node.name or node.output[0]!r}"


# ------------------------------------------------------------------------------ Loop
def _loop(model: Any, node: Any, outer: GraphTypes) -> tuple[ControlFlow, dict[str, ValueType]]:
    """Inputs (M, cond, v_initial...), body (iteration_num, cond, v...) -> (cond, v..., scan...)."""
    import numpy as np

    body = _subgraph(node, "body")
    trips, source = _loop_trips(node, outer)
    carried = len(node.input) - 2
    initial = [_input_type(outer, name, body.input[2 + i]) for i, name in enumerate(node.input[2:])]

    def inputs(state: list[ValueType]) -> dict[str, ValueType]:
        types = {body.input[0].name: ValueType(7, ()), body.input[1].name: ValueType(9, ())}
        types.update({body.input[2 + i].name: vt for i, vt in enumerate(state)})
        return types

    carried_outputs = [o.name for o in body.output[1 : 1 + carried]]
    running = {body.input[1].name: np.array(True)}  # the condition is true in every iteration that runs
    runs, final, last = _iterate(model, body, outer, trips, inputs, carried_outputs, initial, node, running)
    condition = body.output[0].name
    ends_early = condition != body.input[1].name and not _is_true(last, condition)
    starts = node.input[1] if len(node.input) > 1 else ""
    if starts and starts in outer.values and not bool(outer.values[starts].reshape(-1)[0]):
        runs, trips = [], 0  # the loop's condition is false before the first iteration
    flow = ControlFlow("Loop", control_key(node), runs, trips, source, ends_early and source != "user")
    outputs = dict(zip(node.output[:carried], final, strict=False))
    for name, output in zip(node.output[carried:], body.output[1 + carried :], strict=False):
        vt = _output_type(last, output)
        outputs[name] = ValueType(vt.elem_type, None if vt.shape is None else (trips, *vt.shape))
    return flow, outputs


def _loop_trips(node: Any, outer: GraphTypes) -> tuple[int, str]:
    key = control_key(node)
    if key in outer.trip_counts:
        return int(outer.trip_counts[key]), "user"
    limit = node.input[0] if node.input else ""
    if limit and limit in outer.values:
        value = int(outer.values[limit].reshape(-1)[0])
        if value < NO_LIMIT:
            return max(value, 0), "constant"
    why = "its M input is not a constant" if limit and limit not in outer.values else "it has no trip limit"
    unbound = f" (or bind the dims {sorted(outer.unbound)})" if outer.unbound else ""
    raise OnnxModelError(
        f"{_label(node)} needs a trip count: {why}; give it with dims={{{key!r}: N}} "
        f"(CLI: --dim {key}=N){unbound}"
    )


def _is_true(types: GraphTypes, name: str) -> bool:
    value = types.values.get(name)
    return value is not None and bool(value.reshape(-1)[0])


def _iterate(
    model: Any,
    body: Any,
    outer: GraphTypes,
    trips: int,
    inputs: Any,
    carried_outputs: list[str],
    initial: list[ValueType],
    node: Any,
    known: dict[str, Any] | None = None,
) -> tuple[list[BodyRun], list[ValueType], GraphTypes]:
    """Type the body once per distinct set of carried types: (runs, final carried
    types, the last typing)."""
    runs: list[BodyRun] = []
    state = list(initial)
    done = 0
    last = infer_graph(model, body, _scope(outer, inputs(state), known))
    while done < trips:
        if runs:
            last = infer_graph(model, body, _scope(outer, inputs(state), known))
        after = [_known(last, name, before) for name, before in zip(carried_outputs, state, strict=False)]
        if after == state:  # every later iteration is typed the same
            runs.append(BodyRun(body, last, trips - done, "body"))
            break
        if len(runs) >= MAX_TYPED_ITERATIONS:
            raise OnnxModelError(
                f"{_label(node)}: loop-carried shapes still change after {MAX_TYPED_ITERATIONS} "
                "iterations; flopmeter types at most that many distinct iterations"
            )
        runs.append(BodyRun(body, last, 1, "body"))
        done += 1
        state = after
    return runs, state, last


def _known(types: GraphTypes, name: str, before: ValueType) -> ValueType:
    vt = types.types.get(name)
    return before if vt is None or vt.shape is None else vt


# ------------------------------------------------------------------------------ Scan
def _scan(model: Any, node: Any, outer: GraphTypes) -> tuple[ControlFlow, dict[str, ValueType]]:
    """Inputs (state..., scan input...), body (state..., slice...) -> (state..., scan out...)."""
    if opset_versions(model).get("", 1) < 9:
        raise OnnxModelError(
            f"{_label(node)}: Scan of opset 8 (batched, with sequence_lens) is not supported"
        )
    body = _subgraph(node, "body")
    attrs = {a.name: a for a in node.attribute}
    scans = int(attrs["num_scan_inputs"].i)
    states = len(node.input) - scans
    in_axes = list(attrs["scan_input_axes"].ints) if "scan_input_axes" in attrs else [0] * scans
    out_axes = list(attrs["scan_output_axes"].ints) if "scan_output_axes" in attrs else []
    slices: dict[str, ValueType] = {}
    trips = None
    for k, name in enumerate(node.input[states:]):
        vt = outer.types.get(name)
        if vt is None or vt.shape is None:
            raise OnnxModelError(
                f"{_label(node)}: the shape of its scan input {name!r} could not be inferred"
            )
        axis = in_axes[k] % len(vt.shape)
        length = vt.shape[axis]
        if not isinstance(length, int):
            raise OnnxModelError(
                f"dim {length!r} is unbound: {_label(node)} iterates over it; bind it with "
                f"dims={{{length!r}: ...}} (CLI: --dim {length}=N)"
            )
        trips = length if trips is None else trips
        slices[body.input[states + k].name] = ValueType(vt.elem_type, vt.shape[:axis] + vt.shape[axis + 1 :])
    initial = [_input_type(outer, name, body.input[i]) for i, name in enumerate(node.input[:states])]

    def inputs(state: list[ValueType]) -> dict[str, ValueType]:
        return {**{body.input[i].name: vt for i, vt in enumerate(state)}, **slices}

    assert trips is not None
    state_outputs = [o.name for o in body.output[:states]]
    runs, final, last = _iterate(model, body, outer, trips, inputs, state_outputs, initial, node)
    outputs = dict(zip(node.output[:states], final, strict=False))
    for k, (name, output) in enumerate(zip(node.output[states:], body.output[states:], strict=False)):
        vt = _output_type(last, output)
        if vt.shape is None:
            outputs[name] = vt
            continue
        axis = (out_axes[k] if k < len(out_axes) else 0) % (len(vt.shape) + 1)
        outputs[name] = ValueType(vt.elem_type, (*vt.shape[:axis], trips, *vt.shape[axis:]))
    return ControlFlow("Scan", control_key(node), runs, trips, "scan axis", False), outputs


# -------------------------------------------------------------------------------- If
def _if(model: Any, node: Any, outer: GraphTypes) -> tuple[ControlFlow, dict[str, ValueType]]:
    """The branch a constant condition selects; both when the condition is unknown."""
    condition = node.input[0]
    if condition in outer.values:
        branch = "then" if bool(outer.values[condition].reshape(-1)[0]) else "else"
        labels = [f"{branch}_branch"]
    else:
        branch = "both"
        labels = ["then_branch", "else_branch"]
    runs = []
    for label in labels:
        graph = _subgraph(node, label)
        runs.append(BodyRun(graph, infer_graph(model, graph, _scope(outer, {})), 1, label))
    outputs: dict[str, ValueType] = {}
    for i, name in enumerate(node.output):
        candidates = [
            _output_type(run.types, run.graph.output[i]) for run in runs if i < len(run.graph.output)
        ]
        # both branches counted: the larger output, so the ops after the If are an upper bound too
        static = sorted((vt for vt in candidates if vt.static), key=_elements, reverse=True)
        outputs[name] = (static or candidates or [ValueType(0, None)])[0]
    source = "condition constant" if branch != "both" else "condition unknown"
    return ControlFlow("If", control_key(node), runs, None, source, branch == "both", branch), outputs
