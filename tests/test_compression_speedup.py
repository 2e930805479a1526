"""Speedup estimates of compare: the calibrated latency model with a stated float
baseline (compression/speedup.py), with the arithmetic by hand.

a100-sxm-80gb: float16 312e12, float32 19.5e12, tfloat32 156e12, int8 624e12 (per s),
bandwidth 2.039e12 B/s; gpu-eager profile: matmul efficiency 0.75, 6 us per op,
1.5 us per module call, host overlaps device: latency = max(work, overheads).
"""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import flopmeter
from flopmeter.cli import run
from flopmeter.compression import CompressionOptions
from flopmeter.hardware import Hardware

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def _stack(layers: int = 4) -> tuple[nn.Module, nn.Module]:
    """Linear(1024, 1024, bias=False) x layers, and a copy with every row 2:4 (1,1,0,0)."""
    torch.manual_seed(0)
    dense = nn.Sequential(*[nn.Linear(1024, 1024, bias=False) for _ in range(layers)])
    sparse = copy.deepcopy(dense)
    with torch.no_grad():
        for layer in sparse:
            layer.weight.mul_(torch.tensor([1.0, 1, 0, 0]).repeat(256))
    return dense, sparse


class TestTwoFour:
    def test_large_rows_cap_and_total(self) -> None:
        dense, sparse = _stack()
        result = flopmeter.compare(dense, sparse, torch.randn(4096, 1024))
        # before, per layer at the float16 baseline: compute 2*4096*1024*1024 / 312e12 = 27.53 us;
        # bytes (x 16,777,216 + w 4,194,304 + y 16,777,216) * 16/32 = 18,874,368 -> 9.26 us: compute-bound
        # after: half the MACs, 13.77 us: ratio 2.0, capped at 1.7
        assert [layer.speedup_estimate for layer in result.layers] == [1.7] * 4
        assert "2:4 kernel" in result.layers[0].estimate_reason
        assert "float16 312.0 TFLOP/s" in result.layers[0].estimate_reason
        numbers = result.basis.numbers if result.basis else {}
        # work 4 * 27.53 us / 0.75 = 146.8 us > overheads 4 mm * 6 us + 5 module calls * 1.5 us = 31.5 us
        assert numbers["before"] == pytest.approx(4 * 2 * 4096 * 1024 * 1024 / 312e12 / 0.75)
        assert numbers["overhead_before"] == pytest.approx(31.5e-6)
        assert result.speedup_estimate == pytest.approx(1.7)  # every layer 1.7, nothing else runs

    def test_overhead_bound_total_is_one(self) -> None:
        dense, sparse = _stack()
        result = flopmeter.compare(dense, sparse, torch.randn(512, 1024))
        assert result.layers[0].speedup_estimate == pytest.approx(1.7)
        numbers = result.basis.numbers if result.basis else {}
        # work 4 * 2*512*1024*1024 / 312e12 / 0.75 = 18.35 us < overheads 31.5 us, before and after
        assert numbers["work_before"] == pytest.approx(4 * 2 * 512 * 1024 * 1024 / 312e12 / 0.75)
        assert result.speedup_estimate == pytest.approx(1.0)
        assert "overhead-bound" in result.rows()[-1]["estimate_reason"]

    def test_small_rows_and_cpus_get_no_gain(self) -> None:
        dense, sparse = _stack(1)
        small = flopmeter.compare(dense, sparse, torch.randn(16, 1024))
        assert small.layers[0].speedup_estimate == 1.0  # 16 rows < 64
        cpu = flopmeter.compare(dense, sparse, torch.randn(4096, 1024), hardware="xeon-8480")
        assert cpu.layers[0].speedup_estimate == 1.0
        assert "without sparse tensor cores" in cpu.layers[0].estimate_reason


def _assumed(bits: str, rows: int, **options: object) -> flopmeter.Comparison:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1024, 1024, bias=False))
    x = torch.randn(rows, 1024)
    before = flopmeter.profile(model, x, compression=True)
    after = flopmeter.profile(model, x, compression=CompressionOptions(assume_bits=bits))
    return flopmeter.compare(before, after, **options)  # type: ignore[arg-type]


