"""torchao's quantization primitives, counted as one call each, as quantize ops are.

``torchao.quantization.quant_primitives`` registers ``quantize_affine``,
``dequantize_affine`` and ``choose_qparams_affine`` as CompositeImplicitAutograd ops,
and its fake quantize is plain Python: an eager run reaches the op recorder as their
aten decomposition (``reciprocal, mul, round, add, clamp, sub, _to_copy``), which would
count as model work. A function mode cannot see them either when a tensor subclass
calls them (torchao's int8 ``linear``: a function mode is lifted while it runs).

So the recorder asks, for each op, whether it runs inside one of these functions: the
Python frames above the op (reached through torch's operator wrappers, and above
the primitive through any of torch's frames: ``torch.ops`` calls, ``no_grad``
decorators, ``autograd.Function.apply``) include one in ``quant_primitives`` with a
name below. The outermost such frame is the
call: at its first op one event is recorded for it (``torchao.<kind>``, read from the
call's ``input``), and the ops it runs are covered by that event (their memory is still
followed); each op's outputs become the event's (the last op's are the call's result).
Only runs in a process that imported torchao look (``LibraryCalls.watching``). The call's
frame is held until the next op outside it (so two calls made back to back are told
apart), which keeps its locals alive for that one op longer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import torch

_PRIMITIVES = "torchao.quantization.quant_primitives"
# the functions of ``quant_primitives`` counted whole, by the event they record
KINDS = {
    **dict.fromkeys(
        (
            "quantize_affine",
            "_quantize_affine",
            "_quantize_affine_no_dtype_cast",
            "_quantize_affine_tinygemm",
            "_quantize_affine_tinygemm_no_dtype_cast",
            "_quantize_affine_no_zero_point",
            "_quantize_affine_no_zero_point_no_dtype_cast",
            "_quantize_affine_float8",
        ),
        "torchao.quantize_affine",
    ),
    **dict.fromkeys(
        (
            "dequantize_affine",
            "_dequantize_affine",
            "_dequantize_affine_no_dtype_check",
            "_dequantize_affine_tinygemm",
            "_dequantize_affine_tinygemm_no_dtype_check",
            "_dequantize_affine_no_zero_point",
            "_dequantize_affine_no_zero_point_no_dtype_check",
            "_dequantize_affine_float8",
        ),
        "torchao.dequantize_affine",
    ),
    **dict.fromkeys(
        ("_fake_quantize_affine", "_fake_quantize_affine_cachemask", "_do_fake_quantize_affine"),
        "torchao.fake_quantize_affine",
    ),
    **dict.fromkeys(
        (
            "choose_qparams_affine",
            "_choose_qparams_affine",
            "_choose_qparams_affine_tinygemm",
            "_choose_qparams_affine_dont_preserve_zero",
            "_choose_scale_float8",
        ),
        "torchao.choose_qparams_affine",
    ),
}
# torch's modules whose frames can stand between a primitive's code and the op it runs
# (operator methods: ``1.0 / scale``); above the primitive, any of torch's (``torch.ops``
# calls, ``no_grad`` decorators, ``autograd.Function.apply``) up to the caller
_OPERATOR_MODULES = frozenset({"torch._tensor", "torch.functional", "torch.overrides"})


class LibraryCalls:
    """Follows the primitive call the recorder's ops run in, for one run."""

    def __init__(self) -> None:
        self.call: FrameType | None = None  # the frame of the call being covered
        self.event: Any = None  # its event

    @staticmethod
    def watching() -> LibraryCalls | None:
        """A follower for a run, or None when torchao's primitives are not imported."""
        return LibraryCalls() if _PRIMITIVES in sys.modules else None

    def covers(self, record: Callable[..., Any], describe: Callable[[Any], Any], outputs: list[Any]) -> bool:
        """Whether the op being recorded runs inside a primitive call (then covered by
        the call's event, made with ``record(name, input, *tensors)`` at its first op, ``input``
        the call's first argument, ``tensors`` its further tensor arguments; the op's ``outputs`` become the event's)."""
        frame = _call_frame(sys._getframe(1))
        if frame is None:
            self.call = self.event = None
            return False
        if frame is not self.call:
            self.call = frame
            code = frame.f_code
            values = [frame.f_locals.get(name) for name in code.co_varnames[: code.co_argcount]]
            first = values[0] if values else None
            # no tensor to count it by (not seen in torchao 0.18): its ops are counted one by one;
            # its further tensor arguments (a dequantize's scale and zero point) are read too
            more = [value for value in values[1:] if isinstance(value, torch.Tensor)]
            self.event = (
                record(KINDS[code.co_name], first, *more) if isinstance(first, torch.Tensor) else None
            )
        if self.event is None:
            return False
        if outputs:
            self.event.outputs = tuple(describe(t) for t in outputs)
        return True

    def release(self) -> None:
        self.call = self.event = None  # the frame holds the call's tensors


def _call_frame(frame: FrameType | None) -> FrameType | None:
    """The outermost frame of a primitive call above ``frame`` (the op's caller), through
    ``quant_primitives``' own frames and torch's; None when the op runs outside one."""
    found = None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module == _PRIMITIVES:
            if frame.f_code.co_name in KINDS:
                found = frame
        elif module.startswith("flopmeter."):
            pass  # the recorders' own (the function recorder's sits between an operator and its caller)
        elif found is None and module not in _OPERATOR_MODULES:
            return None  # most ops: two or three lookups
        elif not module.startswith("torch."):
            return found
        frame = frame.f_back
    return found
