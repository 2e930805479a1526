"""Speedup estimates for compare: the calibrated latency model (flopmeter.roofline) with a
stated float baseline, per layer and in total. A model, never a measurement.

Per layer, a kernel time on the calibrated model (overheads aside):
``t = max(2*MACs / peak(dtype), bytes / bandwidth) / efficiency[op class]``.

- Baseline: the precision each float op of *both* models runs at, at its element size
  (a 16-bit baseline moves half the bytes of a float32 op). "auto": float16 where the
  hardware lists a float16 peak above its float32 one (GPUs, where float models are
  deployed in half precision and int8 is measured against fp16: an int8 speedup over
  fp32 would mix in what half precision gives for free), else the model's dtype (CPUs,
  "local"). Or name one: "float32", "tfloat32" (PyTorch's default for float32 cuDNN
  convolutions on Ampere and later), "float16", "bfloat16".
- W8A8 (weights and activations <= 8 bits): the after layer runs at the int8 peak (the
  fp8 peak for fp8 work; the baseline's peak where the spec lists none), its
  activations' bytes scaled to 8 bits, its weights at their stored bytes.
- weight-only (fewer weight bits, wider activations): ``WEIGHT_ONLY_EFFICIENCY`` x the
  time ratio with the smaller weights, never below 1.0 (published gains are 0.5-0.8 x
  the bytes ratio).
- 2:4: half the MACs and the kept weights, capped at ``MAX_2_4_SPEEDUP``; 1.0 on fewer
  than ``MIN_ROWS_2_4`` rows (decode-sized shapes run slower: pytorch #111339), and 1.0
  on hardware without sparse tensor cores (taken as: the spec lists no "tfloat32" peak;
  the GPUs that do are Ampere and later, which have them; CPUs have no 2:4 kernel).
- unstructured sparsity: 1.0 (no sparse kernel: it runs dense).
- structural (smaller shapes): the time ratio of the two layers.

Total: each model's latency on the calibrated model, ``max(work, overheads)`` where the
host overlaps the device (GPUs) else ``work + overheads``; work = the compared layers'
times (after: before / layer estimate) + every other op's; overheads = the per-op and
per-module-call costs of the ops as each model runs them (``Roofline.total``). The
compression's emulation ops (the overhead bucket) are not timed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..hardware import Hardware
from ..hardware import lists_peak as lists_peak  # re-exported: compare.py and the tests ask here
from ..roofline import op_class, roofline

BASELINES = ("auto", "float32", "tfloat32", "float16", "bfloat16")
MIN_ROWS_2_4 = 64
MAX_2_4_SPEEDUP = 1.7
WEIGHT_ONLY_EFFICIENCY = 0.65

_STORAGE_BITS = {"float16": 16, "bfloat16": 16, "float32": 32, "tfloat32": 32, "float64": 64}


def check_baseline(baseline: str) -> None:
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}; got {baseline!r}")


def is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat", "tfloat")) and not dtype.startswith("float8")


def run_dtype(dtype: str, hw: Hardware, baseline: str) -> str:
    """The dtype whose peak a float op of ``dtype`` runs at under ``baseline``."""
    if not is_float(dtype):
        return dtype
    if baseline == "auto":
        baseline = auto_baseline(dtype, hw)
    return baseline


def auto_baseline(dtype: str, hw: Hardware) -> str:
    """For float32 (or float64) work: the faster of "float16" and "bfloat16" that the
    hardware lists above its float32 peak (GPU tensor cores, CPU AMX: what the float
    model gets with autocast, and what an int8 speedup is measured against); else
    ``dtype`` (no faster float listed: older CPUs, "local")."""
    peaks = hw.peak_flops if isinstance(hw.peak_flops, dict) else {}
    half = max(("float16", "bfloat16"), key=lambda name: peaks.get(name, 0.0))
    if dtype in ("float32", "float64") and peaks.get(half, 0.0) > hw.peak("float32"):
        return half
    return dtype


def byte_scale(dtype: str, run: str) -> float:
    """Bytes of a float op of ``dtype`` when run at ``run`` (16-bit baselines move half)."""
    if not is_float(dtype) or dtype not in _STORAGE_BITS or run not in _STORAGE_BITS:
        return 1.0
    return _STORAGE_BITS[run] / _STORAGE_BITS[dtype]


def kernel_time(
    macs: int, nbytes: float, peak: float, kind: str, hw: Hardware, flops: int | None = None
) -> float:
    """Seconds of one layer's work on the calibrated model, overheads aside:
    max(FLOPs / peak / efficiency, bytes / bandwidth / memory efficiency) of its op class
    (``Hardware.work_time``; FLOPs = 2 * MACs)."""
    work = 2 * macs if flops is None else flops
    compute, memory = work / peak, nbytes / hw.bandwidth
    return hw.work_time(kind, compute, memory)[0]


@dataclass
class Basis:
    """What one estimate rests on: its kind ("structural", "W8A8", "weight-only", "2:4",
    "2:4 small", "2:4 no kernel", "unstructured", "unchanged", "none", "total"), the hardware, the
    baseline dtype and peak, the after dtype and peak, and kind-specific numbers."""

    kind: str
    hardware: str
    baseline: str = ""
    baseline_peak: float = 0.0
    dtype: str = ""
    peak: float = 0.0
    numbers: dict[str, float] = field(default_factory=dict)


@dataclass
class Layer:
    """The inputs of one layer's estimate."""

    macs: int
    nbytes: int
    weight_bytes: int
    dtype: str
    kind: str
    act_bits: int | None
    weight_bits: int | None
    weight_params: int
    weight_bytes_ideal: int
    structure: str
    weight_nonzero: int | None


