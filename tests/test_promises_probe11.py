"""Probe 11: the promises README.md and docs/*.md gained this stop, each tried as written
and checked here where no test checked it yet (docs/probe-11/promises.md, one row each)."""

import json
import statistics
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.cli import run
from test_memory_probe11 import ExpChain  # Linear(100, 100), then exp three times

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------- dynamic.md: "called Nx"
class ThreeCalls(nn.Module):
    """One Linear(4, 4) applied three times (a weight-shared layer)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(self.a(self.a(x)))


def test_a_module_called_three_times_says_so_in_its_row_and_counts_every_call():
    """P11-P1. docs/dynamic.md: "one layer applied N times ... every call; the module's row
    says `called Nx` | once"."""
    report = flopmeter.profile(ThreeCalls(), torch.randn(1, 4))
    # each call 1*4*4 = 16 MACs, (2*4 - 1)*4 + 4 bias = 32 FLOPs; x 3 calls; params 4*4 + 4 = 20 once
    assert (report.macs, report.flops, report.params) == (48, 96, 20)
    row = next(line for line in str(report).splitlines() if line.strip().startswith("(a): Linear("))
    assert "called 3x" in row
    # a module called once says nothing
    once = flopmeter.profile(nn.Sequential(nn.Linear(4, 4)), torch.randn(1, 4))
    assert "called" not in str(once)


def test_a_module_called_three_times_under_inference_mode_and_in_half():
    """P11-P1 under the standard's conditions: the counts do not depend on the grad mode
    or the dtype (FLOPs are work, not bytes)."""
    model = ThreeCalls()
    with torch.inference_mode():
        quiet = flopmeter.profile(model, torch.randn(1, 4))
    half = flopmeter.profile(ThreeCalls().half(), torch.randn(1, 4).half())
    assert (quiet.macs, quiet.flops) == (half.macs, half.flops) == (48, 96)
    assert "called 3x" in str(half)


# ------------------------------------------------------ speed.md: the busy-machine note
def _timing(cpu_times: list[float], times: list[float]) -> tuple[flopmeter.Report, object]:
    from flopmeter.timing import Timing

    report = flopmeter.profile(nn.Linear(8, 8), torch.randn(1, 8))
    timing = Timing(1, times, 1, "cpu", report.flops, report.roofline("t4").hardware)
    timing.cpu_times = cpu_times
    return report, timing


@pytest.mark.parametrize(("cpu", "busy"), [(0.0079, True), (0.0080, False), (0.0081, False)])
def test_the_busy_note_starts_under_80_percent_of_the_wall_time(cpu, busy):
    """P11-P2. docs/speed.md: "When the thread ran less than 80% of the wall time a note
    under the table says the machine was busy". Wall median 10 ms: CPU medians 7.9 ms (79%),
    8.0 ms (80%, not less) and 8.1 ms (81%)."""
    from flopmeter.render.speed import timing_notes

    report, timing = _timing([cpu] * 3, [0.010] * 3)
    assert timing.cpu_share == pytest.approx(cpu / 0.010)
    notes = [line for line in timing_notes(report, [timing]) if "busy machine" in line]
    assert bool(notes) is busy
    if busy:
        assert "batch 1: 79%" in notes[0] and "7.900 ms" in notes[0] and "10.000 ms" in notes[0]


def test_json_timings_without_cpu_times_hold_an_empty_list_and_nulls():
    """P11-P3. docs/json-schema.md: the last three timing fields on the CPU with one torch
    thread, "else `[]`, null, null"."""
    from flopmeter.render.formats import to_json

    report, timing = _timing([], [0.030, 0.029, 0.031])
    data = json.loads(to_json(report, timings=[timing]))["timings"][0]
    assert data["cpu_times_seconds"] == []
    assert data["cpu_share"] is None and data["measured_over_predicted_cpu_time"] is None


