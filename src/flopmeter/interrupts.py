"""Setting up and undoing a profile's changes, also when an interrupt arrives meanwhile.

Ctrl-C (``KeyboardInterrupt``), or whatever a signal handler raises (``SIGALRM``), can
arrive wherever Python checks for signals: as a function starts, after a call into C
returns, at a loop's jump. So it can arrive while a profile puts the model back, between
a ``with`` statement's ``__enter__`` taking something and returning (then its
``__exit__`` never runs), or as an ``__exit__`` starts (then nothing of it runs). Before
this module, one interrupt in 30 at a random moment of a small model's profile left a
trace: a model half put back (meta tensors in its attributes, the wrong train/eval mode),
flopmeter's dispatch mode or module hooks left on for every later op, grad mode off
(probe 8: docs/probe-8/trace.md). The rules:

- each step that changes something is an ``Undoing``: armed (in this thread's list)
  before it changes anything, its ``leave`` safe to run twice and after a ``take``
  stopped anywhere, run through ``finish`` (run again when an exception arrives in it;
  the interrupt is raised once it has run to its end);
- the outermost calls are ``@completes``: they ``leave`` whatever is still armed when
  they return or raise (an ``__exit__`` stopped before its first line), and put the grad
  mode back;
- no ``@contextmanager`` generator on this path: interrupted just as its ``next()``
  returns, the generator stays suspended, holding what it took, until it is collected
  (never, while a notebook keeps the traceback); ``with`` on a C lock is safe as it is;
- torch's modes are entered through ``ModeOn`` (torch's ``__exit__`` pops whatever mode
  is on top and is not safe to run twice).

Not caught: a second interrupt inside the few bytecodes between two checks of one
cleanup's retry loop (Python gives no way to block signals there).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from functools import wraps
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

import torch
import torch.utils._python_dispatch as _dispatch_module

_Function = TypeVar("_Function", bound=Callable[..., Any])
_TRIES = 4  # a cleanup failing this many times in a row is broken, not interrupted


def finish(cleanup: Callable[[], object]) -> None:
    """Run ``cleanup`` (which must be safe to run again) to its end; an exception raised
    while it runs (an interrupt) makes it run again, and is raised after it finished."""
    interrupt: BaseException | None = None
    for _ in range(_TRIES):
        try:
            cleanup()
        except BaseException as error:  # noqa: BLE001 - raised below, once the cleanup is done
            interrupt = interrupt or error
            continue
        if interrupt is not None:
            raise interrupt
        return
    assert interrupt is not None
    raise interrupt


class Undoable(Protocol):
    def leave(self) -> None:
        """Undo what entering did (safe to run again, and before entering finished)."""


_THREAD = threading.local()


def _armed() -> list[Undoable]:
    """This thread's entered context managers whose undoing has not finished."""
    armed: list[Undoable] | None = getattr(_THREAD, "armed", None)
    if armed is None:
        armed = _THREAD.armed = []
    return armed


def arm(entered: Undoable) -> None:
    """``entered`` is about to change something: undo it at the latest in ``completes``."""
    _armed().append(entered)


def leave(entered: Undoable) -> None:
    """Undo ``entered`` to the end (``finish``); it is then no longer armed."""
    finish(entered.leave)
    armed = _armed()
    for index in range(len(armed) - 1, -1, -1):
        if armed[index] is entered:
            del armed[index]
            break


def completes(function: _Function) -> _Function:
    """Run ``function``, then undo whatever context manager inside it was entered and not
    left: Python checks for signals as each function starts, ``__exit__`` too, so an
    interrupt can stop an ``__exit__`` before its first line; it is then run here. The
    grad mode is put back too (torch's own ``no_grad`` blocks, in ``Tensor.__deepcopy__``
    say, have the same gap). One interrupt, wherever it lands, leaves nothing behind."""

    @wraps(function)
    def completed(*args: Any, **kwargs: Any) -> Any:
        armed = _armed()
        start, grad = len(armed), torch.is_grad_enabled()
        try:
            return function(*args, **kwargs)
        finally:
            if len(armed) > start:
                _undo_from(armed, start)
            if torch.is_grad_enabled() is not grad:  # torch's own ``with torch.no_grad()``, stopped
                torch._C._set_grad_enabled(grad)

    return cast(_Function, completed)


def _undo_from(armed: list[Undoable], start: int) -> None:
    interrupt: BaseException | None = None
    while len(armed) > start:
        try:
            finish(armed[-1].leave)
        except BaseException as error:  # noqa: BLE001 - the others are undone first
            interrupt = interrupt or error
        armed.pop()
    if interrupt is not None:
        raise interrupt


