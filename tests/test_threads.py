"""Profiling from several threads: numbers are per thread, profiles of one model take turns."""

import sys
import threading
import time

import torch
from torch import nn

import flopmeter

SPANS: dict[int, list[tuple[float, float]]] = {}  # id(model) -> when its forwards ran


class Slow(nn.Module):
    """a: Linear(64, 128), a pause, b: Linear(128, 10); records when its forward ran (in
    SPANS, outside the model: a profile puts the model's own attributes back)."""

    def __init__(self, pause: float = 0.3) -> None:
        super().__init__()
        self.a = nn.Linear(64, 128)
        self.b = nn.Linear(128, 10)
        self.pause = pause
        SPANS[id(self)] = []

    @property
    def spans(self) -> list[tuple[float, float]]:
        return SPANS[id(self)]

    def forward(self, x):
        start = time.monotonic()
        h = self.a(x)
        time.sleep(self.pause)
        out = self.b(h)
        self.spans.append((start, time.monotonic()))
        return out


def per_module(report) -> dict:
    return {name: (stats.calls, stats.own.macs, stats.own.flops) for name, stats in report.modules.items()}


# batch 8: a = 8*64*128 = 65,536 MACs, b = 8*128*10 = 10,240 MACs
SOLO = {"": (1, 0, 0), "a": (1, 65_536, 131_072), "b": (1, 10_240, 20_480)}


def run_in_threads(*jobs) -> list:
    results: list = [None] * len(jobs)
    errors: list = []

    def work(index, job):
        try:
            results[index] = job()
        except Exception as error:  # surfaced below with the test's assertion
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_solo_run_by_hand():
    assert per_module(flopmeter.profile(Slow(0.0), torch.randn(8, 64))) == SOLO


def test_two_threads_profiling_one_model_take_turns():
    model, x = Slow(), torch.randn(8, 64)
    reports = run_in_threads(lambda: flopmeter.profile(model, x), lambda: flopmeter.profile(model, x))
    assert [per_module(r) for r in reports] == [SOLO, SOLO]
    (start1, end1), (start2, end2) = sorted(model.spans)
    assert end1 <= start2  # one after the other


def test_two_threads_profiling_different_models_run_together():
    first, second, x = Slow(), Slow(), torch.randn(8, 64)
    limit = sys.getrecursionlimit()
    reports = run_in_threads(lambda: flopmeter.profile(first, x), lambda: flopmeter.profile(second, x))
    assert [per_module(r) for r in reports] == [SOLO, SOLO]
    assert sys.getrecursionlimit() == limit  # raised while profiling, put back by the last one
    (start1, end1), (start2, end2) = first.spans[0], second.spans[0]
    assert start1 < end2 and start2 < end1  # they overlapped, and neither saw the other


def test_another_thread_calling_the_model_does_not_enter_the_profile():
    model, x = Slow(), torch.randn(8, 64)
    side = Slow(0.0)
    side.a, side.b = model.a, model.b  # the same submodules, called from a plain forward

    def plain_calls():
        time.sleep(0.05)  # while the profile sleeps inside its forward
        with torch.no_grad():
            for _ in range(3):
                side(x)

    report, _ = run_in_threads(lambda: flopmeter.profile(model, x), plain_calls)
    assert per_module(report) == SOLO


def test_two_models_sharing_a_module_take_turns_and_leave_it_as_it_was():
    """Two different models holding one Slow module: their profiles do not overlap (each
    swaps the shared module's state for its run), and afterwards the shared module has its
    own attribute dict, the same entries and its mode."""
    shared = Slow(0.05).train()
    attributes, entries = vars(shared), dict(vars(shared))
    first, second, x = nn.Sequential(shared, nn.ReLU()), nn.Sequential(shared, nn.Tanh()), torch.randn(8, 64)
    reports = run_in_threads(lambda: flopmeter.profile(first, x), lambda: flopmeter.profile(second, x))
    assert [r.modules["0.a"].own.macs for r in reports] == [65_536, 65_536]  # 8*64*128
    (start1, end1), (start2, end2) = sorted(shared.spans)
    assert end1 <= start2  # one after the other
    assert vars(shared) is attributes and vars(shared) == entries and shared.training
