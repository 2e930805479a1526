"""Report -> JSON, CSV and Markdown. JSON holds everything the Report holds."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..report import CONVENTIONS, Report, convention_value
from . import units as u
from .text import FLOPS_LABEL

CSV_COLUMNS = [
    "module",
    "type",
    "depth",
    "calls",
    "params",
    "own_params",
    "macs",
    "flops_exact",
    "flops_2mac",
    "flops_mac",
    "ptflops_macs",
    "bytes_read",
    "bytes_written",
    "own_macs",
    "own_flops",
]


def to_json(report: Report, indent: int | None = 2, roofline: Any = None, timings: Any = None) -> str:
    """The Report as JSON (schema: docs/json-schema.md, ``schema_version`` inside),
    with ``roofline`` and ``timings`` sections when given."""
    data = report.to_dict()
    if roofline is not None:
        hw = roofline.hardware
        data["roofline"] = {
            "hardware": {
                "name": hw.name,
                "description": hw.description,
                "source": hw.source,
                "peak_flops_per_second": hw.peak_flops,
                "bandwidth_bytes_per_second": hw.bandwidth,
            },
            "latency_seconds": roofline.latency,
            "model": roofline.model,
            "bound_latency_seconds": roofline.bound_latency,
            "modules": [
                {
                    "name": r.name,
                    "flops": r.flops,
                    "bytes": r.bytes,
                    "intensity": r.intensity if r.bytes else None,
                    "bound": r.bound,
                    "time_seconds": r.time,
                    "bound_time_seconds": r.bound_time,
                    "regime": r.regime,
                }
                for r in roofline.rows.values()
            ],
        }
    if timings is not None:
        data["timings"] = [
            {
                "batch_size": t.batch_size,
                "device": t.device,
                "warmup": t.warmup,
                "times_seconds": t.times,
                "median": t.median,
                "p10": t.p10,
                "p90": t.p90,
                "std": t.std,
                "throughput": t.throughput,
                "achieved_flops_per_second": t.achieved_flops_per_second,
                "fraction_of_peak": t.fraction_of_peak,
                "per_module_median_seconds": t.per_module,
                "hook_overhead_seconds": t.hook_overhead,
                "predicted_seconds": t.predicted,
                "measured_over_predicted": t.ratio,
            }
            for t in timings
        ]
    return json.dumps(data, indent=indent)


def to_csv(report: Report, roofline: Any = None) -> str:
    """One row per module, inclusive counts, every convention as a column (and the
    roofline's intensity, bound and estimated seconds when given)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + (["intensity", "bound", "est_time_s"] if roofline is not None else []))
    for m in report.modules.values():
        writer.writerow(
            [
                m.name,
                m.type,
                m.depth,
                m.calls,
                m.params,
                m.own_params,
                m.total.macs,
                *(convention_value(m.total, c) for c in CONVENTIONS),
                m.total.bytes_read,
                m.total.bytes_written,
                m.own.macs,
                m.own.flops,
                *(_roofline_cells(roofline, m.name) if roofline is not None else []),
            ]
        )
    return out.getvalue()


def _roofline_cells(roofline: Any, name: str) -> list[Any]:
    row = roofline.rows[name]
    return [f"{row.intensity:.3f}" if row.bytes else "", row.bound, f"{row.time:.9f}"]


def _roofline_markdown(row: Any, seconds: Any) -> str:
    intensity = f"{row.intensity:.1f}" if row.bytes else "-"
    return f" {intensity} | {row.bound} | {seconds(row.time)} |"


def to_markdown(
    report: Report,
    *,
    depth: int | None = 1,
    convention: str = "exact",
    units: str = "auto",
    precision: int = 2,
    roofline: Any = None,
) -> str:
    """A Markdown table of the modules down to ``depth``, with a totals line: ready to
    paste into a paper or a pull request. With ``roofline``: intensity, bound, est. time."""
    from .speed import seconds

    label = FLOPS_LABEL[convention]
    total = report.flops_as(convention)
    extra_head = " FLOPs/byte | bound | est. time |" if roofline is not None else ""
    lines = [
        f"**{report.model_name}** — batch {report.batch_size}: {u.count(report.params, 'params', units, precision)},"
        f" {u.count(report.macs, 'MACs', units, precision)}, {u.count(total, label, units, precision)}",
        "",
        f"| module | type | params | MACs | {label} | % {label} |{extra_head}",
        "|---|---|--:|--:|--:|--:|" + ("--:|---|--:|" if roofline is not None else ""),
    ]
    for m in report.modules.values():
        if depth is not None and m.depth > depth:
            continue
        value = convention_value(m.total, convention)
        name = (m.name or "(total)").replace("|", "\\|")
        lines.append(
            f"| {name} | {m.type} | {u.scaled(m.params, units, precision).strip()} |"
            f" {u.scaled(m.total.macs, units, precision).strip()} | {u.scaled(value, units, precision).strip()} |"
            f" {u.percent(value, total, precision)} |"
            + (_roofline_markdown(roofline.rows[m.name], seconds) if roofline is not None else "")
        )
    for op in report.unsupported.values():
        lines.append(f"\n> unsupported: `{op.op}` ran {op.calls}x, not counted")
    return "\n".join(lines) + "\n"
