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


class TestNoKernelNoLaunch:
    """BatchNorm in eval on the CPU records an ``aten.empty`` (0 bytes, no kernel)."""

    @staticmethod
    def conv_bn():
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)).eval()
        return flopmeter.profile(model, torch.randn(1, 3, 8, 8))

    def test_the_allocation_is_recorded_and_costs_nothing(self):
        report = self.conv_bn()
        assert [r.op for r in report.ops] == ["aten.convolution", "aten.empty", "aten.native_batch_norm"]
        empty = report.ops[1]
        assert (empty.cost.flops, empty.cost.bytes) == (0, 0)

    def test_t4_charges_two_launches_not_three(self):
        estimate = self.conv_bn().roofline("t4")
        # gpu-eager: 6 us per op, 1.5 us per module call (Sequential, Conv2d, BatchNorm2d)
        # ops: conv + batch_norm = 2 x 6 = 12 us (the empty was charged 6 us more: 18 us)
        # modules 3 x 1.5 = 4.5 us -> overheads 16.5 us (was 22.5)
        assert estimate.total.overhead_time == pytest.approx(16.5e-6)
        # work: conv 3,680 B / 320e9 / 0.6 = 19.17 ns, bn 4,224 B / 320e9 / 0.7 = 18.86 ns, far
        # below the overheads, which the GPU overlaps: latency = max(16.5 us, 38 ns)
        assert estimate.latency == pytest.approx(16.5e-6)
        assert estimate.rows["1"].time == pytest.approx(7.5e-6)  # BN: 6 + 1.5 us (was 13.5)

    def test_a_cpu_preset_adds_the_work_to_the_overheads(self):
        estimate = self.conv_bn().roofline("xeon-8480")
        # cpu-server: conv 9 us + norm 5 us + 3 module calls x 0.6 us = 15.8 us (+3 us data for
        # the empty before: 18.8 us); work, bandwidth 307.2e9, efficiencies conv 0.8, norm 0.8:
        # conv max(27,136 / 7.17e12, 3,680 / 307.2e9) / 0.8 = 11.979 ns / 0.8 = 14.974 ns
        # bn   max(1,064 / 7.17e12, 4,224 / 307.2e9) / 0.8 = 13.750 ns / 0.8 = 17.188 ns
        work = (3_680 / 307.2e9 + 4_224 / 307.2e9) / 0.8
        assert estimate.latency == pytest.approx(15.8e-6 + work)  # 15.832 us (was 18.832)


QUANTIZED_SOURCE = """
import warnings

import torch
from torch import nn


def qlin():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            nn.Sequential(nn.Linear(512, 512), nn.ReLU()), {nn.Linear}, dtype=torch.qint8
        )
"""


def quantized_linear_relu() -> nn.Module:
    space: dict = {}
    exec(QUANTIZED_SOURCE, space)
    return space["qlin"]()


def quantized_model_file(tmp_path) -> str:
    source = tmp_path / "qlin.py"
    source.write_text(QUANTIZED_SOURCE)
    return f"{source}:qlin"


