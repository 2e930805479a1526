"""Output shapes of the com.microsoft ops flopmeter counts (onnx has no schema for them).

Each rule states the op's documented output shape; an op without a rule keeps
unknown outputs (and is reported if something needs them).
"""

from __future__ import annotations

from typing import Any

from .shapes import ValueType


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def standard_equivalent(node: Any) -> Any:
    """The standard ONNX node whose output shapes a com.microsoft node shares, for
    ONNX's own inference: FusedConv (onnxruntime's Conv + activation, and an optional
    sum input Z) has a Conv's, FusedGemm a Gemm's; QLinearAveragePool (channels first) a
    MaxPool's of the same window (MaxPool, unlike AveragePool, takes 8-bit integers);
    None for other ops."""
    from onnx import helper

    if node.domain != "com.microsoft":
        return None
    if node.op_type == "QLinearAveragePool" and not _attr(node, "channels_last", 0):
        pool = helper.make_node("MaxPool", list(node.input[:1]), list(node.output[:1]), name=node.name)
        pool.attribute.extend(
            a for a in node.attribute if a.name not in ("count_include_pad", "channels_last")
        )
        return pool
    if node.op_type not in ("FusedConv", "FusedGemm"):
        return None
    kind = node.op_type.removeprefix("Fused")
    unfused = helper.make_node(kind, list(node.input[:3]), list(node.output[:1]), name=node.name)
    unfused.attribute.extend(a for a in node.attribute if not a.name.startswith("activation"))
    return unfused


