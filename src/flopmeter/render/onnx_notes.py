"""Sentences for an ONNX Report: how its count differs from the PyTorch model's."""

from __future__ import annotations

from ..report import Report


def onnx_lines(report: Report) -> list[str]:
    """Notes under the totals of a Report counted from an ONNX file (none otherwise)."""
    facts = report.options.get("onnx") if report.options.get("source") == "onnx" else None
    if not facts:
        return []
    diff = facts.get("differences", {})
    producer = facts.get("producer") or "an unnamed producer"
    source = f"dynamo ({producer})" if facts.get("exporter") == "dynamo" else producer
    lines = [f"  ONNX graph: {facts.get('nodes', 0)} nodes from {source}, opsets {facts.get('opsets')}"]
    if diff.get("folded_batch_norm"):
        lines.append(
            f"  NOTE: {diff['folded_batch_norm']} BatchNorm(s) folded into Convs by the exporter: MACs as in "
            "PyTorch; per BatchNorm, FLOPs lower by E + 5C and params by C if the PyTorch Conv had no bias, "
            "by 2E + 5C and 2C if it had one (E elements, C channels)"
        )
    if diff.get("dropped_bias"):
        lines.append(
            f"  NOTE: {diff['dropped_bias']} bias(es) of all zeros removed by the exporter's optimizer "
            "(a zero-initialised bias, or the bias an identity BatchNorm folds to, as in a model built "
            f"without weights): FLOPs lower by their {diff.get('dropped_bias_adds', 0):,} adds (one per output "
            f"element) and params by their {diff.get('dropped_bias_params', 0):,} elements; trained weights keep them"
        )
    if diff.get("fused_ops") or diff.get("contrib_ops"):
        lines.append(
            f"  NOTE: {diff.get('fused_ops', 0) + diff.get('contrib_ops', 0)} fused op(s) ({_fused_names(report)}) "
            "counted with the formulas of their PyTorch parts"
        )
    if diff.get("patterns"):
        lines.append(
            f"  NOTE: {diff['patterns']} decomposed op(s) folded back (attention, linear bias, rsqrt)"
        )
    if diff.get("constants"):
        lines.append(
            f"  NOTE: {diff['constants']} exporter constant(s) (shape tensors, scalars, masks, folded tables) "
            "are not counted as parameters"
        )
    unchecked = facts.get("unchecked_masks") or []
    if unchecked:
        lines.append(
            f"  NOTE: causal='needed': {len(unchecked)} attention mask(s) could not be read, so those "
            f"attentions are counted in full (as causal='full'): {unchecked[0]}"
        )
    lines += control_lines(facts.get("control_flow") or [])
    quantized = facts.get("quantized") or []
    if quantized:
        lines += _quantized_lines(quantized)
    return lines


def _fused_names(report: Report) -> str:
    """The fused ops this graph has, with their calls (``LayerNormalization x5, Gelu x2``),
    in the order the report lists them: the ops the NOTE's count is made of."""
    from ..onnx.notes import FUSED_OPS  # an ONNX report only: onnx/ is not imported for PyTorch's

    names = [
        f"{op.split('.', 1)[1] if op.startswith('onnx.') else op} x{stats.calls}"
        for op, stats in report.operators.items()
        if op in FUSED_OPS or op.startswith("com.microsoft.")
    ]
    return ", ".join(names) or "none listed"


def _quantized_lines(quantized: list[dict]) -> list[str]:
    """Integer contractions (QLinearConv, MatMulInteger, ...) apart from those the graph
    computes in float (QDQ pairs around a float Conv; MatMulNBits on a float activation)."""
    lines = []
    for integer, what in (
        (True, "integer MACs, not FLOPs"),
        (False, "MACs computed in float, counted as FLOPs"),
    ):
        group = [q for q in quantized if q.get("integer", True) == integer]
        if not group:
            continue
        bits = sorted({(q["weight_bits"], q["activation_bits"]) for q in group})
        kind = "QDQ / weight-only " if not integer else ""
        lines.append(
            f"  NOTE: {len(group)} {kind}quantized op(s) (weight/activation bits {bits}): "
            f"{sum(q['macs'] for q in group):,} {what}; see options.onnx.quantized in --format json"
        )
    return lines


MAX_CONTROL_NOTES = 5


def control_lines(flows: list[dict]) -> list[str]:
    """One NOTE per Loop / Scan / If: how often its body was counted, and why."""
    lines = []
    for flow in flows[:MAX_CONTROL_NOTES]:
        where = f"{flow['op']} {flow['node']!r} (module {flow['module'] or '(root)'})"
        if flow["op"] == "If" and flow["branch"] == "both":
            lines.append(
                f"  NOTE: {where}: condition not known before running; BOTH branches counted (an upper bound)"
            )
        elif flow["op"] == "If":
            lines.append(f"  NOTE: {where}: condition is constant; {flow['branch']} branch counted")
        else:
            bound = "; an upper bound: its body may end it early" if flow["upper_bound"] else ""
            lines.append(
                f"  NOTE: {where}: body counted {flow['trips']} times (trip count from {flow['source']}){bound}"
            )
    if len(flows) > MAX_CONTROL_NOTES:
        lines.append(
            f"  NOTE: ... and {len(flows) - MAX_CONTROL_NOTES} more Loop / Scan / If (options.onnx.control_flow)"
        )
    return lines
