"""torch's higher-order operators (``torch.cond``, ``while_loop``, ``scan``, ``map``,
``associative_scan``, ``invoke_subgraph``, ``flex_attention``) in an eager forward.

torch hands a higher-order operator to a dispatch mode only when the mode says it takes
them (``supports_higher_order_operators``); a mode that does not fails on them, as
flopmeter's did until stop 22 (FlopCounterMode takes them, and counts the larger of
``torch.cond``'s branches). flopmeter counts what runs:

- an operator that calls the model's functions (a branch, a loop body, a combine
  function, a subgraph: any callable argument) runs its own eager kernel with those
  functions recorded: ``torch.cond`` counts the branch taken, ``while_loop`` each
  iteration, ``scan`` and ``map`` each step. The kernel's own bookkeeping (stacking the
  steps' results) is not recorded: it moves bytes and does no arithmetic. A branch or loop
  decided by a tensor's value needs that value, so a shapes-only run hands over to a run
  with values. A backward through one is refused (``BackwardUnavailable``): run below
  autograd, the weights its functions use would get no gradient;
- ``flex_attention`` is counted whole as attention over every query and key (the dense
  scores its eager kernel computes, as ``scaled_dot_product_attention``), masked when it
  is given a block mask (any ``mask_mod``: the eager kernel applies it to every score);
  the ops of its ``score_mod`` and ``mask_mod`` are not counted;
- ``out_dtype(op, dtype, *operands)`` (torch.ao's integer matmuls) is recorded as ``op``
  on its operands, so the op's own formula counts it;
- any other higher-order operator runs as torch runs it and is listed among the ops
  without a formula, with its calls and shapes (never counted as zero).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch._C import DispatchKey, _len_torch_dispatch_stack
from torch._ops import HigherOrderOperator
from torch.utils._python_dispatch import TorchDispatchMode, _pop_mode, _push_mode
from torch.utils._pytree import tree_flatten

from ..interrupts import ModeOn, Undoing

if TYPE_CHECKING:
    from .recorder import OpRecorder

FLEX_ATTENTION = "higher_order.flex_attention"


def run_higher_order(
    recorder: OpRecorder, func: HigherOrderOperator, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run ``func`` (called inside the recorder's ``__torch_dispatch__``, the recorder off)
    so that the ops it runs for the model are recorded."""
    name = func.name()
    if name == "flex_attention":
        return _flex_attention(recorder, func, args, kwargs)
    if name == "out_dtype":  # out_dtype(aten op, dtype, *operands): the op, with a wider result
        return _run_whole(recorder, func, args, kwargs, str(args[0].overloadpacket), args[2:])
    kernel = func.py_kernels.get(DispatchKey.CompositeExplicitAutograd)  # its eager kernel
    calls_the_model = [i for i, arg in enumerate(args) if _is_the_models_function(arg)]
    if kernel is None or not calls_the_model:  # run by torch, listed as an op without a formula
        tensors = tuple(t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor))
        return _run_whole(recorder, func, args, kwargs, f"higher_order.{name}", tensors)
    if recorder.stack.track_backward and torch.is_grad_enabled():
        from .run import BackwardUnavailable  # run.py imports this module's importer

        raise BackwardUnavailable(
            f"backward=True: the higher-order operator {name} runs the model's own functions, "
            "which torch differentiates eagerly only through its compiler (a profile turns it "
            "off): run as they are, the weights they use get no gradient, and the backward "
            "would be counted short. Count the forward alone (backward=False)"
        )
    wrapped = list(args)
    live_after_call = [recorder.live_bytes]  # live memory as the model's last function returned
    steps_none = name == "scan" and _scans_nothing(args)
    calls = dict(recorder.stack.calls)
    recorder.suppressed += steps_none  # its shape-finding call is no step of the model's (P11-A5)
    try:
        with _ModesLifted() as lifted:  # the eager kernels assert that no dispatch mode is on
            below = lifted.lifted
            for position in calls_the_model:
                wrapped[position] = _recorded(recorder, args[position], live_after_call, below)
            out = kernel(*wrapped, **kwargs)
    finally:
        recorder.suppressed -= steps_none
    if steps_none:
        recorder.stack.calls = calls
    _made_by_the_kernel(recorder, out, (args, kwargs), live_after_call[0])
    return out


def _scans_nothing(args: tuple[Any, ...]) -> bool:
    """A ``scan`` over an empty dim (``scan_op(combine_fn, init, xs, ...)``, the scanned dim
    first): torch's kernel still calls ``combine_fn`` once, on a slice, to learn the shapes
    of the (empty) results it returns; the model's function runs for no step."""
    xs = args[2] if len(args) > 2 else ()
    return any(isinstance(t, torch.Tensor) and t.dim() > 0 and t.shape[0] == 0 for t in tree_flatten(xs)[0])


def _made_by_the_kernel(recorder: OpRecorder, out: Any, inputs: Any, live_after_call: int) -> None:
    """Follow, as live memory, the results the kernel made itself, unrecorded (``map`` and
    ``scan`` stack their steps' results): made while the steps' results were still alive
    (the memory live as the last step returned), then alive as long as the model keeps them.
    A result a step made is followed already; an input, a weight or a view of one is not new
    memory (a meta kernel's stacked result is a view of the buffer it made)."""
    given = {id(t) for t in tree_flatten(inputs)[0] if isinstance(t, torch.Tensor)}
    followed, weights = recorder._sizes, recorder._roles

    def known(key: int) -> bool:
        return key in given or key in followed or key in weights

    made = [
        t
        for t in tree_flatten(out)[0]
        if isinstance(t, torch.Tensor) and not known(id(t)) and not known(id(t._base))
    ]
    new_bytes = sum(t.numel() * t.element_size() for t in made)
    recorder.peak_bytes = max(recorder.peak_bytes, live_after_call + new_bytes)
    for tensor in made:
        recorder._allocated(tensor)


