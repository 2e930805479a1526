"""Checks on user formulas (``register_formula``, ``custom_formulas``): what is wrong
with one is said when it is given, or when it runs, naming the op or module.

At registration: the formula must be callable with the arguments flopmeter passes
(an op formula one, the OpEvent; a module formula three), and an ``aten`` op name must
exist (``"aten.adddmm"`` is refused with the close names; an op of another namespace
that torch does not know yet only warns: its library may be loaded later). At each call:
the result must be a ``Cost`` of non-negative ints or a non-negative int, and an
exception the formula raises is re-raised as ``FormulaError`` naming the op and module.
"""

from __future__ import annotations

import difflib
import inspect
import numbers
import warnings
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import torch

from .cost import Cost
from .notices import CountWarning
from .tracing.recorder import WHOLE_FUNCTIONS


class FormulaError(RuntimeError):
    """A custom formula raised or returned something that is not a cost; the message
    names the op (or module type) and the module it ran in; the cause is chained."""


def checked_op_formula(name: str, formula: Any) -> Callable[..., Any]:
    """``formula`` for the op ``name``, checked now and wrapped to check each result."""
    _check_callable(formula, f"the op {name}", ("event",))
    _check_op_exists(name)

    def checked(event: Any) -> Any:
        where = f"the custom formula for {name} (in module '{event.module or '(root)'}')"
        try:
            value = formula(event)
        except Exception as error:
            raise FormulaError(f"{where} raised {type(error).__name__}: {error}") from error
        return _validated(value, where)

    checked.__wrapped__ = formula  # type: ignore[attr-defined]
    return checked


def checked_module_formula(target: type, formula: Any) -> Callable[..., Any]:
    """``formula`` for the module class ``target``, checked now and at each call."""
    _check_callable(formula, f"the module {target.__name__}", ("module", "inputs", "output"))

    def checked(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
        where = f"the custom formula for {target.__name__} (module {type(module).__name__}: {module.extra_repr()})"
        try:
            value = formula(module, inputs, output)
        except Exception as error:
            raise FormulaError(f"{where} raised {type(error).__name__}: {error}") from error
        return _validated(value, where)

    checked.__wrapped__ = formula  # type: ignore[attr-defined]
    return checked


def _check_callable(formula: Any, label: str, parameters: tuple[str, ...]) -> None:
    call = f"formula({', '.join(parameters)})"
    if not callable(formula):
        raise TypeError(f"the formula for {label} must be callable as {call}, got {formula!r}")
    try:
        signature = inspect.signature(formula)
    except (TypeError, ValueError):  # some builtins have no signature: trust them
        return
    try:
        signature.bind(*parameters)
    except TypeError as error:
        raise TypeError(
            f"the formula for {label} is called as {call}, but {formula!r} takes {signature}: {error}"
        ) from None


def _check_op_exists(name: str) -> None:
    namespace, _, op = name.partition(".")
    if name in WHOLE_FUNCTIONS.values() or _op_exists(namespace, op):
        return
    if namespace == "aten":
        close = difflib.get_close_matches(op, dir(torch.ops.aten), n=3)
        hint = f"; did you mean {', '.join('aten.' + c for c in close)}?" if close else ""
        raise ValueError(f"there is no aten op {name!r}, so a formula for it would never be used{hint}")
    warnings.warn(
        f"torch knows no op {name!r} (yet): its formula will be used if an op of that name "
        "runs; check the spelling, or load the op's library before profiling",
        CountWarning,
        stacklevel=3,
    )


def _op_exists(namespace: str, op: str) -> bool:
    try:
        getattr(getattr(torch.ops, namespace), op)
    except (AttributeError, RuntimeError):
        return False
    return True


def _is_count(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0


def _validated(value: Any, where: str) -> Any:
    if isinstance(value, Cost):
        bad = [
            f"{f.name}={getattr(value, f.name)!r}"
            for f in fields(Cost)
            if not _is_count(getattr(value, f.name))
        ]
        if bad:
            raise FormulaError(
                f"{where} returned a Cost with {', '.join(bad)}: every field must be a non-negative int"
            )
        return value
    if _is_count(value):
        return value
    raise FormulaError(
        f"{where} returned {value!r}: a formula returns a flopmeter.Cost or a non-negative int (exact FLOPs)"
    )
