"""Latency estimates on a hardware spec: the plain roofline bound and a calibrated model.

Roofline bound, per op: compute time = FLOPs / peak FLOP/s (for the op's dtype; TF32 for the
float32 convolutions, RNNs and matmuls torch would run on it, ``peak_dtype``), memory
time = bytes / bandwidth; the op takes the larger of the two and is compute- or
memory-bound by which is larger. Exact FLOPs and lower-bound traffic: an optimistic time
(no launch overhead, perfect kernels).

Calibrated model, per op (docs/speed.md): ``overhead[class] + max(compute / efficiency[class],
memory / efficiency["<class>:memory"])`` (the class's one efficiency where the spec has no
``:memory`` entry: then ``bound / efficiency[class]``), where the class comes from the op's name (and a convolution's kernel and groups); a
recurrent layer pays its overhead once per time step and layer; plus
``module_overhead`` per ``nn.Module`` call. On hardware that queues work asynchronously
(``overlap``, GPUs) the host's overheads hide behind the device's work: the estimate is
``max(sum of overheads, sum of bound / efficiency)``. A spec with no overheads and no
efficiencies gives the bound itself.

A module's estimate is the sum over its ops (they run one after the other).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from math import prod

from .cost import Cost
from .hardware import OP_CLASSES as OP_CLASSES  # re-exported: the classes op_class returns
from .hardware import Hardware, get
from .hardware.tf32 import peak_dtype_of
from .registry import ALLOCATION_ONLY as ALLOCATION_ONLY  # re-exported: ops that only allocate
from .registry import kind_of
from .report import OpRecord, Report, parent_of

DEPTHWISE_CHANNELS = 16
BOUND_MODEL = "roofline-bound"
CALIBRATED_MODEL = "calibrated"

_MATMUL = frozenset("mm addmm bmm baddbmm matmul linear addmv mv dot einsum _grouped_mm".split())
_RECURRENT = frozenset(
    "lstm gru rnn_tanh rnn_relu mkldnn_rnn_layer lstm_cell gru_cell rnn_tanh_cell rnn_relu_cell".split()
    + "quantized_lstm quantized_gru quantized_lstm_cell_dynamic quantized_gru_cell_dynamic".split()
    + "quantized_rnn_tanh_cell_dynamic quantized_rnn_relu_cell_dynamic".split()
)
_TRANSCENDENTAL = frozenset(
    "exp log sigmoid tanh silu gelu erf softplus mish elu selu pow sqrt rsqrt sin cos logsigmoid celu glu".split()
)
_REDUCTION = frozenset(
    "softmax log_softmax mean sum amax amin max min var std cumsum cumprod prod topk sort argmax argmin "
    "logsumexp histc linalg_vector_norm var_mean std_mean norm".split()
)


def op_class(record: OpRecord) -> str:
    """The class of one op for the calibrated model (one of ``OP_CLASSES``).

    By name (``aten.`` and the trailing ``_`` of in-place variants dropped):
    contractions "matmul" (also the quantized and fp8 ones: ``*mm``, ``*linear*``); convolutions "depthwise" when grouped with fewer than
    ``DEPTHWISE_CHANNELS`` input channels per group (from the weight's shape
    ``(C_out, C_in / groups, kh, kw)`` and the input's ``(N, C_in, ...)``), else
    "pointwise" with a 1x1 kernel, else "conv"; LSTM/GRU/RNN
    layers "recurrent"; attention kernels "attention"; exp/log/sigmoid/tanh/GELU/SiLU and
    kin "transcendental"; batch/layer/group/instance/RMS norms "norm"; softmax and
    reductions (sum, mean, max, ...) "reduction" (a norm's or softmax's backward too:
    ``native_batch_norm_backward``, ``_softmax_backward_data``); windowed pooling "pooling"; the
    registry's "data" ops (copies, cat, index) "data"; every other op "elementwise" (add,
    mul, ReLU, clamp, ...).
    """
    name = record.op.rsplit(".", 1)[-1].strip("_").removeprefix("native_")
    if "attention" in name:
        return "attention"
    if name.startswith(("conv", "_conv", "mkldnn_conv", "cudnn_conv")):
        # convolution_backward's tensors are (grad_output, input, weight)
        return _conv_class(record.shapes[1:] if name.endswith("backward") else record.shapes)
    if name in _MATMUL or name.endswith("mm") or "linear" in name or "matmul" in name:
        return "matmul"  # also _scaled_mm (fp8), _int_mm, _weight_int8pack_mm, quantized linear
    if name in _RECURRENT:
        return "recurrent"
    if kind_of(record.op) == "data":
        return "data"
    forward = name.removesuffix("_data").removesuffix("_backward")  # a backward is in its forward's class
    if (
        forward.endswith(("batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm"))
        or "_norm_legit" in name
    ):
        return "norm"
    if "pool" in name and "adaptive" not in name:
        return "pooling"
    if forward in _REDUCTION or "adaptive" in name:
        return "reduction"
    if name in _TRANSCENDENTAL or name.removesuffix("_backward") in _TRANSCENDENTAL:
        return "transcendental"
    return "elementwise"


def _conv_class(shapes: tuple[tuple[int, ...], ...]) -> str:
    """ "depthwise", "pointwise" (a 1x1 kernel: a GEMM over pixels) or "conv"."""
    if len(shapes) < 2 or len(shapes[0]) < 3 or len(shapes[1]) < 3:
        return "conv"
    channels, per_group = shapes[0][1], shapes[1][1]
    if per_group < channels and per_group < DEPTHWISE_CHANNELS:
        return "depthwise"
    return "pointwise" if prod(shapes[1][2:]) == 1 else "conv"


def launches(record: OpRecord, kind: str | None = None) -> int:
    """How many times an op pays its fixed cost: none for an op that only allocates
    (``ALLOCATION_ONLY``: no kernel; its dispatch is as cheap as a view's, which is not
    recorded at all), once, or for a recurrent layer once per
    time step and layer (``aten.lstm``'s input is ``(T, N, F)`` or ``(N, T, F)``, its
    hidden state ``(layers * directions, N, H)``; the CPU's ``mkldnn_rnn_layer`` is one
    layer with input ``(T, N, F)``)."""
    if record.op in ALLOCATION_ONLY:
        return 0
    if (kind or op_class(record)) != "recurrent" or len(record.shapes) < 2:
        return 1
    data, hidden = record.shapes[0], record.shapes[1]
    if record.op.endswith("mkldnn_rnn_layer") and len(data) == 3:
        return data[0]
    if len(data) != 3 or len(hidden) != 3:
        return 1
    steps = data[1] if data[0] == hidden[1] and data[1] != hidden[1] else data[0]
    return steps * hidden[0]


@dataclass
class RooflineRow:
    """One module's numbers (inclusive of its children).

    ``compute_time`` / ``memory_time``: roofline-bound seconds of its compute- and
    memory-bound ops. ``calibrated_compute`` / ``calibrated_memory``: the same ops'
    seconds divided by their class efficiency; ``overhead_time``: fixed per-op and
    per-module-call costs. ``time`` is the calibrated estimate, ``bound_time`` the bound.
    """

    name: str
    type: str
    depth: int
    flops: int = 0
    int_ops: int = 0  # integer operations: 2 x MACs of integer work (0 FLOPs by convention)
    bytes: int = 0
    ops: int = 0
    compute_time: float = 0.0
    memory_time: float = 0.0
    calibrated_compute: float = 0.0
    calibrated_memory: float = 0.0
    overhead_time: float = 0.0
    overlap: bool = False

    def __repr__(self) -> str:
        from .render.reprs import roofline_row_repr

        return roofline_row_repr(self)

    @property
    def bound_time(self) -> float:
        """Roofline-bound seconds: the sum of each op's max(compute, memory) time."""
        return self.compute_time + self.memory_time

    @property
    def time(self) -> float:
        """Calibrated seconds: overheads plus each op's bound / class efficiency (or the
        larger of the two sums where the host overlaps the device)."""
        work = self.calibrated_compute + self.calibrated_memory
        return max(work, self.overhead_time) if self.overlap else work + self.overhead_time

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: operations per byte moved, (FLOPs + ``int_ops``) / bytes.
        For floating-point work that is FLOPs per byte; a quantized int8 conv or linear
        (MACs but 0 FLOPs by convention) counts its 2 x MACs integer operations, the work
        the roofline costs at the "int8" peak (TOPS), so its intensity is not 0."""
        return (self.flops + self.int_ops) / self.bytes if self.bytes else float("inf")

    @property
    def bound(self) -> str:
        """The roofline's verdict: "compute" or "memory", whichever bound accounts for
        more of ``bound_time``."""
        if not self.bound_time:
            return "-"
        return "compute" if self.compute_time >= self.memory_time else "memory"

    @property
    def regime(self) -> str:
        """What most of the calibrated time goes to: "overhead", "memory" or "compute"."""
        if not self.time:
            return "-"
        parts = {
            "compute": self.calibrated_compute,
            "memory": self.calibrated_memory,
            "overhead": self.overhead_time,
        }
        return max(parts, key=lambda k: parts[k])


@dataclass
class Roofline:
    """Per-module estimates on one hardware spec, and the model's estimated latency.

    ``model`` names what produced ``latency``: "calibrated" (overheads and per-class
    efficiencies of the spec) or "roofline-bound" (the spec has none; then ``latency ==
    bound_latency``).
    """

    hardware: Hardware
    rows: dict[str, RooflineRow] = field(default_factory=dict)
    model: str = BOUND_MODEL
    batch_size: int = 1
    dtype: str = "float32"  # the dtype whose peak most FLOPs run at (peak_dtype; its peak heads the tables)
    peak_time: float = 0.0  # seconds the FLOPs take at the peak of each op's dtype
    single_dtype: bool = True  # whether all FLOPs ran in ``dtype``

    def __repr__(self) -> str:
        from .render.reprs import roofline_repr

        return roofline_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: the hardware, the estimate and a table of the top modules, an
        HTML fragment as a Report's (``render.reprs.roofline_html``)."""
        from .render.reprs import roofline_html

        return roofline_html(self)

    @property
    def peak_flops(self) -> float:
        """The peak FLOP/s the model's FLOPs run at: FLOPs / ``peak_time`` (for a model in
        one dtype, that dtype's peak; float32's when the model does no FLOPs)."""
        flops = self.total.flops
        if not flops or not self.peak_time or self.single_dtype:
            return self.hardware.peak(self.dtype)  # exactly the datasheet figure
        return flops / self.peak_time

    @property
    def total(self) -> RooflineRow:
        return self.rows[""]

    @property
    def latency(self) -> float:
        """Estimated seconds for the whole call (batch included), by ``model``."""
        return self.total.time

    @property
    def bound_latency(self) -> float:
        """The plain roofline bound for the whole call, in seconds."""
        return self.total.bound_time

    @property
    def throughput(self) -> float | None:
        """Samples per second at the estimated latency (None when it is 0)."""
        return self.batch_size / self.latency if self.latency else None


