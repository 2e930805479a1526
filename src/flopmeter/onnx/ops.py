"""ONNX op -> formula. Each handler reads shapes and attributes from an OpEvent whose
``op`` is ``onnx.<OpType>`` (or ``com.microsoft.<OpType>``), ``args`` the node's
inputs as TensorMeta (None for an omitted optional input), ``kwargs`` its
attributes plus ``input_values`` (the folded integer inputs), and calls the same
functions in ``formulas/`` as the aten handlers, so a Conv costs the same from
either source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from math import ceil, log2, prod
from typing import Any

from ..cost import Cost
from ..formulas import attention as attn
from ..formulas import contraction, elementwise, normalization, pooling, recurrent, spectral
from ..registry import CountOptions, is_floating, with_traffic
from ..tracing.events import OpEvent, TensorMeta
from .contrib_shapes import fused_matmul_operand

Handler = Callable[[OpEvent, CountOptions], Cost]
HANDLERS: dict[str, Handler] = {}
MS = "com.microsoft."

# Free: reshapes and views (torch runs them as views), metadata, inference no-ops.
VIEW_OPS = frozenset(
    "onnx." + name
    for name in (
        "Reshape Flatten Squeeze Unsqueeze Identity Shape Size Dropout Slice Expand Transpose Split "
        "Constant Optional OptionalGetElement SequenceConstruct SequenceAt SplitToSequence SequenceEmpty "
        "SequenceInsert SequenceErase SequenceLength"
    ).split()
)
# No FLOPs, memory moved: copies, gathers, padding, casts, index generation.
DATA_OPS = frozenset(
    "onnx." + name
    for name in (
        "Concat Gather GatherElements GatherND ScatterND ScatterElements Scatter Tile Pad Cast CastLike "
        "DepthToSpace SpaceToDepth Trilu ConstantOfShape Range OneHot NonZero Compress Unique EyeLike "
        "ReverseSequence CenterCropPadding Col2Im ConcatFromSequence"
    ).split()
) | {"com.microsoft.QLinearConcat"}  # a Concat of quantized inputs (requantized where scales differ)


def onnx_formula(*ops: str) -> Callable[[Handler], Handler]:
    """Register a handler for ONNX op types (``"Conv"``; ``"com.microsoft.Attention"``)."""

    def register(handler: Handler) -> Handler:
        for op in ops:
            HANDLERS[op if "." in op else "onnx." + op] = handler
        return handler

    return register


def kind_of(op: str) -> str:
    """ "counted", "view", "data" or "unsupported"."""
    if op in HANDLERS:
        return "counted"
    if op in VIEW_OPS:
        return "view"
    if op in DATA_OPS:
        return "data"
    return "unsupported"


def cost_of(event: OpEvent, options: CountOptions) -> Cost | None:
    """The cost of one node, bytes included; None when no formula exists."""
    kind = kind_of(event.op)
    if kind == "view":
        return Cost()
    if kind == "unsupported":
        return None
    work = HANDLERS[event.op](event, options) if kind == "counted" else Cost()
    if work.flops and (is_integer_op(event.op) or not is_floating(event)):
        work = replace(work, flops=0)  # integer / boolean arithmetic is not FLOPs (MACs stay)
    return with_traffic(work, event)


def is_integer_op(op: str) -> bool:
    """Quantized ops computing on integers (their float scales are not operands)."""
    name = op.rsplit(".", 1)[-1]
    return name.startswith(("QLinear", "QGemm")) or name.endswith("Integer")


# ----------------------------------------------------------------------------- helpers
def _input(event: OpEvent, index: int) -> TensorMeta | None:
    return event.args[index] if index < len(event.args) else None


def _out(event: OpEvent) -> TensorMeta:
    return event.outputs[0]


def _attr(event: OpEvent, name: str, default: Any = None) -> Any:
    return event.kwargs.get(name, default)


def _value(event: OpEvent, index: int) -> list[int] | None:
    """The folded integer value of input ``index`` (axes, repeats, trip counts)."""
    values = event.kwargs.get("input_values", {})
    return values.get(index)


# ----------------------------------------------------------------------- contractions
@onnx_formula("Conv", "ConvInteger", "QLinearConv", MS + "NhwcConv")
def _conv(event: OpEvent, options: CountOptions) -> Cost:
    """Conv: x (N, C, *S), w (C_o, C/groups, *K), optional bias. ConvInteger: x, w, zero
    points; QLinearConv: x, scale, zp, w, scale, zp, y_scale, y_zp, bias (int32)."""
    weight_index, bias_index = {"onnx.ConvInteger": (1, None), "onnx.QLinearConv": (3, 8)}.get(
        event.op, (1, 2)
    )
    x, w = event.args[0], event.args[weight_index]
    bias = bias_index is not None and _input(event, bias_index) is not None
    groups = int(_attr(event, "group", 1))
    _check_channels(event, x.shape, w.shape[1] * groups)
    return contraction.conv(x.shape, w.shape, _out(event).shape, bias=bias, groups=groups)


_FUSED_ACTIVATIONS = {
    "Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "LeakyRelu": "leaky_relu", "Clip": "hardtanh",
    "HardSigmoid": "hardsigmoid",
}  # fmt: skip


@onnx_formula(MS + "FusedConv")
def _fused_conv(event: OpEvent, options: CountOptions) -> Cost:
    """onnxruntime's FusedConv (X, W, B, Z): the Conv, plus one add per output when the
    sum input Z is given, plus its ``activation`` per output, as the Conv, Add and
    activation nodes it replaced count. An activation we have no count for is an error."""
    cost = _conv(event, options)
    if _input(event, 3) is not None:
        cost = cost + elementwise.pointwise(_out(event).numel, elementwise.PER_ELEMENT["add"])
    return cost + _fused_activation(event)


def _fused_activation(event: OpEvent) -> Cost:
    """The ``activation`` attribute of onnxruntime's FusedConv / FusedGemm, per output."""
    elements = _out(event).numel
    activation = str(_attr(event, "activation", "") or "")
    if not activation:
        return Cost()
    name = _FUSED_ACTIVATIONS.get(activation)
    if name is None:
        from .load import OnnxModelError

        raise OnnxModelError(
            f"{event.op} in module {event.module or '(root)'!r} fuses activation {activation!r}, which "
            f"flopmeter cannot count; known: {', '.join(_FUSED_ACTIVATIONS)}"
        )
    fused = elementwise.pointwise(elements, elementwise.PER_ELEMENT[name])
    return replace(fused, ptflops_macs=elements) if name in _PTFLOPS_ACTIVATIONS else fused


