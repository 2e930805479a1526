"""Where the cost sits, as a picture (matplotlib, imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..report import Report, convention_value
from . import units as u
from .text import FLOPS_LABEL


def leaf_rows(report: Report, convention: str, top: int, key: str = "flops") -> list[tuple[str, float]]:
    """(module name, value) of the ``top`` costliest leaf modules, the rest folded into
    one "other (N modules)" row. ``key`` is "flops" (in ``convention``) or "params".
    Work done directly in a parent's forward shows as "NAME (own)"."""
    rows: list[tuple[str, float]] = []
    for m in report.modules.values():
        if key == "params":
            value = m.own_params
        else:
            value = convention_value(m.own if m.children else m.total, convention)
        if value:
            label = (m.name or "(root)") + (" (own)" if m.children else "")
            rows.append((label, value))
    rows.sort(key=lambda row: -row[1])
    if len(rows) > top:
        rest = rows[top:]
        rows = rows[:top] + [(f"other ({len(rest)} modules)", sum(v for _, v in rest))]
    return rows


def operator_rows(report: Report, convention: str, top: int = 8) -> list[tuple[str, float]]:
    """Share of FLOPs by aten operator, the rest folded."""
    rows: list[tuple[str, float]] = [
        (op.removeprefix("aten."), convention_value(s.cost, convention)) for op, s in report.operators.items()
    ]
    rows = sorted([r for r in rows if r[1]], key=lambda r: -r[1])
    if len(rows) > top:
        rows = rows[:top] + [("other", sum(v for _, v in rows[top:]))]
    return rows


def plot(
    report: Report,
    path: str | Path | None = None,
    *,
    convention: str = "exact",
    top: int = 15,
    hardware: Any = None,
    compression: Any = None,
) -> Any:
    """FLOPs per layer, params per layer (top N, the rest folded) and the share by
    operator; plus a roofline panel (intensity vs attainable FLOP/s, one point per
    layer) when ``hardware`` is given, and a panel of dense vs effective MACs per
    layer when ``compression`` (a CompressionView) is given. Saves to ``path``
    (PNG, SVG or PDF by extension) when given; returns the matplotlib Figure."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - exercised without the extra
        raise ImportError("plots need matplotlib: pip install 'flopmeter[plot]'") from error

    label = FLOPS_LABEL[convention]
    panels = 3 + (hardware is not None) + (compression is not None)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, max(4.0, 0.35 * top + 1.5)))
    for axis, key, title in ((axes[0], "flops", label), (axes[1], "params", "params")):
        rows = leaf_rows(report, convention, top, key)[::-1]
        axis.barh(
            [r[0] for r in rows], [r[1] for r in rows], color="#4477aa" if key == "flops" else "#66aa55"
        )
        axis.set_title(f"{title} per layer (top {top})")
        axis.tick_params(axis="y", labelsize=7)
        axis.set_xlabel(title)
    ops = operator_rows(report, convention)[::-1]
    total = sum(v for _, v in ops) or 1
    axes[2].barh([r[0] for r in ops], [100.0 * r[1] / total for r in ops], color="#cc6677")
    axes[2].set_title(f"share of {label} by operator")
    axes[2].set_xlabel("%")
    axes[2].tick_params(axis="y", labelsize=7)
    if hardware is not None:
        from .roofline_plot import draw_roofline

        draw_roofline(axes[3], report, hardware)
    if compression is not None:
        draw_compression(axes[-1], compression, top)
    fig.suptitle(
        f"{report.model_name}, batch {report.batch_size}: {u.count(report.params, 'params')}, "
        f"{u.count(report.macs, 'MACs')}, {u.count(report.flops_as(convention), label)}"
    )
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def compression_rows(view: Any, top: int) -> list[tuple[str, int, int]]:
    """(layer, dense MACs, effective MACs) of the ``top`` layers with the most dense MACs."""
    rows = [(name or "(root)", layer.macs_dense, layer.macs_effective) for name, layer in view.layers.items()]
    return sorted([r for r in rows if r[1]], key=lambda r: -r[1])[:top]


def draw_compression(axis: Any, view: Any, top: int) -> None:
    """Dense vs effective MACs per layer (the compression view), its totals in the title."""
    rows = compression_rows(view, top)[::-1]
    labels = [r[0] for r in rows]
    positions = list(range(len(rows)))
    axis.barh([p + 0.2 for p in positions], [r[1] for r in rows], height=0.4, color="#bbbbbb", label="dense")
    axis.barh(
        [p - 0.2 for p in positions], [r[2] for r in rows], height=0.4, color="#aa3377", label="effective"
    )
    axis.set_yticks(positions, labels)
    axis.tick_params(axis="y", labelsize=7)
    axis.set_xlabel("MACs")
    sparsity = "unknown" if view.sparsity is None else f"{100 * view.sparsity:.1f}%"
    axis.set_title(
        f"MACs per layer, dense vs effective (top {top})\n"
        f"sparsity {sparsity}, BOPs {100 * view.bops_relative:.1f}% of fp32 dense",
        fontsize=9,
    )
    axis.legend(fontsize=7)
