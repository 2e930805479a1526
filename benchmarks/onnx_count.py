"""Load and count times of an ONNX model (resnet50 by default), beside onnx-tool's
when it is installed (``pip install onnx-tool``; optional, not a dependency).

    PYTHONPATH=src python benchmarks/onnx_count.py [model.onnx]

Without an argument, exports torchvision's resnet50 (random weights) with the legacy
exporter to a temporary folder first. Times are CPU seconds (process_time), best of 3.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any


def best_of(runs: int, function: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.process_time()
        result = function()
        best = min(best, time.process_time() - start)
    return best, result


def export_resnet50(folder: Path) -> Path:
    import torch
    import torchvision

    path = folder / "resnet50.onnx"
    model = torchvision.models.resnet50(weights=None).eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), dynamo=False, input_names=["x"])
    return path


def main() -> None:
    from flopmeter.onnx.count import count_graph
    from flopmeter.onnx.load import load_onnx
    from flopmeter.onnx.report import build_onnx_report
    from flopmeter.registry import CountOptions

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(sys.argv[1]) if len(sys.argv) > 1 else export_resnet50(Path(tmp))
        load_time, loaded = best_of(3, lambda: load_onnx(path))

        def count() -> Any:
            counter, counted = count_graph(loaded, None, None, CountOptions())
            return build_onnx_report(counter, counted, model_name=path.name, options={})

        count_time, report = best_of(3, count)
        print(f"{path.name}: {report.macs:,} MACs, {report.flops:,} FLOPs, {report.params:,} params")
        print(f"flopmeter: load {load_time:.3f} s, count {count_time:.3f} s (CPU)")
        try:
            import onnx_tool  # type: ignore[import-not-found]
        except ImportError:
            print("onnx-tool: not installed (pip install onnx-tool to compare)")
            return
        tool_time, _ = best_of(3, lambda: onnx_tool.model_profile(str(path), save_profile=None))
        print(f"onnx-tool: load + count {tool_time:.3f} s (CPU)")


if __name__ == "__main__":
    main()
