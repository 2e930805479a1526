"""ONNX models as a second source of the same Report: ``profile_onnx``.

Reads the graph and initializer metadata only (weights are never read), binds the
user's input shapes and symbolic dims, folds shape subgraphs on integers, and counts
every node with formulas that share ``formulas/`` with the PyTorch path.
See docs/onnx.md.
"""

from __future__ import annotations

from .api import profile_onnx
from .load import OnnxModelError

__all__ = ["OnnxModelError", "profile_onnx"]