def _check_channels(event: OpEvent, x_shape: tuple[int, ...], expected: int) -> None:
    """ONNX's shape inference does not compare a Conv's input channels with its weight:
    a wrong input shape would be counted with the weight's channels, a wrong number."""
    if len(x_shape) > 1 and x_shape[1] != expected:
        from .load import OnnxModelError

        raise OnnxModelError(
            f"{event.op} in module {event.module or '(root)'!r}: its input has {x_shape[1]} channels (shape {x_shape}) "
            f"but its weight expects {expected}; check the input shapes given"
        )


def _check_inner(event: OpEvent, a_shape: tuple[int, ...], k: int) -> None:
    """A contrib matmul's A must end in its weight's K (ONNX has no inference for it to
    refuse): a wrong input shape would be counted with a made-up row count. ``a_shape``
    ends in A's contracted dim (after any transA)."""
    if not a_shape or a_shape[-1] != k:
        from .load import OnnxModelError

        raise OnnxModelError(
            f"{event.op} in module {event.module or '(root)'!r}: its input A has shape {a_shape} but its "
            f"weight expects a last dim of {k}; check the input shapes given"
        )


@onnx_formula("ConvTranspose")
def _conv_transpose(event: OpEvent, options: CountOptions) -> Cost:
    x, w = event.args[0], event.args[1]
    out = tuple(_out(event).shape)
    spatial = len(w.shape) - 2
    kernel = tuple(w.shape[2:])
    strides = tuple(_attr(event, "strides", None) or (1,) * spatial)
    dilations = tuple(_attr(event, "dilations", None) or (1,) * spatial)
    covered = contraction.transposed_conv_covered(
        out,
        tuple(x.shape[2:]),
        kernel,
        strides,
        _transpose_pads_begin(event, tuple(x.shape[2:]), out[2:], kernel, strides, dilations),
        dilations,
    )
    return contraction.conv(
        x.shape,
        w.shape,
        out,
        bias=_input(event, 2) is not None,
        transposed=True,
        groups=int(_attr(event, "group", 1)),
        covered=covered,
    )


