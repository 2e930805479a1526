"""The compression view and before/after comparisons as text, Markdown and CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

from . import units as u
from .formats import markdown_table
from .speed import seconds
from .text import grid

_HEADERS = {
    "module": "module",
    "type": "type",
    "change": "change",
    "params_before": "params before",
    "params_after": "params after",
    "params_ratio": "params ratio",
    "nonzero_ratio": "nonzero ratio",
    "size_ratio_actual": "size ratio (actual)",
    "size_ratio_ideal": "size ratio (ideal)",
    "mac_speedup_dense": "MAC speedup (dense)",
    "mac_speedup_effective": "MAC speedup (effective)",
    "bops_ratio": "BOPs ratio",
    "speedup_estimate": "speedup (estimate)",
    "estimate_reason": "estimate reason",
    "measured_speedup": "speedup (measured)",
}


def _cell(key: str, value: Any, precision: int) -> str:
    if value is None:
        return "-"
    if key in ("params_before", "params_after"):
        return u.scaled(value, "auto", precision).strip()
    if key.endswith("speedup") or key.startswith("mac_speedup") or key == "speedup_estimate":
        return f"{value:.{precision}f}x"
    if isinstance(value, float):
        return f"{value:.{precision + 1}f}"
    return str(value)


def _table(comparison: Any, precision: int, with_reason: bool) -> tuple[list[str], list[list[str]]]:
    keys = [k for k in comparison.columns() if with_reason or k != "estimate_reason"]
    rows = comparison.rows()
    if comparison.measured_speedup is None:
        keys.remove("measured_speedup")
    body = [[_cell(k, row[k], precision) for k in keys] for row in rows]
    return [_HEADERS[k] for k in keys], body


def totals_table(comparison: Any, precision: int = 2) -> tuple[list[str], list[list[str]]]:
    """Each model's totals in absolute numbers, a row each (before, after): what a paper's
    table prints beside the ratios. The estimate is the same latency model the speedup
    estimate divides; the measured time appears after ``bench``."""
    header = [
        "model",
        "params",
        "nonzero params",
        "MACs (dense)",
        "MACs (effective)",
        "BOPs",
        "size (actual)",
        "size (ideal)",
        "latency (estimate)",
    ]
    estimated = comparison.basis.numbers if comparison.basis else {}
    if comparison.measured:
        header.append("latency (measured)")
    body = []
    for side, name in (("before", comparison.before_name), ("after", comparison.after_name)):
        totals = getattr(comparison, side)
        row = [
            name,
            u.scaled(totals.params, "auto", precision).strip(),
            "-"
            if totals.nonzero_params is None
            else u.scaled(totals.nonzero_params, "auto", precision).strip(),
            u.scaled(totals.macs_dense, "auto", precision).strip(),
            u.scaled(totals.macs_effective, "auto", precision).strip(),
            u.scaled(totals.bops, "auto", precision).strip(),
            u.nbytes(totals.bytes_actual, precision),
            u.nbytes(totals.bytes_ideal, precision),
            seconds(estimated[side]) if side in estimated else "-",
        ]
        if comparison.measured:
            row.append(seconds(comparison.measured[side]) if side in comparison.measured else "-")
        body.append(row)
    return header, body


def comparison_markdown(comparison: Any, precision: int = 2) -> str:
    """The table a paper prints: one row per matching module and the total. Ratios are
    after / before; speedups are before / after; the speedup estimate is labelled."""
    header, body = _table(comparison, precision, with_reason=True)
    lines = [
        f"**{comparison.after_name}** vs **{comparison.before_name}** "
        f"(speedup estimate: {_estimate_title(comparison)}, not a measurement)",
        "",
        *markdown_table(header, body),
        "",
        "Totals:",
        "",
        *markdown_table(*totals_table(comparison, precision)),
    ]
    lines += [f"\nWARNING: {w}" for w in comparison.warnings]
    return "\n".join(lines) + "\n"


def comparison_csv(comparison: Any) -> str:
    """The same columns as the Markdown table, raw numbers."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=comparison.columns(), lineterminator="\n")
    writer.writeheader()
    for row in comparison.rows():
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def comparison_text(comparison: Any, precision: int = 2) -> str:
    header, body = _table(comparison, precision, with_reason=False)
    lines = [
        f"{comparison.after_name} vs {comparison.before_name}: ratios are after / before, "
        f"speedups before / after; speedup (estimate) is {_estimate_title(comparison)}",
        "",
        *grid(header, body),
    ]
    lines += ["", "totals:", *grid(*totals_table(comparison, precision))]
    total = comparison.rows()[-1]
    lines.append(
        f"\nspeedup estimate {comparison.speedup_estimate:.{precision}f}x ({total['estimate_reason']})"
    )
    if comparison.measured_speedup is not None:
        m = comparison.measured
        lines.append(
            f"measured speedup {comparison.measured_speedup:.{precision}f}x "
            f"(median {seconds(m['before'])} before, {seconds(m['after'])} after, same run)"
        )
    lines += [f"WARNING: {w}" for w in comparison.warnings]
    return "\n".join(lines)


