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
from wrapped import Fn


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

    def test_causal_backward_keys_no_query_sees(self):
        # Top-left causal, L 1 < S 5, E = Ev = 64: query 0 sees key 0 only (1 score); keys
        # 1..4 are seen by no query, so their dV and dK dot products are empty (0, not -1 each).
        # dV 64 dots of 1 = 64; dP 1 * (2*64 - 1) = 127; D 127; dS 3; dQ 64 dots of 1 = 64;
        # dK 64: 449 (was -63: dV and dK each -4 * 64 for the 4 unseen keys)
        assert attention.attention_backward(1, 1, 5, 64, 64, causal_needed=True).flops == 449
        # L 2, S 8, E = Ev = 4: rows keep 1 and 2 keys (3 scores); key 0 seen twice, key 1 once.
        # dV 4 * ((2*2-1) + (2*1-1)) = 16; dP 3 * 7 = 21; D 2 * 7 = 14; dS 9;
        # dQ 4 * (1 + 3) = 16; dK 16: 92 (was 44)
        assert attention.attention_backward(1, 2, 8, 4, 4, causal_needed=True).flops == 92
        # a training step of is_causal SDPA, counted as needed: the same 449
        q = torch.randn(1, 1, 1, 64, requires_grad=True)
        k, v = torch.randn(1, 1, 5, 64, requires_grad=True), torch.randn(1, 1, 5, 64, requires_grad=True)
        causal = Fn(lambda *qkv: F.scaled_dot_product_attention(*qkv, is_causal=True))
        report = flopmeter.profile(causal, (q, k, v), batch_size=1, backward=True, causal="needed")
        assert op_flops(report, "aten._scaled_dot_product_flash_attention_for_cpu_backward") == 449


# --------------------------------------------------------------------------- bincount
def test_bincount_adds_each_weight_once():
    values, weights = torch.tensor([0, 1, 1, 3]), torch.rand(4)
    # integers binned as they are: no floating-point work
    assert flopmeter.profile(Fn(torch.bincount), (values,)).flops == 0
    # each of the 4 weights added into its bin: 4 adds (was 3 * 4 = 12, histc's binning)
    assert flopmeter.profile(Fn(torch.bincount), (values, weights)).flops == 4
    # histc keeps its binning: (x - min) * scale, floor: 3 * 12 = 36, and with its default
    # min = max = 0 the scan for the data's min and max first, 2 * (12 - 1) = 22 (probe 13): 58
    assert flopmeter.profile(Fn(lambda x: torch.histc(x, 5)), (torch.randn(3, 4),)).flops == 58


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


# -------------------------------------- hand counts of layers no earlier test counted
def counted(module: nn.Module, *inputs: torch.Tensor, **kwargs) -> flopmeter.Report:  # type: ignore[no-untyped-def]
    report = flopmeter.profile(module, inputs, **kwargs)
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    return report