# --------------------------------------------- speed.md: resnet18 on h100-sxm at batch 1
def test_resnet18_on_h100_hides_its_device_work_behind_the_host_overhead():
    """P11-P4. docs/speed.md: "all of its 522 us are host overhead, 68 kernels x 6 us + 76
    module calls x 1.5 us, and the device's 54 us of work hide behind them; the table's
    "91%" is overhead's share of the three parts' sum, 522 / (522 + 52 + 2) us"; with TF32
    turned off, 113 us of work (24 memory + 89 compute)."""
    torchvision = pytest.importorskip("torchvision")
    from flopmeter.render.speed import render_sweep

    model = torchvision.models.resnet18()

    def batch_1() -> flopmeter.Roofline:
        (row,) = flopmeter.predict_batches(
            model, input_shape=(1, 3, 224, 224), batch_sizes=[1], hardware="h100-sxm"
        )
        return row

    row = batch_1()  # torch's default: float32 convolutions on TF32 tensor cores
    total = row.total
    assert total.overhead_time == pytest.approx(68 * 6e-6 + 76 * 1.5e-6)  # = 522 us
    assert row.latency == pytest.approx(522e-6)  # max(overheads, work): the overheads
    assert total.calibrated_memory == pytest.approx(52e-6, abs=0.5e-6)
    assert total.calibrated_compute == pytest.approx(2.3e-6, abs=0.5e-6)
    device = total.calibrated_memory + total.calibrated_compute
    assert device == pytest.approx(54e-6, abs=0.5e-6) and device < total.overhead_time
    share = total.overhead_time / (total.overhead_time + device)
    assert share == pytest.approx(522 / (522 + 52 + 2.3), abs=0.005)  # 0.906
    table = render_sweep(flopmeter.profile(model, input_shape=(1, 3, 224, 224)), [row])
    line = next(x for x in table.splitlines() if x.startswith("1 "))
    assert "91%" in line and "9%" in line and "0%" in line and line.rstrip().endswith("overhead")

    saved = torch.backends.cudnn.conv.fp32_precision
    torch.backends.cudnn.conv.fp32_precision = "ieee"  # float32 convolutions at 67 TFLOP/s
    try:
        total = batch_1().total
    finally:
        torch.backends.cudnn.conv.fp32_precision = saved
    assert total.calibrated_memory == pytest.approx(24e-6, abs=0.5e-6)
    assert total.calibrated_compute == pytest.approx(89e-6, abs=0.5e-6)


# ---------------------------------------- speed.md and llm.md: 16-bit rates of the presets
GPUS = [
    "a100-pcie-40gb",
    "a100-sxm-80gb",
    "h100-pcie",
    "h100-sxm",
    "h200",
    "l4",
    "rtx-4090",
    "t4",
    "v100-sxm2",
]


def _sixteen_bit(name: str) -> float:
    spec = flopmeter.hardware.get(name)
    return max(spec.peak("float16"), spec.peak("bfloat16"))


@pytest.mark.parametrize(
    ("name", "ratio"),
    [
        ("rtx-4090", 2),  # 165.2 / 82.6
        ("l4", 4),  # 121 / 30.3 = 3.99
        ("t4", 8),  # 65 / 8.1 = 8.02
        ("v100-sxm2", 8),  # 125 / 15.7 = 7.96
        ("h100-sxm", 15),  # 989.4 / 67 = 14.77
        ("a100-sxm-80gb", 16),  # 312 / 19.5
    ],
)
def test_sixteen_bit_tensor_cores_run_the_ratio_speed_md_names(name, ratio):
    """P11-P5. docs/speed.md: "a GPU's 16-bit tensor cores run 2-16x its float32 rate (the
    presets: RTX 4090 2x, L4 4x, T4 and V100 8x, H100 15x, A100 16x)"."""
    assert round(_sixteen_bit(name) / flopmeter.hardware.get(name).peak("float32")) == ratio


def test_every_gpu_presets_sixteen_bit_rate_is_2_to_16x_and_its_ridge_139_to_403():
    """P11-P5, P11-P6. docs/speed.md "2-16x"; docs/llm.md: "about 1 FLOP per byte against
    16-bit ridges of 139-403 on the GPU presets": V100 125e12 / 900e9 = 138.9, L4 121e12 /
    300e9 = 403.3 FLOPs per byte."""
    ratios = [_sixteen_bit(n) / flopmeter.hardware.get(n).peak("float32") for n in GPUS]
    assert 1.99 < min(ratios) and max(ratios) <= 16.0
    ridges = {n: _sixteen_bit(n) / flopmeter.hardware.get(n).bandwidth for n in GPUS}
    assert min(ridges, key=ridges.get) == "v100-sxm2" and round(ridges["v100-sxm2"]) == 139
    assert max(ridges, key=ridges.get) == "l4" and round(ridges["l4"]) == 403


