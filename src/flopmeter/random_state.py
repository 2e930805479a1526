"""torch's random number streams, left where they were by flopmeter's own runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._pytree import tree_flatten


@contextmanager
def kept_random_state(inputs: Any = None) -> Iterator[None]:
    """Random numbers a run draws (dropout in train mode, ``torch.randn_like`` in a
    forward, an LSTM run with values) come from a fork of torch's CPU generator and of
    every CUDA device's that is initialized: afterwards the user's random stream is as it
    was, so profiling between ``torch.manual_seed`` and training changes no result. A
    ``torch.Generator`` among ``inputs`` is put back too (a module's own: the guard)."""
    cuda = range(torch.cuda.device_count()) if torch.cuda.is_initialized() else ()
    given = [g for g in tree_flatten(inputs)[0] if isinstance(g, torch.Generator)] if inputs else []
    states = [g.get_state() for g in given]
    try:
        with torch.random.fork_rng(devices=cuda, device_type="cuda"):
            yield
    finally:
        list(map(torch.Generator.set_state, given, states))
