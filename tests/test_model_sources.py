"""Model sources that just work, never on the network (probe-1 A26-A28).

Every torchvision family builds with all its ``*weights*`` arguments off, and gets the
input it is built for; a transformers config too big for the memory is built on meta.
"""

import urllib.request

import pytest
import torch

from flopmeter import models
from flopmeter.cli import run
from flopmeter.inputs import InputSpec


@pytest.fixture
def no_network(monkeypatch):
    """Any download or URL open fails the test."""
    import torchvision.models._api as api

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access: {args[:1]}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(api, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.mark.parametrize(
    "name,inputs,kind",
    [
        # classification: the default weights' crop (inception: 299)
        ("mobilenet_v3_small", [InputSpec((1, 3, 224, 224))], "tensors"),
        ("inception_v3", [InputSpec((1, 3, 299, 299))], "tensors"),
        # vit_h_14 without weights is built for 224 (its SWAG weights' crop is 518)
        ("vit_h_14", [InputSpec((1, 3, 224, 224))], "tensors"),
        # segmentation: the weights' resize size
        ("lraspp_mobilenet_v3_large", [InputSpec((1, 3, 520, 520))], "tensors"),
        # detection: a list of images at the size its transform resizes to
        ("fasterrcnn_mobilenet_v3_large_320_fpn", [InputSpec((3, 320, 320))], "image_list"),
        # video: (N, C, T, H, W), 16 frames at the weights' crop; mvit needs 16 x 224 x 224
        ("r3d_18", [InputSpec((1, 3, 16, 112, 112))], "tensors"),
        ("mvit_v1_b", [InputSpec((1, 3, 16, 224, 224))], "tensors"),
        # optical flow: two frames
        ("raft_small", [InputSpec((1, 3, 224, 224))] * 2, "tensors"),
    ],
)
def test_torchvision_families_build_offline_with_their_input(no_network, name, inputs, kind):
    loaded = models.load_model(f"torchvision:{name}", meta=True)
    assert loaded.default_inputs == inputs
    assert loaded.input_kind == kind


@pytest.mark.parametrize("name", ["vit_h_14", "r3d_18", "raft_small", "lraspp_mobilenet_v3_large"])
def test_default_inputs_run(no_network, name):
    code, out, err = run([f"torchvision:{name}", "--meta", "-q"])
    assert code == 0, err
    assert "params" in out


def test_weights_arguments_can_still_be_set(no_network):
    code, _, err = run(["torchvision:fcn_resnet50", "--meta", "--set", "weights_backbone=null", "-q"])
    assert code == 0, err


def test_big_transformers_config_is_built_on_meta(monkeypatch):
    monkeypatch.setattr(models, "available_memory", lambda: 1000)  # bytes
    argv = ["transformers:BertConfig", "--set", "hidden_size=64", "--set", "num_attention_heads=4"]
    argv += ["--set", "intermediate_size=128", "--set", "num_hidden_layers=2"]
    argv += ["--input", "input_ids:1x16:int64", "--units", "plain", "-q"]
    code, out, err = run(argv)
    assert code == 0, err
    assert "built on the meta device (as with --meta)" in err and "more than half of the 1000 B" in err
    assert "1,118,208 MACs" in out  # the hand count of test_zoo's tiny BERT, as with real weights
    monkeypatch.setattr(models, "available_memory", lambda: 1 << 40)
    code, out, err = run(argv)
    assert "meta" not in err and "1,118,208 MACs" in out


def test_available_memory_is_positive():
    assert models.available_memory() > 0


class ImageList(torch.nn.Module):
    """Takes a list of (C, H, W) images, as torchvision's detection models do."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, images):
        return [self.conv(image[None]) for image in images]


def test_a_list_of_images_is_one_argument_and_batch_size_counts_images(monkeypatch):
    from flopmeter import cli

    loaded = models.LoadedModel(ImageList(), "images", [InputSpec((3, 8, 8))], "image_list")
    monkeypatch.setattr(cli, "load_model", lambda *args, **kwargs: loaded)
    code, out, err = run(["images", "--batch-size", "3", "--units", "plain", "-q"])
    assert code == 0, err
    # per image: 8*8 positions * 4 channels * 27 = 6,912 MACs; 3 images: 20,736
    assert "20,736 MACs" in out and "for batch 3" in out and "per sample: 6,912 MACs" in out
