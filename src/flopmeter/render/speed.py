"""Roofline estimates and measured timings as text tables."""

from __future__ import annotations

import statistics

from ..hardware import Hardware
from ..report import Report
from ..roofline import Roofline, RooflineRow
from ..timing import Timing
from . import units as u
from .text import grid, summary_lines, working_modules


def seconds(value: float) -> str:
    """``0.00123`` -> ``"1.230 ms"``; 0.9999996 -> ``"1.000 s"`` (not "1000.000 ms")."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale or round(value / scale, 3) >= 1:
            return f"{value / scale:.3f} {unit}"
    return f"{value / 1e-9:.1f} ns"


def render_hardware(specs: list[Hardware]) -> str:
    """Two lines per hardware spec: name, description, float32 peak, bandwidth, ridge; then
    every dtype's dense peak it lists."""
    return "\n".join(
        f"{hw.name:16} {hw.description}: {hw.peak('float32') / 1e12:.1f} TFLOP/s float32, "
        f"{hw.bandwidth / 1e9:,.0f} GB/s, ridge {hw.ridge_point():.1f} FLOPs/byte\n{'':16} {dtype_peaks(hw)}"
        for hw in specs
    )


_PEAK_ORDER = ("float64", "float32", "tfloat32", "float16", "bfloat16", "float8", "int8", "int4")


