"""ONNX models as a second source of the same Report: ``profile_onnx``.

Reads the graph and initializer metadata only (weights are never read), binds the
user's input shapes and symbolic dims, folds shape subgraphs on integers, and counts
every node with formulas that share ``formulas/`` with the PyTorch path.
See docs/onnx.md.
"""

from __future__ import annotations

from typing import Any

from .api import profile_onnx
from .load import OnnxModelError


def benchmark_onnx(*args: Any, **kwargs: Any) -> list[Any]:
    """Measured latency with onnxruntime; see ``flopmeter.onnx.bench.benchmark_onnx``
    (imported on use: it needs torch's timing helpers and onnxruntime)."""
    from .bench import benchmark_onnx as run

    return run(*args, **kwargs)


__all__ = ["OnnxModelError", "benchmark_onnx", "profile_onnx"]
