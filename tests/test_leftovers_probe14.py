"""Probe 14's leftovers (docs/probe-14/leftovers.md): what probe 13 left documented but not
done, each against numbers worked out by hand."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from flopmeter.hardware import Hardware

# --- 1. LLM serving: a float32 phase's FLOPs split by op class (roofline's grouping) -------

SETTINGS = [
    (torch.backends, "fp32_precision"),
    (torch.backends.cudnn, "fp32_precision"),
    (torch.backends.cudnn.conv, "fp32_precision"),
    (torch.backends.cudnn.rnn, "fp32_precision"),
    (torch.backends.cuda.matmul, "fp32_precision"),
]


@pytest.fixture
def tf32_matmuls():
    """float32 matmuls allowed on TF32 for the test; every setting back afterwards."""
    legacy = (torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision())
    saved = [getattr(owner, name) for owner, name in SETTINGS]
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    yield
    torch.backends.cudnn.allow_tf32 = legacy[0]
    torch.set_float32_matmul_precision(legacy[1])
    for (owner, name), value in zip(SETTINGS, saved, strict=True):
        setattr(owner, name, value)


# The test Llama (conftest: hidden 64, MLP 128, 2 layers, 4 query and 2 KV heads of 16,
# vocabulary 100), float32, one decode step after n cached tokens, batch 1.
# Matmul-class FLOPs (aten.mm, N*(2K-1) each), the same at every n:
#   per layer q 64*127 = 8,128, k 32*127 = 4,064, v 4,064, o 8,128, gate 128*127 = 16,256,
#   up 16,256, down 64*255 = 16,320: 73,216; 2 layers 146,432; lm_head 100*127 = 12,700
MATMUL_FLOPS = 2 * (8_128 + 4_064 + 4_064 + 8_128 + 16_256 + 16_256 + 16_320) + 12_700  # 159,132


def other_flops(n: int) -> int:
    """The step's FLOPs outside matmuls (all at the float32 peak, TF32 or not):
    rotary table 8 + 4*16 = 72; 5 RMSNorms of 64 (pow 64, mean 64, +eps 1, rsqrt 1, two muls
    128) = 5*258 = 1,290; per layer: rotary on q (64 + 32 + 64 + 64 = 224) and k (112) 336,
    two residual adds 128, SiLU 4*128 = 512 and the gate mul 128, and attention over n+1
    keys (``scaled_dot_product_attention``, 4 heads of 16): scores 4*(n+1)*31, scale
    4*(n+1), softmax 4*(n + (n+1) + (n+1) + n + (n+1)) = 4*(5n+3), values 4*16*(2(n+1)-1)."""
    keys = n + 1
    attention = 4 * keys * 31 + 4 * keys + 4 * (5 * n + 3) + 4 * 16 * (2 * keys - 1)
    return 72 + 1_290 + 2 * (336 + 128 + 512 + 128 + attention)


def test_the_hand_count_of_the_decode_step(tiny_llama_config):
    pytest.importorskip("transformers")
    from flopmeter import llm_cost

    cost = llm_cost(tiny_llama_config, prompt=16, generate=4, dtype="float32")
    assert other_flops(16) == 12_810  # 1,362 + 2*(1,104 + 4*17*31 + 68 + 4*83 + 64*33) = 1,362 + 2*5,724
    assert cost.decode(16).flops == MATMUL_FLOPS + other_flops(16)  # 159,132 + 12,810 = 171,942
    assert cost.decode(18).flops == MATMUL_FLOPS + other_flops(18)  # + 2*4*(2*31+2+10+32) = 171,942 + 1,104


def test_serving_runs_only_the_matmul_flops_of_a_float32_step_at_the_tf32_peak(
    tiny_llama_config, tf32_matmuls
):
    pytest.importorskip("transformers")
    from flopmeter import llm_cost

    cost = llm_cost(tiny_llama_config, prompt=16, generate=4, dtype="float32")
    serving = cost.serving("h100-sxm")
    # H100 SXM: TF32 494.7 TFLOP/s, float32 67, 3.35 TB/s. First step after 16 tokens:
    # 159,132 / 494.7e12 + 12,810 / 67e12 = 0.3217 ns + 0.1912 ns = 0.5129 ns (before: the
    # whole 171,942 at TF32, 0.3476 ns)
    first = serving.first_decode
    assert first.compute_s == pytest.approx(MATMUL_FLOPS / 494.7e12 + other_flops(16) / 67e12, rel=1e-12)
    assert first.compute_s == pytest.approx(0.5129e-9, abs=0.0001e-9)
    # the last step (context 16 + 4 - 2 = 18) reads the fitted split: 13,914 at float32
    last = serving.last_decode
    assert last.compute_s == pytest.approx(MATMUL_FLOPS / 494.7e12 + other_flops(18) / 67e12, rel=1e-12)
    # memory-bound at batch 1: the step takes its bytes' time; paged bytes: weights
    # (80,512 parameters read + 8 of the rotary inv_freq) * 4 = 322,080, KV read
    # 2 layers * K,V * 2 heads * 16 * 17 positions * 4 = 8,704, written 2*2*2*16*4 = 512
    split = cost.decode(16).bytes("paged", cost.cache)
    assert (split.weights, split.kv_read, split.kv_write) == (322_080, 8_704, 512)
    assert first.memory_s == pytest.approx((322_080 + 8_704 + 512 + split.activations) / 3.35e12)
    assert first.bound == "memory" and first.seconds == first.memory_s


def test_a_compute_bound_float32_step_takes_its_split_compute_time(tiny_llama_config, tf32_matmuls):
    pytest.importorskip("transformers")
    from flopmeter import llm_cost

    # a part that moves bytes fast: the step is compute-bound, its time its compute time
    part = Hardware("fast-memory", peak_flops={"float32": 1e12, "tfloat32": 8e12}, bandwidth=1e15)
    cost = llm_cost(tiny_llama_config, prompt=16, generate=2, dtype="float32")
    step = cost.serving(part).first_decode
    # 159,132 / 8e12 + 12,810 / 1e12 = 19.8915 ns + 12.81 ns = 32.7015 ns (before: 171,942 /
    # 8e12 = 21.49 ns); memory 368,120 B / 1e15 = 0.368 ns
    assert step.bound == "compute"
    assert step.seconds == pytest.approx(32.7015e-9, rel=1e-12)
    # compute-bound batch: B >= W / (c * bandwidth - s), c = 32.7015 ns per sequence;
    # at 2e12 B/s: c * bandwidth = 65,403 B, s = KV 8,704 + 512 + activations
    slow = Hardware("slower-memory", peak_flops={"float32": 1e12, "tfloat32": 8e12}, bandwidth=2e12)
    split = cost.decode(16, 1).bytes("paged", cost.cache)
    margin = Fraction(65_403) - (8_704 + 512 + split.activations)
    expected = -(-Fraction(322_080) // margin)  # ceil(322,080 / margin)
    assert cost.serving(slow).compute_bound_batch == expected
    # (all 171,942 at TF32, as before: c * bandwidth = 42,985.5 B, under s: never compute-bound)


def test_a_bfloat16_step_keeps_the_bfloat16_peak(tiny_llama_config, tf32_matmuls):
    pytest.importorskip("transformers")
    from flopmeter import llm_cost

    cost = llm_cost(tiny_llama_config, prompt=16, generate=2, dtype="bfloat16")
    step = cost.serving("h100-sxm").first_decode
    # the phase's dtype is the model's: every FLOP at 989.4 TFLOP/s (docs/llm.md)
    assert step.compute_s == pytest.approx((MATMUL_FLOPS + other_flops(16)) / 989.4e12, rel=1e-12)
