"""Shapes and dtypes of every value in an ONNX graph, with the user's dims bound.

One pass over the nodes in graph order:
- each node's output types come from ONNX's own per-node shape inference
  (``onnx.shape_inference.infer_node_outputs``), given its input types and any
  input values known as constants;
- shape subgraphs (Shape -> Gather -> Concat -> Reshape ...) are folded: a node
  whose inputs and outputs are all integer or boolean tensors with known values
  is evaluated (onnx's reference implementation of that one node), so Reshape
  and Expand targets become known. Float math is not folded as it goes;
- a node whose output shape is still unknown gets the values of its inputs that
  constants alone determine (Resize's float scales) from ``evaluate.py``, and its
  shape is inferred again with them.
Ops that onnx has no schema for (com.microsoft) get their shapes from
``contrib_shapes`` rules where flopmeter has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .load import OnnxModelError, opset_versions

if TYPE_CHECKING:
    from .evaluate import ConstantValues
    from .sequences import Item

# Integer tensors larger than this are never folded (shape tensors are tiny).
MAX_FOLDED_ELEMENTS = 4096
INTEGER_TYPES = frozenset({2, 3, 4, 5, 6, 7, 9, 12, 13, 21, 22})  # uint8..int64, bool, (u)int4


@dataclass
class ValueType:
    """A value's dtype (onnx elem_type) and shape: ints, or strings for unknown dims
    (a user's dim name such as "T", or "?" when nothing could say)."""

    elem_type: int
    shape: tuple[int | str, ...] | None  # None: rank unknown

    @property
    def static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)


@dataclass
class GraphTypes:
    """Types of every value, the folded integer constants, and the user's unbound dims."""

    types: dict[str, ValueType] = field(default_factory=dict)
    # name -> numpy array: folded int/bool values, and values computed by evaluate.py
    values: dict[str, Any] = field(default_factory=dict)
    unbound: set[str] = field(default_factory=set)
    # Loop / Scan / If: the bodies to count, by the node's first output (see control.py)
    control: dict[str, Any] = field(default_factory=dict)
    trip_counts: dict[str, int] = field(default_factory=dict)  # the user's, by node name
    # why ONNX's shape inference refused a node (by its outputs), for the error that follows
    refused: dict[str, str] = field(default_factory=dict)
    # why a value a node's shape may depend on is not a constant (evaluate.py), by value
    not_constant: dict[str, str] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)  # the user's bound dims, by name
    # the value_info and output shapes the model declares, the user's dims bound in them
    declared: dict[str, ValueType] = field(default_factory=dict)
    # values of sequence type (SplitToSequence's output): no tensor shape of their own; the
    # types of their elements reach SequenceAt through ONNX's inference
    sequences: set[str] = field(default_factory=set)
    # the elements of the sequences whose builders flopmeter follows (sequences.py), by value
    sequence_items: dict[str, list[Item]] = field(default_factory=dict)


