"""Several Reports side by side: totals, ratios to the first, shared modules."""

from __future__ import annotations

from ..report import Report, convention_value
from . import units as u
from .text import FLOPS_LABEL, grid


def render_comparison(
    reports: list[Report], *, convention: str = "exact", units: str = "auto", precision: int = 2
) -> str:
    """Params, MACs, FLOPs per model, and the ratios a compression paper reports
    against the first model: compression (params ratio) and theoretical speedup
    (FLOPs ratio). Then, for modules present in every model (same qualified name,
    depth 1), their FLOPs side by side."""
    base = reports[0]
    label = FLOPS_LABEL[convention]
    header = ["model", "params", "MACs", label, "compression", "speedup"]
    body = []
    for report in reports:
        flops = report.flops_as(convention)
        body.append(
            [
                report.model_name,
                u.scaled(report.params, units, precision).strip(),
                u.scaled(report.macs, units, precision).strip(),
                u.scaled(flops, units, precision).strip(),
                f"{base.params / report.params:.{precision}f}x" if report.params else "-",
                f"{base.flops_as(convention) / flops:.{precision}f}x" if flops else "-",
            ]
        )
    lines = [
        f"compared to {base.model_name} (batch {base.batch_size}); ratios are first / this",
        "",
        *grid(header, body),
    ]
    shared = [
        name
        for name, stats in base.modules.items()
        if stats.depth == 1 and all(name in r.modules for r in reports[1:])
    ]
    if shared:
        lines += ["", f"shared modules ({label}):"]
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
        lines += grid(["module", "type", *(r.model_name for r in reports)], rows)
    for report in reports:
        for op in report.unsupported.values():
            lines.append(
                f"WARNING: {report.model_name}: {op.op} has no formula ({op.calls} calls, not counted)"
            )
    return "\n".join(lines)