def _estimate_title(comparison: Any) -> str:
    basis = comparison.basis
    if basis is None:
        return f"a model on {comparison.hardware}"
    return (
        f"the calibrated latency model on {comparison.hardware}, float work of both models "
        f"at {_peak(basis.baseline, basis.baseline_peak)} (baseline {comparison.baseline})"
    )


def _pct(value: float | None) -> str:
    return "unknown" if value is None else f"{100 * value:.1f}%"


def view_table(view: Any, precision: int = 2, units: str = "auto") -> str:
    """The compression view, one row per layer, then the totals and the overhead."""
    header = [
        "module",
        "type",
        "storage",
        "params",
        "nonzero",
        "sparsity",
        "structure",
        "MACs dense",
        "MACs eff.",
        "W/A bits",
        "group",
        "BOPs",
        "bytes actual",
        "bytes ideal",
        "bits/weight",
    ]

    def n(value: int | None) -> str:
        return "unknown" if value is None else u.scaled(value, units, precision).strip()

    body = []
    for layer in view.layers.values():
        bits = f"{layer.weight_bits or '-'}/{layer.act_bits or '-'}"
        bpw = layer.bits_per_weight
        body.append(
            [
                layer.name or "(root)",
                layer.type,
                layer.representation if layer.weight_params else "-",
                n(layer.params),
                n(layer.nonzero_params),
                _pct(layer.sparsity) if layer.weight_params else "-",
                layer.structure if layer.weight_params else "-",
                n(layer.macs_dense),
                n(layer.macs_effective),
                bits,
                str(layer.group_size or "-"),
                n(layer.bops),
                u.nbytes(layer.bytes_actual, precision),
                u.nbytes(layer.bytes_ideal, precision),
                f"{bpw:.{precision}f}" if bpw is not None else "-",
            ]
        )
    lines = [
        "compression view"
        + (f" (assuming {view.assumptions})" if view.assumptions else "")
        + (" (of the forward pass)" if view.of_backward_profile else ""),
        *grid(header, body),
        "",
        *view_summary_lines(view, precision, units),
    ]
    return "\n".join(lines)