def bind_inputs(
    graph: Any, inputs: Mapping[str, tuple[int, ...]] | None, dims: Mapping[str, int] | None
) -> tuple[dict[str, ValueType], set[str]]:
    """Types of the graph inputs with the user's shapes and dims applied.

    ``inputs``: name -> full shape (overrides the declared shape); ``dims``: symbolic
    dim name -> value. Returns the types and the dim names left unbound. A dim of 0 is
    refused in the first input only (given or declared)."""
    initializer_names = {t.name for t in graph.initializer}
    declared = [i for i in graph.input if i.name not in initializer_names]
    known = {i.name for i in declared}
    for name in inputs or {}:
        if name not in known:
            raise OnnxModelError(
                f"the model has no input named {name!r}; its inputs are: {', '.join(sorted(known)) or 'none'}"
            )
    dims = dict(dims or {})
    used_dims: set[str] = set()
    unbound: set[str] = set()
    types: dict[str, ValueType] = {}
    for position, value in enumerate(declared):
        # an empty first input leaves nothing to count (every count a silent 0); a later one
        # may be empty, as in PyTorch's profile (a KV cache traced empty: Concat(past, x))
        first = position == 0
        tensor = value.type.tensor_type
        if value.type.WhichOneof("value") in (None, "tensor_type") and tensor.elem_type == 0:
            raise OnnxModelError(
                f"input {value.name!r} declares no element type (float32, int64, ...): the file is "
                "malformed (ONNX requires a type on every graph input); re-export or fix the file"
            )
        if (inputs or {}).get(value.name) is not None:
            shape: tuple[int | str, ...] = tuple(int(d) for d in inputs[value.name])  # type: ignore[index]
            if first and 0 in shape:
                raise OnnxModelError(
                    f"input {value.name!r}: the shape given, {shape}, has a dim of 0 (an empty input counts nothing)"
                )
            if tensor.HasField("shape") and len(tensor.shape.dim) not in (0, len(shape)):
                raise OnnxModelError(
                    f"input {value.name!r} has rank {len(tensor.shape.dim)} in the model; "
                    f"the shape given, {tuple(shape)}, has rank {len(shape)}"
                )
        elif tensor.HasField("shape"):
            parts: list[int | str] = []
            for index, dim in enumerate(tensor.shape.dim):
                if dim.HasField("dim_value"):
                    if first and dim.dim_value == 0:
                        raise OnnxModelError(
                            f"input {value.name!r} declares a dim of 0 at index {index} (an empty input "
                            f"counts nothing): give its shape with inputs={{{value.name!r}: (...)}} "
                            f"(CLI: --input {value.name}:SHAPE)"
                        )
                    parts.append(int(dim.dim_value))
                else:
                    label = dim.dim_param or f"{value.name}[{index}]"  # an unnamed dim: x[0]
                    if label in dims:
                        used_dims.add(label)
                        parts.append(int(dims[label]))
                    else:
                        unbound.add(label)
                        parts.append(label)
            shape = tuple(parts)
        else:
            raise OnnxModelError(
                f"input {value.name!r} has no declared shape: give it with "
                f"inputs={{{value.name!r}: (...)}} (CLI: --input {value.name}:SHAPE)"
            )
        types[value.name] = ValueType(tensor.elem_type, shape)
    unused = set(dims) - used_dims
    if unused:
        names = symbolic_dims(graph)
        raise OnnxModelError(
            f"dim {sorted(unused)[0]!r} is not a symbolic dim of any input; "
            f"the model's symbolic dims are: {', '.join(names) or 'none'}"
        )
    return types, unbound


def symbolic_dims(graph: Any) -> list[str]:
    """The names of the graph inputs' dims that have no value (an unnamed one as
    ``INPUT[i]``), sorted: what ``dims`` binds."""
    initializer_names = {t.name for t in graph.initializer}
    return sorted(
        {
            d.dim_param or f"{i.name}[{index}]"
            for i in graph.input
            if i.name not in initializer_names
            for index, d in enumerate(i.type.tensor_type.shape.dim)
            if not d.HasField("dim_value")
        }
    )


def infer(
    model: Any,
    input_types: dict[str, ValueType],
    unbound: set[str],
    trip_counts: Mapping[str, int] | None = None,
    dims: Mapping[str, int] | None = None,
) -> GraphTypes:
    """Types of every value of the main graph (see the module docstring).
    ``trip_counts``: the user's trip counts of Loop nodes, by node name; ``dims``: the
    user's symbolic dims (for the shapes the model declares of custom ops' outputs)."""
    result = GraphTypes(
        types=dict(input_types),
        unbound=set(unbound),
        trip_counts=dict(trip_counts or {}),
        dims=dict(dims or {}),
    )
    return infer_graph(model, model.graph, result)


def infer_graph(model: Any, graph: Any, result: GraphTypes) -> GraphTypes:
    """Fill ``result`` (which holds the graph's input types, and for a subgraph the
    outer scope's types and values) with the types of every value of ``graph``."""
    import onnx
    from onnx import numpy_helper

    from .evaluate import ConstantValues

    opsets = opset_versions(model)
    constants = ConstantValues(graph, result, opsets)
    result.declared.update(declared_types(graph, result.dims))
    for tensor in graph.initializer:
        result.types[tensor.name] = ValueType(tensor.data_type, tuple(int(d) for d in tensor.dims))
        if _foldable_initializer(tensor):
            result.values[tensor.name] = numpy_helper.to_array(tensor)
    proto_types = {name: _to_proto(vt) for name, vt in result.types.items()}
    for node in graph.node:
        if node.op_type in ("Loop", "Scan", "If") and node.domain in ("", "ai.onnx"):
            from .control import infer_control

            for name, vt in infer_control(model, node, result).items():
                result.types[name] = vt
                proto_types[name] = _to_proto(vt)
        else:
            _infer_node(onnx, numpy_helper, node, opsets, result, proto_types, model.opset_import, constants)
        constants.add(node)
    return result


