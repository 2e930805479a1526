"""flopmeter.profile end to end: per-module numbers of toy models and AlexNet."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopmeter


class ConvNet(nn.Module):
    """Expected per-module counts are written beside each layer."""

    EXPECTED = {
        # Conv2d(3, 8, 3, padding=1) on 1x3x8x8: 8*8*8 = 512 outputs of length 27, + bias
        "conv": {"macs": 13_824, "flops": 27_648},  # 27*512; 2*27*512
        # ReLU: 1 per element
        "act": {"macs": 0, "flops": 512},
        # Linear(512, 10): 10 dot products of length 512, + bias
        "fc": {"macs": 5_120, "flops": 10_240},  # 512*10; 2*512*10
    }

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


class TestToyModels:
    def test_conv_net_per_module(self):
        report = flopmeter.profile(ConvNet(), torch.randn(1, 3, 8, 8))
        modules = report.by_module()
        for name, expected in ConvNet.EXPECTED.items():
            assert modules[name].total.macs == expected["macs"], name
            assert modules[name].total.flops == expected["flops"], name
        assert report.macs == 18_944  # 13,824 + 5,120
        assert report.flops == 38_400  # 27,648 + 512 + 10,240
        assert report.params == 8 * 27 + 8 + 5120 + 10  # 5,354
        assert report.unsupported_ops() == {}

    def test_batch_is_explicit(self):
        one = flopmeter.profile(ConvNet(), torch.randn(1, 3, 8, 8))
        four = flopmeter.profile(ConvNet(), torch.randn(4, 3, 8, 8))
        assert four.batch_size == 4
        assert four.flops == 4 * one.flops == 153_600  # 4*38,400
        assert four.per_sample()["flops"] == one.flops
        assert four.per_sample()["macs"] == 18_944

    def test_functional_ops_and_operators_are_counted(self):
        class Functional(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.w = nn.Parameter(torch.randn(6, 5))

            def forward(self, x):
                y = x @ self.w  # (4x6)@(6x5): 20 dots of length 6
                z = torch.einsum("ij,jk->ik", x, self.w)  # the same product, written as einsum
                return F.relu(y) + z

        report = flopmeter.profile(Functional(), torch.randn(4, 6))
        assert report.macs == 240  # 2 * 4*5*6
        # 2 products * 20*(2*6-1) = 440; relu 20; add 20
        assert report.flops == 480
        assert report.unsupported_ops() == {}

    def test_shared_module_counted_once_in_params_twice_in_flops(self):
        class Shared(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(4, 4)
                self.alias = self.fc

            def forward(self, x):
                return self.alias(self.fc(x))

        report = flopmeter.profile(Shared(), torch.randn(1, 4))
        assert report.params == 20  # 4*4 + 4, once
        assert report.flops == 64  # two calls of 4 dots of length 4 with bias: 2 * 4*8
        assert report.by_module()["fc"].calls == 2
        assert "alias" not in report.by_module()

    def test_tied_weights_counted_once(self):
        class Tied(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = nn.Embedding(10, 4)
                self.head = nn.Linear(4, 10, bias=False)
                self.head.weight = self.embed.weight

            def forward(self, ids):
                return self.head(self.embed(ids))

        report = flopmeter.profile(Tied(), torch.zeros(1, 3, dtype=torch.long))
        assert report.params == 40  # 10*4, once
        # head: 3 tokens * 10 outputs, dots of length 4, no bias: 30*(2*4-1) = 210
        assert report.flops == 210
        assert report.macs == 120  # 3*10*4


@pytest.fixture(scope="module")
def report():
    torchvision = pytest.importorskip("torchvision")
    return flopmeter.profile(torchvision.models.alexnet(), torch.randn(1, 3, 224, 224))


class TestAlexNet:
    def test_params(self, report):
        assert report.params == 61_100_840

    @pytest.mark.parametrize(
        "name,c_in,k,c_out,h_out",
        [
            ("features.0", 3, 11, 64, 55),  # stride 4, padding 2: (224+4-11)//4+1 = 55
            ("features.3", 64, 5, 192, 27),
            ("features.6", 192, 3, 384, 13),
            ("features.8", 384, 3, 256, 13),
            ("features.10", 256, 3, 256, 13),
        ],
    )
    def test_convs_follow_the_seed_formula(self, report, name, c_in, k, c_out, h_out):
        stats = report.by_module()[name]
        assert stats.total.macs == c_in * k * k * h_out * h_out * c_out
        assert stats.total.flops == 2 * c_in * k * k * h_out * h_out * c_out  # with bias

    def test_first_conv_by_hand(self, report):
        assert report.by_module()["features.0"].total.macs == 70_276_800  # 3*11*11*55*55*64
        assert report.by_module()["features.0"].total.flops == 140_553_600  # 2*3*121*3025*64

    @pytest.mark.parametrize(
        "name,i,o", [("classifier.1", 9216, 4096), ("classifier.4", 4096, 4096), ("classifier.6", 4096, 1000)]
    )
    def test_linears_follow_the_seed_formula(self, report, name, i, o):
        stats = report.by_module()[name]
        assert stats.total.macs == i * o
        assert stats.total.flops == 2 * i * o  # (2I-1)*O + O bias adds

    def test_no_unsupported_and_tree_looks_like_the_seed(self, report):
        assert report.unsupported_ops() == {}
        text = str(report)
        assert "AlexNet(" in text and "(features): Sequential(" in text
        assert "61.10 M params" in text and "% MACs" in text and "FLOPs" in text
        assert "(0): Conv2d(23.30 K params, 0.04% params, 70.28 MMACs" in text


class TestInputs:
    def test_input_shape_builds_inputs(self):
        report = flopmeter.profile(ConvNet(), input_shape=(2, 3, 8, 8))
        assert report.batch_size == 2 and report.flops == 76_800  # 2*38,400

    def test_dict_inputs_and_int_specs(self):
        class Embed(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.emb = nn.Embedding(100, 8)

            def forward(self, input_ids, attention_mask):
                return self.emb(input_ids) * attention_mask[..., None]

        model = Embed()
        report = flopmeter.profile(model, input_shape=["input_ids:2x5:int64", "attention_mask:2x5:int64"])
        assert report.flops == 80  # the multiply: 2*5*8 outputs, 1 FLOP each
        ids = torch.zeros(2, 5, dtype=torch.long)
        same = flopmeter.profile(model, {"input_ids": ids, "attention_mask": torch.ones(2, 5)})
        assert same.flops == 80

    def test_rejects_a_non_module(self):
        with pytest.raises(
            TypeError, match="expects a torch.nn.Module or a torch.export.ExportedProgram, got function"
        ):
            flopmeter.profile(lambda x: x, torch.randn(1))

    def test_needs_inputs(self):
        with pytest.raises(ValueError, match="needs inputs"):
            flopmeter.profile(ConvNet())

    def test_bad_spec(self):
        with pytest.raises(ValueError, match="expected a shape like 1x3x224x224"):
            flopmeter.profile(ConvNet(), input_shape="1by3")

    def test_wrong_input_shape_names_the_module(self):
        with pytest.raises(
            flopmeter.ModelError, match=r"module 'conv' \(Conv2d: 3, 8.*expected input.*4 channels"
        ):
            flopmeter.profile(ConvNet(), torch.randn(1, 4, 8, 8))