def view_summary_lines(view: Any, precision: int = 2, units: str = "auto") -> list[str]:
    """The view's model totals, work by dtype, the overhead bucket and warnings: the
    lines under the tree or table that ``--compression`` prints."""

    def n(value: int | None) -> str:
        return "unknown" if value is None else u.scaled(value, units, precision).strip()

    overhead = view.overhead_total
    bpw = view.bits_per_weight
    lines = [
        "compression view totals"
        + (f" (assuming {view.assumptions})" if view.assumptions else "")
        + (
            " (of the forward pass; the report's totals above hold both passes)"
            if view.of_backward_profile
            else ""
        )
        + ":",
        f"  params {n(view.params)}, nonzero {n(view.nonzero_params)}, "
        + (
            f"sparsity {_pct(view.sparsity)} (weights; biases apart)"
            if view.weight_params
            else "sparsity - (no weights)"  # 0 of 0 is no 0.0 %
        ),
        f"  MACs dense {n(view.macs_dense)}, effective {n(view.macs_effective)}; "
        f"FLOPs effective {n(view.flops_effective)}; integer ops effective {n(view.int_ops_effective)}"
        + (" (as if dense: sparsity unknown)" if view.nonzero_params is None else ""),
        *([NOT_COUNTED] if not view.nonzeros_counted else []),
        f"  BOPs {n(view.bops)} "
        + (f"({100 * view.bops_relative:.2f}% of fp32 dense); " if view.macs_dense else "(no MACs); ")
        + f"bytes actual {u.nbytes(view.bytes_actual, precision)}, ideal {u.nbytes(view.bytes_ideal, precision)}"
        + (f", {bpw:.{precision}f} bits/weight" if bpw is not None else ""),
        "  work by dtype"
        + (" (forward + backward)" if view.of_backward_profile else "")
        + ": "
        + (
            ", ".join(
                f"{dtype} {n(w['macs'])} MACs / {n(w['flops'])} FLOPs"
                for dtype, w in view.work_by_dtype.items()
                if w["macs"] or w["flops"]
            )
            or "none"
        ),
        f"  overhead ({'counted in' if view.overhead_counted else 'kept out of'} model FLOPs): "
        + (
            ", ".join(f"{op} {n(c.flops)} FLOPs" for op, c in view.overhead.items())
            + f"; total {n(overhead.flops)} FLOPs"
            if view.overhead
            else "none"
        ),
    ]
    lines += [
        f"  WARNING: unrecognised compressed weight {w} (counted as stored, not as compressed)"
        for w in view.unrecognised
    ]
    if view.sliced:
        lines.append(
            f"  NOTE: {', '.join(name or '(root)' for name in view.sliced)} read only part of their weights "
            "(a supernet's active slice): nonzeros and sparsity unknown, effective MACs as if dense; "
            "params are the whole weights the model holds"
        )
    return lines


# -- the view's columns in the module tree and tables (--compression) --------------------
MODULE_HEADER = ["nonzero", "sparsity", "structure", "W bits", "A bits", "MACs eff.", "BOPs", "bytes ideal"]
"""Headers of the view's columns in the module table, Markdown and HTML (``module_header``
gives them as a view prints them)."""

FORWARD_ONLY = ("MACs eff.", "BOPs")
"""The view's columns that count work: in a backward profile they are the forward pass's,
beside the report's counts of both passes."""


def module_header(view: Any) -> list[str]:
    """``MODULE_HEADER``, with "(fwd)" on the columns of work when ``view`` is of a backward
    profile (its MACs eff. and BOPs are the forward's, the MACs beside them of both passes)."""
    if not view.of_backward_profile:
        return list(MODULE_HEADER)
    return [f"{h} (fwd)" if h in FORWARD_ONLY else h for h in MODULE_HEADER]


def view_summary_markdown(view: Any, precision: int = 2, units: str = "auto") -> list[str]:
    """``view_summary_lines`` as Markdown quotes, after a blank line."""
    return ["", *(f"> {line.strip()}" for line in view_summary_lines(view, precision, units))]


OPERATOR_CSV_NOTE = (
    "flopmeter: note: an operator CSV (--by op) has no compression columns, which are per module;"
    " drop --by op, or use --format json, for the compression view"
)


def csv_note(view: Any) -> str:
    """A note for stderr beside a CSV with the view's columns of a backward profile ("" else):
    CSV has no heading to say which pass ``macs_effective`` and ``bops`` are of."""
    if view is None or not view.of_backward_profile:
        return ""
    return (
        "flopmeter: note: the compression columns macs_effective and bops are of the forward pass;"
        " macs and the flops columns hold forward + backward"
    )


MODULE_CSV_COLUMNS = [
    "nonzero_params",
    "sparsity",
    "structure",
    "weight_bits",
    "act_bits",
    "macs_effective",
    "bops",
    "bytes_ideal",
]
"""The same columns in CSV, raw numbers (sparsity a fraction; empty when unknown)."""


def _bits(value: int | str | None) -> str:
    return "-" if value is None else str(value)


def _sparsity(summary: Any, precision: int) -> str:
    if not summary.weight_params:
        return "-"
    return _pct(summary.sparsity)


