"""The compression columns of a shared module called through a further name (probe 7):
the weight facts are keyed by the module's first name (``a``), and the row ``b.1`` reads
them through that name, so each call shows the same bits, BOPs and integer work as a
call through the first name. BOPs = MACs effective * weight bits * activation bits
(docs/compression.md). The weights are set to 0.1 so none quantizes to zero: every MAC
is effective. The further row stores nothing: params and bytes are the first name's."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

import flopmeter


class TwoParents(nn.Module):
    """``shared`` held as ``a`` and as ``b[1]``; ``b(a(x))`` calls it once through each."""

    def __init__(self, shared: nn.Module) -> None:
        super().__init__()
        self.a, self.b = shared, nn.Sequential(nn.Identity(), shared)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        y = self.b(y[0] if isinstance(y, tuple) else y)
        return y[0] if isinstance(y, tuple) else y


def _constant(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.constant_(p, 0.1)
    return module


def _dynamic(layer: nn.Module) -> nn.Module:
    """``layer`` dynamic-quantized to int8, then shared (quantize_dynamic swaps a module
    held twice for two separate copies, so the sharing is made after it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(nn.Sequential(_constant(layer)), dtype=torch.qint8)[0]


def _columns(view: flopmeter.compression.CompressionView, name: str) -> tuple:
    layer = view.layers[name]
    return (layer.macs_effective, layer.weight_bits, layer.act_bits, layer.bops, layer.int_ops_effective)


def test_a_shared_dynamic_quantized_lstm_is_integer_through_both_names():
    """LSTM(4, 4) on (3, 2, 4): 3 steps * batch 2 * (4*16 input + 4*16 hidden) = 768 MACs a call.
    Fails on main: b.1 read as float there (A bits 32, BOPs 768*8*32 = 196,608, int ops 0,
    work by dtype 768 float32 MACs)."""
    report = flopmeter.profile(TwoParents(_dynamic(nn.LSTM(4, 4))), torch.randn(3, 2, 4))
    assert report.modules["b.1"].shared_with == "a"
    view = report.compression
    # (MACs eff., W bits, A bits, BOPs 768*8*8 = 49,152, int ops as a's)
    assert _columns(view, "b.1") == _columns(view, "a")
    assert _columns(view, "a")[:4] == (768, 8, 8, 49_152)
    assert view.layers["b.1"].compute_dtype == "int8"
    assert view.work_by_dtype["int8"]["macs"] == 1_536  # 2 calls * 768, none in float
    assert view.work_by_dtype["float32"]["macs"] == 0
    assert (view.layers["b.1"].bytes_actual, view.layers["a"].bytes_actual) == (0, 288)  # stored once


def test_a_shared_dynamic_quantized_linear_keeps_its_bias_adds():
    """Linear(4, 4) on a batch of 2: 32 MACs; integer ops (2*4-1)*4*2 = 56 + 8 bias adds = 64.
    Fails on main: b.1 had int ops 56 (its bias read under 'b.1', none)."""
    report = flopmeter.profile(TwoParents(_dynamic(nn.Linear(4, 4))), torch.randn(2, 4))
    view = report.compression
    assert _columns(view, "b.1") == _columns(view, "a") == (32, 8, 8, 2_048, 64)  # BOPs 32*8*8
    # its int8 weights, float bias and scale are stored (and counted) at a only
    assert (view.layers["b.1"].bytes_actual, view.layers["b.1"].bytes_ideal) == (0, 0)


def test_a_shared_qat_linear_has_its_activation_bits_through_both_names():
    """Eager QAT Linear(4, 4) (fbgemm, 8-bit weights and activations), batch 2: 32 MACs,
    BOPs 32*8*8 = 2,048 a call. Fails on main: b.1 had A bits 32, BOPs 32*8*32 = 8,192."""
    prepared = nn.Sequential(_constant(nn.Linear(4, 4)))
    prepared.qconfig = torch.ao.quantization.get_default_qat_qconfig("fbgemm")
    shared = torch.ao.quantization.prepare_qat(prepared.train())[0]
    view = flopmeter.profile(TwoParents(shared), torch.randn(2, 4)).compression
    assert _columns(view, "b.1")[:4] == _columns(view, "a")[:4] == (32, 8, 8, 2_048)


class Attend(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x)[0]


def test_a_shared_multihead_attention_gives_its_out_projection_its_own_row():
    """E 4, 2 heads, x (L 3, B 2, 4), 6 tokens: q/k/v 3*6*4*4 = 288 + QK^T 2*2*3*3*2 = 72 +
    AV 72 = 432 MACs at the attention, out_proj 6*4*4 = 96. Fails on main: b.1.mha had
    528 MACs (out_proj kept in) and no b.1.mha.out_proj row."""
    view = flopmeter.profile(TwoParents(Attend()), torch.randn(3, 2, 4)).compression
    for first, further in (("a.mha", "b.1.mha"), ("a.mha.out_proj", "b.1.mha.out_proj")):
        assert view.layers[further].macs_dense == view.layers[first].macs_dense
        assert view.layers[further].bops == view.layers[first].bops
    assert view.layers["b.1.mha"].macs_dense == 432
    assert view.layers["b.1.mha.out_proj"].bops == 98_304  # 96 * 32 * 32


class Functional(nn.Module):
    """Runs ``F.linear`` on its (never called) child's weight, as torchvision's
    ShiftedWindowAttention does with ``self.qkv.weight``."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(4, 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.qkv.weight)


def test_a_shared_module_s_matmul_on_its_child_s_weight_counts_at_that_child():
    """Batch 2: 2*4*4 = 32 MACs at the child qkv, through each name. Fails on main:
    b.1's matmul stayed at b.1 (no b.1.qkv layer)."""
    view = flopmeter.profile(TwoParents(Functional()), torch.randn(2, 4)).compression
    assert view.layers["a.qkv"].macs_dense == view.layers["b.1.qkv"].macs_dense == 32
    assert "b.1" not in view.layers and "a" not in view.layers


class TiedHead(nn.Module):
    """An output Linear(4, 10) whose weight is the Embedding(10, 4)'s, rows 0-4 zeroed (20 of
    its 40 weights), held as ``head.out`` (first name), ``a`` and ``b[0]``."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Module()
        self.head.emb, self.head.out = nn.Embedding(10, 4), nn.Linear(4, 10, bias=False)
        self.head.out.weight = self.head.emb.weight
        with torch.no_grad():
            self.head.emb.weight[:5] = 0
        self.a, self.b = self.head.out, nn.Sequential(self.head.out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.head.emb(tokens)
        return self.b(x) + self.a(x)


def test_a_shared_module_with_a_tied_weight_sees_its_zeros_through_both_names():
    """3 tokens * 4 * 10 = 120 MACs a call; half the weights zero: 120 * 20 / 40 = 60
    effective. Fails on main: both further rows read no weight there (120 effective)."""
    report = flopmeter.profile(TiedHead(), torch.tensor([[1, 2, 3]]), compression=True)
    assert (report.modules["a"].shared_with, report.modules["b.0"].shared_with) == ("head.out", "head.out")
    view = report.compression
    assert view.layers["a"].macs_effective == view.layers["b.0"].macs_effective == 60
    assert view.layers["b.0"].bops == 60 * 32 * 32  # 61,440
