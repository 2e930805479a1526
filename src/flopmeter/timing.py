"""Measured latency: warm-up, repeated timed runs, statistics, achieved FLOP/s.

On CUDA every run is timed with CUDA events and synchronised, so the GPU time is
real; on the CPU with ``time.perf_counter``. No timing is ever taken without at least
one warm-up run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .api import Inputs, ModelError, _model_device, _resolve_inputs, profile
from .hardware import Hardware, get
from .inputs import InputSpec, as_specs
from .interrupts import GradMode, ModeOn, completes
from .random_state import kept_random_state
from .report import Report
from .roofline import Roofline, integer_ops, roofline
from .tracing.run import ModelStateGuard, SaveBeforeWrites, holds_objects, own_copy, set_mode

Progress = Callable[[str, int, int], None]


@dataclass
class Timing:
    """Latency statistics of one batch size (seconds), and what they imply."""

    batch_size: int
    times: list[float]
    warmup: int
    device: str
    flops: int = 0  # exact FLOPs of one call (from a profile of the same inputs)
    hardware: Hardware | None = None
    # per module: median seconds inside it per call of the whole model (all its calls summed)
    per_module: dict[str, float] = field(default_factory=dict)
    # seconds the per-module hooks added per call: the median with hooks minus the median
    # without, as measured (negative when the hooked runs happened to be faster: noise)
    hook_overhead: float = 0.0
    estimate: Roofline | None = None  # the latency model's prediction on ``hardware``, same inputs
    peak: float | None = None  # the peak FLOP/s of the FLOPs' dtypes, when there is no estimate
    int_ops: int = 0  # integer ops of one call: 2 x MACs of integer work (int8 layers, 0 FLOPs)
    # the same timed runs' CPU time of the calling thread (seconds each), on the CPU with one
    # torch thread (where that thread does all the work); empty elsewhere, and where the
    # process's other threads worked during the runs (a forward's own thread pool)
    cpu_times: list[float] = field(default_factory=list)

    @property
    def cpu_share(self) -> float | None:
        """Median CPU time / median wall time of the timed runs (one torch thread on the CPU;
        None elsewhere): about 1 on an idle machine, 0.5 when other processes took half the
        core. The wall-clock figures (median, meas/pred) are inflated by 1 / this."""
        if not self.cpu_times or not self.median:
            return None
        return statistics.median(self.cpu_times) / self.median

    @property
    def cpu_ratio(self) -> float | None:
        """Measured / predicted by CPU time (``cpu_times``' median; one torch thread on the
        CPU): the comparison a busy machine skews less, and the clock ``local`` calibrates
        with at one thread."""
        if not self.cpu_times or not self.estimate or not self.estimate.latency:
            return None
        return statistics.median(self.cpu_times) / self.estimate.latency

    def __repr__(self) -> str:
        from .render.reprs import timing_repr

        return timing_repr(self)

    @property
    def predicted(self) -> float | None:
        """Predicted seconds for this call (``estimate.latency``), when a hardware was given."""
        return self.estimate.latency if self.estimate else None

    @property
    def ratio(self) -> float | None:
        """Measured / predicted: above 1 the model was optimistic, below 1 pessimistic."""
        return self.median / self.estimate.latency if self.estimate and self.estimate.latency else None

    def module_ratios(self) -> dict[str, tuple[float, float, float]]:
        """Per timed module: (measured, predicted, measured / predicted) seconds, for the
        modules both timed and estimated (``per_module=True`` and a hardware given)."""
        if not self.estimate:
            return {}
        rows = self.estimate.rows
        return {
            name: (seconds, rows[name].time, seconds / rows[name].time)
            for name, seconds in self.per_module.items()
            if name in rows and rows[name].time > 0
        }

    @property
    def hook_overhead_measurable(self) -> bool:
        """Whether ``hook_overhead`` stands out of the noise: above the spread of the plain
        runs (p90 - p10). A smaller or negative difference says nothing about the hooks."""
        return self.hook_overhead > self.p90 - self.p10

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    @property
    def std(self) -> float:
        return statistics.stdev(self.times) if len(self.times) > 1 else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) of the run times, linearly interpolated."""
        ordered = sorted(self.times)
        position = (len(ordered) - 1) * q / 100
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    @property
    def p10(self) -> float:
        return self.percentile(10)

    @property
    def p90(self) -> float:
        return self.percentile(90)

    @property
    def throughput(self) -> float:
        """Samples per second at the median latency."""
        return self.batch_size / self.median

    @property
    def achieved_flops_per_second(self) -> float:
        """FLOP/s achieved: exact FLOPs of one call / median latency."""
        return self.flops / self.median

    @property
    def achieved_int_ops_per_second(self) -> float:
        """Integer ops per second achieved: ``int_ops`` / median latency (0 for a float model)."""
        return self.int_ops / self.median

    @property
    def fraction_of_peak(self) -> float | None:
        """Achieved FLOP/s over the hardware's peak for the dtypes the FLOPs ran in
        (``estimate.peak_flops``, or ``peak``: a half model against the float16 peak);
        float32's peak when neither is known. With integer work (a quantized model) the
        fraction of the median the whole work would take at peak:
        (FLOPs / that peak + int ops / the int8 peak) / median."""
        if self.hardware is None:
            return None
        if self.estimate:
            peak = self.estimate.peak_flops
        else:
            peak = self.peak or self.hardware.peak("float32")
        if self.int_ops:
            return (self.flops / peak + self.int_ops / self.hardware.peak("int8")) / self.median
        return self.achieved_flops_per_second / peak


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    call: Callable[[], Any],
    device: torch.device,
    warmup: int,
    repeat: int,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
    setup: Callable[[], Any] | None = None,
    cpu_times: list[float] | None = None,
) -> list[float]:
    """Run ``call`` ``warmup`` times untimed, then ``repeat`` times timed (seconds each).
    On the CPU each run is timed with ``clock`` (wall time by default), and, when a
    ``cpu_times`` list is given, the calling thread's CPU time of each timed run is added to
    it (read outside the wall-clock window, so it costs the wall time nothing). ``setup``
    runs before each run, untimed."""
    if warmup < 1:
        raise ValueError(f"warmup must be at least 1 (a cold first run is not a timing), got {warmup}")
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    for index in range(warmup):
        if setup is not None:
            setup()
        call()
        if progress:
            progress("warm-up", index + 1, warmup)
    _synchronize(device)
    times = []
    for index in range(repeat):
        if setup is not None:
            setup()
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000.0)
        else:
            cpu_begin = time.thread_time() if cpu_times is not None else 0.0
            begin = clock()
            call()
            times.append(clock() - begin)
            if cpu_times is not None:
                cpu_times.append(time.thread_time() - cpu_begin)
        if progress:
            progress("timed", index + 1, repeat)
    return times


