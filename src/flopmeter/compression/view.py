"""The compression view: what the compressed representation implies, per module.

Joins the weight facts (facts.py) with the ops the trace counted for the module that
holds each weight. N = logical weight elements, nz = nonzeros, R = uses of each
weight element = dense MACs / N. Definitions (docs/compression.md):

- ``macs_effective = nz * R`` (= macs_dense * nz / N);
- ``flops_effective``: the module's exact FLOPs with its weight contraction recounted
  as R * sum over rows with nz_o > 0 of (2*nz_o - 1) (+ R*C_out with a bias);
- ``bops = macs_effective * b_w * b_a``; ``bops_relative`` = sum bops / sum(macs_dense*32*32);
- ``bytes_ideal`` = values (the smaller of dense ceil(N*b_w/8) and a sparse format's
  ceil(nz*b_w/8) + index) + scales and zero points + bias at its bits.

Integer contractions count integer MACs: their seed-convention operation count goes
to ``int_ops_effective``, never to ``flops_effective``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from math import ceil, log2, prod
from typing import TYPE_CHECKING, Any

from ..cost import Cost
from .facts import ModelFacts, WeightFact, bits_of

if TYPE_CHECKING:
    from ..report import Report

# Contractions whose activations are 8-bit integers (or fp8) as executed.
INT8_ACTIVATIONS = frozenset(
    {
        "quantized.linear",
        "quantized.linear_relu",
        "quantized.linear_leaky_relu",
        "quantized.linear_tanh",
        "quantized.linear_dynamic",
        "quantized.linear_relu_dynamic",
        "quantized.conv1d",
        "quantized.conv2d",
        "quantized.conv3d",
        "quantized.conv1d_relu",
        "quantized.conv2d_relu",
        "quantized.conv3d_relu",
        "quantized.conv2d_add",
        "quantized.conv2d_add_relu",
        "quantized.conv_transpose1d",
        "quantized.conv_transpose2d",
        "quantized.conv_transpose3d",
        "aten._int_mm",
        "aten._scaled_mm",
        "aten._dyn_quant_matmul_4bit",
    }
)
# ... of which these multiply integers (integer MACs, not FLOPs).
INTEGER_CONTRACTIONS = INT8_ACTIVATIONS - {"aten._scaled_mm"}


@dataclass
class LayerCompression:
    """The compression view of one module's own weights and contractions."""

    name: str
    type: str
    representation: str = "dense"
    params: int = 0
    weight_params: int = 0
    nonzero_params: int | None = 0
    weight_nonzero: int | None = 0
    structure: str = "dense"
    macs_dense: int = 0
    macs_effective: int = 0
    flops_effective: int = 0
    int_ops_effective: int = 0
    contraction_ops_effective: int = 0  # the contraction ops' mults + adds, weight nonzeros only
    bias_params: int = 0
    bias_zeros: int = 0  # of a bias pruned by torch.nn.utils.prune (its mask's zeros)
    weight_bits: int | None = None
    act_bits: int | None = None
    group_size: int | None = None
    n_scales: int = 0
    bops: int = 0
    bytes_actual: int = 0
    bytes_ideal: int = 0
    weight_bytes_actual: int = 0
    weight_bytes_ideal: int = 0
    ideal_format: str = "dense"
    compute_dtype: str = "float32"
    assumed: bool = False

    @property
    def sparsity(self) -> float | None:
        """1 - nz/N over the weight tensors; None when the values are unknown."""
        if self.weight_nonzero is None or not self.weight_params:
            return None if self.weight_nonzero is None else 0.0
        return 1 - self.weight_nonzero / self.weight_params

    @property
    def bits_per_weight(self) -> float | None:
        """8 * ideal weight bytes (values, index, scales) / N."""
        return 8 * self.weight_bytes_ideal / self.weight_params if self.weight_params else None


@dataclass
class ModuleCompression:
    """The compression view of one module *with its children* (the tree's and the
    module table's rows): sums over the layers under it. ``nonzero_params`` = the
    module's params - its weights' zeros (norms and biases count as nonzero);
    ``bytes_ideal`` adds the params outside the layers at their dtype. ``structure``,
    ``weight_bits`` and ``act_bits`` are the layers' common value, "mixed" when they
    differ, None when no layer under the module holds a weight."""

    name: str
    params: int = 0
    weight_params: int = 0
    weight_nonzero: int | None = 0
    nonzero_params: int | None = 0
    structure: str | None = None
    weight_bits: int | str | None = None
    act_bits: int | str | None = None
    macs_dense: int = 0
    macs_effective: int = 0
    bops: int = 0
    bytes_ideal: int = 0

    @property
    def sparsity(self) -> float | None:
        """1 - nz/N over the weights under the module; None when unknown or no weights."""
        if self.weight_nonzero is None or not self.weight_params:
            return None
        return 1 - self.weight_nonzero / self.weight_params


def _common(values: list[Any]) -> Any:
    distinct = set(values)
    if not distinct:
        return None
    return distinct.pop() if len(distinct) == 1 else "mixed"


