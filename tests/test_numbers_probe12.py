"""Probe 12: hand counts for less travelled layers and ops, and the defects found there
(negative attention counts on empty keys, empty EmbeddingBag bags, bincount's weights).
Every expected value has its arithmetic beside it (docs/formulas.md's conventions)."""

from __future__ import annotations

import pytest
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


# ------------------------------------------------------------------------- EmbeddingBag
WEIGHT = torch.randn(10, 3)  # D = 3
IDS, OFFSETS = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8]), torch.tensor([0, 0, 4, 8])  # bags of 0, 4, 4, 0


def bag(mode: str, ids: torch.Tensor = IDS, offsets: torch.Tensor = OFFSETS, **kw) -> Fn:  # type: ignore[no-untyped-def]
    return Fn(lambda w: F.embedding_bag(ids, w, offsets, mode=mode, **kw))


class TestEmbeddingBagSizes:
    def test_empty_bags_cost_nothing(self):
        for shapes_only in (None, False):  # the offsets are real integer inputs either way
            # sum, max: the two bags of 4 rows, (4 - 1) * 3 each = 18 (was (8 - 4 bags) * 3 = 12)
            assert flopmeter.profile(bag("sum"), (WEIGHT,), shapes_only=shapes_only).flops == 18
            assert flopmeter.profile(bag("max"), (WEIGHT,), shapes_only=shapes_only).flops == 18
            # mean: + every bag's 3 outputs divided (the kernel divides an empty bag by 1): 18 + 12 = 30
            assert flopmeter.profile(bag("mean"), (WEIGHT,), shapes_only=shapes_only).flops == 30

    def test_per_sample_weights_with_empty_bags(self):
        # 18 adds + each of the 8 rows scaled by its weight: 8 * 3 = 24 -> 42 (was 12 + 24 = 36)
        weighted = bag("sum", per_sample_weights=torch.rand(8))
        assert flopmeter.profile(weighted, (WEIGHT,)).flops == 42

    def test_include_last_offset(self):
        # offsets 0, 0, 4, 8 | 8: the same four bags of 0, 4, 4, 0 rows: 18
        last = bag("sum", offsets=torch.tensor([0, 0, 4, 8, 8]), include_last_offset=True)
        assert flopmeter.profile(last, (WEIGHT,)).flops == 18

    def test_padding_rows_are_skipped(self):
        # bags [1, 0, 0], [2, 0, 3] with padding_idx 0: rows kept 1 and 2 -> 0 + (2 - 1) * 3 = 3
        # (was (6 - 2) * 3 = 12: the padding rows counted as added)
        padded = bag("sum", ids=torch.tensor([1, 0, 0, 2, 0, 3]), offsets=torch.tensor([0, 3]), padding_idx=0)
        assert flopmeter.profile(padded, (WEIGHT,)).flops == 3
        # a bag of padding rows only is empty: mean divides both bags all the same, 2 * 3 = 6
        only = bag("mean", ids=torch.tensor([0, 0, 4]), offsets=torch.tensor([0, 2]), padding_idx=0)
        assert flopmeter.profile(only, (WEIGHT,)).flops == 6

    def test_module_and_training_step(self):
        layer = nn.EmbeddingBag(10, 3, mode="sum")
        assert flopmeter.profile(layer, (IDS, OFFSETS)).flops == 18  # as above
        with torch.inference_mode():
            assert flopmeter.profile(layer, (IDS, OFFSETS)).flops == 18
        training = flopmeter.profile(layer, (IDS, OFFSETS), backward=True)
        assert op_flops(training, "aten._embedding_bag") == 18
        # a 2-d input: 2 bags of 4, no empty one: (8 - 2) * 3 = 18
        assert flopmeter.profile(layer, (IDS.view(2, 4),)).flops == 18

    def test_offsets_computed_on_meta_are_counted_with_values(self):
        class Hashed(nn.Module):  # offsets derived from a float input: meta in a shapes-only run
            def __init__(self) -> None:
                super().__init__()
                self.bags = nn.EmbeddingBag(10, 3, mode="sum")

            def forward(self, x):  # type: ignore[no-untyped-def]
                return self.bags(IDS, (x * 0).long())

        # offsets 0, 0, 0, 0 computed from x: bags of 0, 0, 0, 8 rows: x * 0 (4) + 7 * 3 = 25,
        # the shapes-only attempt handing over to a run with values (it had counted
        # (8 - 4 bags) * 3 = 12 on meta, every bag taken to hold a row: 16)
        for shapes_only in (None, False):
            assert flopmeter.profile(Hashed(), (torch.zeros(4),), shapes_only=shapes_only).flops == 4 + 21
        with pytest.raises(flopmeter.ModelError, match="bags. sizes need their values"):
            flopmeter.profile(Hashed(), (torch.zeros(4),), shapes_only=True)


# ---------------------------------------------- ops that were listed without a formula
def test_fft_frequencies_and_put_are_counted():
    x = torch.randn(2, 8)
    # fftfreq(8): arange scaled by 1/(8*1), 8 multiplies; + the add to x, 16: 24
    report = flopmeter.profile(Fn(lambda a: a + torch.fft.fftfreq(8)), (x,))
    assert report.unsupported_ops() == {} and op_flops(report, "aten.fft_fftfreq") == 8
    # rfftfreq(8, 0.5): 8 // 2 + 1 = 5 multiplies
    report = flopmeter.profile(Fn(lambda a: a + torch.fft.rfftfreq(8, 0.5)), (torch.randn(2, 5),))
    assert op_flops(report, "aten.fft_rfftfreq") == 5
    at, values = torch.tensor([0, 1, 0]), torch.randn(3)
    # put_(accumulate=True): each of the 3 values added into its element, 3; without: a copy, 0
    adds = flopmeter.profile(Fn(lambda a: a.clone().put_(at, values, accumulate=True)), (torch.randn(3, 4),))
    assert adds.unsupported_ops() == {} and op_flops(adds, "aten.put_") == 3
    copies = flopmeter.profile(Fn(lambda a: a.put(at, values)), (torch.randn(3, 4),))
    assert copies.unsupported_ops() == {} and op_flops(copies, "aten.put") == 0