def declared_types(graph: Any, dims: Mapping[str, int]) -> dict[str, ValueType]:
    """The static types the graph declares for its values (value_info, outputs), with
    the user's symbolic dims substituted: shapes ONNX cannot infer for custom ops."""
    declared = {}
    for info in [*graph.value_info, *graph.output]:
        vt = from_proto(info.type)
        if vt is None or vt.shape is None:
            continue
        shape = tuple(dims.get(d, d) if isinstance(d, str) else d for d in vt.shape)
        if all(isinstance(d, int) for d in shape):
            declared[info.name] = ValueType(vt.elem_type, shape)
    return declared


def _foldable_initializer(tensor: Any) -> bool:
    size = 1
    for d in tensor.dims:
        size *= d
    return tensor.data_type in INTEGER_TYPES and size <= MAX_FOLDED_ELEMENTS and tensor.data_location != 1


def _to_proto(vt: ValueType) -> Any:
    from onnx import helper

    shape = (
        None
        if vt.shape is None
        else [d if isinstance(d, int) else (d if d != "?" else None) for d in vt.shape]
    )
    return helper.make_tensor_type_proto(vt.elem_type, shape)


def from_proto(proto: Any) -> ValueType | None:
    if not proto.HasField("tensor_type"):
        return None
    tensor = proto.tensor_type
    if not tensor.HasField("shape"):
        return ValueType(tensor.elem_type, None)
    dims: list[int | str] = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or "?")
    return ValueType(tensor.elem_type, tuple(dims))


def _infer_node(
    onnx: Any,
    numpy_helper: Any,
    node: Any,
    opsets: dict[str, int],
    result: GraphTypes,
    proto_types: dict[str, Any],
    opset_import: Any,
    constants: ConstantValues,
) -> None:
    domain = "" if node.domain == "ai.onnx" else node.domain
    if node.op_type == "Constant" and domain == "":
        _constant(onnx, numpy_helper, node, result, proto_types)
        return
    outputs: dict[str, Any] = {}
    try:
        schema = onnx.defs.get_schema(node.op_type, opsets.get(domain, 1), domain)
    except Exception:  # no schema: contrib ops, custom domains
        schema = None
    if schema is None:
        from .contrib_shapes import standard_equivalent

        standard = standard_equivalent(node)
        if standard is not None:  # a fused contrib op whose outputs a standard op's inference gives
            node, schema = standard, onnx.defs.get_schema(standard.op_type, opsets.get("", 1), "")
    if schema is not None:
        outputs = _node_outputs(onnx, numpy_helper, schema, node, result, proto_types, opset_import)
        if not _all_known(node, outputs) and _evaluate_inputs(node, constants):
            outputs = _node_outputs(onnx, numpy_helper, schema, node, result, proto_types, opset_import)
    else:
        from .contrib_shapes import contrib_output_types

        for name, contrib in contrib_output_types(node, result.types).items():
            outputs[name] = _to_proto(contrib)
        for name in node.output:  # a custom op: the shape the model declares, if any
            declared = result.declared.get(name)
            if name not in outputs and declared is not None:
                outputs[name] = _to_proto(declared)
    for name, proto in outputs.items():
        inferred = from_proto(proto)
        if inferred is not None:
            result.types[name] = inferred
            proto_types[name] = proto
        elif proto.HasField("sequence_type"):
            result.sequences.add(name)
            proto_types[name] = proto
    if domain == "":  # a sequence's elements, and the shapes of what reads it (ConcatFromSequence)
        from .sequences import follow

        for name, vt in follow(node, result).items():
            result.types[name] = vt
            proto_types[name] = _to_proto(vt)
    _fold(node, domain, opsets, result, proto_types)


