"""``profile_onnx``: count an ONNX model and return its Report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import __version__
from ..registry import CountOptions
from ..report import Report
from .count import count_graph
from .load import load_onnx
from .report import build_onnx_report


def profile_onnx(
    model: Any,
    inputs: Any = None,
    *,
    dims: Mapping[str, int] | None = None,
    causal: str = "full",
    name: str | None = None,
) -> Report:
    """Count the FLOPs, MACs, params and bytes of one run of an ONNX model.

    ``model``: a path to an ``.onnx`` file or an ``onnx.ModelProto``. Weights are never
    read (external data stays on disk; its locations must be inside the model's folder).
    ``inputs``: input shapes, as ``{"x": (1, 3, 224, 224)}``, one shape, or a list in
    the graph's input order (tuples or ``"1x3x224x224"``); inputs not given keep the
    shapes the model declares. ``dims``: values of symbolic dims, e.g. ``{"T": 2048}``;
    a dim still unbound where a count needs it raises ``OnnxModelError`` naming it and
    the node. ``causal``: "full" or "needed", as in ``flopmeter.profile``.
    Returns the same ``Report`` as ``flopmeter.profile``; ``report.options["onnx"]``
    holds the exporter, the differences from a PyTorch count, and quantization facts.
    """
    if causal not in ("full", "needed"):
        raise ValueError(f"causal must be 'full' or 'needed', got {causal!r}")
    import onnx

    loaded = load_onnx(model)
    counter, counted = count_graph(loaded, inputs, dims, CountOptions(causal=causal))
    report = build_onnx_report(counter, counted, model_name=name or loaded.name, options={"causal": causal})
    report.versions = {"flopmeter": __version__, "onnx": onnx.__version__}
    return report