class TestResamplingAndPoolingLayers:
    def test_fold_and_unfold(self):
        # Unfold (im2col) copies: 0. Fold(8x8, k 3, pad 1) of 2x27x64 -> 2x3x8x8: per dimension
        # 8 blocks x 3 offsets = 24 hits, 2 in the padding: 22, on 8 cells; per plane
        # 22*22 - 8*8 = 420 adds, 6 planes: 2,520
        assert counted(nn.Unfold(3, padding=1), torch.randn(2, 3, 8, 8)).flops == 0
        assert counted(nn.Fold((8, 8), 3, padding=1), torch.randn(2, 27, 64)).flops == 2520

    def test_shuffles_move_data_only(self):
        for layer, x in (
            (nn.PixelShuffle(2), torch.randn(2, 12, 4, 4)),
            (nn.PixelUnshuffle(2), torch.randn(2, 3, 4, 4)),
            (nn.ChannelShuffle(3), torch.randn(2, 6, 4, 4)),
        ):
            report = counted(layer, x)
            assert report.flops == 0 and report.bytes_written == x.numel() * 4  # every element moved

    def test_lp_pool(self):
        # LPPool1d(2, 3) on 2x3x9 -> 18 outputs: x.pow(2) 54, avg_pool 18 * 3 = 54, then per output
        # sign, abs, relu, sign*relu, * kernel size, pow(1/2): 6 * 18 = 108 -> 216
        assert counted(nn.LPPool1d(2, 3), torch.randn(2, 3, 9)).flops == 216
        # LPPool2d(2, 2) on 2x3x8x8 (384) -> 96 outputs: 384 + 96 * 4 + 6 * 96 = 1,344
        assert counted(nn.LPPool2d(2, 2), torch.randn(2, 3, 8, 8)).flops == 1344
        # LPPool3d(2, 2) on 2x3x4x4x4 (384) -> 48 outputs: 384 + 48 * 8 + 6 * 48 = 1,056
        assert counted(nn.LPPool3d(2, 2), torch.randn(2, 3, 4, 4, 4)).flops == 1056

    def test_fractional_max_pool(self):
        # outputs * (K - 1): 2*3*5*5 = 150 outputs of 2x2 windows: 450; the sample draw is free
        assert counted(nn.FractionalMaxPool2d(2, output_size=(5, 5)), torch.randn(2, 3, 8, 8)).flops == 450
        # 2*3*3*3*3 = 162 outputs of 2x2x2: 162 * 7 = 1,134
        assert counted(nn.FractionalMaxPool3d(2, output_size=3), torch.randn(2, 3, 6, 6, 6)).flops == 1134

    def test_adaptive_pools_in_1d_and_3d(self):
        # 5 -> 2: windows [0, 3), [2, 5); 7 -> 3: [0, 3), [2, 5), [4, 7): every window 3x3x3 = 27;
        # 6 planes x 18 outputs: max 108 * 26 = 2,808, avg 108 * 27 = 2,916
        x = torch.randn(2, 3, 5, 7, 7)
        assert counted(nn.AdaptiveMaxPool3d((2, 3, 3)), x).flops == 2808
        assert counted(nn.AdaptiveAvgPool3d((2, 3, 3)), x).flops == 2916
        # 7 -> 3 in 1-d: windows of 3, 6 planes x 3 outputs x 2 comparisons = 36
        assert counted(nn.AdaptiveMaxPool1d(3), torch.randn(2, 3, 7)).flops == 36

    def test_interpolate_modes(self):
        x = torch.randn(1, 2, 4, 6)
        up = lambda **kw: Fn(lambda a: F.interpolate(a, **kw))  # noqa: E731
        # nearest and nearest-exact pick cells: 0
        assert counted(up(scale_factor=2, mode="nearest-exact"), x).flops == 0
        assert counted(up(scale_factor=2, mode="nearest-exact"), torch.randn(1, 2, 2, 3, 4)).flops == 0
        # bicubic to 8x12: 192 outputs * 35 = 6,720
        assert counted(up(scale_factor=2, mode="bicubic"), x).flops == 6720
        # area to (3, 4): adaptive average windows 2 (rows [0,2) [1,3) [2,4)) x 2 (cols [0,2)
        # [1,3) [3,5) [4,6)): 24 outputs * 4 = 96
        assert counted(up(size=(3, 4), mode="area"), x).flops == 96
        # trilinear x2 of 1x2x2x3x4 -> 384 outputs * 21 = 8,064
        assert counted(up(scale_factor=2, mode="trilinear"), torch.randn(1, 2, 2, 3, 4)).flops == 8064

    def test_antialiased_downsampling(self):
        # bilinear, antialias, (4, 6) -> (2, 3), scale 2, support 1 * 2 = 2: width pass taps
        # 3, 4, 3 (center 1, 3, 5; cells [int(c - 1.5), int(c + 2.5)) clipped to [0, 6)):
        # 5 + 7 + 5 = 17 per row, 8 rows = 136; height pass taps 3, 3: 10 per column,
        # 6 columns = 60 -> 196
        x = torch.randn(1, 2, 4, 6)
        bilinear = Fn(lambda a: F.interpolate(a, size=(2, 3), mode="bilinear", antialias=True))
        assert counted(bilinear, x).flops == 196
        # bicubic, support 2 * 2 = 4: width taps 5, 6, 5: 9 + 11 + 9 = 29 * 8 rows = 232;
        # height taps 4, 4: 14 * 6 columns = 84 -> 316
        bicubic = Fn(lambda a: F.interpolate(a, size=(2, 3), mode="bicubic", antialias=True))
        assert counted(bicubic, x).flops == 316

    def test_grid_sample_3d(self):
        # 1x2x3x4x5 input, grid 1x2x3x4x3: 2 channels x 24 points = 48 outputs * 21 (trilinear)
        # = 1,008, + 24 points x 3 coordinates x 3 to un-normalise = 216 -> 1,224; nearest 216
        x, grid = torch.randn(1, 2, 3, 4, 5), torch.rand(1, 2, 3, 4, 3) * 2 - 1
        sample = lambda mode: Fn(lambda a, g: F.grid_sample(a, g, mode=mode, align_corners=False))  # noqa: E731
        assert counted(sample("bilinear"), x, grid).flops == 1224
        assert counted(sample("nearest"), x, grid).flops == 216


