"""An op call on complex values: its real count turned into real FLOPs of complex arithmetic.

``registry.cost_of`` works out every op's cost as if its values were real, then asks
``complex_cost`` for calls that touch a complex tensor (or a complex Python number):
contractions by ``complex_values.contraction`` (a complex MAC is 4 real MACs), the
LAWN 41-counted linear algebra by ``complex_values.lawn41`` (6 per multiplication, 2 per add),
elementwise ops, reductions, var/std and vector norms by their complex formulas
(formulas/complex_values.py). A complex call of an op without a complex formula returns
None: the report lists it as unsupported (its real count would be too low, silently).
"""

from __future__ import annotations

from math import prod
from typing import Any

from .cost import Cost
from .formulas import complex_values
from .tracing.events import OpEvent, TensorMeta

# Elementwise ops read under the name of their complex formula.
_ALIASES = {"true_divide": "div", "multiply": "mul", "subtract": "sub", "sgn": "sign"}
# pow's FLOPs per element by (base complex, exponent complex)
_POW = {
    (True, False): complex_values.POW_COMPLEX_BASE,
    (True, True): complex_values.POW_BOTH_COMPLEX,
    (False, True): complex_values.POW_COMPLEX_EXPONENT,
}


def is_complex_value(value: Any) -> bool:
    """A complex tensor (its TensorMeta) or a complex Python number."""
    if type(value) is TensorMeta:
        return value.dtype.startswith("complex")
    return isinstance(value, complex)


def touches_complex(event: OpEvent) -> bool:
    """Whether a call reads or writes complex values."""
    for tensor in event.outputs:  # (loops, not any(): this runs for every op call with FLOPs)
        if tensor.dtype.startswith("complex"):
            return True
    if reads_complex_tensor(event):
        return True
    for value in event.args:
        if isinstance(value, complex):
            return True
    return False


def reads_complex_tensor(event: OpEvent) -> bool:
    """Whether a tensor input of the call is complex."""
    for tensor in event.tensor_inputs():
        if tensor.dtype.startswith("complex"):
            return True
    return False


def complex_cost(event: OpEvent, name: str, work: Cost) -> Cost | None:
    """The cost of ``event`` (op ``name`` without ``aten.``, in-place suffix dropped), a call
    on complex values whose real count is ``work``; None where no complex formula exists.
    Bytes (set by a formula) are kept; the ptflops view of a contraction is its real MACs
    plus 2 per complex bias add (``complex_values.contraction``), of any other op its real
    count's scaled as its FLOPs are (a complex bias add written out: 2 per element)."""
    name = _ALIASES.get(name, name)
    if name in complex_values.ALREADY_REAL:
        return work
    if name in complex_values.COMPLEX_BY_INPUT and not reads_complex_tensor(event):
        return work
    if name in complex_values.LAWN41:
        counted: Cost | None = complex_values.lawn41(work)
    elif work.macs:
        counted = complex_values.contraction(work)
    else:
        counted = _complex_work(event, name, work)
        if counted is not None and work.ptflops_macs and work.flops:
            counted.ptflops_macs = work.ptflops_macs * counted.flops // work.flops
    if counted is None:
        return None
    counted.bytes_read, counted.bytes_written = work.bytes_read, work.bytes_written
    counted.weight_bytes = work.weight_bytes
    return counted


def _complex_work(event: OpEvent, name: str, work: Cost) -> Cost | None:
    """``complex_cost`` of an op that is not a contraction: FLOPs only."""
    elements = event.outputs[0].numel if event.outputs else 0
    if name == "pow":
        base, exponent = event.arg(0, "self"), event.arg(1, "exponent")
        per = _POW.get((is_complex_value(base), is_complex_value(exponent)), complex_values.POW_BOTH_COMPLEX)
        special = _real_number(exponent)
        if is_complex_value(base) and special in complex_values.POW_SPECIAL_EXPONENTS:
            per = complex_values.POW_SPECIAL_EXPONENTS[special]
        return Cost(flops=elements * per)
    if name in complex_values.UNARY:
        return complex_values.pointwise(elements, name)
    if name in complex_values.BINARY:
        first, second = event.arg(0, "self"), event.arg(1, "other")
        operands = int(is_complex_value(first)) + int(is_complex_value(second))
        if not operands:  # real operands written into a complex result: real arithmetic
            return Cost(flops=work.flops)
        divided = name == "div" and not is_complex_value(first)
        return complex_values.pointwise(elements, name, operands, real_over_complex=divided) + _alpha(
            event, name
        )
    if name in complex_values.ADD_REDUCTIONS or name in complex_values.MUL_REDUCTIONS:
        return complex_values.reduction(work, name)
    x = event.args[0] if event.args else None
    if type(x) is TensorMeta:
        outputs = max(prod(event.outputs[0].shape), 1) if event.outputs else 1
        length = x.numel // outputs
        if name in ("var", "std", "var_mean", "std_mean"):
            return complex_values.variance(outputs, length, sqrt=name.startswith("std"))
        if name in ("linalg_vector_norm", "norm"):
            order = event.arg(1, "ord" if name == "linalg_vector_norm" else "p", 2)
            return complex_values.vector_norm(outputs, length, order)
    return None


def _real_number(value: Any) -> float | None:
    """A Python number's real value (a complex one with no imaginary part too), else None."""
    if isinstance(value, complex):
        return value.real if value.imag == 0 else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _alpha(event: OpEvent, name: str) -> Cost:
    """``add``/``sub``'s ``alpha·other`` (``rsub``'s ``alpha·self``) when alpha is not 1:
    a real alpha times a complex operand 2 real multiplies, times a real one 1; a complex
    alpha times a complex operand a complex multiply (6), times a real one 2."""
    if name not in ("add", "sub", "rsub"):
        return Cost()
    alpha = event.arg(2, "alpha", 1)
    if alpha is None or alpha == 1:
        return Cost()
    scaled = event.arg(0, "self") if name == "rsub" else event.arg(1, "other")
    elements = event.outputs[0].numel if event.outputs else 0
    if isinstance(alpha, complex):
        per = complex_values.MUL if is_complex_value(scaled) else 2
    else:
        per = 2 if is_complex_value(scaled) else 1
    return Cost(flops=elements * per)