def benchmark(
    model: torch.nn.Module,
    inputs: Inputs | None = None,
    *,
    input_shape: Any = None,
    warmup: int = 10,
    repeat: int = 50,
    batch_sizes: list[int] | None = None,
    per_module: bool = False,
    hardware: Hardware | None = None,
    progress: Progress | None = None,
) -> list[Timing]:
    """Measure the model's forward latency (eval mode, ``torch.no_grad()``).

    One Timing per batch size: ``batch_sizes`` sets the leading dimension of every
    input (inputs are rebuilt from ``input_shape``, or the given tensors are repeated
    along it). ``per_module`` also times each module with global hooks (with CUDA
    synchronisation) and states the overhead those hooks add. With ``hardware``, each
    Timing also carries the latency model's estimate of the same call (``estimate``,
    ``predicted``, ``ratio``; docs/speed.md). The model is left as it was.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"benchmark() expects a torch.nn.Module, got {type(model).__name__}")
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise ValueError(
            "benchmark() times real arithmetic, and this model is on the meta device (no data): "
            "build it on a CPU or GPU to time it; profile() counts a meta model"
        )
    for label, count in (("warmup", warmup), ("repeat", repeat)):
        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError(f"{label} must be a whole number of runs, got {count!r}")
        if count < 1:  # also time_calls' check: here before any run, which a failing run would wrap
            raise ValueError(f"{label} must be at least 1, got {count}")
    spec = get(hardware) if isinstance(hardware, str) else hardware
    if spec is not None and not isinstance(spec, Hardware):
        raise TypeError(f"hardware must be a flopmeter.hardware.Hardware or a preset name, got {hardware!r}")
    args, kwargs = _resolve_inputs(model, inputs, input_shape, None)
    if any(isinstance(t, torch.Tensor) and t.is_meta for t in [*args, *kwargs.values()]):
        raise ValueError(
            "benchmark() times real arithmetic, and an input is on the meta device (no data): "
            "give real tensors or input_shape"
        )
    results = []
    sizes: list[int | None] = list(_checked_batch_sizes(batch_sizes)) if batch_sizes is not None else [None]
    for batch in sizes:
        call_args, call_kwargs = (args, kwargs) if batch is None else _rebatch(args, kwargs, batch)
        results.append(_one(model, call_args, call_kwargs, warmup, repeat, per_module, spec, progress, batch))
    return results


def _checked_batch_sizes(batch_sizes: Any) -> list[int]:
    """``batch_sizes`` as a list of whole numbers >= 1, or a ValueError / TypeError saying
    what was expected."""
    if isinstance(batch_sizes, (str, bytes)) or not hasattr(batch_sizes, "__iter__"):
        raise TypeError(
            f"batch_sizes must be a list of whole numbers such as [1, 8, 32], got {batch_sizes!r}"
        )
    sizes = list(batch_sizes)
    if not sizes:
        raise ValueError("batch_sizes must list at least one batch size, e.g. [1, 8, 32]")
    for size in sizes:
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(
                f"batch sizes must be whole numbers such as [1, 8, 32], got {size!r} in {sizes!r}"
            )
        if size < 1:
            raise ValueError(f"batch sizes must be at least 1, got {size}")
    return sizes


def predict_batches(
    model: torch.nn.Module,
    inputs: Inputs | None = None,
    *,
    batch_sizes: list[int],
    hardware: Hardware | str,
    input_shape: Any = None,
) -> list[Roofline]:
    """The latency model's estimate of one forward at each batch size (no timing: the
    model is profiled at each size; inputs are repeated or rebuilt as in ``benchmark``)."""
    sizes = _checked_batch_sizes(batch_sizes)
    # inputs from a shape are built by profile at each size: counted, not allocated
    specs = as_specs(input_shape) if inputs is None and input_shape is not None else None
    args, kwargs = _resolve_inputs(model, inputs, input_shape, None) if specs is None else ((), {})
    estimates = []
    for batch in sizes:
        if specs is not None:
            report = profile(model, input_shape=[_spec_at(spec, batch) for spec in specs])
        else:
            call_args, call_kwargs = _rebatch(args, kwargs, batch)
            if call_args and call_kwargs:
                report = _profile_mixed(model, call_args, call_kwargs)
            else:
                report = profile(model, call_kwargs if call_kwargs else call_args)
        _check_batch(report, batch)
        estimates.append(roofline(report, hardware))
    return estimates


def _spec_at(spec: InputSpec, batch: int) -> InputSpec:
    """``spec`` with its leading dimension set to ``batch`` (a scalar spec as it is)."""
    return replace(spec, shape=(batch, *spec.shape[1:])) if spec.shape else spec


def _rebatch(
    args: tuple[Any, ...], kwargs: dict[str, Any], batch: int
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if batch < 1:
        raise ValueError(f"batch sizes must be at least 1, got {batch}")

    def resize(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            reps = -(-batch // value.shape[0])
            return value.repeat(reps, *([1] * (value.ndim - 1)))[:batch].contiguous()
        return value

    return tuple(resize(a) for a in args), {k: resize(v) for k, v in kwargs.items()}


def _check_batch(report: Report, batch: int) -> None:
    """Refuse a rebatched profile whose batch is not the one asked for: ``_rebatch`` repeats
    the inputs' tensors along their first dimension, and some models read their batch
    elsewhere; timing them would label another workload with the batch asked for."""
    if report.batch_size != batch:
        raise ValueError(
            f"batch_sizes: the inputs' tensors were repeated along their first dimension to make a "
            f"batch of {batch}, but the model read a batch of {report.batch_size}: its batch is not the "
            "first dimension of its input tensors (a sequence-first RNN takes (seq, batch, features), a "
            "detection model a list of images); give inputs of each batch size yourself, one call (or CLI run with its --input) per size"
        )


@completes  # an interrupt that stops an __exit__ at its first line: undone here (interrupts.py)
def _one(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    warmup: int,
    repeat: int,
    per_module: bool,
    hardware: Hardware | None,
    progress: Progress | None,
    batch: int | None = None,
) -> Timing:
    device = _model_device(model, (args, kwargs))
    if args and kwargs:
        report = _profile_mixed(model, args, kwargs)
    else:
        report = profile(model, kwargs if kwargs else args)
    if batch is not None:
        _check_batch(report, batch)
    with kept_random_state(), ModelStateGuard(model) as guard, GradMode(False):
        with _runs_that_fail():  # the model's runs only: flopmeter's own errors stay its own
            set_mode(model, False)
            call, setup = _calls(model, args, kwargs)
            with ModeOn(SaveBeforeWrites(guard.writes)):  # one more untimed run: copies what the forward
                if setup is not None:  # writes (a step counter), which the guard puts back
                    setup()
                call()
            cpu_times: list[float] | None = [] if _thread_does_the_work(device) else None
            clocks = _cpu_clocks()
            times = time_calls(call, device, warmup, repeat, progress, setup=setup, cpu_times=cpu_times)
            if cpu_times and _other_threads_worked(clocks):
                # the forward's own threads did work: the calling thread's time is not the run's
                cpu_times = None
        timing = Timing(report.batch_size, times, warmup, device.type, report.flops, hardware)
        timing.cpu_times = cpu_times or []
        timing.int_ops = sum(integer_ops(record.cost) for record in report.ops)
        if hardware is not None:
            timing.estimate = roofline(report, hardware)
        if per_module:
            with _runs_that_fail():
                timing.per_module, with_hooks = _time_modules(model, args, kwargs, device, warmup, repeat)
            timing.hook_overhead = with_hooks - timing.median  # signed: render.speed.hook_cost
    return timing


def _thread_does_the_work(device: torch.device) -> bool:
    """Whether the calling thread's CPU time measures a run: on the CPU with one torch thread
    (on a shared machine wall time also counts the other processes' turns)."""
    return device.type == "cpu" and torch.get_num_threads() == 1


OTHER_THREADS_SHARE = 0.1
"""Above this share of the calling thread's CPU time, the process's other threads worked
during the timed runs (a forward that hands work to a thread pool, numpy's BLAS threads):
the calling thread's CPU time then measures only its part of a run, and is not kept."""


def _cpu_clocks() -> tuple[float, float]:
    """(the calling thread's, the process's) CPU time now, seconds."""
    return time.thread_time(), time.process_time()


def _other_threads_worked(since: tuple[float, float]) -> bool:
    """Whether the process's other threads used more than ``OTHER_THREADS_SHARE`` of the
    calling thread's CPU time since ``since`` (``_cpu_clocks()``)."""
    thread, process = (now - then for now, then in zip(_cpu_clocks(), since, strict=True))
    return process - thread > OTHER_THREADS_SHARE * thread


@contextmanager
def _runs_that_fail() -> Iterator[None]:
    """A model that raises in a timed run (its profile passed: a forward failing on a later
    call) raises ``ModelError``, as its profile would: the CLI's one line, not a traceback."""
    try:
        yield
    except Exception as error:
        raise ModelError(
            f"the model raised {type(error).__name__} in a run benchmark() timed, after its counted "
            f"run had passed: {error}"
        ) from error


def _calls(
    model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Callable[[], Any], Callable[[], Any] | None]:
    """The call to time and what to do before each run: inputs holding objects (a KV
    cache a decode step extends) are copied afresh, untimed, so every run sees the
    inputs it was given and the caller's are left as they were."""
    if not holds_objects((args, kwargs)):
        return lambda: model(*args, **kwargs), None
    shared = (*model.modules(), *model.parameters(), *model.buffers())
    current = [(args, kwargs)]

    def setup() -> None:
        current[0] = own_copy(args, kwargs, shared)

    def call() -> Any:
        call_args, call_kwargs = current[0]
        return model(*call_args, **call_kwargs)

    return call, setup


def _profile_mixed(model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Report:
    """The profile of a call with both positional and keyword inputs (module names are
    those of ``model``)."""

    class _Call(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self) -> Any:
            return self.inner(*args, **kwargs)

    report = profile(_Call(), ())
    return _strip_prefix(report, "inner")


def _strip_prefix(report: Report, prefix: str) -> Report:
    """``report`` with the wrapper module's ``prefix.`` taken off every module name."""
    from dataclasses import replace

    def rename(name: str) -> str:
        return name[len(prefix) + 1 :] if name.startswith(prefix + ".") else ("" if name == prefix else name)

    modules = {}
    for name, stats in report.modules.items():
        if name == "":
            continue
        renamed = rename(name)
        children = [rename(c) for c in stats.children]
        modules[renamed] = replace(stats, name=renamed, depth=stats.depth - 1, children=children)
    ops = [replace(record, module=rename(record.module)) for record in report.ops]
    return replace(report, modules=modules, ops=ops)


def _time_modules(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    device: torch.device,
    warmup: int,
    repeat: int,
) -> tuple[dict[str, float], float]:
    """Per module, the median over the timed runs of the seconds spent inside it during one
    call of the whole model (inclusive; a module called twice per forward, like the ReLU of
    a torchvision BasicBlock, sums both calls, as its estimate does; 0 in a run that did not
    call it); and the median whole-call time with hooks on."""
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    names = {id(m): name for name, m in model.named_modules()}
    starts: dict[int, list[float]] = {}
    runs: list[dict[str, float]] = []  # per timed run: seconds per module
    current: dict[str, float] = {}
    timed = [False]  # modules are sampled only in the timed runs, after the warm-up

    def after(phase: str, index: int, total: int) -> None:
        if phase == "timed":
            runs.append(dict(current))
            current.clear()
        timed[0] = phase == "timed" or index == total

    def pre(module: torch.nn.Module, _: Any) -> None:
        if timed[0] and id(module) in names:
            _synchronize(device)
            starts.setdefault(id(module), []).append(time.perf_counter())

    def post(module: torch.nn.Module, _: Any, __: Any) -> None:
        if id(module) in names and starts.get(id(module)):
            _synchronize(device)
            name = names[id(module)]
            current[name] = current.get(name, 0.0) + time.perf_counter() - starts[id(module)].pop()

    handles = [register_module_forward_pre_hook(pre), register_module_forward_hook(post, always_call=True)]
    try:
        call, setup = _calls(model, args, kwargs)
        whole = time_calls(call, device, warmup, repeat, after, setup=setup)
    finally:
        for handle in handles:
            handle.remove()
    seen = {name: None for run in runs for name in run}  # in the order they first finished
    per_module = {name: statistics.median(run.get(name, 0.0) for run in runs) for name in seen}
    return per_module, statistics.median(whole)