class TestIntegerIntensity:
    """Dynamic int8 Linear(512, 512) + ReLU at batch 64: the linear's work is integer."""

    # linear: int ops 2 x 64 x 512 x 512 = 33,554,432; bytes x 131,072 + int8 W 262,144 + bias
    # 2,048 + the weight's scale (float64) and zero point (int64) 16 read, 131,072 written =
    # 526,352 -> 63.749 ops/byte (was 0.0: FLOPs are 0; 526,336 and 63.751 before probe 14
    # counted the scale)
    # relu: 64 x 512 = 32,768 FLOPs; 131,072 read + 131,072 written = 262,144 bytes -> 0.125
    # root: (32,768 + 33,554,432) / (526,352 + 262,144) = 33,587,200 / 788,496 = 42.597
    def test_rows_count_integer_ops_per_byte(self):
        estimate = flopmeter.profile(quantized_linear_relu(), torch.randn(64, 512)).roofline("t4")
        linear, relu, root = estimate.rows["0"], estimate.rows["1"], estimate.total
        assert (linear.flops, linear.int_ops, linear.bytes) == (0, 33_554_432, 526_352)
        assert linear.intensity == pytest.approx(33_554_432 / 526_352)  # 63.749
        assert (relu.int_ops, relu.intensity) == (0, pytest.approx(0.125))
        assert root.intensity == pytest.approx(33_587_200 / 788_496)  # 42.597

    def test_cli_text_names_the_unit_and_the_int8_ridge(self, tmp_path):
        from flopmeter.cli import run

        code, out, _ = run([quantized_model_file(tmp_path), "--input", "64x512", "--roofline", "t4"])
        assert (
            code == 0 and "ops/byte" in out and "int ops" in out and "FLOPs/byte " not in out.split("\n\n")[1]
        )
        # t4 int8 130e12 / 320e9 = 406.25 ops/byte
        assert "int8 peak 130.0 TOP/s, ridge 406.2 ops/byte" in out
        linear = next(line for line in out.splitlines() if line.strip().startswith("0 ") and "Linear" in line)
        assert "33.55 M" in linear and "63.7" in linear.split()  # 63.749

    def test_csv_markdown_json_carry_the_integer_ops(self, tmp_path):
        import csv
        import io
        import json

        from flopmeter.cli import run

        model = quantized_model_file(tmp_path)
        common = [model, "--input", "64x512", "--roofline", "t4"]
        rows = {r["module"]: r for r in csv.DictReader(io.StringIO(run([*common, "-f", "csv"])[1]))}
        assert (rows["0"]["integer_ops"], rows["0"]["intensity"]) == ("33554432", "63.749")
        assert rows["(root)"]["intensity"] == "42.597"
        markdown = run([*common, "-f", "markdown"])[1]
        assert "| ops/byte |" in markdown and "| 63.7 |" in markdown
        modules = {m["name"]: m for m in json.loads(run([*common, "-f", "json"])[1])["roofline"]["modules"]}
        assert modules["0"]["integer_ops"] == 33_554_432 and modules["0"]["intensity"] == pytest.approx(
            63.749, abs=1e-3
        )

    def test_top_lists_the_quantized_linear_not_its_packed_params_only(self):
        from flopmeter.render.text import select_modules

        report = flopmeter.profile(quantized_linear_relu(), torch.randn(64, 512))
        # "0" has a child "0._packed_params" that is never called: "0" does the work itself
        # (it was left out as a container; --top showed ReLU and the empty packed-params row)
        assert "0" in [m.name for m in select_modules(report, top=3)]


CONV_BN_SOURCE = """
from torch import nn


def convbn():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)).eval()
"""


