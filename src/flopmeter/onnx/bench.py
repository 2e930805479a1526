"""``benchmark_onnx``: measured latency of an ONNX model with onnxruntime (CPU).

The same ``Timing`` as ``flopmeter.benchmark`` (median, p10, p90, std, throughput,
achieved FLOP/s): random inputs of the bound shapes, ``warmup`` untimed runs, then
``repeat`` timed runs of ``InferenceSession.run`` (onnxruntime's default graph
optimizations on). With ``per_module``, a second session runs the graph as written
(optimizations off, so no node is fused away or renamed) with onnxruntime's profiler;
each node's kernel time (median over the timed runs) is summed into its module and
the module's ancestors, and that session's extra time is stated as ``hook_overhead``
(its median minus the plain median).
onnxruntime is imported only here (the ``onnx`` extra).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..hardware import Hardware
from ..registry import CountOptions
from ..roofline import integer_ops
from ..timing import Progress, Timing, time_calls
from .count import count_graph
from .load import OnnxModelError, load_onnx

_KERNEL = "_kernel_time"


def require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise OnnxModelError(
            "timing an ONNX model needs onnxruntime: pip install 'flopmeter[onnx]' (or pip install onnxruntime)"
        ) from error
    return onnxruntime


def benchmark_onnx(
    model: Any,
    inputs: Any = None,
    *,
    dims: Mapping[str, int] | None = None,
    warmup: int = 10,
    repeat: int = 50,
    per_module: bool = False,
    hardware: Hardware | None = None,
    progress: Progress | None = None,
) -> list[Timing]:
    """Time ``model`` (an ``.onnx`` path, or a ModelProto with its weights inside) on
    onnxruntime's CPU provider; ``inputs`` and ``dims`` as in ``profile_onnx``.
    Returns one Timing (a list, like ``flopmeter.benchmark``)."""
    import torch

    ort = require_onnxruntime()
    loaded = load_onnx(model)
    counter, counted = count_graph(loaded, inputs, dims, CountOptions())
    flops = sum(op.cost.flops for op in counted if op.cost is not None)
    feeds = _feeds(counter)
    source = str(model) if isinstance(model, (str, Path)) else model.SerializeToString()
    session = _session(ort, source, None)
    cpu = torch.device("cpu")
    run = _run(session)
    times = time_calls(lambda: run(feeds), cpu, warmup, repeat, progress)
    first = next(iter(feeds.values()), None)
    batch = int(first.shape[0]) if first is not None and first.ndim else 1
    timing = Timing(batch, times, warmup, "cpu (onnxruntime)", flops, hardware)
    timing.int_ops = sum(integer_ops(op.cost) for op in counted if op.cost is not None)  # QLinearConv, ...
    if per_module:
        modules = {node.name: path for node, path in zip(counter.nodes, counter.node_modules, strict=True)}
        with tempfile.TemporaryDirectory() as folder:
            profiled = _session(ort, source, str(Path(folder) / "ort"))
            run_profiled = _run(profiled)
            with_profiler = time_calls(lambda: run_profiled(feeds), cpu, warmup, repeat)
            per_node = _node_medians(Path(profiled.end_profiling()), repeat)
        timing.per_module = _per_module(per_node, modules)
        timing.hook_overhead = statistics.median(with_profiler) - timing.median  # signed
    return [timing]


def _session(ort: Any, source: Any, profile_prefix: str | None) -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types: missing weights, bad graphs
        raise OnnxModelError(f"onnxruntime could not load the model to time it: {error}") from error


def _feeds(counter: Any) -> dict[str, Any]:
    """Random float inputs (zeros for integer and boolean ones) of the bound shapes."""
    import numpy as np
    from onnx import helper

    rng = np.random.default_rng(0)
    feeds = {}
    for value in counter.graph.input:
        if value.name in counter.initializers:
            continue
        vt = counter.types.types[value.name]
        if not vt.static:
            raise OnnxModelError(
                f"input {value.name!r} has shape {vt.shape}: bind its dims to time the model (--dim NAME=N)"
            )
        dtype = helper.tensor_dtype_to_np_dtype(vt.elem_type)
        shape = tuple(int(d) for d in vt.shape or ())
        _check_declared(value, shape)
        if np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[value.name] = np.zeros(shape, dtype)
    return feeds


def _check_declared(value: Any, shape: tuple[int, ...]) -> None:
    """An input shape given over the file's static dims is counted (shape inference takes it),
    but onnxruntime refuses to run it: said before timing, not as onnxruntime's traceback."""
    declared = value.type.tensor_type.shape.dim if value.type.tensor_type.HasField("shape") else []
    fixed = {i: d.dim_value for i, d in enumerate(declared) if d.HasField("dim_value")}
    wrong = [i for i, size in fixed.items() if i < len(shape) and shape[i] != size]
    if wrong and len(declared) == len(shape):
        sizes = "; ".join(f"dim {i}: {fixed[i]}, given {shape[i]}" for i in wrong)
        raise OnnxModelError(
            f"input {value.name!r} is declared with static dims that the shape given {shape} changes "
            f"({sizes}): onnxruntime runs only the declared sizes, so it cannot be timed (counting "
            "takes the shape given); time it at its declared shape, or export with dynamic dims"
        )


def _run(session: Any) -> Any:
    """``session.run`` whose onnxruntime errors (its own exception types) become OnnxModelError."""

    def call(feeds: dict[str, Any]) -> Any:
        try:
            return session.run(None, feeds)
        except Exception as error:  # onnxruntime raises its own types
            raise OnnxModelError(f"onnxruntime could not run the model to time it: {error}") from error

    return call


def _node_medians(trace: Path, repeat: int) -> dict[str, float]:
    """Median kernel seconds per node over the last ``repeat`` runs of a profile."""
    durations: dict[str, list[float]] = {}
    for event in json.loads(trace.read_text()):
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith(_KERNEL):
            durations.setdefault(name[: -len(_KERNEL)], []).append(event.get("dur", 0) / 1e6)
    trace.unlink(missing_ok=True)
    return {node: statistics.median(times[-repeat:]) for node, times in durations.items()}


def _per_module(per_node: dict[str, float], modules: dict[str, str]) -> dict[str, float]:
    """Node seconds summed into their module and every ancestor (the root is "")."""
    totals: dict[str, float] = {}
    for node, seconds in per_node.items():
        path = modules.get(node, "")
        parts = path.split(".") if path else []
        for end in range(len(parts) + 1):
            key = ".".join(parts[:end])
            totals[key] = totals.get(key, 0.0) + seconds
    return totals
