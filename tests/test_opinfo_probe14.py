"""Probe 14: the OpInfo sweep's findings (benchmarks/opinfo_sweep.py, docs/probe-14/opinfo.md)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter
from wrapped import Fn


def _both(model: nn.Module, *inputs: torch.Tensor) -> tuple[flopmeter.Report, flopmeter.Report]:
    shapes = flopmeter.profile(model, inputs, shapes_only=True)
    values = flopmeter.profile(model, inputs, shapes_only=False)
    assert shapes.options["computed"] == "shapes" and values.options["computed"] == "values"
    return shapes, values


def _numbers(report: flopmeter.Report) -> tuple[int, int, int, int]:
    return report.flops, report.macs, report.bytes_read, report.bytes_written


# -- a strided input with gaps keeps its strides on meta ---------------------------------


def test_a_strided_input_with_gaps_is_copied_by_reshape_in_both_modes():
    """``x[:, :3]`` of a 4x6 tensor is 4x3 with strides (6, 1): ``reshape(-1)`` must copy it.
    ``.to("meta")`` packed it densely, so the shapes-only run saw a free view (0 bytes) and
    the values run a copy."""
    x = torch.randn(4, 6)[:, :3]
    shapes, values = _both(Fn(lambda t: t.reshape(-1)), x)
    # clone of 4*3 = 12 float32: 12*4 = 48 bytes read, 48 written
    assert _numbers(shapes) == _numbers(values) == (0, 0, 48, 48)
    assert shapes.operators["aten.clone"].calls == 1


def test_contiguous_of_a_strided_input_copies_in_both_modes():
    x = torch.randn(5, 10)[:, ::2]  # 5x5, strides (10, 2)
    shapes, values = _both(Fn(lambda t: t.contiguous()), x)
    # 5*5 = 25 float32 copied: 25*4 = 100 bytes read, 100 written
    assert _numbers(shapes) == _numbers(values) == (0, 0, 100, 100)


def test_inner_of_strided_vectors_runs_the_same_kernels_in_both_modes():
    """torch.inner of two strided 1-D vectors runs mul + sum on the CPU (dot on dense ones):
    the shapes-only run counted dot (5 MACs) where the real run has none."""
    a, b = torch.randn(10)[::2], torch.randn(10)[::2]  # 5 elements, stride 2
    shapes, values = _both(Fn(torch.inner), a, b)
    # mul 5 + sum of 5 terms 4 = 9 FLOPs, no MACs (elementwise)
    assert _numbers(shapes) == _numbers(values)
    assert (values.flops, values.macs) == (9, 0)


def test_a_strided_parameter_keeps_its_strides_on_meta():
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 6)[:, :3])  # 4x3, strides (6, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.w.reshape(-1)

    model = Holder()
    assert model.w.stride() == (6, 1)
    shapes, values = _both(model, torch.randn(12))
    # clone 12 (48 B read, 48 written) + add 12 FLOPs (reads 48 + 48, writes 48)
    assert _numbers(shapes) == _numbers(values) == (12, 0, 48 + 96, 48 + 48)


@pytest.mark.parametrize("layout", ["dense", "permuted", "channels_last"])
def test_dense_layouts_are_unchanged(layout: str):
    x = torch.randn(2, 3, 4, 4)
    x = {"dense": x, "permuted": x.transpose(1, 3), "channels_last": x.to(memory_format=torch.channels_last)}[
        layout
    ]
    shapes, values = _both(Fn(lambda t: t.reshape(-1)), x)
    assert _numbers(shapes) == _numbers(values)
