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


def render_calibration(hw: Hardware) -> str:
    """The calibrated model's figures of one spec: per op class the fixed cost per op
    and the fraction of the roofline bound reached; the module-call cost; the source."""
    if not hw.calibrated:
        return f"{hw.name}: no calibration (plain roofline bound)"
    classes = list(hw.efficiency) + [
        k for k in (hw.op_overhead if isinstance(hw.op_overhead, dict) else {}) if k not in hw.efficiency
    ]
    parts = [
        (f"{k}" if ":" in k else f"{k} {seconds(hw.overhead(k))}")
        + (f" x{hw.efficiency[k]:.2f}" if k in hw.efficiency else "")
        for k in classes
        if k != "default"
    ]
    return (
        f"{hw.name}: per op class, fixed cost and fraction of the roofline reached: {', '.join(parts)}; "
        f"other ops {seconds(hw.overhead('default'))}; module call {seconds(hw.module_overhead)}"
        + ("; host overheads overlap device work" if hw.overlap else "")
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
    """Per module: FLOPs, bytes, intensity (FLOPs/byte), the roofline's bound and time, the
    estimate (by ``roofline.model``), what it is limited by, and its share of the total."""
    hw = roofline.hardware
    rows = [r for r in roofline.rows.values() if depth is None or r.depth <= depth]
    if top is not None:  # the slowest layers (leaf modules, or a parent's own ops)
        leaves = [r for r in rows if not report.modules[r.name].children or r.depth == depth]
        rows = sorted(leaves, key=lambda r: -r.time)[:top]
    total = roofline.latency or 1.0
    header = [
        "module",
        "type",
        "FLOPs",
        "bytes",
        "FLOPs/byte",
        "bound",
        "roofline",
        "est. time",
        "limit",
        "% time",
    ]
    body = [
        [
            ("  " * r.depth if top is None else "") + (r.name or "(root)"),
            r.type,
            u.scaled(r.flops, units, precision).strip(),
            u.nbytes(r.bytes, precision),
            f"{r.intensity:.1f}" if r.bytes else "-",
            r.bound,
            seconds(r.bound_time),
            seconds(r.time),
            r.regime,
            f"{100 * r.time / total:.1f}%",
        ]
        for r in rows
    ]
    head = [
        *summary_lines(report, "exact", units, precision),
        f"roofline on {hw.description or hw.name}: peak {u.count(hw.peak(roofline.dtype), 'FLOP/s', precision=1)}"
        f" ({roofline.dtype}), bandwidth {hw.bandwidth / 1e9:,.0f} GB/s,"
        f" ridge {hw.ridge_point(roofline.dtype):.1f} FLOPs/byte",
        f"estimated latency {seconds(roofline.latency)} ({roofline.model} model, {roofline.total.regime}-limited);"
        f" roofline bound {seconds(roofline.bound_latency)} ({roofline.total.bound}-bound overall)",
        f"peak activation memory {u.nbytes(report.peak_activation_bytes)}, parameters {u.nbytes(report.param_bytes)}",
        f"source: {hw.source}",
        *(
            [f"calibration: {render_calibration(hw)}", f"calibration source: {hw.calibration_source}"]
            if hw.calibrated
            else []
        ),
        "",
    ]
    return "\n".join(head + grid(header, body))


def render_timings(report: Report, timings: list[Timing], *, precision: int = 2) -> str:
    """Per batch size: median, p10, p90, std, throughput, achieved FLOP/s, % of peak; with a
    hardware spec also the latency model's prediction, measured / predicted and what bounds
    the call (overhead, memory or compute). Per module (``per_module``): measured, predicted
    and their ratio for the slowest modules."""
    header = ["batch", "median", "p10", "p90", "std", "samples/s", "achieved", "% of peak"]
    predicted = any(t.estimate for t in timings)
    if predicted:
        header += ["predicted", "meas/pred", "limit"]
    body = []
    for t in timings:
        peak = t.fraction_of_peak
        row = [
            str(t.batch_size),
            seconds(t.median),
            seconds(t.p10),
            seconds(t.p90),
            seconds(t.std),
            f"{t.throughput:,.1f}",
            u.count(t.achieved_flops_per_second, "FLOP/s", precision=precision),
            f"{100 * peak:.1f}%" if peak is not None else "-",
        ]
        if predicted:
            row += _prediction_cells(t)
        body.append(row)
    first = timings[0]
    lines = [
        f"{report.model_name}: measured on {first.device}, {first.warmup} warm-up + {len(first.times)} timed runs"
        + (f"; peak from {first.hardware.name}" if first.hardware else ""),
    ]
    if first.estimate:
        lines.append(
            f"predicted by the {first.estimate.model} model on {first.estimate.hardware.name}"
            " (docs/speed.md); meas/pred above 1: slower than predicted"
        )
    if first.hardware and first.device == "cpu" and first.hardware.overlap:
        lines.append(
            f"note: timed on this machine's cpu, but {first.hardware.name} is a GPU spec: % of peak and"
            " meas/pred compare two different machines (use --roofline local to check the model here)"
        )
    lines += ["", *grid(header, body)]
    for t in timings:
        if t.per_module:
            lines += ["", *_module_lines(t)]
    return "\n".join(lines)


def render_sweep(report: Report, estimates: list[Roofline]) -> str:
    """Per batch size: estimated latency, per sample, samples/s, the roofline bound, and
    the overhead / memory / compute split of the estimate with what bounds it."""
    header = [
        "batch",
        "estimate",
        "per sample",
        "samples/s",
        "bound (roofline)",
        "overhead",
        "memory",
        "compute",
        "limit",
    ]
    body = []
    for e in estimates:
        total = e.total
        shares = [total.overhead_time, total.calibrated_memory, total.calibrated_compute]
        whole = sum(shares) or 1.0
        body.append(
            [
                str(e.batch_size),
                seconds(e.latency),
                seconds(e.latency / e.batch_size),
                f"{e.batch_size / e.latency:,.1f}" if e.latency else "-",
                seconds(e.bound_latency),
                *[f"{100 * part / whole:.0f}%" for part in shares],
                total.regime,
            ]
        )
    first = estimates[0]
    head = f"{report.model_name}: batch sweep, {first.model} estimate on {first.hardware.name} (no timing)"
    return "\n".join([head, "", *grid(header, body)])


def _prediction_cells(t: Timing) -> list[str]:
    if not t.estimate:
        return ["-", "-", "-"]
    return [seconds(t.estimate.latency), f"{t.ratio:.2f}" if t.ratio else "-", t.estimate.total.regime]


def _module_lines(t: Timing) -> list[str]:
    slowest = sorted(t.per_module.items(), key=lambda kv: -kv[1])[:15]
    how = (
        "sums of node kernel times from onnxruntime's profiler on the unoptimized graph, which"
        if "onnxruntime" in t.device
        else "hooks"
    )
    head = (
        f"per-module median latency, batch {t.batch_size} (inclusive; {how} add"
        f" {seconds(t.hook_overhead)} per call to the whole model):"
    )
    if not t.estimate:
        return [
            head,
            *grid(["module", "median"], [[name or "(root)", seconds(value)] for name, value in slowest]),
        ]
    ratios = t.module_ratios()
    body = [
        [
            name or "(root)",
            seconds(value),
            seconds(ratios[name][1]) if name in ratios else "-",
            f"{ratios[name][2]:.2f}" if name in ratios else "-",
            t.estimate.rows[name].regime if name in t.estimate.rows else "-",
        ]
        for name, value in slowest
    ]
    return [head, *grid(["module", "median", "predicted", "meas/pred", "limit"], body)]


def quiet_lines(
    roofline: Roofline | None, timings: list[Timing] | None, sweep: list[Roofline] | None
) -> list[str]:
    """What ``-q`` keeps of ``--roofline``, ``--bench`` and ``--batch-sizes``: the whole
    model's estimate and each batch size's measured median (or estimate), one line each."""
    lines = []
    if roofline is not None:
        lines.append(
            f"estimated latency on {roofline.hardware.name} {seconds(roofline.latency)} ({roofline.model} model);"
            f" roofline bound {seconds(roofline.bound_latency)}"
        )
    for t in timings or []:
        lines.append(
            f"measured at batch {t.batch_size} on {t.device}: median {seconds(t.median)},"
            f" {t.throughput:,.1f} samples/s, {u.count(t.achieved_flops_per_second, 'FLOP/s')}"
        )
    for e in sweep or []:
        lines.append(
            f"estimated at batch {e.batch_size}: {seconds(e.latency)}"
            f" ({e.batch_size / e.latency if e.latency else 0:,.1f} samples/s, {e.total.regime}-limited)"
        )
    return lines
