"""Hardware specs for roofline estimates: presets (with sources), your own, or measured.

Peaks are in FLOP/s (a speed); the counts in a Report are FLOPs (an amount of work).
"""

from __future__ import annotations

import math
import numbers
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import torch

OP_CLASSES = (
    "matmul",
    "conv",
    "pointwise",
    "depthwise",
    "recurrent",
    "attention",
    "elementwise",
    "transcendental",
    "norm",
    "reduction",
    "pooling",
    "data",
)
"""Op classes of the calibrated latency model (``flopmeter.roofline.op_class``)."""

UNIT_FLOOR = 1e6
"""Peaks below 1 MFLOP/s and bandwidths below 1 MB/s are refused: no device that runs a
network is that slow, and ``bandwidth=2039`` or ``peak_flops=19.5`` is a figure in GB/s or
TFLOP/s that would make every estimate a billion times too slow."""

# torch dtype names whose peak is listed under a family name in the presets
_DTYPE_FAMILY = {
    "qint8": "int8",
    "quint8": "int8",
    "uint8": "int8",
    "half": "float16",
    "float": "float32",
    # complex arithmetic is real arithmetic on its parts (counted in real FLOPs): the
    # parts' peak (before probe 14 complex128 fell back to float32's, 2-64x too fast)
    "complex64": "float32",
    "complex128": "float64",
    "complex32": "float16",
}


