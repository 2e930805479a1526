"""Run a model once and record every aten op with its shapes and owning module."""

from .events import BACKWARD, FORWARD, OpEvent, TensorMeta
from .run import Trace, trace_model

__all__ = ["BACKWARD", "FORWARD", "OpEvent", "TensorMeta", "Trace", "trace_model"]
