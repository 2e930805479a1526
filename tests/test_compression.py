"""Compression: op formulas by hand, representations, what-if, compare, CLI."""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize, prune

import flopmeter
from flopmeter.cli import run
from flopmeter.compression.packed import PackedLayout
from flopmeter.registry import CountOptions, cost_of
from flopmeter.tracing.events import OpEvent, TensorMeta

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def t(*shape: int, dtype: str = "float32", itemsize: int = 4, role: str = "activation") -> TensorMeta:
    return TensorMeta(tuple(shape), dtype, itemsize, role)


class TestOpFormulas:
    def test_quantized_linear_reads_the_packed_shape(self) -> None:
        packed = object()
        layout = PackedLayout((512, 256), True, False, 1, "qint8", "per_tensor", 1, None, 512)
        event = OpEvent(
            "quantized.linear", (t(4, 256, dtype="quint8", itemsize=1), packed, 0.1, 0), {}, (t(4, 512),)
        )
        cost = cost_of(event, CountOptions(packed={id(packed): layout}))
        assert cost is not None
        assert cost.macs == 524_288  # 4 * 256 * 512
        assert cost.flops == 0  # integer MACs are not floating point operations

    def test_dynamic_fp16_linear_is_float_work(self) -> None:
        packed = object()
        layout = PackedLayout((8, 16), True, False, 1, "float16", "none", 0, None, 8)
        event = OpEvent("quantized.linear_dynamic_fp16", (t(2, 16), packed), {}, (t(2, 8),))
        cost = cost_of(event, CountOptions(packed={id(packed): layout}))
        assert cost is not None
        assert cost.macs == 256  # 2 * 16 * 8
        assert cost.flops == 512  # 16 outputs * (2*16 - 1) + 16 bias adds

    def test_quantized_conv_uses_groups_from_the_weight_shape(self) -> None:
        packed = object()
        layout = PackedLayout((32, 1, 3, 3), True, False, 32, "qint8", "per_channel", 32, None, 32)
        x = t(1, 32, 8, 8, dtype="quint8", itemsize=1)
        event = OpEvent("quantized.conv2d_relu", (x, packed, 0.1, 0), {}, (t(1, 32, 8, 8, dtype="quint8"),))
        cost = cost_of(event, CountOptions(packed={id(packed): layout}))
        assert cost is not None
        assert cost.macs == 18_432  # 64 positions * 32 channels * 1 * 3 * 3 (depthwise)
        assert cost.flops == 0

    @pytest.mark.parametrize(
        ("op", "args", "out", "macs", "flops"),
        [
            # 8 * 64 * 32 integer MACs, no FLOPs
            (
                "aten._int_mm",
                (t(8, 64, dtype="int8"), t(64, 32, dtype="int8")),
                t(8, 32, dtype="int32"),
                16_384,
                0,
            ),
            # float x @ int8 weight (N, K): 8*32 outputs of length 64 -> 256*(2*64-1) = 32,512 FLOPs
            (
                "aten._weight_int8pack_mm",
                (t(8, 64), t(32, 64, dtype="int8"), t(32)),
                t(8, 32),
                16_384,
                32_512,
            ),
            (
                "aten._weight_int4pack_mm",
                (t(8, 64), t(4, 1, 32, 4, dtype="int32"), 32, t(2, 32, 2)),
                t(8, 32),
                16_384,
                32_512,
            ),
            # fp8 is floating point: 256*(2*64-1)
            (
                "aten._scaled_mm",
                (
                    t(8, 64, dtype="float8_e4m3fn", itemsize=1),
                    t(64, 32, dtype="float8_e4m3fn", itemsize=1),
                    t(1),
                    t(1),
                ),
                t(8, 32),
                16_384,
                32_512,
            ),
            # 2:4: each of 8*32 outputs multiplies 64/2 terms: 256*32 MACs, 256*(2*32-1) FLOPs
            (
                "aten._sparse_semi_structured_linear",
                (t(8, 64), t(32, 32), t(32, 4, dtype="int16")),
                t(8, 32),
                8_192,
                16_128,
            ),
            ("aten._cslt_sparse_mm", (t(1024, dtype="int8"), t(64, 8)), t(32, 8), 8_192, 16_128),
            # dense-shape count of a sparse (32x64) @ (64x16) + beta*bias: 512*(2*64-1) + 512
            ("aten._sparse_addmm", (t(32, 16), t(32, 64), t(64, 16)), t(32, 16), 32_768, 65_536),
            # quantize: 4 operations per element (scale, zero point, round, clamp)
            (
                "aten.quantize_per_tensor",
                (t(2, 8), 0.1, 0, "quint8"),
                t(2, 8, dtype="quint8", itemsize=1),
                0,
                64,
            ),
            # dequantize: (q - zero_point) * scale, 2 per element
            ("aten.dequantize", (t(2, 8, dtype="quint8", itemsize=1),), t(2, 8), 0, 32),
        ],
    )
    def test_aten_formulas(self, op: str, args: tuple, out: TensorMeta, macs: int, flops: int) -> None:
        cost = cost_of(OpEvent(op, args, {}, (out,)))
        assert cost is not None
        assert (cost.macs, cost.flops) == (macs, flops)

    def test_quantized_add_is_integer_work(self) -> None:
        q = t(1, 8, 4, 4, dtype="quint8", itemsize=1)
        cost = cost_of(OpEvent("quantized.add_relu", (q, q, 0.1, 0), {}, (q,)))
        assert cost is not None and cost.flops == 0  # integers: no FLOPs, bytes only
        assert cost.bytes_read == 256  # two inputs of 128 one-byte values


