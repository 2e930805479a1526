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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


class _ForceEager:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._stance: Any = None  # torch.compiler.set_stance's object: it restores the prior stance

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                try:
                    self._stance = torch.compiler.set_stance("force_eager")
                except RuntimeError:  # called inside a compiled region: leave the stance alone
                    self._stance = None
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._stance is not None:
                    self._stance.__exit__(None, None, None)
                    self._stance = None


eager_compiled_code = _ForceEager()