class TestCsvAndMarkdownCarryTimingsAndSweep:
    """Conv2d(3, 8, 3, p1, no bias) + BatchNorm2d(8) on 1x3x8x8, t4 (gpu-eager profile).

    Estimate at any batch: 2 launches x 6 us + 3 module calls x 1.5 us = 16.5 us (overhead-bound).
    Bound: batch 1 conv 3,680 B + bn 4,224 B = 7,904 B / 320e9 = 24.7 ns;
    batch 4 conv 3,072 + 864 + 8,192 = 12,128 B, bn 8,192 + 128 + 8,192 = 16,512 B -> 89.5 ns.
    Memory part (efficiencies conv 0.6, norm 0.7): batch 1 3,680 / 320e9 / 0.6 + 4,224 / 320e9 / 0.7.
    """

    @pytest.fixture()
    def model(self, tmp_path):
        source = tmp_path / "convbn.py"
        source.write_text(CONV_BN_SOURCE)
        return [f"{source}:convbn", "--input", "1x3x8x8", "--roofline", "t4", "--batch-sizes", "1,4"]

    @staticmethod
    def csv_rows(text):
        import csv
        import io

        rows = list(csv.DictReader(io.StringIO(text)))
        # every row as wide as the header: a longer one has a None key, a shorter one None values
        assert all(None not in row and None not in row.values() for row in rows)
        return rows

    def test_sweep_rows_in_csv(self, model):
        from flopmeter.cli import run

        code, out, _ = run([*model, "-f", "csv"])
        rows = self.csv_rows(out)
        sweep = [r for r in rows if r["type"] == "batch estimate"]  # the sweep was missing
        assert code == 0 and [r["batch_size"] for r in sweep] == ["1", "4"]
        assert [float(r["predicted_s"]) for r in sweep] == [pytest.approx(16.5e-6)] * 2
        assert float(sweep[0]["bound_time_s"]) == pytest.approx(7_904 / 320e9)  # 24.7 ns
        assert float(sweep[1]["bound_time_s"]) == pytest.approx((12_128 + 16_512) / 320e9)  # 89.5 ns
        assert float(sweep[0]["memory_s"]) == pytest.approx(3_680 / 320e9 / 0.6 + 4_224 / 320e9 / 0.7)
        assert float(sweep[1]["samples_per_second"]) == pytest.approx(4 / 16.5e-6)  # 242,424
        assert sweep[0]["limit"] == "overhead" and sweep[0]["median_s"] == ""
        modules = [r for r in rows if r["type"] not in ("batch estimate",)]
        assert [r["module"] for r in modules] == ["(root)", "0", "1"] and modules[0]["batch_size"] == ""

    def test_bench_rows_in_csv(self, model):
        from flopmeter.cli import run

        code, out, _ = run([*model, "--bench", "--per-module", "--warmup", "1", "--repeat", "3", "-f", "csv"])
        rows = self.csv_rows(out)
        timed = [r for r in rows if r["type"] == "timing"]  # the timings were missing
        assert code == 0 and [r["batch_size"] for r in timed] == ["1", "4"]
        for row in timed:
            median = float(row["median_s"])
            assert median > 0 and float(row["p10_s"]) <= median <= float(row["p90_s"])
            assert float(row["samples_per_second"]) == pytest.approx(int(row["batch_size"]) / median)
            assert float(row["predicted_s"]) == pytest.approx(16.5e-6)
            assert float(row["measured_over_predicted"]) == pytest.approx(median / 16.5e-6)
            assert (row["limit"], float(row["overhead_s"])) == ("overhead", pytest.approx(16.5e-6))
        modules = [(r["batch_size"], r["module"]) for r in rows if r["type"] == "module timing"]
        assert sorted(modules) == [(b, m) for b in "14" for m in ("(root)", "0", "1")]
        bn = next(r for r in rows if r["type"] == "module timing" and r["module"] == "1")
        assert float(bn["predicted_s"]) == pytest.approx(7.5e-6)  # 6 us launch + 1.5 us module call

    def test_markdown_has_the_timing_and_sweep_tables(self, model):
        from flopmeter.cli import run

        _, swept, _ = run([*model, "-f", "markdown"])
        assert "**Batch sweep**" in swept
        lines = swept.splitlines()
        sweep = lines[
            lines.index(
                "| batch | estimate | per sample | samples/s | bound (roofline) | overhead |"
                " memory | compute | limit |"
            )
            + 2 :
        ]
        assert sweep[0].startswith("| 1 | 16.500 us | 16.500 us | 60,606.1 | 24.7 ns | 100% |")
        assert sweep[1].startswith("| 4 | 16.500 us | 4.125 us | 242,424.2 | 89.5 ns | 99% |")
        code, out, _ = run([*model, "--bench", "--warmup", "1", "--repeat", "3", "-f", "markdown"])
        assert (
            code == 0 and "**Measured latency**" in out and "> predicted by the calibrated model on t4" in out
        )
        lines = out.splitlines()
        head = lines.index(
            "| batch | median | p10 | p90 | std | samples/s | achieved | % of peak | predicted | meas/pred | limit |"
        )
        for line, batch in zip(lines[head + 2 : head + 4], "14", strict=True):
            cells = line.strip("|").split(" | ")
            assert cells[0].strip() == batch and cells[8:] == ["16.500 us", cells[9], "overhead "]

    def test_by_op_csv_keeps_its_columns_and_adds_the_rows(self, model):
        from flopmeter.cli import run

        rows = self.csv_rows(run([*model, "--by", "op", "-f", "csv"])[1])
        assert [r["operator"] for r in rows if r["kind"] == "batch estimate"] == ["(root)", "(root)"]


