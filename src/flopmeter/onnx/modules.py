"""Which module each ONNX node belongs to, and the module tree.

- Dynamo exports tag nodes with ``pkg.torch.onnx.name_scopes`` (the module path,
  then the fx node) and ``pkg.torch.onnx.class_hierarchy`` (the classes along it):
  the PyTorch qualified names and types, by construction.
- Legacy (TorchScript) exports name nodes ``/layer1/layer1.0/conv1/Conv``: the path
  is the slash-separated scopes; a scope that starts with its parent's path plus a
  dot is already qualified (``layer1`` then ``layer1.0``), and one that starts with its
  parent's scope plus a dot is qualified from its grandparent
  (``/stages/stages.0/blocks/blocks.0/attn`` is ``stages.0.blocks.0.attn``). A repeated call of one
  module gets a ``_1`` suffix; it is mapped back to the module when that exists.
- Nodes a tool added after the export (onnxruntime's quantizers: ``conv1.weight_quantized``
  read by an unscoped ``ConvInteger``; its rescale ``Mul`` and bias ``Add``) have neither:
  see ``tool_added_modules``.
- Otherwise every node belongs to the root.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

_SUFFIX = re.compile(r"^(.*)_(\d+)$")
_ORT_FUSION = re.compile(r"/\w+Fusion/$")
_ORT_FUSED_WEIGHT = re.compile(r"^[A-Za-z]+Fusion_W_")  # ConvMulFusion_W_conv1.weight


@dataclass
class NodeScope:
    """The module path of one node and the class names along it (dynamo only)."""

    module: str
    classes: dict[str, str] = field(default_factory=dict)


def metadata(node: Any) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


def _literal_list(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def dynamo_scope(meta: dict[str, str]) -> NodeScope | None:
    scopes = _literal_list(meta.get("pkg.torch.onnx.name_scopes"))
    if not scopes:
        return None
    classes = _literal_list(meta.get("pkg.torch.onnx.class_hierarchy"))
    modules = [s for s in scopes[:-1] if not s.startswith("_empty_nn_module_stack")]
    path = modules[-1] if modules else ""
    names: dict[str, str] = {}
    for scope, cls in zip(scopes[:-1], classes, strict=False):
        if not scope.startswith("_empty_nn_module_stack"):
            names[scope] = cls.rsplit(".", 1)[-1]
    return NodeScope(path, names)


def legacy_path(name: str) -> str | None:
    """``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``; None if not scoped."""
    if not name.startswith("/"):
        return None
    name = _ORT_FUSION.sub("", name)  # onnxruntime names a fused node "/Mul/QuickGeluFusion/"
    parts = [p for p in name.split("/")[1:-1] if p]
    path = previous = ""
    for part in parts:
        if not path or part.startswith(path + "."):
            path = part
        elif previous and part.startswith(previous + "."):  # blocks then blocks.0, deeper down
            path += part[len(previous) :]
        else:
            path = f"{path}.{part}"
        previous = part
    return path


def original_weight_name(name: str) -> str:
    """``conv1.weight`` for the weight onnxruntime's optimizer rewrote and renamed
    (``ConvMulFusion_W_conv1.weight``: a following Mul by a constant folded into it)."""
    return _ORT_FUSED_WEIGHT.sub("", name)


def unsuffix(paths: set[str]) -> dict[str, str]:
    """Map ``a.relu_1`` to ``a.relu`` where ``a.relu`` is itself a module path."""
    mapping = {}
    for path in paths:
        head, _, last = path.rpartition(".")
        match = _SUFFIX.match(last)
        if match:
            base = f"{head}.{match.group(1)}" if head else match.group(1)
            if base in paths:
                mapping[path] = base
    return mapping


# quantized contraction -> the input that holds its (integer) weight
QUANTIZED_WEIGHT_INPUT = {
    "ConvInteger": 1, "MatMulInteger": 1, "QLinearConv": 3, "QLinearMatMul": 3, "QGemm": 3,
    "MatMulNBits": 1, "MatMulIntegerToFloat": 1, "DynamicQuantizeMatMul": 1, "QAttention": 1,
    "DynamicQuantizeLSTM": 1,
}  # fmt: skip
# float contractions, onnxruntime's fused ones (Conv / Gemm + activation) included
_FLOAT_CONTRACTIONS = frozenset({"Conv", "Gemm", "MatMul", "FusedConv", "FusedGemm"})
_QUANTIZED_SUFFIXES = ("_quantized", "_Transposed", "_DequantizeLinear_Output", "_Q4", "_Q8")


def _weight_module(node: Any, index: Any, params: set[str], *, plain: bool = False) -> str | None:
    """``conv1`` for a node whose weight is ``conv1.weight`` quantized by onnxruntime
    (``conv1.weight_quantized``, ``fc.weight_Transposed_quantized``), read directly or
    through a DequantizeLinear (QDQ); with ``plain``, ``conv1.weight`` itself too (a node
    onnxruntime's optimizer rewrote, which keeps no metadata); None otherwise."""
    position = QUANTIZED_WEIGHT_INPUT.get(node.op_type, 1)
    if len(node.input) <= position:
        return None
    name = node.input[position]
    source = index.node_of(name)
    if source is not None and source.op_type == "DequantizeLinear":
        name = source.input[0]
    if name not in params:
        return None
    stem = name
    while stem.endswith(_QUANTIZED_SUFFIXES):
        stem = next(stem.removesuffix(s) for s in _QUANTIZED_SUFFIXES if stem.endswith(s))
    return stem.removesuffix(".weight") if stem.endswith(".weight") and (stem != name or plain) else None


def tool_added_modules(
    nodes: list[Any], meta: list[dict[str, str]], paths: list[str], index: Any, params: set[str]
) -> list[str]:
    """Module paths for the nodes a tool added after the export, which have neither
    dynamo's metadata nor a legacy ``/scope/Op`` name (onnxruntime's quantizers):
    a contraction whose quantized weight is named after its module takes that module
    (before, it fell to the root, or a BatchNorm-folded conv's to the ``bn``);
    any other added node takes the module of the node that produces its first input
    with one (a rescale ``Mul``, a bias ``Add``, the next layer's input quantization:
    as a legacy export's ``/act/..._QuantizeLinear`` is named after its producer), else
    that of its first reader with one (a weight's DequantizeLinear, a scales ``Mul``).
    A contraction whose weight has a made-up name (``val_2_Q4``) takes the module of the
    bias ``Add`` it feeds, or stays at the root: its producer is the previous layer."""
    result = list(paths)
    added = [
        "pkg.torch.onnx.name_scopes" not in m and not node.name.startswith("/")
        for node, m in zip(nodes, meta, strict=True)
    ]
    contraction = [
        node.op_type in QUANTIZED_WEIGHT_INPUT or node.op_type in _FLOAT_CONTRACTIONS for node in nodes
    ]
    for position, node in enumerate(nodes):
        plain = added[position] and node.op_type in _FLOAT_CONTRACTIONS
        module = _weight_module(node, index, params, plain=plain) if contraction[position] else None
        if module is not None and (added[position] or node.op_type in ("Conv", "Gemm")):
            result[position] = module
            added[position] = False
    for position, node in enumerate(nodes):
        if not added[position] or result[position] or contraction[position]:
            continue
        for name in node.input:
            producer = index.producer.get(name)
            if producer is not None and result[producer]:
                result[position] = result[producer]
                break
    for position in reversed(range(len(nodes))):  # a weight's DequantizeLinear, a scales Mul
        if added[position] and not result[position]:
            users = [u for name in nodes[position].output for u in index.consumers.get(name, [])]
            if contraction[position]:  # only the Linear's own bias Add names it (dynamo's node_linear)
                users = [
                    u for u in users if nodes[u].op_type == "Add" and any(i in params for i in nodes[u].input)
                ]
            result[position] = next((result[u] for u in users if result[u]), "")
    return result