def op_time(flops: int, nbytes: int, hardware: Hardware, dtype: str) -> tuple[float, float]:
    """(compute seconds, memory seconds) of one op on the roofline."""
    return flops / hardware.peak(dtype), nbytes / hardware.bandwidth


def integer_ops(cost: Cost) -> int:
    """Integer operations of one op's ``cost``: 2 x MACs for integer work (quantized int8
    convs and linears: MACs but 0 FLOPs by convention), else 0."""
    return 2 * cost.macs if not cost.flops and cost.macs else 0


def peak_dtype(record: OpRecord, hardware: Hardware, *, allowed: dict[str, bool] | None = None) -> str:
    """The dtype whose peak one op's FLOPs run at on ``hardware``: the op's own, except
    float32 convolutions, recurrent layers and matmuls that torch, as this process is set,
    runs on TF32 tensor cores (``flopmeter.hardware.tf32.peak_dtype_of``: by default
    convolutions and RNNs through cuDNN yes, matmuls no), where the spec lists a "tfloat32"
    peak. ``allowed``: its memo of torch's settings by op class."""
    return peak_dtype_of(record.dtype, op_class(record), hardware, allowed)


def _op_times(record: OpRecord, hardware: Hardware, dtype: str) -> tuple[float, float]:
    """``op_time`` of one record computing in ``dtype``; integer work is costed as its
    ``integer_ops`` at the "int8" peak."""
    int_ops = integer_ops(record.cost)
    if int_ops:
        return int_ops / hardware.peak("int8"), record.cost.bytes / hardware.bandwidth
    return op_time(record.cost.flops, record.cost.bytes, hardware, dtype)