class TestPerModuleTimesPerForward:
    def test_a_module_called_twice_is_timed_for_both_calls(self):
        import time

        class Sleep(nn.Module):
            def forward(self, x):
                time.sleep(0.002)  # never returns early: each call takes >= 2 ms
                return x

        class Twice(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.a = Sleep()

            def forward(self, x):
                return self.a(self.a(x))

        timing = flopmeter.benchmark(Twice(), torch.randn(1, 4), warmup=1, repeat=3, per_module=True)[0]
        # "a" runs twice per forward: >= 2 x 2 ms per call of the model, as its estimate sums both
        # calls (module_ratios compares the two); it was the median of single calls, ~2 ms
        assert timing.per_module["a"] >= 0.004
        assert timing.per_module[""] >= timing.per_module["a"] - 1e-4


class TestIntegerWorkIsTimedAgainstTheInt8Peak:
    def test_measure_local_measures_an_int8_peak(self):
        from flopmeter.hardware import measure_local

        # it had none: int8 work on "local" was costed at float32's peak, while this CPU's int8
        # GEMM runs ~9x faster (dynamic int8 Linear(512, 512) batch 64: 434 us predicted, 67 us
        # measured; 67 us predicted after)
        spec = measure_local(size=64, copy_mib=1, repeat=1, dtypes=("float32", "int8"))
        assert set(spec.peak_flops) == {"float32", "int8"} and spec.peak("qint8") == spec.peak_flops["int8"]

    def test_fraction_of_peak_counts_the_integer_ops(self):
        from flopmeter.hardware import Hardware

        spec = Hardware("x", peak_flops={"float32": 1e12, "int8": 4e12}, bandwidth=1e12)
        timing = flopmeter.benchmark(
            quantized_linear_relu(), torch.randn(64, 512), warmup=1, repeat=3, hardware=spec
        )[0]
        # int ops 2 x 64 x 512 x 512 = 33,554,432 at 4e12 = 8.389 us; ReLU's 32,768 FLOPs at 1e12 = 32.8 ns
        assert (timing.flops, timing.int_ops) == (32_768, 33_554_432)
        assert timing.fraction_of_peak == pytest.approx((32_768 / 1e12 + 33_554_432 / 4e12) / timing.median)
        assert timing.achieved_int_ops_per_second == pytest.approx(33_554_432 / timing.median)
        # a float model is unchanged: achieved FLOP/s / peak
        plain = flopmeter.benchmark(nn.Linear(8, 8), torch.randn(2, 8), warmup=1, repeat=3, hardware=spec)[0]
        assert plain.int_ops == 0 and plain.fraction_of_peak == pytest.approx(256 / plain.median / 1e12)


def test_every_preset_has_an_int8_rate_above_its_float32_one():
    # v100 (DP4A: 4 x 15.7 = 62.8 TOPS) and epyc-9654 (VNNI: 4 x 7.37 = 29.5) had none: their
    # int8 layers were costed at the float32 peak, 4x too slow; every part listed runs int8 faster
    for name in flopmeter.hardware.names():
        spec = flopmeter.hardware.get(name)
        assert "int8" in spec.peak_flops and spec.peak("int8") >= 4 * spec.peak("float32") * 0.99, name
    assert flopmeter.hardware.get("v100-sxm2").peak("qint8") == pytest.approx(4 * 15.7e12)
    assert flopmeter.hardware.get("epyc-9654").peak("int8") == pytest.approx(4 * 7.3728e12, rel=1e-3)


def test_quiet_keeps_the_speed_totals(tmp_path):
    from flopmeter.cli import run

    source = tmp_path / "lin.py"
    source.write_text("import torch\ndef lin():\n    return torch.nn.Linear(64, 64)\n")
    model = [f"{source}:lin", "--input", "2x64", "--roofline", "t4", "-q"]
    # -q printed the count totals only: the estimate, the sweep and a whole benchmark were dropped
    code, out, _ = run([*model, "--batch-sizes", "1,2"])
    # addmm 6 us + one module call 1.5 us = 7.5 us; bound (512 + 16,384 + 256 + 512) B / 320e9 = 55.2 ns
    assert code == 0 and "on t4: estimated latency 7.500 us (calibrated model, overhead-limited)" in out
    assert "roofline bound 55.2 ns" in out and "batch sweep" in out
    code, out, _ = run([*model, "--bench", "--warmup", "1", "--repeat", "2"])
    assert code == 0 and "samples/s" in out and "meas/pred" in out


class TestBatchSweepsSetTheBatchOrSayTheyCannot:
    def test_a_sequence_first_lstm_is_refused_not_swept_along_its_time_steps(self):
        model, x = nn.LSTM(8, 16), torch.randn(10, 2, 8)  # (T=10, N=2, F=8)
        # repeating dim 0 changed T to 1 and 4 while the batch stayed 2: two rows labelled
        # "batch 2" with estimates of 1 and 4 time steps (t4: 35.5 and 65.5 us)
        with pytest.raises(ValueError, match="to make a batch of 1, but the model read a batch of 2"):
            flopmeter.predict_batches(model, x, batch_sizes=[1, 4], hardware="t4")
        with pytest.raises(ValueError, match="sequence-first RNN"):
            flopmeter.benchmark(model, x, warmup=1, repeat=1, batch_sizes=[1, 4])

    def test_tensors_inside_a_list_are_refused(self):
        class PerItem(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, xs):
                return [self.fc(x) for x in xs]

        with pytest.raises(ValueError, match="batch of 4, but the model read a batch of 2"):
            flopmeter.predict_batches(PerItem(), ([torch.randn(2, 4)] * 2,), batch_sizes=[4], hardware="t4")

    def test_batch_first_inputs_still_sweep(self):
        lstm = nn.LSTM(8, 16, batch_first=True)
        timings = flopmeter.benchmark(lstm, torch.randn(2, 10, 8), warmup=1, repeat=1, batch_sizes=[1, 4])
        assert [t.batch_size for t in timings] == [1, 4]


def test_roofline_plot_places_the_int8_linear_at_its_integer_intensity():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flopmeter.render.roofline_plot import draw_roofline

    report = flopmeter.profile(quantized_linear_relu(), torch.randn(64, 512))
    figure, axis = plt.subplots()
    try:
        draw_roofline(axis, report, flopmeter.hardware.get("t4"))
        points = [tuple(p) for c in axis.collections for p in c.get_offsets()]
        labels = [line.get_label() for line in axis.get_lines()]
    finally:
        plt.close(figure)
    # the Linear (63.749 ops/byte: 526,352 B with its weight's 16 B scale and zero point,
    # 33,554,432 int ops / 7.5 us) was missing: its never-called packed-params child made it a
    # container, and its y (FLOPs / time) was 0
    assert any(
        x == pytest.approx(33_554_432 / 526_352) and y == pytest.approx(33_554_432 / 7.5e-6)
        for x, y in points
    )
    assert "int8 roof" in labels


def test_a_norm_or_softmax_backward_is_costed_in_its_forward_class():
    from flopmeter.roofline import op_class

    model = nn.Sequential(
        nn.Linear(8, 8), nn.LayerNorm(8), nn.Softmax(-1), nn.BatchNorm1d(8), nn.GroupNorm(2, 8)
    )
    report = flopmeter.profile(model, torch.randn(4, 8), backward=True)
    classes = {r.op: op_class(r) for r in report.ops if r.phase == "backward"}
    # they were "elementwise" (t4: bandwidth x 0.8 instead of the norm's 0.7, the reduction's 0.6)
    assert classes["aten.native_batch_norm_backward"] == "norm"
    assert classes["aten.native_layer_norm_backward"] == classes["aten.native_group_norm_backward"] == "norm"
    assert classes["aten._softmax_backward_data"] == "reduction"