class Undoing:
    """A context manager that ``take``s something as it is entered and ``leave``s it as it
    is left, also if an interrupt arrives in either: ``leave`` must be safe to run again,
    and after a ``take`` stopped anywhere."""

    def take(self) -> None:
        """Change what ``leave`` puts back."""

    def leave(self) -> None:
        """Put it back."""

    def __enter__(self) -> Any:
        arm(self)
        try:
            self.take()
        except BaseException:
            leave(self)
            raise
        return self

    def __exit__(self, kind: Any = None, error: Any = None, traceback: TracebackType | None = None) -> None:
        leave(self)


class GradMode(Undoing):
    """``torch.set_grad_enabled(enabled)`` for a ``with`` block, undone on exit: torch's own
    ``no_grad`` sets the mode inside a Python ``__enter__`` that an interrupt can leave
    before its ``__exit__`` is armed (grad mode then stays off)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._before = True

    def take(self) -> None:
        self._before = torch.is_grad_enabled()
        torch._C._set_grad_enabled(self.enabled)

    def leave(self) -> None:
        torch._C._set_grad_enabled(self._before)


# torch's TorchDispatchMode.__enter__ sets these module flags, and __exit__ puts them back
_DISPATCH_FLAGS = (
    "_is_in_torch_dispatch_mode",
    "_is_in_non_infra_torch_dispatch_mode",
    "_is_in_any_mode_without_ignore_compile_internals",
)


class ModeOn(Undoing):
    """``with ModeOn(mode):`` enters a torch dispatch or function mode and, on exit, takes
    exactly that mode off its stack, once, also if interrupted: torch's own ``__exit__``
    pops whatever is on top (a mode the model pushed and left, so flopmeter's stayed on
    for every later op) and is not safe to run twice."""

    def __init__(self, mode: Any) -> None:
        self.mode = mode
        self._dispatch = isinstance(mode, _dispatch_module.TorchDispatchMode)
        self._flags: dict[str, Any] = {}

    def __enter__(self) -> Any:
        super().__enter__()
        return self.mode

    def take(self) -> None:
        if self._dispatch:
            self._flags = {
                name: getattr(_dispatch_module, name)
                for name in _DISPATCH_FLAGS
                if hasattr(_dispatch_module, name)
            }
        self.mode.__enter__()

    def __exit__(self, kind: Any = None, error: Any = None, traceback: TracebackType | None = None) -> None:
        if traceback is not None:
            _close_interrupted_generators(traceback)
        leave(self)

    def leave(self) -> None:
        length: Callable[[], int]
        at: Callable[[int], Any]
        pop: Callable[[], Any]
        push: Callable[[Any], None]
        if self._dispatch:
            length, at = torch._C._len_torch_dispatch_stack, torch._C._get_dispatch_stack_at
            pop, push = _dispatch_module._pop_mode, _dispatch_module._push_mode
        else:
            length, at = torch._C._len_torch_function_stack, torch._C._get_function_stack_at
            pop, push = torch._C._pop_torch_function_stack, torch._C._push_on_torch_function_stack
        stack = [at(index) for index in range(length())]
        if any(mode is self.mode for mode in stack):
            above: list[Any] = []
            while (top := pop()) is not self.mode:
                above.append(top)
            for mode in reversed(above):  # modes the model entered and left on: kept
                push(mode)
        for name, value in self._flags.items():
            setattr(_dispatch_module, name, value)
        if "_is_in_any_mode_without_ignore_compile_internals" in self._flags:
            set_flag = getattr(_dispatch_module, "set_is_in_mode_without_ignore_compile_internals", None)
            if set_flag is not None:
                set_flag(self._flags["_is_in_any_mode_without_ignore_compile_internals"])


def _close_interrupted_generators(traceback: TracebackType | None) -> None:
    """Close the ``@contextmanager`` generators an exception stopped in their context
    manager's ``__enter__`` or ``__exit__`` (an interrupt as it starts). torch hands each
    call to a function mode inside ``with _pop_mode_temporarily()``, whose generator pushes
    the mode back when it is closed: left to the garbage collector, it would push
    flopmeter's mode back after the profile, for good. Closed now, it pushes it back
    while the mode can still be taken off."""
    while traceback is not None:
        frame = traceback.tb_frame
        if frame.f_code in _CONTEXTLIB_STEPS:
            manager = frame.f_locals.get("self")
            generator = getattr(manager, "gen", None)
            if generator is not None and generator.gi_frame is not None and not generator.gi_running:
                generator.close()
        traceback = traceback.tb_next


_CONTEXTLIB_STEPS = {
    contextlib._GeneratorContextManager.__enter__.__code__,
    contextlib._GeneratorContextManager.__exit__.__code__,
}