def contrib_output_types(node: Any, types: dict[str, ValueType]) -> dict[str, ValueType]:
    """Output types of one com.microsoft node, from its input types."""
    inputs = [types.get(name) if name else None for name in node.input]
    first = inputs[0] if inputs else None
    if first is None or first.shape is None:
        return {}
    op = node.op_type
    out: dict[str, ValueType] = {}
    same_as_input = {
        "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "BiasAdd", "SkipLayerNormalization",
        "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", "RotaryEmbedding",
        "LayerNormalization", "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax",
    }  # fmt: skip
    if op in ("QLinearAdd", "QLinearMul"):  # (A, A_scale, A_zp, B, ...): A and B broadcast
        other = inputs[3] if len(inputs) > 3 else None
        if other is not None and other.shape is not None:
            out[node.output[0]] = ValueType(first.elem_type, _broadcast(first.shape, other.shape))
    elif op in same_as_input:
        out[node.output[0]] = ValueType(first.elem_type, first.shape)
        if op.startswith("Skip") and len(node.output) > 3 and node.output[3]:
            out[node.output[3]] = ValueType(first.elem_type, first.shape)  # input + skip (+ bias)
    elif op in ("QuantizeLinear", "DequantizeLinear"):  # (x, scale, zero_point): the shape of x
        scale = inputs[1] if len(inputs) > 1 else None
        zero_point = inputs[2] if len(inputs) > 2 else None
        if op == "DequantizeLinear":  # to the scale's float type (int4 weights: ORT's contrib DQ)
            elem_type = scale.elem_type if scale is not None else 1
        else:  # to the zero point's integer type, uint8 without one
            elem_type = zero_point.elem_type if zero_point is not None else 2
        out[node.output[0]] = ValueType(elem_type, first.shape)
    elif op == "FusedMatMul" and len(inputs) > 1 and inputs[1] is not None and inputs[1].shape is not None:
        a = fused_matmul_operand(first.shape, _attr(node, "transA", 0), _attr(node, "transBatchA", 0))
        b = fused_matmul_operand(inputs[1].shape, _attr(node, "transB", 0), _attr(node, "transBatchB", 0))
        batch = a[:-2] if len(a) >= len(b) else b[:-2]
        out[node.output[0]] = ValueType(first.elem_type, (*batch, a[-2], b[-1]))
    elif op == "QLinearGlobalAveragePool":
        channels_last = bool(_attr(node, "channels_last", 0))
        shape = first.shape
        pooled = (
            (shape[0], *([1] * (len(shape) - 2)), shape[-1])
            if channels_last
            else (*shape[:2], *([1] * (len(shape) - 2)))
        )
        out[node.output[0]] = ValueType(first.elem_type, pooled)
    elif op == "QGemm" and len(inputs) > 3 and inputs[3] is not None and inputs[3].shape is not None:
        m = first.shape[1] if _attr(node, "transA", 0) else first.shape[0]
        n = inputs[3].shape[0] if _attr(node, "transB", 0) else inputs[3].shape[1]
        y_type = first.elem_type if len(node.input) > 7 and node.input[7] else 1
        out[node.output[0]] = ValueType(y_type, (m, n))
    elif op in ("DynamicQuantizeMatMul", "MatMulIntegerToFloat") and len(inputs) > 2:
        weight, scale = inputs[1], inputs[2]  # Y: A @ B in the float type of A (or of a_scale)
        if weight is not None and weight.shape is not None and len(weight.shape) == 2 and scale is not None:
            elem_type = first.elem_type if op == "DynamicQuantizeMatMul" else scale.elem_type
            out[node.output[0]] = ValueType(elem_type, (*first.shape[:-1], weight.shape[-1]))
    elif op == "GatherBlockQuantized" and len(inputs) > 2 and inputs[1] is not None and inputs[2] is not None:
        _gather_block_quantized(out, node, first, inputs[1], inputs[2])
    elif op == "QLinearConcat":  # Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input
        _concat(out, node, inputs[2::3])
    elif (
        op == "DynamicQuantizeLSTM"
        and len(inputs) > 1
        and inputs[1] is not None
        and inputs[1].shape is not None
    ):
        hidden, directions = int(_attr(node, "hidden_size")), inputs[1].shape[0]  # X (T, B, I), W (D, I, 4H)
        states = (directions, first.shape[1], hidden)
        for index, shape in enumerate([(first.shape[0], *states), states, states]):  # Y, Y_h, Y_c
            if len(node.output) > index and node.output[index]:
                out[node.output[index]] = ValueType(first.elem_type, shape)
    elif op == "MatMulNBits":
        out[node.output[0]] = ValueType(first.elem_type, (*first.shape[:-1], int(_attr(node, "N"))))
    elif op == "Attention" and len(inputs) > 1 and inputs[1] is not None and inputs[1].shape is not None:
        sizes = _attr(node, "qkv_hidden_sizes")
        hidden = int(sizes[2]) if sizes else int(inputs[1].shape[-1]) // 3
        out[node.output[0]] = ValueType(first.elem_type, (*first.shape[:-1], hidden))
        heads = int(_attr(node, "num_heads"))
        past = inputs[4] if len(inputs) > 4 else None  # (2, B, H, P, E)
        _present(out, node, 1, first, (2, first.shape[0], heads), past, 3, hidden // heads)
    elif op in ("MultiHeadAttention", "GroupQueryAttention"):
        if len(first.shape) == 3:
            width = first.shape[-1]
            if op == "GroupQueryAttention" and (len(inputs) < 2 or inputs[1] is None):  # packed qkv
                heads, kv_heads = int(_attr(node, "num_heads")), int(_attr(node, "kv_num_heads"))
                if isinstance(width, int):
                    width = width // (heads + 2 * kv_heads) * heads
            out[node.output[0]] = ValueType(first.elem_type, (first.shape[0], first.shape[1], width))
            heads = int(_attr(node, "kv_num_heads" if op == "GroupQueryAttention" else "num_heads"))
            head = width // int(_attr(node, "num_heads")) if isinstance(width, int) else "?"
            past_index = 3 if op == "GroupQueryAttention" else 6
            pasts = [inputs[i] if len(inputs) > i else None for i in (past_index, past_index + 1)]
            for k, past in enumerate(pasts):  # present_key, present_value: (B, H_kv, P + S, E)
                _present(out, node, 1 + k, first, (first.shape[0], heads), past, 2, head)
    return out


def fused_matmul_operand(shape: tuple[Any, ...], trans: Any, trans_batch: Any) -> tuple[Any, ...]:
    """The shape a com.microsoft FusedMatMul operand is multiplied as: ``transBatch`` moves
    its first dim to just before the last ((d0, d1, .., dr-2, dr-1) -> (d1, .., dr-2, d0,
    dr-1), as onnxruntime's MatMulComputeHelper), then ``trans`` swaps the last two."""
    dims = list(shape)
    if trans_batch and len(dims) >= 3:
        dims = [*dims[1:-1], dims[0], dims[-1]]
    if trans and len(dims) >= 2:
        dims[-2], dims[-1] = dims[-1], dims[-2]
    return tuple(dims)


def _broadcast(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
    """numpy's broadcast of two shapes (dims of 1 stretch; a symbolic dim wins over a 1)."""
    width = max(len(a), len(b))
    padded = [(1,) * (width - len(s)) + tuple(s) for s in (a, b)]
    return tuple(y if x == 1 else x for x, y in zip(*padded, strict=True))


def _gather_block_quantized(
    out: dict[str, ValueType], node: Any, data: ValueType, indices: ValueType, scales: ValueType
) -> None:
    """GatherBlockQuantized(data, indices, scales[, zero_points]): data's rows at the
    indices along ``gather_axis``, in the scales' float type. A uint8 table packs
    8 / bits values a byte along its last dim; an int4 / uint4 table does not."""
    if data.shape is None or indices.shape is None:
        return
    shape = list(data.shape)
    axis = int(_attr(node, "gather_axis", 0)) % len(shape)
    if data.elem_type == 2 and isinstance(shape[-1], int):  # uint8: packed
        shape[-1] *= 8 // int(_attr(node, "bits", 4))
    out[node.output[0]] = ValueType(scales.elem_type, (*shape[:axis], *indices.shape, *shape[axis + 1 :]))


def _concat(out: dict[str, ValueType], node: Any, parts: list[ValueType | None]) -> None:
    """The output of a concatenation along ``axis`` of ``parts``, when all are known."""
    if not parts or any(p is None or p.shape is None for p in parts):
        return
    shapes = [list(p.shape) for p in parts if p is not None and p.shape is not None]
    axis = int(_attr(node, "axis", 0)) % len(shapes[0])
    sizes = [shape[axis] for shape in shapes]
    known = [v for v in sizes if isinstance(v, int)]
    shape = shapes[0]
    shape[axis] = sum(known) if len(known) == len(sizes) else "?"
    out[node.output[0]] = ValueType(parts[0].elem_type, tuple(shape))  # type: ignore[union-attr]


def _present(
    out: dict[str, ValueType],
    node: Any,
    index: int,
    first: ValueType,
    lead: tuple[Any, ...],
    past: ValueType | None,
    axis: int,
    head: Any,
) -> None:
    """The present key / value cache output ``index``: the past keys (``axis`` of the
    past input) plus this call's sequence, after the ``lead`` dims."""
    if len(node.output) <= index or not node.output[index] or first.shape is None:
        return
    length = first.shape[1]
    if past is not None and past.shape is not None and len(past.shape) > axis:
        past_length = past.shape[axis]
        length = length + past_length if isinstance(length, int) and isinstance(past_length, int) else "?"
    out[node.output[index]] = ValueType(first.elem_type, (*lead, length, head))
