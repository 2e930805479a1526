"""Turn a Trace into a Report: costs per op, per module (own and inclusive), params."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, NamedTuple

import torch

from . import registry
from .cost import ZERO, Cost
from .cost_memo import CostMemo, compute_dtype
from .registry import CountOptions
from .report import ModuleStats, OperatorStats, OpRecord, Report, UnsupportedOp, parent_of
from .tracing.events import BACKWARD, OpEvent, collect_metas
from .tracing.model_walk import ModelWalk
from .tracing.run import Trace

OpFormula = Callable[[OpEvent], Any]
ModuleFormula = Callable[[torch.nn.Module, Any, Any], Any]
MAX_SHAPES_LISTED = 5


class ModelTree(NamedTuple):
    """What a Report needs from the model, read in one walk of its modules: one
    ModuleStats per module (shared modules once), each module's enclosing module, and
    the whole model's parameters and buffers, each tensor counted once."""

    modules: dict[str, ModuleStats]
    parents: dict[str, str]  # name -> its enclosing module's name (the root has none)
    params: int
    trainable_params: int
    param_bytes: int
    buffers: int
    buffer_bytes: int


def module_tree(model: torch.nn.Module, walk: ModelWalk | None = None) -> ModelTree:
    """One ModuleStats per module (shared modules once), with params counted once, at
    the first module that holds them (``named_modules`` order, as ``model.parameters()``
    finds them); buffers likewise. ``walk``: the profile's walk of the model, if taken
    (the state guard has put the model back as it was then)."""
    walk = walk if walk is not None else ModelWalk(model)
    stats: dict[str, ModuleStats] = {}
    parents: dict[str, str] = {}
    seen: set[int] = set()  # ids of the parameters counted, as model.parameters() skips repeats
    seen_buffers: set[int] = set()
    params = trainable = param_bytes = buffers = buffer_bytes = 0
    nothing = Cost()  # every module's own, total and backward until ops are charged (a Cost is a value)
    described: dict[type, bool] = {}  # class -> whether it has its own extra_repr
    for name, module in zip(walk.names, walk.modules, strict=True):
        own = own_trainable = 0
        if module._parameters:
            for param in _not_counted_yet(module._parameters, seen):
                count = param.numel()
                own += count
                param_bytes += count * param.element_size()
                if param.requires_grad:
                    own_trainable += count
        if module._buffers:
            for buffer in _not_counted_yet(module._buffers, seen_buffers):
                count = buffer.numel()
                buffers += count
                buffer_bytes += count * buffer.element_size()
        params += own
        trainable += own_trainable
        kind = type(module)
        has_extra = described.get(kind)
        if has_extra is None:
            has_extra = described[kind] = kind.extra_repr is not _NO_EXTRA_REPR
        stats[name] = ModuleStats(
            name,
            kind.__name__,
            name.count(".") + 1 if name else 0,
            # containers (about half the modules of a model) keep nn.Module's: "" without a call
            safe_extra_repr(module) if has_extra or "extra_repr" in module.__dict__ else "",
            0,
            own,
            own,
            own_trainable,
            nothing,
            nothing,
            nothing,
            [],
        )
        if name:
            parent = name.rpartition(".")[0]  # named_modules lists each module after its parent
            if parent not in stats:
                parent = parent_of(name, stats)
            parents[name] = parent
            stats[parent].children.append(name)
    for name in reversed(stats):  # named_modules lists a module before its children
        if name:
            parent_stats = stats[parents[name]]
            parent_stats.params += stats[name].params
            parent_stats.trainable_params += stats[name].trainable_params
    further = walk.further_names
    if further:
        stats = _with_further_names(stats, parents, further, dict(zip(walk.names, walk.modules, strict=True)))
    return ModelTree(stats, parents, params, trainable, param_bytes, buffers, buffer_bytes)


def _not_counted_yet(held: dict[str, Any], seen: set[int]) -> list[torch.Tensor]:
    """The tensors of a module's ``_parameters`` or ``_buffers`` not met before (``seen``:
    their ids, updated), as ``model.parameters()`` / ``buffers()`` skip repeats."""
    new = []
    for tensor in held.values():
        if tensor is not None and id(tensor) not in seen:
            seen.add(id(tensor))
            new.append(tensor)
    return new


