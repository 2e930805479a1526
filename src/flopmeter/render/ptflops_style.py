"""The per-layer printout of ptflops 0.7.5 (for the drop-in function), byte for byte.

ptflops prints ``repr(model)`` with each module's ``extra_repr`` replaced by
``params, % Params, MACs, % MACs, original extra_repr`` joined with ``", "`` (so a
module without settings ends in ``", "``), each value auto-scaled per row unless units
are given, at ``output_precision``. ``render_ptflops_tree`` rebuilds that text from the
Report with the same layout rules as ``torch.nn.Module.__repr__``.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..report import Report

MAC_SCALES = {"GMac": 10.0**9, "MMac": 10.0**6, "KMac": 10.0**3}
PARAM_SCALES = {"M": 10.0**6, "K": 10.0**3, "B": 10.0**9}


def macs_string(macs: float, units: str | None = None, precision: int = 2) -> str:
    """ptflops' MAC string: ``716.44 MMac``; units GMac, MMac, KMac or None (auto).
    Below 1 KMac (or with unknown units) the plain number: ``72.0 Mac``."""
    if units is None:
        for name, scale in MAC_SCALES.items():
            if macs // scale > 0:
                return f"{round(macs / scale, precision)} {name}"
    elif units in MAC_SCALES:
        return f"{round(macs / MAC_SCALES[units], precision)} {units}"
    return f"{macs} Mac"


def params_string(params: int, units: str | None = None, precision: int = 2) -> str:
    """ptflops' params string: ``61.1 M``; units M, K, B or None (auto: M, k, plain)."""
    if units is None:
        if params // 10**6 > 0:
            return f"{round(params / 10**6, precision)} M"
        if params // 10**3 > 0:
            return f"{round(params / 10**3, precision)} k"
        return str(params)
    if units in PARAM_SCALES:
        return f"{round(params / PARAM_SCALES[units], precision)} {units}"
    return str(params)


def render_ptflops_tree(
    report: Report,
    macs_by_module: dict[str, float],
    params_by_module: dict[str, int],
    *,
    flops_units: str | None = None,
    param_units: str | None = None,
    precision: int = 2,
) -> str:
    """``Name(params, % Params, MACs, % MACs, extra_repr)`` for every module, nested
    as ``repr(model)`` nests them. ``macs_by_module`` are per-sample ptflops MACs
    (floats, as ptflops divides by its batch counter)."""
    total_macs = max(macs_by_module.get("", 0.0), 1)
    total_params = max(params_by_module.get("", 0), 1)

    def cells(name: str) -> str:
        params, macs = params_by_module[name], float(macs_by_module[name])
        return ", ".join(
            [
                params_string(params, param_units, precision),
                f"{params / total_params:.3%} Params",
                macs_string(macs, flops_units, precision),
                f"{macs / total_macs:.3%} MACs",
                report.modules[name].extra_repr,
            ]
        )

    def node(name: str) -> str:
        stats = report.modules[name]
        own = cells(name).split("\n")
        children = [f"({child.rsplit('.', 1)[-1]}): {_indent(node(child), 2)}" for child in stats.children]
        if len(own) == 1 and not children:
            return f"{stats.type}({own[0]})"
        return f"{stats.type}(\n  " + "\n  ".join([*own, *children]) + "\n)"

    return node("")


def _indent(text: str, spaces: int) -> str:
    """Indent every line but the first (as torch's ``_addindent``)."""
    first, *rest = text.split("\n")
    return "\n".join([first, *(" " * spaces + line for line in rest)])


def zero_op_warnings(types: Iterable[str]) -> list[str]:
    """ptflops' ``verbose=True`` lines for module types that cost nothing."""
    return [f"Warning: module {name} is treated as a zero-op." for name in types]
