"""ONNX graph -> OpEvents -> Report: the same Report a PyTorch profile returns."""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..cost import Cost
from ..formulas import attention as attn
from ..formulas import contraction, normalization
from ..registry import CountOptions, with_traffic
from ..tracing.events import OpEvent, TensorMeta
from . import modules as scopes
from . import ops, sequences
from .control import ControlFlow, control_keys
from .load import LoadedOnnx, OnnxModelError, opset_versions
from .onnx_tool import onnx_tool_macs
from .params import classify_initializers, exporter_affine
from .patterns import Fold, GraphIndex, find_folds
from .shapes import GraphTypes, ValueType, bind_inputs, infer

# onnx elem_type -> (dtype name, bytes per element)
DTYPES: dict[int, tuple[str, int]] = {
    1: ("float32", 4), 2: ("uint8", 1), 3: ("int8", 1), 4: ("uint16", 2), 5: ("int16", 2), 6: ("int32", 4),
    7: ("int64", 8), 8: ("string", 8), 9: ("bool", 1), 10: ("float16", 2), 11: ("float64", 8),
    12: ("uint32", 4), 13: ("uint64", 8), 14: ("complex64", 8), 15: ("complex128", 16), 16: ("bfloat16", 2),
    17: ("float8e4m3fn", 1), 18: ("float8e4m3fnuz", 1), 19: ("float8e5m2", 1), 20: ("float8e5m2fnuz", 1),
    21: ("uint4", 1), 22: ("int4", 1), 23: ("float4e2m1", 1),
}  # fmt: skip
BITS = {"uint4": 4, "int4": 4, "float4e2m1": 4}
_CAUSAL = re.compile(r"is_causal\s*=\s*True")
FX_NODE = "pkg.torch.onnx.fx_node"
# aten.conv2d(x, weight, None, ...): the PyTorch convolution had no bias
_NO_BIAS = re.compile(
    r"target=torch\.ops\.aten\.(?:conv\w*|convolution)\.\w+\]\(args = \(%\w+, %\w+, None[,)]"
)


@dataclass
class CountedOp:
    """One counted unit (a node or a folded pattern) and where it is charged."""

    event: OpEvent
    cost: Cost | None  # None: unsupported
    kind: str
    node: str
    inputs: tuple[str, ...] = ()  # the node's input value names (one node, not a fold)
    runs: int = 1  # how many times it runs: a Loop / Scan body's ops run once per iteration


def parse_inputs(graph: Any, inputs: Any) -> dict[str, tuple[int, ...]]:
    """``inputs``: a dict name -> shape, a shape (the first input), or a list of shapes
    (in the graph's input order); a shape is a tuple or a spec like ``"1x3x224x224"``
    or ``"x:1x3x224x224"``."""
    initializer_names = {t.name for t in graph.initializer}
    names = [i.name for i in graph.input if i.name not in initializer_names]
    if inputs is None:
        return {}
    if isinstance(inputs, Mapping):
        return {str(k): _shape(v) for k, v in inputs.items()}
    if isinstance(inputs, str) or (isinstance(inputs, Sequence) and inputs and isinstance(inputs[0], int)):
        inputs = [inputs]
    result: dict[str, tuple[int, ...]] = {}
    for position, item in enumerate(inputs):
        name = None
        if isinstance(item, str) and ":" in item:
            name, _, item = item.partition(":")
            item = item.split(":")[0]
        if name is None:
            if position >= len(names):
                raise OnnxModelError(f"{len(inputs)} input shapes given; the model has {len(names)} inputs")
            name = names[position]
        result[name] = _shape(item)
    return result


