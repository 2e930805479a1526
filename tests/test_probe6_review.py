"""Probe-6 review (docs/probe-6/review.md): defects found reviewing the session's change."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter


class CatchesAnErrorEveryRunRaises(nn.Module):
    """Tries a view that fails for any (2, 4) input, on meta and with values alike, and
    goes on with the input: a real call takes the except path too."""

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            x = x.view(3, -1)  # 8 elements: not a multiple of 3, wherever x lives
        except RuntimeError:
            pass
        return self.l(x)


@pytest.mark.parametrize("shapes_only", [None, True])
def test_an_error_the_model_catches_in_every_run_keeps_the_shapes_only_count(shapes_only):
    """P6-R1: since P6-A18 any op failure in a shapes-only run was taken for a meta
    limitation: shapes_only=True raised ModelError "the model raised RuntimeError" (it did
    not: it caught it), and the default rerun everything with values. 2*4*4 = 32 MACs."""
    report = flopmeter.profile(CatchesAnErrorEveryRunRaises(), torch.randn(2, 4), shapes_only=shapes_only)
    assert (report.macs, report.options["computed"]) == (32, "shapes")
