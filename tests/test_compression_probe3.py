"""probe-3 (compression): wrong numbers found by hand and fixed, each with its arithmetic.

- observers and fake quantizers of prepared / QAT models are overhead, not model FLOPs;
- torch.ao dynamic quantized LSTM/GRU: params, MACs, bits (they were 0 and unsupported);
- a tied weight (one Parameter in two modules) lowers the effective MACs of both users;
- bytes of biases, norms and LSTM biases at their dtype (fp16/bf16 models), not 4 bytes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import flopmeter

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


class _Stubbed(nn.Module):
    def __init__(self) -> None:
        import torch.ao.quantization as tq

        super().__init__()
        self.quant, self.fc, self.dequant = tq.QuantStub(), nn.Linear(8, 4), tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.fc(self.quant(x)))


class TestObserversAreOverhead:
    def test_prepared_static_model_counts_the_linear_only(self) -> None:
        import torch.ao.quantization as tq

        model = _Stubbed().eval()
        model.qconfig = tq.get_default_qconfig("fbgemm")  # HistogramObserver on activations
        prepared = tq.prepare(model)
        state = {k: v.clone() for k, v in prepared.state_dict().items()}
        report = flopmeter.profile(prepared, torch.randn(4, 8) * 100)
        assert report.flops == 256  # 4 rows * 4 outputs * (2*8 - 1) + 16 bias adds; no histogram
        assert report.macs == 128  # 4 * 8 * 4
        assert "aten.histc" in report.overhead and "aten.aminmax" in report.overhead
        after = prepared.state_dict()
        assert all(torch.equal(state[k], after[k]) for k in state)  # no calibration happened

    def test_qat_fused_fake_quantize_is_counted_as_overhead(self) -> None:
        import torch.ao.quantization as tq

        model = _Stubbed().train()
        model.qconfig = tq.get_default_qat_qconfig("fbgemm")
        qat = tq.prepare_qat(model)
        report = flopmeter.profile(qat, torch.randn(4, 8))
        assert not report.unsupported  # aten._fused_moving_avg_obs_fq_helper has a formula
        assert report.flops == 256  # the linear alone, as above
        # 6 per element (min, max, fake quantize): input 4*8 + weight 4*8 + output 4*4 = 80
        assert report.overhead["aten._fused_moving_avg_obs_fq_helper"].cost.flops == 480
        assert qat.training


class TestDynamicQuantizedRecurrent:
    @staticmethod
    def _quantized(cls: type[nn.Module], dtype: torch.dtype, **kwargs: object) -> nn.Module:
        import torch.ao.quantization as tq

        torch.manual_seed(0)
        return tq.quantize_dynamic(nn.Sequential(cls(8, 16, **kwargs)), {cls}, dtype)

    def test_int8_lstm(self) -> None:
        model = self._quantized(nn.LSTM, torch.qint8)
        report = flopmeter.profile(model, torch.randn(5, 1, 8))
        assert not report.unsupported
        assert report.params == 1_664  # 4*16*(8+16) weights + 2*4*16 biases, as the float LSTM
        assert report.macs == 7_680  # 5 steps * 4*16*(8+16)
        assert report.flops == 1_520  # the float gates only: 5 steps * 19 * 16
        layer = report.compression.layers["0"]
        assert (layer.weight_bits, layer.act_bits, layer.compute_dtype) == (8, 8, "int8")
        assert layer.weight_params == 1_536 and layer.n_scales == 2  # W_ih, W_hh per tensor
        # 6 of the 1,536 int8 weights equal their zero point (W_ih 511 of 512, W_hh 1,019 of
        # 1,024) and are skipped, as a float weight's zeros: no output row is empty, so
        # 5 steps * (2*1,530 - 64 - 64 rows) = 14,660 (dense 5 * (64*15 + 64*31) = 14,720)
        assert layer.weight_nonzero == 1_530 and layer.macs_effective == 5 * 1_530
        assert layer.int_ops_effective == 14_660
        # bytes: 1,536 int8 + 2 scales * (8 B scale + 8 B zero point) + 128 fp32 biases * 4
        assert layer.bytes_actual == 1_536 + 32 + 512
        assert report.compression.work_by_dtype["int8"]["macs"] == 7_680
        assert report.compression.work_by_dtype["float32"]["flops"] == 1_520

    def test_int8_bidirectional_two_layer_gru(self) -> None:
        model = self._quantized(nn.GRU, torch.qint8, num_layers=2, bidirectional=True)
        report = flopmeter.profile(model, torch.randn(5, 1, 8))
        # weights: layer 0: 2 dirs * 48*(8+16) = 2,304; layer 1 reads 2*16: 2 * 48*(32+16) = 4,608
        assert report.compression.weight_params == 6_912
        assert report.params == 6_912 + 8 * 48  # + 2 biases of 48 per layer and direction = 7,296
        assert report.macs == 5 * 6_912  # = 34,560: each weight used once per step
        assert report.flops == 5 * 2 * 2 * 14 * 16  # gates: steps * dirs * layers * 14H = 4,480
        assert report.compression.layers["0"].weight_bits == 8

    def test_fp16_lstm_is_float_work(self) -> None:
        float_lstm = nn.Sequential(nn.LSTM(8, 16))
        float_report = flopmeter.profile(float_lstm, torch.randn(5, 1, 8))
        report = flopmeter.profile(self._quantized(nn.LSTM, torch.float16), torch.randn(5, 1, 8))
        assert (report.params, report.macs, report.flops) == (1_664, 7_680, float_report.flops)
        layer = report.compression.layers["0"]
        assert (layer.weight_bits, layer.act_bits) == (16, 32)
        assert layer.bytes_actual == 1_536 * 2 + 128 * 4  # fp16 weights + fp32 biases = 3,584

    @pytest.mark.parametrize(
        ("cls", "gates", "pointwise"), [(nn.LSTMCell, 4, 19), (nn.GRUCell, 3, 14), (nn.RNNCell, 1, 2)]
    )
    def test_int8_cells(self, cls: type[nn.Module], gates: int, pointwise: int) -> None:
        """The cells run quantized::quantized_*_cell_dynamic (had been unsupported, 0 MACs)."""
        import torch.ao.quantization as tq

        model = tq.quantize_dynamic(nn.Sequential(cls(8, 16)), {cls}, torch.qint8)
        report = flopmeter.profile(model, torch.randn(3, 8))
        assert not report.unsupported
        weights = gates * 16 * (8 + 16)  # LSTM 1,536; GRU 1,152; RNN 384
        assert report.params == weights + 2 * gates * 16  # + b_ih, b_hh
        assert report.macs == 3 * weights  # 3 rows
        assert report.flops == 3 * pointwise * 16  # the float gates only
        view = report.compression
        assert view.layers["0"].act_bits == 8
        # int8 weights + 2 per-tensor (scale, zero point) of 8 bytes each + fp32 biases
        assert view.bytes_actual == weights + 32 + 2 * gates * 16 * 4


class Tied(nn.Module):
    """An embedding whose weight the LM head shares (tied)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.head = nn.Embedding(10, 8), nn.Linear(8, 10, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(ids))


