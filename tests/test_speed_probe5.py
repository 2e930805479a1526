"""Probe 5, speed: csv/markdown carry timings and the batch sweep, no launch charged for
ops that launch no kernel, integer intensity of quantized ops, the hook overhead stated
as measured (docs/probe-5/speed.md)."""

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.render.speed import hook_cost
from flopmeter.timing import Timing


class TestHookOverhead:
    @staticmethod
    def timing(times: list[float], overhead: float) -> Timing:
        timing = Timing(1, times, 1, "cpu", per_module={"": 1e-3})
        timing.hook_overhead = overhead
        return timing

    def test_a_faster_hooked_run_is_not_printed_as_zero(self):
        # plain runs 1.0, 1.1, 1.2, 1.3, 1.4 ms: p10 1.04, p90 1.36 -> spread 0.32 ms; the hooked
        # median was 0.05 ms faster: it was printed "hooks add 0.0 ns" (clamped)
        timing = self.timing([1.0e-3, 1.1e-3, 1.2e-3, 1.3e-3, 1.4e-3], -0.05e-3)
        assert not timing.hook_overhead_measurable
        text = hook_cost(timing)
        assert "not measurable" in text and "-50.000 us" in text and "320.000 us" in text
        assert "0.0 ns" not in text

    def test_a_small_positive_difference_within_the_spread_is_not_measurable(self):
        timing = self.timing([1.0e-3, 1.1e-3, 1.2e-3, 1.3e-3, 1.4e-3], 0.2e-3)  # 0.2 < 0.32 ms
        assert not timing.hook_overhead_measurable and "+200.000 us" in hook_cost(timing)

    def test_a_difference_above_the_spread_is_stated(self):
        timing = self.timing([1.0e-3, 1.1e-3, 1.2e-3, 1.3e-3, 1.4e-3], 0.5e-3)  # 0.5 > 0.32 ms
        assert timing.hook_overhead_measurable
        assert hook_cost(timing) == "the hooks cost 500.000 us per call of the whole model"

    def test_json_states_the_signed_difference_and_null_when_not_timed(self):
        import json

        from flopmeter.render.formats import to_json

        report = flopmeter.profile(nn.Linear(4, 4), torch.randn(1, 4))
        timed = self.timing([1e-3, 2e-3], -1e-4)
        plain = Timing(1, [1e-3, 2e-3], 1, "cpu")  # no per-module timing: was 0.0, a silent zero
        rows = json.loads(to_json(report, timings=[timed, plain]))["timings"]
        assert rows[0]["hook_overhead_seconds"] == pytest.approx(-1e-4)
        assert rows[1]["hook_overhead_seconds"] is None
