"""``get_model_complexity_info``: a drop-in for ptflops' function of the same name.

Same arguments, defaults and return values; per-sample numbers in ptflops' MAC
convention (MACs + bias adds + one per activation / norm / pooling element). Where
ptflops is wrong, this is right (docs/conventions.md lists each difference):
activations called through ``F.relu`` inside ``nn.ReLU`` count once, ``@`` /
einsum / attention are counted, errors raise instead of returning (None, None),
and the model is left untouched (ptflops leaves it in eval mode).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

import torch

from .api import op_name, profile
from .render.ptflops_style import macs_string, params_string, render_ptflops_tree, zero_op_warnings
from .report import Report, parent_of


def get_model_complexity_info(
    model: torch.nn.Module,
    input_res: tuple[int, ...],
    print_per_layer_stat: bool = True,
    as_strings: bool = True,
    input_constructor: Callable[[tuple[int, ...]], Any] | None = None,
    ost: TextIO = sys.stdout,
    verbose: bool = False,
    ignore_modules: list[Any] | None = None,
    custom_modules_hooks: dict[Any, Any] | None = None,
    backend: Any = "pytorch",
    flops_units: str | None = None,
    param_units: str | None = None,
    output_precision: int = 2,
    backend_specific_config: dict[str, Any] | None = None,
) -> tuple[str | int, str | int]:
    """(MACs, params) per sample, as ptflops returns them (strings or ints).

    The batch is ``(1, *input_res)`` in the model's dtype and device, or whatever
    ``input_constructor(input_res)`` returns (a dict is passed as keyword arguments).
    ``backend`` ("pytorch" or "aten", or ptflops' ``FLOPS_BACKEND``) and
    ``backend_specific_config`` are accepted for compatibility; one engine serves both.
    Params are the trainable ones, as ptflops counts them. The per-layer printout is
    ptflops 0.7.5's layout; ``verbose=True`` names the module types that cost nothing
    (``Warning: module Dropout is treated as a zero-op.``).
    """
    _check_backend(backend)
    if not isinstance(input_res, tuple) or len(input_res) < 1:
        raise TypeError(f"input_res must be a non-empty tuple like (3, 224, 224), got {input_res!r}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    given: dict[str, Any] = {"input_shape": (1, *input_res)}  # built by profile: on meta, no draw
    if input_constructor is not None:
        batch = input_constructor(input_res)
        given = {"inputs": batch if isinstance(batch, dict) else (batch,)}
    module_formulas = {
        kind: _ptflops_hook_formula(hook)
        for kind, hook in (custom_modules_hooks or {}).items()
        if isinstance(kind, type)
    }
    op_hooks = {
        kind: hook for kind, hook in (custom_modules_hooks or {}).items() if not isinstance(kind, type)
    }
    custom: dict[Any, Any] = dict(module_formulas)
    custom.update({op: _ptflops_op_formula(hook) for op, hook in op_hooks.items()})
    report = profile(model, **given, train=False, custom_formulas=custom)

    macs_by_module, params_by_module = _ptflops_numbers(model, report, ignore_modules or [])
    if verbose:
        for line in zero_op_warnings(_zero_op_types(report, macs_by_module)):
            print(line, file=ost)
        for op in report.unsupported.values():
            print(f"Warning: {op.op} has no formula and is not counted ({op.calls} calls)", file=ost)
    if print_per_layer_stat:
        print(
            render_ptflops_tree(
                report,
                macs_by_module,
                params_by_module,
                flops_units=flops_units,
                param_units=param_units,
                precision=output_precision,
            ),
            file=ost,
        )
    macs, params = macs_by_module[""], params_by_module[""]
    if as_strings:
        return macs_string(macs, flops_units, output_precision), params_string(
            params, param_units, output_precision
        )
    return int(macs), params


BACKENDS = ("pytorch", "aten")


def _check_backend(backend: Any) -> None:
    """ptflops raises ValueError for a backend it does not know; so do we."""
    value = getattr(backend, "value", backend)
    if value not in BACKENDS:
        raise ValueError(f"{backend!r} is not a valid FLOPS_BACKEND; expected one of {', '.join(BACKENDS)}")


def _zero_op_types(report: Report, macs: dict[str, float]) -> list[str]:
    """Module types (not Sequential / ModuleList) whose every instance costs 0 MACs, in
    the order ptflops names them (children before parents, as ``Module.apply`` walks)."""
    order: list[str] = []

    def walk(name: str) -> None:
        for child in report.modules[name].children:
            walk(child)
        order.append(name)

    walk("")
    costly = {report.modules[name].type for name in order if macs[name]}
    named: list[str] = []
    for name in order:
        kind = report.modules[name].type
        if kind not in costly and kind not in ("Sequential", "ModuleList") and kind not in named:
            named.append(kind)
    return named


def _ptflops_numbers(
    model: torch.nn.Module, report: Report, ignore: list[Any]
) -> tuple[dict[str, float], dict[str, int]]:
    """Per-sample ptflops MACs and trainable params per module, minus ignored modules/ops."""
    ignored_types = tuple(t for t in ignore if isinstance(t, type))
    ignored_ops = {op_name(t) for t in ignore if not isinstance(t, type)}
    batch = max(report.batch_size, 1)
    macs = {name: float(stats.total.ptflops_macs) for name, stats in report.modules.items()}
    if ignored_ops:
        for op in ignored_ops:
            if op in report.operators:
                macs[""] -= report.operators[op].cost.ptflops_macs
    if ignored_types:
        for name, module in model.named_modules():
            if name in macs and isinstance(module, ignored_types):
                removed = macs[name]
                cursor = name
                while cursor:
                    cursor = parent_of(cursor, macs)
                    macs[cursor] -= removed
                macs[name] = 0.0
    per_sample = {name: value / batch for name, value in macs.items()}
    params = {name: stats.trainable_params for name, stats in report.modules.items()}
    return per_sample, params


class _HookTarget:
    """Stands in for a module inside a ptflops-style hook: reads go to the module,
    the ``__flops__`` the hook adds stays here (nothing is written to the model)."""

    def __init__(self, module: torch.nn.Module) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "__flops__", 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_module"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)


def _meta_tensors(value: Any) -> Any:
    from .tracing.events import TensorMeta

    if isinstance(value, TensorMeta):
        return torch.empty(value.shape, dtype=getattr(torch, value.dtype), device="meta")
    if isinstance(value, (list, tuple)):
        return type(value)(_meta_tensors(v) for v in value)
    return value


def _ptflops_hook_formula(hook: Callable[..., Any]) -> Callable[..., Any]:
    """A ptflops module hook ``hook(module, input, output)`` as a flopmeter formula."""
    from .cost import Cost

    def formula(module: torch.nn.Module, args: Any, output: Any) -> Cost:
        target = _HookTarget(module)
        hook(target, _meta_tensors(args), _meta_tensors(output))
        macs = int(object.__getattribute__(target, "__flops__"))
        return Cost(macs=macs, flops=2 * macs, ptflops_macs=macs)

    return formula


def _ptflops_op_formula(hook: Callable[..., Any]) -> Callable[..., Any]:
    """A ptflops aten hook ``hook(inputs, outputs) -> macs`` as a flopmeter formula."""
    from .cost import Cost

    def formula(event: Any) -> Cost:
        macs = int(hook(_meta_tensors(tuple(event.args)), _meta_tensors(event.outputs)))
        return Cost(macs=macs, flops=2 * macs, ptflops_macs=macs)

    return formula