def roofline(report: Report, hardware: Hardware | str) -> Roofline:
    """Estimates for every module of ``report`` on ``hardware``: the bound and, when the
    spec carries calibration, the calibrated model (``Roofline.model`` says which)."""
    spec = get(hardware) if isinstance(hardware, str) else hardware
    if not isinstance(spec, Hardware):
        raise TypeError(f"hardware must be a flopmeter.hardware.Hardware or a preset name, got {spec!r}")
    result = Roofline(
        spec, model=CALIBRATED_MODEL if spec.calibrated else BOUND_MODEL, batch_size=report.batch_size
    )
    for module_name, m in report.modules.items():
        result.rows[module_name] = RooflineRow(module_name, m.type, m.depth, overlap=spec.overlap)
    tf32: dict[str, bool] = {}  # op class -> tf32_allowed, read once per call
    for record in report.ops:
        kind = op_class(record)
        dtype = peak_dtype_of(record.dtype, kind, spec, tf32)
        compute, memory = _op_times(record, spec, dtype)
        result.peak_time += compute if record.cost.flops else 0.0
        work, memory_limited = spec.work_time(kind, compute, memory)
        overhead = spec.overhead(kind) * launches(record, kind)
        int_ops = integer_ops(record.cost)
        for name in _enclosing(record.module, result.rows):
            row = result.rows[name]
            row.flops += record.cost.flops
            row.int_ops += int_ops
            row.bytes += record.cost.bytes
            row.ops += 1
            row.overhead_time += overhead
            if compute >= memory:
                row.compute_time += compute
            else:
                row.memory_time += memory
            if memory_limited:
                row.calibrated_memory += work
            else:
                row.calibrated_compute += work
    # nn.Module calls, inclusive; an ONNX file's "modules" are its node names' scopes, which
    # a runtime does not call: no module-call cost there (probe 13, O6)
    for module_name, m in report.modules.items() if report.options.get("source") != "onnx" else ():
        for name in _enclosing(module_name, result.rows):
            result.rows[name].overhead_time += spec.module_overhead * m.calls
    by_dtype = flops_by_dtype(report, spec, allowed=tf32)  # FLOPs by the dtype whose peak they run at
    if by_dtype:
        result.dtype = max(by_dtype, key=lambda d: by_dtype[d])
        result.single_dtype = len({spec.peak(d) for d in by_dtype}) == 1
    return result


