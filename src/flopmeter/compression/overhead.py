"""Which ops exist only because of how a compression is emulated (the overhead bucket).

Kept out of model FLOPs/MACs by default: the prune mask multiply (forward, and in a
backward profile the gradient's multiply by the mask) and parametrization recompute; quantize/dequantize; and, in a module whose weight is a quantized tensor
subclass (torchao, bitsandbytes), every op that is not the contraction and does not
read a real parameter (the bias add stays): int->float copies of the weight, scale
multiplies, zero-point subtractions, on-the-fly activation quantization. Every op of
a torch.ao observer or fake quantizer (prepared and QAT models: calibration and
emulated rounding, not the model's work). In a QAT ``ConvBn*`` module, the simulated
batch-norm fold: the scale factor (``sqrt(var + eps)``, ``gamma / std``), the weight
scaling, the output's division by the scale and the adds of the zero bias it passes to
the conv (the model's own bias add, and the batch norm itself, stay model work); the
same ops of a ``prepare_qat_pt2e`` graph's fold and their gradients, told apart by the
graph (``pt2e_fold``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..cost import Cost
from ..registry import PT2E_DEQUANTIZE, PT2E_QPARAMS, PT2E_QUANTIZE, TORCHAO_PRIMITIVES, kind_of
from ..tracing.events import BACKWARD, OpEvent
from .facts import ModelFacts
from .pt2e_fold import FoldMatcher

QUANTIZE_OPS = frozenset(
    {
        "aten.quantize_per_tensor",
        "aten.quantize_per_channel",
        "aten.quantize_per_tensor_dynamic",
        "aten.dequantize",
        "aten.fake_quantize_per_tensor_affine",
        "aten.fake_quantize_per_channel_affine",
        "aten._fused_moving_avg_obs_fq_helper",
        "aten.fake_quantize_per_tensor_affine_cachemask",
        "aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams",
        "aten.fake_quantize_per_channel_affine_cachemask",
        "aten._fake_quantize_learnable_per_tensor_affine",
        "aten._fake_quantize_learnable_per_channel_affine",
        *(
            f"quantized_decomposed.{op}"
            for op in (*PT2E_QUANTIZE, *PT2E_DEQUANTIZE, *PT2E_QPARAMS, "fake_quant_per_channel")
        ),
        *TORCHAO_PRIMITIVES,
    }
)
_SUBCLASS_PREFIXES = ("torchao ", "bitsandbytes")


def classifier(
    facts: ModelFacts, first_names: Mapping[str, str] | None = None
) -> Callable[[OpEvent, Cost], bool | Cost]:
    """``is_overhead(event, cost)`` for the model these facts were read from: True
    when the whole op is overhead, a Cost when only that part of it is. ``first_names``:
    a shared module's further names (``b.0``) -> its first name, which the facts use."""
    first = first_names or {}
    masked = {
        name: {tuple(f.shape) for f in fs if f.representation == "prune"}
        for held in (facts.weights, facts.tied)
        for name, fs in held.items()
        if any(f.representation == "prune" for f in fs)
    }
    for name, shapes in facts.prune_masks.items():  # a pruned bias's mask multiply too (any name)
        masked.setdefault(name, set()).update(shapes)
    subclassed = {
        name
        for name, fs in facts.weights.items()
        if any(f.representation.startswith(_SUBCLASS_PREFIXES) for f in fs)
    }
    emulation = frozenset(facts.overhead_modules)  # parametrizations, observers, fake quantizers
    folded = frozenset(facts.folded_batch_norms)
    bias_sums: dict[str, int] = {}  # folded module -> its bias adds whose gradient sum is still to come
    follow = _input_quantizers(facts)
    folds = {name: FoldMatcher(steps) for name, steps in facts.pt2e_folds.items()}  # PT2E QAT graphs

    def is_overhead(event: OpEvent, cost: Cost) -> bool | Cost:
        module = first.get(event.module, event.module) if first else event.module
        if follow is not None:
            follow(module, event.phase, cost)
        if event.op in QUANTIZE_OPS:
            return True
        if emulation and _within(module, emulation):
            return True
        if module in folded:
            return _batch_norm_fold(event, bias_sums)
        if folds:
            owner = _fold_owner(module, folds)
            if owner is not None:  # the graph's own row, or a layer row regrouped from its nodes
                return folds[owner](event)
        if module in masked and event.op in ("aten.mul", "aten.mul_"):
            inputs = event.tensor_inputs()
            if len(inputs) != 2:
                return False
            if event.phase == BACKWARD:  # grad_weight_orig = grad_weight * weight_mask
                return any(
                    t.role in ("buffer", "stored") and tuple(t.shape) in masked[module] for t in inputs
                )
            return all(t.role != "activation" for t in inputs)
        if module in subclassed and not cost.macs and kind_of(event.op) != "view":
            return all(t.role != "param" for t in event.tensor_inputs())
        return False

    return is_overhead


