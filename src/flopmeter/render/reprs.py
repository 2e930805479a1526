"""Short ``repr()`` strings of the objects the public API returns: one line each, with
the few numbers a user looks for (what a notebook cell or the REPL shows). The whole
data stays in the fields, ``to_dict()`` and ``print(report)``."""

from __future__ import annotations

import html
from typing import Any

from . import units as u
from .speed import seconds

# Every repr ends with ">"; a name longer than this is cut, so a repr stays one short line.
MAX_NAME = 60


def _name(text: str) -> str:
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 3] + "..."


def _module(name: str) -> str:
    return "(model)" if name == "" else repr(_name(name))


def _calls(calls: int) -> str:
    return f"{calls:,} call" + ("" if calls == 1 else "s")


def _work(macs: int, flops: int) -> str:
    return f"{u.count(macs, 'MACs')}, {u.count(flops, 'FLOPs')}"


def report_repr(report: Any) -> str:
    """``<Report ResNet: 11.69 M params, 1.81 GMACs, 3.64 GFLOPs, batch 1; 68 modules;
    print(report) for the per-layer tree>``: totals of the whole call (exact FLOPs)."""
    from .text import run_note

    unsupported = sum(op.calls for op in report.unsupported.values())
    missing = f", {_calls(unsupported)} of {len(report.unsupported)} op(s) not counted" if unsupported else ""
    return (
        f"<Report {_name(report.model_name)}: {u.count(report.params, 'params')}, "
        f"{_work(report.macs, report.flops)}, batch {report.batch_size}{run_note(report)}{missing}; "
        f"{len(report.modules)} modules; print(report) for the per-layer tree>"
    )


def module_repr(module: Any) -> str:
    """``<ModuleStats 'layer1' Sequential: 147.97 K params, 462.42 MMACs, 926.85 MFLOPs,
    1 call>``: the module's totals, children included."""
    shared = f", shared with {module.shared_with!r}" if module.shared_with else ""
    return (
        f"<ModuleStats {_module(module.name)} {_name(module.type)}: {u.count(module.params, 'params')}, "
        f"{_work(module.total.macs, module.total.flops)}, {_calls(module.calls)}{shared}>"
    )


def operator_repr(operator: Any) -> str:
    """``<OperatorStats aten.convolution (counted): 20 calls, 1.81 GMACs, 3.62 GFLOPs,
    59.77 MiB moved>``."""
    backward = f" (+{operator.backward_calls:,} backward)" if operator.backward_calls else ""
    return (
        f"<OperatorStats {_name(operator.op)} ({operator.kind}): {_calls(operator.calls)}{backward}, "
        f"{_work(operator.cost.macs, operator.cost.flops)}, {u.nbytes(operator.cost.bytes)} moved>"
    )


def unsupported_repr(op: Any) -> str:
    """``<UnsupportedOp aten.foo: 3 calls, not counted; inputs (2, 3); in 'a', 'b'>``."""
    parts = [f"{_calls(op.calls)}, not counted"]
    if op.shapes:
        parts.append(f"inputs {op.shapes[0]}" + _more(op.shapes, 1))
    if op.modules:
        parts.append("in " + ", ".join(_module(m) for m in op.modules[:3]) + _more(op.modules, 3))
    return f"<UnsupportedOp {_name(op.op)}: {'; '.join(parts)}>"


def _more(items: list[str], shown: int) -> str:
    return f" and {len(items) - shown} more" if len(items) > shown else ""


def roofline_row_repr(row: Any) -> str:
    """``<RooflineRow 'layer1' Sequential: 926.85 MFLOPs, 12.31 MiB, 75.2 FLOP/B,
    compute-bound, est. 123.000 us>``."""
    intensity = f"{row.intensity:.1f} FLOP/B" if row.bytes else "no bytes"
    bound = f"{row.bound}-bound" if row.bound != "-" else "no work"
    return (
        f"<RooflineRow {_module(row.name)} {_name(row.type)}: {u.count(row.flops, 'FLOPs')}, "
        f"{u.nbytes(row.bytes)}, {intensity}, {bound}, est. {seconds(row.time)}>"
    )


