"""A user's own ``torch.library.custom_op`` in a forward: listed with its shapes until a
formula is registered, and counted on meta when it has a fake implementation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter


@torch.library.custom_op("flopmeter_tests::scale_add", mutates_args=())
def scale_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x * 2 + y


@scale_add.register_fake
def _scale_add_shape(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("flopmeter_tests::sine_without_fake", mutates_args=())
def sine_without_fake(x: torch.Tensor) -> torch.Tensor:
    return x.sin()


class WithFake(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scale_add(self.l(x), x)


class WithoutFake(WithFake):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sine_without_fake(super().forward(x))


def test_a_custom_op_with_a_fake_impl_is_listed_from_the_shapes_only_run() -> None:
    report = flopmeter.profile(WithFake(), torch.randn(2, 4))
    assert report.options["computed"] == "shapes"
    assert report.flops == 2 * 4 * 4 * 2  # the Linear only, with bias: 2*I*O per row = 64
    assert report.unsupported_ops()["flopmeter_tests.scale_add"].shapes == ["(2x4:float32, 2x4:float32)"]


def test_a_custom_op_without_a_fake_impl_is_counted_with_values() -> None:
    """Before: 'There was no fake impl registered' from the shapes-only run, blamed on the
    model, although a run with values counts it (shapes_only=False did)."""
    report = flopmeter.profile(WithoutFake(), torch.randn(2, 4))
    assert report.options["computed"] == "values"
    assert report.macs == 2 * 4 * 4  # = 32
    assert sorted(report.unsupported_ops()) == [
        "flopmeter_tests.scale_add",
        "flopmeter_tests.sine_without_fake",
    ]
    # docs/meta.md: its calls listed with their shapes from the values run
    listed = report.unsupported_ops()["flopmeter_tests.sine_without_fake"]
    assert (listed.calls, listed.shapes) == (1, ["(2x4:float32)"])
    with pytest.raises(flopmeter.ModelError, match="no fake impl"):  # shapes_only=True: the error instead
        flopmeter.profile(WithoutFake(), torch.randn(2, 4), shapes_only=True)


def test_a_registered_formula_counts_the_custom_op() -> None:
    def two_per_element(event: flopmeter.OpEvent) -> flopmeter.Cost:
        return flopmeter.Cost(flops=2 * event.args[0].numel)  # x * 2 + y

    report = flopmeter.profile(
        WithFake(), torch.randn(2, 4), custom_formulas={"flopmeter_tests.scale_add": two_per_element}
    )
    assert report.flops == 64 + 2 * 8  # Linear 64, scale_add 2 per element of 2x4 = 80
    assert not report.unsupported_ops()
