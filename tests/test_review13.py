"""Review of probe 13's changes (docs/probe-13/code-review.md): defects found, each with a
test that failed before its fix."""

from __future__ import annotations

import copy

import pytest
import torch

import flopmeter


def _stack() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(*[torch.nn.Linear(256, 256, bias=False) for _ in range(4)]).eval()


def test_rebuilt_weights_die_with_their_layer_in_the_peak_activation_memory() -> None:
    """A torchao int8 weight-only model rebuilds each Linear's float weight (256 x 256 float32
    = 262,144 B) just before its matmul, and the eager run frees it after: the peak holds one
    such copy, not all four. The "rebuilt" role kept every copy alive to the end of the trace
    (1,048,576 B more than the float model's peak instead of 262,144)."""
    quantization = pytest.importorskip("torchao.quantization")
    model = _stack()
    quantized = copy.deepcopy(model)
    quantization.quantize_(quantized, quantization.Int8WeightOnlyConfig())
    x = torch.randn(1, 256)
    dense, int8 = flopmeter.profile(model, x), flopmeter.profile(quantized, x)
    assert int8.peak_activation_bytes == dense.peak_activation_bytes + 256 * 256 * 4  # + 262,144
    # the rebuilt copies are still known as such: the 4 matmuls read 4 * 262,144 = 1,048,576 B
    assert int8.rebuilt_weight_bytes == 4 * 256 * 256 * 4
