"""Plain-text renderings: the ptflops-style module tree, the summary, the op table."""

from __future__ import annotations

from typing import Any

from ..report import ModuleStats, Report, convention_value
from . import units as u

FLOPS_LABEL = {"exact": "FLOPs", "2mac": "FLOPs(2MAC)", "mac": "FLOPs(MAC)", "ptflops": "MAC(ptflops)"}
FLOPS_LABEL["onnx-tool"] = "MAC(onnx-tool)"


def summary_lines(
    report: Report, convention: str = "exact", units: str = "auto", precision: int = 2, warnings: bool = True
) -> list[str]:
    """Totals, batch and per-sample values, and (with ``warnings``) a warning line per
    unsupported op; the renderers below put those warnings under the report instead."""
    label = FLOPS_LABEL[convention]
    flops = report.flops_as(convention)
    lines = [
        f"{report.model_name}: {u.count(report.params, 'params', units, precision)}"
        f" ({u.count(report.trainable_params, 'trainable', units, precision)}),"
        f" {u.count(report.macs, 'MACs', units, precision)}, {u.count(flops, label, units, precision)}"
        f" for batch {report.batch_size}{run_note(report)}",
    ]
    if report.batch_size != 1:
        per = report.per_sample(convention)
        lines.append(
            f"  per sample: {u.count(per['macs'], 'MACs', units, precision)},"
            f" {u.count(per['flops'], label, units, precision)}"
        )
    if report.did_backward:
        lines.append(
            f"  forward {u.count(convention_value(report.forward, convention), label, units, precision)},"
            f" backward {u.count(convention_value(report.backward_cost, convention), label, units, precision)}"
        )
    if warnings:
        lines.extend(unsupported_lines(report))
    from .onnx_notes import onnx_lines

    lines.extend(onnx_lines(report))
    return lines


def run_note(report: Report) -> str:
    """What the counts are of, after the totals: " (forward + backward)" for a backward
    profile, " (train mode)" for a forward in train mode (batch-norm statistics, dropout:
    other counts than eval's), "" for an eval forward."""
    if report.did_backward:
        return " (forward + backward)"
    return " (train mode)" if report.training else ""


def unsupported_lines(report: Report) -> list[str]:
    """One warning per op without a formula: calls, input shapes, the modules it ran in."""
    lines = []
    for op in report.unsupported.values():
        where = ", ".join(f"'{m}'" if m else "(root)" for m in op.modules[:3])
        more = f" and {len(op.modules) - 3} more" if len(op.modules) > 3 else ""
        lines.append(
            f"  WARNING: {op.op} has no formula: ran {op.calls}x, not in the totals;"
            f" inputs {'; '.join(op.shapes)}; in module {where}{more}"
        )
    return lines


def unsupported_note(report: Report) -> str:
    """A one-line note for stderr when a machine format carries unsupported ops as rows."""
    if not report.unsupported:
        return ""
    names = ", ".join(f"{op.op} ({op.calls}x)" for op in report.unsupported.values())
    return f"flopmeter: warning: not counted, no formula: {names}; the totals are lower bounds"


def select_modules(
    report: Report,
    *,
    depth: int | None = None,
    top: int | None = None,
    sort: str | None = None,
    convention: str = "exact",
) -> list[ModuleStats]:
    """The module rows a table shows: those down to ``depth``, ordered by ``sort``.

    ``top`` keeps the N costliest of the *leaves* at that depth (modules none of whose
    shown children did work), ranked by ``sort`` (default "flops"): a container's cost
    holds its children's, so listing it would count the same work twice (what it does in
    its own forward, ``unranked_line`` says under the table).
    """
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"depth must be None (all modules) or an int >= 0 (0: the root only), got {depth!r}")
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1, or None for all rows; got {top}")
    rows = [m for m in report.modules.values() if depth is None or m.depth <= depth]
    if top is None:
        return sort_modules(rows, sort, convention)
    return sort_modules(_leaves(report, rows, depth), sort or "flops", convention)[:top]


def _leaves(report: Report, rows: list[ModuleStats], depth: int | None) -> list[ModuleStats]:
    """The ``rows`` none of whose shown children did work. A child never called (a quantized
    Linear's packed-params holder) does none of its parent's work; one never called whose own
    children are (an nn.ModuleList of layers) does."""
    modules, working = report.modules, working_modules(report)
    return [
        m
        for m in rows
        if not any((depth is None or modules[c].depth <= depth) and c in working for c in m.children)
    ]


