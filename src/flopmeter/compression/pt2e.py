"""PT2E quantized graphs (``convert_pt2e``): the integer weights a layer really uses.

A converted PT2E model is an FX graph in torch's reference representation: each
quantized conv or linear reads its weight as ``dequantize_per_channel(q, scale,
zero_point, axis, quant_min, quant_max, dtype)`` (or ``dequantize_per_tensor``) of an
integer constant ``q`` held by the graph's module, and its input as a
``dequantize_per_tensor`` of a quantized activation; the float contraction runs on the
dequantized values. The layer's original float ``weight`` Parameter is still
registered but no longer read. So the layer's weight is the integer constant: its
bits are those its range needs (``(quant_max - quant_min).bit_length()``: -128..127 -> 8),
one scale and zero point per output channel (per tensor: one), stored as they are; its
activation bits are those of the dequantize feeding the contraction's input; a value
is zero where ``q`` equals its zero point.

Found in the graph of every module that has one: a flat ``GraphModule`` (the
contraction runs in that module) or an unflattened ``ExportedProgram``, where the
dequantize runs at the root and the contraction in the submodule it calls.
"""

from __future__ import annotations

from typing import Any

import torch

from ..flat_graph import running_module
from .facts import ModelFacts, WeightFact, _quantizer_bits, fake_quantized
from .pt2e_fold import fold_steps

_CONTRACTIONS = frozenset({"conv1d", "conv2d", "conv3d", "linear", "conv_transpose1d", "conv_transpose2d"})


def read_pt2e_weights(model: torch.nn.Module, found: ModelFacts) -> None:
    """Replace the facts of each layer whose contraction reads a dequantized integer
    constant by the integer weight's (bits, scales, bytes, nonzeros); record its input's
    bits in ``found.qat_act_bits``. The model is only read."""
    for owner, module in model.named_modules():
        graph = getattr(module, "graph", None)
        if not isinstance(graph, torch.fx.Graph):
            continue
        folds = fold_steps(module, graph)
        if folds:
            found.pt2e_folds[owner] = folds
        for node in graph.nodes:
            if node.op == "call_function" and len(node.args) > 1 and _contraction(node, node.args[1]):
                _fake_quantized(found, module, owner, node)
            weight = _dequantized_constant(module, node)
            if weight is None:
                continue
            for layer, act_bits in _layers_using(module, owner, node):
                users = [user for user in node.users if _contraction(user, node)]
                layer = _linear_home(found, layer, users[0], tuple(weight.shape)) if users else layer
                _set_weight(found, layer, node, weight, module)
                if act_bits is not None:
                    found.qat_act_bits[layer] = act_bits


def _linear_home(found: ModelFacts, layer: str, contraction: torch.fx.Node, shape: tuple[int, ...]) -> str:
    """In a flat graph, a linear whose module (``nn_module_stack``) holds a weight of its
    shape: that module, where the view counts a matmul on a weight it holds
    (``view.functional_homes``). Convolutions stay at the graph's module, where they run."""
    stack = contraction.meta.get("nn_module_stack") or {}
    if _op_name(contraction) != "aten.linear" or not stack:
        return layer
    path = str(list(stack.values())[-1][0])
    held = found.weights.get(path, [])
    if path != layer and any(f.name == "weight" and f.shape == shape for f in held):
        return path
    return layer


def _fake_quantized(
    found: ModelFacts, module: torch.nn.Module, owner: str, contraction: torch.fx.Node
) -> None:
    """A ``prepare_qat_pt2e`` graph: a contraction whose weight passes through a fake
    quantizer (after the simulated batch-norm fold's multiply) stands for the integer
    weight it rounds to, as an eager QAT layer does (``facts._quantization_aware``): the
    quantizer's bits and scales (``facts.fake_quantized``). The fact moves to the module where the contraction is counted;
    the input's bits are those of the fake quantizer feeding it."""
    quantizer = _fake_quantizer(module, contraction.args[1])
    bits = _quantizer_bits(quantizer)
    source = contraction.args[1]
    while isinstance(source, torch.fx.Node) and source.op in ("call_module", "call_function") and source.args:
        source = source.args[0]  # through the fake quantizer and the fold's multiply
    if bits is None or not isinstance(source, torch.fx.Node) or source.op != "get_attr":
        return
    fact = found.by_tensor.get(id(_attribute(module, str(source.target))))
    if fact is None or fact.representation != "dense":
        return
    layer = _linear_home(found, running_module(module, contraction, owner), contraction, fact.shape)
    fake_quantized(fact, quantizer, bits)
    if layer != fact.module:
        found.weights[fact.module] = [f for f in found.weights.get(fact.module, []) if f is not fact]
        fact.module = layer
        found.weights.setdefault(layer, []).append(fact)
    act_bits = _quantizer_bits(_fake_quantizer(module, contraction.args[0]))
    if act_bits is not None:
        found.qat_act_bits[layer] = act_bits


def _fake_quantizer(module: torch.nn.Module, node: Any) -> Any:
    """The fake quantizer a ``call_module`` node runs, else None (an observer of a
    prepared, not QAT, model rounds nothing)."""
    if not isinstance(node, torch.fx.Node) or node.op != "call_module":
        return None
    quantizer = _attribute(module, str(node.target))
    return quantizer if any("FakeQuantize" in c.__name__ for c in type(quantizer).__mro__) else None


def _op_name(node: Any) -> str:
    """``quantized_decomposed.dequantize_per_channel`` for any overload; "" when not an op."""
    if not isinstance(node, torch.fx.Node) or node.op != "call_function":
        return ""
    schema = getattr(node.target, "_schema", None)
    return str(schema.name).replace("::", ".") if schema is not None else ""


