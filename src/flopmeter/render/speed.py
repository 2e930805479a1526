"""Roofline estimates and measured timings as text tables."""

from __future__ import annotations

from ..hardware import Hardware
from ..report import Report
from ..roofline import Roofline
from ..timing import Timing
from . import units as u
from .text import grid, summary_lines


def seconds(value: float) -> str:
    """``0.00123`` -> ``"1.230 ms"``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3f} {unit}"
    return f"{value / 1e-9:.1f} ns"


def render_hardware(specs: list[Hardware]) -> str:
    """One line per hardware spec: name, description, float32 peak, bandwidth, ridge."""
    return "\n".join(
        f"{hw.name:16} {hw.description}: {hw.peak('float32') / 1e12:.1f} TFLOP/s float32, "
        f"{hw.bandwidth / 1e9:,.0f} GB/s, ridge {hw.ridge_point():.1f} FLOPs/byte"
        for hw in specs
    )


def render_roofline(
    report: Report,
    roofline: Roofline,
    *,
    depth: int | None = None,
    top: int | None = None,
    units: str = "auto",
    precision: int = 2,
) -> str:
    """Per module: FLOPs, bytes, intensity (FLOPs/byte), bound, estimated time, share."""
    hw = roofline.hardware
    rows = [r for r in roofline.rows.values() if depth is None or r.depth <= depth]
    if top is not None:  # the slowest layers (leaf modules, or a parent's own ops)
        leaves = [r for r in rows if not report.modules[r.name].children or r.depth == depth]
        rows = sorted(leaves, key=lambda r: -r.time)[:top]
    total = roofline.latency or 1.0
    header = ["module", "type", "FLOPs", "bytes", "FLOPs/byte", "bound", "est. time", "% time"]
    body = [
        [
            ("  " * r.depth if top is None else "") + (r.name or "(root)"),
            r.type,
            u.scaled(r.flops, units, precision).strip(),
            u.nbytes(r.bytes, precision),
            f"{r.intensity:.1f}" if r.bytes else "-",
            r.bound,
            seconds(r.time),
            f"{100 * r.time / total:.1f}%",
        ]
        for r in rows
    ]
    head = [
        *summary_lines(report, "exact", units, precision),
        f"roofline on {hw.description or hw.name}: peak {u.count(hw.peak('float32'), 'FLOP/s', precision=1)}"
        f" (float32), bandwidth {hw.bandwidth / 1e9:,.0f} GB/s, ridge {hw.ridge_point():.1f} FLOPs/byte",
        f"estimated latency {seconds(roofline.latency)} ({roofline.total.bound}-bound overall);"
        f" peak activation memory {u.nbytes(report.peak_activation_bytes)}, parameters {u.nbytes(report.param_bytes)}",
        f"source: {hw.source}",
        "",
    ]
    return "\n".join(head + grid(header, body))


def render_timings(report: Report, timings: list[Timing], *, precision: int = 2) -> str:
    """Per batch size: median, p10, p90, std, throughput, achieved FLOP/s, % of peak."""
    header = ["batch", "median", "p10", "p90", "std", "samples/s", "achieved", "% of peak"]
    body = []
    for t in timings:
        peak = t.fraction_of_peak
        body.append(
            [
                str(t.batch_size),
                seconds(t.median),
                seconds(t.p10),
                seconds(t.p90),
                seconds(t.std),
                f"{t.throughput:,.1f}",
                u.count(t.achieved_flops_per_second, "FLOP/s", precision=precision),
                f"{100 * peak:.1f}%" if peak is not None else "-",
            ]
        )
    first = timings[0]
    lines = [
        f"{report.model_name}: measured on {first.device}, {first.warmup} warm-up + {len(first.times)} timed runs"
        + (f"; peak from {first.hardware.name}" if first.hardware else ""),
        "",
        *grid(header, body),
    ]
    for t in timings:
        if t.per_module:
            how = (
                "sums of node kernel times from onnxruntime's profiler on the unoptimized graph, which"
                if "onnxruntime" in t.device
                else "hooks"
            )
            lines += [
                "",
                f"per-module median latency, batch {t.batch_size} (inclusive; {how} add"
                f" {seconds(t.hook_overhead)} per call to the whole model):",
            ]
            slowest = sorted(t.per_module.items(), key=lambda kv: -kv[1])[:15]
            lines += grid(
                ["module", "median"], [[name or "(root)", seconds(value)] for name, value in slowest]
            )
    return "\n".join(lines)