@dataclass
class CompressionView:
    """Per-module and total compression metrics of one Report.

    ``layers``: modules that hold weights or run contractions. ``overhead``: the ops
    kept out of model FLOPs (mask multiplies, quantize/dequantize, ...), by op.
    ``work_by_dtype``: MACs and FLOPs grouped by the dtype the work is done in.
    """

    layers: dict[str, LayerCompression]
    overhead: dict[str, Cost] = field(default_factory=dict)
    overhead_counted: bool = False
    work_by_dtype: dict[str, dict[str, int]] = field(default_factory=dict)
    params: int = 0
    assumptions: dict[str, Any] = field(default_factory=dict)
    unrecognised: list[str] = field(default_factory=list)
    batch_size: int = 1
    # layers whose contractions read only part of a weight (a supernet's active slice)
    sliced: list[str] = field(default_factory=list)
    _facts: ModelFacts | None = field(default=None, repr=False)
    _report: Any = field(default=None, repr=False)
    _other_flops: int = field(default=0, repr=False)  # exact FLOPs of modules without weights or contractions
    _rehomed: set[int] = field(default_factory=set, repr=False)  # id(record): matmuls counted at a submodule
    _other_param_bytes: int = field(default=0, repr=False)  # bytes of the params outside the layers (norms)
    # params and their bytes (at their dtype) of each module outside the layers
    _module_param_bytes: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        from ..render.reprs import compression_repr

        return compression_repr(self)

    def __str__(self) -> str:
        """The per-layer table and the totals, as ``flopmeter ... --compression --format table`` prints them."""
        from ..render.compression import view_table

        return view_table(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: ``print(view)``'s text, preformatted."""
        import html

        return f'<pre class="flopmeter-compression">{html.escape(str(self))}</pre>'

    @property
    def nonzeros_counted(self) -> bool:
        """False when the profile did not read the dense-stored weights' values (it was
        not asked to: ``CompressionOptions.count_nonzeros``); their nonzeros, sparsity
        and effective MACs are then unknown, never taken as dense."""
        return self._facts is None or not self._facts.nonzeros_skipped

    def require_nonzeros(self, use: str, whose: str = "this profile", other_way: str = "") -> None:
        """ValueError when the nonzeros were not counted: ``use`` (what needs them) says so
        of ``whose`` report, and how to count them (and ``other_way``)."""
        if not self.nonzeros_counted:
            raise ValueError(
                f"{use}: {whose} did not count the weights' nonzeros, which it needs (a model without "
                "prune masks or other recognised compression is only read when asked): profile with "
                f"flopmeter.profile(model, inputs, compression=True){other_way}"
            )

    @property
    def of_backward_profile(self) -> bool:
        """Whether the report is a backward profile: the view is still of its forward pass
        (MACs, FLOPs effective, BOPs), the report's totals of both passes."""
        return bool(getattr(self._report, "did_backward", False))

    # -- totals ----------------------------------------------------------------
    def _sum(self, key: str) -> int:
        return sum(getattr(layer, key) for layer in self.layers.values())

    @property
    def weight_params(self) -> int:
        return self._sum("weight_params")

    @property
    def nonzero_params(self) -> int | None:
        """Nonzero weights + every other parameter (biases, norms); None if unknown."""
        if any(layer.weight_nonzero is None for layer in self.layers.values()):
            return None
        return (
            self.params
            - self.weight_params
            + sum(int(layer.weight_nonzero or 0) - layer.bias_zeros for layer in self.layers.values())
        )

    @property
    def sparsity(self) -> float | None:
        """Model sparsity over the weight tensors (biases apart); None if unknown."""
        if any(layer.weight_nonzero is None for layer in self.layers.values()):
            return None
        total = self.weight_params
        return (
            1 - sum(int(layer.weight_nonzero or 0) for layer in self.layers.values()) / total
            if total
            else 0.0
        )

    @property
    def macs_dense(self) -> int:
        return self._sum("macs_dense")

    @property
    def macs_effective(self) -> int:
        return self._sum("macs_effective")

    @property
    def flops_effective(self) -> int:
        return self._sum("flops_effective") + self._other_flops

    @property
    def int_ops_effective(self) -> int:
        return self._sum("int_ops_effective")

    @property
    def bops(self) -> int:
        return self._sum("bops")

    @property
    def bops_relative(self) -> float:
        """sum bops / sum(macs_dense * 32 * 32)."""
        dense = self.macs_dense * 32 * 32
        return self.bops / dense if dense else 0.0

    @property
    def bytes_actual(self) -> int:
        return self._sum("bytes_actual") + self._other_param_bytes

    @property
    def bytes_ideal(self) -> int:
        return self._sum("bytes_ideal") + self._other_param_bytes

    @property
    def bits_per_weight(self) -> float | None:
        n = self.weight_params
        return 8 * self._sum("weight_bytes_ideal") / n if n else None

    @property
    def overhead_total(self) -> Cost:
        total = Cost()
        for cost in self.overhead.values():
            total += cost
        return total

    def by_module(self) -> dict[str, ModuleCompression]:
        """Every module of the report, inclusive of its children (see
        ``ModuleCompression``): what the tree and the module tables show."""
        from ..report import parent_of

        modules = self._report.modules if self._report is not None else {}
        found = {name: ModuleCompression(name, params=stats.params) for name, stats in modules.items()}
        under: dict[str, list[LayerCompression]] = {name: [] for name in found}
        for layer in self.layers.values():
            name = layer.name
            while name in under:
                under[name].append(layer)
                if not name:
                    break
                name = parent_of(name, under)
        outside = {name: (0, 0) for name in found}  # params and bytes outside the layers, with children
        for name, (count, size) in self._module_param_bytes.items():
            while name in outside:
                before = outside[name]
                outside[name] = (before[0] + count, before[1] + size)
                if not name:
                    break
                name = parent_of(name, outside)
        for name, summary in found.items():
            layers = under[name]
            weighted = [layer for layer in layers if layer.weight_params]
            summary.weight_params = sum(layer.weight_params for layer in weighted)
            known = all(layer.weight_nonzero is not None for layer in weighted)
            summary.weight_nonzero = (
                sum(int(layer.weight_nonzero or 0) for layer in weighted) if known else None
            )
            summary.nonzero_params = (
                summary.params
                - summary.weight_params
                + summary.weight_nonzero
                - sum(layer.bias_zeros for layer in weighted)
                if summary.weight_nonzero is not None
                else None
            )
            summary.structure = _common([layer.structure for layer in weighted])
            summary.weight_bits = _common([layer.weight_bits for layer in weighted])
            summary.act_bits = _common([layer.act_bits for layer in weighted])
            summary.macs_dense = sum(layer.macs_dense for layer in layers)
            summary.macs_effective = sum(layer.macs_effective for layer in layers)
            summary.bops = sum(layer.bops for layer in layers)
            other_params, other_bytes = outside[name]
            unexplained = max(0, summary.params - sum(layer.params for layer in layers) - other_params)
            summary.bytes_ideal = sum(layer.bytes_ideal for layer in layers) + other_bytes + 4 * unexplained
        return found

    # -- what-if ---------------------------------------------------------------
    def assume(
        self,
        sparsity: float | str | None = None,
        bits: str | Mapping[str, str] | None = None,
    ) -> CompressionView:
        """The same metrics for a compression not yet applied: ``sparsity`` a fraction
        (0.5: unstructured, spread evenly over rows) or a pattern ("2:4"); ``bits``
        "w4a16", "w8a8" (optionally with a group, "w4a16g128"), or a mapping from
        module-name prefix to such a string (mixed precision; the longest prefix wins,
        "" for the rest). Applies to every module that holds a weight. A ``sparsity`` needs
        the nonzeros counted (``view.nonzeros_counted``): ValueError otherwise."""
        if self._facts is None or self._report is None:
            raise ValueError("this view has no weight facts to assume on")
        if sparsity is not None:  # a plan on unknown zeros would be taken as dense
            self.require_nonzeros("assume(sparsity=...) prunes the nonzeros further")
        return build_view(self._report, self._facts, assume_sparsity=sparsity, assume_bits=bits)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: totals and one entry per layer."""
        return {
            "assumptions": self.assumptions,
            "overhead_counted_in_model": self.overhead_counted,
            "nonzeros_counted": self.nonzeros_counted,
            "totals": {
                "params": self.params,
                "nonzero_params": self.nonzero_params,
                "weight_params": self.weight_params,
                "sparsity": self.sparsity,
                "macs_dense": self.macs_dense,
                "macs_effective": self.macs_effective,
                "flops_effective": self.flops_effective,
                "int_ops_effective": self.int_ops_effective,
                "bops": self.bops,
                "bops_relative": self.bops_relative,
                "bytes_actual": self.bytes_actual,
                "bytes_ideal": self.bytes_ideal,
                "bits_per_weight": self.bits_per_weight,
                "overhead": _cost_dict(self.overhead_total),
            },
            "work_by_dtype": self.work_by_dtype,
            "overhead": {op: _cost_dict(cost) for op, cost in self.overhead.items()},
            "unrecognised": self.unrecognised,
            "sliced": self.sliced,
            "layers": [
                {
                    **{k: v for k, v in vars(layer).items()},
                    "sparsity": layer.sparsity,
                    "bits_per_weight": layer.bits_per_weight,
                }
                for layer in self.layers.values()
            ],
        }


def _cost_dict(cost: Cost) -> dict[str, int]:
    return {"macs": cost.macs, "flops": cost.flops, "bytes": cost.bytes}


# ----------------------------------------------------------------------------- building
@dataclass
class _Contractions:
    macs: int = 0
    ops: set[str] = field(default_factory=set)
    act_bits: int = 0
    dtype: str = "float32"
    integer: bool = False
    flops: int = 0
    outputs: int = 0  # elements the contractions wrote
    input_sizes: set[int] = field(default_factory=set)  # elements of each tensor they read
    weight_bytes: int = 0  # of parameters (and views of them) they read


# torch.ao dynamic quantized LSTM/GRU: integer projections when their weights are int8
# (the same op runs the fp16 variant in float)
QUANTIZED_RECURRENT = frozenset(
    {
        "aten.quantized_lstm",
        "aten.quantized_gru",
        "quantized.quantized_lstm_cell_dynamic",
        "quantized.quantized_gru_cell_dynamic",
        "quantized.quantized_rnn_tanh_cell_dynamic",
        "quantized.quantized_rnn_relu_cell_dynamic",
    }
)


def facts_name(report: Report) -> Callable[[str], str]:
    """The name the weight facts know a module by: its first ``named_modules()`` name.
    A shared module called through a further name (``b.0``, a row ``shared with a``)
    is read from its first name's facts; any other name is its own."""
    first = {name: stats.shared_with for name, stats in report.modules.items() if stats.shared_with}
    return lambda name: first.get(name, name)


def _integer_modules(facts: ModelFacts | None) -> frozenset[str]:
    """Modules whose packed recurrent weights are integers (≤ 8 bits)."""
    if facts is None:
        return frozenset()
    return frozenset(
        name
        for name, found in facts.weights.items()
        if any(f.representation.startswith("torch.ao dynamic") and f.weight_bits <= 8 for f in found)
    )


def _is_integer(record: Any, integer_modules: frozenset[str], known_as: Callable[[str], str]) -> bool:
    """Whether ``record`` multiplies integers (int8 activations and weights)."""
    if record.op in QUANTIZED_RECURRENT:
        return known_as(record.module) in integer_modules
    return record.op in INTEGER_CONTRACTIONS


# where a matmul's weight operand sits in its input shapes (transposed for addmm/mm)
_WEIGHT_OPERAND = {"aten.addmm": (2, True), "aten.mm": (1, True), "aten.linear": (1, False)}


def functional_homes(report: Report, facts: ModelFacts) -> dict[int, str]:
    """Matmuls a module runs on a weight its submodule holds (torchvision's
    ShiftedWindowAttention: ``F.linear(x, self.qkv.weight)``), by id(record) -> that
    submodule: the one submodule under the record's module whose weight has the
    operand's shape and that runs no contraction itself. Ambiguous shapes stay."""
    known_as = facts_name(report)
    busy = {known_as(record.module) for record in report.ops if record.cost.macs}
    idle: dict[tuple[int, ...], list[str]] = {}
    for name, found in facts.weights.items():
        if name not in busy:
            for fact in found:
                idle.setdefault(tuple(fact.shape), []).append(name)
    homes: dict[int, str] = {}
    if not idle:
        return homes
    for record in report.ops:
        where = _WEIGHT_OPERAND.get(record.op)
        if where is None or record.phase != "forward" or len(record.shapes) <= where[0]:
            continue
        shape = tuple(record.shapes[where[0]])
        shape = shape[::-1] if where[1] else shape
        module = known_as(record.module)
        prefix = f"{module}." if module else ""
        under = [name for name in idle.get(shape, ()) if name.startswith(prefix)]
        if len(under) == 1:  # called through a further name: the submodule's row under it
            homes[id(record)] = (
                under[0] if module == record.module else record.module + under[0][len(module) :]
            )
    return homes


def _contractions(
    report: Report, facts: ModelFacts | None = None, homes: Mapping[int, str] | None = None
) -> dict[str, _Contractions]:
    """Per module: forward contraction MACs, the ops, activation bits, compute dtype;
    a matmul on a submodule's weight counts at that submodule (``homes``)."""
    found: dict[str, _Contractions] = {}
    integer_modules, known_as = _integer_modules(facts), facts_name(report)
    for record in report.ops:
        if record.phase != "forward" or not record.cost.macs:
            continue
        entry = found.setdefault((homes or {}).get(id(record), record.module), _Contractions())
        entry.macs += record.cost.macs
        entry.flops += record.cost.flops
        entry.outputs += record.cost.bytes_written * 8 // bits_of(record.dtype)
        entry.ops.add(record.op)
        entry.input_sizes.update(prod(shape) for shape in record.shapes)
        entry.weight_bytes += record.cost.weight_bytes
        integer = _is_integer(record, integer_modules, known_as)
        bits = 8 if integer or record.op in INT8_ACTIVATIONS else bits_of(record.dtype)
        entry.act_bits = max(entry.act_bits, bits)
        if integer:
            entry.integer, entry.dtype = True, "int8"
        else:
            entry.dtype = record.dtype
    return found


# contractions that take a dense weight as one of their tensor inputs, whole or viewed
WEIGHT_CONTRACTIONS = frozenset(
    {"aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten.mv", "aten.addmv", "aten.convolution"}
)


def reads_a_slice(weights: list[WeightFact], work: _Contractions, calls: int) -> bool:
    """Whether a layer's contractions read only part of its dense weights (a slimmable or
    once-for-all supernet: ``F.linear(x, self.weight[:out, :in])``, a centre-cropped kernel):
    none of the tensors they read has as many elements as the largest weight, and a call
    reads fewer parameter bytes than the weights hold (a ``weight.chunk(3)`` read in three
    contractions is read whole). The whole weights' nonzeros then say nothing of the work
    done, so they are left unknown (as if dense). A mixture of experts' stacked weight
    (``[experts, out, in]``, ``F.linear(x, w[e])`` for the experts its tokens were routed
    to) is no slice: each expert read is whole, and the stack's density stands for the
    experts that ran, as any layer's whole-weight density does."""
    if not work.input_sizes or not work.ops <= WEIGHT_CONTRACTIONS:
        return False
    if any(f.representation != "dense" for f in weights):
        return False
    if max(f.numel for f in weights) in work.input_sizes:
        return False
    if "aten.convolution" not in work.ops and any(
        len(f.shape) >= 3 and prod(f.shape[1:]) in work.input_sizes for f in weights
    ):
        return False  # whole experts of a stack (MoE), each read in full: not a supernet's slice
    return 0 < work.weight_bytes // max(calls, 1) < sum(f.storage_bytes for f in weights)


def work_by_dtype(report: Report, facts: ModelFacts | None = None) -> dict[str, dict[str, int]]:
    """Forward MACs and FLOPs grouped by the dtype the work is done in (integer
    contractions under "int8": their MACs are not floating point operations)."""
    grouped: dict[str, dict[str, int]] = {}
    integer_modules, known_as = _integer_modules(facts), facts_name(report)
    for record in report.ops:
        dtype = "int8" if _is_integer(record, integer_modules, known_as) else record.dtype
        entry = grouped.setdefault(dtype, {"macs": 0, "flops": 0})
        entry["macs"] += record.cost.macs
        if record.cost.flops:  # an int8 recurrent layer's gates are float work
            float_dtype = record.dtype if record.op in QUANTIZED_RECURRENT else dtype
            grouped.setdefault(float_dtype, {"macs": 0, "flops": 0})["flops"] += record.cost.flops
    return grouped


_INTEGER_DTYPES = ("int", "uint", "qint", "quint")  # an ONNX MatMulInteger's uint8 too


def integer_macs(report: Report) -> int:
    """The forward MACs done in integer arithmetic (``work_by_dtype``'s integer dtypes),
    which FLOPs do not count."""
    return sum(
        work["macs"] for dtype, work in work_by_dtype(report).items() if dtype.startswith(_INTEGER_DTYPES)
    )


MAX_BITS = 64  # float64: the widest number a weight or an activation is stored in


def parse_bits(spec: str) -> tuple[int, int, int | None]:
    """ "w4a16" -> (4, 16, None); "w4a16g128" -> (4, 16, 128). Weight and activation
    bits are 1 to ``MAX_BITS``, a group at least 1 weight; anything else is a ValueError."""
    import re

    expected = "bits must look like 'w4a16', 'w8a8' or 'w4a16g128'"
    if not isinstance(spec, str):
        raise ValueError(f"{expected}; got {spec!r} ({type(spec).__name__}, not a string)")
    match = re.fullmatch(r"w(\d+)a(\d+)(?:g(\d+))?", spec.strip().lower())
    if not match:
        raise ValueError(f"{expected}; got {spec!r}")
    weight, act = int(match.group(1)), int(match.group(2))
    group = int(match.group(3)) if match.group(3) else None
    for what, value in (("weight", weight), ("activation", act)):
        if not 1 <= value <= MAX_BITS:
            raise ValueError(f"bits {spec!r}: {what} bits must be 1 to {MAX_BITS}, got {value}")
    if group is not None and group < 1:
        raise ValueError(f"bits {spec!r}: a group holds at least 1 weight, got g{group}")
    return weight, act, group


def check_bits(bits: str | Mapping[str, str] | None) -> None:
    """Parse every bits spec of ``bits`` (one spec, or a mapping from module-name prefix to
    specs), so a bad one is refused even when no module uses it."""
    if bits is None or isinstance(bits, str):
        if bits is not None:
            parse_bits(bits)
        return
    if not isinstance(bits, Mapping):
        raise ValueError(
            f"bits must be a string like 'w4a16' or a mapping from module-name prefix to such "
            f"strings; got {type(bits).__name__}"
        )
    for prefix, spec in bits.items():
        if not isinstance(prefix, str):
            raise ValueError(f"bits: the keys are module-name prefixes (strings), got {prefix!r}")
        parse_bits(spec)


def parse_sparsity(value: float | str) -> tuple[float, tuple[int, int] | None]:
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            n, m = int(parts[0]), int(parts[1])
            if 0 < n < m:
                return 1 - n / m, (n, m)
        try:
            value = float(value)
        except ValueError:
            raise ValueError(
                f"sparsity must be a fraction in [0, 1) or a pattern 'N:M' such as '2:4'; got {value!r}"
            ) from None
    if isinstance(value, bool) or not 0 <= float(value) < 1:
        raise ValueError(
            f"sparsity must be a fraction in [0, 1) or a pattern 'N:M' such as '2:4'; got {value!r}"
        )
    return float(value), None


def _forward_own_flops(report: Report) -> Callable[[str], int]:
    """Each module's own forward FLOPs: the view is of the forward pass, as its MACs are
    (a backward profile's ``own`` holds the backward's FLOPs too)."""
    if not report.did_backward:
        return lambda name: report.modules[name].own.flops
    sums: dict[str, int] = {}
    for record in report.ops:
        if record.phase == "forward":
            sums[record.module] = sums.get(record.module, 0) + record.cost.flops
    return lambda name: sums.get(name, 0)


def _check_prefixes(bits: str | Mapping[str, str] | None, report: Report) -> None:
    """A mapping's prefixes must each name a module or a module above others: a mistyped
    one would otherwise leave its layers as they are, without a word."""
    if not isinstance(bits, Mapping):
        return
    for prefix in bits:
        if prefix and not any(name == prefix or name.startswith(prefix + ".") for name in report.modules):
            raise ValueError(
                f"bits: {prefix!r} is no module name nor a prefix of one; the model's top-level modules: "
                f"{', '.join(n for n, s in report.modules.items() if s.depth == 1) or 'none'}"
            )


def _bits_for(name: str, bits: str | Mapping[str, str] | None) -> str | None:
    if bits is None or isinstance(bits, str):
        return bits
    best = None
    for prefix, spec in bits.items():
        if name == prefix or name.startswith(prefix + ".") or prefix == "":
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, spec)
    return best[1] if best else None