@dataclass(frozen=True)
class Hardware:
    """Peak FLOP/s per dtype name ("float32", "bfloat16", ...) and memory bandwidth (bytes/s).

    ``peak_flops`` may be a single number (used for every dtype).

    The calibrated latency model (docs/speed.md) also uses, when given:
    ``op_overhead``, seconds of fixed cost per executed op (dispatch + kernel launch):
    one number, or one per op class with "default" for the rest;
    ``module_overhead``, seconds per ``nn.Module`` call (Python); ``efficiency``, the
    fraction of the roofline bound each op class reaches (``OP_CLASSES`` in
    ``flopmeter.roofline``; missing classes reach 1.0), and optionally
    ``"<class>:memory"`` for that class's memory-bound ops (the fraction of the bandwidth
    they reach, when it differs from the fraction of peak its compute-bound ops reach);
    ``overlap``, whether the host
    queues work asynchronously (GPUs), so per-op overheads hide behind device time.
    """

    name: str
    peak_flops: dict[str, float] | float
    bandwidth: float
    description: str = ""
    source: str = ""
    notes: list[str] = field(default_factory=list)
    op_overhead: dict[str, float] | float = 0.0
    module_overhead: float = 0.0
    efficiency: dict[str, float] = field(default_factory=dict)
    overlap: bool = False
    calibration_source: str = ""

    def __repr__(self) -> str:
        from ..render.reprs import hardware_repr

        return hardware_repr(self)

    def _check_overheads(self) -> None:
        overheads = self.op_overhead.values() if isinstance(self.op_overhead, dict) else [self.op_overhead]
        if any(not isinstance(v, (int, float)) or v < 0 for v in [*overheads, self.module_overhead]):
            raise ValueError(
                f"hardware {self.name!r}: overheads are seconds >= 0, got op_overhead={self.op_overhead!r}, "
                f"module_overhead={self.module_overhead!r}"
            )
        if any(not _finite(v) for v in [*overheads, self.module_overhead]):
            raise ValueError(
                f"hardware {self.name!r}: overheads must be finite seconds, got op_overhead="
                f"{self.op_overhead!r}, module_overhead={self.module_overhead!r}"
            )
        bad = {k: v for k, v in self.efficiency.items() if not _positive(v)}
        if bad:
            raise ValueError(f"hardware {self.name!r}: efficiencies are finite fractions > 0, got {bad}")
        classes = ", ".join(OP_CLASSES)
        unknown = [k for k in self.efficiency if k.removesuffix(":memory") not in OP_CLASSES]
        if unknown:
            raise ValueError(
                f"hardware {self.name!r}: unknown op class in efficiency: {', '.join(unknown)}; "
                f"expected {classes} (or '<class>:memory')"
            )
        if isinstance(self.op_overhead, dict):
            unknown = [k for k in self.op_overhead if k not in (*OP_CLASSES, "default")]
            if unknown:
                raise ValueError(
                    f"hardware {self.name!r}: unknown op class in op_overhead: {', '.join(unknown)}; "
                    f"expected {classes} or 'default'"
                )

    def overhead(self, op_class: str) -> float:
        """Fixed seconds per executed op of ``op_class`` ("default" when not listed)."""
        if isinstance(self.op_overhead, dict):
            return float(self.op_overhead.get(op_class, self.op_overhead.get("default", 0.0)))
        return float(self.op_overhead)

    def class_efficiency(self, op_class: str, memory_bound: bool) -> float:
        """The fraction of the roofline bound an op of ``op_class`` reaches:
        ``efficiency["<class>:memory"]`` for a memory-bound op when given, else
        ``efficiency[op_class]``, else 1.0."""
        if memory_bound and f"{op_class}:memory" in self.efficiency:
            return self.efficiency[f"{op_class}:memory"]
        return self.efficiency.get(op_class, 1.0)

    def work_time(self, op_class: str, compute: float, memory: float) -> tuple[float, bool]:
        """(seconds, memory-limited?) of one op's work on the calibrated model:
        ``max(compute / efficiency[class], memory / efficiency[class:memory])``, the roofline
        of the peak and bandwidth the class reaches. With one efficiency for the class this is
        ``max(compute, memory) / efficiency``; with two it stays continuous at the ridge, so
        more work never takes less time (one efficiency picked by the raw bound made a
        4096x4096 Linear at batch 8 predict faster than at batch 1 on a local CPU)."""
        compute_part = compute / self.class_efficiency(op_class, memory_bound=False)
        memory_part = memory / self.class_efficiency(op_class, memory_bound=True)
        return max(compute_part, memory_part), memory_part > compute_part

    @property
    def calibrated(self) -> bool:
        """Whether this spec carries overheads or per-class efficiencies (else the
        calibrated model reduces to the plain roofline bound)."""
        return bool(self.op_overhead or self.module_overhead or self.efficiency)

    def __post_init__(self) -> None:
        # numpy's scalars (np.float32, np.int64: a figure computed with numpy, a calibration's
        # np.median of timings) are numbers too, in every figure (R11b-3)
        for figure in ("peak_flops", "bandwidth", "op_overhead", "module_overhead", "efficiency"):
            value = getattr(self, figure)
            plain = {k: _plain(v) for k, v in value.items()} if isinstance(value, dict) else _plain(value)
            object.__setattr__(self, figure, plain)
        peaks = self.peak_flops.items() if isinstance(self.peak_flops, dict) else [("", self.peak_flops)]
        for dtype, peak in peaks:
            if not _positive(peak):
                where = f" for {dtype}" if dtype else ""
                raise ValueError(
                    f"Hardware {self.name!r}: peak_flops{where} must be a positive FLOP/s, got {peak!r}"
                )
        if isinstance(self.peak_flops, dict) and not self.peak_flops:
            raise ValueError(f"Hardware {self.name!r}: peak_flops needs at least one dtype")
        for dtype, peak in peaks:
            if peak < UNIT_FLOOR:
                where = f" for {dtype}" if dtype else ""
                raise ValueError(
                    f"Hardware {self.name!r}: peak_flops{where} is in FLOP/s, and {peak:g} is below 1 MFLOP/s:"
                    " a figure in TFLOP/s? (19.5 TFLOP/s is 19.5e12)"
                )
        unknown = [
            k for k in (self.peak_flops if isinstance(self.peak_flops, dict) else {}) if not _dtype_name(k)
        ]
        if unknown:
            raise ValueError(
                f"Hardware {self.name!r}: unknown dtype in peak_flops: {', '.join(map(repr, unknown))}; "
                "use torch dtype names such as float32, float16, bfloat16, float64, or tfloat32, float8, int8"
            )
        if not _positive(self.bandwidth):
            raise ValueError(
                f"Hardware {self.name!r}: bandwidth must be a positive bytes/s, got {self.bandwidth!r}"
            )
        if self.bandwidth < UNIT_FLOOR:
            raise ValueError(
                f"Hardware {self.name!r}: bandwidth is in bytes/s, and {self.bandwidth:g} is below 1 MB/s:"
                " a figure in GB/s or TB/s? (2,039 GB/s is 2.039e12)"
            )
        self._check_overheads()

    def peak(self, dtype: str | torch.dtype = "float32") -> float:
        """Peak FLOP/s for ``dtype``, a name or a ``torch.dtype`` (``float8_e4m3fn`` and kin
        use "float8", ``qint8`` and ``uint8`` use "int8"); float32's when the spec has none for it."""
        dtype = _peak_dtype_name(dtype)
        if isinstance(self.peak_flops, (int, float)):
            return float(self.peak_flops)
        family = (
            "float8" if dtype.startswith("float8") else _DTYPE_FAMILY.get(dtype, "")
        )  # ONNX: float8e4m3fn
        for name in (dtype, family, dtype.split("_")[0]):
            if name in self.peak_flops:
                return float(self.peak_flops[name])
        if "float32" in self.peak_flops:
            return float(self.peak_flops["float32"])
        return float(max(self.peak_flops.values()))

    def ridge_point(self, dtype: str | torch.dtype = "float32") -> float:
        """Arithmetic intensity (FLOPs per byte) where memory- and compute-bound meet."""
        return self.peak(dtype) / self.bandwidth


