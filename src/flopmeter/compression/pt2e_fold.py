"""A ``prepare_qat_pt2e`` graph's simulated batch-norm fold: the ops that are emulation.

torchao's QAT preparation replaces each conv + batch norm of an exported graph by its
``_qat_conv_bn`` pattern (``torchao/quantization/pt2e/qat_utils.py``), which emulates
folding the norm into the conv's weight in one forward pass::

    std = sqrt(running_var + eps); scale = gamma / std          # C_out each
    y = conv(x, fake_quant(weight * scale.reshape(w_shape)), zeros_like(bias))
    y = y / scale.reshape(b_shape)                              # the fold undone
    y = y + bias.reshape(b_shape)                               # the model's bias add
    y = batch_norm(y, ...)                                      # the model's norm

The float conv + batch norm runs none of ``+ eps``, ``sqrt``, ``gamma / std``, the weight
multiply, the output's division, nor the add of the zero bias inside the conv: they are
overhead, as in eager QAT's ``ConvBn*`` (``overhead._batch_norm_fold``). The model's own
bias add and the norm stay model work, so the graph's model FLOPs are the float graph's.

A flat graph runs every op in one module, so the fold's ops are told from the model's by
the graph: ``fold_steps`` finds the pattern's nodes (by structure, not by name), in graph
order, with the op each dispatches as, the shapes of its weight-side inputs (static
whatever the batch) and the roles of all its inputs (parameter, buffer, activation);
``FoldMatcher`` takes the traced forward ops of that module in turn and marks each one
that matches the next step still to come; in a backward profile, the gradients of each
fold that ran (``_gradients``) are matched in any order, each once. A heuristic, then: a
model op of the same signature (a division of an activation by a (1, C, 1, 1)
activation, say) can take a step's place and land in the overhead bucket (in the models
checked, only ones of the same cost as the step's own did: docs/probe-10/pt2e.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..cost import Cost
from ..tracing.events import BACKWARD, OpEvent

_CONVOLUTIONS = frozenset(
    {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "convolution"}
)
_VIEWS = frozenset({"reshape", "view", "_unsafe_view", "expand"})
_ELEMENTWISE = frozenset({"add", "sqrt", "rsqrt", "div", "mul", "zeros_like"})
Shape = tuple[int, ...] | None  # None: any shape (an activation, whose batch may differ)
Input = tuple[Shape, str]  # a tensor input's shape and role (TensorMeta.role: param, buffer, activation)
_ANY: Input = (None, "activation")
_OUTPUT = (-1,)  # in a gradient step: the shape of the conv's output, as the forward ran it


@dataclass(frozen=True)
class FoldStep:
    """One op of a simulated fold: ``op`` as the trace records it (``aten.div``; every
    convolution as ``aten.convolution``), the shape (None: any) and role of each of its
    tensor inputs in order, and ``zero_bias``: a convolution, of which only the add of
    the zero bias is overhead (1 FLOP per output). The roles keep a model's own ops out:
    its convolutions read their bias as a parameter, the fold's reads a ``zeros_like``."""

    op: str
    inputs: tuple[Input, ...]
    zero_bias: bool = False
    gradients: tuple[FoldStep, ...] = ()  # the undo division's: the fold's backward ops
    output: Shape = None  # a reduction's result (a sum to the scale's shape, not to another)

    def with_output(self, shape: tuple[int, ...]) -> FoldStep:
        """This gradient step with the conv output's shape filled in."""
        inputs = tuple((shape if want == _OUTPUT else want, role) for want, role in self.inputs)
        return FoldStep(self.op, inputs, output=self.output)

    def matches(self, event: OpEvent) -> bool:
        if event.op != self.op:
            return False
        if self.output is not None and not (event.outputs and tuple(event.outputs[0].shape) == self.output):
            return False
        inputs = event.tensor_inputs()
        return len(inputs) == len(self.inputs) and all(
            got.role == role and (shape is None or tuple(got.shape) == shape)
            for (shape, role), got in zip(self.inputs, inputs, strict=True)
        )


def fold_steps(module: torch.nn.Module, graph: torch.fx.Graph) -> list[FoldStep]:
    """The steps of every simulated batch-norm fold in ``graph`` (``module``'s), in graph
    order (the order the module runs them); empty when there is none."""
    found: dict[torch.fx.Node, FoldStep] = {}
    shapes = _StaticShapes(module)
    for node in graph.nodes:
        if _name(node) in _CONVOLUTIONS and len(node.args) > 1:
            found.update(_fold_of(node, shapes))
    return [found[node] for node in graph.nodes if node in found]