class TestTransposedConvolution:
    def test_conv_transpose3d_groups_dilation_output_padding(self):
        layer = nn.ConvTranspose3d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=2)
        # MACs = N * C_in * in cells * C_out/groups * K = 2 * 4 * 27 * 3 * 27 = 17,496;
        # with bias 2 * MACs = 34,992
        report = counted(layer, torch.randn(2, 4, 3, 3, 3))
        assert (report.macs, report.flops) == (17496, 34992)

    def test_conv_transpose_outputs_no_product_reaches(self):
        # ConvTranspose1d(1, 1, 1, stride 3) on 4 cells, output_padding 2: outputs 0, 3, 6, 9 of
        # 12 get a product, the rest are zero; 4 MACs, FLOPs 2 * 4 - 4 reached = 4
        layer = nn.ConvTranspose1d(1, 1, 1, stride=3, output_padding=2, bias=False)
        report = counted(layer, torch.randn(1, 1, 4))
        assert (report.macs, report.flops) == (4, 4)


class TestNormsAndSimilarities:
    def test_instance_norm_1d_and_3d(self):
        # 2x4x5: 8 planes of 5, statistics 8 * (5*5 + 2) = 216; affine + 2 * 40 = 296
        assert counted(nn.InstanceNorm1d(4), torch.randn(2, 4, 5)).flops == 216
        assert counted(nn.InstanceNorm1d(4, affine=True), torch.randn(2, 4, 5)).flops == 296
        # 2x4x2x3x3: 8 planes of 18: 8 * (5*18 + 2) = 736
        assert counted(nn.InstanceNorm3d(4), torch.randn(2, 4, 2, 3, 3)).flops == 736

    def test_local_response_norm(self):
        # 72 elements, size 3: x*x 72, avg over 3 channels (padded) 72 * 3 = 216,
        # * alpha, + k, ** beta 3 * 72, x / div 72: 72 + 216 + 216 + 72 = 576
        assert counted(nn.LocalResponseNorm(3), torch.randn(2, 4, 3, 3)).flops == 576

    def test_cosine_similarity_and_pairwise_distance(self):
        # dim 1 of 2x8x3: 6 vectors of 8 per input: norms 2 * 8 * 6 = 96 each (192), clamp
        # 6 each (12), x / norm 48 each (96), product 48, sum 6 * 7 = 42: 390
        a, b = torch.randn(2, 8, 3), torch.randn(2, 8, 3)
        assert counted(nn.CosineSimilarity(dim=1), a, b).flops == 390
        # 4 pairs of 8: x - y 32, + eps 32, 2-norm 2 * 8 per pair 64: 128
        assert counted(nn.PairwiseDistance(), torch.randn(4, 8), torch.randn(4, 8)).flops == 128

    def test_softmax2d(self):
        # softmax over 4 channels at 2 * 9 positions: 18 * (5*4 - 2) = 324
        assert counted(nn.Softmax2d(), torch.randn(2, 4, 3, 3)).flops == 324