class TestTiedWeights:
    def test_pruned_tied_embedding_and_head(self) -> None:
        model = Tied()
        with torch.no_grad():
            model.emb.weight[:5] = 0  # 5 of the 10 rows (vocabulary entries)
        view = flopmeter.profile(model, torch.tensor([[1, 2, 3]]), compression=True).compression
        assert view.params == 80 and view.weight_params == 80  # counted once, at the embedding
        assert view.nonzero_params == 40
        head = view.layers["head"]
        assert head.macs_dense == 240  # 3 tokens * 8 * 10
        assert head.macs_effective == 120  # 3 tokens * 40 nonzeros
        assert head.flops_effective == 225  # 3 * 5 nonzero rows * (2*8 - 1)
        assert head.weight_params == 0 and head.bytes_actual == 0  # stored at the embedding
        assert head.representation == "tied (dense)"
        assert view.bops_relative == pytest.approx(0.5)  # 120 / 240

    def test_pruning_the_tied_head_masks_the_head_only(self) -> None:
        """prune on the head keeps the shared Parameter as head.weight_orig: the
        embedding reads it unmasked, the head through its own mask."""

        model = Tied()
        mask = torch.zeros(10, 8)
        mask[:, :2] = 1  # keep 2 of 8 inputs in every row: 20 nonzeros
        prune.custom_from_mask(model.head, "weight", mask)
        report = flopmeter.profile(model, torch.tensor([[1, 2, 3]]), compression=True)
        assert report.flops == 450  # 3 * 10 * (2*8 - 1); the mask multiply (80) is overhead
        assert report.overhead["aten.mul"].cost.flops == 80
        view = report.compression
        assert view.layers["head"].macs_effective == 60  # 3 tokens * 20
        assert view.layers["head"].flops_effective == 90  # 3 * 10 rows * (2*2 - 1)
        assert view.layers["emb"].weight_nonzero == 80  # the embedding reads the dense weight
        assert view.weight_params == 80  # stored once

    def test_functional_use_of_a_submodules_weight_counts_at_the_submodule(self) -> None:
        """F.linear(x, self.emb.weight) in a module that does not hold the weight: the
        matmul counts at the submodule whose weight has the operand's shape (it had
        counted as dense at the caller: 240)."""

        class Functional(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.emb = nn.Embedding(10, 8)

            def forward(self, ids: torch.Tensor) -> torch.Tensor:
                return nn.functional.linear(self.emb(ids), self.emb.weight)

        model = Functional()
        with torch.no_grad():
            model.emb.weight[:5] = 0
        report = flopmeter.profile(model, torch.tensor([[1, 2, 3]]), compression=True)
        view = report.compression
        assert view.layers["emb"].macs_dense == 240  # 3 * 8 * 10
        assert view.layers["emb"].macs_effective == 120  # 3 * 40 nonzeros
        assert view.layers["emb"].flops_effective == 225  # 3 * 5 rows * (2*8 - 1)
        assert view.flops_effective == 225  # not counted again at the caller
        assert flopmeter.micronet(view, freebie=False).ops == pytest.approx(225)

    def test_swin_style_attention_counts_at_its_linears(self) -> None:
        """torchvision's ShiftedWindowAttention runs F.linear on self.qkv.weight and
        self.proj.weight: pruning them had not lowered the effective MACs."""

        class Attention(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.qkv, self.proj = nn.Linear(8, 24), nn.Linear(8, 8)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                q, k, v = nn.functional.linear(x, self.qkv.weight, self.qkv.bias).chunk(3, dim=-1)
                attention = (q @ k.transpose(-2, -1)).softmax(-1) @ v
                return nn.functional.linear(attention, self.proj.weight, self.proj.bias)

        model = Attention()
        prune.custom_from_mask(model.qkv, "weight", (torch.arange(8) < 4).float().expand(24, 8))
        view = flopmeter.profile(model, torch.randn(1, 5, 8), compression=True).compression
        assert view.layers["qkv"].macs_dense == 960  # 5 tokens * 8 * 24
        assert view.layers["qkv"].macs_effective == 480  # half of every row kept
        assert view.layers["proj"].macs_effective == 320  # 5 * 8 * 8, dense
        assert view.layers[""].macs_effective == 400  # the attention: 2 * 5*5*8, activations only

    def test_one_parameter_in_two_linears(self) -> None:
        a, b = nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False)
        b.weight = a.weight
        with torch.no_grad():
            a.weight[:, :4] = 0
        view = flopmeter.profile(nn.Sequential(a, b), torch.randn(2, 8), compression=True).compression
        assert view.macs_dense == 256  # 2 layers * 2 rows * 64
        assert view.macs_effective == 128  # 2 layers * 2 rows * 32 nonzeros
        assert view.weight_params == 64 and view.sparsity == pytest.approx(0.5)
        assert view.bytes_actual == 256  # one storage: 64 * 4


class TestBytesAtTheirDtype:
    def test_half_linear_bias(self) -> None:
        view = flopmeter.profile(nn.Linear(16, 8).half(), torch.randn(2, 16).half()).compression
        assert view.bytes_actual == 272  # (128 weights + 8 bias) * 2 bytes, not 8 * 4 for the bias
        assert view.bytes_ideal == 272

    def test_bf16_layernorm_outside_the_layers(self) -> None:
        model = nn.Sequential(nn.Linear(16, 8), nn.LayerNorm(8)).bfloat16()
        report = flopmeter.profile(model, torch.randn(2, 16).bfloat16())
        view = report.compression
        assert view.bytes_actual == 304  # (128 + 8 + 8 + 8) * 2
        assert view.bytes_ideal == 304
        assert view.by_module()[""].bytes_ideal == 304
        assert view.by_module()["1"].bytes_ideal == 32  # LayerNorm: 16 params * 2 bytes

    def test_lstm_biases_are_stored_bytes(self) -> None:
        lstm = nn.LSTM(8, 16)
        prune.l1_unstructured(lstm, "weight_ih_l0", 0.5)
        view = flopmeter.profile(lstm, torch.randn(5, 1, 8)).compression
        # weight_ih_orig 512*4 + its mask 512*4 + weight_hh 1,024*4 + biases 2*64*4
        assert view.bytes_actual == 2_048 + 2_048 + 4_096 + 512
        # ideal: 256 kept values*4 + 512/8 bitmask + 1,024*4 dense + 512 biases
        assert view.bytes_ideal == 1_024 + 64 + 4_096 + 512


class TestTransposedConvolution:
    """ConvTranspose2d(4, 6, 3, stride=2), x 1x4x5x5: weight (4, 6, 3, 3), N = 216; output
    1x6x11x11 = 726 elements; MACs = 25 input positions * 216 = 5,400; FLOPs (seed)
    2*5,400 - 726 = 10,074 (an output's first term needs no add)."""

    @staticmethod
    def _view(zero: str) -> flopmeter.CompressionView:
        torch.manual_seed(0)
        conv = nn.ConvTranspose2d(4, 6, 3, stride=2, bias=False)
        with torch.no_grad():
            if zero == "input channel":
                conv.weight[0] = 0
            else:
                conv.weight[:, 0] = 0
        report = flopmeter.profile(conv, torch.randn(1, 4, 5, 5), compression=True)
        assert report.flops == 10_074
        return report.compression

    def test_zero_input_channel(self) -> None:
        view = self._view("input channel")
        assert view.macs_effective == 4_050  # 162 nonzeros * 25 uses
        assert view.flops_effective == 7_374  # 2*4,050 - 726: every output still gets a term

    def test_zero_output_channel(self) -> None:
        view = self._view("output channel")
        assert view.macs_effective == 4_500  # 180 nonzeros * 25
        assert view.flops_effective == 8_395  # 2*4,500 - 5*121 outputs of the 5 live channels


def test_all_zero_weight_is_no_n_m_pattern() -> None:
    layer = nn.Linear(8, 4)
    with torch.no_grad():
        layer.weight.zero_()
    view = flopmeter.profile(layer, torch.randn(3, 8), compression=True).compression
    assert view.layers[""].structure == "channel"  # every output row is zero; it read "1:4"
    assert view.macs_effective == 0
    assert view.flops_effective == 12  # the 3 * 4 bias adds only


@pytest.mark.parametrize(
    "build",
    [
        lambda: (nn.TransformerEncoderLayer(16, 2, 32, batch_first=True).eval(), torch.randn(2, 5, 16)),
        lambda: (
            nn.MultiheadAttention(16, 2, kdim=8, vdim=8, batch_first=True),
            (torch.randn(1, 3, 16), torch.randn(1, 5, 8), torch.randn(1, 5, 8)),
        ),
        lambda: (nn.LSTM(8, 16, proj_size=4, num_layers=2), torch.randn(5, 1, 8)),
        lambda: (
            nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval().half(),
            torch.randn(1, 3, 8, 8).half(),
        ),
    ],
    ids=["encoder_layer", "mha_kdim", "lstm_proj", "half_conv_bn"],
)
def test_dense_bytes_actual_are_the_parameter_bytes(build) -> None:  # type: ignore[no-untyped-def]
    """A dense, unquantized model stores exactly its parameters: in_proj_bias, LSTM
    biases and fp16 norms had been missing or at 4 bytes (encoder layer: 1,536 B short
    of 267,776 at 2 layers of 64; half resnet18: 21,200 B over)."""
    model, x = build()
    report = flopmeter.profile(model, x)
    view = report.compression
    assert view.bytes_actual == report.param_bytes
    assert view.bytes_ideal == report.param_bytes
    assert view.by_module()[""].bytes_ideal == report.param_bytes


def test_torchao_dynamic_bias_add_is_float_work_not_integer() -> None:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    torch.manual_seed(0)
    layer = nn.Linear(64, 32)
    with torch.no_grad():  # |w| in [0.5, 1]: no weight rounds to its zero point
        signs = torch.where(torch.rand_like(layer.weight) < 0.5, -1.0, 1.0)
        layer.weight.copy_(signs * (0.5 + 0.5 * torch.rand_like(layer.weight)))
    model = nn.Sequential(layer)
    quantize_(model, Int8DynamicActivationInt8WeightConfig())
    view = flopmeter.profile(model, torch.randn(4, 64)).compression
    found = view.layers["0"]
    assert found.int_ops_effective == 16_256  # _int_mm: 4 * 32 * (2*64 - 1), integer
    assert found.flops_effective == 128  # the float bias add torchao runs after it: 4 * 32


@pytest.mark.parametrize(
    ("four_bit", "bits", "stored"),
    [
        (False, 8, 80 + 10 * 8),  # 80 one-byte values + 10 rows * (fp32 scale + fp32 zero point)
        (True, 4, 40 + 10 * 8),  # 80 half-byte values + the same per-row qparams
    ],
)
def test_quantized_embedding_bag_is_read(four_bit: bool, bits: int, stored: int) -> None:
    """torch.ao's quantized embeddings had been 'unrecognised', 0 bytes, sparsity unknown."""
    import torch.ao.quantization as tq

    torch.manual_seed(0)
    model = nn.Sequential(nn.EmbeddingBag(10, 8, mode="sum"))
    model.qconfig = (
        tq.float_qparams_weight_only_qconfig_4bit if four_bit else tq.float_qparams_weight_only_qconfig
    )
    quantized = tq.convert(tq.prepare(model), inplace=False)
    view = flopmeter.profile(quantized, torch.tensor([[1, 2, 3]])).compression
    layer = view.layers["0"]
    assert not view.unrecognised
    assert (layer.weight_params, layer.weight_bits, layer.n_scales) == (80, bits, 10)
    assert layer.weight_nonzero == 80 and view.sparsity == 0.0  # random rows: no value dequantizes to 0
    assert view.bytes_actual == stored and view.bytes_ideal == stored


@pytest.mark.parametrize(
    "build",
    [
        lambda: (nn.LSTM(8, 16), torch.randn(5, 1, 8)),
        lambda: (nn.GRU(8, 16, num_layers=2, bidirectional=True), torch.randn(5, 1, 8)),
        lambda: (
            nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ConvTranspose2d(8, 4, 3, stride=2)),
            torch.randn(1, 3, 6, 6),
        ),
    ],
    ids=["lstm", "gru", "conv_relu_convtranspose"],
)
def test_micronet_ops_of_a_dense_fp32_model_are_its_flops(build) -> None:  # type: ignore[no-untyped-def]
    """32-bit multiplies and adds each count 1, a ReLU 1: a dense float32 model's
    MicroNet ops are its FLOPs per sample. An LSTM's gates and second bias (inside the
    contraction op) had been left out: 2,944 instead of 3,376 for LSTM(8, 16)."""
    model, x = build()
    report = flopmeter.profile(model, x, compression=True)
    score = flopmeter.micronet(report.compression, freebie=False)
    assert score.ops == pytest.approx(report.flops / report.batch_size)


