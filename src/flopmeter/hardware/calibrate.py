"""Calibrate the latency model on this machine with small micro-benchmarks (seconds).

1. peak float32 FLOP/s, int8 ops/s and bandwidth: ``measure_local`` (1024x1024 float32
   and int8 matmuls and a 64 MiB copy, best of 5);
2. ``module_overhead``: the time of calling an ``nn.Module`` whose forward does nothing;
3. per op class (``flopmeter.roofline.OP_CLASSES``), the fixed cost per op: one or two
   tiny layers of the class (e.g. a 16x16 linear) in a loop, whose time is all overhead;
4. per op class, the efficiency: a few typical layers (ResNet and MobileNet convs, ViT
   linears, norms, pooling, ...) run in turn, each call after the caches are flushed
   (FLUSH_MIB written, more than a CPU's last-level cache) and the inputs read again
   (inside a model, a layer's input was just written, while the rest of the model has
   pushed its weights out to memory); efficiency = their roofline-bound seconds
   (flopmeter's own count of them) / (measured seconds - the overheads above). Where a
   class's typical layers include both compute-bound and memory-bound ones (on this
   machine's roofline), each kind is fitted apart: ``efficiency[class]`` and
   ``efficiency[class + ":memory"]`` (a GEMV streams its weights at a fraction of the
   bandwidth unrelated to the fraction of peak a large GEMM reaches).

Within a case, the ops of other classes (e.g. the allocation inside batch norm) are
charged at the figures already fitted, so classes are fitted in order (data and
elementwise first).

Every figure is the median of 7 timed loops (11 single calls for the typical layers), timed by this thread's CPU time when
torch runs on one CPU thread (a busy machine then skews it less); with more threads (or
on CUDA) by wall time, and then the fastest of the 7 (the least disturbed) is kept.
Results are cached per process (per device and thread count): the first call pays a
few seconds, later ones nothing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from . import Hardware, measure_local

ROUNDS = 7  # timed loops per micro-benchmark; the median is kept
COLD_ROUNDS = 11  # timed single calls per typical-layer case (each alone: noisier, so more)
FLUSH_MIB = 64  # written before each timed layer call: more than the last-level cache (32 MiB here)
MIN_EFFICIENCY, MAX_EFFICIENCY = 0.01, 4.0  # the clamp on a fitted efficiency


def clamp_warning(efficiency: dict[str, float]) -> str:
    """A warning for the calibration source when fitted efficiencies hit the clamp: the
    timings behind them were disturbed (other processes, several threads on a busy
    machine), so the estimates that use them are not to be trusted. "" when none did."""
    clamped = sorted(k for k, v in efficiency.items() if v in (MIN_EFFICIENCY, MAX_EFFICIENCY))
    if not clamped:
        return ""
    return (
        f"; WARNING: the efficiency of {', '.join(clamped)} hit the limit "
        f"({MIN_EFFICIENCY} or {MAX_EFFICIENCY}): the timings were disturbed; calibrate again "
        "with --threads 1 on a quieter machine"
    )


def calibrate(device: str = "cpu") -> Hardware:
    """This machine's spec with overheads and per-class efficiencies (cached per
    device and thread count, so repeated calls are free)."""
    return _calibrate(device, torch.get_num_threads())


@lru_cache(maxsize=8)
def _calibrate(device: str, threads: int) -> Hardware:
    dev = torch.device(device)
    # a GPU's 16-bit tensor-core peak is 2-16x its float32 one (RTX 4090 2x, A100 16x): measured, not assumed from float32
    halves = ("float16", "bfloat16") if dev.type == "cuda" else ()
    # int8: quantized layers run integer GEMMs 5-10x faster than float32 on a CPU with VNNI
    base = measure_local(
        device, size=1024, copy_mib=64, repeat=5, clock=clock(dev), dtypes=("float32", *halves, "int8")
    )
    with torch.no_grad():
        tiny = torch.zeros(1, device=dev)
        default = _per_call(lambda: torch.add(tiny, tiny), dev)
        empty = _Nothing().to(dev)
        module_overhead = max(_per_call(lambda: empty(tiny), dev), 0.0)
        spec = replace(base, op_overhead={"default": default}, module_overhead=module_overhead)
        for name, case in _TINY.items():
            spec = _fit(name, case, spec, dev, "overhead")
        for name in _TINY:  # the same order: data and elementwise first
            for key, layers in _by_bound(name, _CASES[name], spec, dev).items():
                spec = _fit(name, layers, spec, dev, "efficiency", key)
    return replace(
        spec,
        name=f"local-{dev.type}",
        overlap=dev.type == "cuda",  # kernels queue asynchronously: host overheads hide behind them
        description=f"this machine's {dev.type}, measured and calibrated ({threads} thread{'s' * (threads != 1)})",
        calibration_source=(
            f"measured on this machine ({threads} thread{'s' * (threads != 1)}): tiny and typical layers "
            "of each op class; medians of 7 loops" + clamp_warning(spec.efficiency)
        ),
    )


def clock(device: torch.device) -> Callable[[], float]:
    """The timer for micro-benchmarks: this thread's CPU time when torch runs on one CPU
    thread (time the OS gives other processes is not counted, so a busy machine skews the
    calibration less), else wall time."""
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time
    return time.perf_counter


class _Nothing(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _per_call(call: Callable[[], Any], device: torch.device, calls: int = 200) -> float:
    """Median seconds of one call, from ROUNDS loops of ``calls`` calls."""
    call()
    now = clock(device)
    samples = []
    for _ in range(ROUNDS):
        _sync(device)
        start = now()
        for _ in range(calls):
            call()
        _sync(device)
        samples.append((now() - start) / calls)
    return _typical(samples, device)


def _per_cold_call(call: Callable[[], Any], inputs: list[torch.Tensor], device: torch.device) -> float:
    """Median seconds of one call made after the caches are flushed (FLUSH_MIB written)
    and its inputs read again: as a layer runs inside a model, where the previous layer
    has just written its input but the rest of the model has pushed its weights out to
    memory."""
    call()
    now = clock(device)
    flush = torch.empty(FLUSH_MIB * 2**18, device=device)
    samples = []
    for index in range(COLD_ROUNDS):
        flush.fill_(float(index))
        for tensor in inputs:
            tensor.sum()
        _sync(device)
        start = now()
        call()
        _sync(device)
        samples.append(now() - start)
    return _typical(samples, device)


def _typical(samples: list[float], device: torch.device) -> float:
    """The median of CPU-time samples; the fastest of wall-time ones (other processes
    only ever add wall time, so the fastest run is the least disturbed)."""
    return statistics.median(samples) if clock(device) is time.thread_time else min(samples)


def _by_bound(name: str, case: Case, spec: Hardware, device: torch.device) -> dict[str, Case]:
    """The layers of class ``name``'s case by the efficiency they calibrate: when the case
    has both compute-bound and memory-bound layers (by their ops of the class, on
    ``spec``'s roofline), ``{name: compute-bound, name + ":memory": memory-bound}`` (a
    GEMV streams its weights at a fraction of the bandwidth unrelated to the fraction of
    peak a large GEMM reaches); else ``{name: case}``."""
    from ..api import profile
    from ..roofline import op_class, op_time

    groups: dict[str, Case] = {name: [], f"{name}:memory": []}
    for layer in case:
        model, args = _build([layer], device)
        compute = memory = 0.0
        for record in profile(model, args).ops:
            if op_class(record) == name:
                flops_time, bytes_time = op_time(record.cost.flops, record.cost.bytes, spec, record.dtype)
                compute += flops_time if flops_time >= bytes_time else 0.0
                memory += bytes_time if bytes_time > flops_time else 0.0
        groups[f"{name}:memory" if memory > compute else name].append(layer)
    return groups if all(groups.values()) else {name: case}


def _fit(
    name: str, case: Case, spec: Hardware, device: torch.device, what: str, key: str | None = None
) -> Hardware:
    """``spec`` with class ``name``'s overhead or efficiency (stored as ``key``, by
    default ``name``) fitted to one measured case: what the case's time leaves once
    everything else in it is accounted for."""
    from ..api import profile
    from ..roofline import launches, op_class, op_time

    model, args = _build(case, device)
    report = profile(model, args)
    own = [r for r in report.ops if op_class(r) == name]
    if not own:
        raise RuntimeError(f"calibration case for {name!r} ran no op of that class")
    others = spec.module_overhead * sum(m.calls for m in report.modules.values())
    bound = 0.0
    for record in report.ops:
        kind = op_class(record)
        compute, memory = op_time(record.cost.flops, record.cost.bytes, spec, record.dtype)
        seconds = max(compute, memory)
        if kind == name:
            bound += seconds
            if what == "efficiency":
                others += spec.overhead(kind) * launches(record, kind)
        else:
            others += spec.overhead(kind) * launches(record, kind) + spec.work_time(kind, compute, memory)[0]
    call = lambda: model(*args)  # noqa: E731
    inputs = [t for a in args for t in (a if isinstance(a, tuple) else (a,))]
    left = (_per_call(call, device) if what == "overhead" else _per_cold_call(call, inputs, device)) - others
    if what == "overhead":
        count = sum(launches(r, name) for r in own)
        overheads = dict(spec.op_overhead) if isinstance(spec.op_overhead, dict) else {}
        overheads[name] = max(left - bound, 0.0) / count
        return replace(spec, op_overhead=overheads)
    efficiency = min(
        max(bound / max(left, 1e-9), MIN_EFFICIENCY), MAX_EFFICIENCY
    )  # a disturbed run stays sane
    return replace(spec, efficiency={**spec.efficiency, key or name: efficiency})


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Layers(nn.Module):
    """Runs each layer on its own input, in turn: a few typical layers of one class."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, *inputs: Any) -> list[Any]:
        return [
            layer(*x) if isinstance(x, tuple) else layer(x)
            for layer, x in zip(self.layers, inputs, strict=True)
        ]