class TestSequenceLayers:
    def test_ctc_loss(self):
        # T 6, 2 sequences of S 3 labels (7 states): (6 - 1) * 7 * 13 + 9 = 464 each, 928;
        # mean: each loss / its target length (2), then the mean of 2 (2): 932
        log_probs = torch.randn(6, 2, 5).log_softmax(2)
        targets, lengths = torch.randint(1, 5, (2, 3)), (torch.full((2,), 6), torch.full((2,), 3))
        assert counted(nn.CTCLoss(reduction="none"), log_probs, targets, *lengths).flops == 928
        assert counted(nn.CTCLoss(), log_probs, targets, *lengths).flops == 932

    def test_transformer_decoder_layer(self):
        # d 8, 2 heads (E 4), feed-forward 16, 3 target tokens, 4 memory tokens, batch 1
        # self-attention: q, k, v 3 * 3*8*8 = 576 MACs (1,152 FLOPs with biases); per head
        #   QK 9 * 7 = 63, scale 9, softmax 3 * 13 = 39, AV 12 * 5 = 60: 171, 2 heads 342;
        #   out 192 MACs (384): 1,878 FLOPs, 912 MACs
        # cross-attention: q 192 MACs (384), k, v 2 * 4*8*8 = 512 (1,024); per head QK 12 * 7
        #   = 84, scale 12, softmax 3 * 18 = 54, AV 12 * 7 = 84: 234, 468; out 192 (384):
        #   2,260 FLOPs, 1,088 MACs
        # feed-forward: 2 * 3*8*16 = 768 MACs (1,536), relu 48; 3 LayerNorms 3 * (3 * 42 + 48)
        #   = 522; 3 residual adds 72
        layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        report = counted(layer, torch.randn(1, 3, 8), torch.randn(1, 4, 8))
        assert report.macs == 912 + 1088 + 768  # 2,768
        assert report.flops == 1878 + 2260 + 1536 + 48 + 522 + 72  # 6,316
        two = counted(nn.TransformerDecoder(layer, 2), torch.randn(1, 3, 8), torch.randn(1, 4, 8))
        assert (two.macs, two.flops) == (2 * 2768, 2 * 6316)

    def test_projected_bidirectional_stacked_lstm(self):
        # LSTM(4, 6, 2 layers, bidirectional, proj_size 3), 10 tokens per direction;
        # per token MACs 4H(I+P) + PH, FLOPs 8H(I+P) + 19H + P(2H-1):
        # layer 1 (I 4): 168 + 18 = 186 MACs, 336 + 114 + 33 = 483 FLOPs
        # layer 2 (I 2P = 6): 216 + 18 = 234 MACs, 432 + 114 + 33 = 579 FLOPs
        lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
        report = counted(lstm, torch.randn(5, 2, 4))
        assert (report.macs, report.flops) == (20 * (186 + 234), 20 * (483 + 579))  # (8,400, 21,240)

    def test_packed_sequences_count_real_tokens(self):
        from torch.nn.utils.rnn import pack_padded_sequence

        class Packed(nn.Module):
            def __init__(self, rnn: nn.Module) -> None:
                super().__init__()
                self.rnn = rnn

            def forward(self, x):  # type: ignore[no-untyped-def]
                return self.rnn(pack_padded_sequence(x, torch.tensor([5, 3])))[0].data

        # lengths 5 and 3: 8 tokens (of 10 padded). GRU(4, 6) bidirectional: per token and
        # direction 3H(I+H) = 180 MACs, 6H(I+H) + 14H = 444 FLOPs; 16 token-directions
        gru = counted(Packed(nn.GRU(4, 6, bidirectional=True)), torch.randn(5, 2, 4))
        assert (gru.macs, gru.flops) == (16 * 180, 16 * 444)  # (2,880, 7,104)
        # projected 2-layer bidirectional LSTM as above, on 8 tokens: 16 * (186 + 234) MACs
        lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
        report = counted(Packed(lstm), torch.randn(5, 2, 4))
        assert (report.macs, report.flops) == (16 * 420, 16 * 1062)  # (6,720, 16,992)


