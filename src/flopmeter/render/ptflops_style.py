"""The per-layer printout in ptflops' exact layout (for the drop-in function)."""

from __future__ import annotations

from ..report import Report


def macs_string(macs: float, units: str | None = None, precision: int = 2) -> str:
    """ptflops' MAC string: ``0.72 GMac``; units GMac, MMac, KMac or None (auto)."""
    scales = {"GMac": 10**9, "MMac": 10**6, "KMac": 10**3}
    if units is None:
        for name, scale in scales.items():
            if macs // scale > 0:
                return f"{round(macs / scale, precision)} {name}"
        return f"{int(macs)} Mac"
    if units in scales:
        return f"{round(macs / scales[units], precision)} {units}"
    return f"{int(macs)} Mac"


def params_string(params: int, units: str | None = None, precision: int = 2) -> str:
    """ptflops' params string: ``61.1 M``; units M, K, B or None (auto: M, k)."""
    if units is None:
        if params // 10**6 > 0:
            return f"{round(params / 10**6, precision)} M"
        if params // 10**3 > 0:
            return f"{round(params / 10**3, precision)} k"
        return str(params)
    scales = {"M": 10**6, "K": 10**3, "B": 10**9}
    if units in scales:
        return f"{round(params / scales[units], precision)} {units}"
    return str(params)


def render_ptflops_tree(
    report: Report,
    macs_by_module: dict[str, float],
    params_by_module: dict[str, int],
    *,
    flops_units: str | None = "GMac",
    param_units: str | None = "M",
    precision: int = 3,
) -> str:
    """``Name(params, % Params, MACs, % MACs, extra_repr)`` for every module, nested."""
    total_macs = macs_by_module.get("", 0) or 1
    total_params = params_by_module.get("", 0) or 1
    lines: list[str] = []

    def cells(name: str) -> str:
        params, macs = params_by_module[name], macs_by_module[name]
        return ", ".join(
            [
                params_string(params, param_units, precision),
                f"{params / total_params * 100:.3f}% Params",
                macs_string(macs, flops_units, precision),
                f"{macs / total_macs * 100:.3f}% MACs",
            ]
        )

    def walk(name: str, indent: int, label: str) -> None:
        stats = report.modules[name]
        pad = "  " * indent
        extra = f", {stats.extra_repr}" if stats.extra_repr else ""
        if not stats.children:
            lines.append(f"{pad}{label}{stats.type}({cells(name)}{extra})")
            return
        lines.append(f"{pad}{label}{stats.type}(")
        lines.append(f"{pad}  {cells(name)},{' ' + stats.extra_repr if stats.extra_repr else ''}")
        for child in stats.children:
            walk(child, indent + 1, f"({child.rsplit('.', 1)[-1]}): ")
        lines.append(f"{pad})")

    walk("", 0, "")
    return "\n".join(lines)