class TestQuantized:
    def test_w8a8_against_each_baseline(self) -> None:
        # compute-bound at 4096 rows on both sides: the ratio is the ratio of peaks
        # (efficiency cancels): after int8 2*4096*1024^2 / 624e12 = 13.77 us vs bytes
        # (x + y) * 8/32 + 1,048,576 int8 weights + 2,048 fp16 scales = 9,439,232 -> 4.63 us
        auto = _assumed("w8a8", 4096)
        assert auto.layers[0].speedup_estimate == pytest.approx(2.0)  # 624 / 312 (float16)
        reason = auto.layers[0].estimate_reason
        assert "W8A8 at int8 624.0 TOPS vs baseline float16 312.0 TFLOP/s on a100-sxm-80gb" in reason
        tf32 = _assumed("w8a8", 4096, baseline="tfloat32")
        assert tf32.layers[0].speedup_estimate == pytest.approx(4.0)  # 624 / 156
        fp32 = _assumed("w8a8", 4096, baseline="float32")
        assert fp32.layers[0].speedup_estimate == pytest.approx(32.0)  # 624 / 19.5: why auto is not this
        assert fp32.baseline == "float32" and "float32 19.5 TFLOP/s" in fp32.to_markdown()

    def test_weight_only_is_a_fraction_of_the_bytes_gain(self) -> None:
        result = _assumed("w4a16", 1)
        # one row: memory-bound. before at float16: (4,096 x + 4,194,304 w + 4,096 y) * 0.5
        #   = 2,101,248 B; after: 4,096 (x, y at 16 bits) + 524,288 int4 weights
        #   + 1,024 * 3 fp16 scale + int8 zero point = 531,456 B; ratio 3.954, x 0.65 = 2.570
        assert result.layers[0].speedup_estimate == pytest.approx(0.65 * 2_101_248 / 531_456)
        assert "weight-only, 0.65 x" in result.layers[0].estimate_reason

    def test_cpu_without_an_int8_peak_gains_bytes_only(self) -> None:
        spec = Hardware("cpu", {"float32": 1e12}, 1e11)
        result = _assumed("w8a8", 4096, hardware=spec)
        # compute-bound at 1e12 on both sides (no int8 peak listed: the baseline's): ratio 1.0
        assert result.layers[0].speedup_estimate == pytest.approx(1.0)
        assert "no int8 peak listed" in result.layers[0].estimate_reason

    def test_unstructured_pruning_estimates_one(self) -> None:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(256, 256))
        pruned = copy.deepcopy(model)
        prune.l1_unstructured(pruned[0], "weight", 0.5)
        result = flopmeter.compare(model, pruned, torch.randn(64, 256))
        assert result.speedup_estimate == 1.0
        assert result.layers[0].speedup_estimate == 1.0


def test_bad_baseline_is_refused_before_profiling() -> None:
    with pytest.raises(ValueError, match="baseline must be one of auto, float32"):
        flopmeter.compare(nn.Linear(2, 2), nn.Linear(2, 2), torch.randn(1, 2), baseline="int8")


def test_local_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    import flopmeter.hardware.calibrate as calibrate

    spec = Hardware("local-cpu", {"float32": 1e11}, 1e10, op_overhead=1e-6)
    monkeypatch.setattr(calibrate, "calibrate", lambda device="cpu": spec)  # skip the measurement
    result = _assumed("w8a8", 64, hardware="local")
    assert result.hardware == "local-cpu"
    assert "local-cpu" in result.layers[0].estimate_reason


BUILDERS = textwrap.dedent(
    """
    import torch
    from torch import nn

    def dense():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(256, 256, bias=False))

    def sparse():
        model = dense()
        with torch.no_grad():
            model[0].weight.mul_(torch.tensor([1.0, 1, 0, 0]).repeat(64))
        return model
    """
)


class TestCLI:
    @pytest.fixture
    def builders(self, tmp_path: Path) -> str:
        path = tmp_path / "models.py"
        path.write_text(BUILDERS)
        return str(path)

    def test_baseline_and_hardware(self, builders: str) -> None:
        args = ["compare", f"{builders}:dense", f"{builders}:sparse", "--input", "4096x256", "--compression"]
        code, out, err = run([*args, "--baseline", "tfloat32", "--hardware", "h100-sxm", "--format", "json"])
        assert code == 0, err
        assert '"baseline": "tfloat32"' in out and "tfloat32 494.7 TFLOP/s" in out

    def test_unknown_hardware_is_a_usage_error_before_counting(self, builders: str) -> None:
        args = ["compare", f"{builders}:dense", f"{builders}:sparse", "--input", "1x256", "--compression"]
        code, _, err = run([*args, "--hardware", "a100"])
        assert code == 2 and "unknown hardware 'a100'" in err
        assert "counting" not in err


def test_fp8_work_finds_its_family_peak() -> None:
    from flopmeter.compression.speedup import lists_peak

    h100 = flopmeter.hardware.get("h100-sxm")
    assert lists_peak(h100, "float8_e4m3fn")  # listed as "float8"
    assert lists_peak(h100, "quint8")  # listed as "int8"
    assert not lists_peak(flopmeter.hardware.get("a100-sxm-80gb"), "float8_e4m3fn")  # Ampere has no FP8
