"""ONNX exports of real models count like the PyTorch models they came from.

MACs equal exactly. FLOPs equal, or differ by a residual each test derives:
- BatchNorm folded into the Conv (both exporters): a BN costs 2E + 5C FLOPs
  (x*scale + shift per element, 5 per channel for the folded scale); the folded Conv
  gains E bias adds. So ONNX - PyTorch = -(E + 5C) per BN = -(BN FLOPs + 5C) / 2,
  and params lose 2C (gamma, beta) and gain C (the conv bias): -C per BN. (These
  models' Convs have no bias; test_onnx_batchnorm_fold.py covers a Conv with one.)
- Dynamo exports of transformers models materialize the attention mask PyTorch
  skipped (no padding: is_causal / no mask in eager, a mask tensor in the export):
  one add per score, heads * T * T per layer.
"""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from flopmeter.onnx import profile_onnx  # noqa: E402
from onnx_exports import TEXT_LENGTH, Exported, export  # noqa: E402

_CACHE: dict[tuple[str, str], Exported] = {}


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("onnx_exports")

    def get(name: str, exporter: str) -> Exported:
        key = (name, exporter)
        if key not in _CACHE:
            _CACHE[key] = export(name, exporter, folder)
        return _CACHE[key]

    return get


def _bn_residual(torch_report) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(FLOPs residual, params residual) of folding every BatchNorm into its Conv."""
    bn = next(o for name, o in torch_report.by_operator().items() if "batch_norm" in name)
    channels = sum(m.own_params for m in torch_report.modules.values() if m.type == "BatchNorm2d") // 2
    return -(bn.cost.flops + 5 * channels) // 2, -channels


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
@pytest.mark.parametrize("exporter", ["legacy", "dynamo18", "dynamo23"])
def test_cnn_counts_equal_pytorch_up_to_folded_batch_norm(exported, name: str, exporter: str) -> None:  # type: ignore[no-untyped-def]
    if name == "mobilenet_v2" and exporter == "dynamo23":
        pytest.skip("opset 23 is covered by resnet18 (exports are slow)")
    model = exported(name, exporter)
    report = profile_onnx(model.path)
    torch_report = model.torch_report
    flops_residual, params_residual = _bn_residual(torch_report)
    assert report.macs == torch_report.macs
    assert report.flops - torch_report.flops == flops_residual
    assert report.params - torch_report.params == params_residual
    batch_norms = sum(1 for m in torch_report.modules.values() if m.type == "BatchNorm2d")
    assert report.options["onnx"]["differences"]["folded_batch_norm"] == batch_norms
    assert not report.unsupported


def test_resnet18_numbers_by_hand(exported) -> None:  # type: ignore[no-untyped-def]
    """resnet18 at 64x64: conv1 is 64 outputs-channels x 32x32 x (3*7*7) = 9,633,792 MACs."""
    report = profile_onnx(exported("resnet18", "legacy").path)
    assert report.modules["conv1"].macs == 64 * 32 * 32 * 3 * 7 * 7  # 9,633,792
    assert report.modules["fc"].macs == 512 * 1000  # 512,000
    assert report.modules["fc"].params == 512 * 1000 + 1000  # 513,000


@pytest.mark.parametrize("exporter", ["legacy", "dynamo18", "dynamo23"])
def test_resnet18_module_tree_matches_pytorch(exported, exporter: str) -> None:  # type: ignore[no-untyped-def]
    model = exported("resnet18", exporter)
    report = profile_onnx(model.path)
    torch_modules = model.torch_report.modules
    for name in ("conv1", "layer1", "layer1.0", "layer1.0.conv1", "layer4.1.conv2", "fc"):
        assert report.modules[name].macs == torch_modules[name].macs, name
    # layer3 folds 5 BatchNorms of 256 channels (two per block, one in the downsample)
    assert report.modules["layer3"].params - torch_modules["layer3"].params == -5 * 256  # -1,280


@pytest.mark.parametrize("exporter", ["legacy", "dynamo18", "dynamo23"])
def test_bert_counts_equal_pytorch(exported, exporter: str) -> None:  # type: ignore[no-untyped-def]
    model = exported("bert", exporter)
    report = profile_onnx(model.path, dims=model.dims)
    torch_report = model.torch_report
    assert report.macs == torch_report.macs
    assert report.params == torch_report.params
    mask = (
        0 if exporter == "legacy" else 2 * 4 * TEXT_LENGTH * TEXT_LENGTH
    )  # 2 layers x 4 heads x T x T = 2,048
    assert report.flops - torch_report.flops == mask
    assert report.modules["model.encoder.layer.1.intermediate"].macs == TEXT_LENGTH * 64 * 128  # 131,072
    assert not report.unsupported


@pytest.mark.parametrize("exporter", ["dynamo18", "dynamo23"])
def test_llama_counts_equal_pytorch(exported, exporter: str) -> None:  # type: ignore[no-untyped-def]
    """Residual: the materialized mask (+2,048, as BERT). At opset 18 the optimizer also
    drops the rotary attention_scaling multiplies (cos * 1.0, sin * 1.0: 2 x T x 16 =
    -512); at opset 23 those are dropped too, but cos and sin are computed once per
    layer instead of once per model (+256 + 256)."""
    model = exported("llama", exporter)
    report = profile_onnx(model.path, dims=model.dims)
    torch_report = model.torch_report
    assert report.macs == torch_report.macs
    assert report.params == torch_report.params
    mask = 2 * 4 * TEXT_LENGTH * TEXT_LENGTH  # 2,048
    rotary = -512 if exporter == "dynamo18" else 0
    assert report.flops - torch_report.flops == mask + rotary
    assert (
        report.modules["model.model.layers.0.mlp"].macs
        == torch_report.modules["model.model.layers.0.mlp"].macs
    )
    assert not report.unsupported


def test_llama_dims_scale_the_count(exported) -> None:  # type: ignore[no-untyped-def]
    """Binding T=32 instead of 16 doubles every linear layer's MACs."""
    model = exported("llama", "dynamo18")
    short = profile_onnx(model.path, dims={"T": 16})
    long = profile_onnx(model.path, dims={"T": 32})
    head = "model.lm_head"
    assert long.modules[head].macs == 2 * short.modules[head].macs == 2 * 16 * 64 * 1000  # 2,048,000


