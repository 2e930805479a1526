"""The onnx-tool convention: onnx-tool's per-node "MACs", so its tables can be checked
against ours (``report.flops_as("onnx-tool")``, CLI ``--convention onnx-tool``).

onnx-tool (github.com/ThanatosShinji/onnx-tool, read for its rules; version 1.0.1)
weighs instructions rather than counting operations: a multiply, add or compare is 1,
a divide 4, exp and pow 32, log 43, sin and cos 39, sqrt 24, tanh 38 (exp + 2 adds +
a divide). Its per-node rules, restated here:

- per element of the output, times ``max(1, inputs - 1)``: Add, Sub, Mul, Mod, Min,
  Max, Neg, Abs, Ceil, Sign, Relu, Sum, CumSum, Hardmax 1; Div, Reciprocal 4; Exp,
  Pow, Sigmoid 32; Softmax 36; Log 43; Sin, Cos 39; Sqrt 24; Tanh 38; Atan 32;
  Softplus 76; LogSoftmax 80; Elu 35; Gelu 34; HardSigmoid 4; HardSwish 5; PRelu,
  LeakyRelu, ImageScaler, QuantizeLinear, DequantizeLinear 2; InstanceNormalization 7;
  LpNormalization 33. Clip: 2 per element (no input factor);
- 1 per output element: Less(OrEqual), Greater(OrEqual), Equal, Not, And, Or, Xor,
  Round, Floor, NonZero;
- BatchNormalization 31 per element; LayerNormalization 7 per element + 29 per
  element with the normalized axis set to 1; LRN 37 + size per element;
- Conv / ConvTranspose: outputs x (C_in/groups x kernel) + outputs with a bias
  (QLinearConv and ConvInteger alike); Gemm: outputs x K + outputs with a C input;
  MatMul: outputs x K (1 for a 1-d second operand); QLinearMatMul: inputs x N;
- MaxPool / AveragePool: outputs x the first two kernel dims (a 3-d kernel's third
  is not counted, as in onnx-tool); GlobalAveragePool: inputs + 4 x outputs;
- ReduceMean / Sum / Prod / Min / Max: 1 per input element; ReduceL2: 25;
- Resize / Upsample: 4 (linear) or 8 (cubic) per output, nearest 0;
- Einsum (two operands): the product of every index size;
- LSTM: (|W| + |R| + |B|) x batch x steps + 180 per hidden element per step
  (GRU: 110), hidden elements counted for one direction as onnx-tool does.

Every other op is 0 in onnx-tool (views, copies, Where, Erf, Dropout) or unknown to it
(opset-23 Attention, RMSNormalization, com.microsoft ops); those are 0 in this view
and counted by op in ``report.options["onnx"]["onnx_tool_no_rule"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod

from ..tracing.events import OpEvent, TensorMeta

MUL = ADD = CMP = 1
DIV, EXP, LOG, TRIG, SQRT = 4, 32, 43, 39, 24
TANH = EXP + 2 * ADD + DIV  # 38

# per output element, times max(1, inputs - 1)
PER_ELEMENT = {
    **dict.fromkeys("Add Sub Mul Mod Min Max Neg Abs Ceil Sign Relu Sum CumSum Hardmax".split(), 1),
    "Div": DIV, "Reciprocal": DIV, "Exp": EXP, "Pow": EXP, "Sigmoid": EXP, "Softmax": EXP + DIV,
    "Log": LOG, "Sin": TRIG, "Cos": TRIG, "Sqrt": SQRT, "Tanh": TANH, "Atan": SQRT + 4 * MUL + DIV,
    "Softplus": EXP + ADD + LOG, "LogSoftmax": EXP + DIV + ADD + LOG, "Elu": CMP + EXP + ADD + MUL,
    "Gelu": EXP + 2 * MUL, "HardSigmoid": MUL + ADD + 2 * CMP, "HardSwish": 2 * MUL + ADD + 2 * CMP,
    "PRelu": CMP + MUL, "LeakyRelu": MUL + CMP, "ImageScaler": ADD + MUL,
    "QuantizeLinear": MUL + ADD, "DequantizeLinear": MUL + ADD,
    "InstanceNormalization": 3 * ADD + DIV, "LpNormalization": EXP + ADD,
}  # fmt: skip
COMPARES = frozenset(
    "Less LessOrEqual Greater GreaterOrEqual Equal Not And Or Xor Round Floor NonZero".split()
)
# onnx-tool's rule gives 0 for these (views, copies, selections)
ZERO = frozenset(
    (
        "Reshape Flatten Squeeze Unsqueeze Identity Shape Size Dropout Slice Expand Transpose Split Constant "
        "Concat Gather GatherElements GatherND ScatterND ScatterElements Tile Pad Cast ConstantOfShape Range "
        "Where Erf Trilu DepthToSpace SpaceToDepth OneHot TopK"
    ).split()
)
Rule = Callable[[OpEvent, dict, int], int]
RESIZE = {"nearest": 0, "linear": 4, "cubic": 8}
LSTM_PER_HIDDEN = 4 * ADD + 3 * EXP + 2 * TANH + ADD + 3 * MUL  # 180
GRU_PER_HIDDEN = 3 * ADD + 2 * EXP + TANH + 2 * ADD + 3 * MUL  # 110


def _numel(tensor: TensorMeta | None) -> int:
    return tensor.numel if tensor is not None else 0


def onnx_tool_macs(op_type: str, event: OpEvent) -> int | None:
    """onnx-tool's MACs for one ONNX node (``event`` as ops.py builds it); None when
    onnx-tool has no rule for ``op_type``."""
    args, attrs = event.args, event.kwargs
    out = event.outputs[0].numel if event.outputs else 0
    if op_type in ZERO:
        return 0
    if op_type in PER_ELEMENT:
        return out * max(1, len(args) - 1) * PER_ELEMENT[op_type]
    if op_type == "Clip":
        return out * 2 * CMP
    if op_type in COMPARES:
        return out * CMP
    rule = _RULES.get(op_type)
    return None if rule is None else rule(event, attrs, out)


def _conv(event: OpEvent, attrs: dict, out: int) -> int:
    weight_index, bias_count = {"QLinearConv": (3, 9), "ConvInteger": (1, 0)}.get(
        event.op.rsplit(".", 1)[-1], (1, 3)
    )
    weight = event.args[weight_index]
    assert weight is not None
    bias = out if len(event.args) == bias_count else 0
    return out * prod(weight.shape[1:]) * MUL + bias * ADD


def _gemm(event: OpEvent, attrs: dict, out: int) -> int:
    weight = event.args[1]
    assert weight is not None
    k = weight.shape[-1] if attrs.get("transB", 0) else weight.shape[-2]
    return out * k + (out * ADD if len(event.args) == 3 else 0)


def _matmul(event: OpEvent, attrs: dict, out: int) -> int:
    weight = event.args[1]
    assert weight is not None
    k = weight.shape[-2] if len(weight.shape) > 1 else 1
    return out * k + (out * ADD if len(event.args) == 3 else 0)


def _qlinear_matmul(event: OpEvent, attrs: dict, out: int) -> int:
    weight = event.args[3]
    assert weight is not None
    return _numel(event.args[0]) * weight.shape[-1]


def _pool(event: OpEvent, attrs: dict, out: int) -> int:
    kernel = list(attrs.get("kernel_shape", (3, 3)))
    return out * CMP * kernel[0] * (kernel[1] if len(kernel) == 2 else 1)


def _global_average_pool(event: OpEvent, attrs: dict, out: int) -> int:
    return _numel(event.args[0]) * ADD + out * DIV


def _reduce(event: OpEvent, attrs: dict, out: int) -> int:
    return _numel(event.args[0]) * ADD


def _reduce_l2(event: OpEvent, attrs: dict, out: int) -> int:
    return _numel(event.args[0]) * (ADD + SQRT)


def _batch_norm(event: OpEvent, attrs: dict, out: int) -> int:
    return out * (ADD + SQRT + DIV + ADD + MUL)


def _layer_norm(event: OpEvent, attrs: dict, out: int) -> int:
    x = event.args[0]
    assert x is not None
    axis = int(attrs.get("axis", -1)) % len(x.shape)
    rows = x.numel // x.shape[axis] if x.shape[axis] else 0
    return x.numel * (3 * MUL + 4 * ADD) + rows * (ADD + SQRT + DIV)


def _lrn(event: OpEvent, attrs: dict, out: int) -> int:
    return out * (DIV + EXP + ADD + int(attrs.get("size", 1)) * MUL)


def _resize(event: OpEvent, attrs: dict, out: int) -> int:
    return out * RESIZE.get(str(attrs.get("mode", "nearest")), 0)


def _einsum(event: OpEvent, attrs: dict, out: int) -> int:
    operands = str(attrs.get("equation", "")).replace(" ", "").split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for letters, tensor in zip(operands[:2], event.args[:2], strict=False):
        if tensor is not None:
            sizes.update(zip(letters, tensor.shape, strict=False))
    return prod(sizes.values())


def _recurrent(per_hidden: int, gates: int) -> Rule:
    def rule(event: OpEvent, attrs: dict, out: int) -> int:
        x, w, r = event.args[0], event.args[1], event.args[2]
        assert x is not None and w is not None and r is not None
        bias = event.args[3] if len(event.args) > 3 else None
        steps, batch = x.shape[0], x.shape[1]
        hidden = steps * batch * (w.shape[1] // gates)
        return (w.numel + r.numel + _numel(bias)) * batch * steps + hidden * per_hidden

    return rule


_RULES: dict[str, Rule] = {
    "Conv": _conv, "ConvTranspose": _conv, "QLinearConv": _conv, "ConvInteger": _conv,
    "Gemm": _gemm, "MatMul": _matmul, "MatMulInteger": _matmul, "QLinearMatMul": _qlinear_matmul,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_average_pool,
    "ReduceMean": _reduce, "ReduceSum": _reduce, "ReduceProd": _reduce, "ReduceMin": _reduce,
    "ReduceMax": _reduce, "ReduceL2": _reduce_l2, "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm, "LRN": _lrn, "Resize": _resize, "Upsample": _resize,
    "Einsum": _einsum, "LSTM": _recurrent(LSTM_PER_HIDDEN, 4), "GRU": _recurrent(GRU_PER_HIDDEN, 3),
}  # fmt: skip