def dtype_peaks(hw: Hardware) -> str:
    """Every dtype's peak of ``hw`` in TFLOP/s (int8 and int4: TOP/s), dense (no 2:4 sparsity)."""
    peaks = hw.peak_flops if isinstance(hw.peak_flops, dict) else {"any dtype": hw.peak_flops}
    order = sorted(peaks, key=lambda d: _PEAK_ORDER.index(d) if d in _PEAK_ORDER else len(_PEAK_ORDER))
    listed = ", ".join(f"{d} {f'{peaks[d] / 1e12:,.3f}'.rstrip('0').rstrip('.')}" for d in order)
    return f"dense peaks, TFLOP/s (int: TOP/s): {listed}"


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
        working = working_modules(report)
        leaves = [r for r in rows if is_leaf(report, r.name, working) or r.depth == depth]
        rows = sorted(leaves, key=lambda r: -r.time)[:top]
    header, body = roofline_table(roofline, rows, units, precision, indent=top is None)
    head = [
        *summary_lines(report, "exact", units, precision),
        *roofline_head(roofline),
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


def roofline_head(roofline: Roofline) -> list[str]:
    """The table's header lines that need no report: the hardware's peak (for the dtype
    doing most FLOPs), bandwidth and ridge, the integer work's note, and the estimate."""
    hw = roofline.hardware
    return [
        f"roofline on {hw.description or hw.name}: peak {u.count(hw.peak(roofline.dtype), 'FLOP/s', precision=1)}"
        f" ({_dtype_label(roofline.dtype)}), bandwidth {hw.bandwidth / 1e9:,.0f} GB/s,"
        f" ridge {hw.ridge_point(roofline.dtype):.1f} FLOPs/byte",
        *([integer_note(roofline)] if roofline.total.int_ops else []),
        estimate_line(roofline),
    ]


def roofline_table(
    roofline: Roofline, rows: list[RooflineRow], units: str = "auto", precision: int = 2, indent: bool = True
) -> Table:
    """The roofline table of ``rows``: FLOPs (and int ops for a quantized model), bytes,
    intensity, bound, the bound's time, the estimate, what limits it and its share of the
    whole call's estimate; names indented by depth when ``indent``."""
    total = roofline.latency or 1.0
    integer = bool(roofline.total.int_ops)  # a quantized model: its int8 ops have their own column
    header = [
        "module",
        "type",
        "FLOPs",
        *(["int ops"] if integer else []),
        "bytes",
        intensity_label(roofline),
        "bound",
        "roofline",
        "est. time",
        "limit",
        "% time",
    ]
    body = [
        [
            ("  " * r.depth if indent else "") + (r.name or "(root)"),
            r.type,
            u.scaled(r.flops, units, precision).strip(),
            *([u.scaled(r.int_ops, units, precision).strip()] if integer else []),
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
    return header, body


def _dtype_label(dtype: str) -> str:
    """The header's name for the dtype whose peak heads the table."""
    if dtype == "tfloat32":
        return "tfloat32: float32 work torch runs on TF32 tensor cores, as this process is set; docs/speed.md"
    return dtype


def estimate_line(roofline: Roofline) -> str:
    """The whole call's estimate and bound, in one line."""
    return (
        f"estimated latency {seconds(roofline.latency)} ({roofline.model} model, {roofline.total.regime}-limited);"
        f" roofline bound {seconds(roofline.bound_latency)} ({roofline.total.bound}-bound overall)"
    )


def render_speed_totals(
    report: Report,
    roofline: Roofline | None,
    timings: list[Timing] | None,
    sweep: list[Roofline] | None,
    precision: int = 2,
) -> str:
    """What ``-q`` (totals only) keeps of the speed output: the whole call's estimate on the
    hardware, the timing table and the batch sweep; "" when none was asked for."""
    parts = []
    if roofline is not None:
        parts.append(f"on {roofline.hardware.name}: {estimate_line(roofline)}")
    if timings:
        parts.append(render_timings(report, timings, precision=precision))
    if sweep:
        parts.append(render_sweep(report, sweep))
    return "\n\n".join(parts)


def is_leaf(report: Report, name: str, working: set[str] | None = None) -> bool:
    """Whether module ``name`` does its own work: none of its children did any (a quantized
    Linear's packed-params child never is called; an ``nn.ModuleList`` is not either, but
    its layers are: ``text.working_modules``, which ``working`` may hold already)."""
    working = working_modules(report) if working is None else working
    return not any(child in working for child in report.modules[name].children)


def intensity_label(roofline: Roofline) -> str:
    """The intensity column's unit: "FLOPs/byte", or "ops/byte" when the model does integer
    work (quantized int8 layers: 0 FLOPs by convention), whose integer ops count too."""
    return "ops/byte" if roofline.total.int_ops else "FLOPs/byte"


def integer_note(roofline: Roofline) -> str:
    """The header's words on integer work: its peak and ridge, and what ops/byte means."""
    hw = roofline.hardware
    return (
        "integer work: int ops = 2 x MACs of the int8 layers (0 FLOPs by convention), at the int8 peak"
        f" {u.count(hw.peak('int8'), 'OP/s', precision=1)}, ridge {hw.ridge_point('int8'):.1f} ops/byte;"
        " ops/byte = (FLOPs + int ops) / bytes"
    )


Table = tuple[list[str], list[list[str]]]  # a header and its rows, for grid() or markdown


def render_timings(
    report: Report, timings: list[Timing], *, precision: int = 2, top: int | None = None
) -> str:
    """Per batch size: median, p10, p90, std, throughput, achieved FLOP/s, % of peak; with a
    hardware spec also the latency model's prediction, measured / predicted and what bounds
    the call (overhead, memory or compute). Per module (``per_module``): measured, predicted
    and their ratio for the ``top`` slowest modules (15 when None)."""
    lines = [*timing_notes(report, timings), "", *grid(*timing_table(timings, precision))]
    for t in timings:
        if t.per_module:
            lines += ["", module_timing_head(t), *grid(*module_timing_table(t, top or 15))]
    return "\n".join(lines)


def timing_table(timings: list[Timing], precision: int = 2) -> Table:
    """``render_timings``' table: one row per batch size."""
    integer = any(t.int_ops for t in timings)  # a quantized model: its integer ops per second too
    header = [
        "batch",
        "median",
        "p10",
        "p90",
        "std",
        "samples/s",
        "achieved",
        *(["achieved int"] if integer else []),
        "% of peak",
    ]
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
            *([u.count(t.achieved_int_ops_per_second, "OP/s", precision=precision)] if integer else []),
            f"{100 * peak:.1f}%" if peak is not None else "-",
        ]
        if predicted:
            row += _prediction_cells(t)
        body.append(row)
    return header, body


def timing_notes(report: Report, timings: list[Timing]) -> list[str]:
    """The lines above the timing table: where and how it was measured, what predicted it."""
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
    if any(t.int_ops for t in timings):
        lines.append(
            "integer work: achieved int = int ops (2 x MACs of the int8 layers) / median; % of peak ="
            " (FLOPs / their peak + int ops / the int8 peak) / median"
        )
    busy = [t for t in timings if t.cpu_share is not None and t.cpu_share < BUSY_SHARE]
    if busy:
        lines.append(busy_note(busy))
    if first.hardware and first.device == "cpu" and first.hardware.overlap:
        lines.append(
            f"note: timed on this machine's cpu, but {first.hardware.name} is a GPU spec: % of peak and"
            " meas/pred compare two different machines (use --roofline local to check the model here)"
        )
    return lines


BUSY_SHARE = 0.8  # below this CPU time / wall time, the timing notes call the machine busy


def busy_note(timings: list[Timing]) -> str:
    """The note for timings whose thread ran less than ``BUSY_SHARE`` of their wall time
    (other processes had the core): how much, and the figures by CPU time."""
    parts = []
    for t in timings:
        cpu = statistics.median(t.cpu_times)
        ratio = f", meas/pred by CPU time {t.cpu_ratio:.2f}" if t.cpu_ratio is not None else ""
        parts.append(
            f"batch {t.batch_size}: {100 * (t.cpu_share or 0):.0f}% (CPU time {seconds(cpu)} per run against"
            f" {seconds(t.median)} of wall time{ratio})"
        )
    return (
        "note: busy machine: the timing thread ran only part of the wall time, other processes the rest; "
        "the wall-clock median and meas/pred are too high by that (achieved FLOP/s too low): "
        + "; ".join(parts)
    )


def render_sweep(report: Report, estimates: list[Roofline]) -> str:
    """Per batch size: estimated latency, per sample, samples/s, the roofline bound, and
    the overhead / memory / compute split of the estimate with what bounds it."""
    return "\n".join([sweep_note(report, estimates), "", *grid(*sweep_table(estimates))])


def sweep_note(report: Report, estimates: list[Roofline]) -> str:
    first = estimates[0]
    note = f"{report.model_name}: batch sweep, {first.model} estimate on {first.hardware.name} (no timing)"
    if first.hardware.overlap and first.model == "calibrated":
        note += (
            "; overhead / memory / compute are shares of the three parts' sum: on this spec the host's"
            " overhead and the device's work overlap, and the estimate is the larger of the two"
        )
    return note


def sweep_table(estimates: list[Roofline]) -> Table:
    """``render_sweep``'s table: one row per batch size."""
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
                f"{e.throughput:,.1f}" if e.throughput else "-",
                seconds(e.bound_latency),
                *[f"{100 * part / whole:.0f}%" for part in shares],
                total.regime,
            ]
        )
    return header, body


