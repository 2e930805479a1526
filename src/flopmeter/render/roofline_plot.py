"""The roofline chart: arithmetic intensity vs attainable FLOP/s, one point per layer."""

from __future__ import annotations

from typing import Any

from ..hardware import Hardware
from ..report import Report
from ..roofline import roofline


def draw_roofline(axis: Any, report: Report, hardware: Hardware) -> None:
    """Draw the roof (bandwidth slope, then the float32 peak) and each leaf module at
    (FLOPs/byte, FLOPs / estimated time): points on the slope are memory-bound."""
    result = roofline(report, hardware)
    leaves = [
        r for name, r in result.rows.items() if not report.modules[name].children and r.time > 0 and r.bytes
    ]
    if not leaves:
        return
    low = min(r.intensity for r in leaves) / 2
    high = max(max(r.intensity for r in leaves) * 2, hardware.ridge_point() * 4)
    peak = hardware.peak("float32")
    xs = [low, hardware.ridge_point(), high]
    axis.loglog(xs, [min(peak, x * hardware.bandwidth) for x in xs], color="black", lw=1.5, label="roof")
    for bound, color in (("memory", "#cc6677"), ("compute", "#4477aa")):
        points = [r for r in leaves if r.bound == bound]
        axis.scatter(
            [r.intensity for r in points],
            [r.flops / r.time for r in points],
            s=12,
            color=color,
            label=f"{bound}-bound layers ({len(points)})",
        )
    axis.set_xlabel("arithmetic intensity (FLOPs / byte)")
    axis.set_ylabel("attainable FLOP/s")
    axis.set_title(f"roofline: {hardware.name}")
    axis.legend(fontsize=7)