def unranked_line(
    report: Report, depth: int | None, convention: str = "exact", units: str = "auto", precision: int = 2
) -> str:
    """Under a ``top`` table: the work containers do in their own forward (attention's score
    matmuls in a module holding its q/k/v Linears), which no leaf holds and the ranking
    leaves out; "" when there is none."""
    rows = [m for m in report.modules.values() if depth is None or m.depth <= depth]
    leaves = {m.name for m in _leaves(report, rows, depth)}
    own = [(convention_value(m.own, convention), m) for m in rows if m.name not in leaves]
    total = sum(value for value, _ in own)
    if not total:
        return ""
    _, most = max(own, key=lambda pair: pair[0])
    label = FLOPS_LABEL[convention]
    return (
        f"not ranked: {u.count(total, label, units, precision)} ({u.percent(total, report.flops_as(convention), precision)})"
        f" done by container modules in their own forward, the most in '{most.name or '(root)'}' ({most.type});"
        " the tree and --by op show it"
    )


def working_modules(report: Report) -> set[str]:
    """The modules that did work: those called, and those holding one that was (an
    ``nn.ModuleList`` is never called, but its layers are, and its total is theirs)."""
    working: set[str] = set()
    for name, stats in report.modules.items():
        if stats.calls:
            parts = name.split(".") if name else []
            working.update(".".join(parts[:i]) for i in range(len(parts) + 1))
    return working


def module_cells(
    stats: ModuleStats, report: Report, convention: str, units: str, precision: int
) -> list[str]:
    """params, % params, MACs, % MACs, FLOPs of one module (inclusive of its children)."""
    return [
        u.count(stats.params, "params", units, precision),
        u.percent(stats.params, report.params, precision) + " params",
        u.count(stats.total.macs, "MACs", units, precision),
        u.percent(stats.total.macs, report.macs, precision) + " MACs",
        u.count(convention_value(stats.total, convention), FLOPS_LABEL[convention], units, precision),
    ]


def render_tree(
    report: Report,
    *,
    depth: int | None = None,
    convention: str = "exact",
    units: str = "auto",
    precision: int = 2,
    fold: bool = False,
    compression: Any = None,
) -> str:
    """The model as a tree, each module with params, % params, MACs, % MACs, FLOPs
    (the seed article's ptflops layout plus a FLOPs column). ``depth`` limits nesting;
    ``fold`` shows a run of identical sibling blocks (same type, settings, params and
    cost, all the way down) once, with a line saying how many more there are.
    ``compression``: a CompressionView whose key columns (nonzero, sparsity,
    structure, bits, effective MACs) join each module's line, its totals below."""
    lines = summary_lines(report, convention, units, precision, warnings=False)
    modules = report.modules
    viewed = compression.by_module() if compression is not None else {}
    forward_only = compression is not None and compression.of_backward_profile
    prints: dict[str, tuple] = {}

    def fingerprint(name: str) -> tuple:
        if name not in prints:
            m = modules[name]
            prints[name] = (
                m.type,
                m.extra_repr,
                m.params,
                m.total,
                tuple(fingerprint(c) for c in m.children),
                _view_print(viewed.get(name)),
            )
        return prints[name]

    def runs(children: list[str]) -> list[tuple[str, int]]:
        """(first child, how many identical ones follow it) for each run of siblings."""
        grouped: list[tuple[str, int]] = []
        for child in children:
            if fold and grouped and fingerprint(grouped[-1][0]) == fingerprint(child):
                grouped[-1] = (grouped[-1][0], grouped[-1][1] + 1)
            else:
                grouped.append((child, 0))
        return grouped

    def walk(name: str, indent: int, label: str) -> None:
        stats = modules[name]
        cells = ", ".join(
            module_cells(stats, report, convention, units, precision)
            + _view_cells(viewed, name, units, precision, forward_only)
        )
        extra = f", {one_line(stats.extra_repr)}" if stats.extra_repr else ""
        calls = f", called {stats.calls}x" if stats.calls > 1 else ""
        if stats.shared_with:  # a shared module's further name: its params are counted at the first
            calls += f", shared with {stats.shared_with}"
        pad = "  " * indent
        shown = [c for c in stats.children if depth is None or modules[c].depth <= depth]
        if not shown:
            lines.append(f"{pad}{label}{stats.type}({cells}{calls}{extra})")
            return
        lines.append(f"{pad}{label}{stats.type}(")
        lines.append(f"{pad}  {cells}{calls}{extra}")
        for child, repeats in runs(shown):
            walk(child, indent + 1, f"({child.rsplit('.', 1)[-1]}): ")
            if repeats:
                lines.append(
                    f"{pad}    ... {repeats} more identical {modules[child].type} folded (--no-fold shows them)"
                )
        lines.append(f"{pad})")

    walk("", 0, "")
    return "\n".join(lines + _view_totals(compression, units, precision) + unsupported_lines(report))


def _view_print(summary: Any) -> tuple:
    """What must match for two sibling blocks to fold with the compression view shown."""
    return () if summary is None else tuple(vars(summary).values())[1:]


