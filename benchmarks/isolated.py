"""One model per worker process, for the sweeps (export_sweep, onnx_sweep).

The parent runs ``python SWEEP.py --one NAME ...`` for each model not yet in the JSONL
file, one thread and a capped address space each, so a crash, a hang or an out-of-memory
model is one row, not the end of the sweep. The worker prints its row as one ``RESULT``
line; the parent appends it to the file, so an interrupted sweep goes on where it stopped.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

RESULT = "RESULT "


def run_worker(name: str, memory_gb: float, work: Callable[[], dict[str, Any]]) -> None:
    """In the worker: cap the address space, run ``work``, print its row (a crash is a row)."""
    limit = int(memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = work()
    except Exception as error:  # noqa: BLE001 - a crash is a finding
        result = {"name": name, "status": "crashed", "reason": traceback.format_exc()[-600:]}
        result["error"] = type(error).__name__
    print(RESULT + json.dumps(result, default=str))


def run_all(
    todo: list[str],
    out: str,
    timeout: int,
    command_for: Callable[[int, str], list[str]],
    line: Callable[[dict[str, Any]], str],
) -> list[dict[str, Any]]:
    """In the parent: each name of ``todo`` not yet in ``out`` run by ``command_for(index,
    name)`` in a worker of one thread; rows appended to ``out`` and printed by ``line``.
    Returns the rows of ``todo``, in order."""
    done: dict[str, dict[str, Any]] = {}
    if os.path.exists(out):
        for text in Path(out).read_text().splitlines():
            row = json.loads(text)
            done[row["name"]] = row
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    for index, name in enumerate(todo):
        if name not in done:
            try:
                run = subprocess.run(
                    command_for(index, name), capture_output=True, text=True, timeout=timeout, env=env
                )
                found = [x for x in run.stdout.splitlines() if x.startswith(RESULT)]
                row = (
                    json.loads(found[-1][len(RESULT) :])
                    if found
                    else {"name": name, "status": "crashed", "reason": run.stderr[-400:]}
                )
            except subprocess.TimeoutExpired:
                row = {"name": name, "status": "timeout", "reason": f"over {timeout} s"}
            done[name] = row
            with open(out, "a") as file:
                file.write(json.dumps(row, default=str) + "\n")
        print(line(done[name]), flush=True)
    return [done[n] for n in todo]


def randomize(model: torch.nn.Module) -> torch.nn.Module:
    """Random weights and BatchNorm statistics: an untrained model's identical weights
    (all-ones norms, zero biases) are deduplicated or dropped by the exporters.
    (tests/onnx_exports.py keeps its own copy: the tests do not import benchmarks.)"""
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.05)
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
    return model.eval()