def lists_peak(hw: Hardware, dtype: str) -> bool:
    """Whether the spec lists a peak for ``dtype`` (else ``Hardware.peak`` falls back to
    float32's): by name, by family ("float8" for ``float8_e4m3fn``) or, for ``qint8``,
    ``quint8`` and ``uint8``, as "int8"."""
    if not isinstance(hw.peak_flops, dict):
        return False
    names = (dtype, dtype.split("_")[0], "int8" if dtype in ("qint8", "quint8", "uint8") else "")
    return any(name in hw.peak_flops for name in names)


# dtype names a report may hold that are not torch's: ONNX's (its float8 and float4 kinds,
# strings) and an ONNX tensor of unknown type
_OTHER_DTYPE_NAMES = frozenset({"string", "unknown", "float4e2m1"})


def _peak_dtype_name(dtype: object) -> str:
    """``torch.float16`` or "torch.float16" -> "float16"; a dtype name passes through; anything
    else (a typo, "fp16") is refused: it would get the float32 peak in silence."""
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    if not isinstance(dtype, str):
        raise TypeError(
            f"Hardware.peak: expected a dtype name such as 'float16' or a torch.dtype, got {dtype!r}"
        )
    name = dtype.removeprefix("torch.")
    if not (_dtype_name(name) or name.startswith("float8") or name in _OTHER_DTYPE_NAMES):
        raise ValueError(
            f"Hardware.peak: unknown dtype {name!r}; expected a torch dtype or its name (float32, "
            "float16, bfloat16, int8, ...) or a family the presets list (tfloat32, float8, int8, int4)"
        )
    return name


def _dtype_name(name: object) -> bool:
    """A torch dtype name ("float16", "half") or a family the presets list ("tfloat32", "float8")."""
    families = {"tfloat32", "float8", "int8", "int4"}
    return isinstance(name, str) and (name in families or isinstance(getattr(torch, name, None), torch.dtype))