def roofline_repr(roofline: Any) -> str:
    """``<Roofline on a100-sxm-80gb: est. latency 869.000 us (calibrated), bound
    213.000 us (compute-bound), batch 1; .rows per module>``."""
    total = roofline.total
    return (
        f"<Roofline on {_name(roofline.hardware.name)}: est. latency {seconds(roofline.latency)} "
        f"({roofline.model}), bound {seconds(roofline.bound_latency)} ({total.bound}-bound), "
        f"batch {roofline.batch_size}; {len(roofline.rows)} modules in .rows>"
    )


def hardware_repr(hw: Any) -> str:
    """``<Hardware a100-sxm-80gb: 19.50 TFLOP/s float32, 312.00 TFLOP/s bfloat16,
    2.04 TB/s; NVIDIA A100 SXM4 80GB>``."""
    if isinstance(hw.peak_flops, dict):
        shown = [d for d in ("float32", "bfloat16") if d in hw.peak_flops] or list(hw.peak_flops)[:1]
        peaks = ", ".join(f"{u.scaled(hw.peak_flops[d])}FLOP/s {d}" for d in shown)
    else:
        peaks = f"{u.scaled(hw.peak_flops)}FLOP/s"
    about = f"; {_name(hw.description)}" if hw.description else ""
    return f"<Hardware {_name(hw.name)}: {peaks}, {u.scaled(hw.bandwidth)}B/s{about}>"


def timing_repr(timing: Any) -> str:
    """``<Timing batch 1 on cpu: median 3.210 ms over 10 runs (2 warmup)>``, and the
    prediction when a hardware was given."""
    predicted = (
        f"; predicted {seconds(timing.predicted)} (measured/predicted {timing.ratio:.2f})"
        if timing.predicted is not None and timing.ratio is not None
        else ""
    )
    median = seconds(timing.median) if timing.times else "-"
    return (
        f"<Timing batch {timing.batch_size} on {timing.device}: median {median} "
        f"over {len(timing.times)} runs ({timing.warmup} warmup){predicted}>"
    )


def compression_repr(view: Any) -> str:
    """``<CompressionView: 11.69 M params, nonzero 11.69 M (sparsity 0.00%), MACs dense
    1.81 G, effective 1.81 G, bytes actual 44.59 MiB; 21 layers>``."""

    def n(value: int | None) -> str:
        return "unknown" if value is None else u.scaled(value).strip()

    sparsity = "" if view.sparsity is None else f" (sparsity {100 * view.sparsity:.2f}%)"
    return (
        f"<CompressionView: {n(view.params)} params, nonzero {n(view.nonzero_params)}{sparsity}, "
        f"MACs dense {n(view.macs_dense)}, effective {n(view.macs_effective)}, "
        f"bytes actual {u.nbytes(view.bytes_actual)}; {len(view.layers)} layers>"
    )


def comparison_repr(comparison: Any) -> str:
    """``<Comparison 'ResNet' -> 'ResNet': params 11.69 M -> 5.85 M, MACs effective
    1.81 G -> 0.91 G, est. speedup 1.95x on a100-sxm-80gb; 21 layers; print() for the per-layer table>``."""
    before, after = comparison.before, comparison.after
    measured = (
        f", measured {comparison.measured_speedup:.2f}x" if comparison.measured_speedup is not None else ""
    )
    return (
        f"<Comparison {_name(comparison.before_name)!r} -> {_name(comparison.after_name)!r}: "
        f"params {u.scaled(before.params).strip()} -> {u.scaled(after.params).strip()}, "
        f"MACs effective {u.scaled(before.macs_effective).strip()} -> {u.scaled(after.macs_effective).strip()}, "
        f"est. speedup {comparison.speedup_estimate:.2f}x on {comparison.hardware}{measured}; "
        f"{len(comparison.layers)} layers; print() for the per-layer table>"
    )


