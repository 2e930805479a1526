"""Review of probe 8's weight-nonzero counting (R8 ids in docs/probe-8/review.md): each test failed before its fix."""

import pytest
import torch
from torch import nn

import flopmeter


class Float8Linear(nn.Module):
    """A hand-written fp8 linear: a float8 weight of 16 x 8 and a scale, dequantised in forward."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        weight = torch.rand(16, 8) + 0.5  # no value a float8 rounds to zero
        weight[3] = 0  # one pruned output row: 8 zeros
        weight[:, 5] = 0  # one pruned input channel: 16 zeros, 1 of them in row 3 already
        self.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
        self.scale = nn.Parameter(torch.ones(()), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ (self.weight.to(torch.float32) * self.scale).t()


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz])
def test_a_float8_weight_has_its_nonzeros_counted(dtype: torch.dtype) -> None:
    """R8-2: torch counts no float8 nonzeros on the CPU ("nonzero_count_cpu" not implemented for
    'Float8_e4m3fn'): profile() of a model holding a plain float8 weight raised that raw from
    ModelFacts.count. Widened to bfloat16 (every float8 value is one), it is counted."""
    torch.manual_seed(0)
    layer = flopmeter.profile(Float8Linear(dtype), torch.randn(2, 8), compression=True).compression.layers[""]
    # 16*8 = 128 weights - row 3's 8 - column 5's 15 others = 105
    assert layer.weight_nonzero == 105
    assert layer.weight_bits == 8


def test_a_packed_float4_weight_is_left_uncounted_not_raised() -> None:
    """R8-2: a float4_e2m1fn_x2 weight (two values a byte) cannot be read value by value: its
    nonzeros are unknown (None), where profile() raised from count_nonzero."""

    class Float4Held(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            packed = torch.randint(1, 255, (16, 4), dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
            self.weight = nn.Parameter(packed, requires_grad=False)
            self.linear = nn.Linear(8, 16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x)

    report = flopmeter.profile(Float4Held(), torch.randn(2, 8))
    assert report.compression is None or report.compression.layers[""].weight_nonzero is None
