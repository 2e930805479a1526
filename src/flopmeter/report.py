"""The Report: totals, per-module tree, per-operator table, unsupported ops.

Integers only; nothing here makes display strings (render/ does). Conventions are
views over the same counted quantities (see ``flops_as``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .cost import Cost

if TYPE_CHECKING:  # annotations only: roofline.py imports this module
    from .hardware import Hardware
    from .roofline import Roofline

CONVENTIONS = ("exact", "2mac", "mac", "ptflops")
ONNX_TOOL = "onnx-tool"  # onnx-tool's weighted MACs: a view of ONNX reports only (docs/onnx.md)
SCHEMA_VERSION = 1


def check_convention(convention: str) -> None:
    """Refuse an unknown convention name before anything is rendered."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected one of {', '.join(CONVENTIONS)}")


def convention_value(cost: Cost, convention: str) -> int:
    """The FLOP count of ``cost`` under a convention.

    exact:   the seed article's count: n mults + n-1 adds per dot product, bias adds,
             and every elementwise / reduction / normalisation op (``cost.flops``).
    2mac:    2 x MACs of contractions only (torch.utils.flop_counter, DeepSpeed).
    mac:     MACs of contractions only, 1 MAC = 1 FLOP (fvcore, torchvision's tables).
    ptflops: ptflops' MAC count: MACs + bias adds + activations, norms, pooling.
    """
    if convention == "exact":
        return cost.flops
    if convention == "2mac":
        return 2 * cost.macs
    if convention == "mac":
        return cost.macs
    if convention == "ptflops":
        return cost.ptflops_macs
    if convention == ONNX_TOOL:
        return cost.onnx_tool_macs
    raise ValueError(f"unknown convention {convention!r}; expected one of {', '.join(CONVENTIONS)}")


class _TotalsView:
    """``macs``, ``flops`` (exact), ``bytes_read``, ``bytes_written`` of ``self.total``."""

    if TYPE_CHECKING:  # a dataclass field in ModuleStats, a property in Report

        @property
        def total(self) -> Cost: ...

    @property
    def macs(self) -> int:
        return self.total.macs

    @property
    def flops(self) -> int:
        """Exact FLOPs (the seed's convention)."""
        return self.total.flops

    @property
    def bytes_read(self) -> int:
        return self.total.bytes_read

    @property
    def bytes_written(self) -> int:
        return self.total.bytes_written


@dataclass
class ModuleStats(_TotalsView):
    """One module of the tree. ``own`` is what ran directly in its forward (not in a
    child); ``total`` includes its children. Params are counted once per tensor, at
    the first module that holds them. ``shared_with``: for a further name of a module
    held by two parents (``b.0``), the module's first name (``a``); this row has the
    calls made through this parent, and no params (they are counted at ``a``)."""

    name: str
    type: str
    depth: int
    extra_repr: str = ""
    calls: int = 0
    own_params: int = 0
    params: int = 0
    trainable_params: int = 0
    own: Cost = field(default_factory=Cost)
    total: Cost = field(default_factory=Cost)
    backward: Cost = field(default_factory=Cost)
    children: list[str] = field(default_factory=list)
    shared_with: str = ""

    def __repr__(self) -> str:
        from .render.reprs import module_repr

        return module_repr(self)


@dataclass
class OperatorStats:
    """All calls of one op (e.g. ``aten.convolution``): count and summed cost.
    ``kind`` is "counted", "data" (moves memory only), "view" (free) or "custom"."""

    op: str
    kind: str
    calls: int = 0
    cost: Cost = field(default_factory=Cost)
    backward_calls: int = 0

    def __repr__(self) -> str:
        from .render.reprs import operator_repr

        return operator_repr(self)


@dataclass
class UnsupportedOp:
    """An op with no formula: how often it ran, with which input shapes, and where.
    Its cost is unknown, so totals are lower bounds while any of these exist."""

    op: str
    calls: int = 0
    shapes: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        from .render.reprs import unsupported_repr

        return unsupported_repr(self)


@dataclass(slots=True)
class OpRecord:
    """One counted op call: which op, in which module and phase, its dtype and cost.
    ``shapes`` are the shapes of its tensor inputs, in order (e.g. a convolution's
    input and weight, from which its groups follow)."""

    op: str
    module: str
    phase: str
    dtype: str
    cost: Cost
    shapes: tuple[tuple[int, ...], ...] = ()


