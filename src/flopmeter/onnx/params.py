"""Which initializers are parameters.

The rule: an initializer is a parameter when a node reads it in a weight slot —
Conv/ConvTranspose weight and bias, Gemm/MatMul/Einsum operands, an embedding table
(Gather data; an 8- or 4-bit 2-d table too), norm scale and bias, recurrent weights,
PRelu slope, the weights of quantized ops (QLinearConv, ConvInteger, MatMulInteger, QLinearMatMul,
MatMulNBits, DequantizeLinear of an integer weight) — or a vector (one dim above 1:
(C,), (C, 1, 1)) added to / multiplied with an activation (a bias, a norm weight).
It must be floating point, or an integer weight of a quantized op.
Everything else is an exporter constant (shape tensors, axes, scalars, scales and
zero points, masks, BatchNorm running statistics) and is not counted as a parameter.
Dynamo exports name PyTorch parameters and buffers in their fx metadata: an
initializer it calls ``%p_...`` is a parameter wherever it is read (a position
embedding added to activations); ``%b_...`` and ``%c_...`` are never parameters.
"""

from __future__ import annotations

import re
from typing import Any

from .patterns import GraphIndex, group_norm

FLOAT_TYPES = frozenset({1, 10, 11, 16, 17, 18, 19, 20, 23})
WEIGHT_SLOTS: dict[str, frozenset[int]] = {
    "Conv": frozenset({1, 2}),
    "FusedConv": frozenset({1, 2}),  # com.microsoft: onnxruntime's Conv + activation
    "ConvTranspose": frozenset({1, 2}),
    "Gemm": frozenset({0, 1, 2}),
    "FusedGemm": frozenset({0, 1, 2}),  # com.microsoft: onnxruntime's Gemm + activation
    "MatMul": frozenset({0, 1}),
    "FusedMatMul": frozenset({0, 1}),
    "Einsum": frozenset(range(16)),  # every operand is contracted (torch.einsum on a Parameter)
    "Gather": frozenset({0}),
    "LayerNormalization": frozenset({1, 2}),
    "BatchNormalization": frozenset({1, 2}),
    "InstanceNormalization": frozenset({1, 2}),
    "GroupNormalization": frozenset({1, 2}),
    "RMSNormalization": frozenset({1}),
    "SimplifiedLayerNormalization": frozenset({1}),
    "SkipLayerNormalization": frozenset({2, 3, 4}),
    "SkipSimplifiedLayerNormalization": frozenset({2, 3}),
    "Attention": frozenset({1, 2}),
    "LSTM": frozenset({1, 2, 3, 7}),  # W, R, B, peepholes P
    "GRU": frozenset({1, 2, 3}),
    "RNN": frozenset({1, 2, 3}),
    "PRelu": frozenset({1}),
    "BiasGelu": frozenset({1}),  # com.microsoft: the Linear's bias, fused by onnxruntime
    "FastGelu": frozenset({1}),
    "BiasAdd": frozenset({1}),
    "DynamicQuantizeMatMul": frozenset({4}),  # its bias (B, the integer weight: below)
    "MatMulIntegerToFloat": frozenset({6}),
    "DynamicQuantizeLSTM": frozenset({3, 7}),  # B, peepholes P (W and R, 8-bit: below)
}
QUANTIZED_WEIGHT_SLOTS: dict[str, frozenset[int]] = {
    "QLinearConv": frozenset({3, 8}),
    "ConvInteger": frozenset({1}),
    "MatMulInteger": frozenset({1}),
    "QLinearMatMul": frozenset({3}),
    "MatMulNBits": frozenset({1}),
    "QGemm": frozenset({3, 6}),
    "DynamicQuantizeMatMul": frozenset({1}),
    "MatMulIntegerToFloat": frozenset({1}),
    "DynamicQuantizeLSTM": frozenset({1, 2}),
    "GatherBlockQuantized": frozenset({0}),  # a 4- or 8-bit embedding table
    "DequantizeLinear": frozenset({0}),
}
QUANTIZED_TABLE_TYPES = frozenset({2, 3, 21, 22})  # uint8, int8, uint4, int4 (not int64 shape tables)
PASS_THROUGH = frozenset({"Reshape", "Unsqueeze", "Identity", "Cast"})
GATE_REORDER = frozenset({"Slice", "Concat"})
VECTOR_OPS = frozenset({"Add", "Mul", "Sub", "Div"})
QUANTIZED_VECTOR_OPS = frozenset({"QLinearAdd", "QLinearMul"})  # com.microsoft: (A, ., ., B, ...)
_FX_TOKEN = re.compile(r"%([bcp]_\w+)")  # dynamo's names: p_ parameter, b_ buffer, c_ constant
# aten.instance_norm(x, None, None, ...): the PyTorch InstanceNorm had no weight and bias
_NO_AFFINE = re.compile(r"target=torch\.ops\.aten\.instance_norm\.\w+\]\(args = \(%\w+, None, None[,)]")