class _Fn(nn.Module):
    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any) -> Any:
        return self.fn(*args)


Case = list[tuple[Callable[[], nn.Module], tuple[int, ...] | list[tuple[int, ...]]]]


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> Callable[[], nn.Module]:
    return lambda: nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)


def _attention(q: Any, k: Any, v: Any) -> Any:
    return F.scaled_dot_product_attention(q, k, v)


# Typical layers of each class (ResNet, MobileNet/EfficientNet, ViT/BERT shapes at batch 1):
_CASES: dict[str, Case] = {
    "conv": [
        (_conv(64, 64, 3), (1, 64, 56, 56)),
        (_conv(128, 128, 3, 2), (1, 128, 56, 56)),
        (_conv(256, 256, 3), (1, 256, 14, 14)),
        (_conv(512, 512, 3), (1, 512, 7, 7)),
        (_conv(3, 32, 3, 2), (1, 3, 224, 224)),
    ],
    "pointwise": [
        (_conv(64, 256, 1), (1, 64, 56, 56)),
        (_conv(24, 144, 1), (1, 24, 56, 56)),
        (_conv(576, 96, 1), (1, 576, 14, 14)),
        (_conv(960, 160, 1), (1, 960, 7, 7)),
        (_conv(576, 144, 1), (1, 576, 1, 1)),  # a squeeze-excitation 1x1 conv on pooled features
    ],
    "depthwise": [
        (_conv(144, 144, 3, 1, 144), (1, 144, 56, 56)),
        (_conv(240, 240, 5, 2, 240), (1, 240, 28, 28)),
        (_conv(672, 672, 5, 1, 672), (1, 672, 14, 14)),
        (_conv(960, 960, 3, 1, 960), (1, 960, 7, 7)),
    ],
    "matmul": [
        (lambda: nn.Linear(384, 1536), (197, 384)),
        (lambda: nn.Linear(1536, 384), (197, 1536)),
        (lambda: nn.Linear(1024, 1000), (1, 1024)),
    ],
    "recurrent": [(lambda: nn.LSTM(128, 256, batch_first=True), (1, 32, 128))],
    "attention": [(lambda: _Fn(_attention), [(1, 6, 197, 64)] * 3)],
    "elementwise": [
        (lambda: nn.ReLU(inplace=True), (1, 64, 56, 56)),
        (lambda: _Fn(torch.add), [(1, 64, 56, 56), (1, 64, 56, 56)]),
        (lambda: nn.Hardswish(), (1, 72, 28, 28)),
    ],
    "norm": [
        (lambda: nn.BatchNorm2d(144).eval(), (1, 144, 56, 56)),
        (lambda: nn.BatchNorm2d(320).eval(), (1, 320, 7, 7)),
        (lambda: nn.LayerNorm(384), (197, 384)),
    ],
    "transcendental": [
        (lambda: nn.SiLU(), (1, 144, 56, 56)),
        (lambda: nn.GELU(), (197, 1536)),
    ],
    "reduction": [
        (lambda: nn.Softmax(-1), (6, 197, 197)),
        (lambda: nn.AdaptiveAvgPool2d(1), (1, 1280, 7, 7)),
    ],
    "pooling": [
        (lambda: nn.MaxPool2d(3, 2, 1), (1, 64, 112, 112)),
        (lambda: nn.AvgPool2d(2, 2), (1, 128, 56, 56)),
    ],
    "data": [
        (lambda: _Fn(lambda a, b: torch.cat([a, b], 1)), [(1, 64, 56, 56), (1, 32, 56, 56)]),
        (lambda: _Fn(lambda x: x.transpose(1, 2).contiguous()), (1, 197, 6, 64)),
    ],
}