# --------------------------------------------- speed.md: which peak, and its numbers
@pytest.mark.parametrize("shapes_only", [None, False])
def test_the_inference_peak_under_inference_mode_and_with_values(shapes_only):
    """P11-P7. docs/speed.md: "`profile(model, x)` runs under `torch.no_grad()` whatever the
    caller's grad mode", also in inference mode and on the values run. 64 x 100 x 4 =
    25,600 B a tensor: x + an exp's input and output = 3 x 25,600 = 76,800."""
    kwargs = {} if shapes_only is None else {"shapes_only": shapes_only}
    with torch.inference_mode():
        quiet = flopmeter.profile(ExpChain(), torch.randn(64, 100), **kwargs)
    with torch.enable_grad():
        loud = flopmeter.profile(ExpChain(), torch.randn(64, 100), **kwargs)
    assert quiet.peak_activation_bytes == loud.peak_activation_bytes == 3 * 25_600


def test_a_training_step_peak_holds_the_parameters_gradients():
    """P11-P8. docs/speed.md: "`backward=True` gives a training step's: ... the backward of the
    outputs' sum, so the parameters' gradients are in it". One Linear(100, 100) on 64 x 100,
    each activation 25,600 B: at addmm's backward x, out and the output's gradient (the sum's
    ones, 3 x 25,600 = 76,800; x's grad is not needed) are live as it makes grad_weight
    100 x 100 x 4 = 40,000 and grad_bias 400: 117,200 (torch.profiler's allocation events,
    benchmarks/memory_check.py's training_step, measure the same)."""
    report = flopmeter.profile(nn.Linear(100, 100), torch.randn(64, 100), backward=True)
    assert report.peak_activation_bytes == 3 * 25_600 + 40_000 + 400 == 117_200
    forward = flopmeter.profile(nn.Linear(100, 100), torch.randn(64, 100))
    assert forward.peak_activation_bytes == 2 * 25_600  # x + out, no gradients


def test_an_input_made_under_inference_mode_can_be_profiled_with_its_backward():
    """P11-P9. A batch made under ``torch.inference_mode()`` (a data pipeline's) is a tensor
    autograd cannot save; the forward-only profile took it, ``backward=True`` raised torch's
    "Inference tensors cannot be saved for backward" as the model's error. The counts are
    those of a normal tensor: the Linear above, 117,200 B at the peak; forward 64*100*100 =
    640,000 MACs, backward grad_weight 640,000 (x needs no grad)."""
    with torch.inference_mode():
        x = torch.randn(64, 100)
    model = nn.Linear(100, 100)
    report = flopmeter.profile(model, x, backward=True)
    assert report.peak_activation_bytes == 117_200
    assert report.macs == 2 * 640_000
    assert x.is_inference() and model.weight.grad is None  # the caller's tensor and model untouched
    by_name = flopmeter.profile(model, {"input": x}, backward=True)  # a dict of inputs too
    assert by_name.macs == 2 * 640_000


def _vit_2_layers() -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(224, 16, num_layers=2, num_heads=12, hidden_dim=768, mlp_dim=3072)


