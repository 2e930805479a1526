"""Report -> JSON, CSV and Markdown. JSON holds everything the Report holds."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..report import CONVENTIONS, ONNX_TOOL, Report, convention_value
from . import units as u
from .text import FLOPS_LABEL, run_note, select_modules, unranked_line

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


def _conventions(report: Report) -> tuple[list[str], list[str]]:
    """The conventions a CSV gives a column each, and the columns' names after "macs":
    every one of ``CONVENTIONS``, and onnx-tool's for a report of an ONNX file (the table
    shows it with ``--convention onnx-tool``: the CSV carries the same number)."""
    names = ["flops_exact", "flops_2mac", "flops_mac", "ptflops_macs"]
    if report.options.get("source") == "onnx":
        return [*CONVENTIONS, ONNX_TOOL], [*names, "onnx_tool_macs"]
    return list(CONVENTIONS), names


def _with_conventions(columns: list[str], report: Report) -> list[str]:
    """``columns`` with the convention columns as ``_conventions`` names them."""
    at = columns.index("flops_exact")
    return columns[:at] + _conventions(report)[1] + columns[at + 4 :]


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
                    "integer_ops": r.int_ops,
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
                "achieved_integer_ops_per_second": t.achieved_int_ops_per_second,
                "fraction_of_peak": t.fraction_of_peak,
                "per_module_median_seconds": t.per_module,
                "hook_overhead_seconds": t.hook_overhead if t.per_module else None,
                "predicted_seconds": t.predicted,
                "measured_over_predicted": t.ratio,
                "cpu_times_seconds": t.cpu_times,
                "cpu_share": t.cpu_share,
                "measured_over_predicted_cpu_time": t.cpu_ratio,
            }
            for t in timings
        ]
    if sweep:
        data["batch_sweep"] = [
            {
                "batch_size": e.batch_size,
                "latency_seconds": e.latency,
                "bound_latency_seconds": e.bound_latency,
                "samples_per_second": e.throughput,
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
    timings: Any = None,
    sweep: Any = None,
) -> str:
    """One row per module, inclusive counts, every convention as a column (and the
    roofline's intensity, bound and estimated seconds when given; the compression
    view's ``MODULE_CSV_COLUMNS`` when ``compression``, a CompressionView, is given).
    The model's row is named "(root)". Rows as ``text.select_modules`` picks them.
    Each op without a formula follows as a row of type "unsupported op" with its call
    count and empty counts (never a silent zero). Measured ``timings`` (``benchmark``)
    and a batch ``sweep`` (``predict_batches``) follow as rows of their own types with
    ``SPEED_CSV_COLUMNS`` (``speed_csv_rows``)."""
    from .compression import MODULE_CSV_COLUMNS, module_csv_cells

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = _with_conventions(CSV_COLUMNS, report)
    columns += roofline_csv_columns(roofline) if roofline is not None else []
    conventions = _conventions(report)[0]
    viewed = compression.by_module() if compression is not None else None
    if viewed is not None:
        columns += MODULE_CSV_COLUMNS
    speed = speed_csv_rows(timings, sweep)
    writer.writerow(columns + (SPEED_CSV_COLUMNS if speed else []))
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
                *(convention_value(m.total, c) for c in conventions),
                m.total.bytes_read,
                m.total.bytes_written,
                m.own.macs,
                m.own.flops,
                *(_roofline_cells(roofline, m.name) if roofline is not None else []),
                *(module_csv_cells(viewed[m.name]) if viewed is not None else []),
                *([""] * len(SPEED_CSV_COLUMNS) if speed else []),
            ]
        )
    width = len(columns) + (len(SPEED_CSV_COLUMNS) if speed else 0)
    for op in report.unsupported.values():
        writer.writerow([op.op, "unsupported op", "", op.calls] + [""] * (width - 4))
    _write_speed_rows(writer, speed, len(columns))
    return out.getvalue()


SPEED_CSV_COLUMNS = [
    "batch_size",
    "median_s",
    "p10_s",
    "p90_s",
    "std_s",
    "samples_per_second",
    "achieved_flops_per_second",
    "achieved_integer_ops_per_second",
    "fraction_of_peak",
    "predicted_s",
    "measured_over_predicted",
    "bound_time_s",
    "overhead_s",
    "memory_s",
    "compute_s",
    "limit",
]
"""The columns of the CSV's speed rows (empty on module rows). Rows by ``type``: "timing"
(the whole call at one batch size, measured; with a hardware spec also its prediction as
below), "module timing" (one module with ``--per-module``: median, predicted, their ratio,
limit), "batch estimate" (one batch size of a sweep without timing: the prediction,
samples/s, the roofline bound and the overhead / memory / compute seconds of the prediction)."""


def speed_csv_rows(timings: Any, sweep: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(module, type, cells by ``SPEED_CSV_COLUMNS``) for each measured batch size, each
    module timed in it, and each batch size of a sweep. Seconds and ratios unrounded."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for t in timings or []:
        estimate = t.estimate
        rows.append(
            (
                ROOT_NAME,
                "timing",
                {
                    "batch_size": t.batch_size,
                    "median_s": t.median,
                    "p10_s": t.p10,
                    "p90_s": t.p90,
                    "std_s": t.std,
                    "samples_per_second": t.throughput,
                    "achieved_flops_per_second": t.achieved_flops_per_second,
                    "achieved_integer_ops_per_second": t.achieved_int_ops_per_second,
                    "fraction_of_peak": t.fraction_of_peak,
                    "measured_over_predicted": t.ratio,
                    **(_estimate_cells(estimate) if estimate else {}),
                },
            )
        )
        ratios = t.module_ratios()
        for name, median in t.per_module.items():
            row = estimate.rows.get(name) if estimate else None
            rows.append(
                (
                    name or ROOT_NAME,
                    "module timing",
                    {
                        "batch_size": t.batch_size,
                        "median_s": median,
                        "predicted_s": row.time if row else None,
                        "measured_over_predicted": ratios[name][2] if name in ratios else None,
                        "limit": row.regime if row else None,
                    },
                )
            )
    for e in sweep or []:
        rows.append(
            (
                ROOT_NAME,
                "batch estimate",
                {
                    "batch_size": e.batch_size,
                    "samples_per_second": e.throughput,
                    **_estimate_cells(e),
                },
            )
        )
    return rows


def _estimate_cells(estimate: Any) -> dict[str, Any]:
    """A whole-call estimate (a Roofline) as speed cells: the prediction, the roofline bound,
    the prediction's overhead / memory / compute seconds and what limits it."""
    total = estimate.total
    return {
        "predicted_s": estimate.latency,
        "bound_time_s": estimate.bound_latency,
        "overhead_s": total.overhead_time,
        "memory_s": total.calibrated_memory,
        "compute_s": total.calibrated_compute,
        "limit": total.regime,
    }


def _write_speed_rows(writer: Any, rows: list[tuple[str, str, dict[str, Any]]], before: int) -> None:
    """The speed rows, their name and type in the first two columns, then empty cells up to
    ``before`` (the other columns), then ``SPEED_CSV_COLUMNS``."""
    for name, kind, cells in rows:
        values = [cells.get(c) for c in SPEED_CSV_COLUMNS]
        writer.writerow([name, kind] + [""] * (before - 2) + ["" if v is None else v for v in values])


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


def operators_to_csv(
    report: Report,
    top: int | None = None,
    *,
    timings: Any = None,
    sweep: Any = None,
    convention: str = "exact",
) -> str:
    """One row per aten operator (``--by op``), costliest first in ``convention`` (as the
    table and Markdown rank them, so ``top`` keeps the same rows); unsupported ops last
    with kind "unsupported" and empty counts; then the speed rows as in ``to_csv``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    speed = speed_csv_rows(timings, sweep)
    columns, conventions = _with_conventions(OPERATOR_CSV_COLUMNS, report), _conventions(report)[0]
    writer.writerow(columns + (SPEED_CSV_COLUMNS if speed else []))
    ops = sorted(report.by_operator().values(), key=lambda o: -convention_value(o.cost, convention))[:top]
    for o in ops:
        writer.writerow(
            [
                o.op,
                o.kind,
                o.calls,
                o.cost.macs,
                *(convention_value(o.cost, c) for c in conventions),
                o.cost.bytes_read,
                o.cost.bytes_written,
                *([""] * len(SPEED_CSV_COLUMNS) if speed else []),
            ]
        )
    width = len(columns) + (len(SPEED_CSV_COLUMNS) if speed else 0)
    for op in report.unsupported.values():
        writer.writerow([op.op, "unsupported", op.calls] + [""] * (width - 3))
    _write_speed_rows(writer, speed, len(columns))
    return out.getvalue()


def operators_to_markdown(
    report: Report,
    *,
    convention: str = "exact",
    units: str = "auto",
    precision: int = 2,
    top: int | None = None,
    timings: Any = None,
    sweep: Any = None,
) -> str:
    """A Markdown table of the aten operators (``--by op``), costliest first; then the
    speed tables as in ``to_markdown``."""
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
    lines += speed_markdown(report, timings, sweep, precision, top)
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
        f" {u.count(report.flops_as(convention), label, units, precision)}" + run_note(report)
    )


def _markdown_unsupported(report: Report) -> list[str]:
    return [f"\n> unsupported: `{op.op}` ran {op.calls}x, not counted" for op in report.unsupported.values()]


def roofline_csv_columns(roofline: Any) -> list[str]:
    """The roofline's CSV columns: intensity ((FLOPs + integer ops) / bytes), bound, estimated
    seconds; ``integer_ops`` (2 x MACs of integer work, the JSON's name) first when the model
    does integer work."""
    return (["integer_ops"] if roofline.total.int_ops else []) + ["intensity", "bound", "est_time_s"]


def _roofline_cells(roofline: Any, name: str) -> list[Any]:
    row = roofline.rows[name]
    integer = [row.int_ops] if roofline.total.int_ops else []
    # seconds unrounded, as the speed rows: 9 decimals wrote 0.000000000 for a 0.3 ns layer
    return [*integer, f"{row.intensity:.3f}" if row.bytes else "", row.bound, row.time]


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
    timings: Any = None,
    sweep: Any = None,
) -> str:
    """A Markdown table of the modules down to ``depth``, with a totals line: ready to
    paste into a paper or a pull request. With ``roofline``: intensity, bound, est. time;
    with ``compression`` (a CompressionView): its columns (``MODULE_HEADER``).
    Rows as ``text.select_modules`` picks them (``top``: the costliest leaves).
    Measured ``timings`` and a batch ``sweep`` follow as tables of their own
    (``speed_markdown``)."""
    from .compression import module_cells, module_header, view_summary_markdown
    from .speed import intensity_label, seconds

    label = FLOPS_LABEL[convention]
    total = report.flops_as(convention)
    extra_head = f" {intensity_label(roofline)} | bound | est. time |" if roofline is not None else ""
    viewed = compression.by_module() if compression is not None else None
    if viewed is not None:
        extra_head += "".join(f" {h} |" for h in module_header(compression))
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
    unranked = unranked_line(report, depth, convention, units, precision) if top is not None else ""
    lines += ["", f"> {unranked}"] if unranked else []
    if compression is not None:
        lines += view_summary_markdown(compression, precision, units)
    lines += _markdown_unsupported(report)
    lines += speed_markdown(report, timings, sweep, precision, top)
    return "\n".join(lines) + "\n"


def speed_markdown(
    report: Report, timings: Any, sweep: Any, precision: int = 2, top: int | None = None
) -> list[str]:
    """Markdown sections for measured ``timings`` (a table per batch size, and per module
    with ``--per-module``: the ``top`` slowest modules, 15 when None, as in the text) and a
    batch ``sweep``: the text output's tables, its notes as quotes. No lines when neither
    is given."""
    from .speed import (
        module_timing_head,
        module_timing_table,
        sweep_note,
        sweep_table,
        timing_notes,
        timing_table,
    )

    lines: list[str] = []
    if timings:
        lines += ["", "**Measured latency**", "", *(f"> {n}" for n in timing_notes(report, timings)), ""]
        lines += markdown_table(*timing_table(timings, precision))
        for t in timings:
            if t.per_module:
                lines += [
                    "",
                    f"> {module_timing_head(t)}",
                    "",
                    *markdown_table(*module_timing_table(t, top or 15)),
                ]
    if sweep:
        lines += ["", "**Batch sweep**", "", f"> {sweep_note(report, sweep)}", ""]
        lines += markdown_table(*sweep_table(sweep))
    return lines