def _view_cells(
    viewed: dict[str, Any], name: str, units: str, precision: int, forward_only: bool = False
) -> list[str]:
    if name not in viewed:
        return []
    from .compression import tree_cells

    return tree_cells(viewed[name], units, precision, forward_only)


def _view_totals(compression: Any, units: str, precision: int) -> list[str]:
    if compression is None:
        return []
    from .compression import view_summary_lines

    return ["", *view_summary_lines(compression, precision, units)]


def render_table(
    report: Report,
    *,
    depth: int | None = None,
    convention: str = "exact",
    units: str = "auto",
    precision: int = 2,
    sort: str | None = None,
    top: int | None = None,
    compression: Any = None,
) -> str:
    """One row per module: name, type, calls, params, MACs, FLOPs, bytes, % of FLOPs.
    Rows as ``select_modules`` picks them (``top``: the costliest leaves).
    ``compression``: a CompressionView whose columns (render/compression.py
    ``MODULE_HEADER``) follow, inclusive of children, its totals below."""
    rows = select_modules(report, depth=depth, top=top, sort=sort, convention=convention)
    indent = sort is None and top is None
    total = report.flops_as(convention)
    header = [
        "module",
        "type",
        "calls",
        "params",
        "MACs",
        FLOPS_LABEL[convention],
        "% " + FLOPS_LABEL[convention],
        "bytes",
    ]
    body = [
        [
            ("  " * m.depth if indent else "") + (m.name or "(root)"),
            m.type,
            str(m.calls),
            u.scaled(m.params, units, precision).strip(),
            u.scaled(m.total.macs, units, precision).strip(),
            u.scaled(convention_value(m.total, convention), units, precision).strip(),
            u.percent(convention_value(m.total, convention), total, precision),
            u.nbytes(m.total.bytes, precision),
        ]
        for m in rows
    ]
    if compression is not None:
        from .compression import module_cells as view_cells
        from .compression import module_header

        viewed = compression.by_module()
        header += module_header(compression)
        body = [row + view_cells(viewed[m.name], units, precision) for row, m in zip(body, rows, strict=True)]
    unranked = unranked_line(report, depth, convention, units, precision) if top is not None else ""
    return "\n".join(
        summary_lines(report, convention, units, precision, warnings=False)
        + [""]
        + grid(header, body)
        + ([unranked] if unranked else [])
        + _view_totals(compression, units, precision)
        + unsupported_lines(report)
    )


def sort_modules(rows: list[ModuleStats], sort: str | None, convention: str) -> list[ModuleStats]:
    """Order rows by "flops", "macs", "params", "bytes" or "name"; None keeps model order."""
    keys = {
        "flops": lambda m: -convention_value(m.total, convention),
        "macs": lambda m: -m.total.macs,
        "params": lambda m: -m.params,
        "bytes": lambda m: -m.total.bytes,
        "name": lambda m: m.name,
    }
    if sort is None:
        return rows
    if sort not in keys:
        raise ValueError(f"unknown sort key {sort!r}; expected one of {', '.join(keys)}")
    return sorted(rows, key=keys[sort])


def render_operators(
    report: Report,
    *,
    convention: str = "exact",
    units: str = "auto",
    precision: int = 2,
    top: int | None = None,
) -> str:
    """One row per aten op: calls, MACs, FLOPs, % of FLOPs, bytes; unsupported ops flagged."""
    total = report.flops_as(convention)
    ops = list(report.by_operator().values())
    ops.sort(key=lambda o: -convention_value(o.cost, convention))
    if top is not None:
        ops = ops[:top]
    header = [
        "operator",
        "kind",
        "calls",
        "MACs",
        FLOPS_LABEL[convention],
        "% " + FLOPS_LABEL[convention],
        "bytes",
    ]
    body = [
        [
            o.op,
            o.kind,
            str(o.calls),
            u.scaled(o.cost.macs, units, precision).strip(),
            u.scaled(convention_value(o.cost, convention), units, precision).strip(),
            u.percent(convention_value(o.cost, convention), total, precision),
            u.nbytes(o.cost.bytes, precision),
        ]
        for o in ops
    ]
    body += [[op.op, "UNSUPPORTED", str(op.calls), "?", "?", "?", "?"] for op in report.unsupported.values()]
    return "\n".join(
        summary_lines(report, convention, units, precision, warnings=False)
        + [""]
        + grid(header, body)
        + unsupported_lines(report)
    )


def grid(header: list[str], body: list[list[str]], left: int = 2) -> list[str]:
    """Left-align the first ``left`` columns (a name and a type), right-align the rest."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in body)]


def one_line(extra_repr: str) -> str:
    """A module's ``extra_repr`` on one line of the tree: ``nn.ParameterDict`` and
    ``nn.ParameterList`` (a NAS model's architecture weights) write one line per entry."""
    return ", ".join(part.strip() for part in extra_repr.splitlines() if part.strip())
