"""Probe 11: every preset's every peak against its vendor datasheet, written out here
independently of presets.toml (dense figures; FLOP/s and bytes/s).

Sources (the figure each number is read from, dense unless said):
- A100: NVIDIA A100 Tensor Core GPU datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4):
  FP64 9.7, FP64 Tensor Core 19.5, FP32 19.5, TF32 156 (312*), BF16/FP16 312 (624*),
  INT8 624 (1,248*) TOPS; 80GB SXM 2,039 GB/s, 40GB PCIe 1,555 GB/s. (* with sparsity)
- H100: NVIDIA H100 Tensor Core GPU datasheet: SXM / PCIe FP64 34 / 26, FP64 Tensor Core
  67 / 51, FP32 67 / 51, TF32 989* / 756*, BF16 and FP16 1,979* / 1,513*, FP8 and INT8
  3,958* / 3,026* ("* shown with sparsity, specifications 1/2 lower without"); 3,350 / 2,000
  GB/s. Dense exact figures from the Hopper whitepaper: 494.7 / 989.4 / 1,978.9 (SXM5).
- H200: NVIDIA H200 datasheet: H100 SXM compute (FP64 Tensor Core 67), 4.8 TB/s.
- L4: NVIDIA L4 datasheet: FP32 30.3, TF32 120*, FP16/BF16 242*, FP8/INT8 485*; 300 GB/s.
- T4: NVIDIA T4 datasheet: FP32 8.1, mixed FP16 65, INT8 130 TOPS; 320 GB/s.
- V100 SXM2: NVIDIA V100 datasheet: FP64 7.8, FP32 15.7, Tensor 125; 900 GB/s.
- RTX 4090: NVIDIA Ada Lovelace whitepaper v2.0, appendix table: FP32 82.6, TF32 82.6
  (165.2*), FP16/BF16 tensor with FP32 accumulate 165.2 (330.4*), FP8 with FP32 accumulate
  330.3, INT8 660.6 TOPS; 1,008 GB/s.
"""

import pytest

import flopmeter

# name: ({dtype: dense FLOP/s}, bytes/s)
DATASHEETS = {
    "a100-sxm-80gb": (
        {
            "float64": 19.5e12,  # FP64 Tensor Core: cuBLAS DGEMM runs on it (the vector FP64 is 9.7)
            "float32": 19.5e12,
            "tfloat32": 156e12,  # 312 with sparsity / 2
            "float16": 312e12,
            "bfloat16": 312e12,
            "int8": 624e12,  # 1,248 with sparsity / 2
        },
        2.039e12,  # HBM2e 80GB
    ),
    "a100-pcie-40gb": (
        {
            "float64": 19.5e12,
            "float32": 19.5e12,
            "tfloat32": 156e12,
            "float16": 312e12,
            "bfloat16": 312e12,
            "int8": 624e12,
        },
        1.555e12,  # HBM2 40GB
    ),
    "h100-sxm": (
        {
            "float64": 67e12,  # FP64 Tensor Core (vector FP64 34)
            "float32": 67e12,
            "tfloat32": 989.4e12 / 2,  # 989 with sparsity
            "float16": 1978.9e12 / 2,
            "bfloat16": 1978.9e12 / 2,
            "float8": 3957.8e12 / 2,
            "int8": 3957.8e12 / 2,
        },
        3.35e12,
    ),
    "h100-pcie": (
        {
            "float64": 51e12,  # FP64 Tensor Core (vector FP64 26)
            "float32": 51e12,
            "tfloat32": 756e12 / 2,
            "float16": 1513e12 / 2,
            "bfloat16": 1513e12 / 2,
            "float8": 3026e12 / 2,
            "int8": 3026e12 / 2,
        },
        2.0e12,
    ),
    "h200": (
        {
            "float64": 67e12,
            "float32": 67e12,
            "tfloat32": 989.4e12 / 2,
            "float16": 1978.9e12 / 2,
            "bfloat16": 1978.9e12 / 2,
            "float8": 3957.8e12 / 2,
            "int8": 3957.8e12 / 2,
        },
        4.8e12,
    ),
    "l4": (
        {
            "float64": 30.3e12 / 64,  # not on the datasheet: Ada's 1/64 rate
            "float32": 30.3e12,
            "tfloat32": 120e12 / 2,
            "float16": 242e12 / 2,
            "bfloat16": 242e12 / 2,
            "float8": 485e12 / 2,
            "int8": 485e12 / 2,
        },
        300e9,
    ),
    "t4": (
        {"float64": 8.1e12 / 32, "float32": 8.1e12, "float16": 65e12, "int8": 130e12},
        320e9,
    ),
    "v100-sxm2": (
        # int8: DP4A, 4 int8 multiply-adds per FP32 lane at the FP32 rate: 4 x 15.7
        {"float64": 7.8e12, "float32": 15.7e12, "float16": 125e12, "int8": 4 * 15.7e12},
        900e9,
    ),
    "rtx-4090": (
        {
            "float64": 82.6e12 / 64,
            "float32": 82.6e12,
            "tfloat32": 82.6e12,
            "float16": 165.2e12,  # FP32 accumulate (PyTorch's): half the FP16-accumulate 330.3
            "bfloat16": 165.2e12,
            "float8": 330.3e12,
            "int8": 660.6e12,
        },
        1.008e12,
    ),
    # 56 cores x 2.0 GHz x 2 FMA units x 16 lanes x 2 = 7.168e12; AMX 56 x 2.0e9 x 1024 BF16
    # FLOPs per cycle, int8 2048; 8 channels DDR5-4800 x 38.4 GB/s
    "xeon-8480": (
        {"float64": 7.168e12 / 2, "float32": 7.168e12, "bfloat16": 114.688e12, "int8": 229.376e12},
        8 * 38.4e9,
    ),
    # 96 cores x 2.4 GHz x 2 FMA pipes x 8 lanes x 2 = 7.3728e12; BF16 (vdpbf16ps) 2x, VNNI
    # int8 4x; 12 channels DDR5-4800
    "epyc-9654": (
        {"float64": 7.3728e12 / 2, "float32": 7.3728e12, "bfloat16": 2 * 7.3728e12, "int8": 4 * 7.3728e12},
        12 * 38.4e9,
    ),
}