def _is_the_models_function(arg: Any) -> bool:
    """A branch, loop body, combine function or subgraph: not a torch op (out_dtype's)."""
    return callable(arg) and not isinstance(arg, (torch._ops.OpOverload, torch._ops.OpOverloadPacket, type))


def _run_whole(
    recorder: OpRecorder,
    func: HigherOrderOperator,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    recorded_as: str,
    recorded_args: tuple[Any, ...],
    recorded_kwargs: dict[str, Any] | None = None,
) -> Any:
    """``func`` run by torch, unrecorded, and one event for the whole call."""
    out = func(*args, **kwargs)
    outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    for tensor in outputs:
        recorder._allocated(tensor)
    if not recorder.covered:
        recorder.record(recorded_as, "default", tuple(recorded_args), recorded_kwargs or {}, outputs)
    return out


class _ModesLifted(Undoing):
    """The dispatch modes below the recorder (a user's own: profile called inside a
    FlopCounterMode), lifted while an operator's eager kernel runs (``lifted``: top first)
    and put back after it, also if an interrupt arrives (interrupts.py: no generator here)."""

    def __init__(self) -> None:
        self.lifted: list[TorchDispatchMode] = []

    def take(self) -> None:
        while _len_torch_dispatch_stack():
            self.lifted.append(_pop_mode())

    def leave(self) -> None:
        while self.lifted:  # the bottom one first
            _push_mode(self.lifted.pop())


def _take_off(modes: list[TorchDispatchMode]) -> None:
    """Take ``modes`` off the dispatch stack (all that is on it while they are lifted),
    keeping any mode a function left on above them."""
    stack = [_pop_mode() for _ in range(_len_torch_dispatch_stack())]  # top first
    for mode in reversed(stack):
        if not any(mode is lifted for lifted in modes):
            _push_mode(mode)


def _recorded(
    recorder: OpRecorder, function: Callable[..., Any], live_after: list[int], below: list[TorchDispatchMode]
) -> Callable[..., Any]:
    """``function`` called with the recorder on, above the modes ``below`` it (lifted for
    the kernel): the ops it runs are the model's (``live_after[0]``: the live memory as it
    returns, its results still held)."""
    in_mode = _in_mode(recorder, function, below)

    def call(*args: Any, **kwargs: Any) -> Any:
        result = in_mode(*args, **kwargs)
        live_after[0] = recorder.live_bytes
        return result

    return call


def _in_mode(
    on: TorchDispatchMode, function: Callable[..., Any], below: list[TorchDispatchMode]
) -> Callable[..., Any]:
    """``function`` called with the mode ``on`` on, above the modes ``below`` it (lifted for
    the kernel)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        for mode in reversed(below):
            _push_mode(mode)
        try:
            with ModeOn(on):  # takes exactly that mode off (a function may leave a mode on)
                return function(*args, **kwargs)
        finally:
            _take_off(below)

    return call


def run_watched(
    watcher: TorchDispatchMode, func: HigherOrderOperator, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run ``func`` (called inside the ``__torch_dispatch__`` of ``watcher``, a mode that
    sees ops without counting them: the model-state guard's saver) so that ``watcher`` also
    sees the ops of the model's functions it calls (a branch writing a buffer): its eager
    kernel, with ``watcher`` on while they run. Without this, ``flopmeter.benchmark`` of a
    model calling ``torch.cond`` failed on torch's "no rule registered" (P11-A7)."""
    kernel = func.py_kernels.get(DispatchKey.CompositeExplicitAutograd)
    calls_the_model = [i for i, arg in enumerate(args) if _is_the_models_function(arg)]
    if kernel is None or not calls_the_model or func.name() == "flex_attention":
        return func(*args, **kwargs)  # its score_mod / mask_mod: pure functions of indices
    wrapped = list(args)
    with _ModesLifted() as lifted:  # the eager kernels assert that no dispatch mode is on
        for position in calls_the_model:
            wrapped[position] = _in_mode(watcher, args[position], lifted.lifted)
        return kernel(*wrapped, **kwargs)


def _flex_attention(
    recorder: OpRecorder, func: HigherOrderOperator, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """One event for the whole call: query, key, value (and whether a block mask masks
    anything) for the attention formula; the outputs from torch's own kernel, unrecorded."""
    block_mask = args[4] if len(args) > 4 else kwargs.get("block_mask", ())
    return _run_whole(
        recorder, func, args, kwargs, FLEX_ATTENTION, tuple(args[:3]), {"masked": _masks(block_mask)}
    )


def _masks(block_mask: Any) -> bool:
    """Whether a block mask, as the operator gets it (its tensors, then its mask_mod),
    has a mask_mod to apply: flex_attention passes ``noop_mask`` when given none."""
    from torch.nn.attention.flex_attention import noop_mask

    mask_mods = [part for part in block_mask if callable(part)]
    return any(mod is not noop_mask for mod in mask_mods)