def classify_initializers(
    index: GraphIndex, initializers: dict[str, Any], meta: list[dict[str, str]]
) -> tuple[set[str], set[str]]:
    """(parameter names, constant names) among the initializers."""
    tokens = {token for m in meta for token in _FX_TOKEN.findall(m.get("pkg.torch.onnx.fx_node", ""))}
    made_up = _group_norm_constants(index) | {
        name
        for position, node in enumerate(index.nodes)
        if exporter_affine(index, meta, position)
        for name in node.input[1:3]
    }
    params: set[str] = set()
    for name, tensor in initializers.items():
        key = name.replace(".", "_")
        if f"b_{key}" in tokens or f"c_{key}" in tokens or name in made_up:
            continue
        if f"p_{key}" in tokens or any(
            _weight_slot(node, value, tensor) and not _scales_quantized(index, node)
            if node.op_type != "DequantizeLinear"
            else _dequantized_weight(index, node, value, tensor)
            for node, value in _uses(index, name)
        ):
            params.add(name)
    return params, set(initializers) - params


def _dequantized_weight(index: GraphIndex, node: Any, value: str, tensor: Any) -> bool:
    """A QDQ file's quantized initializer (its DequantizeLinear's input x) is a parameter
    when the float tensor it dequantizes to would be one where it is read: a Conv or
    MatMul weight, a bias, an embedding table; not an exporter constant that the quantizer
    quantized too (Swin's folded relative-position biases, (heads, 49, 49), added to the
    scores)."""
    if not node.input or node.input[0] != value:
        return False  # a scale or zero point
    as_float = type(tensor)(data_type=1, dims=list(tensor.dims), name=tensor.name)
    return any(_weight_slot(reader, read, as_float) for reader, read in _uses(index, node.output[0]))


def _scales_quantized(index: GraphIndex, node: Any) -> bool:
    """A Mul of a per-channel weight scale (N,) with the activation's scale, which
    ``quantize_dynamic(per_channel=True)`` writes before rescaling a MatMulInteger's
    output: the vector is a quantization scale, not a bias or a norm weight."""
    if node.op_type != "Mul":
        return False
    sources = [index.node_of(name) for name in node.input]
    return any(
        source is not None and source.op_type == "DynamicQuantizeLinear" and name in source.output[1:]
        for source, name in zip(sources, node.input, strict=True)
    )


def _group_norm_constants(index: GraphIndex) -> set[str]:
    """The all-ones scale and zero bias an exporter gives the InstanceNormalization of
    a decomposed GroupNorm: its own constants (the module's weight and bias follow it)."""
    names: set[str] = set()
    for position, node in enumerate(index.nodes):
        if group_norm(index, position) is not None:
            names.update(node.input[1:])
    return names