def test_the_numbers_speed_md_gives_for_the_flopmeter_column():
    """P11-P10. docs/speed.md's memory table (flopmeter's column) and its sentences: resnet18
    7,024,640 at batch 1 and 56,197,120 ("56.2 MB no_grad") at batch 8, 210.7 MB with the
    backward; vit_b_16 with 2 layers "9.2 vs 8.5 MB" (meta: the math path's score matrices;
    CPU: the flash kernel), 64,626,952 for its training step."""
    pytest.importorskip("torchvision")
    import torchvision

    resnet = torchvision.models.resnet18()
    assert flopmeter.profile(resnet, input_shape=(1, 3, 224, 224)).peak_activation_bytes == 7_024_640
    assert flopmeter.profile(resnet, input_shape=(8, 3, 224, 224)).peak_activation_bytes == 56_197_120
    step = flopmeter.profile(resnet, input_shape=(8, 3, 224, 224), backward=True)
    assert round(step.peak_activation_bytes / 1e6, 1) == 210.7
    vit, x = _vit_2_layers(), torch.randn(1, 3, 224, 224)
    meta = flopmeter.profile(vit, x).peak_activation_bytes
    cpu = flopmeter.profile(vit, x, shapes_only=False).peak_activation_bytes
    assert (round(meta / 1e6, 1), round(cpu / 1e6, 1)) == (9.2, 8.5)
    assert flopmeter.profile(vit, x, backward=True).peak_activation_bytes == 64_626_952


def test_the_lstm_peak_of_the_memory_table_by_hand():
    """P11-P10. docs/speed.md: LSTM(256, 512, 2 layers), 64 steps, batch 1: flopmeter 344,064.
    x 64 x 256 x 4 = 65,536; h0 and c0 (2 x 1 x 512) x 4 x 2 = 8,192; per layer its output
    64 x 512 x 4 = 131,072 and its h, c 2 x 512 x 4 = 4,096, both layers alive at the end:
    65,536 + 8,192 + 2 x (131,072 + 4,096) = 344,064."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import memory_check
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    report = flopmeter.profile(memory_check.LSTMOut(), torch.randn(1, 64, 256))
    assert report.peak_activation_bytes == 65_536 + 8_192 + 2 * (131_072 + 4_096) == 344_064


# --------------------------------------------------------------- llm.md: print(cost)
def test_print_cost_is_the_report_the_cli_prints():
    """P11-P11. docs/llm.md: "print(cost)  # the report the CLI prints; `cost` alone shows
    one line"."""
    transformers = pytest.importorskip("transformers")
    sets = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 64,
    }
    cost = flopmeter.llm_cost(transformers.LlamaConfig(**sets), prompt=8, generate=2)
    args = ["transformers:LlamaConfig", "--prompt", "8", "--generate", "2"]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    code, out, err = run(args)
    assert code == 0, err
    assert str(cost) == out  # the same text, to the last newline
    assert "\n" not in repr(cost) and repr(cost).startswith("<LLMCost LlamaForCausalLM: prompt 8")


# ------------------------------------------------------ dynamic.md: many subnets, one process
def test_many_subnets_leave_the_model_as_it_was():
    """P11-P12. docs/dynamic.md: "each `profile` call leaves the model as it was": after 30
    profiles of slices, the supernet holds the same attributes, no hooks, the same values."""
    import torch.nn.functional as F

    class Slim(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 32)
            self.width = 32

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x, self.fc.weight[: self.width, : x.shape[-1]], self.fc.bias[: self.width])

    model = Slim()
    before = (dict(vars(model)).keys(), dict(vars(model.fc)).keys(), model.fc.weight.clone())
    for width in range(1, 31):
        model.width = width
        report = flopmeter.profile(model, torch.randn(2, 8))
        assert report.macs == 2 * 8 * width and report.params == 16 * 32 + 32  # the supernet's 544
    after = (dict(vars(model)).keys(), dict(vars(model.fc)).keys(), model.fc.weight)
    assert before[0] == after[0] and before[1] == after[1] and torch.equal(before[2], after[2])
    assert not model._forward_hooks and not model.fc._forward_hooks and not model.fc._forward_pre_hooks


def test_busy_share_median_is_of_the_timed_runs():
    """P11-P2: ``cpu_share`` is the median CPU time over the wall median (not a mean): CPU
    [1, 2, 9] ms against wall [10, 10, 10] ms is 2 / 10 = 20%, though the mean is 40%."""
    _, timing = _timing([0.001, 0.002, 0.009], [0.010] * 3)
    assert timing.cpu_share == pytest.approx(statistics.median([1, 2, 9]) / 10)