class TestLessTravelledOps:
    def test_linalg_is_never_a_silent_zero(self):
        # reported as unsupported until probe 14, counted since (tests/test_linalg_probe14.py)
        a = torch.randn(3, 4, 4)
        a = a @ a.transpose(-1, -2) + 4 * torch.eye(4)
        for fn, op in (
            (torch.linalg.qr, "aten.linalg_qr"),
            (torch.linalg.svdvals, "aten._linalg_svd"),
            (torch.linalg.eigh, "aten._linalg_eigh"),
            (torch.linalg.matrix_exp, "aten.linalg_matrix_exp"),
        ):
            report = flopmeter.profile(Fn(fn), (a,))
            assert report.unsupported_ops() == {}, (fn, report.unsupported_ops())
            assert report.by_operator()[op].calls == 1 and report.by_operator()[op].cost.flops > 0

    def test_fft_ops(self):
        # fft of a real 2x8: r2c of n 8, 2.5 * 8 * 3 = 60 per row: 120
        assert counted(Fn(torch.fft.fft), torch.randn(2, 8)).flops == 120
        # fft2 of 3x4x8 real: copied to complex, 5 * 32 * log2 32 = 800 per batch: 2,400
        assert counted(Fn(torch.fft.fft2), torch.randn(3, 4, 8)).flops == 2400
        # ihfft of 2x8: r2c 120 + 1/n scale of 16 real values: 136
        assert counted(Fn(torch.fft.ihfft), torch.randn(2, 8)).flops == 136
        # stft(2x64, n_fft 16, hop 4, centre padding to 80): 17 frames x 2 = 34, window 34 * 16
        # = 544, r2c 2.5 * 16 * 4 = 160 per frame, 5,440; hann_window(16) 4 * 16 = 64: 6,048
        stft = Fn(lambda s: torch.stft(s, 16, window=torch.hann_window(16), return_complex=True))
        assert counted(stft, torch.randn(2, 64)).flops == 6048

    def test_integer_and_boolean_work_is_not_flops(self):
        i8, mask = torch.randint(-5, 5, (3, 4), dtype=torch.int8), torch.rand(3, 4) > 0.5
        assert counted(Fn(lambda a: a.cumsum(0)), i8).flops == 0
        assert counted(Fn(lambda a: a.sort(1).values), i8).flops == 0
        assert counted(Fn(lambda m: (m & m).sum()), mask).flops == 0
        # where on floats: 1 per output, 12; on integers 0
        assert counted(Fn(lambda m, x: torch.where(m, x, 0.0)), mask, torch.randn(3, 4)).flops == 12
        assert counted(Fn(lambda m, x: torch.where(m, x, 0)), mask, torch.arange(12).view(3, 4)).flops == 0

    def test_sort_topk_and_scatter_reduce(self):
        x = torch.randn(3, 5)
        # 3 rows of 5: 5 * ceil(log2 5) = 15 each, 45; topk counted as the sort
        assert counted(Fn(lambda a: a.sort(1).values), x).flops == 45
        assert counted(Fn(lambda a: a.topk(2).values), x).flops == 45
        index = torch.tensor([0, 1, 0, 2]).view(4, 1).expand(4, 4)
        for reduce in ("sum", "prod", "mean", "amax", "amin"):  # 1 per source element: 16
            reduced = Fn(lambda a, s, r=reduce: a.scatter_reduce(0, index, s, reduce=r))
            assert counted(reduced, torch.randn(3, 4), torch.randn(4, 4)).flops == 16

    def test_complex_convolution_is_three_real_ones(self):
        # Conv1d(2, 3, 3) on complex 1x2x6: 12 outputs x 6 terms = 72 complex MACs, run as 3
        # real convolutions: 216 MACs
        layer = nn.Conv1d(2, 3, 3).to(torch.complex64)
        assert counted(layer, torch.randn(1, 2, 6, dtype=torch.complex64)).macs == 216


# ------------------------------------------------------------------- odd inputs
ODD_LAYERS = [
    (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, output_padding=1), (2, 4, 5, 5)),
    (lambda: nn.LPPool2d(2, 2), (2, 4, 6, 6)),
    (lambda: nn.GroupNorm(2, 4), (2, 4, 6, 6)),
    (lambda: nn.InstanceNorm2d(4, affine=True), (2, 4, 6, 6)),
    (lambda: nn.LocalResponseNorm(3), (2, 4, 6, 6)),
    (lambda: nn.AdaptiveMaxPool2d((4, 4)), (2, 4, 6, 6)),
    (lambda: nn.Upsample(size=(3, 4), mode="bicubic"), (2, 4, 6, 6)),
    (lambda: nn.GRU(6, 5, batch_first=True, bidirectional=True), (2, 4, 6)),
    (lambda: nn.LSTM(6, 5, batch_first=True, proj_size=3), (2, 4, 6)),
]


