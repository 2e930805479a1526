"""Probe 12: hand counts for less travelled layers and ops, and the defects found there
(negative attention counts on empty keys, empty EmbeddingBag bags, bincount's weights).
Every expected value has its arithmetic beside it (docs/formulas.md's conventions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import flopmeter
from flopmeter.formulas import attention


class Fn(nn.Module):
    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn = fn

    def forward(self, *args):  # type: ignore[no-untyped-def]
        return self.fn(*args)


def op_flops(report: flopmeter.Report, op: str) -> int:
    return report.by_operator()[op].cost.flops


# ------------------------------------------------------------ attention over empty sizes
class TestAttentionNeverNegative:
    def test_no_keys_costs_nothing(self):
        # S = 0: no score, no softmax row, no A V dot product (was 3 rows * -2 softmax
        # + 4 * 3 * -1 A V = -18 per head)
        assert attention.attention(2, 3, 0, 4, 4).flops == 0
        assert attention.attention_backward(2, 3, 0, 4, 4).flops == 0

    def test_empty_head_dim_has_no_qk_dot_products(self):
        # E = 0, L 3, S 5, Ev 4, per head: Q.K^T 15 empty dots 0, scale 15,
        # softmax 3 * (5*5 - 2) = 69, A V 3*4 dots of 5: 12 * 9 = 108 -> 192; 2 heads 384
        assert attention.attention(2, 3, 5, 0, 4).flops == 384  # was 354: 15 dots at -1

    def test_bottom_right_rows_without_keys(self):
        # L 4 > S 2, bottom-right causal: rows keep 0, 0, 1, 2 keys (3 scores), E = Ev = 4.
        # Q.K^T 3 * 7 = 21, scale 3, softmax (5-2) + (10-2) = 11 (the empty rows none),
        # A V 4 dots of 1 (4) + 4 dots of 2 (12) = 16: 51 (was 39: -2 and -4 for each empty row)
        cost = attention.attention(1, 4, 2, 4, 4, causal_needed=True, bottom_right=True)
        assert (cost.flops, cost.macs) == (51, 3 * (4 + 4))

    def test_sdpa_on_empty_keys_is_not_negative(self):
        q, k = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 0, 4)
        sdpa = Fn(F.scaled_dot_product_attention)
        report = flopmeter.profile(sdpa, (q, k, k), batch_size=1, shapes_only=False)
        assert op_flops(report, "aten.scaled_dot_product_attention") == 0  # was -36


# --------------------------------------------------------------------------- bincount
def test_bincount_adds_each_weight_once():
    values, weights = torch.tensor([0, 1, 1, 3]), torch.rand(4)
    # integers binned as they are: no floating-point work
    assert flopmeter.profile(Fn(torch.bincount), (values,)).flops == 0
    # each of the 4 weights added into its bin: 4 adds (was 3 * 4 = 12, histc's binning)
    assert flopmeter.profile(Fn(torch.bincount), (values, weights)).flops == 4
    # histc keeps its binning: (x - min) * scale, floor: 3 * 12 = 36
    assert flopmeter.profile(Fn(lambda x: torch.histc(x, 5)), (torch.randn(3, 4),)).flops == 36