def test_quantized_recurrent_ops_pay_their_launch_per_step() -> None:
    """The speedup estimate charges a recurrent layer's fixed cost once per step (as it
    does the float LSTM's): aten.quantized_lstm had paid it once, so int8 vs float
    LSTM(16, 16) over 5 steps read a 3.07x total on a100 (92 us vs 30 us), from launch
    counting alone."""
    from flopmeter.cost import Cost
    from flopmeter.report import OpRecord
    from flopmeter.roofline import launches

    lstm = OpRecord(
        "aten.quantized_lstm", "l", "forward", "float32", Cost(), ((5, 1, 16), (1, 1, 16), (1, 1, 16))
    )
    assert launches(lstm) == 5  # T=5 steps * 1 layer-direction
    cell = OpRecord(
        "quantized.quantized_gru_cell_dynamic", "c", "forward", "float32", Cost(), ((3, 8), (3, 16))
    )
    assert launches(cell) == 1  # one step


@pytest.mark.parametrize(
    ("bits", "scales", "ideal"),
    [
        ("w4a16g32", 200, 2_500 + 200 * 3 + 200),  # ceil(100/32) = 4 groups per row * 50 rows (was 156)
        ("w4a16g1024", 50, 2_500 + 50 * 3 + 200),  # a group longer than a row: 1 per row (was 4)
        ("w4a16g100", 50, 2_500 + 50 * 3 + 200),
    ],
)
def test_assumed_groups_stay_within_a_row(bits: str, scales: int, ideal: int) -> None:
    """Linear(100, 50): groups run along a row's K = 100 inputs, never across rows.
    bytes ideal = 5,000 * 4 bits / 8 + scales * (fp16 scale + int8 zero point) + 50 fp32 biases."""
    report = flopmeter.profile(nn.Linear(100, 50), torch.randn(1, 100))
    layer = report.compression.assume(bits=bits).layers[""]
    assert layer.n_scales == scales
    assert layer.bytes_ideal == ideal


