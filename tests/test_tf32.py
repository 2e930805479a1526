"""float32 work that torch runs on TF32 tensor cores is costed at the TF32 peak (README, docs/speed.md).

docs/speed.md: on a spec listing a "tfloat32" peak, float32 convolutions and recurrent
layers (cuDNN, TF32 by default) and matmuls (cuBLAS, not by default) are costed at the TF32
peak when this process's torch settings allow it (``flopmeter.hardware.tf32``).
"""

from __future__ import annotations

import pytest
import torch

import flopmeter
from flopmeter.hardware import Hardware
from flopmeter.hardware.tf32 import tf32_allowed

# an uncalibrated spec: the latency is the roofline bound
GPU = Hardware("tf32-part", peak_flops={"float32": 1e12, "tfloat32": 8e12, "float16": 16e12}, bandwidth=1e12)
CPU = Hardware("no-tf32", peak_flops={"float32": 1e12}, bandwidth=1e12)

SETTINGS = [  # parents first: setting one sets its children
    (torch.backends, "fp32_precision"),
    (torch.backends.cudnn, "fp32_precision"),
    (torch.backends.cudnn.conv, "fp32_precision"),
    (torch.backends.cudnn.rnn, "fp32_precision"),
    (torch.backends.cuda.matmul, "fp32_precision"),
]


@pytest.fixture(autouse=True)
def torch_tf32_settings():
    """Each test may change torch's TF32 settings, by the new API or the legacy one; all of
    them come back afterwards (the legacy ones first, or torch refuses to read a mix)."""
    legacy = (torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision())
    saved = [getattr(owner, name) for owner, name in SETTINGS]
    yield
    torch.backends.cudnn.allow_tf32 = legacy[0]
    torch.set_float32_matmul_precision(legacy[1])
    for (owner, name), value in zip(SETTINGS, saved, strict=True):
        setattr(owner, name, value)
    assert torch.backends.cudnn.allow_tf32 == legacy[0]
    assert torch.get_float32_matmul_precision() == legacy[1]


def conv_report(dtype: torch.dtype = torch.float32) -> flopmeter.Report:
    conv = torch.nn.Conv2d(16, 32, 3, padding=1, bias=False).to(dtype)
    return flopmeter.profile(conv, torch.randn(1, 16, 8, 8, dtype=dtype))


# one convolution: FLOPs (2*16*3*3-1)*8*8*32 = 587,776; bytes: input 16*8*8*4 = 4,096,
# weight 32*16*3*3*4 = 18,432, output 32*8*8*4 = 8,192: 30,720 B, 30.72 ns at 1e12 B/s
CONV_FLOPS = 587_776


def test_the_conv_counts_the_tests_rest_on():
    report = conv_report()
    assert report.total.flops == CONV_FLOPS  # (2*16*3*3-1)*8*8*32
    assert report.total.bytes == 30_720  # 4,096 + 18,432 + 8,192


def test_a_float32_convolution_runs_at_the_tf32_peak_by_torchs_default():
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"  # torch's default
    result = conv_report().roofline(GPU)
    # compute-bound: 587,776 / 8e12 = 73.472 ns > 30.72 ns of memory
    assert result.bound_latency == pytest.approx(73.472e-9)
    assert result.dtype == "tfloat32" and result.peak_flops == 8e12


def test_tf32_turned_off_gives_the_float32_peak():
    torch.backends.cudnn.conv.fp32_precision = "ieee"
    result = conv_report().roofline(GPU)
    assert result.bound_latency == pytest.approx(587.776e-9)  # 587,776 / 1e12
    assert result.dtype == "float32" and result.peak_flops == 1e12


def test_the_legacy_flag_turned_off_gives_the_float32_peak_too():
    torch.backends.cudnn.allow_tf32 = False
    assert conv_report().roofline(GPU).bound_latency == pytest.approx(587.776e-9)  # 587,776 / 1e12


def test_a_spec_without_a_tf32_peak_keeps_float32():
    result = conv_report().roofline(CPU)
    assert result.bound_latency == pytest.approx(587.776e-9)  # 587,776 / 1e12
    assert result.dtype == "float32"


def test_a_half_precision_convolution_keeps_its_own_peak():
    result = conv_report(torch.float16).roofline(GPU)
    # 587,776 / 16e12 = 36.736 ns; bytes halve to 15,360 B = 15.36 ns
    assert result.bound_latency == pytest.approx(36.736e-9)
    assert result.dtype == "float16"


