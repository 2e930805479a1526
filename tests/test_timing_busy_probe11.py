"""Probe 11: a CPU benchmark at one torch thread on a busy machine says so, with the
figures by the thread's CPU time (the clock ``local`` calibrates with at one thread)."""

import pytest

import flopmeter


def _linear_timing(cpu_times, times):
    import torch
    from torch import nn

    from flopmeter.timing import Timing

    report = flopmeter.profile(nn.Linear(8, 8), torch.randn(1, 8))
    timing = Timing(1, times, 1, "cpu", report.flops, report.roofline("t4").hardware)
    timing.estimate = report.roofline(flopmeter.hardware.Hardware("x", peak_flops=1e9, bandwidth=1e9))
    timing.cpu_times = cpu_times
    return report, timing


def test_a_busy_machine_is_said_with_the_cpu_time_figures():
    # wall medians 30 ms, the thread's CPU time 12 ms: it ran 12 / 30 = 40% of the wall time
    from flopmeter.render.speed import timing_notes

    report, timing = _linear_timing([0.012, 0.011, 0.013], [0.030, 0.029, 0.031])
    assert timing.cpu_share == pytest.approx(0.012 / 0.030)
    # Linear(8, 8) at batch 1: 128 FLOPs, 8*8*4 + 8*4 + 8*4 + 8*4 = 352 bytes; on 1e9 FLOP/s and
    # 1e9 B/s (no overheads): max(128, 352) ns = 352 ns predicted
    assert timing.estimate.latency == pytest.approx(352e-9)
    assert timing.cpu_ratio == pytest.approx(0.012 / 352e-9)
    note = [line for line in timing_notes(report, [timing]) if "busy machine" in line]
    assert len(note) == 1 and "batch 1: 40%" in note[0] and "12.000 ms" in note[0], note


def test_an_idle_machine_gets_no_busy_note():
    from flopmeter.render.speed import timing_notes

    report, timing = _linear_timing([0.0295, 0.029, 0.031], [0.030, 0.029, 0.031])
    assert timing.cpu_share == pytest.approx(0.0295 / 0.030)
    assert not any("busy machine" in line for line in timing_notes(report, [timing]))


def test_benchmark_notes_the_thread_cpu_time_of_each_timed_run_at_one_thread():
    import torch
    from torch import nn

    threads = torch.get_num_threads()
    model = nn.Linear(16, 16)
    try:
        torch.set_num_threads(1)
        (one,) = flopmeter.benchmark(model, torch.randn(4, 16), warmup=2, repeat=5)
        torch.set_num_threads(2)
        (two,) = flopmeter.benchmark(model, torch.randn(4, 16), warmup=2, repeat=5)
    finally:
        torch.set_num_threads(threads)
    assert len(one.cpu_times) == 5 and all(t >= 0 for t in one.cpu_times)  # the timed runs only
    assert one.cpu_share is not None
    assert two.cpu_times == [] and two.cpu_share is None  # other threads' work is not this thread's


def test_a_gpu_sweep_says_its_shares_are_of_the_parts_sum_not_of_the_estimate():
    # resnet18-like: on h100-sxm (overlap) the estimate is max(overheads, work), so the
    # overhead / memory / compute percentages (of their sum) do not split the estimate
    import torch
    from torch import nn

    from flopmeter.render.speed import sweep_note

    report = flopmeter.profile(nn.Linear(8, 8), torch.randn(1, 8))
    r = report.roofline("h100-sxm")
    # one addmm: 6 us of op overhead + 1.5 us for the module call = 7.5 us; its work is ns
    assert r.latency == pytest.approx(7.5e-6)
    assert "the estimate is the larger of the two" in sweep_note(report, [r])
    assert "larger of the two" not in sweep_note(report, [report.roofline("xeon-8480")])  # no overlap


def test_json_carries_the_cpu_time_figures():
    import json

    from flopmeter.render.formats import to_json

    report, timing = _linear_timing([0.012, 0.011, 0.013], [0.030, 0.029, 0.031])
    data = json.loads(to_json(report, timings=[timing]))["timings"][0]
    assert data["cpu_times_seconds"] == [0.012, 0.011, 0.013]
    assert data["cpu_share"] == pytest.approx(0.4)  # 0.012 / 0.030
    assert data["measured_over_predicted_cpu_time"] == pytest.approx(0.012 / 352e-9)
