"""Attention and recurrent layers: hand counts, and the real torch layers traced."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopmeter
from flopmeter.formulas import attention, recurrent


class AttentionBlock(nn.Module):
    """x (1, 16, 32), qkv = Linear(32, 96), 4 heads of 8, softmax(q k^T / sqrt(8)) v, proj Linear(32, 32)."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.qkv, self.proj, self.how = nn.Linear(32, 96), nn.Linear(32, 32), how

    def forward(self, x):
        b, length, _ = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, 4, 8).permute(2, 0, 3, 1, 4)
        if self.how == "sdpa":
            o = F.scaled_dot_product_attention(q, k, v)
        elif self.how == "matmul":
            o = torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(8), -1), v)
        elif self.how == "operator":
            o = (q @ k.transpose(-1, -2) / math.sqrt(8)).softmax(-1) @ v
        else:
            scores = torch.einsum("bhld,bhsd->bhls", q, k).div(math.sqrt(8)).softmax(-1)
            o = torch.einsum("bhls,bhsd->bhld", scores, v)
        return self.proj(o.transpose(1, 2).reshape(b, length, 32))


class TestAttention:
    @pytest.mark.parametrize("how", ["sdpa", "matmul", "operator", "einsum"])
    def test_same_count_however_written(self, how):
        report = flopmeter.profile(AttentionBlock(how), torch.randn(1, 16, 32))
        assert report.macs == 81_920  # 16*32*96 + 2*4*16*16*8 + 16*32*32
        # qkv 16*96*64 = 98,304; per head QK^T 256*15 + scale 256 + softmax 16*(5*16-2) + AV 8*(2*256-16)
        # = 3,840 + 256 + 1,248 + 3,968 = 9,312, times 4 heads = 37,248; proj 16*32*64 = 32,768
        assert report.flops == 168_320
        assert report.unsupported_ops() == {}

    def test_formula_by_hand(self):
        cost = attention.attention(4, 16, 16, 8, 8)
        assert cost.macs == 16_384  # 4 heads * 16*16*(8+8)
        assert cost.flops == 37_248  # 4 * 9,312 (see above)

    def test_mask_dropout_gqa(self):
        q = torch.randn(2, 8, 16, 8)
        k = v = torch.randn(2, 2, 16, 8)  # 2 key/value heads shared by 8 query heads
        mask = torch.zeros(16, 16)

        class Gqa(nn.Module):
            def forward(self, q, k, v):
                return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)

        report = flopmeter.profile(Gqa(), (q, k, v))
        assert report.macs == 65_536  # 2*8 heads * 16*16*(8+8)
        # per head 9,312 + 256 for the mask add
        assert report.flops == 16 * 9_568
        cost = attention.attention(1, 16, 16, 8, 8, dropout=True)
        assert cost.flops == 9_312 + 2 * 256  # dropout: draw and multiply per score

    def test_causal_full_by_default_and_needed_on_request(self):
        class Causal(nn.Module):
            def forward(self, q, k, v):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)

        q = torch.randn(1, 1, 4, 2)
        full = flopmeter.profile(Causal(), (q, q, q))
        needed = flopmeter.profile(Causal(), (q, q, q), causal="needed")
        assert full.macs == 64  # 4*4*(2+2)
        assert needed.macs == 40  # kept scores 1+2+3+4 = 10, times (2+2)
        # needed FLOPs: QK 10*3 + scale 10 + softmax 5*10-2*4 + AV 2*(2*10-4) = 30+10+42+32
        assert needed.flops == 114

    def test_multihead_attention(self):
        mha = nn.MultiheadAttention(32, 4, batch_first=True)
        x = torch.randn(1, 16, 32)

        class Wrap(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.mha = mha

            def forward(self, x):
                return self.mha(x, x, x, need_weights=False)[0]

        eval_run = flopmeter.profile(Wrap(), x)
        train_run = flopmeter.profile(Wrap(), x, train=True)
        assert eval_run.macs == train_run.macs == 81_920  # the same block as above
        assert eval_run.flops == 168_320
        assert eval_run.unsupported_ops() == {} and train_run.unsupported_ops() == {}

    def test_fused_multi_head_attention_op(self):
        """The fast-path kernel, called directly: 3 input projections + attention + output."""
        mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()

        class Fused(nn.Module):
            def forward(self, x):
                return torch._native_multi_head_attention(
                    x,
                    x,
                    x,
                    32,
                    4,
                    mha.in_proj_weight,
                    mha.in_proj_bias,
                    mha.out_proj.weight,
                    mha.out_proj.bias,
                    None,
                    False,
                )[0]

        report = flopmeter.profile(Fused(), torch.randn(1, 16, 32))
        assert "aten._native_multi_head_attention" in report.by_operator()
        assert report.macs == 81_920 and report.flops == 168_320


class TestRecurrent:
    def test_lstm_two_layers_ten_steps(self):
        report = flopmeter.profile(nn.LSTM(16, 32, num_layers=2), torch.randn(10, 1, 16))
        # layer 0, per token: 8*32*(16+32) + 19*32 = 12,288 + 608 = 12,896
        # layer 1, per token: 8*32*(32+32) + 19*32 = 16,384 + 608 = 16,992
        assert report.flops == 298_880  # 10 * (12,896 + 16,992)
        assert report.macs == 143_360  # 10 * 4*32*(48 + 64)
        assert report.unsupported_ops() == {}

    def test_gru(self):
        report = flopmeter.profile(nn.GRU(16, 32), torch.randn(10, 1, 16))
        assert report.flops == 96_640  # 10 * (6*32*48 + 14*32) = 10 * (9,216 + 448)
        assert report.macs == 46_080  # 10 * 3*32*48

    def test_bidirectional_lstm(self):
        report = flopmeter.profile(nn.LSTM(16, 32, bidirectional=True), torch.randn(10, 1, 16))
        assert report.flops == 257_920  # 2 directions * 10 * 12,896

    def test_lstm_without_bias_batch_first(self):
        report = flopmeter.profile(nn.LSTM(16, 32, bias=False, batch_first=True), torch.randn(3, 10, 16))
        assert report.flops == 379_200  # 30 tokens * (12,288 + 11*32)

    def test_rnn_tanh_and_cells(self):
        assert flopmeter.profile(nn.RNN(16, 32), torch.randn(10, 1, 16)).flops == 10 * (2 * 32 * 48 + 2 * 32)
        cell = flopmeter.profile(nn.LSTMCell(16, 32), torch.randn(1, 16))
        assert cell.flops == 12_896  # one token of layer 0 above
        assert flopmeter.profile(nn.GRUCell(16, 32), torch.randn(1, 16)).flops == 9_664

    def test_packed_sequence(self):
        lstm = nn.LSTM(4, 8)

        class Packed(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = lstm

            def forward(self, x):
                packed = nn.utils.rnn.pack_padded_sequence(x, [3, 2])
                return self.lstm(packed)[0].data

        report = flopmeter.profile(Packed(), torch.randn(3, 2, 4))
        assert report.flops == 4_600  # 5 real tokens * (8*8*12 + 19*8) = 5 * (768 + 152)

    def test_formula_matches_unfused_ops(self):
        # GRU runs unfused on the CPU: its ops add up to the fused formula
        step = recurrent.recurrent_step("gru", 16, 32, bias=True)
        assert flopmeter.profile(nn.GRU(16, 32), torch.randn(1, 1, 16)).flops == step.flops == 9_664


@pytest.mark.parametrize("backend", ["MATH", "FLASH_ATTENTION"])
def test_sdpa_same_count_on_every_cpu_backend(backend):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(getattr(SDPBackend, backend)):
        report = flopmeter.profile(AttentionBlock("sdpa"), torch.randn(1, 16, 32))
    assert report.macs == 81_920 and report.flops == 168_320
