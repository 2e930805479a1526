"""Run the model once under the recorder and leave it exactly as it was."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from .events import OpEvent
from .modules import ModuleStack, exclusive
from .recorder import FunctionRecorder, OpRecorder, parameter_roles


@dataclass
class Trace:
    """What one run produced: the op events, module call counts, custom-module calls."""

    events: list[OpEvent]
    module_calls: dict[str, int]
    custom_calls: list[tuple[str, torch.nn.Module, Any, Any]] = field(default_factory=list)
    peak_activation_bytes: int = 0


class TraceFailure(Exception):
    """The model raised while traced; ``module`` is the module it was raised in."""

    def __init__(self, error: BaseException, module: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.module = module


class ModelStateGuard:
    """Restores train/eval mode, requires_grad, ``.grad`` and buffer values on exit.

    Profiling a model in train mode runs BatchNorm in train mode (its cost is the
    train-mode cost), but its running statistics are put back afterwards.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __enter__(self) -> ModelStateGuard:
        model = self.model
        self._training = [(m, m.training) for m in model.modules()]
        self._params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
        with torch.no_grad():
            self._buffers = [(b, b.clone()) for b in model.buffers() if b.device.type != "meta"]
        return self

    def __exit__(self, *exc: object) -> None:
        for module, training in self._training:
            module.training = training
        for param, requires_grad, grad in self._params:
            if param.requires_grad != requires_grad:  # inference-tensor parameters refuse the call
                param.requires_grad_(requires_grad)
            param.grad = grad
        with torch.no_grad():
            for buffer, saved in self._buffers:
                if buffer.shape == saved.shape:
                    buffer.copy_(saved)


def trace_model(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    backward: bool = False,
    train: bool | None = None,
    custom_types: tuple[type, ...] = (),
    shapes_only: bool = False,
) -> Trace:
    """Run ``model(*args, **kwargs)`` once (and its backward if asked); record every op.

    ``shapes_only`` runs the floating-point inputs as meta tensors: every op computes
    shapes, not values (parameters join meta per op, integer inputs stay real), so the
    run costs almost nothing. ``train`` sets train/eval mode (None keeps the model's own); the
    guard restores every module's mode afterwards. Runs under ``torch.no_grad()``
    unless ``backward``. With ``backward`` the
    gradients are taken with ``torch.autograd.grad`` so no ``.grad`` is written.
    """
    stack = ModuleStack(model, track_backward=backward)
    stack.custom_types = custom_types
    recorder = OpRecorder(stack, parameter_roles(model), shapes_only=shapes_only)
    if shapes_only:
        args, kwargs = _floats_to_meta(args), _floats_to_meta(kwargs)
    recorder.hold([t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)])
    grad_mode = torch.enable_grad() if backward else torch.no_grad()
    try:
        with exclusive(model), ModelStateGuard(model), grad_mode, stack:
            if train is not None:
                model.train(train)
            with recorder, FunctionRecorder(recorder):
                try:
                    output = model(*args, **kwargs)
                    if backward:
                        _run_backward(model, args, kwargs, output)
                except Exception as error:
                    raise TraceFailure(error, stack.raised_in(error)) from error
    finally:
        recorder.release()
    return Trace(
        events=recorder.events,
        module_calls=dict(stack.calls),
        custom_calls=stack.custom_calls,
        peak_activation_bytes=recorder.peak_bytes,
    )


def _floats_to_meta(value: Any) -> Any:
    flat, spec = tree_flatten(value)
    moved = [
        t.detach().to("meta")
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex())
        else t
        for t in flat
    ]
    return tree_unflatten(moved, spec)


def _run_backward(model: torch.nn.Module, args: Any, kwargs: Any, output: Any) -> None:
    outputs = [t for t in tree_flatten(_plain(output))[0] if isinstance(t, torch.Tensor) and t.requires_grad]
    if not outputs:
        raise ValueError(
            "backward=True needs an output that requires grad: no parameter of the model "
            "requires grad and no input does"
        )
    wrt: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    wrt += [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.requires_grad]
    torch.autograd.grad(outputs, wrt, grad_outputs=[torch.ones_like(t) for t in outputs], allow_unused=True)


def _plain(output: Any) -> Any:
    """Model outputs such as transformers' ModelOutput are dicts; make pytree see them."""
    if isinstance(output, dict):
        return dict(output)
    return output