def llm_cost_repr(cost: Any) -> str:
    """``<LLMCost LlamaForCausalLM: prompt 2048, generate 256, batch 1, 6.74 G params;
    print(cost) for the report>``. Traces nothing (a repr must be cheap)."""
    return (
        f"<LLMCost {_name(cost.lm.name)}: prompt {cost.prompt:,}, generate {cost.generate:,}, "
        f"batch {cost.batch}, {u.count(cost.lm.params.total, 'params')}; print(cost) for the report>"
    )


def language_model_repr(lm: Any) -> str:
    """``<LanguageModel LlamaForCausalLM: 32 layers, hidden 4096, 32 heads (32 KV), vocab
    32000; 6.74 G params, N_mm 6.61 G>``: its shape facts, not the model it holds."""
    return (
        f"<LanguageModel {_name(lm.name)}: {lm.layers:,} layers, hidden {lm.hidden:,}, {lm.heads} heads "
        f"({lm.kv_heads} KV), vocab {lm.vocab:,}; {u.count(lm.params.total, 'params')}, "
        f"N_mm {u.count(lm.params.matmul, '').strip()}>"
    )


def phase_repr(phase: Any) -> str:
    """``<Phase prefill: 2048 tokens after 0 cached, batch 1: 14.36 TMACs, 28.73
    TFLOPs(2MAC); .report for the per-layer tree>``."""
    return (
        f"<Phase {phase.kind}: {phase.tokens:,} token(s) after {phase.context:,} cached, batch {phase.batch}: "
        f"{u.count(phase.macs, 'MACs')}, {u.count(phase.flops_2mac, 'FLOPs(2MAC)')}; .report for the per-layer tree>"
    )


def serving_repr(serving: Any) -> str:
    """``<Serving on h100-sxm: batch 1, prompt 2048, generate 256: TTFT 12.000 ms, TPOT
    4.000 ms, 240.0 tokens/s>``."""
    return (
        f"<Serving on {_name(serving.hardware.name)}: batch {serving.batch}, prompt {serving.prompt:,}, "
        f"generate {serving.generate:,}: TTFT {seconds(serving.ttft)}, TPOT {seconds(serving.tpot)}, "
        + (f"{serving.tokens_per_second:,.1f} tokens/s>" if serving.total_seconds > 0 else "no time>")
    )


def training_repr(step: Any) -> str:
    """``<TrainingStep LlamaForCausalLM: batch 8 x 4096 tokens: model 1230.00 TFLOPs
    (2 x MACs), hardware 1640.00 TFLOPs; print(step) for every convention>``: the hardware
    FLOPs add the recompute's forward (2 x MACs) and AdamW's 16 per parameter when asked."""
    return (
        f"<TrainingStep {_name(step.lm.name)}: batch {step.batch} x {step.tokens:,} tokens: "
        f"model {u.count(step.model_flops, 'FLOPs')} (2 x MACs), hardware {u.count(step.hardware_flops, 'FLOPs')}; "
        "print(step) for every convention>"
    )


# The notebook table: the modules down to depth 1, or deeper while that shows fewer than
# HTML_MIN_ROWS (a wrapper such as LlamaForCausalLM -> model, lm_head); at most HTML_ROWS.
HTML_MIN_ROWS = 8
HTML_ROWS = 40


def html_depth(report: Any) -> int:
    """The depth the notebook table goes down to (see HTML_MIN_ROWS)."""
    return _depth_for([m.depth for m in report.modules.values()])


def _depth_for(depths: list[int]) -> int:
    depth = 1
    while depth < max(depths, default=0) and sum(d <= depth for d in depths) < HTML_MIN_ROWS:
        depth += 1
    return depth


