"""Probe 13 (compression users): pruned-then-quantized torch.ao layers skip their zeros in
the integer ops and read their structure; emulation modules are not timed in compare."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

import flopmeter


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


def _pruned_rows(layer: nn.Linear, kept: int) -> None:
    """Only the last ``kept`` output rows stay (prune, then ``prune.remove``: the zeros are
    baked into the weight); the kept weights are 0.5, so none rounds to the zero point."""
    with torch.no_grad():
        layer.weight.fill_(0.5)
    mask = (torch.arange(layer.out_features) >= layer.out_features - kept).float()[:, None]
    mask = mask.expand_as(layer.weight).clone()
    prune.custom_from_mask(layer, "weight", mask)
    prune.remove(layer, "weight")


class TestPrunedThenQuantized:
    def test_dynamic_int8_linear_skips_its_pruned_columns(self) -> None:
        import torch.ao.quantization as tq

        model = nn.Sequential(nn.Linear(16, 8)).eval()
        _pruned_rows(model[0], 4)
        quantized = tq.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        report = flopmeter.profile(quantized, torch.randn(3, 16))
        layer = report.compression.layers["0"]
        assert layer.representation == "torch.ao dynamic qint8 per_tensor"
        assert layer.weight_nonzero == 64  # 4 kept rows * 16 inputs
        assert layer.structure == "channel"  # 4 output rows all zero, the others full (was "unstructured")
        assert report.macs == 384  # as executed: 3 rows of x * 16 * 8
        assert layer.macs_effective == 192  # 3 * 64 nonzeros
        # the integer kernel adds the bias: 3 * 4 kept rows * (2*16 - 1) + 3 * 8 = 372 + 24
        # = 396 (it read the dense 3 * 8 * 2*16 = 768 before: a packed weight had no row counts)
        assert layer.int_ops_effective == 396
        assert layer.bops == 192 * 8 * 8  # = 12,288
        score = flopmeter.micronet(report.compression, "imagenet")  # per sample, 3 rows
        # mults 64 at 8 bits: 64*8/32 = 16; adds 4*(2*16 - 1) - 64 + 8 bias = 68 -> 84 (was 208:
        # 8*2*16 = 256 dense ops per sample less 64 mults, + 16); storage (64*8 + 128 mask + 8*8 bias)/32 = 22
        assert score.ops == 84.0 and score.storage == 22.0

    def test_static_int8_conv_with_a_zero_filter_is_channel_structured(self) -> None:
        import torch.ao.quantization as tq

        model = nn.Sequential(tq.QuantStub(), nn.Conv2d(2, 4, 3), tq.DeQuantStub()).eval()
        with torch.no_grad():
            model[1].weight.fill_(0.5)
            model[1].weight[0] = 0.0  # a whole-zero filter
        model.qconfig = tq.get_default_qconfig("fbgemm")  # per-channel weights
        tq.prepare(model, inplace=True)
        model(torch.randn(1, 2, 4, 4))
        tq.convert(model, inplace=True)
        report = flopmeter.profile(model, torch.randn(1, 2, 4, 4))
        layer = report.compression.layers["1"]
        assert layer.weight_nonzero == 54  # 3 filters * 2*3*3
        assert layer.structure == "channel"
        assert layer.macs_dense == 288  # 4 filters * 18 * 2*2 outputs
        assert layer.macs_effective == 216  # 54 * 4 uses
        # R = 4 outputs per filter: 4 * 3 * (2*18 - 1) + 4 * 4 bias adds = 420 + 16 = 436
        assert layer.int_ops_effective == 436
        assert layer.flops_effective == 0

    def test_torchao_int8_dynamic_after_pruning_matches(self) -> None:
        pytest.importorskip("torchao")
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        model = nn.Sequential(nn.Linear(16, 8)).eval()
        _pruned_rows(model[0], 4)
        quantize_(model, Int8DynamicActivationInt8WeightConfig())
        report = flopmeter.profile(model, torch.randn(3, 16))
        layer = report.compression.layers["0"]
        assert layer.weight_nonzero == 64 and layer.structure == "channel"
        assert layer.int_ops_effective == 372  # 3 * 4 kept rows * (2*16 - 1); the bias add stays float:
        assert layer.flops_effective == 24  # 3 * 8


class TestEmulationModulesAreNotTimed:
    def test_2_4_parametrization_estimates_no_slowdown(self) -> None:
        from torch.ao.pruning import WeightNormSparsifier

        torch.manual_seed(0)
        dense = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))
        sparse = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))
        sparse.load_state_dict(dense.state_dict())
        sparsifier = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)
        sparsifier.prepare(sparse, [{"tensor_fqn": "0.weight"}, {"tensor_fqn": "2.weight"}])
        sparsifier.step()
        result = flopmeter.compare(dense, sparse, torch.randn(4, 64))
        assert [layer.after.structure for layer in result.layers if layer.after] == ["2:4", "2:4"]
        assert result.ratio("macs_effective", invert=True) == pytest.approx(2.0)  # half of each row
        assert result.basis is not None
        # both: 3 ops * 6 us + 4 module calls (Sequential, 0, 1, 2) * 1.5 us = 24 us; the
        # sparse model's 2 ParametrizationList and 2 FakeSparsity calls emulate the mask
        # (their multiply is overhead) and are not timed (they were: 30 us, "0.80x")
        assert result.basis.numbers["overhead_before"] == pytest.approx(24e-6)
        assert result.basis.numbers["overhead_after"] == pytest.approx(24e-6)
        assert result.speedup_estimate == pytest.approx(1.0)
        assert type(sparse[0].parametrizations.weight[0]).__name__ == "FakeSparsity"  # left as it was
        # docs/compression.md: the same model with its zeros baked in (the mask squashed) reads
        # 1.00x too: 3 ops * 6 us + 4 module calls * 1.5 us = 24 us both
        sparsifier.squash_mask()
        baked = flopmeter.compare(dense, sparse, torch.randn(4, 64))
        assert baked.basis is not None and baked.basis.numbers["overhead_after"] == pytest.approx(24e-6)
        assert baked.speedup_estimate == pytest.approx(1.0)


class TestPrunedBias:
    def test_a_pruned_biass_zeros_are_not_nonzero_params(self) -> None:
        model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
        with torch.no_grad():
            model[0].bias.copy_(torch.tensor([0.1, -0.2, 0.3, -0.4]))
        prune.l1_unstructured(model[0], "bias", amount=0.5)  # the two smallest: 0.1, -0.2
        report = flopmeter.profile(model, torch.randn(2, 8), compression=True)
        view = report.compression
        assert view.layers["0"].nonzero_params == 32 + 2  # 8*4 weights + 2 of 4 bias entries
        assert view.layers["2"].nonzero_params == 8 + 2
        assert view.nonzero_params == 34 + 10  # was 46: the masked bias read as full
        assert view.by_module()[""].nonzero_params == 44
        assert view.sparsity == 0.0  # over the weights, biases apart
        # stored: weight 128 B + bias_orig 16 B + bias_mask 16 B
        assert view.layers["0"].bytes_actual == 160
        result = flopmeter.compare(
            nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2)), model, torch.randn(2, 8)
        )
        assert result.ratio("nonzero_params") == pytest.approx(44 / 46)


class TestDocumentedConventions:
    def test_a_zero_filter_with_a_bias_still_counts_its_bias_adds(self) -> None:
        conv = nn.Conv2d(4, 8, 3, padding=1)
        prune.custom_from_mask(conv, "weight", torch.cat([torch.zeros(4, 4, 3, 3), torch.ones(4, 4, 3, 3)]))
        layer = flopmeter.profile(nn.Sequential(conv), torch.randn(1, 4, 5, 5)).compression.layers["0"]
        assert layer.structure == "channel"
        assert layer.macs_effective == 3_600  # 4 kept filters * 36 * 25 positions
        # 25 * 4 kept filters * (2*36 - 1) + 25 * 8 bias adds (all 8 channels) = 7,100 + 200
        assert layer.flops_effective == 7_300

    def test_a_transposed_convs_zero_output_channels_count_no_bias(self) -> None:
        up = nn.ConvTranspose2d(4, 6, 3, stride=2)  # 1x4x5x5 -> 1x6x11x11, every output reached
        mask = torch.ones(4, 6, 3, 3)
        mask[:, :2] = 0  # output channels 0 and 1 receive nothing
        prune.custom_from_mask(up, "weight", mask)
        layer = flopmeter.profile(nn.Sequential(up), torch.randn(1, 4, 5, 5)).compression.layers["0"]
        assert layer.macs_effective == 3_600  # 4 * 4 kept channels * 9 * 25 inputs
        # 2 * 3,600: each product and each reached live output's bias; the 2 * 121 outputs
        # of the zeroed channels are the bias alone (0)
        assert layer.flops_effective == 7_200

    def test_global_l1_at_93_percent_reads_3_of_8(self) -> None:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))
        prune.global_unstructured(
            [(model[0], "weight"), (model[2], "weight")], pruning_method=prune.L1Unstructured, amount=0.75
        )
        layer = flopmeter.profile(model, torch.randn(4, 64)).compression.layers["2"]
        assert layer.weight_nonzero == 295  # of 4,096: 92.8 % pruned here, 66.1 % in layer 0
        assert layer.structure == "3:8" and layer.ideal_format == "3:8"
        # 295 * 4 values + ceil(295 * 3 / 8) = 111 index bytes + 32 * 4 bias = 1,419
        assert layer.bytes_ideal == 1_419


def test_a_2_4_int8_layer_gets_the_w8a8_estimate_alone() -> None:
    pytest.importorskip("torchao")
    from torch.ao.pruning import WeightNormSparsifier
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(256, 256)).eval()
    after = nn.Sequential(nn.Linear(256, 256)).eval()
    after.load_state_dict(dense.state_dict())
    sparsifier = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)
    sparsifier.prepare(after, [{"tensor_fqn": "0.weight"}])
    sparsifier.step()
    sparsifier.squash_mask()
    quantize_(after, Int8DynamicActivationInt8WeightConfig())
    result = flopmeter.compare(dense, after, torch.randn(128, 256))  # 128 rows: 2:4 would apply
    layer = result.layers[0]
    assert layer.after is not None and layer.after.structure == "2:4"
    assert (layer.after.weight_bits, layer.after.act_bits) == (8, 8)
    assert "W8A8" in layer.estimate_reason and "2:4" not in layer.estimate_reason
    # docs/compression.md: memory-bound either way on the a100, so the bytes' ratio. Before:
    # (x 128*256 + W 256*256 + b 256 + y 128*256) float32 = 525,312 B, at float16 262,656.
    # After: the activations (525,312 - 262,144 weight) at 8 bits 65,792 + the weight as stored
    # (65,536 int8 + 256 float32 scales 1,024 + 256 int8 zero points) 66,816 = 132,608.
    assert layer.basis is not None and layer.basis.hardware == "a100-sxm-80gb"  # compare's default
    assert layer.speedup_estimate == pytest.approx(262_656 / 132_608)  # 1.98