def _transpose_pads_begin(
    event: OpEvent,
    in_spatial: tuple[int, ...],
    out_spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
) -> tuple[int, ...]:
    """The padding a ConvTranspose removes at the start of each dim: its ``pads`` (NOTSET),
    else from the total padding (the ONNX spec: stride*(in-1) + output_padding +
    (kernel-1)*dilation + 1 - out), of which SAME_UPPER puts the smaller half first and
    SAME_LOWER, or a given ``output_shape``, the larger."""
    auto_pad = _attr(event, "auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    pads = _attr(event, "pads", None)
    if auto_pad in ("NOTSET", "VALID") and _attr(event, "output_shape", None) is None:
        return tuple(pads[: len(in_spatial)]) if pads else (0,) * len(in_spatial)
    extra = tuple(_attr(event, "output_padding", None) or (0,) * len(in_spatial))
    begins = []
    for n_in, n_out, k, s, d, op in zip(
        in_spatial, out_spatial, kernel, strides, dilations, extra, strict=True
    ):
        total = s * (n_in - 1) + op + (k - 1) * d + 1 - n_out
        begins.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    return tuple(begins)


@onnx_formula(MS + "FusedGemm")
def _fused_gemm(event: OpEvent, options: CountOptions) -> Cost:
    """onnxruntime's Gemm + activation (extended level): the Gemm and its ``activation``
    per output, as the two nodes it replaced count."""
    return _gemm(event, options) + _fused_activation(event)


@onnx_formula("Gemm", MS + "QGemm")
def _gemm(event: OpEvent, options: CountOptions) -> Cost:
    """alpha * A' B' + beta * C: (M, K) @ (K, N), + M*N adds with C, + M*N multiplies
    for alpha != 1 and for beta not in (0, 1) (as aten.addmm)."""
    a = event.args[0]
    m, k = (a.shape[1], a.shape[0]) if _attr(event, "transA", 0) else (a.shape[0], a.shape[1])
    n = _out(event).shape[-1]
    outputs = m * n
    beta, alpha = float(_attr(event, "beta", 1.0)), float(_attr(event, "alpha", 1.0))
    bias_index = 6 if event.op == MS + "QGemm" else 2  # QGemm: a, sa, zpa, b, sb, zpb, c, ...
    if event.op == MS + "QGemm":
        beta = alpha = 1.0
        b = event.args[3]
        _check_inner(event, (m, k), b.shape[1] if _attr(event, "transB", 0) else b.shape[0])
    has_c = _input(event, bias_index) is not None and beta != 0
    extras = (outputs if alpha != 1 else 0) + (outputs if has_c and beta != 1 else 0)
    return contraction.matmul(1, m, k, n, bias_adds=outputs if has_c else 0, extra_scalings=extras)


def _matmul_sizes(a: TensorMeta, b: TensorMeta, out: TensorMeta) -> tuple[int, int, int, int]:
    """(batch, m, k, n) of numpy-style matmul with broadcasting and 1-d operands."""
    k = a.shape[-1]
    m = a.shape[-2] if a.ndim >= 2 else 1
    n = b.shape[-1] if b.ndim >= 2 else 1
    return out.numel // max(m * n, 1), m, k, n


@onnx_formula(MS + "MatMulIntegerToFloat", MS + "DynamicQuantizeMatMul")
def _integer_matmul_to_float(event: OpEvent, options: CountOptions) -> Cost:
    """onnxruntime's fusions of a dynamically quantized Linear. MatMulIntegerToFloat
    (A, B, a_scale, b_scale, a_zp, b_zp, bias): MatMulInteger + Cast + Mul + Add;
    DynamicQuantizeMatMul (A, B, b_scale, b_zp, bias) also quantizes its float A
    (DynamicQuantizeLinear). Integer MACs (no FLOPs), and the float work of the nodes
    they replaced: 6n - 2 to quantize A, the scales' product (one per weight scale), one
    rescale multiply per output, one bias add per output."""
    a, out = event.args[0], _out(event)
    dynamic = event.op == MS + "DynamicQuantizeMatMul"
    b_scale = _input(event, 2 if dynamic else 3)
    bias = _input(event, 4 if dynamic else 6)
    _check_inner(event, a.shape, event.args[1].shape[0])
    work = contraction.matmul(*_matmul_sizes(a, event.args[1], out))
    quantize = 6 * a.numel - 2 if dynamic else 0
    floats = (
        quantize + (b_scale.numel if b_scale is not None else 1) + out.numel * (1 + int(bias is not None))
    )
    return Cost(macs=work.macs, flops=floats)


@onnx_formula("MatMul", "MatMulInteger")
def _matmul(event: OpEvent, options: CountOptions) -> Cost:
    return contraction.matmul(*_matmul_sizes(event.args[0], event.args[1], _out(event)))


@onnx_formula("QLinearMatMul")
def _qlinear_matmul(event: OpEvent, options: CountOptions) -> Cost:
    return contraction.matmul(*_matmul_sizes(event.args[0], event.args[3], _out(event)))


@onnx_formula(MS + "FusedMatMul")
def _fused_matmul(event: OpEvent, options: CountOptions) -> Cost:
    """alpha * A' @ B': the matmul plus one multiply per output when alpha != 1. A' and B'
    are the operands transposed as transA / transBatchA (B: transB / transBatchB) say."""
    out = event.outputs[0]
    a_used = fused_matmul_operand(
        event.args[0].shape, _attr(event, "transA", 0), _attr(event, "transBatchA", 0)
    )
    b_used = fused_matmul_operand(
        event.args[1].shape, _attr(event, "transB", 0), _attr(event, "transBatchB", 0)
    )
    k = a_used[-1]
    _check_inner(event, a_used, b_used[-2])
    m, n = out.shape[-2], out.shape[-1]
    scale = out.numel if float(_attr(event, "alpha", 1.0)) != 1 else 0
    return contraction.matmul(out.numel // (m * n), m, k, n, extra_scalings=scale)


@onnx_formula(MS + "MatMulNBits")
def _matmul_nbits(event: OpEvent, options: CountOptions) -> Cost:
    """A (..., K) @ dequantized B (K, N), B stored in ``bits``-bit blocks: M*K*N MACs
    (the dequantization, one multiply-add per weight, is not counted per token)."""
    a = event.args[0]
    k, n = int(_attr(event, "K")), int(_attr(event, "N"))
    _check_inner(event, a.shape, k)
    cost = contraction.matmul(1, a.numel // k, k, n)
    return cost + Cost(flops=_out(event).numel) if _input(event, 5) is not None else cost  # bias


@onnx_formula("Einsum")
def _einsum(event: OpEvent, options: CountOptions) -> Cost:
    """Each output element is a sum over the contracted indices (letters not in the
    output) of the product of the operands: (operands-1) multiplies per term and
    terms-1 adds per output. Products of two or more operands are MACs; one operand
    (a sum, transpose or diagonal) has no multiplies: FLOPs = outputs*(contracted-1).
    Without ``->`` the output is the letters that appear once, sorted (numpy's rule)."""
    equation = str(_attr(event, "equation", "")).replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    if not arrow:
        letters = inputs.replace(",", "").replace(".", "")
        output = "".join(sorted(letter for letter in set(letters) if letters.count(letter) == 1))
    sizes: dict[str, int] = {}
    for spec, tensor in zip(inputs.split(","), event.args, strict=False):
        spec = spec.replace("...", "")
        for letter, size in zip(spec, tensor.shape[len(tensor.shape) - len(spec) :], strict=False):
            sizes[letter] = max(sizes.get(letter, 1), size)
    contracted = prod(size for letter, size in sizes.items() if letter not in output)
    outputs, operands = _out(event).numel, len(event.args)
    if operands == 2:
        return contraction.dot_products(outputs, contracted)
    terms = outputs * contracted
    macs = terms if operands > 1 else 0
    return Cost(macs=macs, flops=terms * (operands - 1) + outputs * (contracted - 1), ptflops_macs=macs)


# --------------------------------------------------------------------------- attention
def _attention_core(
    event: OpEvent, options: CountOptions, heads: int, queries: int, keys: int, head: int, value: int
) -> Cost:
    masked = _input(event, 3) is not None
    causal = bool(_attr(event, "is_causal", 0) or _attr(event, "unidirectional", 0))
    return attn.attention(
        heads, queries, keys, head, value, masked=masked, causal_needed=causal and options.causal == "needed"
    )


@onnx_formula("Attention")
def _attention(event: OpEvent, options: CountOptions) -> Cost:
    """opset 23: Q (B, Hq, L, E) and K, V (B, Hkv, S, E|Ev), or 3-d (B, L, H*E) with
    q_num_heads / kv_num_heads; past keys are concatenated in front of K."""
    q, k, v = event.args[0], event.args[1], event.args[2]
    past = _input(event, 4)
    if q.ndim == 4:
        heads, queries, head = q.shape[0] * q.shape[1], q.shape[2], q.shape[3]
        keys, value = k.shape[2], v.shape[3]
    else:
        q_heads, kv_heads = int(_attr(event, "q_num_heads")), int(_attr(event, "kv_num_heads"))
        heads, queries, head = q.shape[0] * q_heads, q.shape[1], q.shape[2] // q_heads
        keys, value = k.shape[1], v.shape[2] // kv_heads
    keys += past.shape[2] if past is not None else 0
    return _attention_core(event, options, heads, queries, keys, head, value)


@onnx_formula(MS + "Attention")
def _ms_attention(event: OpEvent, options: CountOptions) -> Cost:
    """x (B, S, D) @ packed qkv weight (D, Dq+Dk+Dv) (+ bias), then attention over
    ``num_heads`` heads (past keys in front when given)."""
    x, weight = event.args[0], event.args[1]
    tokens, width = x.numel // x.shape[-1], x.shape[-1]
    sizes = _attr(event, "qkv_hidden_sizes") or [weight.shape[-1] // 3] * 3
    heads = int(_attr(event, "num_heads"))
    cost = contraction.dot_products(tokens * sum(sizes), width, bias=_input(event, 2) is not None)
    batch, queries = x.shape[0], x.shape[1]
    past = _input(event, 4)
    keys = queries + (past.shape[3] if past is not None and past.ndim == 5 else 0)
    masked = _input(event, 3) is not None or _input(event, 5) is not None
    causal = bool(_attr(event, "unidirectional", 0)) and options.causal == "needed"
    return cost + attn.attention(
        batch * heads,
        queries,
        keys,
        sizes[0] // heads,
        sizes[2] // heads,
        masked=masked,
        causal_needed=causal,
    )


@onnx_formula(MS + "MultiHeadAttention")
def _ms_mha(event: OpEvent, options: CountOptions) -> Cost:
    """query (B, L, D), key/value (B, S, D) or (B, H, S, E); optional packed bias (one
    add per q, k, v element); past_key (B, H, P, E): attention over P + S keys."""
    q, k, v = event.args[0], _input(event, 1), _input(event, 2)
    heads = int(_attr(event, "num_heads"))
    batch, queries, width = q.shape[0], q.shape[1], q.shape[-1]
    head = width // heads
    if k is None:  # packed (B, L, H, 3, E) or (B, L, 3, D)
        keys, value = queries, head
    elif k.ndim == 4:
        keys, value = k.shape[2], v.shape[3] if v is not None else head
    else:
        keys, value = k.shape[1], (v.shape[-1] // heads) if v is not None else head
    bias = _input(event, 3)
    cost = (
        Cost(flops=batch * (queries * width + keys * width + keys * value * heads))
        if bias is not None
        else Cost()
    )
    past = _input(event, 6)  # past_key (B, H, P, E): the new keys are appended to it
    keys += past.shape[2] if past is not None and past.ndim == 4 else 0
    masked = _input(event, 4) is not None or _input(event, 5) is not None
    return cost + attn.attention(batch * heads, queries, keys, head, value, masked=masked)


@onnx_formula(MS + "GroupQueryAttention")
def _ms_gqa(event: OpEvent, options: CountOptions) -> Cost:
    """query (B, S, Hq*E) (or packed qkv), past keys (B, Hkv, P, E): causal attention
    of S new queries over P+S keys (the kernel is causal; ``causal="needed"`` counts
    the kept half); rotary (do_rotary) as RotaryEmbedding on q and k."""
    q, past = event.args[0], _input(event, 3)
    heads, kv_heads = int(_attr(event, "num_heads")), int(_attr(event, "kv_num_heads"))
    k = _input(event, 1)
    width = q.shape[-1] if k is not None else q.shape[-1] // (heads + 2 * kv_heads) * heads
    head = width // heads
    batch, queries = q.shape[0], q.shape[1]
    keys = queries + (past.shape[2] if past is not None else 0)
    cost = attn.attention(batch * heads, queries, keys, head, head, causal_needed=options.causal == "needed")
    if _attr(event, "do_rotary", 0):
        cost += _rotary(batch * queries * (heads + kv_heads), head)
    return cost


def _rotary(rows: int, rotated: int) -> Cost:
    """x * cos + rotate_half(x) * sin over ``rotated`` dims per row: 2 multiplies and an
    add per element, a negation for half of them (as the PyTorch rotate_half form)."""
    return Cost(flops=rows * (3 * rotated + rotated // 2))


@onnx_formula("RotaryEmbedding", MS + "RotaryEmbedding")
def _rotary_embedding(event: OpEvent, options: CountOptions) -> Cost:
    x = event.args[0]
    if x.ndim == 4:
        width = x.shape[-1]
    else:
        width = x.shape[-1] // int(_attr(event, "num_heads", 1) or 1)
    rotated = int(_attr(event, "rotary_embedding_dim", 0) or width)
    return _rotary(x.numel // width, rotated)


# ------------------------------------------------------------------------ normalization
def _axis_split(x: TensorMeta, axis: int) -> tuple[int, int]:
    axis %= max(x.ndim, 1)
    size = prod(x.shape[axis:])
    return x.numel // max(size, 1), size


@onnx_formula("BatchNormalization")
def _batch_norm(event: OpEvent, options: CountOptions) -> Cost:
    x = event.args[0]
    channels = x.shape[1] if x.ndim > 1 else 1
    if _attr(event, "training_mode", 0):
        return normalization.normalize_with_statistics(
            channels, x.numel // channels, weight=True, bias=True
        ) + normalization.running_stats_update(channels)
    return normalization.batch_norm_inference(x.numel, channels, affine=True)


@onnx_formula("LayerNormalization", MS + "LayerNormalization")
def _layer_norm(event: OpEvent, options: CountOptions) -> Cost:
    groups, size = _axis_split(event.args[0], int(_attr(event, "axis", -1)))
    return normalization.normalize_with_statistics(
        groups, size, weight=_input(event, 1) is not None, bias=_input(event, 2) is not None
    )


@onnx_formula("InstanceNormalization")
def _instance_norm(event: OpEvent, options: CountOptions) -> Cost:
    """Statistics per (sample, channel) plane, then scale and B; without them when they
    are the exporter's ones and zeros for an InstanceNorm without affine (count.py drops
    them, params.exporter_affine)."""
    x = event.args[0]
    planes = x.shape[0] * x.shape[1]
    return normalization.normalize_with_statistics(
        planes, x.numel // planes, weight=_input(event, 1) is not None, bias=_input(event, 2) is not None
    )


@onnx_formula("GroupNormalization")
def _group_norm(event: OpEvent, options: CountOptions) -> Cost:
    x = event.args[0]
    groups = x.shape[0] * int(_attr(event, "num_groups"))
    return normalization.normalize_with_statistics(groups, x.numel // groups, weight=True, bias=True)


@onnx_formula("RMSNormalization", MS + "SimplifiedLayerNormalization", "SimplifiedLayerNormalization")
def _rms_norm(event: OpEvent, options: CountOptions) -> Cost:
    """onnxruntime writes its fusion of an RMSNorm (T5's, at the extended level) as a
    SimplifiedLayerNormalization in the ONNX domain (onnxruntime's own kernel), not
    com.microsoft: both count as RMSNormalization."""
    groups, size = _axis_split(event.args[0], int(_attr(event, "axis", -1)))
    return normalization.rms_norm(groups, size, weight=_input(event, 1) is not None)


@onnx_formula(MS + "SkipLayerNormalization", MS + "SkipSimplifiedLayerNormalization")
def _skip_norm(event: OpEvent, options: CountOptions) -> Cost:
    """x + skip (+ bias), then LayerNorm (or RMSNorm for the Simplified form)."""
    x = event.args[0]
    groups, size = _axis_split(x, -1)
    simplified = "Simplified" in event.op
    bias = _input(event, 3 if simplified else 4) is not None
    adds = Cost(flops=x.numel * (2 if bias else 1))
    if simplified:
        return adds + normalization.rms_norm(groups, size, weight=True)
    return adds + normalization.normalize_with_statistics(
        groups, size, weight=True, bias=_input(event, 3) is not None
    )


# --------------------------------------------------------------------------- pooling
@onnx_formula("MaxPool", "GlobalMaxPool")
def _max_pool(event: OpEvent, options: CountOptions) -> Cost:
    x, out = event.args[0], _out(event)
    window = prod(_attr(event, "kernel_shape", [])) if event.op == "onnx.MaxPool" else prod(x.shape[2:])
    return pooling.max_pool(out.numel, window, input_elements=x.numel)


@onnx_formula("AveragePool", "GlobalAveragePool", MS + "QLinearGlobalAveragePool", MS + "QLinearAveragePool")
def _avg_pool(event: OpEvent, options: CountOptions) -> Cost:
    x, out = event.args[0], _out(event)
    windowed = event.op in ("onnx.AveragePool", MS + "QLinearAveragePool")
    window = prod(_attr(event, "kernel_shape", [])) if windowed else out_window(x, out)
    return pooling.avg_pool(out.numel, window, input_elements=x.numel)


@onnx_formula("Resize", "Upsample")
def _resize(event: OpEvent, options: CountOptions) -> Cost:
    """Linear and cubic modes interpolate over every spatial dim of an (N, C, *spatial)
    tensor, a dim scaled by 1 included (as PyTorch's upsample kernels): 2 spatial dims
    are bilinear; on another layout (N or C resized), over the dims that change."""
    x, out = event.args[0], _out(event)
    if x.ndim >= 3 and x.shape[:2] == out.shape[:2]:
        spatial = x.ndim - 2
    else:
        spatial = sum(1 for a, b in zip(x.shape, out.shape, strict=False) if a != b) or 1
    mode = str(_attr(event, "mode", "nearest"))
    if mode == "linear":
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(spatial, "trilinear")
    elif mode == "cubic":
        mode = "bicubic"
    else:
        mode = "nearest"
    return pooling.interpolate(out.numel, mode)


@onnx_formula("GridSample")
def _grid_sample(event: OpEvent, options: CountOptions) -> Cost:
    """GridSample(X (N, C, *in), grid (N, *out, r)): as aten.grid_sampler, per output
    element the mode's interpolation over the r sampled dims ("linear"/"bilinear": bilinear
    for r = 2, trilinear for r = 3; "cubic"/"bicubic": bicubic, tricubic for r = 3;
    "nearest": 0), and 3 per grid coordinate to un-normalise it. Opset 16 names the modes
    bilinear and bicubic, opset 20 linear and cubic."""
    grid = event.args[1]
    mode = str(_attr(event, "mode", "bilinear")).removeprefix("bi")  # opset 16's names: opset 20's
    return pooling.grid_sample(
        _out(event).numel, grid.numel, pooling.grid_interpolation(mode, grid.shape[-1])
    )


def out_window(x: TensorMeta, out: TensorMeta) -> int:
    """Cells pooled per output of a global pool (channels first or last)."""
    return x.numel // max(out.numel, 1)


# ------------------------------------------------------------------ elementwise, reductions
_ELEMENTWISE = {
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Neg": "neg", "Abs": "abs", "Sign": "sign",
    "Reciprocal": "reciprocal", "Mod": "remainder", "Pow": "pow", "Sqrt": "sqrt", "Exp": "exp", "Log": "log",
    "Sin": "sin", "Cos": "cos", "Tan": "tan", "Tanh": "tanh", "Erf": "erf", "Asin": "asin", "Acos": "acos",
    "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh", "Floor": "floor", "Ceil": "ceil", "Round": "round",
    "Sigmoid": "sigmoid", "Relu": "relu", "LeakyRelu": "leaky_relu", "PRelu": "prelu", "Elu": "elu",
    "Selu": "selu", "Celu": "celu", "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish",
    "Softplus": "softplus", "Mish": "mish", "ThresholdedRelu": "threshold", "Shrink": "softshrink",
    "Equal": "eq", "Less": "lt", "LessOrEqual": "le", "Greater": "gt", "GreaterOrEqual": "ge",
    "Not": "logical_not", "And": "logical_and", "Or": "logical_or", "Xor": "logical_or",
    "BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseNot": "bitwise_not",
    "Where": "where", "IsNaN": "isnan", "IsInf": "isinf",
    MS + "QuickGelu": "silu",
    MS + "QLinearAdd": "add", MS + "QLinearMul": "mul", MS + "QLinearSigmoid": "sigmoid",
    MS + "QLinearLeakyRelu": "leaky_relu",  # x * sigmoid(alpha x): the silu count plus the alpha multiply (below)
}  # fmt: skip
_PTFLOPS_ACTIVATIONS = frozenset({"relu", "prelu", "elu", "leaky_relu", "hardtanh", "gelu", "silu"})


def _elementwise(event: OpEvent, options: CountOptions) -> Cost:
    op_type = event.op.removeprefix("onnx.")
    if op_type.startswith(MS + "QLinear"):  # a, a_scale, a_zp, b, ...: the op on the integers
        op_type = op_type
    name = _ELEMENTWISE[op_type]
    elements = _out(event).numel
    per = elementwise.PER_ELEMENT[name]
    if op_type == "Softplus":
        per = 3
    elif op_type == MS + "QuickGelu" and float(_attr(event, "alpha", 1.702)) != 1:
        per += 1  # x * sigmoid(alpha * x): alpha 1 (onnxruntime's fusion of SiLU) multiplies nothing
    cost = elementwise.pointwise(elements, per)
    return replace(cost, ptflops_macs=elements) if name in _PTFLOPS_ACTIVATIONS else cost


for _op in _ELEMENTWISE:
    onnx_formula(_op)(_elementwise)


@onnx_formula("Clip")
def _clip(event: OpEvent, options: CountOptions) -> Cost:
    """min and max: 2 per element, 1 when only one bound is given (as aten.clamp)."""
    bounds = sum(_input(event, i) is not None for i in (1, 2))
    bounds += sum(name in event.kwargs for name in ("min", "max"))  # opset < 11
    name = "hardtanh" if bounds == 2 else None
    cost = elementwise.pointwise(_out(event).numel, max(bounds, 1))
    return replace(cost, ptflops_macs=_out(event).numel) if name else cost


@onnx_formula("Max", "Min", "Sum", "Mean")
def _variadic(event: OpEvent, options: CountOptions) -> Cost:
    """n operands: n-1 binary ops per output (+1 divide for Mean)."""
    operands = len([a for a in event.args if a is not None])
    per = max(operands - 1, 0) + (1 if event.op == "onnx.Mean" else 0)
    return elementwise.pointwise(_out(event).numel, per)


@onnx_formula("Gelu", MS + "Gelu", MS + "FastGelu", MS + "BiasGelu")
def _gelu(event: OpEvent, options: CountOptions) -> Cost:
    elements = _out(event).numel
    tanh = _attr(event, "approximate", "none") == "tanh" or event.op == MS + "FastGelu"
    per = elementwise.PER_ELEMENT["gelu_tanh" if tanh else "gelu"]
    bias = event.op in (MS + "FastGelu", MS + "BiasGelu") and _input(event, 1) is not None
    return Cost(flops=elements * (per + int(bias)), ptflops_macs=elements)


@onnx_formula("Softmax", "LogSoftmax", MS + "QLinearSoftmax")
def _softmax(event: OpEvent, options: CountOptions) -> Cost:
    """Over one axis (opset >= 13); before 13 over the flattened dims from ``axis`` on.
    com.microsoft QLinearSoftmax (a QOperator graph's, on 8-bit integers): as every QLinear
    op, integer work and no FLOPs."""
    x = event.args[0]
    opset = int(event.kwargs.get("opset", 13))
    axis = int(_attr(event, "axis", -1 if opset >= 13 else 1)) % max(x.ndim, 1)
    length = x.shape[axis] if opset >= 13 else prod(x.shape[axis:])
    return elementwise.softmax(x.numel // max(length, 1), length, log=event.op == "onnx.LogSoftmax")


def _reduced(event: OpEvent) -> tuple[int, int]:
    x = event.args[0]
    outputs = max(_out(event).numel, 1)
    return outputs, x.numel // outputs


@onnx_formula("ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ArgMax", "ArgMin")
def _reduce(event: OpEvent, options: CountOptions) -> Cost:
    return elementwise.reduction(*_reduced(event))


@onnx_formula("ReduceMean")
def _reduce_mean(event: OpEvent, options: CountOptions) -> Cost:
    outputs, length = _reduced(event)
    return replace(elementwise.reduction(outputs, length, per_output=1), ptflops_macs=outputs * length)


@onnx_formula("ReduceSumSquare", "ReduceL2", "ReduceL1", "ReduceLogSumExp", "ReduceLogSum")
def _reduce_with_map(event: OpEvent, options: CountOptions) -> Cost:
    """One op per term before summing (square, abs, exp), plus the sum; L2 and
    LogSum(Exp) add one op per output (sqrt, log)."""
    outputs, length = _reduced(event)
    finish = outputs if event.op in ("onnx.ReduceL2", "onnx.ReduceLogSum", "onnx.ReduceLogSumExp") else 0
    mapped = 0 if event.op == "onnx.ReduceLogSum" else outputs * length
    return Cost(flops=mapped + elementwise.reduction(outputs, length).flops + finish)


@onnx_formula("CumSum")
def _cumsum(event: OpEvent, options: CountOptions) -> Cost:
    x = event.args[0]
    axis_value = _value(event, 1)
    axis = int(axis_value[0] if axis_value else 0) % max(x.ndim, 1)
    length = x.shape[axis] if x.ndim else 1
    return elementwise.cumulative(x.numel // max(length, 1), length)


@onnx_formula("TopK")
def _topk(event: OpEvent, options: CountOptions) -> Cost:
    """Comparison sort of each row: n*ceil(log2 n) comparisons (as aten.topk)."""
    x = event.args[0]
    axis = int(_attr(event, "axis", -1)) % max(x.ndim, 1)
    length = x.shape[axis]
    return Cost(flops=x.numel * ceil(log2(length)) if length > 1 else 0)


# ------------------------------------------------------------------------- quantization
@onnx_formula(
    "QuantizeLinear",
    "DequantizeLinear",
    MS + "QuantizeLinear",
    MS + "DequantizeLinear",
    MS + "GatherBlockQuantized",
)
def _quantize(event: OpEvent, options: CountOptions) -> Cost:
    """Quantize: x / scale, round, + zero point, saturate = 4 per element;
    dequantize: (q - zero point) * scale = 2 per element. GatherBlockQuantized (a 4- or
    8-bit embedding table, from onnxruntime's MatMulNBitsQuantizer) dequantizes the rows
    it gathers: 2 per output element (the gather itself moves bytes, as an embedding)."""
    per = 4 if event.op.endswith(".QuantizeLinear") else 2
    return Cost(flops=_out(event).numel * per)


@onnx_formula("DynamicQuantizeLinear")
def _dynamic_quantize(event: OpEvent, options: CountOptions) -> Cost:
    """min and max over x (2(n-1)), scale and zero point (a few, ignored), then
    quantize each element (4): 6n - 2."""
    n = event.args[0].numel
    return Cost(flops=6 * n - 2 if n else 0)


# --------------------------------------------------------------------------- recurrent
@onnx_formula("LSTM", "GRU", "RNN")
def _recurrent(event: OpEvent, options: CountOptions) -> Cost:
    """X (T, B, I) (layout 0) or (B, T, I): T*B steps per direction, each one cell
    step (formulas/recurrent.py); bias present when input B is given; an LSTM's
    peepholes (input P) add a multiply and an add per hidden unit for 3 gates."""
    x, w = event.args[0], event.args[1]
    steps = x.shape[0] * x.shape[1]
    directions = w.shape[0]
    hidden = int(_attr(event, "hidden_size"))
    mode = {"onnx.LSTM": "lstm", "onnx.GRU": "gru"}.get(event.op)
    if mode is None:
        activations = [str(a).lower() for a in _attr(event, "activations", ["Tanh"])]
        mode = "rnn_relu" if activations and activations[0] == "relu" else "rnn_tanh"
    step = recurrent.recurrent_step(mode, x.shape[2], hidden, bias=_input(event, 3) is not None)
    if mode == "lstm" and _input(event, 7) is not None:  # peepholes P: i, f, o gates each add P * c
        step += Cost(flops=3 * 2 * hidden)
    return step.scaled(steps * directions)


@onnx_formula(MS + "DynamicQuantizeLSTM")
def _dynamic_quantize_lstm(event: OpEvent, options: CountOptions) -> Cost:
    """onnxruntime's ``quantize_dynamic`` of an LSTM: X (T, B, I), W (D, I, 4H) and R
    (D, H, 4H) of 8 bits. Per direction: X quantized once (6n - 2, as
    DynamicQuantizeLinear), h once per time step (6BH - 2); per token the two products as
    integer MACs 4H(I + H) (no FLOPs), one float rescale per product output (8H), the
    bias adds (8H, when B is given) and the cell's pointwise work (19H; peepholes +6H)."""
    x, w = event.args[0], event.args[1]
    steps, batch, inputs = x.shape
    directions, hidden = w.shape[0], int(_attr(event, "hidden_size"))
    gates = recurrent.GATES["lstm"] * hidden
    tokens = steps * batch
    per_token = recurrent.CELL_POINTWISE["lstm"] * hidden + 2 * gates
    per_token += 2 * gates if _input(event, 3) is not None else 0
    per_token += 3 * 2 * hidden if _input(event, 7) is not None else 0
    quantize = (6 * tokens * inputs - 2) + steps * (6 * batch * hidden - 2)
    return Cost(
        macs=directions * tokens * gates * (inputs + hidden),
        flops=directions * (tokens * per_token + quantize),
    )


# ------------------------------------------------------------------ Fourier transforms
@onnx_formula("DFT")
def _dft(event: OpEvent, options: CountOptions) -> Cost:
    """x (..., 1) real or (..., 2) complex, dft_length, axis (an input from opset 20, an
    attribute before; it counts the trailing real/imaginary dim). A real input, or an
    inverse one-sided transform (torch's exported irfft), is a real transform of
    dft_length; anything else a complex one. An inverse also scales by 1/n: one multiply
    per real number of the signal, as torch's normalization (formulas/spectral.py)."""
    x = event.args[0]
    opset = int(event.kwargs.get("opset", 20))
    axis_value = _value(event, 2)
    axis = int(axis_value[0]) if axis_value else int(_attr(event, "axis", -2 if opset >= 20 else 1))
    axis %= max(x.ndim, 1)
    length_value = _value(event, 1)
    n = int(length_value[0]) if length_value else x.shape[axis]
    inverse, onesided = bool(_attr(event, "inverse", 0)), bool(_attr(event, "onesided", 0))
    batch = x.numel // max(x.shape[-1] * x.shape[axis], 1)
    real = x.shape[-1] == 1 or (inverse and onesided)
    return spectral.fft((n,), batch, real=real, normalized=inverse)


@onnx_formula("STFT")
def _stft(event: OpEvent, options: CountOptions) -> Cost:
    """signal (B, L, 1 real | 2 complex), frame_step, window, frame_length -> (B, frames,
    bins, 2): per frame the window's multiply and a 1-d transform of frame_length (else
    the window's length), as torch.stft's ``mul`` and ``_fft_r2c``."""
    signal, out = event.args[0], _out(event)
    window = _input(event, 2)
    length_value = _value(event, 3)
    n = int(length_value[0]) if length_value else (window.shape[0] if window is not None else 0)
    frames = out.shape[0] * out.shape[1]
    return spectral.stft(frames, n, real=signal.shape[-1] == 1, windowed=window is not None)


def onnx_op_name(domain: str, op_type: str) -> str:
    """``onnx.Conv`` for the default domain, ``com.microsoft.Attention`` otherwise."""
    return f"onnx.{op_type}" if domain in ("", "ai.onnx") else f"{domain}.{op_type}"
