"""Turn a Trace into a Report: costs per op, per module (own and inclusive), params."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch

from . import registry
from .cost import ZERO, Cost
from .registry import CountOptions
from .report import ModuleStats, OperatorStats, OpRecord, Report, UnsupportedOp, parent_of
from .tracing.events import BACKWARD, OpEvent, collect_metas
from .tracing.run import Trace

OpFormula = Callable[[OpEvent], Any]
ModuleFormula = Callable[[torch.nn.Module, Any, Any], Any]
MAX_SHAPES_LISTED = 5


def module_tree(model: torch.nn.Module) -> dict[str, ModuleStats]:
    """One ModuleStats per module (shared modules once), with params counted once."""
    stats: dict[str, ModuleStats] = {}
    seen: set[int] = set()
    for name, module in model.named_modules():
        own = trainable = 0
        for param in module._parameters.values():
            if param is None or id(param) in seen:
                continue
            seen.add(id(param))
            own += param.numel()
            trainable += param.numel() if param.requires_grad else 0
        stats[name] = ModuleStats(
            name=name,
            type=type(module).__name__,
            depth=name.count(".") + 1 if name else 0,
            extra_repr=module.extra_repr(),
            own_params=own,
            params=own,
            trainable_params=trainable,
        )
        if name:
            stats[parent_of(name, stats)].children.append(name)
    for name in sorted(stats, key=lambda n: -stats[n].depth):
        if name:
            parent = stats[parent_of(name, stats)]
            parent.params += stats[name].params
            parent.trainable_params += stats[name].trainable_params
    return stats


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
    overhead: Callable[[OpEvent, Cost], bool] | None = None,
    count_overhead: bool = False,
) -> Report:
    modules = module_tree(model)
    operators: dict[str, OperatorStats] = {}
    unsupported: dict[str, UnsupportedOp] = {}
    forward = backward = Cost()
    op_formulas = op_formulas or {}
    records: list[OpRecord] = []
    overheads: dict[str, OperatorStats] = {}

    def charge(
        module: str,
        op: str,
        kind: str,
        cost: Cost,
        phase: str,
        dtype: str = "float32",
        shapes: tuple[tuple[int, ...], ...] = (),
    ) -> None:
        nonlocal forward, backward
        entry = operators.get(op)
        if entry is None:
            entry = operators[op] = OperatorStats(op=op, kind=kind)
        entry.calls += 1
        entry.backward_calls += phase == BACKWARD
        if kind == "view":
            return  # free: nothing to add
        stats = modules.get(module) or modules[parent_of(module, modules)]
        records.append(OpRecord(op, stats.name, phase, dtype, cost, shapes))
        stats.own += cost
        if phase == BACKWARD:
            stats.backward += cost
            backward += cost
        else:
            forward += cost
        entry.cost += cost

    for event in trace.events:
        if event.op in op_formulas:
            work = registry.with_traffic(_as_cost(op_formulas[event.op](event)), event)
            charge(event.module, event.op, "custom", work, event.phase, _dtype(event))
            continue
        if registry.kind_of(event.op) == "view":
            charge(event.module, event.op, "view", ZERO, event.phase)
            continue
        cost = registry.cost_of(event, options)
        if cost is None:
            note_unsupported(unsupported, event.op, _shape_signature(event), event.module)
            continue
        if overhead is not None and overhead(event, cost):  # compression overhead (compression/overhead.py)
            aside = overheads.setdefault(
                event.op, OperatorStats(op=event.op, kind=registry.kind_of(event.op))
            )
            aside.cost += cost
            aside.calls += 1
            aside.backward_calls += event.phase == BACKWARD
            if not count_overhead:
                continue
        shapes = tuple(t.shape for t in event.tensor_inputs())
        charge(event.module, event.op, registry.kind_of(event.op), cost, event.phase, _dtype(event), shapes)

    for name, module, args, output in trace.custom_calls:
        formula = next(f for t, f in (module_formulas or {}).items() if isinstance(module, t))
        work = _as_cost(formula(module, args, output))
        if not (work.bytes_read or work.bytes_written):
            work = replace(work, **_module_traffic(args, output))
        charge(name, f"custom:{type(module).__name__}", "custom", work, "forward")

    for name, calls in trace.module_calls.items():
        if name in modules:
            modules[name].calls = calls
    for stats in modules.values():
        stats.total = stats.own
    for name in sorted(modules, key=lambda n: -modules[n].depth):
        if name:
            parent = modules[parent_of(name, modules)]
            parent.total += modules[name].total
    _inclusive_backward(modules)

    params = list({id(p): p for p in model.parameters()}.values())
    buffers = list({id(b): b for b in model.buffers()}.values())
    return Report(
        model_name=model_name,
        batch_size=batch_size,
        inputs=inputs,
        modules=modules,
        operators=operators,
        unsupported=unsupported,
        forward=forward,
        backward_cost=backward,
        params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        buffers=sum(b.numel() for b in buffers),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_bytes=sum(b.numel() * b.element_size() for b in buffers),
        training=training,
        did_backward=did_backward,
        options={"causal": options.causal},
        versions=versions or {},
        ops=records,
        peak_activation_bytes=trace.peak_activation_bytes,
        overhead=overheads,
    )


def _dtype(event: OpEvent) -> str:
    """The dtype an op computes in: its first floating input's, else its output's."""
    for tensor in event.tensor_inputs():
        if tensor.is_floating:
            return tensor.dtype
    return event.outputs[0].dtype if event.outputs else "float32"


def _inclusive_backward(modules: dict[str, ModuleStats]) -> None:
    for name in sorted(modules, key=lambda n: -modules[n].depth):
        if name:
            modules[parent_of(name, modules)].backward += modules[name].backward


def _module_traffic(args: Any, output: Any) -> dict[str, int]:
    return {
        "bytes_read": sum(t.nbytes for t in collect_metas(args)),
        "bytes_written": sum(t.nbytes for t in collect_metas(output)),
        "weight_bytes": 0,
    }