def test_conv_two_four_along_input_channels_is_recognised() -> None:
    """NVIDIA ASP prunes a conv 2:4 along C_in at each kernel position ((C_out, kh, kw,
    C_in) order); read along (C_in, kh, kw) it had been 'unstructured'."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 8, 3, padding=1, bias=False)
    groups = conv.weight.detach().permute(0, 2, 3, 1).reshape(-1, 4)
    keep = torch.zeros_like(groups).scatter_(1, groups.abs().topk(2, dim=1).indices, 1)
    mask = keep.reshape(8, 3, 3, 16).permute(0, 3, 1, 2).contiguous()
    prune.custom_from_mask(conv, "weight", mask)
    view = flopmeter.profile(conv, torch.randn(1, 16, 8, 8)).compression
    layer = view.layers[""]
    assert layer.structure == "2:4"
    assert layer.weight_nonzero == 576  # 1,152 / 2
    assert layer.macs_effective == 36_864  # 576 * 64 output positions
    assert layer.weight_bytes_ideal == 576 * 4 + 1_152 // 8  # values + 2 bits per kept value


def test_parametrized_weight_bytes_counted_once() -> None:
    """A parametrization keeps the weight as ``parametrizations.weight.original`` (a
    child's parameter): it had been counted at the layer and again at 4 bytes as a
    parameter outside the layers (1,056 bytes for 544)."""
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import weight_norm

    class Mask(nn.Module):
        def __init__(self, mask: torch.Tensor) -> None:
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            return weight * self.mask

    layer = nn.Linear(16, 8)
    mask = torch.ones(8, 16)
    mask[:, ::2] = 0
    parametrize.register_parametrization(layer, "weight", Mask(mask))
    view = flopmeter.profile(layer, torch.randn(2, 16)).compression
    assert view.bytes_actual == 128 * 4 + 8 * 4  # original + bias = 544
    assert view.bytes_ideal == 64 * 4 + 64 * 2 // 8 + 8 * 4  # 2:4 (mask keeps odd inputs): 304
    layer_view = view.layers[""]
    assert layer_view.params == 136  # the original (a child's parameter) + bias: it read 8
    assert layer_view.nonzero_params == 72  # 64 kept + 8 bias: it read 8 - 128 + 64 = -56
    dense = nn.Linear(16, 8)
    row = next(c for c in flopmeter.compare(dense, layer, torch.randn(2, 16)).layers if c.name == "")
    assert row.params_ratio == 1.0  # 136 / 136 (had been 8 / 136)
    assert row.nonzero_ratio == pytest.approx(72 / 136)  # had been -0.412
    normed = flopmeter.profile(weight_norm(nn.Linear(16, 8)), torch.randn(2, 16))
    assert normed.compression.bytes_actual == normed.param_bytes == (8 + 128 + 8) * 4  # g, v, bias


def test_fp16_bias_buffer_of_a_gptq_style_linear() -> None:
    """A GPTQ-style QuantLinear keeps its bias as an fp16 buffer: 2 bytes each (had been 4)."""

    class QuantLinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bits, self.group_size, self.infeatures, self.outfeatures = 4, 32, 64, 16
            self.register_buffer("qweight", torch.zeros(64 // 8, 16, dtype=torch.int32))
            self.register_buffer("scales", torch.ones(64 // 32, 16, dtype=torch.float16))
            self.register_buffer("qzeros", torch.zeros(64 // 32, 16 // 8, dtype=torch.int32))
            self.register_buffer("bias", torch.zeros(16, dtype=torch.float16))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ torch.ones(64, 16, dtype=x.dtype) + self.bias

    view = flopmeter.profile(QuantLinear(), torch.randn(2, 64).half()).compression
    layer = view.layers[""]
    # qweight 8*16 int32 = 512 + scales 2*16 fp16 = 64 + qzeros 2*2 int32 = 16 + bias 16 fp16 = 32
    assert layer.bytes_actual == 512 + 64 + 16 + 32


def test_dense_effective_macs_equal_dense_when_uses_are_not_whole() -> None:
    """A module whose MACs are not a multiple of its weight elements (torchvision's
    ShiftedWindowAttention: a 169 x heads bias table beside its attention matmuls)
    read macs_effective = floor(MACs / N) * N: 145,108,977 for 145,108,992 at swin_t's
    first block, although every weight is nonzero."""

    class TableAndMatmul(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(torch.randn(7, 3))  # N = 21 weights, not contracted

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ x.transpose(0, 1) + self.table.sum()

    view = flopmeter.profile(TableAndMatmul(), torch.randn(2, 4)).compression
    layer = view.layers[""]
    assert layer.macs_dense == 16  # (2 x 4) @ (4 x 2); 16 / 21 is not whole
    assert layer.macs_effective == 16  # had been (16 // 21) * 21 = 0
