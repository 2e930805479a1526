"""Report -> JSON, CSV and Markdown. JSON holds everything the Report holds."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..report import CONVENTIONS, Report, convention_value
from . import units as u
from .text import FLOPS_LABEL, select_modules

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


ROOT_NAME = "(root)"  # the model's own row: pandas reads an empty cell as NaN


def to_json(
    report: Report,
    indent: int | None = 2,
    roofline: Any = None,
    timings: Any = None,
    totals_only: bool = False,
    sweep: Any = None,
) -> str:
    """The Report as JSON (schema: docs/json-schema.md, ``schema_version`` inside),
    with ``roofline`` and ``timings`` sections when given; ``totals_only`` (``-q``)
    leaves out the per-module and per-operator lists (the compression view's and the
    roofline's per-module lists too)."""
    data = report.to_dict()
    if totals_only:
        data = {k: v for k, v in data.items() if k not in ("modules", "operators")}
        if data.get("compression"):
            data["compression"] = {k: v for k, v in data["compression"].items() if k != "layers"}
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
            "compute_dtype": roofline.dtype,
            "compute_peak_flops_per_second": roofline.peak_flops,
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
        if totals_only:
            del data["roofline"]["modules"]
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
    if sweep:
        data["batch_sweep"] = [
            {
                "batch_size": e.batch_size,
                "latency_seconds": e.latency,
                "bound_latency_seconds": e.bound_latency,
                "samples_per_second": e.batch_size / e.latency if e.latency else None,
                "overhead_seconds": e.total.overhead_time,
                "memory_seconds": e.total.calibrated_memory,
                "compute_seconds": e.total.calibrated_compute,
                "regime": e.total.regime,
            }
            for e in sweep
        ]
    return json.dumps(data, indent=indent)


def to_csv(
    report: Report,
    roofline: Any = None,
    *,
    depth: int | None = None,
    top: int | None = None,
    sort: str | None = None,
    convention: str = "exact",
    compression: Any = None,
) -> str:
    """One row per module, inclusive counts, every convention as a column (and the
    roofline's intensity, bound and estimated seconds when given; the compression
    view's ``MODULE_CSV_COLUMNS`` when ``compression``, a CompressionView, is given).
    The model's row is named "(root)". Rows as ``text.select_modules`` picks them.
    Each op without a formula follows as a row of type "unsupported op" with its call
    count and empty counts (never a silent zero)."""
    from .compression import MODULE_CSV_COLUMNS, module_csv_cells

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = CSV_COLUMNS + (["intensity", "bound", "est_time_s"] if roofline is not None else [])
    viewed = compression.by_module() if compression is not None else None
    if viewed is not None:
        columns += MODULE_CSV_COLUMNS
    writer.writerow(columns)
    for m in select_modules(report, depth=depth, top=top, sort=sort, convention=convention):
        writer.writerow(
            [
                m.name or ROOT_NAME,
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
                *(module_csv_cells(viewed[m.name]) if viewed is not None else []),
            ]
        )
    for op in report.unsupported.values():
        writer.writerow([op.op, "unsupported op", "", op.calls] + [""] * (len(columns) - 4))
    return out.getvalue()


OPERATOR_CSV_COLUMNS = [
    "operator",
    "kind",
    "calls",
    "macs",
    "flops_exact",
    "flops_2mac",
    "flops_mac",
    "ptflops_macs",
    "bytes_read",
    "bytes_written",
]


def operators_to_csv(report: Report, top: int | None = None) -> str:
    """One row per aten operator (``--by op``), costliest first; unsupported ops last
    with kind "unsupported" and empty counts."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OPERATOR_CSV_COLUMNS)
    ops = sorted(report.by_operator().values(), key=lambda o: -o.cost.flops)[:top]
    for o in ops:
        writer.writerow(
            [
                o.op,
                o.kind,
                o.calls,
                o.cost.macs,
                *(convention_value(o.cost, c) for c in CONVENTIONS),
                o.cost.bytes_read,
                o.cost.bytes_written,
            ]
        )
    for op in report.unsupported.values():
        writer.writerow([op.op, "unsupported", op.calls] + [""] * (len(OPERATOR_CSV_COLUMNS) - 3))
    return out.getvalue()


def operators_to_markdown(
    report: Report,
    *,
    convention: str = "exact",
    units: str = "auto",
    precision: int = 2,
    top: int | None = None,
) -> str:
    """A Markdown table of the aten operators (``--by op``), costliest first."""
    label = FLOPS_LABEL[convention]
    total = report.flops_as(convention)
    lines = [
        _markdown_title(report, convention, units, precision),
        "",
        f"| operator | calls | MACs | {label} | % {label} |",
        "|---|--:|--:|--:|--:|",
    ]
    ops = sorted(report.by_operator().values(), key=lambda o: -convention_value(o.cost, convention))[:top]
    for o in ops:
        value = convention_value(o.cost, convention)
        lines.append(
            f"| `{o.op}` | {o.calls} | {u.scaled(o.cost.macs, units, precision).strip()} |"
            f" {u.scaled(value, units, precision).strip()} | {u.percent(value, total, precision)} |"
        )
    lines += _markdown_unsupported(report)
    return "\n".join(lines) + "\n"


def markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    """The lines of a Markdown table: a header row, its rule, one row per entry."""
    return [
        "| " + " | ".join(_markdown_cell(c) for c in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in body),
    ]


def _markdown_cell(text: str) -> str:
    """A table cell that cannot break its row: pipes escaped, line breaks shown as ``\\n``."""
    return text.replace("|", "\\|").replace("\r", "\\r").replace("\n", "\\n")


def _markdown_title(report: Report, convention: str, units: str, precision: int) -> str:
    label = FLOPS_LABEL[convention]
    return (
        f"**{report.model_name}** — batch {report.batch_size}: {u.count(report.params, 'params', units, precision)},"
        f" {u.count(report.macs, 'MACs', units, precision)},"
        f" {u.count(report.flops_as(convention), label, units, precision)}"
    )


def _markdown_unsupported(report: Report) -> list[str]:
    return [f"\n> unsupported: `{op.op}` ran {op.calls}x, not counted" for op in report.unsupported.values()]


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
    top: int | None = None,
    sort: str | None = None,
    compression: Any = None,
) -> str:
    """A Markdown table of the modules down to ``depth``, with a totals line: ready to
    paste into a paper or a pull request. With ``roofline``: intensity, bound, est. time;
    with ``compression`` (a CompressionView): its columns (``MODULE_HEADER``).
    Rows as ``text.select_modules`` picks them (``top``: the costliest leaves)."""
    from .compression import MODULE_HEADER, module_cells, view_summary_lines
    from .speed import seconds

    label = FLOPS_LABEL[convention]
    total = report.flops_as(convention)
    extra_head = " FLOPs/byte | bound | est. time |" if roofline is not None else ""
    viewed = compression.by_module() if compression is not None else None
    if viewed is not None:
        extra_head += "".join(f" {h} |" for h in MODULE_HEADER)
    lines = [
        _markdown_title(report, convention, units, precision),
        "",
        f"| module | type | params | MACs | {label} | % {label} |{extra_head}",
        "|---|---|--:|--:|--:|--:|"
        + ("--:|---|--:|" if roofline is not None else "")
        + ("--:|--:|---|--:|--:|--:|--:|--:|" if viewed is not None else ""),
    ]
    for m in select_modules(report, depth=depth, top=top, sort=sort, convention=convention):
        value = convention_value(m.total, convention)
        name = _markdown_cell(m.name or "(total)")
        lines.append(
            f"| {name} | {_markdown_cell(m.type)} | {u.scaled(m.params, units, precision).strip()} |"
            f" {u.scaled(m.total.macs, units, precision).strip()} | {u.scaled(value, units, precision).strip()} |"
            f" {u.percent(value, total, precision)} |"
            + (_roofline_markdown(roofline.rows[m.name], seconds) if roofline is not None else "")
            + (
                "".join(f" {_markdown_cell(c)} |" for c in module_cells(viewed[m.name], units, precision))
                if viewed is not None
                else ""
            )
        )
    if compression is not None:
        lines += ["", *(f"> {line.strip()}" for line in view_summary_lines(compression, precision, units))]
    lines += _markdown_unsupported(report)
    return "\n".join(lines) + "\n"