def _fold_of(conv: torch.fx.Node, shapes: _StaticShapes) -> dict[torch.fx.Node, FoldStep]:
    """The fold's nodes around ``conv`` and their steps; empty when its weight is not
    ``weight * (gamma / sqrt(running_var + eps))`` (through a fake quantizer) or no user
    divides its output by that scale."""
    weight = conv.args[1]
    if (
        isinstance(weight, torch.fx.Node)
        and weight.args
        and (weight.op == "call_module" or "fake_quant" in _name(weight))
    ):
        weight = weight.args[0]  # the weight's fake quantizer: a module, or its op in a re-exported graph
    if _name(weight) != "mul" or not isinstance(weight, torch.fx.Node):
        return {}
    scaled = weight
    scale = next((s for s in map(_through_views, scaled.args) if _name(s) == "div"), None)
    if not isinstance(scale, torch.fx.Node) or len(scale.args) != 2:
        return {}
    gamma, std = scale.args
    if not (_is_attr(gamma) and _name(std) == "sqrt" and isinstance(std, torch.fx.Node)):
        return {}
    shifted = std.args[0]
    if not (_name(shifted) == "add" and isinstance(shifted, torch.fx.Node) and _is_attr(shifted.args[0])):
        return {}
    undo = next(
        (
            u
            for u in conv.users
            if _name(u) == "div" and len(u.args) == 2 and _through_views(u.args[1]) is scale
        ),
        None,
    )
    if undo is None:
        return {}
    bias = conv.args[2] if len(conv.args) > 2 else None
    steps = {
        node: FoldStep(f"aten.{_name(node)}", shapes.of_inputs(node))
        for node in (shifted, std, scale, scaled)
    }
    steps[undo] = FoldStep(
        "aten.div", (_ANY, shapes.input(undo.args[1])), gradients=_gradients(scaled, undo, shapes)
    )
    if _name(bias) == "zeros_like":
        weight_input = (shapes.of(scaled), "activation")  # what the weight's fake quantizer returns
        steps[conv] = FoldStep("aten.convolution", (_ANY, weight_input, shapes.input(bias)), zero_bias=True)
    return steps


def _gradients(scaled: torch.fx.Node, undo: torch.fx.Node, shapes: _StaticShapes) -> tuple[FoldStep, ...]:
    """The ops autograd runs for the fold's own arithmetic, as torch 2.x's derivative
    formulas give them (Y: the conv's output, S: the scale as the output's divisor,
    C: the scale, W: the weight, Ws: the scale as the weight's multiplier):
    ``y / S``: grad / S, and for S: -grad * (y / S) / S summed to S (3 div, neg, mul, sum);
    ``W * Ws``: grad * Ws for W, grad * W for Ws summed to Ws (2 mul, sum); the two
    gradients of C added, ``gamma / std``'s gradient for gamma (div), and that added to
    the norm's own gradient for gamma (2 add). The conv's gradient for its scaled weight
    and the norm's backward are the float model's, as is the bias add's sum: a sum like
    the fold's, of the same cost, so which of the two is marked does not change a number."""
    divisor, weight = shapes.of(undo.args[1]), shapes.of(scaled)
    multiplier = next((shapes.of(a) for a in scaled.args if not _is_attr(_through_views(a))), None)
    if divisor is None or weight is None or multiplier is None:
        return ()
    out = (_OUTPUT, "activation")
    scale = ((math.prod(divisor),), "activation")
    return (
        *(FoldStep("aten.div", (out, (divisor, "activation"))),) * 3,
        FoldStep("aten.neg", (out,)),
        FoldStep("aten.mul", (out, out)),
        FoldStep("aten.sum", (out,), output=divisor),
        FoldStep("aten.mul", ((weight, "activation"), (weight, "param"))),
        FoldStep("aten.mul", ((weight, "activation"), (multiplier, "activation"))),
        FoldStep("aten.sum", ((weight, "activation"),), output=multiplier),
        *(FoldStep("aten.add", (scale, scale)),) * 2,
        FoldStep("aten.div", (scale, scale)),
    )