def _with_further_names(
    stats: dict[str, ModuleStats],
    parents: dict[str, str],
    further: dict[str, tuple[torch.nn.Module, str]],
    by_name: dict[str, torch.nn.Module],
) -> dict[str, ModuleStats]:
    """``stats`` with a row for each further name of a shared module (``b.0`` for the
    module first named ``a``), under its parent, in the order the parent holds its
    children: the row has the calls made through that parent and no params (counted
    at the first name). Rows in depth-first order, each before its children."""
    for name, (module, first) in further.items():
        parent = name.rpartition(".")[0]
        by_name[name] = module
        stats[name] = replace(
            stats[first],
            name=name,
            depth=name.count(".") + 1,
            own_params=0,
            params=0,
            trainable_params=0,
            children=[],
            shared_with=first,
        )
        parents[name] = parent
        stats[parent].children.append(name)
    for name in {parents[name] for name in further}:
        keys = list(by_name[name]._modules)
        stats[name].children.sort(key=lambda child: keys.index(child.rpartition(".")[2]))
    ordered: dict[str, ModuleStats] = {}
    todo = [""]
    while todo:
        name = todo.pop()
        ordered[name] = stats[name]
        todo.extend(reversed(stats[name].children))
    for name, row in stats.items():  # none is left out: every row but the root's is a child
        ordered.setdefault(name, row)
    return ordered


def safe_extra_repr(module: torch.nn.Module) -> str:
    """``module.extra_repr()``, or what it raised: a model's broken ``extra_repr`` is
    no reason to lose its report (or the message of its own error)."""
    try:
        return str(module.extra_repr())
    except Exception as error:  # noqa: BLE001 - any user code may raise
        return f"<extra_repr raised {type(error).__name__}>"


_NO_EXTRA_REPR = torch.nn.Module.extra_repr


def _as_cost(value: Any) -> Cost:
    """User formulas may return a Cost or a plain int (exact FLOPs, no MACs)."""
    if isinstance(value, Cost):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Cost(flops=value)
    raise TypeError(f"a custom formula must return a flopmeter.Cost or an int, got {type(value).__name__}")


def _shape_signature(event: OpEvent) -> str:
    shapes = [f"{'x'.join(map(str, t.shape)) or 'scalar'}:{t.dtype}" for t in event.tensor_inputs()]
    return "(" + ", ".join(shapes) + ")"


def note_unsupported(table: dict[str, UnsupportedOp], op: str, signature: str, module: str) -> None:
    """Count one call of an op without a formula: its calls, the first few distinct
    input signatures and the modules it ran in (what the report lists instead of a 0)."""
    entry = table.setdefault(op, UnsupportedOp(op=op))
    entry.calls += 1
    if signature not in entry.shapes and len(entry.shapes) < MAX_SHAPES_LISTED:
        entry.shapes.append(signature)
    if module not in entry.modules:
        entry.modules.append(module)


