"""The worked example of docs/compression.md: every number there, checked."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import flopmeter

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
DOC = (Path(__file__).parent.parent / "docs" / "compression.md").read_text()


@pytest.fixture(scope="module")
def reports() -> dict[str, flopmeter.Report]:
    from torchvision.models.quantization import resnet18

    torch.manual_seed(0)
    dense = resnet18(weights=None, quantize=False).eval()
    dense.fuse_model()
    pruned = copy.deepcopy(dense)
    for module in pruned.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):  # half at random: l1_unstructured's counts, faster
            mask = torch.ones_like(module.weight)
            mask.view(-1)[torch.randperm(mask.numel())[: mask.numel() // 2]] = 0
            prune.custom_from_mask(module, "weight", mask)
    int8 = copy.deepcopy(dense)
    int8.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    torch.ao.quantization.prepare(int8, inplace=True)
    int8(torch.randn(1, 3, 64, 64))  # calibration on random data
    torch.ao.quantization.convert(int8, inplace=True)
    x = torch.randn(1, 3, 224, 224)
    return {
        name: flopmeter.profile(m, x, name=name, compression=True)
        for name, m in [("dense", dense), ("pruned", pruned), ("int8", int8)]
    }


def _in_doc(value: int) -> int:
    assert f"{value:,}" in DOC, f"{value:,} is not in docs/compression.md"
    return value


def test_dense_column(reports: dict) -> None:
    r = reports["dense"]
    assert r.params == _in_doc(11_684_712)
    assert r.macs == _in_doc(1_814_073_344)
    assert r.flops == _in_doc(3_632_838_144)
    assert r.compression.bytes_actual == r.compression.bytes_ideal == _in_doc(46_738_848)  # 11,684,712 * 4
    assert r.compression.bits_per_weight == 32.0


def test_pruned_column(reports: dict) -> None:
    r, view = reports["pruned"], reports["pruned"].compression
    assert r.params == 11_684_712  # masking keeps the logical params
    assert r.macs == 1_814_073_344 and r.flops == 3_632_838_144  # as executed: the mask multiply is overhead
    assert view.nonzero_params == _in_doc(5_845_256)
    assert view.sparsity == pytest.approx(0.5, abs=1e-6)
    assert view.macs_effective == _in_doc(907_036_672)  # every layer keeps round(N/2): exactly half
    assert view.flops_effective == _in_doc(1_818_764_800)
    assert view.bops_relative == pytest.approx(0.5)
    assert view.bytes_actual == _in_doc(93_454_496)  # weight_orig + its float mask + the rest
    assert view.bytes_ideal == _in_doc(24_840_888)  # nz*4 + N/8 bitmask + biases, BN at 4 B
    assert view.bits_per_weight == pytest.approx(17.0, abs=0.005)  # 32 * 0.5 + 1 bitmask bit
    result = flopmeter.compare(reports["dense"], r)
    total = result.rows()[-1]
    assert total["nonzero_ratio"] == pytest.approx(0.5, abs=0.001)
    assert total["mac_speedup_effective"] == pytest.approx(2.0)
    assert result.speedup_estimate == pytest.approx(1.0)


def test_int8_column(reports: dict) -> None:
    r, view = reports["int8"], reports["int8"].compression
    assert r.params == 11_684_712  # the fused float model's
    assert r.macs == 1_814_073_344
    assert r.flops == 0  # integer MACs
    assert not r.unsupported
    assert view.bytes_actual == _in_doc(11_794_912)  # int8 values + 16 B per channel + fp32 biases
    assert 0.95 < view.nonzero_params / r.params < 1.0  # "about 98.9 %" in the doc
    assert view.bops_relative <= 0.0625
    assert f"{view.bits_per_weight:.2f}" == "8.06"
    result = flopmeter.compare(reports["dense"], r)
    assert {layer.change for layer in result.layers} == {"in place"}
    assert f"{result.rows()[-1]['size_ratio_actual']:.3f}" == "0.252"
    conv = next(layer for layer in result.layers if layer.name == "layer1.0.conv1.0")
    assert conv.speedup_estimate == pytest.approx(2.0)  # compute-bound: int8 624 / float16 312
    assert "int8 624.0 TOPS vs baseline float16 312.0 TFLOP/s" in conv.estimate_reason
    numbers = result.basis.numbers if result.basis else {}
    assert numbers["before"] == pytest.approx(48 * 6e-6 + 96 * 1.5e-6)  # 432 us: overhead-bound
    assert numbers["after"] == pytest.approx(31 * 6e-6 + 78 * 1.5e-6)  # 303 us
    assert f"{result.speedup_estimate:.2f}" == "1.43" and "**1.43×**" in DOC  # 432 / 303


def test_readme_table_is_what_compare_prints() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    pruned = copy.deepcopy(dense)
    prune.l1_unstructured(pruned[0], "weight", amount=0.75)
    table = flopmeter.compare(dense, pruned, torch.randn(64, 512)).to_markdown()
    assert table in readme