def test_the_language_model_repr_is_one_line_of_its_shape():
    """P11-P13. docs/architecture.md: `render/reprs.py`, "the one-line `repr()` of every object
    the API returns": ``cost.lm`` (and ``flopmeter.llm.language_model(...)``) printed the whole
    dataclass with the model inside, 2,223 characters over 30 lines."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=64,
    )  # fmt: skip
    lm = flopmeter.llm_cost(config, prompt=8, generate=2).lm
    # N_mm: q, o 2 x 32*32 = 2,048; k, v 2 x 32*16 = 1,024; MLP 3 x 32*64 = 6,144; lm_head
    # 64*32 = 2,048 -> 11,264; N_total adds the embedding 2,048 and 3 norms of 32: 13,408
    assert repr(lm) == (
        "<LanguageModel LlamaForCausalLM: 1 layers, hidden 32, 4 heads (2 KV), vocab 64; "
        "13.41 K params, N_mm 11.26 K>"
    )


def test_a_dynamic_int8_linear_has_2080_params_and_2192_bytes():
    """P11-P14. docs/json-schema.md: "a dynamic int8 `Linear(64, 32)` has 2,080 params and
    2,048 + 128 + 8 + 8 = 2,192 bytes": params 64*32 + 32 = 2,080 (the float weight it stands
    for); bytes the int8 weight 2,048, the float32 bias 128, the scale (float64) 8 and the
    zero point (int64) 8. Also in the JSON's totals and under inference mode."""
    model = torch.ao.quantization.quantize_dynamic(
        nn.Sequential(nn.Linear(64, 32)), {nn.Linear}, dtype=torch.qint8
    )
    with torch.inference_mode():
        report = flopmeter.profile(model, torch.randn(4, 64))
    assert (report.params, report.param_bytes) == (2_080, 2_192)
    totals = json.loads(report.to_json())["totals"]
    assert (totals["params"], totals["param_bytes"]) == (2_080, 2_192)


# --------------------------------- dynamic.md's rules under inference mode, in half, one thread
@pytest.mark.parametrize("condition", ["inference_mode", "half", "one_thread", "values"])
def test_a_supernets_slice_under_the_standards_conditions(condition):
    """P11-P15. docs/dynamic.md / README: "MACs and FLOPs are those of the call that ran: a
    supernet's active slice ...; params are the tensors the model holds, each once (the whole
    supernet)"; the slice's weight bytes "(128 + 16) x 4 = 576" (x 2 = 288 in half)."""
    from test_nas_dynamic import SlimNet

    model, x, kwargs = SlimNet(), torch.randn(2, 8), {}
    threads = torch.get_num_threads()
    try:
        if condition == "half":
            model, x = model.half(), x.half()
        if condition == "values":
            kwargs = {"shapes_only": False}
        if condition == "one_thread":
            torch.set_num_threads(1)
        if condition == "inference_mode":
            with torch.inference_mode():
                report = flopmeter.profile(model, x, compression=True)
        else:
            report = flopmeter.profile(model, x, compression=True, **kwargs)
    finally:
        torch.set_num_threads(threads)
    rows = report.by_module()
    # params 16*32 + 32 + 32*8 + 8 = 808; MACs fc1 2*8*16 + fc2 2*16*8 = 512
    assert (report.params, report.macs) == (808, 512)
    size = 2 if condition == "half" else 4
    assert rows["fc1"].total.weight_bytes == (16 * 8 + 16) * size  # 576, or 288 in half
    assert report.compression.sliced == ["fc1", "fc2"]


@pytest.mark.parametrize("condition", ["inference_mode", "half"])
def test_an_early_exit_on_a_value_under_inference_mode_and_in_half(condition):
    """P11-P16. docs/dynamic.md: "A branch on a value ... the default shapes-only attempt fails
    and the model is run again with values, so the numbers are those of the branch the real
    call takes"; ``shapes_only=True`` names ``shapes_only=False``. a: 1*4*4 = 16 MACs, b
    another 16 when the mean is not positive."""
    from test_nas_dynamic import EarlyExit

    model, sign = EarlyExit(), -torch.ones(1, 4)
    if condition == "half":
        model, sign = model.half(), sign.half()
    with torch.inference_mode(condition == "inference_mode"):
        report = flopmeter.profile(model, sign)
        assert (report.macs, report.by_module()["b"].calls) == (32, 1)
        assert flopmeter.profile(model, -sign).macs == 16
        with pytest.raises(flopmeter.ModelError, match="shapes_only=False"):
            flopmeter.profile(model, sign, shapes_only=True)


