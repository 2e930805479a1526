"""Report -> JSON, CSV and Markdown. JSON holds everything the Report holds."""

from __future__ import annotations

import csv
import io
import json

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


def to_json(report: Report, indent: int | None = 2) -> str:
    """The Report as JSON (schema: docs/json-schema.md, ``schema_version`` inside)."""
    return json.dumps(report.to_dict(), indent=indent)


def to_csv(report: Report) -> str:
    """One row per module, inclusive counts, every convention as a column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
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
            ]
        )
    return out.getvalue()


def to_markdown(
    report: Report,
    *,
    depth: int | None = 1,
    convention: str = "exact",
    units: str = "auto",
    precision: int = 2,
) -> str:
    """A Markdown table of the modules down to ``depth``, with a totals line: ready to
    paste into a paper or a pull request."""
    label = FLOPS_LABEL[convention]
    total = report.flops_as(convention)
    lines = [
        f"**{report.model_name}** — batch {report.batch_size}: {u.count(report.params, 'params', units, precision)},"
        f" {u.count(report.macs, 'MACs', units, precision)}, {u.count(total, label, units, precision)}",
        "",
        f"| module | type | params | MACs | {label} | % {label} |",
        "|---|---|--:|--:|--:|--:|",
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
        )
    for op in report.unsupported.values():
        lines.append(f"\n> unsupported: `{op.op}` ran {op.calls}x, not counted")
    return "\n".join(lines) + "\n"
