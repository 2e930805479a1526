"""Reference cases R1-R10 of shared/reference/compression-metrics.md, exact, with the
arithmetic beside every expected value.

Quantized cases use weights whose magnitudes are far from 0 (|w| in [0.5, 1]), so no
weight rounds to its zero point: a quantized value equal to the zero point *is* a
zero and would (rightly) lower the effective MACs.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import flopmeter
from flopmeter.compression.micronet import micronet, score_from

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def _far_from_zero(layer: nn.Linear) -> nn.Linear:
    torch.manual_seed(0)
    with torch.no_grad():
        signs = torch.where(torch.rand_like(layer.weight) < 0.5, -1.0, 1.0)
        layer.weight.copy_(signs * (0.5 + 0.5 * torch.rand_like(layer.weight)))
    return layer


@pytest.fixture(scope="module")
def linear_256_512() -> nn.Sequential:
    return nn.Sequential(_far_from_zero(nn.Linear(256, 512)))


def test_r1_masked_linear() -> None:
    layer = nn.Linear(100, 50)
    mask = torch.zeros(50, 100)
    mask[:, :25] = 1  # keep the first 25 inputs of every row
    prune.custom_from_mask(layer, "weight", mask)
    report = flopmeter.profile(layer, torch.randn(1, 100))
    view = report.compression
    assert report.params == 5_050  # weight_orig 50*100 + bias 50, the mask is a buffer
    assert view.weight_params == 5_000
    assert view.layers[""].weight_nonzero == 1_250  # 50 rows * 25
    assert view.nonzero_params == 1_300  # 1,250 + 50 bias
    assert view.sparsity == pytest.approx(0.75)  # 1 - 1,250/5,000
    assert view.macs_dense == 5_000  # 1 * 100 * 50
    assert view.macs_effective == 1_250  # nz * R = 1,250 * 1
    assert report.flops == 10_000  # 50*(2*100-1) + 50 bias; the mask multiply is overhead
    assert report.overhead["aten.mul"].cost.flops == 5_000  # weight_orig * weight_mask
    assert view.flops_effective == 2_500  # 50*(2*25-1) + 50
    assert view.bops == 1_280_000  # 1,250 * 32 * 32
    assert view.bops_relative == pytest.approx(0.25)  # 1,280,000 / (5,000*1024)
    assert view.bytes_ideal == 5_825  # 1,250*4 values + 5,000/8 bitmask + 50*4 bias
    assert view.layers[""].structure == "channel"  # 75 all-zero input columns
    plain = micronet(view, freebie=False)
    assert plain.storage == pytest.approx(1_456.25)  # (1,250*32 + 5,000 + 50*32)/32
    assert plain.ops == pytest.approx(2_500)  # 1,250*32/32 + (50*24 + 50) adds
    free = micronet(view)
    assert free.freebie
    assert free.storage == pytest.approx(806.25)  # (1,250*16 + 5,000 + 50*16)/32
    assert free.ops == pytest.approx(1_875)  # 1,250*16/32 + 1,250


def test_r1_overhead_counted_back_on_request() -> None:
    layer = nn.Linear(100, 50)
    prune.custom_from_mask(layer, "weight", torch.ones(50, 100))
    report = flopmeter.profile(layer, torch.randn(1, 100), compression={"count_overhead": True})
    assert report.flops == 15_000  # 10,000 + the 5,000 mask multiplies


def _r2_dense() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1, bias=False)
    )


def test_r2_structured_removed_and_zeroed() -> None:
    dense = _r2_dense()
    removed = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(8, 32, 3, padding=1, bias=False)
    )
    x = torch.randn(1, 3, 8, 8)
    result = flopmeter.compare(dense, removed, x)
    total = result.rows()[-1]
    assert result.before.macs_dense == 322_560  # 64*16*27 + 64*32*144 = 27,648 + 294,912
    assert result.before.params == 5_040  # 16*27 + 32*144
    assert result.after.macs_dense == 161_280  # 64*8*27 + 64*32*72
    assert result.after.params == 2_520  # 8*27 + 32*72
    assert total["mac_speedup_dense"] == pytest.approx(2.0)  # 322,560 / 161,280
    assert total["params_ratio"] == pytest.approx(0.5)  # 2,520 / 5,040
    assert [layer.change for layer in result.layers] == ["structural", "structural"]
    zeroed = copy.deepcopy(dense)
    with torch.no_grad():
        zeroed[0].weight[8:] = 0  # filters 8..15 zeroed in place
        zeroed[2].weight[:, 8:] = 0  # and conv2's matching inputs
    view = flopmeter.profile(zeroed, x, compression=True).compression
    assert view.macs_effective == 13_824 + 147_456  # conv1 64*8*27; conv2 64*32*8*9 = 161,280
    assert view.macs_dense == 322_560  # in place: the dense work is unchanged
    in_place = flopmeter.compare(dense, zeroed, x)
    assert {layer.change for layer in in_place.layers} == {"in place"}


def test_r2_zeroing_filters_only() -> None:
    dense = _r2_dense()
    zeroed = copy.deepcopy(dense)
    with torch.no_grad():
        zeroed[0].weight[8:] = 0
    view = flopmeter.profile(zeroed, torch.randn(1, 3, 8, 8), compression=True).compression
    assert view.macs_effective == 13_824 + 294_912  # = 308,736: conv1 64*8*27, conv2 dense
    assert view.layers["0"].structure == "channel"  # 8 all-zero output filters


def test_r3_two_four() -> None:
    layer = nn.Linear(64, 32, bias=False)
    with torch.no_grad():
        layer.weight.copy_(_far_from_zero(nn.Linear(64, 32)).weight * torch.tensor([1.0, 1, 0, 0]).repeat(16))
    x = torch.randn(8, 64)
    view = flopmeter.profile(layer.half(), x.half(), compression=True).compression
    entry = view.layers[""]
    assert entry.weight_nonzero == 1_024  # 32 rows * 64/2
    assert entry.structure == "2:4"
    assert view.macs_dense == 16_384  # 8 * 64 * 32
    assert view.macs_effective == 8_192  # 1,024 * 8 rows
    assert view.bytes_ideal == 2_304  # 1,024*2 values + 2,048/8 index (2 bits per kept value)
    assert view.bytes_ideal / (2_048 * 2) == pytest.approx(0.5625)
    assert view.bops == 2_097_152  # 8,192 * 16 * 16
    assert view.bops_relative == pytest.approx(0.125)  # 2,097,152 / (16,384*1024)
    int8 = flopmeter.profile(layer.float(), x, compression=True).compression.assume(bits="w8a8")
    values_and_index = int8.bytes_ideal - 32 * 2  # less 32 per-row fp16 scales that int8 needs
    assert values_and_index == 1_280  # 1,024*1 values + 256 index
    assert values_and_index / 2_048 == pytest.approx(0.625)


class _SparseMM(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight_sparse = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(self.weight_sparse, x)


def test_r4_coo_and_csr() -> None:
    torch.manual_seed(0)
    dense = torch.zeros(32, 64)
    dense[:, ::8] = 0.5 + torch.rand(32, 8)
    x = torch.randn(64, 16)
    coo = flopmeter.profile(_SparseMM(dense.to_sparse()), x)
    assert not coo.unsupported  # aten._sparse_addmm has a formula
    view = coo.compression
    assert view.layers[""].weight_nonzero == 256  # 32 rows * 8
    assert view.macs_effective == 4_096  # 256 * 16 columns of X
    assert view.macs_dense == 32_768  # 32 * 64 * 16
    assert view.layers[""].bytes_ideal == 5_120  # 256*4 + 2 dims * 256 * 8
    csr = flopmeter.profile(_SparseMM(dense.to_sparse_csr()), x).compression
    assert csr.layers[""].bytes_ideal == 3_336  # 256*4 + (256 + 32 + 1)*8
    assert csr.layers[""].representation == "sparse_csr"


def test_r5_torch_ao_dynamic(linear_256_512: nn.Sequential) -> None:
    model = torch.ao.quantization.quantize_dynamic(copy.deepcopy(linear_256_512), {nn.Linear}, torch.qint8)
    report = flopmeter.profile(model, torch.randn(4, 256))
    view = report.compression
    assert not report.unsupported
    assert report.params == 131_584  # 256*512 + 512: packed weights are counted
    assert report.macs == 524_288  # 4 * 256 * 512
    assert report.flops == 0  # integer MACs are not floating point operations
    assert view.work_by_dtype["int8"]["macs"] == 524_288
    layer = view.layers["0"]
    assert (layer.weight_bits, layer.act_bits) == (8, 8)
    assert view.bops == 33_554_432  # 524,288 * 8 * 8
    assert view.bops_relative == pytest.approx(0.0625)  # 1/16
    assert layer.weight_bytes_actual - 16 == 131_072  # int8 values (+ 1 float64 scale, 1 int64 zero point)


class _ConvReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.relu(self.conv(self.quant(x))))


def test_r6_torch_ao_static_conv_relu() -> None:
    import torch.ao.quantization as tq

    torch.manual_seed(0)
    model = _ConvReLU().eval()
    with torch.no_grad():
        w = model.conv.weight
        w.copy_(torch.where(torch.rand_like(w) < 0.5, -1.0, 1.0) * (0.5 + 0.5 * torch.rand_like(w)))
    model.qconfig = tq.get_default_qconfig("fbgemm")  # per-channel weights
    tq.fuse_modules(model, [["conv", "relu"]], inplace=True)
    tq.prepare(model, inplace=True)
    model(torch.randn(4, 3, 8, 8))
    tq.convert(model, inplace=True)
    report = flopmeter.profile(model, torch.randn(1, 3, 8, 8))
    assert not report.unsupported
    assert report.params == 224  # 8*3*3*3 + 8
    assert report.macs == 13_824  # 64 positions * 8 * 27
    layer = report.compression.layers["conv"]
    assert (layer.weight_bits, layer.act_bits, layer.n_scales) == (8, 8, 8)
    assert layer.bops == 884_736  # 13,824 * 8 * 8
    assert layer.weight_bytes_actual == 216 + 8 * 16  # int8 values + 8 x (float64 scale, int64 zero point)
    assert set(report.overhead) == {"aten.quantize_per_tensor", "aten.dequantize"}


def _torchao(model: nn.Module, config: object) -> nn.Module:
    torchao = pytest.importorskip("torchao.quantization")
    quantized = copy.deepcopy(model)
    torchao.quantize_(quantized, config)
    return quantized


def test_r7_torchao_int8_weight_only(linear_256_512: nn.Sequential) -> None:
    from torchao.quantization import Int8WeightOnlyConfig

    report = flopmeter.profile(_torchao(linear_256_512, Int8WeightOnlyConfig()), torch.randn(4, 256))
    layer = report.compression.layers["0"]
    assert report.params == 131_584
    assert report.macs == 524_288  # the mm of x with the widened weight
    assert (layer.weight_bits, layer.act_bits) == (8, 32)
    assert layer.bops == 134_217_728  # 524,288 * 8 * 32
    assert report.compression.bops_relative == pytest.approx(0.25)
    assert layer.weight_bytes_actual == 133_632  # 131,072 + 2,048 scale + 512 zero point
    assert "aten._to_copy" in report.overhead  # int8 -> float32 copy of the weight


def test_r8_torchao_int8_dynamic(linear_256_512: nn.Sequential) -> None:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig

    report = flopmeter.profile(
        _torchao(linear_256_512, Int8DynamicActivationInt8WeightConfig()), torch.randn(4, 256)
    )
    assert report.operators["aten._int_mm"].cost.macs == 524_288  # 4 * 256 * 512 integer MACs
    assert report.operators["aten._int_mm"].cost.flops == 0
    layer = report.compression.layers["0"]
    assert (layer.weight_bits, layer.act_bits) == (8, 8)
    assert layer.bops == 33_554_432  # 524,288 * 64
    # on-the-fly activation quantization, each torchao call counted whole (P9-7): the range
    # 2 * (4*256) = 2,048, the rounding 4 * 1,024 = 4,096
    assert report.overhead["torchao.choose_qparams_affine"].cost.flops == 2_048
    assert report.overhead["torchao.quantize_affine"].cost.flops == 4_096


def test_r9_torchao_int4_groups(linear_256_512: nn.Sequential) -> None:
    from torchao.quantization import IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32))
    report = flopmeter.profile(_torchao(linear_256_512, config), torch.randn(4, 256))
    layer = report.compression.layers["0"]
    assert layer.weight_bits == 4  # target_dtype, though qdata is int8
    assert layer.group_size == 32
    assert report.macs == 524_288
    assert layer.bops == 67_108_864  # 524,288 * 4 * 32
    assert report.compression.bops_relative == pytest.approx(0.125)
    assert layer.weight_bytes_actual == 151_552  # 131,072 int8 + 16,384 fp32 scales + 4,096 int8 zeros
    assert layer.weight_bytes_ideal == 86_016  # 65,536 (4 bits) + 16,384 + 4,096
    assert layer.bits_per_weight == pytest.approx(5.25)  # 8 * 86,016 / 131,072


def test_r10_micronet_small() -> None:
    layer = nn.Linear(100, 10)
    mask = torch.zeros(10, 100)
    mask[:, ::2] = 1  # sparsity 0.5, 50 per row
    prune.custom_from_mask(layer, "weight", mask)
    view = flopmeter.profile(layer, torch.randn(1, 100)).compression.assume(bits="w8a8")
    score = micronet(view)
    assert not score.freebie  # 8 bits < 16: no freebie
    assert score.storage == pytest.approx(158.75)  # (1,000*8*0.5 + 1,000 mask + 10*8 bias)/32
    assert score.ops == pytest.approx(625)  # 500 mults * 8/32 + (49*10 + 10) adds
    assert score_from(3e6, 500e6, "imagenet") == pytest.approx(0.8621, abs=1e-4)  # 3/6.9 + 500/1170


class _SparseBuffer(nn.Module):
    """A Linear(4, 4) beside a 5x5 sparse adjacency registered as a buffer (8 stored values)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        adjacency = torch.eye(5)
        adjacency[0, 1] = adjacency[1, 2] = adjacency[2, 3] = 1.0
        self.register_buffer("adj", adjacency.to_sparse())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(self.adj, self.lin(x))


