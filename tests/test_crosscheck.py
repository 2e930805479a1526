"""flopmeter against torch.utils.flop_counter and ptflops on real models."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import flopmeter

torchvision = pytest.importorskip("torchvision")

CONTRACTIONS = ("aten.convolution", "aten.addmm", "aten.mm", "aten.bmm", "aten.baddbmm")


def flop_counter_by_op(model, x) -> dict[str, int]:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return {f"aten.{op.__name__}": n for op, n in counter.get_flop_counts()["Global"].items()}


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "vgg11", "mobilenet_v2"])
def test_2mac_of_contractions_equals_flop_counter(name):
    model = getattr(torchvision.models, name)().eval()
    x = torch.randn(1, 3, 224, 224)
    theirs = flop_counter_by_op(model, x)
    ours = flopmeter.profile(model, x).by_operator()
    for op, count in theirs.items():
        assert 2 * ours[op].cost.macs == count, op
    assert sum(2 * ours[op].cost.macs for op in CONTRACTIONS if op in ours) == sum(theirs.values())


# ptflops' README table (0.7.x, torchvision models at 3x224x224): MACs and params as strings.
PTFLOPS_README = {
    "alexnet": ("0.72 GMac", "61.1 M"),
    "resnet18": ("1.82 GMac", "11.69 M"),
    "resnet50": ("4.12 GMac", "25.56 M"),
    "vgg16": ("15.5 GMac", "138.36 M"),
}


@pytest.mark.parametrize("name", sorted(PTFLOPS_README))
def test_ptflops_documented_examples(name):
    model = getattr(torchvision.models, name)()
    macs, params = flopmeter.get_model_complexity_info(
        model, (3, 224, 224), as_strings=True, print_per_layer_stat=False, flops_units="GMac"
    )
    expected_macs, expected_params = PTFLOPS_README[name]
    assert float(macs.split()[0]) == pytest.approx(float(expected_macs.split()[0]), abs=0.005)
    assert params == expected_params


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "mobilenet_v2"])
def test_ptflops_module_rules_numbers(name):
    """Integers ptflops 0.7.5 (pytorch backend) prints where it counts each op once.

    alexnet, resnet18: count_functional=False (with it, ptflops counts nn.ReLU twice: its
    module hook and the patched F.relu it calls). mobilenet_v2: the default config (its
    global pooling is a functional call that only count_functional sees; no ReLU module).
    """
    expected = {"alexnet": 715_561_896, "resnet18": 1_822_177_768, "mobilenet_v2": 320_300_008}[name]
    model = getattr(torchvision.models, name)()
    macs, params = flopmeter.get_model_complexity_info(
        model, (3, 224, 224), as_strings=False, print_per_layer_stat=False
    )
    assert macs == expected
    assert params == sum(p.numel() for p in model.parameters())


def test_against_installed_ptflops():
    ptflops = pytest.importorskip("ptflops")
    model = torchvision.models.resnet18()
    theirs, _ = ptflops.get_model_complexity_info(
        model,
        (3, 224, 224),
        as_strings=False,
        print_per_layer_stat=False,
        backend_specific_config={"count_functional": False},
    )
    ours, _ = flopmeter.get_model_complexity_info(
        model, (3, 224, 224), as_strings=False, print_per_layer_stat=False
    )
    assert ours == theirs


def test_ptflops_printout_matches_the_seed_layout():
    import io

    out = io.StringIO()
    # the seed's units (older ptflops' defaults); the line ends in ", " as in ptflops 0.7.5
    flopmeter.get_model_complexity_info(
        torchvision.models.alexnet(),
        (3, 224, 224),
        ost=out,
        flops_units="GMac",
        param_units="M",
        output_precision=3,
    )
    text = out.getvalue()
    assert text.splitlines()[1] == "  61.101 M, 100.000% Params, 0.716 GMac, 100.000% MACs, "
    assert (
        "(0): Conv2d(0.023 M, 0.038% Params, 0.07 GMac, 9.848% MACs, 3, 64, kernel_size=(11, 11), "
        "stride=(4, 4), padding=(2, 2))" in text
    )
    assert "(6): Linear(4.097 M, 6.705% Params, 0.004 GMac, 0.573% MACs, in_features=4096" in text


def test_meta_device_equals_cpu_resnet50():
    with torch.device("meta"):
        meta_model = torchvision.models.resnet50()
    meta = flopmeter.profile(meta_model, input_shape=(2, 3, 224, 224))
    cpu = flopmeter.profile(torchvision.models.resnet50(), input_shape=(2, 3, 224, 224))
    assert meta.macs == cpu.macs == 2 * 4_089_184_256  # torchvision's 4.09 GFLOPS per image
    assert meta.flops == cpu.flops
    assert meta.params == cpu.params == 25_557_032
    assert meta.bytes_read == cpu.bytes_read
    assert meta.unsupported_ops() == {}
