"""nn.MultiheadAttention in the compression view: one F.multi_head_attention_forward
record holds the q/k/v projections, the attention and the output projection; each
weight row counts its own uses (hand counts)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import flopmeter

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# E 16, 2 heads (head dim 8), batch 1; query L_q 10, key/value L_k 7.
# dense MACs: q 10*16*16 = 2,560; k, v 7*16*16 = 1,792 each; attention q@k^T and
# attn@v 2 heads * 10*7*8 = 1,120 each; out_proj 10*16*16 = 2,560; total 10,944


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    kv = torch.randn(7, 1, 16)
    return torch.randn(10, 1, 16), kv, kv


def test_dense_effective_equals_dense() -> None:
    torch.manual_seed(0)
    report = flopmeter.profile(nn.MultiheadAttention(16, 2), _inputs())
    view = report.compression
    assert report.macs == 10_944
    assert view.macs_effective == view.macs_dense == 10_944  # R = MACs / N gave 10,240 here
    assert view.flops_effective == report.flops
    assert view.layers[""].macs_dense == 10_944 - 2_560  # the projection moves to out_proj
    assert view.layers["out_proj"].macs_dense == 2_560


def test_pruned_rows_count_their_own_uses() -> None:
    torch.manual_seed(0)
    model = nn.MultiheadAttention(16, 2)
    mask = torch.ones(48, 16)
    mask[16:32, 8:] = 0  # key rows keep 8 of 16 inputs
    mask[32:, 4:] = 0  # value rows keep 4
    prune.custom_from_mask(model, "in_proj_weight", mask)
    with torch.no_grad():
        model.out_proj.weight[:, 8:] = 0  # zeros in place (out_proj's own forward never runs)
    view = flopmeter.profile(model, _inputs()).compression
    attention, out = view.layers[""], view.layers["out_proj"]
    # q 10*16*16 + k 7*16*8 + v 7*16*4 = 2,560 + 896 + 448 = 3,904, + attention 2,240
    assert attention.macs_effective == 3_904 + 2_240
    # FLOPs: own 22,528 - out_proj 5,120 = 17,408; in_proj dense 10*16*31 + 2*7*16*31 = 11,904,
    # effective 10*16*31 + 7*16*15 + 7*16*7 = 4,960 + 1,680 + 784 = 7,424
    assert attention.flops_effective == 17_408 - 11_904 + 7_424
    # out_proj: 10 * 16 * 8 = 1,280 MACs; 10*16*(2*8 - 1) + 160 bias = 2,560 FLOPs
    assert (out.macs_effective, out.flops_effective) == (1_280, 2_560)
    assert view.macs_effective == 3_904 + 2_240 + 1_280