def _plain(value: Any) -> Any:
    """A real number of another type than int and float (numpy's scalars) as a float;
    anything else as it is, for the checks to name."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, int, float)):
        return float(value)
    return value


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: object) -> bool:
    """A finite number above zero (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")


def _load_presets() -> dict[str, Hardware]:
    folder = resources.files(__package__)
    profiles = tomllib.loads(folder.joinpath("latency_profiles.toml").read_text(encoding="utf-8"))
    presets = {}
    for name, spec in tomllib.loads(folder.joinpath("presets.toml").read_text(encoding="utf-8")).items():
        latency = {**profiles.get(spec.get("latency_profile", ""), {}), **spec.get("latency", {})}
        presets[name] = Hardware(
            name=name,
            peak_flops={k: float(v) for k, v in spec["peak"].items()},
            bandwidth=float(spec["bandwidth"]),
            description=spec.get("description", ""),
            source=spec.get("source", ""),
            op_overhead=_overheads(latency.get("op_overhead", 0.0)),
            module_overhead=float(latency.get("module_overhead", 0.0)),
            efficiency={k: float(v) for k, v in latency.get("efficiency", {}).items()},
            overlap=bool(latency.get("overlap", False)),
            calibration_source=(
                f"latency profile {spec['latency_profile']!r}: {latency.get('source', '')}"
                if "latency_profile" in spec
                else latency.get("source", "")
            ),
        )
    return presets


def _overheads(value: object) -> dict[str, float] | float:
    if isinstance(value, dict):
        return {k: float(v) for k, v in value.items()}
    return float(value)  # type: ignore[arg-type]


PRESETS = _load_presets()


def names() -> list[str]:
    """The preset names, e.g. "a100-sxm-80gb", "h100-sxm"."""
    return sorted(PRESETS)


def get(name: str) -> Hardware:
    """A preset by name (see ``names()``); "local" (or "local-cpu") measures and calibrates
    this machine's CPU, "local-cuda" its GPU (a few seconds, once per process and thread
    count). Names are matched without regard to case or surrounding spaces."""
    if not isinstance(name, str):
        raise TypeError(f"hardware name must be a string such as 'h100-sxm' or 'local', got {name!r}")
    key = name.strip().lower()  # "H100-SXM" is h100-sxm
    if key in ("local", "local-cpu", "local-cuda"):
        from .calibrate import calibrate

        if key == "local-cuda" and not torch.cuda.is_available():
            raise ValueError(
                "hardware 'local-cuda' measures a CUDA GPU, and torch sees none here; use 'local'"
            )
        return calibrate("cuda" if key == "local-cuda" else "cpu")
    if key not in PRESETS:
        import difflib

        close = difflib.get_close_matches(key, PRESETS, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ValueError(
            f"unknown hardware {name!r}; {hint}known: {', '.join(names())}, or 'local' / 'local-cuda'"
        )
    return PRESETS[key]


def measure_local(
    device: str = "cpu",
    *,
    size: int = 2048,
    copy_mib: int = 256,
    repeat: int = 3,
    clock: Callable[[], float] = time.perf_counter,
    dtypes: tuple[str, ...] = ("float32",),
) -> Hardware:
    """Measure this machine: peak FLOP/s per dtype in ``dtypes`` from a large matmul
    (2*n^3 FLOPs; for "int8", integer ops per second from ``torch._int_mm``, the int8 x int8
    -> int32 GEMM, left out where this torch or device has none) and bandwidth from a large
    copy (read + write = 2 x bytes). Best of ``repeat`` runs, timed with ``clock``."""
    dev = torch.device(device)
    src = torch.empty(copy_mib * 2**20 // 4, device=dev)
    dst = torch.empty_like(src)

    def best(fn: object) -> float:
        times = []
        for _ in range(repeat + 1):  # the first run is a warm-up
            _sync(dev)
            start = clock()
            fn()  # type: ignore[operator]
            _sync(dev)
            times.append(clock() - start)
        return min(times[1:])

    peaks = {}
    for dtype in dtypes:
        if dtype == "int8":
            integer = _int8_gemm(size, dev)
            if integer is not None:
                peaks[dtype] = 2 * size**3 / best(integer)
            continue
        a = torch.randn(size, size, device=dev, dtype=getattr(torch, dtype))
        b = torch.randn(size, size, device=dev, dtype=getattr(torch, dtype))
        peaks[dtype] = 2 * size**3 / best(lambda a=a, b=b: torch.mm(a, b))
    bandwidth = 2 * src.numel() * 4 / best(lambda: dst.copy_(src))
    return Hardware(
        name=f"local-{dev.type}",
        peak_flops=peaks,
        bandwidth=bandwidth,
        description=f"this machine's {dev.type}, measured",
        source=f"measured: {size}x{size} {'/'.join(dtypes)} matmul and a {copy_mib} MiB copy, best of {repeat}",
    )


def _int8_gemm(size: int, device: torch.device) -> Callable[[], object] | None:
    """An int8 x int8 -> int32 ``size``-square GEMM to time (``torch._int_mm``, the kernel
    int8 inference reaches on this device), or None where it does not run."""
    a = torch.randint(-128, 128, (size, size), dtype=torch.int8, device=device)
    b = torch.randint(-128, 128, (size, size), dtype=torch.int8, device=device)
    try:
        torch._int_mm(a, b)
    except (AttributeError, RuntimeError, NotImplementedError):
        return None
    return lambda: torch._int_mm(a, b)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