class TestRepresentations:
    def test_meta_weights_have_unknown_sparsity(self) -> None:
        with torch.device("meta"):
            model = nn.Linear(16, 8)
        view = flopmeter.profile(model, input_shape=(2, 16)).compression
        assert view.sparsity is None
        assert view.layers[""].structure == "unknown"
        assert view.nonzero_params is None
        assert view.macs_dense == 256  # 2 * 16 * 8, counted as usual

    def test_parametrize_is_read_and_its_recompute_is_overhead(self) -> None:
        class HalfMask(nn.Module):
            def forward(self, w: torch.Tensor) -> torch.Tensor:
                mask = torch.ones_like(w)
                mask[:, w.shape[1] // 2 :] = 0
                return w * mask

        layer = nn.Linear(10, 4)
        parametrize.register_parametrization(layer, "weight", HalfMask())
        report = flopmeter.profile(layer, torch.randn(1, 10))
        entry = report.compression.layers[""]
        assert entry.representation == "parametrize"
        assert entry.weight_nonzero == 20  # 4 rows * 5 kept
        assert report.flops == 80  # 4*(2*10-1) + 4: the mask recompute is overhead
        assert report.overhead

    def test_weight_norm_with_two_original_tensors_profiles(self) -> None:
        """torch's parametrizations.weight_norm keeps two tensors (g and v: original0 and
        original1, no ``original``); it profiled with an AttributeError before."""
        layer = nn.utils.parametrizations.weight_norm(nn.Linear(8, 4))
        x = torch.randn(2, 8)
        report = flopmeter.profile(layer, x)
        assert report.total.macs == 64  # 2 * 8 * 4
        assert report.params == 40  # g 4*1 + v 4*8 + bias 4
        entry = report.compression.layers[""]
        assert entry.representation == "parametrize"
        assert entry.weight_params == 32  # v, the larger of the two, stands for the weight
        assert report.overhead  # recomputing the weight from g and v
        assert flopmeter.profile(layer, x, shapes_only=False).total == report.total

    def test_unrecognised_compressed_weight_is_named(self) -> None:
        class Packed(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.weight = nn.Parameter(torch.ones(8, 4, dtype=torch.int8), requires_grad=False)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x @ self.weight.float().t()

        view = flopmeter.profile(Packed(), torch.randn(2, 4)).compression
        assert view.unrecognised == ["weight (Parameter of int8)"]
        assert view.layers[""].representation == "unrecognised Parameter of int8"

    def test_gptq_style_linear_read_from_attributes(self) -> None:
        class QuantLinear(nn.Module):  # what GPTQ/AWQ kernels hold: 8 int4 per int32
            def __init__(self) -> None:
                super().__init__()
                self.bits, self.group_size, self.infeatures, self.outfeatures = 4, 32, 64, 16
                self.register_buffer("qweight", torch.zeros(64 // 8, 16, dtype=torch.int32))
                self.register_buffer("scales", torch.ones(64 // 32, 16, dtype=torch.float16))
                self.register_buffer("qzeros", torch.zeros(64 // 32, 16 // 8, dtype=torch.int32))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x @ torch.ones(64, 16)

        report = flopmeter.profile(QuantLinear(), torch.randn(2, 64))
        entry = report.compression.layers[""]
        assert entry.weight_bits == 4 and entry.group_size == 32
        assert report.params == 1_024  # 64 * 16 logical, not the 128 int32 words stored
        assert entry.weight_bytes_ideal == 512 + 64 + 16  # 1,024 * 4/8 + 2*16 fp16 scales + 2*2 int32 zeros

    def test_bitsandbytes_if_installed(self) -> None:
        bnb = pytest.importorskip("bitsandbytes")
        layer = bnb.nn.Linear4bit(64, 32)
        assert flopmeter.profile(layer, torch.randn(2, 64)).compression is not None

    def test_profiling_a_pruned_model_leaves_no_trace(self) -> None:
        layer = nn.Linear(8, 4)
        prune.l1_unstructured(layer, "weight", 0.5)
        before = (dict(layer.__dict__), len(layer._forward_pre_hooks), layer.weight.clone())
        flopmeter.profile(layer, torch.randn(1, 8))
        assert dict(layer.__dict__).keys() == before[0].keys()
        assert len(layer._forward_pre_hooks) == before[1]
        assert torch.equal(layer.weight, before[2])


class TestWhatIf:
    def test_assume_sparsity_and_bits(self) -> None:
        # a sparsity plan needs the nonzeros counted (compression=True)
        report = flopmeter.profile(nn.Linear(64, 32, bias=False), torch.randn(8, 64), compression=True)
        half = report.compression.assume(sparsity=0.5)
        assert half.macs_effective == 8_192  # 16,384 * 0.5
        assert half.layers[""].structure == "unstructured"
        two_four = report.compression.assume(sparsity="2:4", bits="w8a8")
        assert two_four.layers[""].structure == "2:4"
        assert two_four.bops == 8_192 * 8 * 8
        assert report.compression.macs_effective == 16_384  # the original view is unchanged

    def test_mixed_precision_by_module_prefix(self) -> None:
        model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 4))
        view = flopmeter.profile(model, torch.randn(1, 16)).compression.assume(
            bits={"": "w8a8", "1": "w4a16"}
        )
        assert (view.layers["0"].weight_bits, view.layers["0"].act_bits) == (8, 8)
        assert (view.layers["1"].weight_bits, view.layers["1"].act_bits) == (4, 16)
        assert view.bops == 256 * 8 * 8 + 64 * 4 * 16  # MACs 16*16 and 16*4

    def test_profile_option(self) -> None:
        options = flopmeter.CompressionOptions(assume_bits="w4a16g32")
        view = flopmeter.profile(nn.Linear(64, 8), torch.randn(1, 64), compression=options).compression
        assert view.layers[""].group_size == 32
        assert view.layers[""].n_scales == 16  # 512 weights / 32

    @pytest.mark.parametrize(
        "bad", [{"assume_bits": "int4"}, {"assume_sparsity": 1.5}, {"assume_sparsity": "4:2"}]
    )
    def test_bad_assumptions_say_what_is_expected(self, bad: dict) -> None:
        with pytest.raises(ValueError, match="must"):
            flopmeter.CompressionOptions(**bad)


def _pruned_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    pruned = copy.deepcopy(dense)
    prune.l1_unstructured(pruned[0], "weight", 0.5)
    return dense, pruned


class TestCompare:
    def test_unstructured_sparsity_is_estimated_at_one(self) -> None:
        dense, pruned = _pruned_pair()
        result = flopmeter.compare(dense, pruned, torch.randn(4, 128))
        first = result.layers[0]
        assert first.change == "in place"
        assert first.mac_speedup_effective == pytest.approx(2.0)  # half the weights are zero
        assert first.speedup_estimate == 1.0
        assert "no sparse kernel" in first.estimate_reason
        assert result.layers[1].change == "unchanged"

    def test_two_four_estimate_is_capped_and_guarded(self) -> None:
        dense = nn.Linear(256, 256, bias=False)
        sparse = copy.deepcopy(dense)
        with torch.no_grad():
            sparse.weight.mul_(torch.tensor([1.0, 1, 0, 0]).repeat(64))
        big = flopmeter.compare(dense, sparse, torch.randn(512, 256))
        assert 1.0 < big.layers[0].speedup_estimate <= 1.7
        small = flopmeter.compare(dense, sparse, torch.randn(1, 256))
        assert small.layers[0].speedup_estimate == 1.0  # one row: decode-sized, no gain

    def test_formats_carry_the_same_columns(self) -> None:
        dense, pruned = _pruned_pair()
        result = flopmeter.compare(dense, pruned, torch.randn(4, 128))
        markdown = result.to_markdown()
        assert "| module | type | change | params before |" in markdown
        assert "speedup (estimate)" in markdown and "not a measurement" in markdown
        rows = list(result.to_csv().splitlines())
        assert rows[0].split(",") == result.columns()
        assert rows[-1].startswith("total,")
        data = json.loads(result.to_json())
        assert data["columns"] == result.columns()
        assert data["rows"][-1]["module"] == "total"
        assert data["rows"][-1]["nonzero_ratio"] == pytest.approx(
            (8_192 + 128 + 1_290) / 17_802  # half of 128*128 kept + biases + layer 2; of 16,512 + 1,290
        )

    def test_measured_speedup_with_bench(self) -> None:
        dense, pruned = _pruned_pair()
        result = flopmeter.compare(dense, pruned, torch.randn(4, 128), bench=True, repeat=3)
        assert result.measured_speedup is not None and result.measured_speedup > 0
        assert "speedup (measured)" in result.to_markdown()


BUILDERS = textwrap.dedent(
    """
    import torch
    from torch import nn
    from torch.nn.utils import prune

    def dense():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 10))

    def pruned():
        model = dense()
        prune.l1_unstructured(model[0], "weight", 0.5)
        return model
    """
)


@pytest.fixture
def builders(tmp_path: Path) -> str:
    path = tmp_path / "models.py"
    path.write_text(BUILDERS)
    return str(path)


class TestCLI:
    def test_compression_view_and_micronet(self, builders: str) -> None:
        code, out, err = run(
            [f"{builders}:pruned", "--input", "1x100", "--compression", "--micronet", "imagenet"]
        )
        assert code == 0, err
        assert "compression view" in out
        assert "50.0%" in out  # layer 0 sparsity
        assert "MicroNet (imagenet" in out

    def test_assume_bits(self, builders: str) -> None:
        code, out, _ = run([f"{builders}:dense", "--input", "1x100", "--assume-bits", "w4a16"])
        assert code == 0
        assert "w4a16" in next(x for x in out.splitlines() if "(0): Linear(" in x)

    def test_bad_assumption_is_a_usage_error(self, builders: str) -> None:
        code, _, err = run([f"{builders}:dense", "--input", "1x100", "--assume-bits", "4bit"])
        assert code == 2
        assert "w4a16" in err

    def test_compare_markdown(self, builders: str) -> None:
        code, out, err = run(
            [
                "compare",
                f"{builders}:dense",
                f"{builders}:pruned",
                "--input",
                "1x100",
                "--compression",
                "--format",
                "markdown",
            ]
        )
        assert code == 0, err
        assert "| 0 | Linear | in place |" in out
        assert "| total |" in out

    def test_compare_compression_needs_two_models(self, builders: str) -> None:
        code, _, err = run(
            ["compare", f"{builders}:dense", f"{builders}:dense", f"{builders}:dense", "--compression"]
        )
        assert code == 2
        assert "two models" in err


def test_html_and_plot_carry_the_table(tmp_path: Path) -> None:
    dense, pruned = _pruned_pair()
    result = flopmeter.compare(dense, pruned, torch.randn(4, 128))
    page = result.to_html()
    assert "<th>nonzero ratio</th>" in page and "<td>total</td>" in page
    assert "not a measurement" in page
    pytest.importorskip("matplotlib")
    path = tmp_path / "compare.png"
    result.plot(path)
    assert path.stat().st_size > 0


class _QuantizedZoo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.dequant = torch.ao.quantization.DeQuantStub()
        self.conv1d = nn.Conv1d(4, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2)
        self.conv3d = nn.Conv3d(2, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(6)
        self.act = nn.Hardswish()
        self.ops = torch.ao.nn.quantized.FloatFunctional()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> tuple[torch.Tensor, ...]:
        up = self.act(self.norm(self.up(self.quant(x2))))
        up = self.pool(self.ops.cat([self.ops.add(up, up), self.ops.mul(up, up)], 1))
        return (
            self.dequant(self.conv1d(self.quant(x1))),
            self.dequant(up),
            self.dequant(self.conv3d(self.quant(x3))),
        )


def test_quantized_convolutions_and_ops_are_all_counted() -> None:
    import torch.ao.quantization as tq

    model = _QuantizedZoo().eval()
    model.qconfig = tq.get_default_qconfig("fbgemm")
    model.up.qconfig = tq.default_qconfig  # per-tensor for the transposed conv
    tq.prepare(model, inplace=True)
    args = (torch.randn(1, 4, 10), torch.randn(1, 4, 8, 8), torch.randn(1, 2, 4, 4, 4))
    model(*args)
    tq.convert(model, inplace=True)
    report = flopmeter.profile(model, args)
    assert not report.unsupported
    assert report.modules["conv1d"].total.macs == 960  # 10 positions * 8 out * 4 in * 3
    assert report.modules["up"].total.macs == 13_824  # 64 inputs * 4 in * 6 out * 9 (scattered)
    assert report.modules["conv3d"].total.macs == 13_824  # 64 positions * 4 out * 2 in * 27
    assert report.params == 4 * 8 * 3 + 8 + 4 * 6 * 9 + 6 + 2 * 4 * 27 + 4 + 12  # = 576 (+ BatchNorm's 12)


def test_dynamic_lstm_and_fp16_linear() -> None:
    import torch.ao.quantization as tq

    # quantize_dynamic swaps children only: the LSTM must sit inside a container
    # (probe-3: a bare nn.LSTM stayed float, so this test had measured a float LSTM)
    lstm = tq.quantize_dynamic(nn.Sequential(nn.LSTM(8, 16)), {nn.LSTM}, torch.qint8)
    assert type(lstm[0]).__module__.startswith("torch.ao.nn.quantized.dynamic")
    report = flopmeter.profile(lstm, torch.randn(5, 1, 8))
    assert not report.unsupported
    assert report.params == 4 * 16 * (8 + 16) + 2 * 4 * 16  # = 1,664, as the float LSTM
    assert report.macs == 5 * 4 * 16 * (8 + 16)  # 5 steps of the 4 gates = 7,680
    fp16 = tq.quantize_dynamic(nn.Sequential(nn.Linear(8, 4)), {nn.Linear}, torch.float16)
    report = flopmeter.profile(fp16, torch.randn(2, 8))
    assert report.macs == 64  # 2 * 8 * 4
    assert report.flops == 128  # 8 outputs * (2*8 - 1) + 8 bias: float work
    assert report.compression.layers["0"].weight_bits == 16


class TestCLIFormats:
    def test_assume_sparsity_pattern(self, builders: str) -> None:
        code, out, _ = run([f"{builders}:dense", "--input", "1x100", "--assume-sparsity", "2:4"])
        assert code == 0
        assert "2:4" in out and "assuming" in out

    def test_count_overhead_puts_the_mask_multiply_back(self, builders: str) -> None:
        _, plain, _ = run([f"{builders}:pruned", "--input", "1x100", "--format", "json"])
        _, counted, _ = run(
            [f"{builders}:pruned", "--input", "1x100", "--format", "json", "--count-overhead"]
        )
        flops = json.loads(plain)["totals"]["flops"], json.loads(counted)["totals"]["flops"]
        assert flops[1] - flops[0] == 5_000  # weight_orig * weight_mask: 50 * 100 multiplies
        assert json.loads(plain)["compression"]["totals"]["sparsity"] == pytest.approx(0.5 * 5_000 / 5_500)

    @pytest.mark.parametrize("fmt", ["json", "csv", "markdown", "text"])
    def test_compare_quiet_keeps_the_total_row_only(self, builders: str, fmt: str) -> None:
        """probe-2: -q ("the totals only") had been ignored by compare --compression."""
        args = ["compare", f"{builders}:dense", f"{builders}:pruned", "--input", "1x100", "--compression"]
        code, out, err = run([*args, "--format", fmt, "-q"])
        assert code == 0, err
        if fmt == "json":
            assert [row["module"] for row in json.loads(out)["rows"]] == ["total"]
        else:
            assert "total" in out and "Linear" not in out  # the modules' rows (type Linear) are gone
        code, full, err = run([*args, "--format", fmt])
        assert code == 0 and "Linear" in full

    @pytest.mark.parametrize("fmt", ["json", "csv", "html"])
    def test_compare_formats(self, builders: str, fmt: str, tmp_path: Path) -> None:
        plot = tmp_path / "ratios.png"
        args = ["compare", f"{builders}:dense", f"{builders}:pruned", "--input", "1x100", "--compression"]
        code, out, err = run([*args, "--format", fmt, "--hardware", "h100-sxm", "--plot", str(plot)])
        assert code == 0, err
        assert plot.exists()
        if fmt == "json":
            data = json.loads(out)
            assert data["hardware"] == "h100-sxm"
            assert [row["module"] for row in data["rows"]] == ["0", "2", "total"]
        elif fmt == "csv":
            assert out.splitlines()[0].startswith("module,type,change,params_before")
        else:
            assert out.startswith("<!DOCTYPE html>")


def test_torchao_float8_weight_only_with_bf16_activations() -> None:
    torchao = pytest.importorskip("torchao.quantization")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512)).to(torch.bfloat16)
    torchao.quantize_(model, torchao.Float8WeightOnlyConfig())
    report = flopmeter.profile(model, torch.randn(4, 256, dtype=torch.bfloat16))
    layer = report.compression.layers["0"]
    assert layer.representation == "torchao Float8Tensor"
    assert (layer.weight_bits, layer.act_bits) == (8, 16)  # fp8 weights, bf16 activations
    assert layer.weight_nonzero == 131_072  # fp8 values compared as floats, not truncated
    assert layer.bops == 524_288 * 8 * 16  # 4*256*512 MACs = 67,108,864
    assert layer.weight_bytes_actual == 131_072 + 512 * 4  # fp8 values + fp32 row scales
    assert not report.unsupported


def test_a_pruned_model_that_raises_keeps_its_real_weight() -> None:
    class Fails(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(8, 4)
            prune.l1_unstructured(self.layer, "weight", 0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x).reshape(3, -1)  # 4 values cannot make rows of 3

    model = Fails()
    with pytest.raises(flopmeter.ModelError):
        flopmeter.profile(model, torch.randn(1, 8))
    assert not model.layer.weight.is_meta
    assert torch.equal(model.layer.weight, model.layer.weight_orig * model.layer.weight_mask)


@pytest.mark.parametrize("how", ["setitem", "data_mul", "prune_remove"])
def test_pruning_in_place_after_a_profile_leaves_that_report_as_it_was(how):
    """probe-2: the in-place workflow, before = profile(m); prune m; after = profile(m);
    compare(before, after). The nonzeros had been counted at the first read of the view,
    after the pruning: the table said 1.00 everywhere. Layer 0 keeps half its weights."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).eval()
    x = torch.randn(2, 64)
    before = flopmeter.profile(model, x, compression=True)
    weight = model[0].weight
    with torch.no_grad():
        if how == "setitem":
            weight[:, :32] = 0
        elif how == "data_mul":  # .data bypasses the version counter: no cheap check sees it
            mask = torch.ones_like(weight)
            mask[:, :32] = 0
            weight.data.mul_(mask)
    if how == "prune_remove":
        prune.l1_unstructured(model[0], "weight", amount=0.5)
        prune.remove(model[0], "weight")
    after = flopmeter.profile(model, x, compression=True)
    assert before.compression.layers["0"].weight_nonzero == 64 * 64  # = 4,096, as profiled
    assert after.compression.layers["0"].weight_nonzero == 64 * 64 // 2  # = 2,048
    comparison = flopmeter.compare(before, after)
    first = next(layer for layer in comparison.layers if layer.name == "0")
    assert first.nonzero_ratio == pytest.approx((2048 + 64) / (4096 + 64))  # bias kept: 64 nonzeros


@pytest.mark.parametrize(
    "shape, zeroed",
    [
        ((30, 8), "row"),  # a padding row: 8 zeros of 240, counted from their positions
        ((16, 4, 3, 3), "scattered"),  # a few exact zeros in a conv weight
        ((16, 4, 3, 3), "column"),  # an input channel pruned: 16*9 = 144 of 576 zeros (the slow path)
        ((12, 8), "half"),  # 50 %: also the N:M check
        # from 2**20 = 1,048,576 elements a weight is counted in 16 pieces, and only the pieces
        # holding a zero are searched: 1,100*1,000 = 1,100,000 elements, pieces of 68,750
        ((1100, 1000), "row"),  # 1,000 zeros, all in piece 0 (row 3: elements 3,000..3,999)
        ((512, 256, 3, 3), "scattered"),  # 1,179,648 elements, pieces of 73,728: zeros on piece edges
        (
            (512, 256, 3, 3),
            "column",
        ),  # 512*9 = 4,608 zeros <= 1,179,648 // 64 = 18,432: "few", in every piece
        ((1000, 1100), "transposed"),  # a strided view: counted whole
        ((1100, 1000), "half"),
        ((10, 4, 3, 3), "all"),  # a zero-initialised weight: 10 empty rows, 4 empty input channels
    ],
)
def test_nonzero_counts_per_row_and_column_agree_with_brute_force(shape, zeroed):
    from flopmeter.compression.facts import _count_nonzeros, _tensor_fact

    torch.manual_seed(0)
    values = torch.randn(shape)
    if zeroed == "row":
        values[3] = 0
    elif zeroed == "scattered":
        edges = [5, 77, 300] if values.numel() < 2**20 else [0, 73_727, 73_728, 500_000, values.numel() - 1]
        values.view(-1)[torch.tensor(edges)] = 0
    elif zeroed == "column":
        values[:, 2] = 0
    elif zeroed == "transposed":
        values = torch.randn(shape[1], shape[0]).t()  # not contiguous
        values[7, :] = 0
        values[:, 3] = 0
    elif zeroed == "all":
        values.zero_()
    else:
        values.view(-1)[::2] = 0
    fact = _tensor_fact("m", "weight", values)
    _count_nonzeros(fact, values)
    rows = values.reshape(shape[0], -1)
    assert fact.nonzero == int((values != 0).sum())
    assert fact.row_nonzero == [int((row != 0).sum()) for row in rows]
    columns = [int((values[:, c] != 0).sum()) for c in range(shape[1])]
    assert fact.zero_columns == sum(1 for count in columns if count == 0)
    # every other column of 8 (of 1,000 in a row of 1,000: the 500 even ones); the transposed one's column 3
    assert fact.zero_columns == {
        "column": 1,
        "half": 4 if shape == (12, 8) else 500,
        "transposed": 1,
        "all": 4,
    }.get(zeroed, 0)
    if zeroed == "half":
        assert fact.nm == (2, 4)  # at most 2 nonzeros in every 4
    if zeroed == "all":
        assert fact.nm is None and fact.structure == "channel"  # every row pruned: no N:M pattern
