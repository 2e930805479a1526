"""Facts the ONNX report states beside its totals: how the graph differs from the
PyTorch model it came from, and the bits of quantized ops. Plain data (render/
makes the sentences)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ..dtypes import dtype_bits
from ..tracing.events import TensorMeta

# op -> (activation input index, weight input index)
QUANTIZED_OPS = {
    "onnx.QLinearConv": (0, 3),
    "onnx.QLinearMatMul": (0, 3),
    "onnx.ConvInteger": (0, 1),
    "onnx.MatMulInteger": (0, 1),
    "com.microsoft.MatMulIntegerToFloat": (0, 1),
    "com.microsoft.MatMulNBits": (0, 1),
    "com.microsoft.QGemm": (0, 3),
    "com.microsoft.DynamicQuantizeMatMul": (0, 1),  # A is quantized to 8 bits inside
    "com.microsoft.DynamicQuantizeLSTM": (0, 1),  # X and h quantized to 8 bits inside; weights W and R
}
FUSED_OPS = frozenset(
    "onnx.Attention onnx.RMSNormalization onnx.RotaryEmbedding onnx.Gelu onnx.LayerNormalization".split()
)


def bits_of(tensor: TensorMeta | None) -> int:
    if tensor is None:
        return 0
    bits = dtype_bits(tensor.dtype)
    return tensor.itemsize * 8 if bits is None else bits


# aten.conv2d(x, w, b, ...) / aten.linear(x, w, b): the PyTorch layer had a bias
_HAD_BIAS = re.compile(
    r"target=torch\.ops\.aten\.(?:conv\w*|convolution|linear)\.\w+\]\(args = \(%\w+, %\w+, %\w+"
)


def dropped_biases(counter: Any) -> tuple[int, int, int]:
    """Biases of all zeros that dynamo's optimizer removed (onnxscript's
    ``RemoveOptionalBiasFromConv`` / ``...FromGemm``): a PyTorch conv or linear bias
    (the fx node passed one), or the bias a folded BatchNorm became (identity
    statistics: a model built without weights). Returns (layers, bias adds = output
    elements, bias params = output channels) that the ONNX count lacks."""
    layers = adds = params = 0
    for node, meta in zip(counter.nodes, counter.meta, strict=True):
        if node.op_type not in ("Conv", "ConvTranspose", "Gemm") or (len(node.input) > 2 and node.input[2]):
            continue
        rule = meta.get("pkg.onnxscript.rewriter.rule_name", "")
        if "RemoveOptionalBiasFrom" not in rule:
            continue
        if "FuseBatchNorm" not in rule and _HAD_BIAS.search(meta.get("pkg.torch.onnx.fx_node", "")) is None:
            continue  # the zero bias the exporter gave a bias-free layer, which PyTorch's had not
        out = counter.meta_of(node.output[0], node, False)
        if out is None or not out.shape:
            continue
        layers += 1
        adds += out.numel
        params += out.shape[-1] if node.op_type == "Gemm" else out.shape[1]
    return layers, adds, params


def differences(counter: Any, counted: list[Any]) -> dict[str, int]:
    """Counts of what makes this graph's numbers differ from the PyTorch model's:
    - folded_batch_norm: Convs the exporter fused a BatchNorm into (dynamo says so in
      metadata; a legacy export shows it as a Conv whose weight it generated);
    - dropped_bias (+ _adds, _params): zero biases dynamo's optimizer removed
      (``dropped_biases``): the FLOPs and params the ONNX count lacks for them;
    - fused_ops / contrib_ops: single ONNX ops for what PyTorch ran as several;
    - patterns: decomposed ops folded back (attention, linear bias, rsqrt);
    - constants: initializers that are not parameters."""
    folded = 0
    for node, meta in zip(counter.nodes, counter.meta, strict=True):
        if node.op_type != "Conv":
            continue
        rule = meta.get("pkg.onnxscript.rewriter.rule_name", "")
        generated = len(node.input) > 1 and node.input[1].startswith("onnx::")
        folded += int("FuseBatchNormIntoConv" in rule or generated)
    ops = Counter(op.event.op for op in counted)
    dropped, dropped_adds, dropped_params = dropped_biases(counter)
    return {
        "folded_batch_norm": folded,
        "dropped_bias": dropped,
        "dropped_bias_adds": dropped_adds,
        "dropped_bias_params": dropped_params,
        "fused_ops": sum(n for op, n in ops.items() if op in FUSED_OPS),
        "contrib_ops": sum(n for op, n in ops.items() if op.startswith("com.microsoft.")),
        "patterns": sum(n for op, n in ops.items() if op.startswith("pattern.") or op == "onnx.MatMul+Add"),
        "constants": len(counter.constants),
    }


def quantized_facts(counter: Any, counted: list[Any]) -> list[dict[str, Any]]:
    """One entry per quantized contraction: the node, its module, weight and activation
    bits, integer MACs and BOPs (MACs x weight bits x activation bits), weight bytes.
    QDQ graphs (DequantizeLinear feeding a float Conv/MatMul/Gemm's weight, and its
    activation too or not: weight-only quantization) are listed with ``qdq: True``: the
    graph computes them in float; a runtime fuses them to integer kernels."""
    facts = []
    for op in counted:
        event = op.event
        if op.cost is None:
            continue
        if event.op in QUANTIZED_OPS:
            act_index, weight_index = QUANTIZED_OPS[event.op]
            activation, weight = event.args[act_index], event.args[weight_index]
            weight_bits = (
                int(event.kwargs.get("bits", 4)) if event.op.endswith("MatMulNBits") else bits_of(weight)
            )
            if event.op.endswith("MatMulNBits"):  # N x K weights packed in uint8 blocks
                weight = weight._replace(shape=(int(event.kwargs["N"]), int(event.kwargs["K"])))
            if event.op.endswith("DynamicQuantizeLSTM"):  # its weights are W and R
                weight = weight._replace(shape=(weight.numel + event.args[2].numel,))
            dynamic = event.op.endswith(("DynamicQuantizeMatMul", "DynamicQuantizeLSTM"))
            activation_bits = 8 if dynamic else bits_of(activation)
            facts.append(_fact(op, activation_bits, weight_bits, weight, qdq=False))
        elif event.op in ("onnx.Conv", "onnx.MatMul", "onnx.Gemm", "onnx.ConvTranspose"):
            sources = [counter.index.node_of(name) for name in op.inputs[:2]]
            if len(sources) == 2 and sources[1] is not None and sources[1].op_type == "DequantizeLinear":
                weight = counter.meta_of(sources[1].input[0], sources[1], False)
                activation = (  # a float activation: weight-only quantization (W8A16, W4A32, ...)
                    counter.meta_of(sources[0].input[0], sources[0], False)
                    if sources[0] is not None and sources[0].op_type == "DequantizeLinear"
                    else event.args[0]
                )
                facts.append(_fact(op, bits_of(activation), bits_of(weight), weight, qdq=True))
    return facts


def event_integer(op: str) -> bool:
    """onnxruntime's fused dynamic-quantization matmuls: integer MACs beside their float
    rescaling (their FLOPs)."""
    return op.endswith(("DynamicQuantizeMatMul", "MatMulIntegerToFloat", "DynamicQuantizeLSTM"))


def _fact(
    op: Any, activation_bits: int, weight_bits: int, weight: TensorMeta | None, *, qdq: bool
) -> dict[str, Any]:
    weight_bytes = (weight.numel * weight_bits + 7) // 8 if weight is not None else 0
    return {
        "node": op.node,
        "module": op.event.module,
        "op": op.event.op,
        "weight_bits": weight_bits,
        "activation_bits": activation_bits,
        "macs": op.cost.macs,
        "bops": op.cost.macs * weight_bits * activation_bits,
        "weight_bytes": weight_bytes,
        "qdq": qdq,
        "integer": op.cost.flops == 0 or event_integer(op.event.op),  # else float math (QDQ, MatMulNBits)
    }