class FoldMatcher:
    """Marks a module's traced ops that are its graph's fold steps. Forward: each op is
    compared with the steps from the next one still to come, round and round (the module
    may run more than once), so a step whose op was not counted (an unsupported op) does
    not hold the others back. Each fold that ran leaves its gradient steps (with the
    shape its conv's output had) for the backward, whose ops are matched against them in
    any order (autograd's), each step once."""

    def __init__(self, steps: list[FoldStep]) -> None:
        self.steps = steps
        self.next = 0
        self.gradients: list[FoldStep] = []  # of the folds run, still to come in the backward

    def __call__(self, event: OpEvent) -> bool | Cost:
        """True for a fold op or one of its gradients; for the fold's convolution, the
        Cost of adding its zero bias; False for the model's ops."""
        if event.phase == BACKWARD:
            at = next((i for i, step in enumerate(self.gradients) if step.matches(event)), None)
            if at is None:
                return False
            del self.gradients[at]
            return True
        count = len(self.steps)
        for offset in range(count):
            at = (self.next + offset) % count
            step = self.steps[at]
            if step.matches(event):
                self.next = (at + 1) % count
                if step.gradients:
                    output = tuple(event.tensor_inputs()[0].shape)
                    self.gradients.extend(g.with_output(output) for g in step.gradients)
                if step.zero_bias:
                    return Cost(flops=event.outputs[0].numel) if event.outputs else False
                return True
        return False


def _name(node: object) -> str:
    """``div`` for a call of any overload of ``aten.div``; "" otherwise."""
    if not isinstance(node, torch.fx.Node) or node.op != "call_function":
        return ""
    schema = getattr(node.target, "_schema", None)
    name = str(schema.name) if schema is not None else ""
    return name.removeprefix("aten::") if name.startswith("aten::") else ""


def _through_views(node: object) -> object:
    while isinstance(node, torch.fx.Node) and _name(node) in _VIEWS and node.args:
        node = node.args[0]
    return node


def _is_attr(node: object) -> bool:
    return isinstance(node, torch.fx.Node) and node.op == "get_attr"


class _StaticShapes:
    """The shapes of a graph's values that follow from its module's tensors alone
    (parameters, buffers, and elementwise ops and views of them), worked out from those
    tensors: the nodes' recorded ``val`` cannot be trusted here (torchao's replacement
    pattern keeps the shapes of the small example it was traced with). None for the rest."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def of(self, node: object) -> Shape:
        if not isinstance(node, torch.fx.Node):
            return None
        if node.op == "get_attr":
            value = self._attribute(node)
            return tuple(value.shape) if isinstance(value, torch.Tensor) else None
        name = _name(node)
        if name in _VIEWS - {"expand"} and len(node.args) > 1:
            inner = self.of(node.args[0])
            return None if inner is None else _resolved(node.args[1], math.prod(inner))
        if name in _ELEMENTWISE:
            inputs = [self.of(a) for a in node.args if isinstance(a, torch.fx.Node)]
            if not inputs or any(s is None for s in inputs):
                return None
            return tuple(torch.broadcast_shapes(*(torch.Size(s) for s in inputs if s is not None)))
        return None

    def input(self, node: object) -> Input:
        """The shape and role the trace gives a node's value: a parameter or buffer, or a
        view of one (views keep their base's role), else an activation."""
        base = _through_views(node)
        role = "activation"
        if isinstance(base, torch.fx.Node) and base.op == "get_attr":
            role = "param" if isinstance(self._attribute(base), torch.nn.Parameter) else "buffer"
        return self.of(node), role

    def of_inputs(self, node: torch.fx.Node) -> tuple[Input, ...]:
        """The shapes and roles of the node's tensor arguments, in order (a number is not one)."""
        return tuple(self.input(a) for a in node.args if isinstance(a, torch.fx.Node))

    def _attribute(self, node: torch.fx.Node) -> object:
        value: object = self.module
        for part in str(node.target).split("."):
            value = getattr(value, part, None)
        return value


def _resolved(size: object, numel: int) -> Shape:
    """A view's size list with its -1 worked out from the number of elements."""
    if not isinstance(size, (list, tuple)) or not all(isinstance(d, int) for d in size):
        return None
    known = math.prod(d for d in size if d != -1)
    return tuple(numel // known if d == -1 and known else d for d in size)