def report_html(report: Any) -> str:
    """An HTML fragment for Jupyter (``Report._repr_html_``): the totals line and a table
    of the modules down to depth 1 (deeper for a wrapper, ``html_depth``: params, MACs,
    exact FLOPs, % of FLOPs, bytes), and the ops not counted. No <html>, <style> or <script>: a notebook's output (and GitHub's
    view of it) shows it as it is; ``report.to_html()`` is the whole interactive page."""
    from .text import summary_lines

    e = html.escape
    depth = html_depth(report)
    rows = [m for m in report.modules.values() if m.depth <= depth]
    more = len(rows) - HTML_ROWS
    total = report.flops
    cells = "".join(
        "<tr>"
        f'<td style="text-align:left">{"&nbsp;" * 4 * m.depth}{e(m.name or "(model)")}</td>'
        f'<td style="text-align:left">{e(m.type)}</td>'
        f"<td>{u.scaled(m.params).strip()}</td><td>{u.scaled(m.total.macs).strip()}</td>"
        f"<td>{u.scaled(m.total.flops).strip()}</td><td>{u.percent(m.total.flops, total)}</td>"
        f"<td>{u.nbytes(m.total.bytes)}</td>"
        "</tr>"
        for m in rows[:HTML_ROWS]
    )
    head = (
        '<th style="text-align:left">module</th><th style="text-align:left">type</th>'
        "<th>params</th><th>MACs</th><th>FLOPs</th><th>% FLOPs</th><th>bytes</th>"
    )
    footer = "<code>print(report)</code>: every module; <code>report.to_html()</code>: the interactive page"
    return _fragment("flopmeter-report", summary_lines(report), head, cells, more, footer)


def _fragment(css_class: str, lines: list[str], head: str, cells: str, more: int, footer: str) -> str:
    """A notebook fragment: ``lines[0]`` in bold, the other lines, a table (``head`` cells,
    ``cells`` rows), how many rows were left out (``more`` > 0) and a ``footer`` of HTML."""
    e = html.escape
    notes = "".join(f"<div>{e(line.strip())}</div>" for line in lines[1:])
    hidden = f"<div>{more} more module(s) not shown</div>" if more > 0 else ""
    return (
        f'<div class="{css_class}"><div><b>{e(lines[0])}</b></div>{notes}'
        f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>{hidden}"
        f"<div>{footer}</div></div>"
    )


def roofline_html(roofline: Any) -> str:
    """An HTML fragment for Jupyter (``Roofline._repr_html_``), the same kind as
    ``report_html``: the hardware line (peak, bandwidth, ridge) and the estimate, then the
    roofline table (the CLI's ``--roofline`` columns) of the modules down to depth 1,
    deeper for a wrapper as ``html_depth``, at most ``HTML_ROWS``."""
    from .speed import roofline_head, roofline_table

    e = html.escape
    depth = _depth_for([r.depth for r in roofline.rows.values()])
    rows = [r for r in roofline.rows.values() if r.depth <= depth]
    more = len(rows) - HTML_ROWS
    header, body = roofline_table(roofline, rows[:HTML_ROWS], indent=False)
    left = ("module", "type", "bound", "limit")
    head = "".join(
        f'<th style="text-align:left">{e(h)}</th>' if h in left else f"<th>{e(h)}</th>" for h in header
    )
    cells = "".join(
        "<tr>"
        + "".join(
            f'<td style="text-align:left">{"&nbsp;" * 4 * r.depth if h == "module" else ""}{e(c)}</td>'
            if h in left
            else f"<td>{e(c)}</td>"
            for h, c in zip(header, row, strict=True)
        )
        + "</tr>"
        for r, row in zip(rows, body, strict=False)
    )
    first, *rest = roofline_head(roofline)
    footer = (
        "<code>.rows[name]</code>: every module's numbers; <code>.latency</code>, "
        "<code>.bound_latency</code>: the whole call"
    )
    return _fragment("flopmeter-roofline", [first[0].upper() + first[1:], *rest], head, cells, more, footer)