def test_a_float32_matmul_uses_tf32_only_when_the_user_allows_it():
    linear = torch.nn.Linear(256, 128, bias=False)
    report = flopmeter.profile(linear, torch.randn(64, 256))
    # FLOPs (2*256-1)*128*64 = 4,186,112; bytes 64*256*4 + 128*256*4 + 64*128*4 = 229,376
    assert report.total.flops == 4_186_112 and report.total.bytes == 229_376
    assert report.roofline(GPU).bound_latency == pytest.approx(4.186112e-6)  # / 1e12: float32
    torch.set_float32_matmul_precision("high")
    assert report.roofline(GPU).bound_latency == pytest.approx(523.264e-9)  # 4,186,112 / 8e12


def test_which_classes_tf32_covers():
    assert tf32_allowed("conv") and tf32_allowed("depthwise") and tf32_allowed("pointwise")
    assert tf32_allowed("recurrent") and not tf32_allowed("matmul")
    assert not tf32_allowed("elementwise") and not tf32_allowed("attention")
    torch.backends.cudnn.rnn.fp32_precision = "ieee"
    assert not tf32_allowed("recurrent") and tf32_allowed("conv")
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    assert tf32_allowed("matmul")


def test_the_roofline_table_names_the_tf32_peak():
    from flopmeter.render.speed import render_roofline

    report = conv_report()
    text = render_roofline(report, report.roofline("a100-sxm-80gb"))
    # A100's datasheet: TF32 156 TFLOP/s dense; ridge 156e12 / 2.039e12 B/s = 76.5 FLOPs/byte
    assert "peak 156.0 TFLOP/s (tfloat32: float32 work torch runs on TF32 tensor cores" in text
    assert "ridge 76.5 FLOPs/byte" in text


def test_resnet18_at_batch_256_on_h100_as_docs_speed_md_gives():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18()
    (tf32,) = flopmeter.predict_batches(
        model, input_shape=(1, 3, 224, 224), batch_sizes=[256], hardware="h100-sxm"
    )
    torch.backends.cudnn.conv.fp32_precision = "ieee"
    (ieee,) = flopmeter.predict_batches(
        model, input_shape=(1, 3, 224, 224), batch_sizes=[256], hardware="h100-sxm"
    )
    # docs/speed.md: 9.25 ms memory-bound with TF32 convolutions (the sweep prints 9.250 ms),
    # 28.7 ms compute-bound without
    assert tf32.latency == pytest.approx(9.25e-3, abs=0.005e-3) and tf32.total.regime == "memory"
    assert ieee.latency == pytest.approx(28.7e-3, abs=0.05e-3) and ieee.total.regime == "compute"
    # the work is the same: only the peak the convolutions run at differs
    assert tf32.total.flops == ieee.total.flops and tf32.total.bytes == ieee.total.bytes


def test_llm_serving_takes_the_tf32_peak_only_when_matmuls_may_use_it(tiny_llama_config):
    pytest.importorskip("transformers")
    from flopmeter import llm_cost

    cost = llm_cost(tiny_llama_config, prompt=16, generate=4, dtype="float32")
    ieee = cost.serving("h100-sxm")  # torch's default: float32 matmuls in IEEE float32
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    tf32 = cost.serving("h100-sxm")
    assert ieee.prefill.flops == tf32.prefill.flops and ieee.prefill.bytes == tf32.prefill.bytes
    # H100 SXM: float32 67 TFLOP/s, TF32 494.7; only the matmuls' FLOPs move to TF32 (as the
    # per-op roofline: attention, norms and elementwise keep float32; probe 14)
    from flopmeter.roofline import op_class

    report = cost.prefill.report
    matmuls = sum(op.cost.flops for op in report.ops if op_class(op) == "matmul")
    assert 0 < matmuls < ieee.prefill.flops
    assert ieee.prefill.compute_s == pytest.approx(ieee.prefill.flops / 67e12)
    assert tf32.prefill.compute_s == pytest.approx(
        matmuls / 494.7e12 + (tf32.prefill.flops - matmuls) / 67e12
    )


def test_json_names_tfloat32_as_the_compute_dtype():
    import json

    from flopmeter.render.formats import to_json

    report = conv_report()
    data = json.loads(to_json(report, roofline=report.roofline("a100-sxm-80gb")))["roofline"]
    # docs/json-schema.md: the dtype whose peak most FLOPs run at; A100's TF32 156 TFLOP/s
    assert (data["compute_dtype"], data["compute_peak_flops_per_second"]) == ("tfloat32", 156e12)
