"""Before vs after: what a compression bought, per matching module and in total.

Ratios: ``params_ratio``, ``nonzero_ratio``, ``size_ratio_*`` and ``bops_ratio`` are
after / before (0.5 = half as many); ``mac_speedup_*`` are before / after (2.0 = half
the MACs). A change is "structural" when a weight's shape changed (physically
removed channels), "in place" when only masks, values or bits changed.

The speedup estimate is a model, not a measurement, and every estimate carries its
reason (the baseline dtype and the peaks it used): the calibrated latency model of
flopmeter.roofline on ``hardware``, with the rules of ``speedup.py`` per layer
(structural: time ratio; unstructured: 1.0; 2:4: capped, guarded on small shapes;
W8A8: int8 peak vs the float baseline; weight-only: a fraction of the bytes gain).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..hardware import Hardware, get
from ..registry import BATCH_NORM_OPS
from . import speedup
from .speedup import BASELINES, MAX_2_4_SPEEDUP, MIN_ROWS_2_4, WEIGHT_ONLY_EFFICIENCY, Basis
from .view import CompressionView, LayerCompression

DEFAULT_HARDWARE = "a100-sxm-80gb"
DEFAULT_BASELINE = "auto"
__all__ = ["BASELINES", "MAX_2_4_SPEEDUP", "MIN_ROWS_2_4", "WEIGHT_ONLY_EFFICIENCY", "Comparison", "compare"]


@dataclass
class LayerChange:
    """One module in both models (or in one: ``change`` "removed" / "added")."""

    name: str
    type: str
    change: str
    before: LayerCompression | None
    after: LayerCompression | None
    speedup_estimate: float = 1.0
    estimate_reason: str = ""
    basis: Basis | None = None

    def _ratio(self, key: str, invert: bool = False) -> float | None:
        a = getattr(self.before, key, None) if self.before else None
        b = getattr(self.after, key, None) if self.after else None
        if a is None or b is None:
            return None
        if invert:
            return a / b if b else None
        return b / a if a else None

    @property
    def params_ratio(self) -> float | None:
        return self._ratio("params")

    @property
    def nonzero_ratio(self) -> float | None:
        return self._ratio("nonzero_params")

    @property
    def size_ratio_actual(self) -> float | None:
        return self._ratio("bytes_actual")

    @property
    def size_ratio_ideal(self) -> float | None:
        return self._ratio("bytes_ideal")

    @property
    def mac_speedup_dense(self) -> float | None:
        return self._ratio("macs_dense", invert=True)

    @property
    def mac_speedup_effective(self) -> float | None:
        return self._ratio("macs_effective", invert=True)

    @property
    def bops_ratio(self) -> float | None:
        return self._ratio("bops")


@dataclass
class Totals:
    """Model totals of one side."""

    params: int
    nonzero_params: int | None
    bytes_actual: int
    bytes_ideal: int
    macs_dense: int
    macs_effective: int
    bops: int


@dataclass
class Comparison:
    """``before`` vs ``after``: per matching module and in total."""

    before_name: str
    after_name: str
    layers: list[LayerChange]
    before: Totals
    after: Totals
    hardware: str
    speedup_estimate: float
    measured_speedup: float | None = None
    measured: dict[str, float] = field(default_factory=dict)  # median seconds per model
    warnings: list[str] = field(default_factory=list)
    baseline: str = DEFAULT_BASELINE
    basis: Basis | None = None  # the total's: both latencies, the baseline, the peaks
    estimate_reason: str = ""
    totals_only: bool = False  # rows(): the total row only (``-q``), still summing up every layer

    def __repr__(self) -> str:
        from ..render.reprs import comparison_repr

        return comparison_repr(self)

    def ratio(self, key: str, invert: bool = False) -> float | None:
        a, b = getattr(self.before, key), getattr(self.after, key)
        if a is None or b is None:
            return None
        if invert:
            return a / b if b else None
        return b / a if a else None

    def columns(self) -> list[str]:
        return COLUMNS

    def rows(self) -> list[dict[str, Any]]:
        """One dict per module and a last one for the total, the same columns each:
        what Markdown, JSON and CSV print."""
        rows = [] if self.totals_only else [_row(layer) for layer in self.layers]
        rows.append(
            {
                "module": "total",
                "type": "",
                "change": _total_change(self.layers),
                "params_before": self.before.params,
                "params_after": self.after.params,
                "params_ratio": self.ratio("params"),
                "nonzero_ratio": self.ratio("nonzero_params"),
                "size_ratio_actual": self.ratio("bytes_actual"),
                "size_ratio_ideal": self.ratio("bytes_ideal"),
                "mac_speedup_dense": self.ratio("macs_dense", invert=True),
                "mac_speedup_effective": self.ratio("macs_effective", invert=True),
                "bops_ratio": self.ratio("bops"),
                "speedup_estimate": self.speedup_estimate,
                "estimate_reason": self.estimate_reason,
                "measured_speedup": self.measured_speedup,
            }
        )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before_name,
            "after": self.after_name,
            "hardware": self.hardware,
            "baseline": self.baseline,
            "estimated_seconds": (
                {"before": self.basis.numbers["before"], "after": self.basis.numbers["after"]}
                if self.basis
                else {}
            ),
            "totals": {"before": asdict(self.before), "after": asdict(self.after)},
            "columns": COLUMNS,
            "rows": self.rows(),
            "measured_seconds": self.measured,
            "warnings": self.warnings,
        }

    def to_markdown(self, precision: int = 2) -> str:
        from ..render.compression import comparison_markdown

        return comparison_markdown(self, precision)

    def to_csv(self) -> str:
        from ..render.compression import comparison_csv

        return comparison_csv(self)

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent)

    def to_html(self) -> str:
        from ..render.compression import comparison_html

        return comparison_html(self)

    def plot(self, path: Any = None) -> Any:
        """Bars per module of the table's ratios (matplotlib); saved to ``path`` if given."""
        from ..render.compression import comparison_plot

        return comparison_plot(self, path)

    def __str__(self) -> str:
        from ..render.compression import comparison_text

        return comparison_text(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: the table as an HTML fragment (``to_html()`` is the whole page)."""
        from ..render.compression import comparison_fragment

        return comparison_fragment(self)


COLUMNS = [
    "module",
    "type",
    "change",
    "params_before",
    "params_after",
    "params_ratio",
    "nonzero_ratio",
    "size_ratio_actual",
    "size_ratio_ideal",
    "mac_speedup_dense",
    "mac_speedup_effective",
    "bops_ratio",
    "speedup_estimate",
    "estimate_reason",
    "measured_speedup",
]


def _row(layer: LayerChange) -> dict[str, Any]:
    return {
        "module": layer.name,
        "type": layer.type,
        "change": layer.change,
        "params_before": layer.before.params if layer.before else None,
        "params_after": layer.after.params if layer.after else None,
        "params_ratio": layer.params_ratio,
        "nonzero_ratio": layer.nonzero_ratio,
        "size_ratio_actual": layer.size_ratio_actual,
        "size_ratio_ideal": layer.size_ratio_ideal,
        "mac_speedup_dense": layer.mac_speedup_dense,
        "mac_speedup_effective": layer.mac_speedup_effective,
        "bops_ratio": layer.bops_ratio,
        # a module on one side only has nothing to be faster than
        "speedup_estimate": layer.speedup_estimate if layer.before and layer.after else None,
        "estimate_reason": layer.estimate_reason,
        "measured_speedup": None,
    }


def _total_change(layers: list[LayerChange]) -> str:
    kinds = {layer.change for layer in layers} - {"unchanged"}
    if not kinds:
        return "unchanged"
    return "structural" if kinds & {"structural", "removed", "added"} else "in place"


def _totals(view: CompressionView) -> Totals:
    return Totals(
        params=view.params,
        nonzero_params=view.nonzero_params,
        bytes_actual=view.bytes_actual,
        bytes_ideal=view.bytes_ideal,
        macs_dense=view.macs_dense,
        macs_effective=view.macs_effective,
        bops=view.bops,
    )


def _change(a: LayerCompression | None, b: LayerCompression | None, shapes: tuple[Any, Any]) -> str:
    if a is None:
        return "added"
    if b is None:
        return "removed"
    if shapes[0] != shapes[1] or a.macs_dense != b.macs_dense:
        return "structural"
    same = (
        a.weight_nonzero == b.weight_nonzero
        and a.weight_bits == b.weight_bits
        and a.act_bits == b.act_bits
        and a.representation == b.representation
    )
    return "unchanged" if same else "in place"


def _inputs(layer: LayerCompression, report: Any, name: str, kinds: dict[str, str]) -> speedup.Layer:
    stats = report.modules.get(name)
    return speedup.Layer(
        macs=layer.macs_dense,
        nbytes=stats.own.bytes if stats is not None else layer.bytes_actual,
        weight_bytes=layer.weight_bytes_actual,
        dtype=layer.compute_dtype,
        kind=kinds.get(name, "matmul"),
        act_bits=layer.act_bits,
        weight_bits=layer.weight_bits,
        weight_params=layer.weight_params,
        weight_bytes_ideal=layer.weight_bytes_ideal,
        structure=layer.structure,
        weight_nonzero=layer.weight_nonzero,
    )


def compare_views(
    before: Any,
    after: Any,
    *,
    hardware: Hardware | str | None = None,
    baseline: str = DEFAULT_BASELINE,
) -> Comparison:
    """Compare two Reports (with compression views): per module present in either,
    matched by qualified name, and in total. ``hardware`` and ``baseline``: see
    ``compare``."""
    from ..render.compression import estimate_reason

    speedup.check_baseline(baseline)
    hw = get(hardware or DEFAULT_HARDWARE) if not isinstance(hardware, Hardware) else hardware
    view_a, view_b = before.compression, after.compression
    if view_a is None or view_b is None:
        raise ValueError("compare needs Reports with a compression view (profiled by flopmeter.profile)")
    _check_same_run(before, after)
    for which, view in (("before", view_a), ("after", view_b)):
        view.require_nonzeros("compare", f"the {which} Report", ", or pass the models to compare")
    pairs = match_layers(list(view_a.layers), list(view_b.layers))
    changes: list[LayerChange] = []
    time_a = time_b = 0.0
    compared_a: set[str] = set()
    compared_b: set[str] = set()
    kinds_a, kinds_b = speedup.layer_kinds(before), speedup.layer_kinds(after)
    for name, name_b in pairs:
        a = view_a.layers.get(name) if name is not None else None
        b = view_b.layers.get(name_b) if name_b is not None else None
        name = name if name is not None else str(name_b)
        shapes = (_shapes(view_a, name), _shapes(view_b, name_b or ""))
        change = _change(a, b, shapes)
        either = a if a is not None else b
        layer = LayerChange(name, either.type if either is not None else "", change, a, b)
        if a is not None and b is not None and name_b is not None:
            estimate, layer.basis, t = speedup.estimate_layer(
                _inputs(a, before, name, kinds_a), _inputs(b, after, name_b, kinds_b), change, hw, baseline
            )
            layer.speedup_estimate = estimate
            compared_a.add(name)
            compared_b.add(name_b)
            time_a += t
            time_b += t / estimate if estimate else t
        else:
            layer.basis = Basis(change, hw.name)
        layer.estimate_reason = estimate_reason(layer.basis)
        changes.append(layer)
    work_a = time_a + speedup.rest_work(before, compared_a, hw, baseline)
    work_b = time_b + speedup.rest_work(after, compared_b, hw, baseline)
    overhead_a, overhead_b = speedup.overheads(before, hw), speedup.overheads(after, hw)
    seconds_a = speedup.latency(work_a, overhead_a, hw)
    seconds_b = speedup.latency(work_b, overhead_b, hw)
    total = seconds_a / seconds_b if seconds_b else 1.0
    base = speedup.run_dtype("float32", hw, baseline)
    total_basis = Basis(
        "total",
        hw.name,
        base,
        hw.peak(base),
        "int8",
        hw.peak("int8"),
        numbers={
            "before": seconds_a,
            "after": seconds_b,
            "work_before": work_a,
            "work_after": work_b,
            "overhead_before": overhead_a,
            "overhead_after": overhead_b,
            "overlap": float(hw.overlap),
            "peak_listed": float(speedup.lists_peak(hw, "int8")),
        },
    )
    warnings = [
        f"{r.model_name}: {op.op} has no formula ({op.calls} calls)"
        for r in (before, after)
        for op in r.unsupported.values()
    ]
    warnings += [
        f"{r.model_name}: unrecognised compressed weight {w}"
        for r in (before, after)
        for w in r.compression.unrecognised
    ]
    folded = _batch_norms(before) - _batch_norms(after)
    if folded > 0:
        warnings.append(
            f"{before.model_name} runs {folded} more batch norm(s) than {after.model_name}, which folded "
            "them into its convolutions (fuse_modules, prepare_fx): the speedup estimate and the params "
            "count the fold as the compression's; compare the fused float model "
            "(torch.ao.quantization.fuse_modules, quantize_fx.fuse_fx) for the compression alone"
        )
    if before.did_backward:  # and after: _check_same_run refused a mixed pair
        warnings.append(
            "both reports count forward + backward: the per-layer MAC, BOPs, size and nonzero "
            "ratios are the compression views', of the forward pass (docs/compression.md)"
        )
    same = before.model_name == after.model_name
    return Comparison(
        before_name=f"{before.model_name} (before)" if same else before.model_name,
        after_name=f"{after.model_name} (after)" if same else after.model_name,
        layers=changes,
        before=_totals(view_a),
        after=_totals(view_b),
        hardware=hw.name,
        speedup_estimate=total,
        warnings=warnings,
        baseline=baseline,
        basis=total_basis,
        estimate_reason=estimate_reason(total_basis),
    )


def _batch_norms(report: Any) -> int:
    """Batch norm calls the model ran (a float model's, before a fuse folds them away)."""
    return sum(stats.calls for op, stats in report.by_operator().items() if op in BATCH_NORM_OPS)


_BATCH_HINT = (
    " (the batch is the first input's leading dim: where that is not the batch, a sequence "
    "length say, give profile(..., batch_size=B) to both)"
)


def _check_same_run(before: Any, after: Any) -> None:
    """Ratios compare two models on one run: Reports of another batch size, of a training
    step against an inference, or in another train/eval mode are refused (ValueError). The
    batch is the first input's leading dim unless ``batch_size=`` was given (a sequence-first
    input's is its length), so the message names that way out."""
    for describe in (
        lambda r: f"batch {r.batch_size}",
        lambda r: "forward + backward" if r.did_backward else "forward",
        lambda r: "train mode" if r.training else "eval mode",
    ):
        first, second = describe(before), describe(after)
        if first != second:
            raise ValueError(
                f"compare needs two reports of the same run: the first is {first}, the second "
                f"{second}; profile both models with the same inputs and options"
                + (_BATCH_HINT if first.startswith("batch") else "")
            )


def match_layers(before: list[str], after: list[str]) -> list[tuple[str | None, str | None]]:
    """Pairs of module names, matched by qualified name; a fused module (torch.ao's
    ConvReLU2d holds its conv as ``name.0`` before conversion, ``name`` after) matches
    its first child, when that child is the only layer under ``name`` (a layer replaced by
    several, as a low-rank factorisation's two Linears, is removed and they are added)."""
    pairs: list[tuple[str | None, str | None]] = []
    left = list(after)
    for name in before:
        for candidate in (name, name.removesuffix(".0"), name + ".0"):
            if candidate != name and not _sole_child(
                candidate if len(candidate) > len(name) else name, before, after
            ):
                continue
            if candidate in left:
                left.remove(candidate)
                pairs.append((name, candidate))
                break
        else:
            pairs.append((name, None))
    pairs += [(None, name) for name in left]
    return pairs


def _sole_child(child: str, before: list[str], after: list[str]) -> bool:
    """Whether ``child`` (``name.0``) is the only layer under ``name`` in either model."""
    prefix = child.removesuffix("0")
    return not any(other.startswith(prefix) and other != child for other in (*before, *after))


def _shapes(view: CompressionView, name: str) -> tuple[tuple[int, ...], ...]:
    facts = view._facts.weights.get(name, []) if view._facts else []
    return tuple(f.shape for f in facts)


def compare(
    before: Any,
    after: Any,
    inputs: Any = None,
    *,
    input_shape: Any = None,
    hardware: Hardware | str | None = None,
    baseline: str = DEFAULT_BASELINE,
    bench: bool = False,
    repeat: int = 20,
    **profile_options: Any,
) -> Comparison:
    """Compare a model before and after compression.

    ``before`` / ``after``: Reports, or models profiled here with the same ``inputs``
    (or ``input_shape``) and ``profile_options``. ``hardware``: the preset (or "local")
    the speedup estimate uses (default a100-sxm-80gb). ``baseline``: the precision the
    float work of both models runs at in the estimate: "auto" (float32 work at the faster
    16-bit peak the hardware lists above its float32 one: float16 on an A100's tensor
    cores; float32 where it lists none; docs/compression.md), "float32", "tfloat32",
    "float16" or "bfloat16". ``bench=True`` (models only) times both in
    this run and adds the measured speedup (median before / median after).
    """
    import torch

    from ..api import profile
    from ..exported import is_exported_program
    from ..report import Report
    from . import options_of

    speedup.check_baseline(baseline)
    asked = profile_options.get("compression")
    if asked is None:
        profile_options["compression"] = True  # the comparison is of nonzeros too: count them
    elif not options_of(asked).count_nonzeros:
        raise ValueError(
            "compare counts the nonzeros of both models (its ratios need them): leave out "
            "compression=False / count_nonzeros=False"
        )
    for which, model in (("before", before), ("after", after)):  # P11-A3: named as compare's
        if not isinstance(model, (Report, torch.nn.Module)) and not is_exported_program(model):
            raise TypeError(
                f"compare takes Reports (flopmeter.profile's) or models (torch.nn.Module, "
                f"torch.export programs) as before and after; {which} is {type(model).__name__}"
            )
    if bench and (isinstance(before, Report) or isinstance(after, Report)):
        raise ValueError("bench=True needs the two models, not Reports")
    reports = []
    for model in (before, after):
        if isinstance(model, Report):
            reports.append(model)
        else:
            reports.append(profile(model, inputs, input_shape=input_shape, **profile_options))
    result = compare_views(reports[0], reports[1], hardware=hardware, baseline=baseline)
    if bench:
        from ..timing import benchmark

        seconds = [
            benchmark(model, inputs, input_shape=input_shape, repeat=repeat)[0].median
            for model in (before, after)
        ]
        result.measured = {"before": seconds[0], "after": seconds[1]}
        result.measured_speedup = seconds[0] / seconds[1] if seconds[1] else None
    return result