def _row_nonzeros(fact: WeightFact, rows: int, per_row: int) -> list[int]:
    """The nonzeros of each output row as the weight is; full rows when unknown (meta) or
    dense."""
    if fact.row_nonzero is not None and len(fact.row_nonzero) == rows:
        return list(fact.row_nonzero)
    return [per_row] * rows


def _spread(total: int, caps: list[int]) -> list[int]:
    """``total`` kept weights spread as evenly over the rows as their ``caps`` allow (the
    rows with room take what a fuller row cannot)."""
    kept = [0] * len(caps)
    order = sorted(range(len(caps)), key=lambda row: caps[row])
    for position, row in enumerate(order):
        share = -(-total // (len(order) - position))  # ceil: the first rows take the remainder
        kept[row] = min(caps[row], share)
        total -= kept[row]
    return kept


def _assumed(
    fact: WeightFact,
    sparsity: tuple[float, tuple[int, int] | None] | None,
    bits: tuple[int, int, int | None] | None,
) -> WeightFact:
    fact = copy.copy(fact)
    if sparsity is not None:
        fraction, nm = sparsity
        rows = max(fact.out_channels, 1)
        per_row = fact.numel // rows
        have = _row_nonzeros(fact, rows, per_row)  # a plan prunes further, never puts weights back
        if (
            nm is not None
        ):  # N of every M along the reduction; a short tail keeps up to N (padded, as pruners do)
            planned = (per_row // nm[1]) * nm[0] + min(per_row % nm[1], nm[0])
            kept = [min(planned, row) for row in have]
        else:  # round(nz * fraction) more pruned, as torch.nn.utils.prune counts, spread evenly over the rows
            left = sum(have)
            kept = _spread(left - round(left * fraction), have)
        fact.nonzero, fact.row_nonzero, fact.nm, fact.zero_columns = sum(kept), kept, nm, 0
    if bits is not None:
        w_bits, _, group = bits
        fact.weight_bits = w_bits
        fact.group_size = group
        if w_bits < 16:  # fp16 scale (+ int8 zero point below 8 bits) per row or per group of a row
            rows = max(fact.out_channels, 1)
            fact.n_scales = rows * ceil(fact.numel // rows / group) if group else fact.out_channels
            fact.ideal_scale_bytes = fact.n_scales * (2 + (1 if w_bits < 8 else 0))
        else:
            fact.n_scales, fact.ideal_scale_bytes = 0, 0
        fact.storage_bytes = ceil(fact.numel * w_bits / 8)
        fact.scale_bytes = fact.ideal_scale_bytes
    return fact


def ideal_value_bytes(fact: WeightFact) -> tuple[int, str]:
    """(bytes of values + index, format): the smallest of dense and the sparse formats that
    apply (a tie stores dense). Index: bitmask N/8; N:M nz*ceil(log2 M)/8; COO nz*ndim*8;
    CSR (nz + rows + 1)*8 (a COO or CSR weight is compared with dense only: its index is
    its own)."""
    n, bits = fact.numel, fact.weight_bits
    dense = ceil(n * bits / 8)
    nz = fact.nonzero
    if nz is None:
        return dense, "dense"
    values = ceil(nz * bits / 8)
    # in order of preference on a tie (min keeps the first): dense (no index for nothing
    # saved), then an N:M index (2:4 ties with the bitmask and keeps its name), then the bitmask
    formats = [(dense, "dense")]
    if fact.sparse_format == "coo":
        formats.append((values + nz * len(fact.shape) * 8, "COO"))
    elif fact.sparse_format in ("csr", "csc", "bsr", "bsc"):
        rows = fact.shape[0] if fact.sparse_format.endswith("r") else fact.shape[-1]
        formats.append((values + (nz + rows + 1) * 8, fact.sparse_format.upper()))
    elif nz < n:
        if fact.nm is not None:
            formats.append((values + ceil(nz * ceil(log2(fact.nm[1])) / 8), f"{fact.nm[0]}:{fact.nm[1]}"))
        formats.append((values + ceil(n / 8), "bitmask"))
    return min(formats, key=lambda candidate: candidate[0])


def _effective_flops(fact: WeightFact, uses: int, nonzero: list[int] | None) -> int:
    """R * sum over rows with nz_o > 0 of (2*nz_o - 1): the weight contraction's exact
    FLOPs when only nonzero weights are multiplied (no bias)."""
    if nonzero is None:
        per_row = fact.numel // max(fact.out_channels, 1)
        return uses * fact.out_channels * (2 * per_row - 1)
    return uses * sum(2 * nz - 1 for nz in nonzero if nz > 0)


def _transposed_flops(
    fact: WeightFact, work: _Contractions, macs_effective: int, *, bias: bool
) -> tuple[int, int, int]:
    """(dense, effective, bias adds) FLOPs of a transposed convolution, whose weight is
    (C_in, C_out/groups, *K): every product is added into an output, the first term of
    each of the R outputs it reaches needing no add (``contraction.conv``): dense
    2*MACs - R, effective 2*macs_effective - the reached outputs of channels that still
    receive a term (an all-zero weight column j leaves its outputs empty). R is read from
    the traced FLOPs (an output_padding row receives nothing); with a bias each reached
    output adds it and an unreached one is the bias alone, so the total is 2*MACs
    (2*macs_effective) whatever R is, and the outputs stand in for it (integer kernels,
    whose FLOPs are 0, too)."""
    reached = work.outputs if bias or work.integer else 2 * work.macs - work.flops
    dense = 2 * work.macs - reached
    columns = fact.shape[1] if len(fact.shape) > 1 else 1
    live = 0 if fact.nonzero == 0 else reached * (columns - fact.zero_columns) // columns
    if bias:  # effective + bias adds = 2*macs_effective: a reached output adds its bias
        live = reached  # as its last term, an output left with no term is the bias alone
    effective = 2 * macs_effective - live if fact.nonzero is not None else dense
    return dense, effective, reached if bias else 0


MHA_OP = "nn.functional.multi_head_attention_forward"


def _add_rows(rows: dict[str, list[int]], name: str, uses: list[int]) -> None:
    known = rows.get(name)
    rows[name] = uses if known is None else [a + b for a, b in zip(known, uses, strict=True)]


def attention_row_uses(report: Report, facts: ModelFacts) -> dict[str, dict[str, list[int]]]:
    """Exact uses of each output row of the weights that ``F.multi_head_attention_forward``
    reads (nn.MultiheadAttention), by module and weight name: one record holds the q/k/v
    projections, the attention and the output projection, so R = MACs / N would mix
    them. Query rows (``in_proj_weight[:E]``, ``q_proj_weight``, ``out_proj.weight``) are
    used batch x L_q times, key and value rows batch x L_k times; inputs are (L, B, E)
    or (L, E) (the module transposes batch_first inputs before the call)."""
    found: dict[str, dict[str, list[int]]] = {}
    known_as = facts_name(report)
    for record in report.ops:
        if record.op != MHA_OP or record.phase != "forward" or len(record.shapes) < 2:
            continue
        query, key = record.shapes[0], record.shapes[1]
        batch = query[1] if len(query) == 3 else 1
        uses_q, uses_k = batch * query[0], batch * key[0]
        rows = found.setdefault(record.module, {})
        for fact in facts.weights.get(known_as(record.module), []):
            out = fact.shape[0]
            if fact.name == "in_proj_weight":
                third = out // 3
                _add_rows(rows, fact.name, [uses_q] * third + [uses_k] * (out - third))
            elif fact.name == "q_proj_weight":
                _add_rows(rows, fact.name, [uses_q] * out)
            elif fact.name in ("k_proj_weight", "v_proj_weight"):
                _add_rows(rows, fact.name, [uses_k] * out)
        child = f"{record.module}.out_proj" if record.module else "out_proj"
        for fact in facts.weights.get(known_as(child), []):
            if fact.name == "weight":
                _add_rows(found.setdefault(child, {}), fact.name, [uses_q] * fact.shape[0])
    return found


def _move_out_projections(
    contractions: dict[str, _Contractions],
    row_uses: dict[str, dict[str, list[int]]],
    facts: ModelFacts,
    known_as: Callable[[str], str],
) -> dict[str, int]:
    """Give each ``out_proj`` child the MACs and FLOPs of its projection that the parent's
    attention record counted (sum of row uses x K; FLOPs x (2K - 1), + 1 per output with
    a bias); returns the FLOPs moved, by module (+ to the child, - from the parent)."""
    moved: dict[str, int] = {}
    for child, rows in row_uses.items():
        parent = child.rsplit(".", 1)[0] if "." in child else ""
        if not child.endswith("out_proj") or parent not in contractions or "weight" not in rows:
            continue
        fact = next(f for f in facts.weights[known_as(child)] if f.name == "weight")
        k = fact.numel // max(fact.out_channels, 1)
        uses = sum(rows["weight"])
        macs = uses * k
        flops = uses * (2 * k - 1) + (uses if facts.bias_params.get(known_as(child)) else 0)
        source = contractions[parent]
        source.macs -= macs
        source.flops -= flops
        target = contractions.setdefault(child, _Contractions(act_bits=source.act_bits, dtype=source.dtype))
        target.macs += macs
        target.flops += flops
        target.ops.add(MHA_OP)
        moved[child] = moved.get(child, 0) + flops
        moved[parent] = moved.get(parent, 0) - flops
    return moved


def _full_rows(fact: WeightFact) -> list[int] | None:
    """Nonzeros per output row; all K in every row when the weight has no zeros."""
    if fact.row_nonzero is not None:
        return fact.row_nonzero
    if fact.nonzero is not None and fact.nonzero == fact.numel:
        return [fact.numel // max(fact.out_channels, 1)] * fact.out_channels
    return None


def _row_flops(uses: list[int], per_row: int, nonzero: list[int] | None) -> int:
    """Sum over rows of uses_o * (2 * nz_o - 1) (rows with nz_o > 0); dense: nz_o = K."""
    if nonzero is None:
        return sum(u * (2 * per_row - 1) for u in uses)
    return sum(u * (2 * nz - 1) for u, nz in zip(uses, nonzero, strict=True) if nz > 0)


def build_view(
    report: Report,
    facts: ModelFacts,
    *,
    assume_sparsity: float | str | None = None,
    assume_bits: str | Mapping[str, str] | None = None,
) -> CompressionView:
    """The compression view of ``report`` from the weight facts of its model."""
    facts.count()
    sparsity = parse_sparsity(assume_sparsity) if assume_sparsity is not None else None
    check_bits(assume_bits)
    _check_prefixes(assume_bits, report)
    known_as = facts_name(report)  # a shared module's further name -> the name its facts have
    homes = functional_homes(report, facts)
    contractions = _contractions(report, facts, homes)
    input_bits = facts.qat_input_bits  # eager QAT, seen in trace order (overhead.classifier)
    row_uses = attention_row_uses(report, facts)
    moved_flops = _move_out_projections(contractions, row_uses, facts, known_as)
    for record in report.ops:  # the FLOPs of matmuls counted at the submodule whose weight they use
        if id(record) in homes:
            moved_flops[homes[id(record)]] = moved_flops.get(homes[id(record)], 0) + record.cost.flops
            moved_flops[record.module] = moved_flops.get(record.module, 0) - record.cost.flops
    layers: dict[str, LayerCompression] = {}
    unrecognised: list[str] = []
    sliced: list[str] = []
    weight_modules = set(facts.weights) | set(contractions)
    other_flops = 0
    forward_flops = _forward_own_flops(report)
    for name in report.modules:
        if name not in weight_modules:
            other_flops += forward_flops(name) + moved_flops.get(name, 0)
    for name in report.modules:
        if name not in weight_modules:
            continue
        stats = report.modules[name]
        own_flops = forward_flops(name) + moved_flops.get(name, 0)
        work = contractions.get(name, _Contractions())
        bits_spec = _bits_for(name, assume_bits)
        bits = parse_bits(bits_spec) if bits_spec else None
        first = known_as(name)
        weights = facts.weights.get(name, [])
        # a weight another module holds (and counts), or a shared module called through
        # its further name (its weights are its first name's): its zeros still save MACs here
        tied = not weights and work.macs > 0 and bool(facts.weights.get(first) or facts.tied.get(first))
        if tied:
            weights = facts.weights.get(first) or facts.tied[first]
        if weights and not tied and reads_a_slice(weights, work, stats.calls):
            sliced.append(name)  # the whole weight's nonzeros are not those of the work
            weights = [replace(f, nonzero=None, row_nonzero=None) for f in weights]
        if weights and (sparsity is not None or bits is not None):
            weights = [_assumed(f, sparsity, bits) for f in weights]
        layer = LayerCompression(
            name=name,
            type=stats.type,
            compute_dtype=work.dtype,
            assumed=bool(weights) and (sparsity is not None or bits is not None),
        )
        layer.macs_dense = work.macs
        represented = input_bits.get(first, facts.qat_act_bits.get(first, work.act_bits))
        layer.act_bits = (bits[1] if bits else represented) or None
        bias = facts.bias_params.get(first, 0)
        bias_bits = (bits[0] if bits and bits[0] >= 16 else 32) if bits else facts.bias_bits.get(first, 32)
        layer.params = stats.own_params  # logical: finish() added the packed weights
        parametrized = report.modules.get(f"{name}.parametrizations" if name else "parametrizations")
        if parametrized is not None:  # the originals of its parametrized weights
            layer.params += parametrized.params
        other_bytes = facts.other_param_bytes.get(name, 0)  # norms, LSTM biases: at their dtype
        bias_actual = facts.bias_bytes.get(name, bias * 4) if first == name else 0  # stored at the first name
        if not weights:  # contractions of activations with activations (attention)
            layer.macs_effective = work.macs
            layer.weight_bits = layer.act_bits
            layer.flops_effective = own_flops
            layer.contraction_ops_effective = work.flops
            layer.bops = work.macs * (layer.act_bits or 32) ** 2
            layer.compute_dtype = work.dtype
            layer.bytes_actual = layer.bytes_ideal = bias_actual + other_bytes
            layers[name] = layer
            continue
        n_total = sum(f.numel for f in weights)
        known = all(f.nonzero is not None for f in weights)
        nz_total = sum(int(f.nonzero or 0) for f in weights) if known else None
        layer.weight_params = n_total
        layer.weight_nonzero = nz_total
        layer.bias_zeros = facts.bias_zeros.get(name, 0) if first == name else 0
        layer.nonzero_params = (
            (layer.params - n_total + nz_total - layer.bias_zeros) if nz_total is not None else None
        )
        layer.representation = ", ".join(sorted({f.representation for f in weights}))
        layer.structure = ", ".join(sorted({f.structure for f in weights}))
        layer.weight_bits = max(f.weight_bits for f in weights)
        layer.group_size = next((f.group_size for f in weights if f.group_size), None)
        layer.n_scales = sum(f.n_scales for f in weights)
        unrecognised += [
            f"{f'{name}.' if name else ''}{f.name} ({f.representation.removeprefix('unrecognised ')})"
            for f in weights
            if f.representation.startswith("unrecognised")
        ]
        rows = row_uses.get(name, {})
        exact = all(f.name in rows and (_full_rows(f) is not None or not known) for f in weights)
        if weights and exact:  # uses per row (attention projections); the rest: activations x activations
            per_row = [(rows[f.name], f.numel // max(f.out_channels, 1)) for f in weights]
            weight_macs = sum(sum(u) * k for u, k in per_row)
            activation_macs = work.macs - weight_macs
            layer.macs_effective = (
                sum(
                    sum(u * nz for u, nz in zip(rows[f.name], _full_rows(f) or [], strict=True))
                    for f in weights
                )
                + activation_macs
                if known
                else work.macs
            )
            dense_flops = sum(_row_flops(u, k, None) for u, k in per_row)
            effective_flops = (
                sum(
                    _row_flops(rows[f.name], k, _full_rows(f))
                    for f, (_, k) in zip(weights, per_row, strict=True)
                )
                if known
                else dense_flops
            )
            # the contraction's other operations as counted: bias adds, attention, softmax
            bias_adds = work.flops - dense_flops
        else:
            uses = work.macs // n_total if n_total else 0
            # macs_dense * nz / N, exact: R = MACs / N need not be whole (swin's attention
            # holds a 169 x 3 bias table beside its contractions)
            layer.macs_effective = work.macs * nz_total // n_total if nz_total is not None else work.macs
            dense_flops = sum(_effective_flops(f, uses, None) for f in weights)
            effective_flops = (
                sum(_effective_flops(f, uses, f.row_nonzero) for f in weights) if known else dense_flops
            )
            bias_adds = uses * sum(f.out_channels for f in weights) if bias else 0
            if "ConvTranspose" in stats.type and len(weights) == 1 and work.outputs:
                dense_flops, effective_flops, bias_adds = _transposed_flops(
                    weights[0], work, layer.macs_effective, bias=bool(bias)
                )
        # + what the contraction ops do besides the weight contraction and its bias (an
        # LSTM's gates and second bias, float gates around an int8 one): MicroNet's adds
        side = work.flops if work.integer else max(0, work.flops - dense_flops - bias_adds)
        layer.contraction_ops_effective = effective_flops + bias_adds + side
        layer.bias_params = bias
        if work.integer or (bits is not None and bits[1] <= 8 and bits[0] <= 8):
            # the float work left around an integer contraction (an int8 LSTM's gates, the
            # float bias add torchao runs after ``_int_mm``) stays FLOPs; a bias add the
            # integer kernel does itself (torch.ao) is integer work
            float_bias = work.integer and own_flops > work.flops
            layer.int_ops_effective = effective_flops + (0 if float_bias else bias_adds)
            layer.flops_effective = own_flops if work.integer else own_flops - dense_flops - bias_adds
            layer.compute_dtype = "int8"
        else:
            layer.flops_effective = own_flops + effective_flops - dense_flops
        if layer.macs_effective and layer.act_bits:
            layer.bops = layer.macs_effective * layer.weight_bits * layer.act_bits
        value_bytes = [ideal_value_bytes(f) for f in weights]
        layer.ideal_format = ", ".join(sorted({fmt for _, fmt in value_bytes}))
        layer.weight_bytes_ideal = sum(b for b, _ in value_bytes) + sum(f.ideal_scale_bytes for f in weights)
        bias_bytes = ceil(bias * bias_bits / 8) if first == name else 0  # stored at the first name
        layer.bytes_ideal = layer.weight_bytes_ideal + bias_bytes + other_bytes
        layer.weight_bytes_actual = sum(f.storage_bytes + f.scale_bytes for f in weights)
        layer.bytes_actual = layer.weight_bytes_actual + bias_actual + other_bytes
        if tied:  # counted (params, nonzeros, storage) at the module that holds the weight
            layer.representation = f"tied ({layer.representation})"
            layer.weight_params, layer.weight_nonzero, layer.nonzero_params = 0, 0, layer.params
            layer.weight_bytes_actual = layer.weight_bytes_ideal = 0
            layer.bytes_actual = bias_actual + other_bytes
            layer.bytes_ideal = bias_bytes + other_bytes
        layers[name] = layer
    view = CompressionView(
        layers=layers,
        overhead={op: stats.cost for op, stats in getattr(report, "overhead", {}).items()},
        overhead_counted=bool(report.options.get("count_overhead", False)),
        work_by_dtype=work_by_dtype(report, facts),
        params=report.params,
        assumptions={
            k: v for k, v in (("sparsity", assume_sparsity), ("bits", assume_bits)) if v is not None
        },
        unrecognised=unrecognised,
        batch_size=report.batch_size,
        sliced=sliced,
        _facts=facts,
        _report=report,
    )
    view._other_flops = other_flops
    view._rehomed = set(homes)
    view._module_param_bytes = {
        name: (
            facts.other_params.get(name, 0) + facts.bias_params.get(name, 0) * (name in facts.bias_bytes),
            facts.other_param_bytes.get(name, 0) + facts.bias_bytes.get(name, 0),
        )
        for name in report.modules
        if name not in layers and (name in facts.other_params or name in facts.bias_bytes)
    }
    counted = sum(count for count, _ in view._module_param_bytes.values())
    layer_params = sum(layer.params for layer in layers.values())
    view._other_param_bytes = sum(b for _, b in view._module_param_bytes.values()) + 4 * max(
        0, report.params - layer_params - counted
    )  # params no module's facts explain (TorchScript submodules): at 4 bytes
    return view
