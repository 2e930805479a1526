"""Probe 9: what a sweep of diffusers models (benchmarks/zoo_sweep.py --suite diffusers)
found, reproduced in plain torch (no diffusers needed)."""

import torch
import torch.nn.functional as F

import flopmeter


class MaskedAttention(torch.nn.Module):
    """SDPA with a boolean mask passed in by the caller, as HunyuanVideo's token refiner
    calls it (a padding mask of shape (1, 1, L, L))."""

    def forward(self, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, q, q, attn_mask=mask)


def test_checking_a_boolean_mask_for_causality_is_not_counted_as_the_models_work():
    # flopmeter looks at a real boolean mask's values (is it the bottom-right causal
    # pattern?) with sum, ones, tril, eq, all. Those are flopmeter's ops, not the model's:
    # they must not show up in the report, so a values run reads and writes exactly the
    # bytes a shapes-only run does.
    q = torch.randn(1, 2, 7, 8)
    mask = torch.ones(1, 1, 7, 7, dtype=torch.bool)
    mask[..., 5:] = False  # two padded keys: not causal
    model = MaskedAttention()
    values = flopmeter.profile(model, (q, mask), shapes_only=False)
    shapes = flopmeter.profile(model, (q, mask), shapes_only=True)
    assert [op.op for op in values.ops] == ["aten.scaled_dot_product_attention"]
    assert [op.op for op in shapes.ops] == ["aten.scaled_dot_product_attention"]
    assert (values.bytes_read, values.bytes_written) == (shapes.bytes_read, shapes.bytes_written)
    # q, k, v 3 * 2*7*8 * 4 bytes = 1,344 read, the mask 49 bytes: 1,393; output 2*7*8*4 = 448
    # written (the math path's scores stay inside the whole-call count)
    assert values.bytes_written == 448
    assert values.macs == shapes.macs == 2 * 2 * 7 * 7 * 8  # QK^T and PV: 2*(2*7*7*8) = 1,568


def test_a_causal_boolean_mask_is_still_recognised_after_the_check_moved():
    q = torch.randn(1, 2, 7, 8)
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    report = flopmeter.profile(MaskedAttention(), (q, causal), shapes_only=False, causal="needed")
    assert [op.op for op in report.ops] == ["aten.scaled_dot_product_attention"]
    # kept scores 1+2+...+7 = 28 of 49 per head: QK^T 2*28*8 = 448, PV 448: 896
    assert report.macs == 896


class Factories(torch.nn.Module):
    """Lumina2 builds its joint sequence with ``hidden_states.new_zeros(...)``; UNets and
    schedulers use ``zeros_like`` / ``randn_like``. Each reads only its template's shape."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (
            x.new_zeros(3, 5),
            x.new_full((3, 5), 2.0),
            torch.zeros_like(x),
            torch.ones_like(x),
            torch.full_like(x, 2.0),
            torch.randn_like(x),
        )


def test_a_factory_from_a_template_reads_nothing_of_the_template():
    x = torch.randn(4, 6)  # 24 float32 = 96 bytes, never read
    for shapes_only in (True, False):
        report = flopmeter.profile(Factories(), x, shapes_only=shapes_only)
        assert [op.cost.bytes_read for op in report.ops] == [0] * 6
        # written: new_zeros, new_full 3*5*4 = 60 each; the four *_like 96 each: 504
        assert [op.cost.bytes_written for op in report.ops] == [60, 60, 96, 96, 96, 96]
        assert report.bytes_read == 0
        assert report.bytes_written == 504

