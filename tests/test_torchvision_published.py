"""flopmeter's MACs and params equal the figures torchvision publishes for its weights
(``weights.meta["_ops"]``, headed "GFLOPS" in torchvision's docs but a count of
multiply-accumulates, rounded to three decimals; ``num_params``), read offline.
benchmarks/torchvision_published.py prints the whole zoo (76 models agree)."""

from __future__ import annotations

import pytest
import torch

import flopmeter

torchvision = pytest.importorskip("torchvision")


def _published(name: str) -> tuple[float, int, int]:
    weights = next(iter(torchvision.models.get_model_weights(name)))
    return weights.meta["_ops"], weights.meta["num_params"], weights.transforms().crop_size[0]


@pytest.mark.parametrize(
    "name", ["resnet18", "mobilenet_v2", "squeezenet1_1", "shufflenet_v2_x1_0", "efficientnet_b1", "swin_t"]
)
def test_macs_and_params_equal_torchvisions_published_figures(name: str) -> None:
    ops, params, crop = _published(name)
    model = torchvision.models.get_model(name, weights=None).eval()
    report = flopmeter.profile(model, torch.randn(1, 3, crop, crop))
    assert abs(report.macs / 1e9 - ops) <= 0.0005  # published to three decimals of a G
    assert report.params == params


def test_resnet18_published_figure_by_hand() -> None:
    ops, _, crop = _published("resnet18")
    assert (ops, crop) == (1.814, 224)
    # conv1: 3*7*7 * 112*112 * 64 = 118,013,952 of resnet18's 1,814,073,344 MACs (the
    # fc: 512*1000 = 512,000), which torchvision rounds to 1.814
    report = flopmeter.profile(torchvision.models.resnet18().eval(), torch.randn(1, 3, 224, 224))
    assert report.by_module()["conv1"].total.macs == 118_013_952
    assert report.by_module()["fc"].total.macs == 512_000
    assert report.macs == 1_814_073_344


def test_googlenet_built_without_weights_holds_its_auxiliary_classifiers() -> None:
    _, params, _ = _published("googlenet")
    built = torchvision.models.googlenet(weights=None).eval()  # aux_logits=True without weights
    report = flopmeter.profile(built, torch.randn(1, 3, 224, 224))
    assert params == 6_624_904  # the published model, loaded with aux_logits=False
    assert report.params == 13_004_888 == params + 6_379_984  # + aux1 and aux2, never run in eval
    without_aux = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
    assert flopmeter.profile(without_aux, torch.randn(1, 3, 224, 224)).params == params
