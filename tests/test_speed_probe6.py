"""Probe 6, speed: a profile leaves no reference cycle behind (the garbage collector's
walk over a cycle's thousands of objects was a tenth of a small model's profile), and
the faster paths keep what they replaced (generators put back, the same numbers)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch

import flopmeter
from flopmeter.tracing.events import OpEvent
from flopmeter.tracing.recorder import gc_paused


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)  # 3x3, 3 -> 4 channels, on 8x8 -> 6x6
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


@contextmanager
def _collector_off() -> Iterator[None]:
    """The garbage collector paused, so that only reference counting frees objects."""
    gc.collect()
    with gc_paused():
        yield


def test_the_events_of_a_run_are_freed_when_the_profile_returns() -> None:
    # The recorder and the module stack referred to each other (stack.describe was the
    # recorder's method), so every event stayed alive until the collector ran.
    flopmeter.profile(_Net(), torch.randn(1, 3, 8, 8))  # the process's first profile imports
    # torch._dynamo, whose import leaves cycles holding that profile's frames (run.py)
    with _collector_off():
        report = flopmeter.profile(_Net(), torch.randn(1, 3, 8, 8))
        left = sum(1 for obj in gc.get_objects() if type(obj) is OpEvent)
    assert left == 0
    # conv: 4*6*6 outputs, each a dot product of 3*3*3 = 27 -> 144*27 = 3,888 MACs
    assert report.macs == 3888


def test_a_dropped_report_is_freed_at_once_and_its_view_still_builds() -> None:
    with _collector_off():
        report = flopmeter.profile(_Net(), torch.randn(1, 3, 8, 8), compression=True)
        gone = weakref.ref(report)
        del report  # its compression view held it back (a cycle) until the collector ran
        assert gone() is None
        kept = flopmeter.profile(_Net(), torch.randn(1, 3, 8, 8), compression=True)
        view = kept.compression
        del kept
        # the view still builds after its report is dropped: conv weight 4*3*3*3 = 108
        # values, all nonzero (a random init), so it reads as dense
        conv = view.layers["conv"]
        assert (conv.params, conv.weight_nonzero, conv.macs_dense) == (108 + 4, 108, 3888)


class _OwnGenerator(torch.Generator):
    """A generator class of the model's own (torch lets one derive from Generator)."""


class _Noisy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.noise = _OwnGenerator()
        self.noise.manual_seed(7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + torch.randn(x.shape, generator=self.noise)


def test_a_generator_of_a_derived_class_is_put_back_too() -> None:
    model = _Noisy()
    before = model.noise.get_state()
    report = flopmeter.profile(model, torch.randn(2, 4), shapes_only=False)
    assert torch.equal(model.noise.get_state(), before)
    assert report.macs == 2 * 4 * 4  # Linear(4, 4) on 2 rows: 32 MACs
