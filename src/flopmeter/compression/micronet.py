"""The MicroNet challenge score (NeurIPS 2019 rules), per sample.

storage = sum over layers of (kept values * b_w + mask bits (N, if sparse: where that is smaller
than N * b_w dense) + bias * b_w) / 32,
plus every other parameter (norms) at 32 bits;
ops = mults * m_bits / 32 + adds * 32 / 32, with m_bits = the larger of a layer's
weight and activation bits; a ReLU is one multiply; every other operation is a 32-bit
add (an int8 model's quantized adds and fused ReLUs too); conversions
(quantize/dequantize, the overhead bucket) are free.
The 16-bit freebie: when nothing is below 16 bits, values and multiplies count at 16.
score = storage / P0 + ops / O0, with (P0, O0) per task.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import QUANTIZED_POINTWISE
from ..report import OpRecord
from .view import CompressionView

BASELINES: dict[str, tuple[float, float]] = {
    "imagenet": (6.9e6, 1.17e9),
    "cifar100": (36.5e6, 10.49e9),
    "wikitext103": (159e6, 318e6),
}
_RELU_OPS = frozenset({"aten.relu", "aten.relu_"})
_QUANTIZED_POINTWISE = frozenset(f"quantized.{name}" for name in QUANTIZED_POINTWISE)
_INT_BITS = 8  # torch.ao's quantized activations (quint8)
# dynamic linears with a fused ReLU: float inputs and outputs, so the ReLU is a float one
# (outputs = MACs / in_features)
_DYNAMIC_RELU_OPS = frozenset({"quantized.linear_relu_dynamic", "quantized.linear_relu_dynamic_fp16"})


@dataclass(frozen=True)
class MicroNetScore:
    """Storage and operations in 32-bit units (per sample), and the score. ``as_if_dense``:
    some weight's nonzeros were unknown (a model on meta, a packed float4 weight) and were
    taken as all nonzero."""

    task: str
    storage: float
    ops: float
    score: float
    freebie: bool
    as_if_dense: bool = False


def score_from(storage: float, ops: float, task: str) -> float:
    """storage / P0 + ops / O0 for ``task`` (imagenet, cifar100, wikitext103)."""
    if task not in BASELINES:
        raise ValueError(f"unknown MicroNet task {task!r}; expected one of {', '.join(BASELINES)}")
    params, operations = BASELINES[task]
    return storage / params + ops / operations


def micronet(view: CompressionView, task: str = "imagenet", *, freebie: bool = True) -> MicroNetScore:
    """The MicroNet score of a compression view. ``freebie``: apply the 16-bit freebie
    when the model is eligible (nothing below 16 bits)."""
    score_from(0, 0, task)  # validates the task
    view.require_nonzeros("micronet (its storage and ops)")
    layers = [layer for layer in view.layers.values() if layer.weight_params]
    eligible = all(
        (layer.weight_bits or 32) >= 16 and (layer.act_bits or 32) >= 16 for layer in view.layers.values()
    )
    use_freebie = freebie and eligible
    storage_bits = 0
    ops = 0.0
    for layer in layers:
        bits = 16 if use_freebie else int(layer.weight_bits or 32)
        nonzero = layer.weight_nonzero if layer.weight_nonzero is not None else layer.weight_params
        # stored sparse (kept values + a 1-bit mask per weight) only where that is smaller
        values_bits = min(layer.weight_params * bits, nonzero * bits + layer.weight_params)
        storage_bits += values_bits + layer.bias_params * bits
        m_bits = 16 if use_freebie else max(int(layer.weight_bits or 32), int(layer.act_bits or 32))
        mults = layer.macs_effective
        adds = layer.contraction_ops_effective - mults
        ops += mults * m_bits / 32 + adds
    other_params = view.params - sum(layer.weight_params + layer.bias_params for layer in layers)
    storage_bits += max(other_params, 0) * (16 if use_freebie else 32)
    relu = other = 0
    weighted = {layer.name for layer in layers}
    for record in view._report.ops if view._report is not None else []:
        if record.phase != "forward":
            continue
        if record.op in _DYNAMIC_RELU_OPS:  # a float ReLU fused in a dynamic linear: no FLOPs in the report
            relu += record.cost.macs // max(record.shapes[0][-1], 1) if record.shapes else 0  # its outputs
        elif record.op.startswith("quantized."):  # integer work: no FLOPs in the report
            int_mults, int_adds = _integer_elementwise(record)
            ops += int_mults * _INT_BITS / 32 + int_adds
        if record.cost.macs and (record.module in weighted or id(record) in view._rehomed):
            continue  # weight contractions are counted above, from their nonzeros
        if record.op in _RELU_OPS:
            relu += record.cost.flops
        else:
            other += record.cost.flops
    ops += relu * (16 if use_freebie else 32) / 32 + other
    storage = storage_bits / 32
    ops /= max(view.batch_size, 1)
    unknown = any(layer.weight_nonzero is None for layer in layers)
    return MicroNetScore(task, storage, ops, score_from(storage, ops, task), use_freebie, unknown)


def _integer_elementwise(record: OpRecord) -> tuple[int, int]:
    """(multiplies, adds) of a torch.ao quantized op outside the weight contractions,
    counted as its float op would be (its integer work is no FLOPs, so the report holds
    none): an add 1 add per output element, a multiply 1 multiply, any other elementwise
    op 1 add; a fused ReLU (``add_relu``, ``conv2d_relu``: quint8 outputs, 1 byte each)
    1 multiply more, as the rules count a ReLU."""
    if record.op in _QUANTIZED_POINTWISE:
        elements = max((_numel(shape) for shape in record.shapes), default=0)
        mults = elements if record.op.startswith("quantized.mul") else 0
        adds = elements - mults
    else:  # a contraction (its own products are counted from the layer) or data movement
        elements, mults, adds = record.cost.bytes_written, 0, 0
    if record.op.endswith("relu"):
        mults += elements
    return mults, adds


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count
