"""Report -> one self-contained HTML file: totals, a sortable and collapsible module
tree, bar charts of where the cost sits. No network at view time: data, style and
script are inline."""

from __future__ import annotations

import html
import json
from typing import Any

from ..report import Report, convention_value
from . import units as u
from .plot import leaf_rows, operator_rows
from .text import FLOPS_LABEL, run_note

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 8px}
.totals{display:flex;gap:24px;margin:12px 0 20px;flex-wrap:wrap}
.total{background:#f3f5f8;border-radius:6px;padding:10px 16px}
.total b{display:block;font-size:20px}
.warn{background:#fff3cd;padding:8px 12px;border-radius:6px;margin:6px 0}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:3px 8px;border-bottom:1px solid #e5e5e5;text-align:right;white-space:nowrap}
th{cursor:pointer;background:#fafafa;position:sticky;top:0}
td.name,th.name,td.type{text-align:left}
td.name span.toggle{cursor:pointer;display:inline-block;width:14px;color:#4477aa}
.bar{height:12px;background:#4477aa;display:inline-block;vertical-align:middle}
.charts{display:flex;gap:32px;flex-wrap:wrap;margin:16px 0}
.chart{min-width:380px}
.chart div.row{display:flex;align-items:center;font-size:12px;margin:2px 0}
.chart div.row span.label{width:220px;overflow:hidden;text-overflow:ellipsis}
"""

_SCRIPT = """
const data = JSON.parse(document.getElementById('report-data').textContent);
const rows = Array.from(document.querySelectorAll('#modules tbody tr'));
function setVisible(){
  const collapsed = new Set(rows.filter(r => r.dataset.collapsed === '1').map(r => r.dataset.name));
  for (const r of rows){
    const name = r.dataset.name; let hidden = false;
    for (const c of collapsed){ if (c !== name && (c === '' ? name !== '' : name.startsWith(c + '.'))){ hidden = true; break; } }
    r.style.display = hidden ? 'none' : '';
  }
}
for (const r of rows){
  const t = r.querySelector('.toggle');
  if (t) t.addEventListener('click', () => {
    r.dataset.collapsed = r.dataset.collapsed === '1' ? '0' : '1';
    t.textContent = r.dataset.collapsed === '1' ? '\\u25b6' : '\\u25bc';
    setVisible();
  });
}
document.querySelectorAll('#modules th').forEach((th, column) => th.addEventListener('click', () => {
  const body = document.querySelector('#modules tbody');
  const descending = th.dataset.order !== 'desc'; th.dataset.order = descending ? 'desc' : 'asc';
  const key = r => { const v = r.children[column].dataset.value; return v === undefined ? r.children[column].textContent : Number(v); };
  const sorted = rows.slice().sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1); });
  if (column === 0 && !descending) { sorted.sort((a, b) => Number(a.dataset.order) - Number(b.dataset.order)); }
  sorted.forEach(r => body.appendChild(r));
}));
document.getElementById('status').textContent = 'ready: ' + data.modules.length + ' modules';
"""


def _bars(title: str, rows: list[tuple[str, float]], units: str = "auto", precision: int = 2) -> str:
    top = max((v for _, v in rows), default=0) or 1
    lines = [f'<div class="chart"><h3>{html.escape(title)}</h3>']
    for label, value in rows:
        width = int(300 * value / top)
        lines.append(
            f'<div class="row"><span class="label" title="{html.escape(label)}">{html.escape(label)}</span>'
            f'<span class="bar" style="width:{width}px"></span>&nbsp;{u.scaled(value, units, precision).strip()}</div>'
        )
    lines.append("</div>")
    return "\n".join(lines)


def _roofline_cells(row: Any, seconds: Any) -> str:
    intensity = f"{row.intensity:.1f}" if row.bytes else "-"
    return (
        f'<td data-value="{row.intensity if row.bytes else 0}">{intensity}</td><td class="type">{row.bound}</td>'
        f'<td data-value="{row.time}">{seconds(row.time)}</td>'
    )


def _view_cells(summary: Any, units: str = "auto", precision: int = 2) -> str:
    from .compression import module_cells, module_csv_cells

    shown, raw = module_cells(summary, units, precision), module_csv_cells(summary)
    return "".join(
        f'<td class="type">{html.escape(text)}</td>'
        if isinstance(value, str) or value == ""
        else f'<td data-value="{value}">{html.escape(text)}</td>'
        for text, value in zip(shown, raw, strict=True)
    )


def _view_section(view: Any, units: str = "auto", precision: int = 2) -> str:
    from .compression import view_summary_lines

    lines = [html.escape(line.strip()) for line in view_summary_lines(view, precision, units)]
    return f'<div id="compression"><h3>{lines[0]}</h3><p>' + "<br>".join(lines[1:]) + "</p></div>"


def to_html(
    report: Report,
    *,
    convention: str = "exact",
    top: int = 15,
    roofline: Any = None,
    compression: Any = None,
    units: str = "auto",
    precision: int = 2,
) -> str:
    """The whole report as one HTML page (open it in any browser, offline). With a
    ``roofline``: its estimated latency, and intensity / bound / time per module. With
    ``compression`` (a CompressionView): its columns per module and its totals.
    ``units`` / ``precision``: of every count shown (as in the tree; the sortable cells
    keep the exact values)."""
    from .speed import seconds

    def n(value: float) -> str:
        return u.scaled(value, units, precision).strip()

    label = FLOPS_LABEL[convention]
    total = report.flops_as(convention)
    totals = [
        ("params", n(report.params)),
        ("MACs", n(report.macs)),
        (label, n(total)),
        ("batch", str(report.batch_size)),
        *([("counted", run_note(report).strip(" ()"))] if run_note(report) else []),
        ("memory traffic", u.nbytes(report.bytes_read + report.bytes_written, precision)),
        ("peak activations", u.nbytes(report.peak_activation_bytes, precision)),
    ]
    if roofline is not None:
        totals.append((f"est. latency on {roofline.hardware.name}", seconds(roofline.latency)))
    viewed = compression.by_module() if compression is not None else None
    body_rows = []
    for order, m in enumerate(report.modules.values()):
        value = convention_value(m.total, convention)
        toggle = '<span class="toggle">&#9660;</span>' if m.children else '<span class="toggle"></span>'
        indent = "&nbsp;" * 4 * m.depth
        share = 100.0 * value / total if total else 0.0
        body_rows.append(
            f'<tr data-name="{html.escape(m.name)}" data-order="{order}" data-collapsed="0">'
            f'<td class="name" data-value="{order}">{indent}{toggle}{html.escape(m.name or "(model)")}</td>'
            f'<td class="type">{html.escape(m.type)}</td>'
            f'<td data-value="{m.calls}">{m.calls}</td>'
            f'<td data-value="{m.params}">{n(m.params)}</td>'
            f'<td data-value="{m.total.macs}">{n(m.total.macs)}</td>'
            f'<td data-value="{value}">{n(value)}</td>'
            f'<td data-value="{share:.4f}"><span class="bar" style="width:{int(share)}px"></span> {share:.{precision}f}%</td>'
            f'<td data-value="{m.total.bytes}">{u.nbytes(m.total.bytes, precision)}</td>'
            + (_roofline_cells(roofline.rows[m.name], seconds) if roofline is not None else "")
            + (_view_cells(viewed[m.name], units, precision) if viewed is not None else "")
            + "</tr>"
        )
    warnings = "".join(
        f'<div class="warn">{html.escape(op.op)} has no formula: ran {op.calls}x, not counted '
        f"(inputs {html.escape('; '.join(op.shapes))})</div>"
        for op in report.unsupported.values()
    )
    data = json.dumps(report.to_dict()).replace("</", "<\\/")
    charts = (
        _bars(f"{label} per layer (top {top})", leaf_rows(report, convention, top), units, precision)
        + _bars(
            f"params per layer (top {top})", leaf_rows(report, convention, top, "params"), units, precision
        )
        + _bars(f"{label} by operator", operator_rows(report, convention), units, precision)
    )
    from .speed import intensity_label

    roof_head = (
        f"<th>{intensity_label(roofline)}</th><th>bound</th><th>est. time</th>"
        if roofline is not None
        else ""
    )
    if viewed is not None:
        from .compression import module_header

        roof_head += "".join(f"<th>{html.escape(h)}</th>" for h in module_header(compression))
    view_html = _view_section(compression, units, precision) if compression is not None else ""
    totals_html = "".join(
        f'<div class="total">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in totals
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>flopmeter: {html.escape(report.model_name)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(report.model_name)}</h1>
<div id="totals" class="totals">{totals_html}</div>
{warnings}
<div class="charts">{charts}</div>
{view_html}
<table id="modules"><thead><tr><th class="name">module</th><th class="name">type</th><th>calls</th>
<th>params</th><th>MACs</th><th>{html.escape(label)}</th><th>% {html.escape(label)}</th><th>bytes</th>{roof_head}</tr></thead>
<tbody>
{chr(10).join(body_rows)}
</tbody></table>
<p id="status">loading</p>
<script type="application/json" id="report-data">{data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
