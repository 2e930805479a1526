"""While any profile runs, ``torch.compile``d code runs eagerly: profiling compiles nothing.

A module compiled in place (``model.compile()``) or a compiled submodule is called by the
model's own forward; without this, dynamo would compile it (and flopmeter's dispatch mode
with it) for meta inputs at every profile: seconds for a tiny model, and graphs that fill the
compiled code's recompile limit. torch's stance is process-wide, so it is set when the first
profile starts and put back when the last one ends (compiled code another thread runs
meanwhile runs eagerly too). The counts are those of the eager ops either way.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from ..interrupts import Undoing


class _ForceEager:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: set[int] = set()  # the profiles running (ending one twice is harmless)
        self._stance: Any = None  # torch.compiler.set_stance's object: it restores the prior stance
        self._prior: Any = None  # the stance before the first profile began

    def __call__(self) -> _Eager:
        return _Eager(self)

    def enter(self, user: object) -> None:
        with self._lock:
            first = not self._users
            self._users.add(id(user))
            if first:
                self._prior = _current_stance()  # to put back even if set_stance is interrupted
                try:
                    self._stance = torch.compiler.set_stance("force_eager")
                except RuntimeError:  # called inside a compiled region: leave the stance alone
                    self._stance = self._prior = None

    def exit(self, user: object) -> None:
        with self._lock:
            self._users.discard(id(user))
            if not self._users:
                if self._prior is not None:
                    _set_stance(self._prior)
                elif self._stance is not None:
                    self._stance.__exit__(None, None, None)
                self._stance = self._prior = None


def _current_stance() -> Any:
    """torch's compile stance now (a private global of ``torch._dynamo.eval_frame``), or
    None where this torch keeps it elsewhere."""
    from torch._dynamo import eval_frame

    return getattr(eval_frame, "_stance", None)


def _set_stance(stance: Any) -> None:
    from torch._dynamo import eval_frame

    eval_frame._set_stance(stance)


class _Eager(Undoing):
    """One profile's use of the stance (a class: an interrupt cannot leave it on)."""

    def __init__(self, stance: _ForceEager) -> None:
        self._stance = stance

    def take(self) -> None:
        self._stance.enter(self)

    def leave(self) -> None:
        self._stance.exit(self)


eager_compiled_code = _ForceEager()