def test_odd_layouts_dtypes_and_modes_count_as_float32():
    """channels_last, a non-contiguous input, half and bfloat16, inference_mode: the same
    counts as the plain float32 call (probe 12 found them equal on 30 layers)."""
    for make, shape in ODD_LAYERS:
        layer = make()
        plain = flopmeter.profile(layer, torch.randn(*shape))
        expected = (plain.flops, plain.macs)
        variants = [torch.randn(*shape[:-1], 2 * shape[-1])[..., ::2]]  # every other column
        if len(shape) == 4:
            variants.append(torch.randn(*shape).to(memory_format=torch.channels_last))
        for x in variants:
            report = flopmeter.profile(layer, x)
            assert (report.flops, report.macs) == expected, (layer, x.stride())
        for dtype in (torch.float16, torch.bfloat16):
            report = flopmeter.profile(make().to(dtype), torch.randn(*shape, dtype=dtype))
            assert (report.flops, report.macs) == expected, (layer, dtype)
        with torch.inference_mode():
            report = flopmeter.profile(layer, torch.randn(*shape))
        assert (report.flops, report.macs) == expected, (layer, "inference_mode")


def test_an_empty_batch_is_refused_clearly():
    with pytest.raises(ValueError, match="the batch is empty"):
        flopmeter.profile(nn.GroupNorm(2, 4), torch.randn(0, 4, 3, 3))


def test_ptflops_view_of_a_projected_lstm():
    import ptflops

    class Projected(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(16, 32, batch_first=True, proj_size=8)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.fc(self.rnn(x)[0][:, -1])

    # ours per token (the unfused ops' rules): W_ih 128*16 = 2,048, W_hh 128*8 = 1,024,
    # W_hr 8*32 = 256, biases 2 * 128 = 256 -> 3,584; 12 tokens 43,008; fc 8*4 + 4 = 36
    ours, _ = flopmeter.get_model_complexity_info(
        Projected(), (12, 16), as_strings=False, print_per_layer_stat=False
    )
    assert ours == 12 * 3584 + 36 == 43_044
    # ptflops' LSTM rule: no W_hr, + 4H + 3H + 3H = 320 per token: 12 * 3,648 + 36
    theirs, _ = ptflops.get_model_complexity_info(
        Projected(), (12, 16), as_strings=False, print_per_layer_stat=False
    )
    assert theirs == 12 * (2048 + 1024 + 320 + 256) + 36 == 43_812


def test_block_diag_moves_data():
    # two 3x4 blocks placed on a 6x8 zero background: no arithmetic, 48 values written
    report = flopmeter.profile(Fn(torch.block_diag), (torch.randn(3, 4), torch.randn(3, 4)))
    assert report.unsupported_ops() == {}  # was listed without a formula
    assert (report.flops, report.bytes_written) == (0, 48 * 4)


def test_flop_counter_misses_bilinear_and_the_fused_lstm():
    from torch.utils.flop_counter import FlopCounterMode

    def flop_counter(module: nn.Module, *inputs: torch.Tensor) -> int:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(*inputs)
        return counter.get_total_flops()

    # Bilinear(3, 4, 5), batch 2: B*O*I1*I2 = 2*5*3*4 = 120 MACs, 2mac 240; FlopCounterMode 0
    bilinear, pair = nn.Bilinear(3, 4, 5), (torch.randn(2, 3), torch.randn(2, 4))
    assert flopmeter.profile(bilinear, pair).flops_as("2mac") == 240
    assert flop_counter(bilinear, *pair) == 0
    # LSTM(4, 6) on 5 x 2 tokens (the fused mkldnn_rnn_layer): 10 * 4*6*(4+6) = 2,400 MACs
    lstm, tokens = nn.LSTM(4, 6), torch.randn(5, 2, 4)
    assert flopmeter.profile(lstm, tokens).flops_as("2mac") == 4800
    assert flop_counter(lstm, tokens) == 0
    # GRU(4, 6) runs as addmm on the CPU: both count 2 * 10 * 3*6*(4+6) = 3,600
    gru = nn.GRU(4, 6)
    assert flopmeter.profile(gru, tokens).flops_as("2mac") == flop_counter(gru, tokens) == 3600