@dataclass
class Report(_TotalsView):
    """Everything one profile run measured.

    ``macs``, ``flops`` (exact), ``params`` are for the whole call as run, batch
    included; ``per_sample()`` divides by ``batch_size``.

    ``print(report)``: the per-layer tree; ``report.modules["layer1"]``: one module's
    ``ModuleStats``; ``by_operator()``: cost per aten op; ``flops_as(convention)``;
    ``roofline(hardware)``; ``to_dict()`` / ``to_json()`` / ``to_csv()`` / ``to_html()``.
    """

    model_name: str
    batch_size: int
    inputs: list[dict[str, Any]]
    modules: dict[str, ModuleStats]
    operators: dict[str, OperatorStats]
    unsupported: dict[str, UnsupportedOp]
    forward: Cost
    backward_cost: Cost
    params: int
    trainable_params: int
    buffers: int
    param_bytes: int
    buffer_bytes: int
    training: bool
    did_backward: bool
    options: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    ops: list[OpRecord] = field(default_factory=list)
    peak_activation_bytes: int = 0
    # Compression overhead (mask multiplies, quantize/dequantize, ...): ops kept out of
    # the model's totals unless counted back; and the compression view (compression/).
    overhead: dict[str, OperatorStats] = field(default_factory=dict)
    compression: Any = None
    # bytes the model's own ops (not the overhead's) read of weights rebuilt from a
    # compressed weight's storage (the float copy a torchao dequantize or a prune mask
    # multiply wrote): part of the activations above; LLM mode's paged view leaves them out
    rebuilt_weight_bytes: int = 0
    # the overhead above by the module its ops ran in (its own ops, not its children's)
    overhead_by_module: dict[str, Cost] = field(default_factory=dict)

    # -- totals -----------------------------------------------------------------
    @property
    def total(self) -> Cost:
        """Forward plus backward (when it ran)."""
        return self.forward + self.backward_cost

    def traffic_by_dtype(self) -> dict[str, dict[str, int]]:
        """Bytes read and written, grouped by the dtype each op computes in
        (``{"float32": {"bytes_read": ..., "bytes_written": ...}}``)."""
        grouped: dict[str, dict[str, int]] = {}
        for record in self.ops:
            entry = grouped.setdefault(record.dtype, {"bytes_read": 0, "bytes_written": 0})
            entry["bytes_read"] += record.cost.bytes_read
            entry["bytes_written"] += record.cost.bytes_written
        return grouped

    def flops_as(self, convention: str = "exact") -> int:
        """Total FLOPs under ``convention``: exact, 2mac, mac or ptflops (or onnx-tool
        for a Report counted from an ONNX file)."""
        if convention == ONNX_TOOL and self.options.get("source") != "onnx":
            raise ValueError(
                "the onnx-tool convention is a view of ONNX reports only (flopmeter.profile_onnx); "
                f"use one of {', '.join(CONVENTIONS)}"
            )
        return convention_value(self.total, convention)

    def per_sample(self, convention: str = "exact") -> dict[str, float | int]:
        """params, macs and flops (under ``convention``) divided by the batch size.
        Ints when the division is exact (it is for models whose ops are per-sample)."""
        return {
            "batch_size": self.batch_size,
            "params": self.params,
            "macs": _divide(self.macs, self.batch_size),
            "flops": _divide(self.flops_as(convention), self.batch_size),
        }

    # -- queries ----------------------------------------------------------------
    def by_module(self) -> dict[str, ModuleStats]:
        """Qualified module name -> ModuleStats, in model order ("" is the root)."""
        return dict(self.modules)

    def by_operator(self) -> dict[str, OperatorStats]:
        """aten op -> calls and summed cost, most expensive (exact FLOPs) first."""
        return dict(sorted(self.operators.items(), key=lambda kv: -kv[1].cost.flops))

    def unsupported_ops(self) -> dict[str, UnsupportedOp]:
        """Ops that ran but have no formula (their cost is not in the totals)."""
        return dict(self.unsupported)

    # -- output -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data (ints, strings, lists, dicts): the JSON schema's content."""
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model_name,
            "batch_size": self.batch_size,
            "inputs": self.inputs,
            "training": self.training,
            "backward": self.did_backward,
            "options": self.options,
            "versions": self.versions,
            "totals": {
                "params": self.params,
                "trainable_params": self.trainable_params,
                "buffers": self.buffers,
                "param_bytes": self.param_bytes,
                "buffer_bytes": self.buffer_bytes,
                "peak_activation_bytes": self.peak_activation_bytes,
                **asdict(self.total),
                "flops_by_convention": {c: self.flops_as(c) for c in CONVENTIONS},
                "forward": asdict(self.forward),
                "backward": asdict(self.backward_cost),
            },
            "per_sample": self.per_sample(),
            "modules": [
                {
                    "name": m.name,
                    "type": m.type,
                    "depth": m.depth,
                    "calls": m.calls,
                    "params": m.params,
                    "own_params": m.own_params,
                    "trainable_params": m.trainable_params,
                    "own": asdict(m.own),
                    "total": asdict(m.total),
                    "backward": asdict(m.backward),
                    **({"shared_with": m.shared_with} if m.shared_with else {}),
                }
                for m in self.modules.values()
            ],
            "operators": [
                {
                    "op": o.op,
                    "kind": o.kind,
                    "calls": o.calls,
                    "backward_calls": o.backward_calls,
                    **asdict(o.cost),
                }
                for o in self.by_operator().values()
            ],
            "unsupported": [asdict(u) for u in self.unsupported.values()],
            "overhead": [{"op": o.op, "calls": o.calls, **asdict(o.cost)} for o in self.overhead.values()],
            "compression": self.compression.to_dict() if self.compression is not None else None,
        }

    def __str__(self) -> str:
        """The per-layer tree: params, MACs and exact FLOPs of every module."""
        from .render.text import render_tree

        return render_tree(self)

    def __repr__(self) -> str:
        """One line: totals and batch (``print(report)`` shows the per-layer tree)."""
        from .render.reprs import report_repr

        return report_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: totals and the top modules (depth 1, deeper under a wrapper) as an HTML fragment."""
        from .render.reprs import report_html

        return report_html(self)

    def roofline(self, hardware: Hardware | str) -> Roofline:
        """Roofline estimate on ``hardware`` (a ``flopmeter.hardware.Hardware`` or a preset
        name): per module arithmetic intensity, bound and estimated time."""
        from .roofline import roofline

        return roofline(self, hardware)

    def to_json(self, indent: int | None = 2) -> str:
        """Everything this Report holds, as JSON (see docs/json-schema.md)."""
        from .render.formats import to_json

        return to_json(self, indent)

    def to_csv(self, compression: bool = False) -> str:
        """One row per module, every convention a column (with ``compression``, the
        compression view's columns too)."""
        from .render.formats import to_csv

        return to_csv(self, compression=self.compression if compression else None)

    def to_markdown(self, depth: int | None = 1, convention: str = "exact", compression: bool = False) -> str:
        """A Markdown table of the modules down to ``depth`` (with ``compression``, the
        compression view's columns and totals)."""
        from .render.formats import to_markdown

        check_convention(convention)
        return to_markdown(
            self, depth=depth, convention=convention, compression=self.compression if compression else None
        )

    def to_html(
        self, convention: str = "exact", compression: bool = False, units: str = "auto", precision: int = 2
    ) -> str:
        """One self-contained HTML page: totals, sortable collapsible tree, charts (and,
        with ``compression``, the compression view's columns and totals); ``units`` (auto,
        T, G, M, K or "") and ``precision`` (decimals) as in the tree."""
        from .render.html import to_html
        from .render.units import check_precision

        check_convention(convention)
        check_precision(precision)
        return to_html(
            self,
            convention=convention,
            compression=self.compression if compression else None,
            units=units,
            precision=precision,
        )

    def plot(
        self,
        path: Any = None,
        convention: str = "exact",
        top: int = 15,
        hardware: Any = None,
        compression: bool = False,
    ) -> Any:
        """Bar charts of FLOPs and params per layer and the share by operator
        (matplotlib); with ``compression``, dense vs effective MACs per layer too;
        saved to ``path`` when given. Returns the Figure."""
        from .render.plot import plot

        check_convention(convention)
        view = self.compression if compression else None
        return plot(self, path, convention=convention, top=top, hardware=hardware, compression=view)


def parent_of(name: str, known: Mapping[str, object]) -> str:
    """The closest enclosing module name that is in ``known`` ("" is the root)."""
    while "." in name:
        name = name.rsplit(".", 1)[0]
        if name in known:
            return name
    return ""


def _divide(value: int, by: int) -> float | int:
    if by <= 0:
        return value
    return value // by if value % by == 0 else value / by