def test_a_backward_profile_runs_in_train_mode_and_puts_the_mode_back():
    """P11-P8. docs/speed.md: "`profile(..., backward=True)` gives a training step's: train
    mode, the forward, then the backward of the outputs' sum". Linear(4, 2) + Dropout(0.5), in
    eval, on 3 rows: addmm 3*2*(4 + 3 + 1) = 48; backward grad_weight (2x3)@(3x4)
    (2*3 - 1)*2*4 = 40, grad_bias 2*(3 - 1) = 4 -> 92. Train mode adds dropout: the mask
    divided by 1 - p (6), x * mask (6) and grad * mask (6) -> 110."""
    model = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5)).eval()
    step = flopmeter.profile(model, torch.randn(3, 4), backward=True)
    assert step.flops == 48 + 40 + 4 + 3 * 6 == 110
    assert step.operators["aten.mul"].calls == 2 and step.operators["aten.div_"].cost.flops == 6
    assert not model.training  # put back
    assert flopmeter.profile(model, torch.randn(3, 4), backward=True, train=False).flops == 92


def test_a_figure_computed_with_numpy_is_a_number_too():
    """P11-P20. docs/speed.md: `Hardware("x", peak_flops=..., bandwidth=...)` in FLOP/s and
    bytes/s, a peak below 1e6 FLOP/s refused as a figure in TFLOP/s. A peak computed with
    numpy (np.float32, np.int64) was refused as "must be a positive FLOP/s, got
    np.float32(1e+13)", a positive figure; np.float32(312.0) got the same, not the TFLOP/s hint."""
    np = pytest.importorskip("numpy")
    spec = flopmeter.hardware.Hardware("x", peak_flops=np.float32(1e13), bandwidth=np.int64(2 * 10**12))
    # float32's nearest to 1e13 is 9,999,999,827,968
    assert type(spec.peak("float32")) is float and spec.peak("float32") == 9_999_999_827_968
    assert spec.bandwidth == 2e12 and spec.ridge_point() == pytest.approx(5.0)  # 1e13 / 2e12
    dtypes = flopmeter.hardware.Hardware("y", peak_flops={"float32": np.float64(1e13)}, bandwidth=2e12)
    assert dtypes.peak("float32") == 1e13
    with pytest.raises(ValueError, match="312 is below 1 MFLOP/s: a figure in TFLOP/s"):
        flopmeter.hardware.Hardware("z", peak_flops=np.float32(312.0), bandwidth=2e12)
    with pytest.raises(ValueError, match="bandwidth must be a positive bytes/s, got '2039'"):
        flopmeter.hardware.Hardware("w", peak_flops=1e13, bandwidth="2039")  # a string is no number


@pytest.mark.parametrize(
    "option",
    [
        ["--tokens-per-second", "nan"],
        ["--tokens-per-second", "inf"],
        ["--tokens-per-second", "0"],
        ["--step-time", "nan"],
        ["--step-time", "-1"],
        ["--step-time", "1", "--tokens-per-second", "1000"],
    ],
)
def test_a_measured_rate_that_is_no_rate_is_a_usage_error_before_the_trace(option):
    """P11-P21. docs/llm.md: MFU = "each row's FLOPs per token x tokens/s over devices x the
    preset's dense peak", its basis printed under the table. `--tokens-per-second nan`
    printed "x nan tokens/s" and MFU nan; 0, -1 and both rates at once were refused only
    after the trace (ValueError from the step, exit 2 then too). Now exit 2 at once; the
    config is never built (a name that does not exist is not reached)."""
    code, out, err = run(
        ["transformers:NoSuchConfig", "--prompt", "16", "--training", "--roofline", "a100-sxm-80gb", *option]
    )
    assert code == 2 and out == ""
    assert "must be a positive number" in err or "not both" in err
    assert "NoSuchConfig" not in err


