"""Counted ONNX ops -> Report: module tree (own and inclusive), operators, unsupported
ops, params; the same Report class a PyTorch profile returns."""

from __future__ import annotations

from typing import Any

from ..aggregate import note_unsupported
from ..cost import Cost
from ..report import ModuleStats, OperatorStats, OpRecord, Report, UnsupportedOp, parent_of
from ..tracing.events import FORWARD
from .count import BITS, CountedOp, GraphCounter
from .memory import peak_activation_bytes
from .modules import QUANTIZED_WEIGHT_INPUT
from .notes import QUANTIZED_OPS, differences, quantized_facts
from .params import packed_weight_numels


def _signature(op: CountedOp) -> str:
    shapes = [
        "?" if t is None else f"{'x'.join(map(str, t.shape)) or 'scalar'}:{t.dtype}" for t in op.event.args
    ]
    return "(" + ", ".join(shapes) + ")"


_QUANTIZE_NODES = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast"})


def build_module_tree(counter: GraphCounter, root_type: str) -> dict[str, ModuleStats]:
    modules: dict[str, ModuleStats] = {"": ModuleStats(name="", type=root_type, depth=0)}
    paths = list(counter.node_modules)
    paths += [n.rsplit(".", 1)[0] for n in counter.params if "." in n and n.rsplit(".", 1)[0] in set(paths)]
    for path in paths:
        if not path or path in modules:
            continue
        parts = path.split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            if name in modules:
                continue
            modules[name] = ModuleStats(name=name, type=counter.module_types.get(name, ""), depth=end)
            modules[parent_of(name, modules)].children.append(name)
    # a module's type (legacy exports have no class names): its first quantized contraction's
    # op, else its first node's, passing over the nodes a quantizer put before the layer
    # (conv1 is a ConvInteger, not the DynamicQuantizeLinear or the scales Mul before it)
    ordered = sorted(
        range(len(counter.nodes)),
        key=lambda p: (
            counter.nodes[p].op_type not in QUANTIZED_WEIGHT_INPUT,
            counter.nodes[p].op_type in _QUANTIZE_NODES,
        ),
    )
    for position in ordered:
        node = counter.nodes[position]
        stats = modules[counter.node_modules[position]]
        if not stats.type:
            stats.type = node.op_type if not stats.children else "Module"
    for stats in modules.values():
        if not stats.type:
            stats.type = "Module"
    return modules


def _param_owner(counter: GraphCounter, name: str, modules: dict[str, ModuleStats]) -> str:
    prefix = name.rsplit(".", 1)[0] if "." in name else None
    if prefix in modules:
        return prefix
    if name in counter.body_param_modules:
        return counter.body_param_modules[name]
    users = counter.index.consumers.get(name, [])
    while users and counter.nodes[users[0]].op_type == "Identity":  # legacy shares weights via Identity
        users = counter.index.consumers.get(counter.nodes[users[0]].output[0], [])
    return counter.node_modules[users[0]] if users else ""


def build_onnx_report(
    counter: GraphCounter, counted: list[CountedOp], *, model_name: str, options: dict[str, Any]
) -> Report:
    graph = counter.graph
    modules = build_module_tree(counter, graph.name or "ONNX graph")
    operators: dict[str, OperatorStats] = {}
    unsupported: dict[str, UnsupportedOp] = {}
    records: list[OpRecord] = []
    forward = Cost()
    for op in counted:
        event = op.event
        if op.cost is None:
            note_unsupported(unsupported, event.op, _signature(op), event.module)
            unsupported[event.op].calls += op.runs - 1  # every iteration of a loop body calls it
            continue
        stats = modules.get(event.module) or modules[parent_of(event.module, modules)]
        if op.kind != "view":
            records.append(OpRecord(event.op, stats.name, FORWARD, _dtype(op), op.cost))
        stats.own += op.cost
        forward += op.cost
        entry = operators.setdefault(event.op, OperatorStats(op=event.op, kind=op.kind))
        entry.cost += op.cost
        entry.calls += op.runs
    for stats in modules.values():
        stats.total = stats.own
        stats.calls = 1
    for name in sorted(modules, key=lambda n: -modules[n].depth):
        if name:
            modules[parent_of(name, modules)].total += modules[name].total
    param_numel = param_bytes = 0
    packed = packed_weight_numels(counter.index, counter.initializers)
    for name in sorted(counter.params):
        tensor = counter.initializers[name]
        stored = _numel(tensor)
        numel = packed.get(name, stored)  # weights, not the bytes they are packed in
        param_numel += numel
        param_bytes += _nbytes(tensor, stored)
        owner = modules[_param_owner(counter, name, modules)]
        owner.own_params += numel
    for stats in modules.values():
        stats.params = stats.trainable_params = stats.own_params
    for name in sorted(modules, key=lambda n: -modules[n].depth):
        if name:
            parent = modules[parent_of(name, modules)]
            parent.params += modules[name].params
            parent.trainable_params += modules[name].params
    constants = [counter.initializers[n] for n in counter.constants]
    onnx_facts = {
        "producer": f"{counter.model.producer_name} {counter.model.producer_version}".strip(),
        "opsets": dict(counter.opsets),
        "exporter": "dynamo" if any("pkg.torch.onnx.name_scopes" in m for m in counter.meta) else "other",
        "nodes": len(counter.nodes),
        "constants": len(constants),
        "constant_bytes": sum(_nbytes(t, _numel(t)) for t in constants),
        "differences": differences(counter, counted),
        "quantized": quantized_facts(counter, counted),
        "control_flow": counter.control_facts,
        "onnx_tool_no_rule": counter.onnx_tool_no_rule,
        "unchecked_masks": counter.unchecked_masks,
    }
    inputs = [
        {"name": name, "shape": list(vt.shape or ()), "dtype": _dtype_name(vt.elem_type)}
        for name, vt in counter.types.types.items()
        if name in {i.name for i in graph.input} and name not in counter.initializers
    ]
    batch = inputs[0]["shape"][0] if inputs and inputs[0]["shape"] else 1
    return Report(
        model_name=model_name,
        batch_size=int(batch),
        inputs=inputs,
        modules=modules,
        operators=operators,
        unsupported=unsupported,
        forward=forward,
        backward_cost=Cost(),
        params=param_numel,
        trainable_params=param_numel,
        buffers=0,
        param_bytes=param_bytes,
        buffer_bytes=0,
        training=False,
        did_backward=False,
        options={**options, "source": "onnx", "onnx": onnx_facts},
        peak_activation_bytes=peak_activation_bytes(graph, counter.types),
        versions={},
        ops=records,
    )


def _dtype_name(elem_type: int) -> str:
    from .count import DTYPES

    return DTYPES.get(elem_type, ("unknown", 1))[0]


def _dtype(op: CountedOp) -> str:
    """The dtype an op computes in: a quantized op's activation dtype; else its first
    floating input's; else its output's."""
    if op.event.op in QUANTIZED_OPS and op.event.args[0] is not None:
        return op.event.args[0].dtype
    for tensor in op.event.args:
        if tensor is not None and tensor.is_floating:
            return tensor.dtype
    return op.event.outputs[0].dtype if op.event.outputs else "float32"


def _numel(tensor: Any) -> int:
    numel = 1
    for d in tensor.dims:
        numel *= d
    return numel


def _nbytes(tensor: Any, numel: int) -> int:
    from .count import DTYPES

    name, size = DTYPES.get(tensor.data_type, ("unknown", 1))
    return (numel * BITS[name] + 7) // 8 if name in BITS else numel * size