def test_a_sparse_buffer_is_counted_once_as_a_param_not_also_as_a_buffer() -> None:
    """R11b-7: a sparse tensor a module holds is a weight ``parameters()`` does not list, so
    it is counted in params by its shape; registered as a buffer it was in the buffers too."""
    report = flopmeter.profile(_SparseBuffer(), torch.randn(5, 4))
    assert report.params == 45  # Linear 4*4 + 4 = 20, the adjacency's 5*5 = 25
    assert report.modules[""].own_params == 25  # the adjacency, held by the root
    assert report.buffers == 0  # not counted again as a buffer (it was 25)
    assert report.param_bytes == 240  # 20*4 + the adjacency as stored: 8 values*4 + 2 dims*8 indices*8 = 160
    assert report.buffer_bytes == 0  # was 100, its dense 25*4


class _SparseHeldTwice(_SparseBuffer):
    """The same sparse adjacency also held as a plain attribute (listed before the buffers)."""

    def __init__(self) -> None:
        super().__init__()
        self.__dict__["graph"] = self.adj


def test_a_sparse_buffer_also_held_as_an_attribute_is_still_counted_once() -> None:
    report = flopmeter.profile(_SparseHeldTwice(), torch.randn(5, 4))
    assert (report.params, report.buffers) == (45, 0)  # 20 + 25, as without the attribute
    assert (report.param_bytes, report.buffer_bytes) == (240, 0)