def _node_outputs(
    onnx: Any,
    numpy_helper: Any,
    schema: Any,
    node: Any,
    result: GraphTypes,
    proto_types: dict[str, Any],
    opset_import: Any,
) -> dict[str, Any]:
    """ONNX's inference of one node's output types from its input types and known
    input values; {} when it refuses (the reason goes to ``result.refused``)."""
    input_types = {name: proto_types[name] for name in node.input if name in proto_types}
    input_data = {
        name: numpy_helper.from_array(result.values[name]) for name in node.input if name in result.values
    }
    try:
        outputs: dict[str, Any] = onnx.shape_inference.infer_node_outputs(
            schema, node, input_types, input_data, opset_imports=list(opset_import)
        )
    except Exception as error:  # inference refused (unknown dims, odd attributes): types stay unknown
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        for name in node.output:
            result.refused[name] = reason
        return {}
    for name in node.output:
        result.refused.pop(name, None)
    return outputs


def _all_known(node: Any, outputs: dict[str, Any]) -> bool:
    """Whether every output has a known rank and no dim that nothing could say ("?";
    a user's unbound dim name is known to be the user's to give)."""
    for name in node.output:
        if not name:
            continue
        inferred = from_proto(outputs[name]) if name in outputs else None
        if inferred is None or inferred.shape is None or "?" in inferred.shape:
            return False
    return True


def _evaluate_inputs(node: Any, constants: ConstantValues) -> bool:
    """Compute the inputs of ``node`` whose values constants determine; whether any
    new value was found."""
    found = False
    for name in node.input:
        if name and name not in constants.result.values:
            found |= constants.evaluate(name) is not None
    return found


def _constant(
    onnx: Any, numpy_helper: Any, node: Any, result: GraphTypes, proto_types: dict[str, Any]
) -> None:
    import numpy as np

    attribute = node.attribute[0] if node.attribute else None
    if attribute is None:
        return
    if attribute.name == "value":
        tensor = attribute.t
        vt = ValueType(tensor.data_type, tuple(int(d) for d in tensor.dims))
        if _foldable_initializer(tensor):
            result.values[node.output[0]] = numpy_helper.to_array(tensor)
    elif attribute.name in ("value_int", "value_ints"):
        array = np.array(onnx.helper.get_attribute_value(attribute), dtype=np.int64)
        vt = ValueType(7, tuple(array.shape))
        result.values[node.output[0]] = array
    elif attribute.name in ("value_float", "value_floats"):
        count = 1 if attribute.name == "value_float" else len(attribute.floats)
        vt = ValueType(1, () if attribute.name == "value_float" else (count,))
    else:
        return
    result.types[node.output[0]] = vt
    proto_types[node.output[0]] = _to_proto(vt)


def _fold(
    node: Any, domain: str, opsets: dict[str, int], result: GraphTypes, proto_types: dict[str, Any]
) -> None:
    """Evaluate an integer-only node whose inputs are known (shape arithmetic)."""
    import numpy as np

    if node.op_type in ("Shape", "Size") and domain == "":
        source = result.types.get(node.input[0])
        if source is None or not source.static:
            return
        shape = np.array(source.shape, dtype=np.int64)
        if node.op_type == "Size":
            result.values[node.output[0]] = np.array(int(np.prod(shape)), dtype=np.int64)
            return
        attrs = {a.name: a.i for a in node.attribute}
        start, end = attrs.get("start", 0), attrs.get("end", len(shape))
        result.values[node.output[0]] = shape[start:end] if "end" in attrs else shape[start:]
        return
    if domain != "" or node.op_type in ("Loop", "If", "Scan"):
        return
    inputs = [name for name in node.input if name]
    if not inputs or not all(name in result.values for name in inputs):
        return
    out_types = [result.types.get(name) for name in node.output]
    if not all(t is not None and t.elem_type in INTEGER_TYPES for t in out_types):
        return
    try:
        from onnx.reference.ops import load_op

        op_class = load_op("", node.op_type, opsets.get("", 1))
        run_params = {
            "log": lambda *a: None,
            "opsets": opsets,
            "verbose": 0,
            "new_ops": None,
            "evaluator_cls": None,
        }
        values = op_class(node, run_params).run(
            *[result.values[name] if name else None for name in node.input]
        )
    except Exception:  # not evaluable here: the value stays unknown
        return
    for name, value in zip(node.output, values, strict=False):
        array = np.asarray(value)
        if array.size > MAX_FOLDED_ELEMENTS:
            continue
        result.values[name] = array
        vt = ValueType(result.types[name].elem_type, tuple(int(d) for d in array.shape))
        result.types[name] = vt
        proto_types[name] = _to_proto(vt)