def module_cells(summary: Any, units: str = "auto", precision: int = 2) -> list[str]:
    """One module's view columns (``MODULE_HEADER``), inclusive of its children."""

    def n(value: int | None) -> str:
        return "unknown" if value is None else u.scaled(value, units, precision).strip()

    return [
        n(summary.nonzero_params),
        _sparsity(summary, precision),
        summary.structure or "-",
        _bits(summary.weight_bits),
        _bits(summary.act_bits),
        n(summary.macs_effective),
        n(summary.bops),
        u.nbytes(summary.bytes_ideal, precision),
    ]


def module_csv_cells(summary: Any) -> list[Any]:
    """One module's ``MODULE_CSV_COLUMNS``: raw numbers, "" when unknown or no weights."""

    def raw(value: Any) -> Any:
        return "" if value is None else value

    return [
        raw(summary.nonzero_params),
        raw(summary.sparsity),
        raw(summary.structure),
        raw(summary.weight_bits),
        raw(summary.act_bits),
        summary.macs_effective,
        summary.bops,
        summary.bytes_ideal,
    ]


NOT_COUNTED = (
    "  nonzeros not counted: the profile did not read the weights' values "
    "(flopmeter.profile(..., compression=True) or --compression counts them)"
)


def tree_cells(
    summary: Any, units: str = "auto", precision: int = 2, forward_only: bool = False
) -> list[str]:
    """The tree's shorter set: nonzero params, sparsity, structure, wXaY bits, effective
    MACs (a module without weights shows its effective MACs only, one without MACs
    nothing); ``forward_only`` (a backward profile's view) labels them "MACs eff. (fwd)"."""
    cells = []
    if summary.weight_params:
        nonzero = (
            "unknown"
            if summary.nonzero_params is None
            else u.scaled(summary.nonzero_params, units, precision).strip()
        )
        cells.append(f"{nonzero} nonzero")
        cells.append(f"{_sparsity(summary, precision)} sparse")
        cells.append(str(summary.structure))
        w, a = summary.weight_bits, summary.act_bits
        cells.append("mixed bits" if "mixed" in (w, a) else f"w{_bits(w)}a{_bits(a)}")
    if summary.macs_dense:
        label = "MACs eff. (fwd)" if forward_only else "MACs eff."
        cells.append(u.count(summary.macs_effective, label, units, precision))
    return cells


def micronet_line(score: Any, precision: int = 4) -> str:
    return (
        f"MicroNet ({score.task}, per sample{', 16-bit freebie' if score.freebie else ''}): "
        f"storage {score.storage:,.2f}, ops {score.ops:,.2f} (32-bit units), score {score.score:.{precision}f}"
        + (" (as if dense: nonzeros unknown)" if score.as_if_dense else "")
    )


def micronet_extra(score: Any, text: str, fmt: str) -> tuple[str, str]:
    """``text`` (the report in ``fmt``) with the MicroNet score added, and a note for
    stderr: a ``"micronet"`` key in JSON, the score's line under text and Markdown, and
    on stderr beside a CSV (whose rows are modules)."""
    if fmt == "json":
        import json

        data = json.loads(text)
        data["micronet"] = dataclasses.asdict(score)
        return json.dumps(data, indent=2) + "\n", ""
    if fmt == "csv":
        return text, micronet_line(score) + "\n"
    return text + micronet_line(score) + "\n", ""


def comparison_html(comparison: Any, precision: int = 2) -> str:
    """One self-contained HTML page: the Markdown table's columns, and the warnings."""
    import html

    title = f"{comparison.after_name} vs {comparison.before_name}"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(-n+3){text-align:left}"
        "tr:last-child{font-weight:bold}.warn{color:#a00}table.totals td{text-align:right}"
        "table.totals td:first-child{text-align:left}table.totals tr{font-weight:normal}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{comparison_fragment(comparison, precision, named=False)}</body></html>\n"
    )