def test_every_preset_and_every_dtype_matches_its_datasheet():
    assert sorted(DATASHEETS) == flopmeter.hardware.names()
    for name, (peaks, bandwidth) in DATASHEETS.items():
        spec = flopmeter.hardware.get(name)
        assert spec.bandwidth == pytest.approx(bandwidth, rel=2e-3), name
        assert sorted(spec.peak_flops) == sorted(peaks), name  # no dtype left unpinned
        for dtype, peak in peaks.items():
            assert spec.peak(dtype) == pytest.approx(peak, rel=2e-3), (name, dtype)


def test_float64_matmul_on_an_a100_is_costed_at_the_fp64_tensor_core_rate():
    # Linear(1024, 1024) at batch 1024 in float64 (addmm, exact): per output 1024 multiplies,
    # 1023 adds and the bias's add = 2 x 1024, x 1024 x 1024 outputs = 2,147,483,648 FLOPs;
    # at 19.5e12 FLOP/s: 110.1 us (it was / 9.7e12 = 221.4 us, the vector FP64 rate)
    import torch
    from torch import nn

    report = flopmeter.profile(nn.Linear(1024, 1024).double(), torch.randn(1024, 1024, dtype=torch.float64))
    assert report.total.flops == 2 * 1024**3
    r = report.roofline("a100-sxm-80gb")
    assert r.total.compute_time == pytest.approx(2_147_483_648 / 19.5e12, rel=1e-6)


def test_list_hardware_shows_every_dtype_peak_dense():
    from flopmeter.render.speed import render_hardware

    text = render_hardware([flopmeter.hardware.get("h100-sxm"), flopmeter.hardware.get("t4")])
    # H100 SXM dense: half the datasheet's sparse 989 / 1,979 / 3,958
    assert (
        "dense peaks, TFLOP/s (int: TOP/s): float64 67, float32 67, tfloat32 494.7, float16 989.4, "
        "bfloat16 989.4, float8 1,978.9, int8 1,978.9"
    ) in text
    assert "float64 0.253, float32 8.1, float16 65, int8 130" in text  # T4: 8.1 / 32 = 0.253
    assert "3,350 GB/s" in text  # the first line is unchanged


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        # 2,039 meant as GB/s: as bytes/s every memory-bound op would be 1e9 x too slow
        ({"peak_flops": 19.5e12, "bandwidth": 2039}, "bandwidth is in bytes/s, and 2039 is below 1 MB/s"),
        ({"peak_flops": 19.5, "bandwidth": 2.039e12}, "peak_flops is in FLOP/s, and 19.5 is below 1 MFLOP/s"),
        (
            {"peak_flops": {"float32": 19.5e12, "float16": 312}, "bandwidth": 2.039e12},
            "peak_flops for float16 is in FLOP/s",
        ),
    ],
)
def test_a_figure_in_gb_per_s_or_tflop_per_s_is_refused(kwargs, complaint):
    with pytest.raises(ValueError, match=complaint):
        flopmeter.hardware.Hardware("mine", **kwargs)


def test_the_slowest_figures_the_tests_use_are_still_accepted():
    spec = flopmeter.hardware.Hardware("slow", peak_flops=1e6, bandwidth=1e6)  # 1 MFLOP/s, 1 MB/s
    assert spec.ridge_point() == 1.0
