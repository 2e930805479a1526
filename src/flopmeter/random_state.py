"""torch's random number streams, left where they were by flopmeter's own runs."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._pytree import tree_flatten

from .interrupts import Undoing


class kept_random_state(Undoing):  # noqa: N801 - used as a function, ``with kept_random_state():``
    """Random numbers a run draws (dropout in train mode, ``torch.randn_like`` in a
    forward, an LSTM run with values) come from torch's CPU generator and every CUDA
    device's that is initialized, whose states are put back afterwards (as
    ``torch.random.fork_rng`` does): the user's random stream is as it was, so profiling
    between ``torch.manual_seed`` and training changes no result. A ``torch.Generator``
    among ``inputs`` is put back too (a module's own: the guard). A class, not a
    generator, so that an interrupt cannot leave the states unrestored
    (``tracing/interrupts.py``)."""

    def __init__(self, inputs: Any = None) -> None:
        self._inputs = inputs
        self._given: list[torch.Generator] = []
        self._states: list[torch.Tensor] = []
        self._cpu: torch.Tensor | None = None
        self._cuda: list[tuple[int, torch.Tensor]] = []

    def take(self) -> None:
        inputs = self._inputs
        self._given = [g for g in tree_flatten(inputs)[0] if isinstance(g, torch.Generator)] if inputs else []
        self._states = [g.get_state() for g in self._given]
        self._cpu = torch.get_rng_state()
        devices = range(torch.cuda.device_count()) if torch.cuda.is_initialized() else ()
        self._cuda = [(device, torch.cuda.get_rng_state(device)) for device in devices]

    def leave(self) -> None:
        """Put the saved states back (safe to run again)."""
        if self._cpu is not None:
            torch.set_rng_state(self._cpu)
        for device, state in self._cuda:
            torch.cuda.set_rng_state(state, device)
        list(map(torch.Generator.set_state, self._given, self._states))