def _shape(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        try:
            return tuple(int(p) for p in value.lower().split("x") if p != "")
        except ValueError:
            raise OnnxModelError(
                f"bad shape {value!r}: expected numbers joined by x, e.g. 1x3x224x224"
            ) from None
    try:  # ints only: int(224.5) would count 224, a bool a dim of 1 (as profile()'s input_shape refuses)
        shape = tuple(_dim(v) for v in value)
    except (TypeError, ValueError):
        raise OnnxModelError(
            f"bad shape {value!r}: expected a tuple of ints such as (1, 3, 224, 224)"
        ) from None
    if any(d < 0 for d in shape):
        raise OnnxModelError(f"bad shape {shape}: dims must be >= 0")
    return shape


def _dim(value: Any) -> int:
    """A whole number (a Python or numpy int), never a float or a bool."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a dim")
    return operator.index(value)


# A causal="needed" test reads the attention mask's value: up to a 4,096 x 4,096 mask (64 MiB
# per float32 tensor of its subgraph); a larger one is counted in full, with a NOTE.
MAX_MASK_ELEMENTS = 1 << 24


class GraphCounter:
    """Counts the main graph of one model: events, module paths, params."""

    def __init__(
        self,
        loaded: LoadedOnnx,
        types: GraphTypes,
        options: CountOptions,
        *,
        body: Any = None,
        outer: GraphCounter | None = None,
        module: str = "",
    ) -> None:
        """The main graph; or with ``body``, ``outer`` and ``module``, a Loop / Scan / If
        body whose nodes are all charged to ``module`` (the control node's)."""
        self.loaded = loaded
        self.model = loaded.model
        self.graph = loaded.model.graph if body is None else body
        self.root: GraphCounter = self if outer is None else outer.root
        self.types = types
        self.options = options
        self.opsets = opset_versions(loaded.model)
        self.nodes = list(self.graph.node)
        own = {t.name: t for t in self.graph.initializer}
        self.initializers: dict[str, Any] = own if outer is None else {**outer.initializers, **own}
        self.index = GraphIndex(self.nodes, set(self.initializers), types)
        self.meta = [scopes.metadata(n) for n in self.nodes]
        self.module_types: dict[str, str] = {}
        self.control_facts: list[dict[str, Any]] = []
        self.onnx_tool_no_rule: dict[str, int] = {}
        # causal="needed": why an attention mask could not be read (it is then counted in full)
        self.unchecked_masks: list[str] = []
        self.body_param_modules: dict[str, str] = {}
        self._constants: Any = None  # evaluate.ConstantValues, made when a mask must be read
        if outer is None:
            self.params, self.constants = classify_initializers(self.index, self.initializers, self.meta)
            self.node_modules = self._node_modules()
        else:
            self.params = outer.params | self._body_params(own, module)
            self.constants = set()
            self.node_modules = [module] * len(self.nodes)

    def _body_params(self, own: dict[str, Any], module: str) -> set[str]:
        """Weights a body reads (its own initializers, or the outer graph's) are parameters
        too; the root counts them, charged to ``module`` when only the body reads them."""
        read = {name: self.initializers[name] for name in self.index.consumers if name in self.initializers}
        found, _ = classify_initializers(self.index, {**read, **own}, self.meta)
        for name in found - self.root.params:
            self.root.body_param_modules.setdefault(name, module)
        self.root.params |= found
        self.root.initializers.update(own)
        self.root.constants = (self.root.constants | set(own)) - self.root.params
        return found

    # -- modules ----------------------------------------------------------------
    def _node_modules(self) -> list[str]:
        paths = []
        for node, meta in zip(self.nodes, self.meta, strict=True):
            scope = scopes.dynamo_scope(meta)
            if scope is not None:
                self.module_types.update(scope.classes)
                path = scope.module
            else:
                path = scopes.legacy_path(node.name) or ""
            weight = node.input[1] if len(node.input) > 1 else ""
            original = scopes.original_weight_name(weight)
            if node.op_type in ("Conv", "ConvTranspose", "Gemm") and original.endswith(".weight"):
                if weight in self.params:  # a folded conv keeps its own module (dynamo)
                    path = original.removesuffix(".weight")
            paths.append(path)
        paths = scopes.tool_added_modules(self.nodes, self.meta, paths, self.index, self.params)
        known = set(paths)
        renamed = scopes.unsuffix(known)
        return [renamed.get(p, p) for p in paths]

    # -- values -----------------------------------------------------------------
    def meta_of(self, name: str, node: Any, need: bool) -> TensorMeta | None:
        """TensorMeta of a value; with ``need``, an unknown shape is an error that says
        which dim is unbound and which node needs it."""
        if not name or name in self.types.sequences:  # a sequence holds no tensor of its own
            return None
        vt = self.types.types.get(name)
        if vt is None or not vt.static:
            if need:
                raise self.shape_error(name, node, vt)
            return None
        dtype, itemsize = DTYPES.get(vt.elem_type, ("unknown", 1))
        role = "param" if name in self.params else ("buffer" if name in self.initializers else "activation")
        return TensorMeta(tuple(int(d) for d in vt.shape), dtype, itemsize, role)  # type: ignore[union-attr]

    def shape_error(self, name: str, node: Any, vt: ValueType | None) -> OnnxModelError:
        label = _label(node)
        symbols = sorted(
            {d for d in (vt.shape or ()) if isinstance(d, str) and d in self.types.unbound} if vt else set()
        )
        unbound = symbols or sorted(self.types.unbound)
        if unbound:
            dims = ", ".join(repr(d) for d in unbound)
            several = len(unbound) > 1  # name them all: binding one would only meet the next error
            return OnnxModelError(
                f"{'dims' if several else 'dim'} {dims} {'are' if several else 'is'} unbound: {label} needs "
                f"the shape of {name!r}{' ' + str(vt.shape) if vt and vt.shape is not None else ''}; "
                f"bind {'them' if several else 'it'} with dims={{{', '.join(f'{d!r}: ...' for d in unbound)}}} "
                f"(CLI: {' '.join(f'--dim {d}=SIZE' for d in unbound)})"
            )
        return OnnxModelError(self.unknown_shape_reason(name, node, vt))

    def unknown_shape_reason(self, name: str, node: Any, vt: ValueType | None) -> str:
        """Which value's shape is unknown, which node it comes from, and why: the first
        node (walking back from ``name``) whose inputs are known but whose output is not."""
        role = "an output of" if name in node.output else "read by"
        head = f"the shape of {name!r}, {role} {_label(node)}, could not be inferred"
        head += f" ({'rank unknown' if vt is None or vt.shape is None else vt.shape})"
        value, source, reader = name, self.index.node_of(name), node
        while source is not None:
            unknown = next(
                (i for i in source.input if i and self.index.node_of(i) and not self._known(i)), None
            )
            if unknown is None:
                break
            value, source, reader = unknown, self.index.node_of(unknown), source
        if source is None:
            return f"{head}: give every input's shape (inputs=..., CLI --input NAME:SHAPE)"
        if value in self.types.sequences:  # a sequence has no shape: its elements are what is unknown
            head += (
                f": {_label(reader)} reads the sequence {value!r}, the output of {_label(source)}, whose "
                f"elements (how many, and their shapes) are unknown" + _concat_needs(reader)
            )
            if source.op_type not in sequences.BUILDERS and value not in self.types.refused:
                return (
                    f"{head}: flopmeter follows a sequence's elements through "
                    f"{', '.join(sorted(sequences.BUILDERS))}, not through {source.op_type}"
                )
        elif value != name:
            head += f": it comes from {value!r}, the output of {_label(source)}, whose shape is unknown too"
        refused = self.types.refused.get(value)
        if refused:  # ONNX's shape inference rejected the node that makes it: say why
            return (
                f"{head}: ONNX shape inference refused the node that computes it, {_label(source)} "
                f"({refused}); check the input shapes given"
            )
        run_time = [i for i in source.input if i in self.types.not_constant]
        if len(run_time) > 1 and run_time[0] == source.input[0]:
            run_time = run_time[1:]  # the data input: the others (scales, shape, ...) are read as values
        if run_time:
            return (
                f"{head}: the output shape of {_label(source)} depends on the value of its input "
                f"{run_time[0]!r}, and {self.types.not_constant[run_time[0]]}; flopmeter can use only "
                "values that constants and the input shapes determine (export that value as a constant)"
            )
        domain = "" if source.domain == "ai.onnx" else source.domain
        if domain:
            return (
                f"{head}: {ops.onnx_op_name(domain, source.op_type)} is not a standard ONNX op; "
                "ONNX cannot infer its shapes and flopmeter has no rule that applies (declare its "
                "output shapes in the graph's value_info: onnx.helper.make_tensor_value_info)"
            )
        shapes = ", ".join(f"{i!r} {self._shape_text(i)}" for i in source.input if i)
        return (
            f"{head}: ONNX shape inference could not infer it from the inputs of {_label(source)} ({shapes})"
        )

    def _known(self, name: str) -> bool:
        if name in self.types.sequences:
            return sequences.known(self.types, name)
        vt = self.types.types.get(name)
        return vt is not None and vt.static

    def _shape_text(self, name: str) -> str:
        vt = self.types.types.get(name)
        return "rank unknown" if vt is None or vt.shape is None else str(vt.shape)

    # -- events -----------------------------------------------------------------
    def node_event(self, position: int, need: bool) -> OpEvent:
        node = self.nodes[position]
        domain = "" if node.domain == "ai.onnx" else node.domain
        args = tuple(self.meta_of(name, node, need) for name in node.input)
        if node.op_type == "ConcatFromSequence" and node.input[0] in self.types.sequence_items:
            args = self._sequence_metas(node.input[0])  # it reads every element, as Concat its inputs
        if node.op_type in ("Conv", "ConvTranspose") and self._bias_added_by_exporter(position):
            args = args[:2]  # an unoptimized dynamo export's zero bias, which PyTorch's conv had not
        if exporter_affine(self.index, self.meta, position):
            args = args[:1]  # the ones and zeros an exporter gives an InstanceNorm without affine
        outputs = tuple(m for m in (self.meta_of(name, node, need) for name in node.output) if m is not None)
        kwargs: dict[str, Any] = {
            a.name: _attribute(a) for a in node.attribute if a.type not in (5, 10, 11, 13)
        }
        values = {
            i: [int(v) for v in self.types.values[name].reshape(-1)]
            for i, name in enumerate(node.input)
            if name in self.types.values and self.types.values[name].dtype.kind in "biu"
        }
        kwargs["input_values"] = values
        kwargs["opset"] = self.opsets.get(domain, 1)
        return OpEvent(
            ops.onnx_op_name(domain, node.op_type), args, kwargs, outputs, self.node_modules[position]
        )

    def _sequence_metas(self, name: str) -> tuple[TensorMeta | None, ...]:
        """TensorMeta of each element of the sequence ``name`` (sequences.py): the tensor put in,
        or a split's piece (an activation)."""
        metas: list[TensorMeta | None] = []
        for item in self.types.sequence_items[name]:
            if item.name is not None and item.name in self.types.types:
                metas.append(self.meta_of(item.name, None, False))
            elif item.type.static and item.type.shape is not None:
                dtype, itemsize = DTYPES.get(item.type.elem_type, ("unknown", 1))
                metas.append(
                    TensorMeta(tuple(int(d) for d in item.type.shape), dtype, itemsize, "activation")
                )
        return tuple(metas)

    def causal_by_value(self, masks: list[tuple[str, str]]) -> bool:
        """Whether an attention mask that constants and shapes determine (transformers'
        masks built from aranges and comparisons, not a Trilu) keeps exactly the lower
        triangle of every (L, S) block: key j for query i when j <= i (torch's is_causal)."""
        import numpy as np

        from .evaluate import ConstantValues

        if self._constants is None:
            scratch = GraphTypes(
                types=self.types.types,
                values=dict(self.types.values),
                not_constant=dict(self.types.not_constant),
            )
            self._constants = ConstantValues(self.graph, scratch, self.opsets, MAX_MASK_ELEMENTS)
            for node in self.nodes:
                self._constants.add(node)
        why_not = []
        for how, name in masks:
            value = self._constants.evaluate(name)
            if value is None:
                why_not.append(f"{name!r}: {self._constants.why_not.get(name, 'not a constant')}")
            if value is None or value.ndim < 2:
                continue
            if how == "add":
                if not np.all((value == 0) | (value <= -1e4)):
                    continue
                kept = value == 0
            else:
                kept = value.astype(bool) if how == "keep" else ~value.astype(bool)
            rows, cols = kept.shape[-2:]
            blocks = kept.reshape(-1, rows, cols)
            if np.array_equal(blocks, np.broadcast_to(np.tri(rows, cols, dtype=bool), blocks.shape)):
                return True
        unchecked = self.root.unchecked_masks  # a mask every layer shares is listed once
        unchecked += [reason for reason in dict.fromkeys(why_not) if reason not in unchecked]
        return False

    def _causal_mask_input(self, node: Any) -> bool:
        """An opset-23 Attention without is_causal whose attn_mask (bool: True keeps;
        float: added) is causal by value."""
        if (
            any(a.name == "is_causal" and a.i for a in node.attribute)
            or len(node.input) < 4
            or not node.input[3]
        ):
            return False
        vt = self.types.types.get(node.input[3])
        return self.causal_by_value(
            [("keep" if vt is not None and vt.elem_type == 9 else "add", node.input[3])]
        )

    def _bias_added_by_exporter(self, position: int) -> bool:
        """Dynamo without its optimizer gives a bias-free conv a bias of zeros (an Expand):
        the fx node says the PyTorch conv had none, and no BatchNorm was folded into it."""
        meta = self.meta[position]
        folded = "FuseBatchNorm" in meta.get("pkg.onnxscript.rewriter.rule_name", "")
        return not folded and _NO_BIAS.search(meta.get(FX_NODE, "")) is not None

    def count(self) -> list[CountedOp]:
        fx_of = {i: m.get("pkg.torch.onnx.fx_node", "") for i, m in enumerate(self.meta)}
        folds = {f.anchor: f for f in find_folds(self.index, fx_of)}
        folded = {i for f in folds.values() for i in f.members}
        counted: list[CountedOp] = []
        for position, node in enumerate(self.nodes):
            if position in folds:
                counted.append(self.fold_op(folds[position]))
                continue
            if position in folded:
                continue
            op = ops.onnx_op_name("" if node.domain == "ai.onnx" else node.domain, node.op_type)
            if node.output and node.output[0] in self.types.control:
                counted += self.count_control(position)
                continue
            kind = ops.kind_of(op)
            if kind == "view":
                event = self.node_event(position, need=False)
                counted.append(CountedOp(event, Cost(), kind, node.name))
                continue
            event = self.node_event(position, need=kind != "unsupported")
            if op == "onnx.Attention" and self.options.causal == "needed" and self._causal_mask_input(node):
                event.kwargs["is_causal"] = 1  # its attn_mask is a causal mask of constants
            cost = ops.cost_of(event, self.options) if kind != "unsupported" else None
            if cost is not None:
                cost = replace(cost, onnx_tool_macs=self.onnx_tool_of(position, event))
            counted.append(CountedOp(event, cost, kind, node.name, tuple(node.input)))
        return counted

    def onnx_tool_of(self, position: int, event: OpEvent | None = None) -> int:
        """onnx-tool's MACs for one node (the onnx-tool convention); a node it has no
        rule for is 0 and counted in ``onnx_tool_no_rule``."""
        node = self.nodes[position]
        value = None
        if node.domain in ("", "ai.onnx"):
            event = event if event is not None else self.node_event(position, need=False)
            try:
                value = onnx_tool_macs(node.op_type, event)
            except (AssertionError, IndexError, TypeError, ValueError):  # a shape it needs is unknown
                value = None
        if value is None:
            name = ops.onnx_op_name("" if node.domain == "ai.onnx" else node.domain, node.op_type)
            self.root.onnx_tool_no_rule[name] = self.root.onnx_tool_no_rule.get(name, 0) + 1
            return 0
        return value

    def count_control(self, position: int) -> list[CountedOp]:
        """A Loop / Scan / If: its bodies' ops, each cost times the runs it stands for,
        charged to the node's module; the trip count or branch goes to the facts."""
        node = self.nodes[position]
        flow: ControlFlow = self.types.control[node.output[0]]
        module = self.node_modules[position]
        self.root.control_facts.append(flow.facts(module))
        counted = []
        for run in flow.runs:
            body = GraphCounter(
                self.loaded, run.types, self.options, body=run.graph, outer=self, module=module
            )
            for op in body.count():
                op.node = f"{node.name or node.output[0]}/{run.label}/{op.node}"
                op.cost = None if op.cost is None else op.cost.scaled(run.times)
                op.runs *= run.times
                counted.append(op)
        return counted

    def fold_op(self, fold: Fold) -> CountedOp:
        node = self.nodes[fold.anchor]
        module = self.node_modules[fold.anchor]
        if fold.op == "pattern.linear":
            matmul = self.node_event(fold.extra["matmul"], need=True)
            add = self.node_event(fold.extra["add"], need=True)
            bias = next(a for a in add.args if a is not None and a.role != "activation")
            out = add.outputs[0]
            sizes = ops._matmul_sizes(matmul.args[0], matmul.args[1], out)
            work = contraction.matmul(*sizes, bias_adds=out.numel)
            event = OpEvent("onnx.MatMul+Add", (matmul.args[0], matmul.args[1], bias), {}, (out,), module)
        elif fold.op == "pattern.group_norm":
            norm = self.node_event(fold.extra["norm"], need=True)
            x = norm.args[0]
            assert x is not None
            planes = x.shape[0] * x.shape[1]  # (N, groups, ...): one plane per sample and group
            normed = self.meta_of(self.nodes[fold.members[-1]].output[0], node, True)
            work = normalization.normalize_with_statistics(
                planes, x.numel // planes, weight=fold.extra["weight"], bias=fold.extra["bias"]
            )
            event = OpEvent("pattern.group_norm", (x,), {}, (normed,) if normed else (), module)
        elif fold.op == "pattern.rsqrt":
            source = self.meta_of(fold.extra["input"], node, True)
            result = self.meta_of(self.nodes[fold.members[-1]].output[0], node, True)
            assert source is not None and result is not None
            work = Cost(flops=result.numel)
            event = OpEvent("pattern.rsqrt", (source,), {}, (result,), module)
        else:
            scores = self.node_event(fold.extra["scores"], need=True)
            output = self.node_event(fold.extra["output"], need=True)
            q, kt, v = scores.args[0], scores.args[1], output.args[1]
            score = scores.outputs[0]
            heads = score.numel // (score.shape[-2] * score.shape[-1])
            if not fold.extra["causal"] and self.options.causal == "needed":
                fold.extra["causal"] = self.causal_by_value(fold.extra["masks"])
            work = attn.attention(
                heads,
                score.shape[-2],
                score.shape[-1],
                q.shape[-1],
                v.shape[-1],
                masked=fold.extra["masked"],
                causal_needed=fold.extra["causal"] and self.options.causal == "needed",
            )
            if not fold.extra["scaled"]:  # no scale in the graph (a model's q * scale is its own Mul)
                unscaled = attn.attention(
                    heads, score.shape[-2], score.shape[-1], 1, 1,
                    causal_needed=fold.extra["causal"] and self.options.causal == "needed",
                )  # fmt: skip
                kept = unscaled.macs // 2  # its MACs are the kept scores x (1 + 1)
                work = replace(work, flops=work.flops - kept)
            event = OpEvent(
                "pattern.attention", (q, kt, v), {"causal": fold.extra["causal"]}, output.outputs, module
            )
        tool = sum(self.onnx_tool_of(member) for member in fold.members)
        return CountedOp(event, replace(with_traffic(work, event), onnx_tool_macs=tool), "counted", node.name)


def _concat_needs(reader: Any) -> str:
    """What ConcatFromSequence needs of its sequence's elements for its output shape."""
    if reader.op_type != "ConcatFromSequence":
        return ""
    stacks = any(a.name == "new_axis" and a.i for a in reader.attribute)
    return ", and its new axis is their number" if stacks else ", and its size along the axis is their sum"


def _label(node: Any) -> str:
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


def _attribute(attribute: Any) -> Any:
    from onnx import helper

    value = helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
    return value


def count_graph(
    loaded: LoadedOnnx, inputs: Any, dims: Mapping[str, int] | None, options: CountOptions
) -> tuple[GraphCounter, list[CountedOp]]:
    graph = loaded.model.graph
    loops = control_keys(graph)
    for name, value in (dims or {}).items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise OnnxModelError(f"dim {name!r} must be a non-negative int, got {value!r}")
        if value > 2**63 - 1:  # onnx's shapes hold int64 (a raw "Value out of range" from its helper)
            raise OnnxModelError(f"dim {name!r} must fit in int64 (at most 2**63 - 1), got {value}")
        if value == 0 and name not in loops:  # an empty tensor: every count would be a silent 0
            raise OnnxModelError(f"dim {name!r} must be at least 1 (0 makes an empty input), got 0")
    trip_counts = {k: v for k, v in (dims or {}).items() if k in loops}
    input_dims = {k: v for k, v in (dims or {}).items() if k not in loops}
    input_types, unbound = bind_inputs(graph, parse_inputs(graph, inputs), input_dims)
    types = infer(loaded.model, input_types, unbound, trip_counts, input_dims)
    counter = GraphCounter(loaded, types, options)
    return counter, counter.count()