def hook_cost(t: Timing, subject: str = "the hooks") -> str:
    """What timing each module cost the whole call (``subject``: what did the timing): the
    measured difference of the medians, or, when it is within the plain runs' spread
    (p90 - p10) or negative, that it is not measurable, with both figures."""
    if t.hook_overhead_measurable:
        return f"{subject} cost {seconds(t.hook_overhead)} per call of the whole model"
    sign = "-" if t.hook_overhead < 0 else "+"
    return (
        f"the cost of {subject} is not measurable, within noise: medians with and without differ by"
        f" {sign}{seconds(abs(t.hook_overhead))}, the plain runs spread {seconds(t.p90 - t.p10)} from p10 to p90"
    )


def _prediction_cells(t: Timing) -> list[str]:
    if not t.estimate:
        return ["-", "-", "-"]
    return [seconds(t.estimate.latency), f"{t.ratio:.2f}" if t.ratio else "-", t.estimate.total.regime]


def module_timing_head(t: Timing) -> str:
    """The line above one batch size's per-module table: what the figures are, what timing
    them cost."""
    how = (
        "sums of node kernel times from onnxruntime's profiler on the unoptimized graph; "
        + hook_cost(t, "the profiler")
        if "onnxruntime" in t.device
        else hook_cost(t)
    )
    return (
        f"per-module time in one call of the model, batch {t.batch_size} (median over the runs;"
        f" inclusive; a module called twice counts both calls; {how}):"
    )


def module_timing_table(t: Timing, limit: int | None = 15) -> Table:
    """The slowest ``limit`` modules (all with None) of one batch size: measured median
    and, with a hardware spec, predicted, measured / predicted and what limits it."""
    slowest = sorted(t.per_module.items(), key=lambda kv: -kv[1])[:limit]
    if not t.estimate:
        return ["module", "median"], [[name or "(root)", seconds(value)] for name, value in slowest]
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
    return ["module", "median", "predicted", "meas/pred", "limit"], body
