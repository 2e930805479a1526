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


class AttentionPool(torch.nn.Module):
    """HunyuanDiT's text pooler (and CLIP ResNets' attnpool): the mean token attends over
    the sequence through F.multi_head_attention_forward, whose output projection maps the
    embedding (32) to a smaller output (16)."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v = (torch.nn.Linear(32, 32) for _ in range(3))
        self.c_proj = torch.nn.Linear(32, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (N, L, C)
        x = x.permute(1, 0, 2)
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)  # (L + 1, N, C)
        out, _ = F.multi_head_attention_forward(
            query=x[:1],
            key=x,
            value=x,
            embed_dim_to_check=32,
            num_heads=8,
            q_proj_weight=self.q.weight,
            k_proj_weight=self.k.weight,
            v_proj_weight=self.v.weight,
            in_proj_weight=None,
            in_proj_bias=torch.cat([self.q.bias, self.k.bias, self.v.bias]),
            bias_k=None,
            bias_v=None,
            add_zero_attn=False,
            dropout_p=0.0,
            out_proj_weight=self.c_proj.weight,
            out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True,
            training=False,
            need_weights=False,
        )
        return out


def test_an_attention_pool_whose_output_projection_narrows_is_counted_at_its_width():
    report = flopmeter.profile(AttentionPool(), torch.randn(1, 7, 32))
    mha = report.operators["nn.functional.multi_head_attention_forward"].cost.macs
    # one query, 8 keys (7 tokens + their mean), 8 heads of 4:
    # q 1*32*32 = 1,024; k, v 8*32*32 = 8,192 each; QK^T 8*1*8*4 = 256; PV 256;
    # output projection 1 query * 16 outputs * 32 = 512 (not 32 outputs: 1,024)
    assert mha == 1_024 + 8_192 + 8_192 + 256 + 256 + 512  # = 18,432


class Allocations(torch.nn.Module):
    """Buffers allocated to be filled later (a scheduler's output, a KV slot): no kernel
    runs for them, so no byte moves (docs/speed.md: they "move no bytes")."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (
            torch.empty_like(x),
            x.new_empty(3, 5),
            torch.empty(2, 3, device=x.device),
            torch.empty_strided((2, 3), (1, 2), device=x.device),
        )


def test_an_op_that_only_allocates_reads_and_writes_nothing():
    x = torch.randn(4, 6)
    for shapes_only in (True, False):
        report = flopmeter.profile(Allocations(), x, shapes_only=shapes_only)
        ops = ["aten.empty_like", "aten.new_empty", "aten.empty", "aten.empty_strided"]
        assert [op.op for op in report.ops] == ops
        assert [(op.cost.bytes_read, op.cost.bytes_written) for op in report.ops] == [(0, 0)] * 4
        # before: written 4*6*4 = 96, 3*5*4 = 60, 2*3*4 = 24 and 24
        assert report.bytes_read == report.bytes_written == 0