# Tiny layers of each class: their time is the fixed cost per op. Channels are multiples
# of 16, as in real models, so the same kernels run. Fitted in this order (data and
# elementwise first: other cases contain such ops too).
_TINY: dict[str, Case] = {
    "data": [
        (lambda: _Fn(lambda a, b: torch.cat([a, b], 1)), [(1, 16, 4, 4), (1, 16, 4, 4)]),
        (lambda: _Fn(lambda x: x.transpose(1, 2).contiguous()), (1, 4, 2, 8)),
    ],
    "elementwise": [
        (lambda: nn.ReLU(inplace=True), (1, 16, 4, 4)),
        (lambda: _Fn(torch.add), [(1, 16, 4, 4), (1, 16, 4, 4)]),
        (lambda: nn.Hardswish(), (1, 16, 4, 4)),
    ],
    "transcendental": [(lambda: nn.SiLU(), (1, 16, 4, 4)), (lambda: nn.GELU(), (4, 16))],
    "norm": [(lambda: nn.BatchNorm2d(16).eval(), (1, 16, 4, 4)), (lambda: nn.LayerNorm(16), (4, 16))],
    "reduction": [(lambda: nn.Softmax(-1), (2, 4, 4)), (lambda: nn.AdaptiveAvgPool2d(1), (1, 16, 4, 4))],
    "pooling": [(lambda: nn.MaxPool2d(3, 2, 1), (1, 16, 8, 8)), (lambda: nn.AvgPool2d(2, 2), (1, 16, 8, 8))],
    "matmul": [(lambda: nn.Linear(16, 16), (4, 16))],
    "conv": [(_conv(16, 16, 3), (1, 16, 4, 4))],
    "pointwise": [(_conv(16, 16, 1), (1, 16, 4, 4))],
    "depthwise": [(_conv(32, 32, 3, 1, 32), (1, 32, 4, 4))],
    "recurrent": [(lambda: nn.LSTM(16, 16, batch_first=True), (1, 8, 16))],
    "attention": [(lambda: _Fn(_attention), [(1, 2, 4, 16)] * 3)],
}


def _build(case: Case, device: torch.device) -> tuple[nn.Module, tuple[Any, ...]]:
    layers: list[nn.Module] = []
    inputs: list[torch.Tensor | tuple[torch.Tensor, ...]] = []
    for build, shape in case:
        layers.append(build())
        if isinstance(shape, list):
            inputs.append(tuple(torch.randn(*s, device=device) for s in shape))
        else:
            inputs.append(torch.randn(*shape, device=device))
    return _Layers(layers).to(device), tuple(inputs)
