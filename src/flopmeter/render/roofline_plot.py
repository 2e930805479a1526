"""Speed charts: the roofline (intensity vs FLOP/s per layer) and the batch sweep
(time per sample vs batch size, split into overhead, memory and compute)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..hardware import Hardware
from ..report import Report
from ..roofline import Roofline, roofline
from .speed import is_leaf
from .text import working_modules

BOUND_COLORS = {"memory": "#cc6677", "compute": "#4477aa", "overhead": "#999933"}


def draw_roofline(axis: Any, report: Report, hardware: Hardware) -> None:
    """Draw the roof (bandwidth slope, then the peak of the dtype doing most FLOPs) and each leaf module at
    (FLOPs/byte, FLOPs / estimated time), coloured by what bounds it: points on the slope
    are memory-bound; the calibrated model's overheads and efficiencies put points below
    the roof."""
    result = roofline(report, hardware)
    working = working_modules(report)
    leaves = [
        r for name, r in result.rows.items() if is_leaf(report, name, working) and r.time > 0 and r.bytes
    ]
    if not leaves:
        return
    low = min(r.intensity for r in leaves) / 2
    ridge = hardware.ridge_point(result.dtype)
    high = max(max(r.intensity for r in leaves) * 2, ridge * 4)
    peak = hardware.peak(result.dtype)
    xs = [low, ridge, high]
    axis.loglog(xs, [min(peak, x * hardware.bandwidth) for x in xs], color="black", lw=1.5, label="roof")
    if result.total.int_ops:  # int8 layers run under the int8 peak
        int_peak = hardware.peak("int8")
        xs = [low, hardware.ridge_point("int8"), max(high, hardware.ridge_point("int8") * 4)]
        axis.loglog(xs, [min(int_peak, x * hardware.bandwidth) for x in xs], "k--", lw=1, label="int8 roof")
    for bound, color in BOUND_COLORS.items():
        points = [r for r in leaves if r.regime == bound]
        if points:
            axis.scatter(
                [r.intensity for r in points],
                [(r.flops + r.int_ops) / r.time for r in points],
                s=12,
                color=color,
                label=f"{bound}-bound layers ({len(points)})",
            )
    integer = bool(result.total.int_ops)  # int8 layers: their integer ops count as the work
    axis.set_xlabel(f"arithmetic intensity ({'(FLOPs + int ops)' if integer else 'FLOPs'} / byte)")
    axis.set_ylabel(f"{'FLOP/s + int op/s' if integer else 'FLOP/s'} ({result.model} estimate)")
    axis.set_title(f"roofline: {hardware.name}")
    axis.legend(fontsize=7)


def draw_batch_sweep(axis: Any, estimates: list[Roofline], measured: list[float] | None = None) -> None:
    """Seconds per sample against batch size (log-log): the estimate's overhead, memory
    and compute parts, their total, the plain roofline bound and, when given, the measured
    medians. Where the largest part changes, the model turns from overhead- to memory- to
    compute-bound; each batch is labelled with its bound."""
    batches = [e.batch_size for e in estimates]
    parts = {
        "overhead": [e.total.overhead_time / e.batch_size for e in estimates],
        "memory": [e.total.calibrated_memory / e.batch_size for e in estimates],
        "compute": [e.total.calibrated_compute / e.batch_size for e in estimates],
    }
    for name, values in parts.items():
        if any(values):
            axis.loglog(batches, values, "--", color=BOUND_COLORS[name], lw=1.2, label=f"{name} part")
    axis.loglog(
        batches, [e.latency / e.batch_size for e in estimates], "-o", color="black", ms=4, label="estimate"
    )
    axis.loglog(
        batches,
        [e.bound_latency / e.batch_size for e in estimates],
        ":",
        color="gray",
        label="roofline bound",
    )
    if measured:
        axis.loglog(
            batches,
            [t / b for t, b in zip(measured, batches, strict=True)],
            "s",
            color="#ee7733",
            label="measured",
        )
    for estimate in estimates:
        axis.annotate(
            estimate.total.regime,
            (estimate.batch_size, estimate.latency / estimate.batch_size),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=7,
        )
    axis.set_xlabel("batch size")
    axis.set_ylabel("seconds per sample")
    axis.set_title(f"batch sweep on {estimates[0].hardware.name} ({estimates[0].model})")
    axis.legend(fontsize=7)


def plot_batch_sweep(
    estimates: list[Roofline],
    path: str | Path | None = None,
    *,
    measured: list[float] | None = None,
    title: str = "",
) -> Any:
    """One batch-sweep chart (``draw_batch_sweep``), saved to ``path`` when given;
    returns the matplotlib Figure."""
    if not estimates:
        raise ValueError("a batch sweep needs at least one batch size")
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - exercised without the extra
        raise ImportError("plots need matplotlib: pip install 'flopmeter[plot]'") from error
    fig, axis = plt.subplots(figsize=(7, 4.5))
    draw_batch_sweep(axis, estimates, measured)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def sweep_path(path: str | Path) -> Path:
    """Where the batch-sweep chart goes beside the ``--plot`` file: ``x.png`` -> ``x-batches.png``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-batches{path.suffix}")