@pytest.mark.parametrize(("kwargs", "complaint"), [
    ({"tokens_per_second": float("nan")}, "tokens_per_second must be a positive number, got nan"),
    ({"tokens_per_second": float("inf")}, "tokens_per_second must be a positive number, got inf"),
    ({"step_time": float("nan")}, "step_time must be positive seconds, got nan"),
])  # fmt: skip
def test_mfu_refuses_a_rate_that_is_not_a_number(kwargs, complaint):
    """P11-P21 in the API: ``step.mfu(preset, tokens_per_second=nan)`` gave nan for every
    convention (``nan <= 0`` is false)."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=64,
    )  # fmt: skip
    step = flopmeter.training_step(config, tokens=8)
    with pytest.raises(ValueError, match=complaint):
        step.mfu("a100-sxm-80gb", **kwargs)


@pytest.mark.skipif(
    not hasattr(torch._C._autograd, "_unsafe_set_version_counter"), reason="this torch cannot imitate it"
)
@pytest.mark.parametrize("grad_mode", ["default", "no_grad"])
def test_a_write_flopmeter_cannot_undo_warns_with_the_class_meta_md_names(grad_mode):
    """P11-P23. docs/meta.md: such a write "raises a `flopmeter.ModelStateWarning` (a
    `RuntimeWarning`, and a `flopmeter.FlopmeterWarning` like every warning flopmeter
    gives)": the test beside it checked RuntimeWarning only. Filtering by FlopmeterWarning
    silences it."""
    import warnings

    from test_leave_no_trace import BumpsVersionUnseen

    with torch.no_grad() if grad_mode == "no_grad" else torch.enable_grad():
        with pytest.warns(flopmeter.ModelStateWarning, match="could not see") as caught:
            flopmeter.profile(BumpsVersionUnseen(), torch.randn(2, 3))
        assert all(isinstance(w.message, flopmeter.FlopmeterWarning) for w in caught)
        with warnings.catch_warnings(record=True) as quiet:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=flopmeter.FlopmeterWarning)
            flopmeter.profile(BumpsVersionUnseen(), torch.randn(2, 3))
    assert not [w for w in quiet if "could not see" in str(w.message)]


_GENERATOR_MODEL = """
import torch, warnings

class Gen(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        warnings.warn("the model's own warning", UserWarning)
        return (self.fc(t) for t in x)

def build():
    return Gen()
"""


def test_the_cli_prints_flopmeters_warnings_in_its_own_words(tmp_path: Path) -> None:
    """P11-P25: a FlopmeterWarning is one line, ``flopmeter: warning: ...``, not Python's
    format naming torch's module.py and its hook line; the model's own warnings keep
    Python's format; ``warnings.showwarning`` is put back after the command."""
    import warnings

    path = tmp_path / "gen.py"
    path.write_text(_GENERATOR_MODEL)
    before = warnings.showwarning
    # the model's own warning goes on to Python's handler (here pytest's recorder; in a
    # terminal, Python's format on stderr)
    with pytest.warns(UserWarning, match="the model's own warning"):
        code, out, err = run([f"{path}:build", "--input", "2x4", "-q"])
    assert code == 0 and "20 params" in out  # Linear(4, 4): 4*4 + 4
    assert "flopmeter: warning: the model's forward returned a generator" in err
    assert "module.py" not in err and "hook_result" not in err
    assert warnings.showwarning is before


def test_the_cli_shows_the_models_own_warnings_in_pythons_format(tmp_path: Path) -> None:
    """P11-P25, in a terminal: the model's warning in Python's format, flopmeter's in one line."""
    import subprocess

    path = tmp_path / "gen.py"
    path.write_text(_GENERATOR_MODEL)
    command = [sys.executable, "-m", "flopmeter", f"{path}:build", "--input", "2x4", "-q"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0
    assert "UserWarning: the model's own warning" in done.stderr  # gen.py:LINE: UserWarning: ...
    assert "flopmeter: warning: the model's forward returned a generator" in done.stderr
    assert "CountWarning" not in done.stderr