def comparison_fragment(comparison: Any, precision: int = 2, named: bool = True) -> str:
    """The page's body (``Comparison._repr_html_``: a notebook's output takes no <html> or
    <style>): what the ratios mean, the table and the warnings; ``named``: the models' names
    lead (the page has them in its title instead)."""
    import html

    names = f"{html.escape(comparison.after_name)} vs {html.escape(comparison.before_name)}: "
    lead = f"{names}ratios are" if named else "Ratios are"
    warnings = "".join(f'<p class="warn">WARNING: {html.escape(w)}</p>' for w in comparison.warnings)
    return (
        f"<p>{lead} after / before; speedups before / after. "
        f"The speedup estimate is {html.escape(_estimate_title(comparison))}, not a measurement.</p>"
        f"{_html_table(*_table(comparison, precision, with_reason=True))}"
        f"<p>Totals:</p>{_html_table(*totals_table(comparison, precision), css_class='totals')}{warnings}"
    )


def _html_table(header: list[str], body: list[list[str]], css_class: str = "") -> str:
    import html

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    opening = f'<table class="{css_class}">' if css_class else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def comparison_plot(comparison: Any, path: Any = None) -> Any:
    """Per-module bars (matplotlib): nonzero ratio, ideal size ratio, effective MAC
    speedup and the speedup estimate, the columns of the table. Saved to ``path``."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = comparison.rows()
    keys = ["nonzero_ratio", "size_ratio_ideal", "mac_speedup_effective", "speedup_estimate"]
    figure, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 0.3 * len(rows) + 1.5), sharey=True)
    labels = [row["module"] or "(root)" for row in rows]
    for axis, key in zip(axes, keys, strict=True):
        axis.barh(labels, [row[key] or 0.0 for row in rows])
        axis.set_title(_HEADERS[key] + (" (model)" if key == "speedup_estimate" else ""))
        axis.invert_yaxis()
    figure.suptitle(f"{comparison.after_name} vs {comparison.before_name}")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path)
        plt.close(figure)
    return figure


def _peak(dtype: str, value: float) -> str:
    unit = "OPS" if dtype.startswith(("int", "qint", "quint", "uint")) else "FLOP/s"
    return f"{dtype} {u.scaled(value, 'auto', 1)}{unit}"


def estimate_reason(basis: Any) -> str:
    """The reason string of a speedup estimate (compression/speedup.py ``Basis``): what
    it assumed, the baseline dtype and the peaks it used."""
    kind, hw = basis.kind, basis.hardware
    base = _peak(basis.baseline, basis.baseline_peak) if basis.baseline else ""
    numbers = basis.numbers
    if kind == "unchanged":
        return "unchanged"
    if kind in ("removed", "added"):
        return f"estimate: layer {kind}"
    if kind == "structural":
        return f"estimate: physically smaller, kernel-time ratio at baseline {base} on {hw}"
    if kind == "W8A8":
        unlisted = (
            "" if numbers.get("peak_listed", 1.0) else f" (no {basis.dtype} peak listed: the baseline's)"
        )
        return f"estimate: W8A8 at {_peak(basis.dtype, basis.peak)}{unlisted} vs baseline {base} on {hw}"
    if kind == "weight-only":
        return (
            f"estimate: weight-only, {numbers['efficiency']} x kernel-time ratio {numbers['ratio']:.2f} "
            f"(smaller weights, baseline {base}) on {hw}, at least 1.0"
        )
    if kind == "2:4":
        return f"estimate: 2:4 kernel, half the MACs at baseline {base} on {hw}, capped at {numbers['cap']}x"
    if kind == "2:4 small":
        return (
            f"estimate: 2:4 on {int(numbers['rows'])} rows (< {int(numbers['min_rows'])}): "
            "no gain on small shapes"
        )
    if kind == "2:4 no kernel":
        return f"estimate: 2:4 without sparse tensor cores on {hw} (no tfloat32 peak listed): runs dense"
    if kind == "unstructured":
        return "estimate: unstructured sparsity, no sparse kernel (runs dense)"
    if kind == "total":
        regime = (
            "overhead-bound"
            if numbers["overlap"] and numbers["overhead_after"] >= numbers["work_after"]
            else "work-bound"
            if numbers["overlap"]
            else "work + overheads"
        )
        return (
            f"calibrated model on {hw}: {seconds(numbers['before'])} before, "
            f"{seconds(numbers['after'])} after ({regime}); baseline {base}, {_peak(basis.dtype, basis.peak)}"
            + ("" if numbers.get("peak_listed", 1.0) else " (not listed: float32's)")
        )
    return "estimate: no faster kernel for this change"
