"""Several Reports side by side: totals, ratios to the first, shared modules; as text,
Markdown, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..report import Report, convention_value
from . import units as u
from .text import FLOPS_LABEL, grid, run_note


def comparison_rows(
    reports: list[Report], convention: str = "exact", seconds: list[float] | None = None
) -> list[dict[str, Any]]:
    """One dict per model: params, MACs, FLOPs (in ``convention``) and the ratios a
    compression paper reports against the first model: ``compression`` = first params /
    this, ``flops_speedup`` = first FLOPs / this (None where this is 0), ``integer_macs``: the
    MACs done in integer arithmetic (int8 contractions), which FLOPs do not count. With
    ``seconds`` (the measured median per model), ``median_seconds`` and ``measured_speedup``
    = first / this."""
    from ..compression.view import integer_macs

    base = reports[0]
    rows = []
    for index, report in enumerate(reports):
        flops = report.flops_as(convention)
        row: dict[str, Any] = {
            "model": report.model_name,
            "params": report.params,
            "macs": report.macs,
            "flops": flops,
            "compression": base.params / report.params if report.params else None,
            "flops_speedup": base.flops_as(convention) / flops if flops else None,
            "integer_macs": integer_macs(report),
        }
        if seconds is not None:
            row["median_seconds"] = seconds[index]
            row["measured_speedup"] = seconds[0] / seconds[index] if seconds[index] else None
        rows.append(row)
    return rows


def _ratio(value: float | None, precision: int) -> str:
    return "-" if value is None else f"{value:.{precision}f}x"


def _totals_table(
    rows: list[dict[str, Any]], convention: str, units: str, precision: int, seconds: list[float] | None
) -> tuple[list[str], list[list[str]]]:
    from .speed import seconds as duration

    header = ["model", "params", "MACs", FLOPS_LABEL[convention], "compression", "FLOPs speedup"]
    if seconds is not None:
        header += ["median", "measured speedup"]
    body = []
    for row in rows:
        cells = [
            row["model"],
            u.scaled(row["params"], units, precision).strip(),
            u.scaled(row["macs"], units, precision).strip(),
            u.scaled(row["flops"], units, precision).strip(),
            _ratio(row["compression"], precision),
            _ratio(row["flops_speedup"], precision),
        ]
        if seconds is not None:
            cells += [duration(row["median_seconds"]), _ratio(row["measured_speedup"], precision)]
        body.append(cells)
    return header, body


def _shared_table(
    reports: list[Report], convention: str, units: str, precision: int
) -> tuple[list[str], list[list[str]]]:
    """The modules present in every model (same qualified name, depth 1), FLOPs side by side."""
    base = reports[0]
    shared = [
        name
        for name, stats in base.modules.items()
        if stats.depth == 1 and all(name in r.modules for r in reports[1:])
    ]
    rows = [
        [
            name,
            base.modules[name].type,
            *(
                u.scaled(convention_value(r.modules[name].total, convention), units, precision).strip()
                for r in reports
            ),
        ]
        for name in shared
    ]
    return ["module", "type", *(r.model_name for r in reports)], rows


def _integer_notes(reports: list[Report], rows: list[dict[str, Any]]) -> list[str]:
    """A FLOPs ratio leaves integer work out: a model whose contractions run in int8 does
    fewer FLOPs than its float original without doing less arithmetic."""
    return [
        f"NOTE: {row['model']}: {row['integer_macs']:,} of its {row['macs']:,} MACs are integer "
        "arithmetic, which FLOPs do not count, so its FLOPs speedup is not a work ratio; "
        + (
            "its own report lists the integer contractions with their bits (docs/onnx.md)"
            if report.options.get("source") == "onnx"
            else "--compression gives its BOPs and a speedup estimate at int8 rates"
        )
        for report, row in zip(reports, rows, strict=True)
        if row["integer_macs"]
    ]


def _warnings(reports: list[Report]) -> list[str]:
    return [
        f"WARNING: {report.model_name}: {op.op} has no formula ({op.calls} calls, not counted)"
        for report in reports
        for op in report.unsupported.values()
    ]


def _title(reports: list[Report]) -> str:
    base = reports[0]
    runs = {run_note(r).strip(" ()") or "eval forward" for r in reports}
    run = "" if runs == {"eval forward"} else ", " + " / ".join(sorted(runs))  # a mix: each kind named
    return f"compared to {base.model_name} (batch {base.batch_size}{run}); ratios are first / this"


def render_comparison(
    reports: list[Report],
    *,
    convention: str = "exact",
    units: str = "auto",
    precision: int = 2,
    seconds: list[float] | None = None,
    totals_only: bool = False,
    markdown: bool = False,
) -> str:
    """Params, MACs, FLOPs per model and their ratios to the first (``comparison_rows``),
    with the measured medians when ``seconds`` is given. Then, unless ``totals_only``
    (``-q``), the modules present in every model (same qualified name, depth 1), their
    FLOPs side by side. Aligned text, or Markdown tables (``markdown``)."""
    from .formats import markdown_table

    table = markdown_table if markdown else grid
    models = comparison_rows(reports, convention, seconds)
    totals = _totals_table(models, convention, units, precision, seconds)
    lines = [_title(reports), "", *(markdown_table(*totals) if markdown else grid(*totals, left=1))]
    header, shared = _shared_table(reports, convention, units, precision)
    if shared and not totals_only:
        lines += ["", f"shared modules ({FLOPS_LABEL[convention]}):", *([""] if markdown else [])]
        lines += table(header, shared)
    warnings = _integer_notes(reports, models) + _warnings(reports)
    if markdown:
        return "\n".join(lines + ([""] + warnings if warnings else [])) + "\n"
    return "\n".join(lines + warnings)


def comparison_csv(
    reports: list[Report], *, convention: str = "exact", seconds: list[float] | None = None
) -> str:
    """One row per model, ``comparison_rows``' columns, raw numbers (empty: no ratio). The
    FLOPs column is "flops" in the exact convention and named as the single-model CSV names
    it in another ("flops_2mac", "flops_mac", "ptflops_macs", "onnx_tool_macs"): a CSV has
    no heading to say which convention its numbers are in."""
    rows = comparison_rows(reports, convention, seconds)
    name = CSV_FLOPS_NAMES.get(convention, "flops")
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[name if k == "flops" else k for k in rows[0]], lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({(name if k == "flops" else k): "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


CSV_FLOPS_NAMES = {
    "2mac": "flops_2mac",
    "mac": "flops_mac",
    "ptflops": "ptflops_macs",
    "onnx-tool": "onnx_tool_macs",
}


def comparison_json(
    reports: list[Report],
    *,
    convention: str = "exact",
    seconds: list[float] | None = None,
    totals_only: bool = False,
) -> str:
    """``compared_to`` (the first model), ``convention``, ``rows`` (``comparison_rows``) and
    ``reports``: each model's report JSON (docs/json-schema.md), totals only with ``totals_only``."""
    from .formats import to_json

    data = {
        "compared_to": reports[0].model_name,
        "convention": convention,
        "rows": comparison_rows(reports, convention, seconds),
        "reports": [json.loads(to_json(r, totals_only=totals_only)) for r in reports],
    }
    return json.dumps(data, indent=2) + "\n"