def exporter_affine(index: GraphIndex, meta: list[dict[str, str]], position: int) -> bool:
    """An InstanceNormalization whose scale (ones) and B (zeros) the exporter made for a
    PyTorch InstanceNorm without affine (``affine=False``, the default), which computes no
    scale and shift: dynamo's fx node passes None for weight and bias; the legacy exporter
    writes them as Constant nodes of ones and zeros (a real weight is an initializer)."""
    node = index.nodes[position]
    if node.op_type != "InstanceNormalization" or len(node.input) < 3:
        return False
    if position < len(meta) and _NO_AFFINE.search(meta[position].get("pkg.torch.onnx.fx_node", "")):
        return True
    scale, bias = (_constant_node_value(index, name) for name in node.input[1:3])
    return scale is not None and bias is not None and bool((scale == 1).all() and (bias == 0).all())


def _constant_node_value(index: GraphIndex, name: str) -> Any:
    """The value of a Constant node's tensor (embedded in the graph), or None."""
    from onnx import numpy_helper

    node = index.node_of(name)
    if node is None or node.op_type != "Constant":
        return None
    tensor = next((a.t for a in node.attribute if a.name == "value" and a.type == 4), None)
    return None if tensor is None else numpy_helper.to_array(tensor)


def _uses(index: GraphIndex, name: str, depth: int = 0) -> list[tuple[Any, str]]:
    """(node, value name) for each reader of ``name``, looking through a Reshape,
    Unsqueeze, Identity or Cast of the initializer itself (a bias reshaped to (C, 1, 1)),
    and through the Slices and Concats that reorder a recurrent layer's gates (the legacy
    exporter at opsets 7 and 8, which does not fold them), a few levels deep."""
    uses = []
    for user in index.consumers.get(name, []):
        node = index.nodes[user]
        moved = node.op_type in PASS_THROUGH or node.op_type in GATE_REORDER
        if moved and (node.input[0] == name or node.op_type == "Concat") and depth < 4:
            uses += _uses(index, node.output[0], depth + 1)
        else:
            uses.append((node, name))
    return uses


def _weight_slot(node: Any, name: str, tensor: Any) -> bool:
    slots = [i for i, value in enumerate(node.input) if value == name]
    floating = tensor.data_type in FLOAT_TYPES
    numel = 1
    for d in tensor.dims:
        numel *= d
    if not tensor.dims and numel == 1:
        return False  # a scalar: a scale, an epsilon, a zero point
    if floating and any(s in WEIGHT_SLOTS.get(node.op_type, ()) for s in slots):
        return True
    if any(s in QUANTIZED_WEIGHT_SLOTS.get(node.op_type, ()) for s in slots) and numel > 1:
        return True
    if (
        node.op_type == "Gather"
        and 0 in slots
        and tensor.data_type in QUANTIZED_TABLE_TYPES
        and len(tensor.dims) == 2
    ):
        return True  # a quantized embedding table (quantize_dynamic): (vocab, width) of 8 or 4 bits
    vector = sum(1 for d in tensor.dims if d > 1) == 1  # (C,), (C, 1, 1), (1, C)
    if node.op_type in QUANTIZED_VECTOR_OPS and tensor.data_type in QUANTIZED_TABLE_TYPES:
        return vector and any(s in (0, 3) for s in slots)  # a Linear's bias, quantized (QOperator)
    return floating and node.op_type in VECTOR_OPS and vector


def packed_weight_numels(index: GraphIndex, initializers: dict[str, Any] | None = None) -> dict[str, int]:
    """Weights stored packed, by initializer name -> their logical element count:
    MatMulNBits keeps a (N, K) matrix of ``bits``-bit values in uint8 blocks, two 4-bit
    weights a byte, so its tensor has fewer elements than the layer has weights."""
    from onnx import helper

    numels: dict[str, int] = {}
    for node in index.nodes:
        if node.op_type == "MatMulNBits" and len(node.input) > 1:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if "K" in attrs and "N" in attrs:
                numels[node.input[1]] = int(attrs["K"]) * int(attrs["N"])
        elif node.op_type == "GatherBlockQuantized" and node.input:  # a uint8 table packs 8 / bits a byte
            table = (initializers or {}).get(node.input[0])
            if table is not None and table.data_type == 2:
                attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
                numel = 1
                for d in table.dims:
                    numel *= int(d)
                numels[node.input[0]] = numel * (8 // int(attrs.get("bits", 4)))
    return numels
