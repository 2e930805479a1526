"""The calibrated latency model: op classes, its arithmetic on hand-made ops and specs,
presets, validation output and bad inputs. No assertion depends on how fast anything ran."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.cli import run
from flopmeter.cost import Cost
from flopmeter.hardware import Hardware
from flopmeter.report import ModuleStats, OpRecord, Report
from flopmeter.roofline import OP_CLASSES, estimate_latency, launches, op_class, roofline

TINY = str(Path(__file__).parent / "fixtures" / "tiny_model.py")


def record(op: str, *shapes: tuple[int, ...], flops: int = 0, nbytes: int = 0, module: str = "") -> OpRecord:
    return OpRecord(op, module, "forward", "float32", Cost(flops=flops, bytes_read=nbytes), shapes)


def toy_report(ops: list[OpRecord]) -> Report:
    """A root module "" holding one child "a", each called once."""
    modules = {
        "": ModuleStats("", "Toy", 0, calls=1, children=["a"]),
        "a": ModuleStats("a", "Linear", 1, calls=1),
    }
    zero = Cost()
    return Report("toy", 1, [], modules, {}, {}, zero, zero, 0, 0, 0, 0, 0, False, False, ops=ops)


class TestOpClass:
    @pytest.mark.parametrize(
        ("op", "shapes", "expected"),
        [
            ("aten.convolution", ((1, 64, 56, 56), (64, 64, 3, 3)), "conv"),
            ("aten.convolution", ((1, 64, 56, 56), (256, 64, 1, 1)), "pointwise"),
            ("aten.convolution", ((1, 144, 56, 56), (144, 1, 3, 3)), "depthwise"),  # groups 144
            ("aten.convolution", ((1, 128, 28, 28), (128, 4, 3, 3)), "depthwise"),  # 4 channels per group
            ("aten.convolution", ((1, 512, 7, 7), (512, 16, 3, 3)), "conv"),  # 16 per group: dense enough
            ("aten.convolution", ((1, 3, 224, 224), (64, 3, 7, 7)), "conv"),  # 3 channels, not grouped
            ("aten.convolution_backward", ((1, 32, 6, 6), (1, 32, 8, 8), (32, 1, 3, 3)), "depthwise"),
            ("aten.addmm", ((768,), (197, 768), (768, 768)), "matmul"),
            ("aten.bmm", (), "matmul"),
            ("aten._scaled_mm", (), "matmul"),  # fp8
            ("aten._weight_int8pack_mm", (), "matmul"),
            ("quantized.linear_dynamic", (), "matmul"),
            ("aten.mkldnn_rnn_layer", ((8, 1, 16),), "recurrent"),
            ("aten._scaled_dot_product_flash_attention_for_cpu", (), "attention"),
            ("nn.functional.multi_head_attention_forward", (), "attention"),
            ("aten.relu_", (), "elementwise"),
            ("aten.add", (), "elementwise"),
            ("aten.gelu", (), "transcendental"),
            ("aten.silu_", (), "transcendental"),
            ("aten.native_batch_norm", (), "norm"),
            ("aten.native_layer_norm", (), "norm"),
            ("aten._softmax", (), "reduction"),
            ("aten.mean", (), "reduction"),
            ("aten._adaptive_avg_pool2d", (), "reduction"),
            ("aten.max_pool2d_with_indices", (), "pooling"),
            ("aten.cat", (), "data"),
            ("aten.empty", (), "data"),
        ],
    )
    def test_by_name_and_shape(self, op, shapes, expected):
        assert op_class(record(op, *shapes)) == expected
        assert expected in OP_CLASSES

    def test_recurrent_layers_pay_their_overhead_per_step_and_layer(self):
        # the CPU's mkldnn_rnn_layer is one layer over input (T=64, N=1, F=256): 64 launches
        assert launches(record("aten.mkldnn_rnn_layer", (64, 1, 256), (1024, 256))) == 64
        # aten.lstm, batch_first input (N=2, T=10, F) and hidden (layers=3, N=2, H): 10 * 3
        assert launches(record("aten.lstm", (2, 10, 32), (3, 2, 64))) == 30
        # sequence-first input (T=10, N=2, F): still 10 steps, 3 layers
        assert launches(record("aten.lstm", (10, 2, 32), (3, 2, 64))) == 30
        assert launches(record("aten.addmm", (4, 4))) == 1

    def test_every_op_of_real_models_gets_a_class(self):
        torchvision = pytest.importorskip("torchvision")
        report = flopmeter.profile(torchvision.models.mobilenet_v3_small(), input_shape=(1, 3, 32, 32))
        classes = {op_class(r) for r in report.ops}
        assert {"conv", "pointwise", "depthwise", "norm", "elementwise", "matmul"} <= classes
        assert classes <= set(OP_CLASSES)


class TestArithmetic:
    # peak 1e12 FLOP/s, 1e11 bytes/s; matmul: 5 us per op and half the roofline; other ops
    # 1 us, elementwise twice the roofline (cache); 1 us per module call
    HW = Hardware(
        "toy",
        peak_flops=1e12,
        bandwidth=1e11,
        op_overhead={"matmul": 5e-6, "default": 1e-6},
        module_overhead=1e-6,
        efficiency={"matmul": 0.5, "elementwise": 2.0},
    )
    OPS = [
        # compute 1e9 / 1e12 = 1 ms > memory 1e6 / 1e11 = 10 us: compute-bound
        record("aten.mm", flops=10**9, nbytes=10**6, module="a"),
        # compute 1e6 / 1e12 = 1 us < memory 8e6 / 1e11 = 80 us: memory-bound
        record("aten.add", flops=10**6, nbytes=8 * 10**6, module=""),
    ]

    def test_calibrated_by_hand(self):
        result = roofline(toy_report(self.OPS), self.HW)
        assert result.model == "calibrated"
        # bound: 1 ms + 80 us = 1.08 ms
        assert result.bound_latency == pytest.approx(1.08e-3)
        # mm: 5 us + 1 ms / 0.5 = 2.005 ms; add: 1 us + 80 us / 2 = 41 us; 2 module calls: 2 us
        # 2.005 ms + 41 us + 2 us = 2.048 ms
        assert result.latency == pytest.approx(2.048e-3)
        assert estimate_latency(toy_report(self.OPS), self.HW) == pytest.approx(2.048e-3)
        a = result.rows["a"]  # its mm and its own call: 2.005 ms + 1 us
        assert a.time == pytest.approx(2.006e-3) and a.bound_time == pytest.approx(1e-3)
        assert (a.overhead_time, a.calibrated_compute) == (pytest.approx(6e-6), pytest.approx(2e-3))
        total = result.total  # overheads 5 + 1 + 2 = 8 us; memory 40 us; compute 2 ms
        assert total.overhead_time == pytest.approx(8e-6)
        assert total.calibrated_memory == pytest.approx(4e-5)
        assert (total.bound, total.regime) == ("compute", "compute")

    def test_overlap_hides_host_overheads(self):
        from dataclasses import replace

        result = roofline(toy_report(self.OPS), replace(self.HW, overlap=True))
        # max(work 2 ms + 40 us, overheads 8 us) = 2.04 ms
        assert result.latency == pytest.approx(2.04e-3)
        slow_host = replace(self.HW, overlap=True, op_overhead=1e-3)  # 2 ops * 1 ms + 2 us = 2.002 ms
        assert roofline(toy_report(self.OPS), slow_host).latency == pytest.approx(2.04e-3)
        slower = replace(self.HW, overlap=True, op_overhead=2e-3)  # 4 ms + 2 us of host time wins
        result = roofline(toy_report(self.OPS), slower)
        assert result.latency == pytest.approx(4.002e-3) and result.total.regime == "overhead"

    def test_uncalibrated_spec_gives_the_bound(self):
        plain = Hardware("plain", peak_flops=1e12, bandwidth=1e11)
        result = roofline(toy_report(self.OPS), plain)
        assert result.model == "roofline-bound" and not plain.calibrated
        assert result.latency == result.bound_latency == pytest.approx(1.08e-3)

    def test_overhead_bound_at_batch_1_compute_bound_at_large_batch_on_a_gpu_preset(self):
        torchvision = pytest.importorskip("torchvision")
        model = torchvision.models.resnet18()
        # float32 convolutions at the float32 peak (67 TFLOP/s), as with TF32 turned off
        # (tests/test_tf32.py: at torch's default, TF32, batch 256 is memory-bound)
        saved = torch.backends.cudnn.conv.fp32_precision
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        try:
            small, medium, large = flopmeter.predict_batches(
                model, input_shape=(1, 3, 224, 224), batch_sizes=[1, 8, 256], hardware="h100-sxm"
            )
        finally:
            torch.backends.cudnn.conv.fp32_precision = saved
        assert (small.batch_size, large.batch_size) == (1, 256)
        assert small.total.regime == "overhead" and medium.total.regime == large.total.regime == "compute"
        assert large.dtype == "float32"
        # launches do not grow with the batch: the same op count, the same host time
        assert small.total.overhead_time == pytest.approx(large.total.overhead_time)
        # docs/speed.md: 522 us at batch 1, mostly overhead: 88 ops, of which 20 are the
        # BatchNorms' aten.empty (no kernel, no launch), and 76 module calls (each block's ReLU
        # runs twice) -> 68 * 6 us + 76 * 1.5 us = 522 us of host time (642 us until probe 5
        # charged the empties), more than its device work, which it hides (overlap)
        ops = flopmeter.profile(model, input_shape=(1, 3, 224, 224)).ops
        assert len(ops) == 88 and sum(r.op == "aten.empty" for r in ops) == 20
        assert small.latency == pytest.approx(522e-6)

    def test_the_bound_below_the_launches_on_a_gpu(self):
        torchvision = pytest.importorskip("torchvision")
        report = flopmeter.profile(torchvision.models.mobilenet_v2(), input_shape=(1, 3, 224, 224))
        estimate = report.roofline("h100-sxm")
        # docs/speed.md: 52 us (52.3 us before its float32 convolutions took the TF32 peak)
        assert estimate.bound_latency == pytest.approx(51.7e-6, rel=0.01)
        assert estimate.latency >= len(report.ops) * 6e-6  # at least the launches


class TestHardware:
    def test_peak_by_dtype_family(self):
        h100 = flopmeter.hardware.get("h100-sxm")
        assert h100.peak("float8_e4m3fn") == h100.peak("float8") == 1978.9e12  # 3,958 sparse / 2
        assert h100.peak("qint8") == h100.peak("int8") == 1978.9e12
        assert h100.peak("bfloat16") == 989.4e12  # 1,979 sparse / 2
        assert h100.peak("complex64") == 67e12  # no figure: float32's
        t4 = flopmeter.hardware.get("t4")
        assert t4.peak("bfloat16") == t4.peak("float32") == 8.1e12  # Turing: no bf16 tensor cores

    def test_every_preset_has_a_source_and_a_latency_profile(self):
        for name in flopmeter.hardware.names():
            hw = flopmeter.hardware.get(name)
            assert hw.source and hw.calibrated and hw.calibration_source, name
            assert set(hw.efficiency) == set(OP_CLASSES), name
            gpu = not name.startswith(("xeon", "epyc"))
            assert hw.overlap == gpu, name
            if gpu:
                assert {"float32", "float16"} <= set(hw.peak_flops), name  # type: ignore[arg-type]

    def test_ampere_and_later_list_every_tensor_dtype(self):
        for name in ("a100-sxm-80gb", "a100-pcie-40gb", "h100-sxm", "h100-pcie", "h200", "l4", "rtx-4090"):
            peaks = flopmeter.hardware.get(name).peak_flops
            assert {"float32", "tfloat32", "bfloat16", "float16", "int8"} <= set(peaks), name  # type: ignore[arg-type]
        for name in ("h100-sxm", "h100-pcie", "h200", "l4", "rtx-4090"):
            assert "float8" in flopmeter.hardware.get(name).peak_flops, name  # type: ignore[operator]

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"peak_flops": 0.0, "bandwidth": 1e9}, "peak_flops must be a positive"),
            ({"peak_flops": {}, "bandwidth": 1e9}, "peak_flops needs at least one dtype"),
            ({"peak_flops": 1e12, "bandwidth": -1.0}, "bandwidth must be a positive"),
            ({"peak_flops": 1e12, "bandwidth": 1e9, "op_overhead": -1e-6}, "overheads are seconds >= 0"),
            (
                {"peak_flops": 1e12, "bandwidth": 1e9, "efficiency": {"conv": 0}},
                "efficiencies are finite fractions",
            ),
        ],
    )
    def test_bad_specs_are_refused(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            Hardware("bad", **kwargs)

    def test_bad_hardware_arguments(self):
        report = flopmeter.profile(nn.Linear(4, 4), torch.randn(1, 4))
        with pytest.raises(TypeError, match="hardware name must be a string"):
            flopmeter.hardware.get(3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="flopmeter.hardware.Hardware or a preset name"):
            report.roofline(3.0)
        with pytest.raises(ValueError, match="unknown hardware 'h100'; did you mean"):
            report.roofline("h100")
        if not torch.cuda.is_available():
            with pytest.raises(ValueError, match="'local-cuda' measures a CUDA GPU"):
                flopmeter.hardware.get("local-cuda")
        with pytest.raises(ValueError, match="at least one batch size"):
            flopmeter.predict_batches(nn.Linear(4, 4), torch.randn(1, 4), batch_sizes=[], hardware="t4")
        with pytest.raises(ValueError, match="batch sizes must be at least 1"):
            flopmeter.predict_batches(nn.Linear(4, 4), torch.randn(1, 4), batch_sizes=[0], hardware="t4")


def test_local_calibration_is_complete_and_cached():
    from flopmeter.hardware.calibrate import calibrate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = calibrate()
        assert calibrate() is first  # cached per process and thread count
    finally:
        torch.set_num_threads(threads)
    assert first.name == "local-cpu" and first.calibrated and not first.overlap
    assert set(OP_CLASSES) <= set(first.efficiency)  # every class, plus "<class>:memory" for some
    assert {k.removesuffix(":memory") for k in first.efficiency} == set(OP_CLASSES)
    assert "matmul:memory" in first.efficiency  # the GEMV case is memory-bound, the ViT linears not
    assert all(0.01 <= v <= 4.0 for v in first.efficiency.values())  # the clamp on disturbed runs
    assert all(first.overhead(k) >= 0 for k in OP_CLASSES) and first.module_overhead > 0
    assert "1 thread" in first.calibration_source


class TestValidationOutput:
    def test_benchmark_carries_the_prediction(self):
        t4 = flopmeter.hardware.get("t4")
        model = nn.Sequential(nn.Linear(16, 16), nn.ReLU())
        (timing,) = flopmeter.benchmark(
            model, torch.randn(2, 16), warmup=1, repeat=3, per_module=True, hardware=t4
        )
        expected = flopmeter.profile(model, torch.randn(2, 16)).roofline(t4)
        assert timing.predicted == pytest.approx(expected.latency)
        assert timing.ratio == pytest.approx(timing.median / expected.latency)
        measured, predicted, ratio = timing.module_ratios()["0"]
        assert predicted == pytest.approx(expected.rows["0"].time) and ratio == pytest.approx(
            measured / predicted
        )

    def test_mixed_positional_and_keyword_inputs_keep_module_names(self):
        class Two(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x, *, scale):
                return self.fc(x) * scale

        from flopmeter.timing import _profile_mixed

        report = _profile_mixed(Two(), (torch.randn(1, 4),), {"scale": torch.ones(1)})
        assert set(report.modules) == {"", "fc"} and report.modules["fc"].depth == 1
        assert {r.module for r in report.ops} <= {"", "fc"}

    def test_cli_bench_with_roofline_prints_predicted_and_ratio(self):
        code, out, err = run(
            [
                f"{TINY}:TinyNet",
                "--bench",
                "--roofline",
                "t4",
                "--warmup",
                "1",
                "--repeat",
                "2",
                "--per-module",
            ]
        )
        assert code == 0, err
        assert "predicted by the calibrated model on t4" in out
        header = next(line for line in out.splitlines() if line.startswith("batch"))
        assert header.split()[-3:] == ["predicted", "meas/pred", "limit"]
        module_header = next(
            line for line in out.splitlines() if line.startswith("module") and "meas/pred" in line
        )
        assert module_header.split() == ["module", "median", "predicted", "meas/pred", "limit"]
        assert any(line.startswith("conv ") for line in out.splitlines())
        assert "roofline bound" in out and "calibration:" in out

    def test_cli_per_module_timing_table_keeps_to_top(self):
        # probe 7's N3: --top 2 still printed the 15 slowest modules (every module of TinyNet)
        args = [f"{TINY}:TinyNet", "--bench", "--warmup", "1", "--repeat", "2", "--per-module"]
        code, out, err = run([*args, "--top", "2"])
        assert code == 0, err
        table = out.split("per-module time in one call")[1].splitlines()[3:]
        assert len([line for line in table if line.strip()]) == 2  # the root and the slowest module

    def test_cli_batch_sweep_table_and_chart(self, tmp_path):
        pytest.importorskip("matplotlib")
        plot = tmp_path / "tiny.png"
        code, out, err = run(
            [f"{TINY}:TinyNet", "--roofline", "h100-sxm", "--batch-sizes", "1,64", "--plot", str(plot)]
        )
        assert code == 0, err
        assert "batch sweep, calibrated estimate on h100-sxm (no timing)" in out
        rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
        assert [r[0] for r in rows[-2:]] == ["1", "64"]
        assert (tmp_path / "tiny-batches.png").stat().st_size > 0 and plot.stat().st_size > 0

    def test_cli_json_names_the_model(self):
        import json

        code, out, _ = run([f"{TINY}:TinyNet", "--roofline", "t4", "-f", "json"])
        data = json.loads(out)["roofline"]
        assert data["model"] == "calibrated" and data["bound_latency_seconds"] < data["latency_seconds"]
        assert {m["regime"] for m in data["modules"]} <= {"overhead", "memory", "compute", "-"}

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--batch-sizes", "1,4"], "--batch-sizes needs --bench"),
            (["--roofline", "t4", "--batch-sizes", "1,0"], "--batch-sizes must all be at least 1"),
            (["--roofline", "t4", "--batch-sizes", "1,x"], "--batch-sizes takes numbers"),
            (["--roofline", "t4", "--batch-sizes", ""], "--batch-sizes takes numbers"),  # was ignored
            (["--roofline", "H100"], "unknown hardware 'H100'; did you mean"),
            (["--bench", "--threads", "0"], "--threads must be at least 1"),
        ],
    )
    def test_cli_usage_errors(self, argv, message):
        code, _, err = run([f"{TINY}:TinyNet", *argv])
        assert code == 2 and message in err


def test_panel_script_prints_its_summary(capsys):
    import importlib.util

    path = Path(__file__).parents[1] / "benchmarks" / "latency_panel.py"
    spec = importlib.util.spec_from_file_location("latency_panel", path)
    assert spec and spec.loader
    panel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(panel)
    assert len(panel.PANEL) == 28  # README and docs/speed.md: a 28-model panel
    threads = torch.get_num_threads()
    try:
        assert panel.main(["--models", "mha", "--budget", "0.01", "--clock", "cpu"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "SUMMARY:" in out and "within 0.75-1.33" in out and "mha" in out
    with pytest.raises(SystemExit):
        panel.main(["--models", "nosuch"])


def test_memory_bound_ops_use_the_memory_efficiency_of_their_class():
    from flopmeter.hardware import Hardware

    # peak 1e9 FLOP/s, bandwidth 1e9 B/s; "matmul" ops reach 0.5 of peak, memory-bound ones 0.25
    hw = Hardware(
        "toy", peak_flops=1e9, bandwidth=1e9, efficiency={"matmul": 0.5, "matmul:memory": 0.25, "norm": 0.8}
    )
    assert hw.class_efficiency("matmul", memory_bound=False) == 0.5
    assert hw.class_efficiency("matmul", memory_bound=True) == 0.25
    assert hw.class_efficiency("norm", memory_bound=True) == 0.8  # no "norm:memory": the class's
    assert hw.class_efficiency("conv", memory_bound=True) == 1.0  # not listed: the bound itself
    # a GEMV (1,64) x (64,64)^T, no bias: 64*(2*64-1) = 8,128 FLOPs; bytes (64 + 64*64 + 64)*4 = 16,896
    # memory-bound: 16,896 B / 1e9 B/s = 16.896 us, / 0.25 = 67.584 us
    report = flopmeter.profile(nn.Linear(64, 64, bias=False), torch.randn(1, 64))
    assert report.roofline(hw).latency == pytest.approx(16.896e-6 / 0.25)
