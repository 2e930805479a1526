"""Hardware specs for roofline estimates: presets (with sources), your own, or measured.

Peaks are in FLOP/s (a speed); the counts in a Report are FLOPs (an amount of work).
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field
from importlib import resources

import torch


@dataclass(frozen=True)
class Hardware:
    """Peak FLOP/s per dtype name ("float32", "bfloat16", ...) and memory bandwidth (bytes/s).

    ``peak_flops`` may be a single number (used for every dtype).
    """

    name: str
    peak_flops: dict[str, float] | float
    bandwidth: float
    description: str = ""
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        peaks = self.peak_flops.items() if isinstance(self.peak_flops, dict) else [("", self.peak_flops)]
        for dtype, peak in peaks:
            if not _positive(peak):
                where = f" for {dtype}" if dtype else ""
                raise ValueError(
                    f"Hardware {self.name!r}: peak_flops{where} must be a positive FLOP/s, got {peak!r}"
                )
        if isinstance(self.peak_flops, dict) and not self.peak_flops:
            raise ValueError(f"Hardware {self.name!r}: peak_flops needs at least one dtype")
        if not _positive(self.bandwidth):
            raise ValueError(
                f"Hardware {self.name!r}: bandwidth must be a positive bytes/s, got {self.bandwidth!r}"
            )

    def peak(self, dtype: str = "float32") -> float:
        """Peak FLOP/s for ``dtype``; float32's when the spec has none for it."""
        if isinstance(self.peak_flops, (int, float)):
            return float(self.peak_flops)
        if dtype in self.peak_flops:
            return float(self.peak_flops[dtype])
        if "float32" in self.peak_flops:
            return float(self.peak_flops["float32"])
        return float(max(self.peak_flops.values()))

    def ridge_point(self, dtype: str = "float32") -> float:
        """Arithmetic intensity (FLOPs per byte) where memory- and compute-bound meet."""
        return self.peak(dtype) / self.bandwidth


def _positive(value: object) -> bool:
    """A finite number above zero (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")


def _load_presets() -> dict[str, Hardware]:
    text = resources.files(__package__).joinpath("presets.toml").read_text(encoding="utf-8")
    return {
        name: Hardware(
            name=name,
            peak_flops={k: float(v) for k, v in spec["peak"].items()},
            bandwidth=float(spec["bandwidth"]),
            description=spec.get("description", ""),
            source=spec.get("source", ""),
        )
        for name, spec in tomllib.loads(text).items()
    }


PRESETS = _load_presets()


def names() -> list[str]:
    """The preset names, e.g. "a100-sxm-80gb", "h100-sxm"."""
    return sorted(PRESETS)


def get(name: str) -> Hardware:
    """A preset by name (see ``names()``); "local" measures this machine."""
    if name == "local":
        return measure_local()
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ValueError(f"unknown hardware {name!r}; {hint}known: {', '.join(names())}, or 'local'")
    return PRESETS[name]


def measure_local(device: str = "cpu", *, size: int = 2048, copy_mib: int = 256, repeat: int = 3) -> Hardware:
    """Measure this machine: peak float32 FLOP/s from a large matmul (2*n^3 FLOPs) and
    bandwidth from a large copy (read + write = 2 x bytes). Best of ``repeat`` runs."""
    dev = torch.device(device)
    a = torch.randn(size, size, device=dev)
    b = torch.randn(size, size, device=dev)
    src = torch.empty(copy_mib * 2**20 // 4, device=dev)
    dst = torch.empty_like(src)

    def best(fn: object) -> float:
        times = []
        for _ in range(repeat + 1):  # the first run is a warm-up
            _sync(dev)
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            _sync(dev)
            times.append(time.perf_counter() - start)
        return min(times[1:])

    flops = 2 * size**3 / best(lambda: torch.mm(a, b))
    bandwidth = 2 * src.numel() * 4 / best(lambda: dst.copy_(src))
    return Hardware(
        name=f"local-{dev.type}",
        peak_flops={"float32": flops},
        bandwidth=bandwidth,
        description=f"this machine's {dev.type}, measured",
        source=f"measured: {size}x{size} float32 matmul and a {copy_mib} MiB copy, best of {repeat}",
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
