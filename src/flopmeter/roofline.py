"""Roofline estimates: how long each op would take on a hardware spec at best.

Per op: compute time = FLOPs / peak FLOP/s (for the op's dtype), memory time =
bytes / bandwidth; the op takes max of the two and is compute- or memory-bound by
which is larger. A module's estimate is the sum over its ops (ops run one after the
other); its bound is the one that accounts for more of that time. Exact FLOPs and the
lower-bound traffic are used, so these are optimistic times (no launch overhead, no
cache effects, perfect kernels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .hardware import Hardware, get
from .report import Report, parent_of


@dataclass
class RooflineRow:
    """One module's roofline numbers (inclusive of its children)."""

    name: str
    type: str
    depth: int
    flops: int = 0
    bytes: int = 0
    compute_time: float = 0.0  # seconds spent in compute-bound ops
    memory_time: float = 0.0  # seconds spent in memory-bound ops

    @property
    def time(self) -> float:
        """Estimated seconds: the sum of each op's max(compute, memory) time."""
        return self.compute_time + self.memory_time

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte moved."""
        return self.flops / self.bytes if self.bytes else float("inf")

    @property
    def bound(self) -> str:
        if not self.time:
            return "-"
        return "compute" if self.compute_time >= self.memory_time else "memory"


@dataclass
class Roofline:
    """Per-module estimates on one hardware spec, and the model's estimated latency."""

    hardware: Hardware
    rows: dict[str, RooflineRow] = field(default_factory=dict)

    @property
    def total(self) -> RooflineRow:
        return self.rows[""]

    @property
    def latency(self) -> float:
        """Estimated seconds for the whole call (batch included)."""
        return self.total.time


def op_time(flops: int, nbytes: int, hardware: Hardware, dtype: str) -> tuple[float, float]:
    """(compute seconds, memory seconds) of one op."""
    return flops / hardware.peak(dtype), nbytes / hardware.bandwidth


def roofline(report: Report, hardware: Hardware | str) -> Roofline:
    """Roofline estimates for every module of ``report`` on ``hardware``."""
    spec = get(hardware) if isinstance(hardware, str) else hardware
    result = Roofline(spec)
    for module_name, m in report.modules.items():
        result.rows[module_name] = RooflineRow(module_name, m.type, m.depth)
    for record in report.ops:
        compute, memory = op_time(record.cost.flops, record.cost.bytes, spec, record.dtype)
        name: str | None = record.module
        while name is not None:
            row = result.rows[name]
            row.flops += record.cost.flops
            row.bytes += record.cost.bytes
            if compute >= memory:
                row.compute_time += compute
            else:
                row.memory_time += memory
            name = parent_of(name, result.rows) if name else None
    return result