def _range_bits(node: torch.fx.Node, at: int) -> int | None:
    """The bits of the integer range ``quant_min, quant_max`` at argument ``at``."""
    low, high = node.args[at : at + 2] if len(node.args) >= at + 2 else (None, None)
    if isinstance(low, int) and isinstance(high, int) and high > low:
        return (high - low).bit_length()
    return None


def _dequantized_constant(module: torch.nn.Module, node: torch.fx.Node) -> torch.Tensor | None:
    """The integer tensor a ``dequantize_per_{channel,tensor}`` node reads from a
    ``get_attr``; None for anything else."""
    if _op_name(node) not in (
        "quantized_decomposed.dequantize_per_channel",
        "quantized_decomposed.dequantize_per_tensor",
    ):
        return None
    source = node.args[0] if node.args else None
    if not isinstance(source, torch.fx.Node) or source.op != "get_attr":
        return None
    value = _attribute(module, str(source.target))
    if not isinstance(value, torch.Tensor) or value.is_floating_point() or value.ndim < 2:
        return None
    return value


def _attribute(module: torch.nn.Module, target: str) -> Any:
    value: Any = module
    for part in target.split("."):
        value = getattr(value, part, None)
    return value


def _layers_using(module: torch.nn.Module, owner: str, weight: torch.fx.Node) -> list[tuple[str, int | None]]:
    """(layer name, its input's bits) of each contraction reading ``weight`` as its
    weight: in this graph (the layer is the graph's module), or in a submodule it calls
    with the weight as an argument (the layer is that submodule)."""
    layers: list[tuple[str, int | None]] = []
    for user in weight.users:
        if user.op == "call_function" and _contraction(user, weight):
            layers.append((running_module(module, user, owner), _input_bits(user.args[0])))
        elif user.op == "call_module":
            layer = _attribute(module, str(user.target))
            inner = getattr(layer, "graph", None)
            if not isinstance(inner, torch.fx.Graph):
                continue
            passed = dict(zip((n for n in inner.nodes if n.op == "placeholder"), user.args, strict=False))
            for placeholder, argument in passed.items():
                if argument is not weight:
                    continue
                for contraction in placeholder.users:
                    if contraction.op == "call_function" and _contraction(contraction, placeholder):
                        source = contraction.args[0]
                        outer = passed.get(source) if isinstance(source, torch.fx.Node) else None
                        name = f"{owner}.{user.target}" if owner else str(user.target)
                        layers.append((name, _input_bits(outer)))
    return layers


def _contraction(node: torch.fx.Node, weight: torch.fx.Node) -> bool:
    name = _op_name(node)
    return (
        name.startswith("aten.")
        and name[5:] in _CONTRACTIONS
        and len(node.args) > 1
        and node.args[1] is weight
    )


def _input_bits(source: Any) -> int | None:
    """The bits of an activation that a ``dequantize_per_tensor`` gives, else None."""
    if _op_name(source) == "quantized_decomposed.dequantize_per_tensor":
        return _range_bits(source, 3)  # (input, scale, zero_point, quant_min, quant_max, dtype)
    return None


def _set_weight(
    found: ModelFacts, layer: str, node: torch.fx.Node, weight: torch.Tensor, module: torch.nn.Module
) -> None:
    """The layer's weight fact from the integer constant (replacing its unread float
    ``weight`` Parameter's, of the same shape)."""
    per_channel = _op_name(node).endswith("per_channel")
    scale, zero = (_value(module, a) for a in node.args[1:3])
    bits = _range_bits(node, 4 if per_channel else 3)
    n_scales = scale.numel() if isinstance(scale, torch.Tensor) else 1
    scale_bytes = sum(
        t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 8 for t in (scale, zero)
    )
    fact = WeightFact(
        module=layer,
        name="weight",
        representation=f"pt2e {str(weight.dtype).removeprefix('torch.')} per_{'channel' if per_channel else 'tensor'}",
        shape=tuple(weight.shape),
        dtype=str(weight.dtype).removeprefix("torch."),
        weight_bits=bits if bits is not None else weight.element_size() * 8,
        n_scales=n_scales,
        storage_bytes=weight.numel() * weight.element_size(),
        scale_bytes=scale_bytes,
        ideal_scale_bytes=scale_bytes,
    )
    axis = node.args[3] if per_channel and len(node.args) > 3 and isinstance(node.args[3], int) else 0
    fact.pending = lambda: _from_zero_point(weight, zero, axis)
    facts = [f for f in found.weights.get(layer, []) if not (f.name == "weight" and f.shape == fact.shape)]
    found.weights[layer] = [*facts, fact]


def _value(module: Any, argument: Any) -> Any:
    if isinstance(argument, torch.fx.Node) and argument.op == "get_attr":
        return _attribute(module, str(argument.target))
    return argument


def _from_zero_point(weight: torch.Tensor, zero: Any, axis: int) -> torch.Tensor:
    """``q - zero_point`` (zero where the value dequantizes to 0), the zero point
    broadcast along ``axis`` when there is one per channel."""
    if isinstance(zero, torch.Tensor) and zero.numel() > 1:
        shape = [1] * weight.ndim
        shape[axis] = -1
        zero = zero.reshape(shape)
    elif isinstance(zero, torch.Tensor):
        zero = zero.reshape(())
    return weight.to(torch.int32) - (
        zero.to(torch.int32) if isinstance(zero, torch.Tensor) else int(zero or 0)
    )
