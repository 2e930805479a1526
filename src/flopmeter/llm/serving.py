"""Roofline times of a generation: each phase takes max(FLOPs / peak, bytes / bandwidth)
on a hardware preset. Lower bounds: measured prefill on GPUs runs 1.5-2.6x above them.

Time to first token (TTFT) is the prefill's time; time per output token (TPOT) a decode
step's at its context; a generation of G tokens is the prefill (which yields the first
token) and G-1 decode steps at contexts T, T+1, ..., T+G-2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import ceil

from ..hardware import Hardware


@dataclass(frozen=True)
class PhaseTime:
    """Roofline time of one phase and which limit set it."""

    flops: int
    bytes: Fraction
    compute_s: float
    memory_s: float

    @property
    def seconds(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"


def phase_time(flops: Mapping[str, int], nbytes: Fraction, hardware: Hardware) -> PhaseTime:
    """A phase's roofline time; ``flops``: its FLOPs by the dtype whose peak they run at
    (``roofline.flops_by_dtype``): compute seconds = the sum of FLOPs / peak over them."""
    compute = sum(count / hardware.peak(dtype) for dtype, count in flops.items())
    return PhaseTime(sum(flops.values()), nbytes, compute, float(nbytes) / hardware.bandwidth)


@dataclass(frozen=True)
class Serving:
    """A generation on one hardware preset: ``batch`` sequences, ``prompt`` tokens in,
    ``generate`` tokens out each."""

    hardware: Hardware
    batch: int
    prompt: int
    generate: int
    prefill: PhaseTime
    first_decode: PhaseTime
    last_decode: PhaseTime
    decode_seconds: float  # all decode steps together
    compute_bound_batch: int | None  # smallest batch at which the first decode step is compute-bound
    weight_bits: int
    kv_bits: int
    # flopmeter's latency estimate of the traced code (``report.roofline(hw).latency``), as
    # executed (unfused, DynamicCache copies), native bit widths
    executed_ttft: float = 0.0
    executed_first_tpot: float = 0.0
    # what most of each estimate goes to ("overhead", "memory" or "compute": RooflineRow.regime);
    # a small model's prefill and decode step can both be host-overhead-bound, the same time
    executed_ttft_regime: str = "-"
    executed_first_tpot_regime: str = "-"

    def __repr__(self) -> str:
        from ..render.reprs import serving_repr

        return serving_repr(self)

    @property
    def ttft(self) -> float:
        """Time to first token, seconds."""
        return self.prefill.seconds

    @property
    def tpot(self) -> float:
        """Mean time per output token after the first, seconds."""
        return self.decode_seconds / max(self.generate - 1, 1)

    @property
    def total_seconds(self) -> float:
        return self.prefill.seconds + self.decode_seconds

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second over the whole generation (prefill included),
        all sequences of the batch together."""
        return self.batch * self.generate / self.total_seconds


EXACT_STEPS = 4096  # up to this many decode steps are summed one by one


def decode_steps_seconds(
    step: Callable[[int], PhaseTime], first_context: int, steps: int, breaks: Sequence[int] = ()
) -> float:
    """Sum of decode step times at contexts first_context .. first_context+steps-1.

    Up to ``EXACT_STEPS`` steps one by one. A longer generation (``--generate 100000000``
    would take hours step by step) is cut into ``EXACT_STEPS`` runs of contexts, and at every
    context of ``breaks`` (where a step's cost may turn: around a sliding window); within a
    run, compute and memory time are taken as linear between its two ends (they are linear
    in the context for dense and GQA attention, and between the breaks, so the sum is the
    same up to rounding) and the max of the two is summed in closed form, split where they cross."""
    if steps <= EXACT_STEPS:
        return sum(step(first_context + i).seconds for i in range(steps))
    last = first_context + steps - 1
    regular = {first_context + (steps - 1) * j // EXACT_STEPS for j in range(EXACT_STEPS + 1)}
    ends = sorted(regular | {b for b in breaks if first_context <= b <= last})
    times = [step(n) for n in ends]
    total = times[-1].seconds  # the last context; each run below covers [start, end)
    for start, end, t0, t1 in zip(ends, ends[1:], times, times[1:], strict=False):
        total += _sum_of_max(t0, t1, end - start)
    return total


def _sum_of_max(t0: PhaseTime, t1: PhaseTime, count: int) -> float:
    """sum over i = 0 .. count-1 of max(c(i), m(i)), c and m linear from t0 (i = 0) to t1
    (i = count): compute and memory seconds."""

    def run_sum(f0: float, f1: float, first: int, last: int) -> float:  # sum of f(i), i in [first, last]
        if last < first:
            return 0.0
        slope = (f1 - f0) / count
        return (last - first + 1) * (f0 + slope * (first + last) / 2)

    d0, d1 = t0.compute_s - t0.memory_s, t1.compute_s - t1.memory_s
    if d0 == d1 or (d0 >= 0) == (d1 >= 0):
        use = (t0.compute_s, t1.compute_s) if d0 + d1 >= 0 else (t0.memory_s, t1.memory_s)
        return run_sum(*use, 0, count - 1)
    cross = min(count - 1, max(0, int(count * d0 / (d0 - d1))))  # last i on t0's side
    first = (t0.compute_s, t1.compute_s) if d0 > 0 else (t0.memory_s, t1.memory_s)
    second = (t0.memory_s, t1.memory_s) if d0 > 0 else (t0.compute_s, t1.compute_s)
    return run_sum(*first, 0, cross) + run_sum(*second, cross + 1, count - 1)


def compute_bound_batch(
    flops_per_sequence: Mapping[str, int],
    weight_bytes: Fraction,
    bytes_per_sequence: Fraction,
    hardware: Hardware,
) -> int | None:
    """The smallest batch B with B*c >= (W + B*s)/bandwidth, i.e. decode turns
    compute-bound: B >= W / (c * bandwidth - s), c = sum of f/peak over the sequence's
    FLOPs f by the dtype whose peak they run at (one dtype: f/peak). None when c * bandwidth
    <= s (the per-sequence cache traffic alone keeps it memory-bound, at any batch).
    W is taken as constant in B: for a mixture of experts it is the batch-1 share of the
    expert weights, so the batch found is a lower estimate."""
    seconds = sum(
        Fraction(count) / Fraction(hardware.peak(dtype)) for dtype, count in flops_per_sequence.items()
    )
    margin = seconds * Fraction(hardware.bandwidth) - bytes_per_sequence
    if margin <= 0:
        return None
    return max(1, ceil(weight_bytes / margin))