@pytest.mark.parametrize("mode", ["dynamic", "static_qoperator", "static_qdq"])
def test_quantized_resnet18_counted_with_bits(exported, tmp_path, mode: str) -> None:  # type: ignore[no-untyped-def]
    """onnxruntime's quantize_dynamic (ConvInteger, MatMulInteger) and quantize_static
    (QLinearConv + QGemm, or QDQ pairs): the same MACs as the float model, integer
    MACs not counted as FLOPs, 8-bit weights and activations per conv and fc."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    import numpy as np

    model = exported("resnet18", "legacy")
    target = tmp_path / f"{mode}.onnx"
    if mode == "dynamic":
        quantization.quantize_dynamic(str(model.path), str(target), weight_type=quantization.QuantType.QInt8)
    else:

        class Calibration(quantization.CalibrationDataReader):
            def __init__(self) -> None:
                self.left = 1

            def get_next(self):  # type: ignore[no-untyped-def]
                self.left -= 1
                return (
                    {"ids": np.random.default_rng(0).normal(size=(1, 3, 64, 64)).astype(np.float32)}
                    if self.left >= 0
                    else None
                )

        fmt = quantization.QuantFormat.QDQ if mode == "static_qdq" else quantization.QuantFormat.QOperator
        quantization.quantize_static(str(model.path), str(target), Calibration(), quant_format=fmt)
    report = profile_onnx(target)
    assert report.macs == model.torch_report.macs
    assert report.params == model.torch_report.params + _bn_residual(model.torch_report)[1]
    facts = report.options["onnx"]["quantized"]
    assert len(facts) == 21  # 20 convs + fc
    conv1 = next(f for f in facts if f["module"] == "conv1")
    assert conv1["macs"] == 64 * 32 * 32 * 3 * 7 * 7  # 9,633,792
    assert conv1["weight_bits"] == 8 and conv1["activation_bits"] == 8
    assert conv1["weight_bytes"] == 64 * 3 * 7 * 7  # 9,408: one byte per weight
    assert conv1["bops"] == conv1["macs"] * 64
    assert conv1["qdq"] == (mode == "static_qdq")
    if mode != "static_qdq":  # integer kernels: their MACs are not FLOPs
        assert report.modules["conv1"].flops < report.modules["conv1"].macs
    assert not report.unsupported


def test_cli_compares_an_onnx_file_with_its_pytorch_model(exported) -> None:  # type: ignore[no-untyped-def]
    from flopmeter.cli import run

    path = exported("resnet18", "legacy").path
    code, out, err = run(["compare", str(path), "torchvision:resnet18", "--input", "1x3x64x64"])
    assert code == 0, err
    assert "resnet18_legacy.onnx" in out and "torchvision:resnet18" in out
    assert "layer1" in out  # modules shared by name


def test_onnx_tool_view_reproduces_onnx_tools_resnet18_total(exported) -> None:  # type: ignore[no-untyped-def]
    """onnx-tool 1.0.1 on the legacy resnet18 export at 1x3x224x224 reports 1,821,452,264
    MACs (checked by hand once; onnx-tool is not a test dependency)."""
    report = profile_onnx(exported("resnet18", "legacy").path, inputs=(1, 3, 224, 224))
    by_op = {op: stats.cost.onnx_tool_macs for op, stats in report.operators.items()}
    aten_macs = 1_814_073_344  # PyTorch's MACs; onnx-tool adds one bias add per conv output:
    conv_outputs = 2_483_712  # every conv's output elements (all 20 carry a folded-BN bias)
    assert report.macs == aten_macs
    assert by_op["onnx.Conv"] == aten_macs - 512 * 1000 + conv_outputs  # 1,816,045,056
    assert by_op["onnx.Gemm"] == 512 * 1000 + 1000  # MACs + 1,000 bias adds
    assert by_op["onnx.Relu"] == 2_308_096  # 1 per element of the 17 ReLU outputs
    assert by_op["onnx.MaxPool"] == 64 * 56 * 56 * 9  # 3x3 window, 1 compare per cell: 1,806,336
    assert by_op["onnx.Add"] == 752_640  # residual adds: 2*(64*56*56 + 128*28*28 + 256*14*14 + 512*7*7)
    assert (
        by_op["onnx.GlobalAveragePool"] == 512 * 7 * 7 + 4 * 512
    )  # adds + one divide (4) per output: 27,136
    # 1,814,073,344 + 2,483,712 + 1,000 + 2,308,096 + 1,806,336 + 752,640 + 27,136
    assert report.flops_as("onnx-tool") == 1_821_452_264
    assert report.modules["layer1"].total.onnx_tool_macs > 0  # a view per module too
    assert report.options["onnx"]["onnx_tool_no_rule"] == {}


@pytest.mark.parametrize("exporter", ["legacy", "dynamo18"])
def test_resnet18_peak_activation_bytes_equal_pytorch(exported, exporter: str) -> None:  # type: ignore[no-untyped-def]
    """Lifetimes along the ONNX graph give the peak PyTorch measured while running it."""
    model = exported("resnet18", exporter)
    report = profile_onnx(model.path)
    assert report.peak_activation_bytes == model.torch_report.peak_activation_bytes > 0


@pytest.mark.parametrize("exporter", ["legacy", "dynamo23"])  # dynamo18 gives the same (checked; slow)
def test_vit_counts_equal_pytorch(exported, exporter: str) -> None:  # type: ignore[no-untyped-def]
    """vit_b_16's architecture at a small size (2 layers, 2 heads, hidden 32, 32x32 images):
    MACs equal exactly. FLOPs equal for dynamo; the legacy export computes the softmax
    scale at run time from q's shape, 3 scalar FLOPs per attention (Sqrt, 1/Sqrt, Sqrt:
    it scales q and k by sqrt(1/sqrt(E)) each): +3 x 2 layers = +6.
    Params: the class token (1x1x32) and position embedding (1x5x32) are read outside
    weight slots; dynamo names the position embedding a parameter (%p_...) and folds
    class_token.expand(batch) into a constant that a Concat puts before the patches and the
    position embedding's Add reads, a (1, 1, C) vector: a parameter, so dynamo is exact;
    legacy has neither: -32 - 160 = -192."""
    model = exported("vit", exporter)
    report = profile_onnx(model.path)
    torch_report = model.torch_report
    assert report.macs == torch_report.macs
    assert report.flops - torch_report.flops == (6 if exporter == "legacy" else 0)
    assert report.params - torch_report.params == (-192 if exporter == "legacy" else 0)
    assert not report.unsupported
    attention = "encoder.layers.encoder_layer_0.self_attention"
    assert report.modules[attention].macs == torch_report.modules[attention].macs


def test_onnx_tool_view_of_a_dynamo_export_pools_by_reducemean(exported) -> None:  # type: ignore[no-untyped-def]
    """P11-E4, docs/onnx.md: `torch.onnx.export`'s default (dynamo) writes resnet18's
    average pool as ReduceMean, which onnx-tool counts 1 per input element with no divide,
    so its total is 4 x 512 below the legacy export's 1,821,452,264 (GlobalAveragePool)."""
    report = profile_onnx(exported("resnet18", "dynamo18").path, inputs=(1, 3, 224, 224))
    by_op = {op: stats.cost.onnx_tool_macs for op, stats in report.operators.items()}
    assert "onnx.GlobalAveragePool" not in by_op
    assert by_op["onnx.ReduceMean"] == 512 * 7 * 7  # 25,088
    assert report.flops_as("onnx-tool") == 1_821_452_264 - 4 * 512  # 1,821,450,216
