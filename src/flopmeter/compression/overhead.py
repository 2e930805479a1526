"""Which ops exist only because of how a compression is emulated (the overhead bucket).

Kept out of model FLOPs/MACs by default: the prune mask multiply (forward, and in a
backward profile the gradient's multiply by the mask) and parametrization recompute; quantize/dequantize; and, in a module whose weight is a quantized tensor
subclass (torchao, bitsandbytes), every op that is not the contraction and does not
read a real parameter (the bias add stays): int->float copies of the weight, scale
multiplies, zero-point subtractions, on-the-fly activation quantization. Every op of
a torch.ao observer or fake quantizer (prepared and QAT models: calibration and
emulated rounding, not the model's work).
"""

from __future__ import annotations

from collections.abc import Callable

from ..cost import Cost
from ..registry import kind_of
from ..tracing.events import BACKWARD, OpEvent
from .facts import ModelFacts

QUANTIZE_OPS = frozenset(
    {
        "aten.quantize_per_tensor",
        "aten.quantize_per_channel",
        "aten.quantize_per_tensor_dynamic",
        "aten.dequantize",
        "aten.fake_quantize_per_tensor_affine",
        "aten.fake_quantize_per_channel_affine",
        "aten._fused_moving_avg_obs_fq_helper",
    }
)
_SUBCLASS_PREFIXES = ("torchao ", "bitsandbytes")


def classifier(facts: ModelFacts) -> Callable[[OpEvent, Cost], bool]:
    """``is_overhead(event, cost)`` for the model these facts were read from."""
    masked = {
        name: {tuple(f.shape) for f in fs if f.representation == "prune"}
        for held in (facts.weights, facts.tied)
        for name, fs in held.items()
        if any(f.representation == "prune" for f in fs)
    }
    subclassed = {
        name
        for name, fs in facts.weights.items()
        if any(f.representation.startswith(_SUBCLASS_PREFIXES) for f in fs)
    }
    emulation = frozenset(facts.overhead_modules)  # parametrizations, observers, fake quantizers

    def is_overhead(event: OpEvent, cost: Cost) -> bool:
        if event.op in QUANTIZE_OPS:
            return True
        module = event.module
        if emulation and _within(module, emulation):
            return True
        if module in masked and event.op in ("aten.mul", "aten.mul_"):
            inputs = event.tensor_inputs()
            if len(inputs) != 2:
                return False
            if event.phase == BACKWARD:  # grad_weight_orig = grad_weight * weight_mask
                return any(t.role == "buffer" and tuple(t.shape) in masked[module] for t in inputs)
            return all(t.role != "activation" for t in inputs)
        if module in subclassed and not cost.macs and kind_of(event.op) != "view":
            return all(t.role != "param" for t in event.tensor_inputs())
        return False

    return is_overhead


def _within(module: str, names: frozenset[str]) -> bool:
    """Whether ``module`` is one of ``names`` or inside one of them."""
    while True:
        if module in names:
            return True
        if "." not in module:
            return False
        module = module.rsplit(".", 1)[0]