def flops_by_dtype(
    report: Report,
    hardware: Hardware | None = None,
    *,
    dtype: str | None = None,
    allowed: dict[str, bool] | None = None,
) -> dict[str, int]:
    """Exact FLOPs of ``report``'s ops, by the dtype each op computes in (an op under
    autocast: the dtype autocast ran it in); dtypes that did no FLOPs are left out.

    With ``hardware``: by the dtype whose peak each op runs at there (``peak_dtype``:
    "tfloat32" for the float32 convolutions, RNNs and matmuls torch would run on TF32), the
    roofline's grouping. ``dtype``: take every op as computing in it instead of its own (LLM
    serving's convention: the model's dtype, split by op class). ``allowed``: the memo of
    torch's TF32 settings by op class."""
    found: dict[str, int] = {}
    allowed = {} if allowed is None else allowed
    for record in report.ops:
        if record.cost.flops:
            key = dtype or record.dtype
            if hardware is not None:
                key = peak_dtype_of(key, op_class(record), hardware, allowed)
            found[key] = found.get(key, 0) + record.cost.flops
    return found


def _enclosing(name: str, rows: dict[str, RooflineRow]) -> Iterator[str]:
    """``name`` and every module enclosing it, up to the root ("")."""
    yield name
    while name:
        name = parent_of(name, rows)
        yield name


def estimate_latency(report: Report, hardware: Hardware | str) -> float:
    """Estimated seconds for the call profiled in ``report`` on ``hardware``, by the
    calibrated model when the spec carries calibration (presets and "local" do), else
    the roofline bound. The one number speedup and tokens/s estimates should use."""
    return roofline(report, hardware).latency