def build_report(
    model: torch.nn.Module,
    trace: Trace,
    *,
    model_name: str,
    batch_size: int,
    inputs: list[dict[str, Any]],
    options: CountOptions,
    op_formulas: Mapping[str, OpFormula] | None = None,
    module_formulas: Mapping[type, ModuleFormula] | None = None,
    did_backward: bool = False,
    training: bool = False,
    versions: dict[str, str] | None = None,
    overhead: Callable[[OpEvent, Cost], bool | Cost] | None = None,
    count_overhead: bool = False,
    walk: ModelWalk | None = None,
) -> Report:
    tree = module_tree(model, walk)
    modules = tree.modules
    operators: dict[str, OperatorStats] = {}
    unsupported: dict[str, UnsupportedOp] = {}
    backward = Cost()
    op_formulas = op_formulas or {}
    records: list[OpRecord] = []
    overheads: dict[str, OperatorStats] = {}

    homes: dict[str, ModuleStats] = {}  # an event's module name -> the ModuleStats it is charged to
    # the costs charged to each module and operator, summed once at the end (Cost.sum_of)
    own_costs: dict[str, list[Cost]] = {}
    op_costs: dict[str, list[Cost]] = {}

    def charge(
        module: str,
        op: str,
        kind: str,
        cost: Cost,
        phase: str,
        dtype: str = "float32",
        shapes: tuple[tuple[int, ...], ...] = (),
    ) -> None:
        nonlocal backward
        entry = operators.get(op)
        if entry is None:
            entry = operators[op] = OperatorStats(op, kind)
            op_costs[op] = []
        entry.calls += 1
        if kind == "view":
            entry.backward_calls += phase == BACKWARD
            return  # free: nothing to add
        stats = homes.get(module)
        if stats is None:
            stats = homes[module] = modules.get(module) or modules[parent_of(module, modules)]
            own_costs.setdefault(stats.name, [])
        records.append(OpRecord(op, stats.name, phase, dtype, cost, shapes))
        own_costs[stats.name].append(cost)
        op_costs[op].append(cost)
        if phase == BACKWARD:
            entry.backward_calls += 1
            stats.backward += cost
            backward += cost

    memo = CostMemo(options)
    rebuilt = 0  # bytes the model's ops read of rebuilt weights (Report.rebuilt_weight_bytes)
    aside_in: dict[str, list[Cost]] = {}  # module -> its overhead (Report.overhead_by_module)
    kinds: dict[str, str] = {}  # op -> registry.kind_of(op), asked once per op
    for event in trace.events:
        op = event.op
        if op in op_formulas:
            work = registry.with_traffic(_as_cost(op_formulas[op](event)), event)
            charge(event.module, op, "custom", work, event.phase, compute_dtype(event))
            continue
        kind = kinds.get(op)
        if kind is None:
            kind = kinds[op] = registry.kind_of(op)
        if kind == "view":
            charge(event.module, op, kind, ZERO, event.phase)
            continue
        cost, dtype, shapes = memo.count(event)
        if cost is None:
            note_unsupported(unsupported, op, _shape_signature(event), event.module)
            continue
        part: bool | Cost = False
        if overhead is not None and (part := overhead(event, cost)):  # compression/overhead.py
            aside = overheads.setdefault(op, OperatorStats(op=op, kind=kind))
            aside.cost += cost if part is True else part
            aside.calls += 1
            aside.backward_calls += event.phase == BACKWARD
            aside_in.setdefault(event.module, []).append(cost if part is True else part)
            if not count_overhead:
                if part is True:
                    continue
                cost = cost - part  # only that part of the op was emulation
        if trace.rebuilds and not part:
            rebuilt += rebuilt_read(event, cost)
        charge(event.module, op, kind, cost, event.phase, dtype, shapes)

    for name, module, args, output in trace.custom_calls:
        formula = next(f for t, f in (module_formulas or {}).items() if isinstance(module, t))
        work = _as_cost(formula(module, args, output))
        if not (work.bytes_read or work.bytes_written):
            work = replace(work, **_module_traffic(args, output))
        charge(name, f"custom:{type(module).__name__}", "custom", work, "forward")

    for name, costs in own_costs.items():
        modules[name].own = _sum(costs)
    for op, costs in op_costs.items():
        if costs:
            operators[op].cost = _sum(costs)
    backward_ran = any(record.phase == BACKWARD for record in records)
    for name, calls in trace.module_calls.items():
        if name in modules:
            modules[name].calls = calls
    for stats in reversed(modules.values()):  # children before their parents: inclusive sums
        if stats.children:
            totals = [modules[child].total for child in stats.children]
            stats.total = Cost.sum_of([stats.own, *totals]) if stats.name in own_costs else _sum(totals)
            if backward_ran:  # else every module's backward is 0
                stats.backward = Cost.sum_of([stats.backward, *(modules[c].backward for c in stats.children)])
        else:
            stats.total = stats.own
    forward = modules[""].total - backward  # every op is charged to a module: the root's total is all of them
    return Report(
        model_name=model_name,
        batch_size=batch_size,
        inputs=inputs,
        modules=modules,
        operators=operators,
        unsupported=unsupported,
        forward=forward,
        backward_cost=backward,
        params=tree.params,
        trainable_params=tree.trainable_params,
        buffers=tree.buffers,
        param_bytes=tree.param_bytes,
        buffer_bytes=tree.buffer_bytes,
        training=training,
        did_backward=did_backward,
        options={"causal": options.causal},
        versions=versions or {},
        ops=records,
        peak_activation_bytes=trace.peak_activation_bytes,
        overhead=overheads,
        rebuilt_weight_bytes=rebuilt,
        overhead_by_module={name: _sum(costs) for name, costs in aside_in.items()},
    )


# ops that read only the rows they pick of their first input (``registry._gather``)
_GATHERS = frozenset(
    f"aten.{name}" for name in ("embedding", "index_select", "gather", "index", "take", "_unsafe_index")
)


def rebuilt_read(event: OpEvent, cost: Cost) -> int:
    """The bytes ``event`` reads of weights rebuilt from a compressed weight's storage
    (role "rebuilt": a dequantized or masked copy): the whole tensor, or of a gather from a
    rebuilt table the rows it picks; at most what it reads besides weights."""
    inputs = event.tensor_inputs()
    if event.op in _GATHERS:
        read = event.outputs[0].nbytes if inputs and inputs[0].role == "rebuilt" and event.outputs else 0
    else:
        read = sum(t.nbytes for t in inputs if t.role == "rebuilt")
    return min(read, cost.bytes_read - cost.weight_bytes) if read else 0


def _sum(costs: list[Cost]) -> Cost:
    """The sum of ``costs`` (one or more): the cost itself when there is one (a Cost is a
    value, never changed in place)."""
    return costs[0] if len(costs) == 1 else Cost.sum_of(costs)


def _module_traffic(args: Any, output: Any) -> dict[str, int]:
    return {
        "bytes_read": sum(t.nbytes for t in collect_metas(args)),
        "bytes_written": sum(t.nbytes for t in collect_metas(output)),
        "weight_bytes": 0,
    }