def _fold_owner(module: str, folds: dict[str, FoldMatcher]) -> str | None:
    """The graph module holding a fold whose ops ``module`` may run: itself, or the graph
    it is a row of (a flat graph's ops are charged to the layers their nodes record)."""
    for owner in folds:
        if not owner or module == owner or module.startswith(owner + "."):
            return owner
    return None


def _input_quantizers(facts: ModelFacts) -> Callable[[str, str, Cost], None] | None:
    """Eager-mode QAT: a function that, called with every op in trace order, records in
    ``facts.qat_input_bits`` the bits of the activation fake quantizer that ran last
    before each QAT layer's first contraction (the previous layer's output quantizer, or
    a QuantStub's): the layer's input in a chain, though per-layer qconfigs (mixed
    precision) give its own output other bits. None when there is nothing to follow."""
    quantizers, layers = facts.activation_quantizers, facts.qat_act_bits
    if not quantizers or not layers:
        return None
    facts.qat_input_bits.clear()
    last: list[int] = []

    def follow(module: str, phase: str, cost: Cost) -> None:
        if phase == BACKWARD:
            return
        bits = quantizers.get(module)
        if bits is not None:
            last[:] = [bits]
        elif last and cost.macs and module in layers:
            facts.qat_input_bits.setdefault(module, last[0])

    return follow


# the ops torch.ao's QAT ConvBn runs to simulate folding its batch norm into the conv,
# and, in a backward profile, their gradients (the float conv + batch norm has none of
# them in the conv's own module: its gradients are convolution_backward's and the norm's)
_FOLD_OPS = frozenset({"aten.add", "aten.sqrt", "aten.rsqrt", "aten.div", "aten.mul", "aten.reciprocal"})
_FOLD_GRADIENT_OPS = _FOLD_OPS | {"aten.neg", "aten.sum", "aten.sub", "aten.pow"}
# the fused layer's contraction and where it takes the (zero) bias the fold hands it
_FOLDED_CONTRACTIONS = {"aten.convolution": (2, "bias"), "aten.addmm": (0, "input")}


def _batch_norm_fold(event: OpEvent, bias_sums: dict[str, int]) -> bool | Cost:
    """In a QAT ``ConvBn*`` module's own ops: True for the fold's arithmetic and its
    gradient; for its conv, the part that adds the zero bias the fold passes (1 FLOP
    per output: the conv then counts as the float model's conv without bias); False for
    the rest: the conv's products and gradients, the activation, the model's bias add
    (an add reading a parameter) and that add's gradient (a sum over the output: the
    first one after the norm's gradient, as autograd runs them; the fold's own sum over
    the output has the same cost, so which of the two is kept does not change a number)."""
    op, module = event.op, event.module
    if event.phase == BACKWARD:
        if op not in _FOLD_GRADIENT_OPS:
            return False
        if op == "aten.sum" and bias_sums.get(module) and len(event.tensor_inputs()[0].shape) > 1:
            inputs = event.tensor_inputs()
            if event.outputs and inputs and event.outputs[0].numel < inputs[0].numel:
                bias_sums[module] -= 1
                return False
        return True
    if op in _FOLDED_CONTRACTIONS:
        bias = event.arg(*_FOLDED_CONTRACTIONS[op])
        if bias is not None and getattr(bias, "role", "param") == "activation" and event.outputs:
            return Cost(flops=event.outputs[0].numel)
        return False
    if op not in _FOLD_OPS:
        return False
    if op == "aten.add" and any(t.role == "param" for t in event.tensor_inputs()):
        bias_sums[module] = bias_sums.get(module, 0) + 1
        return False
    return True


def _within(module: str, names: frozenset[str]) -> bool:
    """Whether ``module`` is one of ``names`` or inside one of them."""
    while True:
        if module in names:
            return True
        if "." not in module:
            return False
        module = module.rsplit(".", 1)[0]
