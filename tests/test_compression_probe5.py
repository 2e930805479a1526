"""Probe 5 (compression, second pass): what a compression user's real tools produce,
each number worked out by hand (docs/probe-5/compress.md)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import flopmeter

tq = pytest.importorskip("torch.ao.quantization")


def _qat(model: nn.Module, fuse: list[list[str]] | None, qconfig: object | None = None) -> nn.Module:
    model.train()
    model.qconfig = qconfig or tq.get_default_qat_qconfig("fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        if fuse:
            tq.fuse_modules_qat(model, fuse, inplace=True)
        return tq.prepare_qat(model)


def _four_bit(observer: object, qscheme: torch.qscheme) -> object:
    """A torch.ao ``FakeQuantize`` (not the fused one) rounding weights to -8..7."""
    return tq.FakeQuantize.with_args(
        observer=observer, quant_min=-8, quant_max=7, dtype=torch.qint8, qscheme=qscheme
    )


# ------------------------------------------------------------ P5-C2: QAT LinearBn1d fold
@pytest.mark.parametrize("bias", [True, False])
def test_qat_linear_bn_counts_as_the_float_linear_and_batch_norm(bias: bool) -> None:
    torch.manual_seed(0)
    qat = _qat(
        nn.Sequential(tq.QuantStub(), nn.Linear(16, 8, bias=bias), nn.BatchNorm1d(8), tq.DeQuantStub()),
        [["1", "2"]],
    )
    assert type(qat[1]).__name__ == "LinearBn1d"
    x = torch.randn(4, 16)
    report = flopmeter.profile(qat, x)
    # Linear: 4*8*(2*16-1) = 992, + 4*8 = 32 bias adds; BatchNorm1d in training on 4x8: 104
    # (flopmeter's BN formula, the float model's own): 1,128 with a bias, 1,096 without.
    # The fold (sqrt(var+eps) 8+8, gamma/std 8, weight*scale 128, zero bias 32, out/scale 32)
    # is overhead, as it is for a QAT ConvBn.
    assert report.flops == (1_128 if bias else 1_096)
    float_model = nn.Sequential(nn.Linear(16, 8, bias=bias), nn.BatchNorm1d(8)).train()
    assert report.flops == flopmeter.profile(float_model, x).flops
    backward = flopmeter.profile(qat, x, backward=True)
    assert backward.flops == flopmeter.profile(float_model, x, backward=True).flops


# ------------------------------------------- P5-C3: FakeQuantize / learnable fake quant ops
def test_plain_fake_quantize_ops_are_counted_overhead_not_unsupported() -> None:
    four_bit = _four_bit(tq.MovingAverageMinMaxObserver, torch.per_tensor_symmetric)
    act = tq.FakeQuantize.with_args(observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=15)
    torch.manual_seed(0)
    qat = _qat(
        nn.Sequential(tq.QuantStub(), nn.Linear(16, 8), tq.DeQuantStub()),
        None,
        tq.QConfig(activation=act, weight=four_bit),
    )
    report = flopmeter.profile(qat, torch.randn(4, 16))
    assert report.unsupported == {}  # was: _fake_quantize_per_tensor_affine_cachemask_tensor_qparams
    assert report.flops == 1_024  # 4*8*(2*16-1) + 32 bias adds
    overhead = report.compression.overhead
    # weight 128 elements + input 64 + output 32: each fake quantized at 4 per element
    assert (
        overhead["aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams"].flops
        == (128 + 64 + 32) * 4
    )
    layer = report.compression.layers["1"]
    assert (layer.weight_bits, layer.act_bits) == (4, 4)  # -8..7: 15 -> 4 bits; 0..15 -> 4
    assert layer.bops == 8_192  # 512 MACs * 4 * 4


def test_learnable_fake_quantize_is_overhead() -> None:
    from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize

    lsq = _LearnableFakeQuantize.with_args(
        observer=tq.MovingAverageMinMaxObserver,
        quant_min=-8,
        quant_max=7,
        dtype=torch.qint8,
        qscheme=torch.per_tensor_symmetric,
        scale=0.1,
        zero_point=0.0,
        use_grad_scaling=True,
    )
    torch.manual_seed(0)
    qat = _qat(
        nn.Sequential(tq.QuantStub(), nn.Linear(16, 8), tq.DeQuantStub()),
        None,
        tq.QConfig(activation=tq.default_fake_quant, weight=lsq),
    )
    report = flopmeter.profile(qat, torch.randn(4, 16))
    assert report.unsupported == {}
    assert report.flops == 1_024  # 4*8*31 + 32: the rounding is overhead
    assert report.compression.overhead["aten._fake_quantize_learnable_per_tensor_affine"].flops == 128 * 4


# ------------------------------------------ P5-C4: QAT embeddings' float qparams bytes
@pytest.mark.parametrize(
    ("qconfig", "bits", "ideal"),
    [
        ("default_embedding_qat_qconfig", 8, 160),  # 80 weights * 8/8 = 80, + 10 rows * (4 + 4)
        ("default_embedding_qat_qconfig_4bit", 4, 120),  # 80 * 4/8 = 40, + 10 * 8
    ],
)
@pytest.mark.parametrize("bag", [False, True])
def test_qat_embedding_bytes_equal_the_converted_embeddings(
    qconfig: str, bits: int, ideal: int, bag: bool
) -> None:
    torch.manual_seed(0)
    float_layer = nn.EmbeddingBag(10, 8, mode="sum") if bag else nn.Embedding(10, 8)
    model = nn.Sequential(float_layer).train()
    model[0].qconfig = getattr(tq, qconfig)
    qat_nn = torch.ao.nn.qat
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qat = tq.prepare_qat(
            model, mapping={nn.Embedding: qat_nn.Embedding, nn.EmbeddingBag: qat_nn.EmbeddingBag}
        )
    ids = torch.tensor([[1, 2, 3]])
    report = flopmeter.profile(qat, ids)
    assert report.unsupported == {}  # was: fake_quantize_per_channel_affine_cachemask
    layer = report.compression.layers["0"]
    assert (layer.weight_bits, layer.n_scales) == (bits, 10)
    assert layer.bytes_ideal == ideal  # was 240 / 200: 16 bytes per row, as a float64 + int64 pair
    if bag and bits == 8:  # the converted bag (the 2-D 4-bit lookup fails in torch itself)
        qat(ids)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = tq.convert(
                qat.eval(), mapping={qat_nn.EmbeddingBag: torch.ao.nn.quantized.EmbeddingBag}
            )
        after = flopmeter.profile(converted, ids)
        assert after.compression.layers["0"].bytes_ideal == ideal


# ----------------------------------------------- P5-C5: quantized EmbeddingBag's sums
@pytest.mark.parametrize("four_bit", [False, True])
def test_quantized_embedding_bag_counts_its_sums(four_bit: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.EmbeddingBag(10, 8, mode="sum"))
    model[0].qconfig = (
        tq.float_qparams_weight_only_qconfig_4bit if four_bit else tq.float_qparams_weight_only_qconfig
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = tq.convert(tq.prepare(model), inplace=False)
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    report = flopmeter.profile(quantized, ids)
    assert report.unsupported == {}  # was: quantized.embedding_bag_byte / _4bit, 0 FLOPs
    assert report.flops == 32  # 2 bags of 3 rows: (3-1)*8 adds each = 16, twice
    assert report.flops == flopmeter.profile(model, ids).flops  # the float bag's count


# ------------------------- P5-C6: a per-channel FakeQuantize's resized buffers, no false alarm
def test_per_channel_fake_quantize_leaves_no_trace_and_no_false_warning() -> None:
    per_channel = _four_bit(tq.MovingAveragePerChannelMinMaxObserver, torch.per_channel_symmetric)
    torch.manual_seed(0)
    qat = _qat(
        nn.Sequential(tq.QuantStub(), nn.Linear(16, 8), tq.DeQuantStub()),
        None,
        tq.QConfig(activation=tq.default_fake_quant, weight=per_channel),
    )
    state = {k: v.clone() for k, v in qat.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # was: "the forward wrote 4 ... could not see"
        report = flopmeter.profile(qat, torch.randn(4, 16))
    assert report.compression.layers["1"].n_scales == 8  # one per output row of Linear(16, 8)
    after = qat.state_dict()
    # the observer resizes scale, zero_point, min_val, max_val to 8 channels: put back
    assert all(after[k].shape == v.shape and torch.equal(after[k], v) for k, v in state.items())


# ------------------------------------- P5-C1: torchao int8 dynamic activations, int4 weights
def test_torchao_int8_dynamic_activation_int4_weight_is_w4a8() -> None:
    quantization = pytest.importorskip("torchao.quantization")
    granularity = pytest.importorskip("torchao.quantization.granularity")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantization.quantize_(
            model,
            quantization.Int8DynamicActivationIntxWeightConfig(
                weight_dtype=torch.int4, weight_granularity=granularity.PerGroup(32)
            ),
        )
    layer = flopmeter.profile(model, torch.randn(4, 256)).compression.layers["0"]
    assert layer.macs_dense == 524_288  # 4 * 256 * 512
    assert (layer.weight_bits, layer.act_bits) == (4, 8)  # was (4, 32): the rounded input is int8
    assert layer.group_size == 32 and layer.n_scales == 4_096  # 512 rows * 256 / 32
    assert layer.bops == layer.macs_effective * 4 * 8  # was * 4 * 32
    # the same weights without activation quantization stay W4A32
    weight_only = nn.Sequential(nn.Linear(256, 512))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantization.quantize_(
            weight_only,
            quantization.IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=granularity.PerGroup(32)),
        )
    assert flopmeter.profile(weight_only, torch.randn(4, 256)).compression.layers["0"].act_bits == 32


# ------------------------------- P5-C7: FX QAT, a max pool's shared quantizer feeds the conv
def test_fx_qat_conv_after_max_pool_reads_the_shared_quantizers_bits() -> None:
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3),
        nn.Flatten(),
        nn.Linear(32, 4),
    )
    x = torch.randn(1, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qat = prepare_qat_fx(model.train(), tq.get_default_qat_qconfig_mapping("fbgemm"), (x,))
    layers = flopmeter.profile(qat, x).compression.layers
    # the max pool's output quantizer is its input's, registered under two names: the
    # second conv read 32 bits (the float dtype), as every conv after a max pool in resnet18
    conv = layers["3"]
    assert (conv.weight_bits, conv.act_bits) == (8, 8)
    assert conv.macs_dense == 1_152  # 4*9 = 36 per output, 8 channels * 2*2 positions
    assert conv.bops == 1_152 * 8 * 8  # 73,728; was 1,152 * 8 * 32
    assert layers["5"].act_bits == 8  # Linear after Flatten: 32*4 = 128 MACs


# --------------------------------- P5-C8: compare(dense, low-rank): no half-matched layer
class _Dense(nn.Module):
    def __init__(self, fc1: nn.Module) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = fc1, nn.ReLU(), nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def test_compare_low_rank_factorisation_does_not_match_the_first_factor_alone() -> None:
    torch.manual_seed(0)
    dense = _Dense(nn.Linear(64, 64))
    low_rank = _Dense(nn.Sequential(nn.Linear(64, 8, bias=False), nn.Linear(8, 64)))  # rank 8
    result = flopmeter.compare(dense, low_rank, torch.randn(2, 64))
    rows = {layer.name: layer for layer in result.layers}
    # was: fc1 matched fc1.0 alone (the fused-ConvReLU rule): params 4,160 -> 512 (0.123),
    # MAC speedup 8.00x, and fc1.1 "added"; fc1 as a whole is 4,160 -> 512 + 576 = 1,088
    assert rows["fc1"].change == "removed" and rows["fc1"].after is None
    assert rows["fc1.0"].change == rows["fc1.1"].change == "added"
    assert rows["fc2"].change == "unchanged"
    # totals: params 4,160 + 650 = 4,810 -> 512 + 576 + 650 = 1,738; MACs 2*(64*64 + 64*10)
    # = 9,472 -> 2*(64*8 + 8*64 + 64*10) = 3,328: 2.846x
    assert (result.before.params, result.after.params) == (4_810, 1_738)
    assert result.ratio("macs_dense", invert=True) == pytest.approx(9_472 / 3_328)
    # a module on one side only has no speedup of its own (it printed 1.00x)
    table = {row["module"]: row for row in result.rows()}
    assert table["fc1"]["speedup_estimate"] is None and table["fc1.0"]["speedup_estimate"] is None
    assert table["fc2"]["speedup_estimate"] is not None


def test_compare_fused_module_still_matches_its_first_child() -> None:
    torch.manual_seed(0)
    fused = tq.fuse_modules(nn.Sequential(nn.Linear(8, 4), nn.ReLU()).eval(), [["0", "1"]])  # 0: LinearReLU
    plain = nn.Sequential(nn.Linear(8, 4), nn.ReLU())
    rows = {layer.name: layer for layer in flopmeter.compare(plain, fused, torch.randn(2, 8)).layers}
    assert rows["0"].change == "unchanged" and rows["0"].after is not None  # "0" <-> "0.0"


# ------------------------------ P5-C9: MicroNet counts an int8 model's adds and ReLUs
class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant, self.conv, self.dequant = tq.QuantStub(), nn.Conv2d(2, 2, 1), tq.DeQuantStub()
        self.add = torch.ao.nn.quantized.FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        return self.dequant(self.add.add(self.conv(x), x))


def _int8(model: nn.Module, x: torch.Tensor, fuse: list[list[str]] | None = None) -> nn.Module:
    model.eval().qconfig = tq.get_default_qconfig("fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fuse:
            tq.fuse_modules(model, fuse, inplace=True)
        prepared = tq.prepare(model)
        prepared(x)
        return tq.convert(prepared)


def test_micronet_counts_an_int8_residual_add() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 2, 3, 3)
    score = flopmeter.micronet(flopmeter.profile(_int8(_Residual(), x), x).compression, freebie=False)
    # conv 1x1, 2->2 on 3x3: 36 MACs: 36 mults * 8/32 = 9; adds 2*36 - 18 + 18 bias - 36 = 36;
    # the quantized add: 18 adds at 32 bits (the rules' adds), was 0: 9 + 36 + 18 = 63
    assert score.ops == 63.0
    assert score.storage == 1.5  # (4 weights + 2 biases) * 8 bits / 32


def test_micronet_counts_the_relu_fused_in_an_int8_conv() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 2, 3, 3)
    model = nn.Sequential(tq.QuantStub(), nn.Conv2d(2, 2, 1), nn.ReLU(), tq.DeQuantStub())
    score = flopmeter.micronet(flopmeter.profile(_int8(model, x, [["1", "2"]]), x).compression, freebie=False)
    # as above, 9 + 36, + the ReLU as one multiply per output at 8 bits: 18 * 8/32 = 4.5
    assert score.ops == 49.5  # was 45.0


# ------------------- P5-C10: prune the first holder of a tied weight; the other reads it dense
class _TiedLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.head = nn.Embedding(10, 8), nn.Linear(8, 10, bias=False)
        self.head.weight = self.emb.weight  # tied, as an LM head

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(ids))


def test_pruning_the_embedding_of_a_tied_head_leaves_the_head_dense() -> None:
    torch.manual_seed(0)
    model = _TiedLM()
    mask = torch.ones(10, 8)
    mask[:5] = 0  # rows 0..4 of the embedding
    prune = pytest.importorskip("torch.nn.utils.prune")
    prune.custom_from_mask(model.emb, "weight", mask)
    # the embedding now reads weight_orig * mask; the head still holds the Parameter that
    # became weight_orig, unmasked: its 3 tokens * 8 * 10 = 240 MACs are all effective
    assert model.head.weight is model.emb.weight_orig
    ids = torch.tensor([[5, 6, 7]])  # kept rows: the embedding's output is not zero
    assert torch.count_nonzero(model(ids)[..., :5]) == 15  # the head's rows 0..4 still work
    layers = flopmeter.profile(model, ids).compression.layers
    head = layers["head"]
    assert head.macs_dense == 240
    assert head.macs_effective == 240  # was 120: the embedding's mask applied to the head
    assert head.representation == "tied (dense)"
    assert layers["emb"].weight_nonzero == 40  # the embedding's own mask: 5 rows * 8


# ---------------------- torch-pruning (DepGraph) removes channels: hand counts, and the peer
class _SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        return self.fc(x.mean((2, 3)))


def test_depgraph_pruned_channels_as_counted_by_hand() -> None:
    tp = pytest.importorskip("torch_pruning")
    torch.manual_seed(0)
    model, x = _SmallCNN().eval(), torch.randn(1, 3, 8, 8)
    dense = flopmeter.profile(model, x, compression=True)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=x)
    graph.get_pruning_group(model.conv1, tp.prune_conv_out_channels, idxs=list(range(8, 16))).prune()
    pruned = flopmeter.profile(model, x, compression=True)
    # conv1 3*16*9*64 = 27,648 -> 3*8*9*64 = 13,824; conv2 16*32*9*64 = 294,912 -> 147,456; fc 320
    assert (dense.macs, pruned.macs) == (322_880, 161_600)
    # 432 + 32 (bn1) + 4,608 + 64 (bn2) + 330 = 5,466 -> 216 + 16 + 2,304 + 64 + 330 = 2,930
    assert (dense.params, pruned.params) == (5_466, 2_930)
    macs, params = tp.utils.count_ops_and_params(model, x)
    assert params == pruned.params
    # torch-pruning's MACs add 2 per batch-norm output and the mean's: 2*(8 + 32)*64 + 10
    assert macs == pruned.macs + 2 * (8 + 32) * 64 + 10
    rows = {layer.name: layer for layer in flopmeter.compare(dense, pruned).layers}
    assert rows["conv1"].change == rows["conv2"].change == "structural"
    assert rows["conv2"].mac_speedup_dense == 2.0 and rows["fc"].change == "unchanged"


# ---------------- P5-C11: eager mixed-precision QAT: a layer's input is the previous output
def test_eager_mixed_precision_qat_layer_reads_its_inputs_quantizer() -> None:
    act4 = tq.FakeQuantize.with_args(observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=15)
    model = nn.Sequential(tq.QuantStub(), nn.Linear(16, 8), nn.Linear(8, 4), tq.DeQuantStub()).train()
    model[2].qconfig = tq.QConfig(activation=act4, weight=tq.default_weight_fake_quant)  # its output: 4 bits
    torch.manual_seed(0)
    qat = _qat(model, None)  # the rest: fbgemm, 8-bit activations
    layers = flopmeter.profile(qat, torch.randn(4, 16)).compression.layers
    # layer 1 reads the QuantStub's 8 bits; layer 2 reads layer 1's 8-bit output, not its own
    # 4-bit output quantizer: 4*8*4 = 128 MACs * 8 * 8 = 8,192 BOPs (was 128 * 8 * 4 = 4,096)
    assert (layers["1"].act_bits, layers["2"].act_bits) == (8, 8)
    assert layers["2"].bops == 8_192
    assert layers["1"].bops == 512 * 8 * 8  # 4*16*8 = 512 MACs


# ------------------------------ P5-S11: a quantized model's parameter bytes
def test_packed_weights_count_in_the_parameter_bytes() -> None:
    """torch.ao's packed weights are no nn.Parameter: params counted them, param_bytes
    (the roofline header's "parameters", the JSON totals) said 0 B."""
    torch.manual_seed(0)
    model = tq.quantize_dynamic(nn.Sequential(nn.Linear(512, 512)), {nn.Linear}, torch.qint8)
    report = flopmeter.profile(model, torch.randn(64, 512))
    assert report.params == 262_656  # 512*512 weights + 512 biases
    # int8 weights 262,144 B + one float64 scale and int64 zero point 16 B + 512 float32 biases 2,048 B
    assert report.param_bytes == 264_208 == report.compression.bytes_actual


# ------------------- P5-R1 (review): the ReLU fused in a dynamic int8 Linear is a float ReLU
def test_micronet_counts_the_relu_fused_in_a_dynamic_int8_linear() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 16)
    fused = tq.fuse_modules(nn.Sequential(nn.Linear(16, 8), nn.ReLU()).eval(), [["0", "1"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dynamic = tq.quantize_dynamic(
            fused, {torch.ao.nn.intrinsic.LinearReLU: tq.default_dynamic_qconfig}, dtype=torch.qint8
        )
    score = flopmeter.micronet(flopmeter.profile(dynamic, x).compression, freebie=False)
    # per sample: 16*8 = 128 mults * 8/32 = 32; adds 15*8 + 8 bias = 128; the ReLU on the
    # float output, one multiply at 32 bits per output: 8 (as the float model's 264 =
    # 128 + 128 + 8 counts it): 32 + 128 + 8 = 168
    assert score.ops == 168.0  # was 160.0: the fused ReLU free