def layer_kinds(report: Any) -> dict[str, str]:
    """Per module: the op class (flopmeter.roofline.op_class) of its first forward
    contraction."""
    kinds: dict[str, str] = {}
    for record in report.ops:
        if record.phase == "forward" and record.cost.macs and record.module not in kinds:
            kinds[record.module] = op_class(record)
    return kinds


def estimate_layer(
    a: Layer, b: Layer, change: str, hw: Hardware, baseline: str
) -> tuple[float, Basis, float]:
    """(speedup before/after, its basis, the before layer's seconds)."""
    base = run_dtype(a.dtype, hw, baseline)
    scale = byte_scale(a.dtype, base)
    t_a = kernel_time(a.macs, a.nbytes * scale, hw.peak(base), a.kind, hw)
    basis = Basis(change, hw.name, base, hw.peak(base))
    if change == "unchanged":
        return 1.0, basis, t_a
    bytes_b = max(a.nbytes - a.weight_bytes, 0) * scale + b.weight_bytes
    if change == "structural":
        run_b = run_dtype(b.dtype, hw, baseline)
        t_b = kernel_time(b.macs, b.nbytes * byte_scale(b.dtype, run_b), hw.peak(run_b), b.kind, hw)
        return (t_a / t_b if t_b else 1.0), basis, t_a
    a_bits, b_bits = a.weight_bits or 32, b.weight_bits or 32
    if b_bits < a_bits and (b.act_bits or 32) <= 8:
        dtype = b.dtype if b.dtype.startswith("float8") else "int8"
        activations = max(a.nbytes - a.weight_bytes, 0) * (b.act_bits or 8) / _STORAGE_BITS.get(a.dtype, 32)
        listed = lists_peak(hw, dtype)
        peak = hw.peak(dtype) if listed else hw.peak(base)  # not listed: no faster than the baseline
        t_b = kernel_time(b.macs, activations + b.weight_bytes, peak, a.kind, hw)
        basis.kind, basis.dtype, basis.peak = "W8A8", dtype, peak
        basis.numbers = {"peak_listed": float(listed)}
        return (t_a / t_b if t_b else 1.0), basis, t_a
    if b_bits < a_bits:
        t_b = kernel_time(b.macs, bytes_b, hw.peak(base), a.kind, hw)
        ratio = t_a / t_b if t_b else 1.0
        basis.kind, basis.numbers = "weight-only", {"ratio": ratio, "efficiency": WEIGHT_ONLY_EFFICIENCY}
        return max(1.0, WEIGHT_ONLY_EFFICIENCY * ratio), basis, t_a
    if b.structure == "2:4":
        rows = b.macs // max(b.weight_params, 1)
        basis.numbers = {"rows": rows, "min_rows": MIN_ROWS_2_4, "cap": MAX_2_4_SPEEDUP}
        if not lists_peak(hw, "tfloat32"):
            basis.kind = "2:4 no kernel"
            return 1.0, basis, t_a
        if rows < MIN_ROWS_2_4:
            basis.kind = "2:4 small"
            return 1.0, basis, t_a
        sparse_bytes = max(a.nbytes - a.weight_bytes, 0) * scale + b.weight_bytes_ideal * scale
        t_b = kernel_time(b.macs // 2, sparse_bytes, hw.peak(base), a.kind, hw)
        basis.kind = "2:4"
        return min(MAX_2_4_SPEEDUP, t_a / t_b if t_b else 1.0), basis, t_a
    if (b.weight_nonzero or 0) < (a.weight_nonzero or 0):
        basis.kind = "unstructured"
        return 1.0, basis, t_a
    basis.kind = "none"
    return 1.0, basis, t_a


def rest_work(report: Any, layers: set[str], hw: Hardware, baseline: str) -> float:
    """Seconds of the forward ops outside ``layers`` on the calibrated model, overheads aside."""
    total = 0.0
    for record in report.ops:
        if record.module in layers or record.phase != "forward":
            continue
        run = run_dtype(record.dtype, hw, baseline)
        nbytes = record.cost.bytes * byte_scale(record.dtype, run)
        total += kernel_time(0, nbytes, hw.peak(run), op_class(record), hw, flops=record.cost.flops)
    return total


def overheads(report: Any, hw: Hardware) -> float:
    """Per-op and per-module-call seconds of the model as it runs (calibrated model),
    less the calls of the modules that only emulate the compression (a parametrization
    and its list, an observer, a fake quantizer): their ops are the overhead bucket, not
    timed, and the model they emulate makes no such calls (a 2:4 mask held by torch.ao's
    ``FakeSparsity`` would otherwise read as a slowdown of 2 calls per layer)."""
    return roofline(report, hw).total.overhead_time - hw.module_overhead * emulation_calls(report)


def emulation_calls(report: Any) -> int:
    """Calls of ``report``'s modules that emulate a compression: those the view's facts
    list as overhead (parametrizations, observers, fake quantizers), what they hold, and
    the ``ParametrizationList`` that runs a parametrization."""
    facts = getattr(report.compression, "_facts", None)
    machinery = tuple(getattr(facts, "overhead_modules", ()) or ())
    total = 0
    for name, module in report.modules.items():
        parts = name.split(".")
        if "parametrizations" in parts[:-1] or any(
            name == other or name.startswith(other + ".") for other in machinery
        ):
            total += module.calls
    return total


def latency(work: float, overhead: float, hw: Hardware) -> float:
    """The calibrated model's combination: max where the host overlaps the device."""
    return max(work, overhead) if hw.overlap else work + overhead
