"""The drop-in's per-layer printout is ptflops 0.7.5's, byte for byte (probe-1 J19-J21).

The golden files were printed by ptflops 0.7.5 itself (``count_functional=False``, where
its totals equal ours: docs/conventions.md). When ptflops is installed the test also
re-runs it, so the golden files cannot drift from the real thing.
"""

import io
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from flopmeter import get_model_complexity_info

GOLDEN = Path(__file__).parent / "golden"


def small() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 8), nn.ReLU())


def mobile() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.mobilenet_v3_small()


CASES = {
    # name: (model factory, input_res, keyword arguments)
    "ptflops_small.txt": (small, (8,), {}),
    "ptflops_small_units.txt": (
        small,
        (8,),
        {"flops_units": "KMac", "param_units": "K", "output_precision": 4},
    ),
    "ptflops_alexnet.txt": (torchvision.models.alexnet, (3, 224, 224), {}),
    "ptflops_resnet18_p0.txt": (torchvision.models.resnet18, (3, 64, 64), {"output_precision": 0}),
    "ptflops_mobilenet_v3_small.txt": (mobile, (3, 224, 224), {"verbose": True}),
}


def printed(function, factory, res, kwargs, **extra) -> tuple[str, tuple]:
    out = io.StringIO()
    result = function(factory(), res, ost=out, **kwargs, **extra)
    return out.getvalue(), result


@pytest.mark.parametrize("name", sorted(CASES))
def test_printout_matches_ptflops(name):
    factory, res, kwargs = CASES[name]
    ours, our_result = printed(get_model_complexity_info, factory, res, kwargs)
    assert ours == (GOLDEN / name).read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_files_are_ptflops_output(name):
    ptflops = pytest.importorskip("ptflops")
    factory, res, kwargs = CASES[name]
    theirs, _ = printed(
        ptflops.get_model_complexity_info,
        factory,
        res,
        kwargs,
        backend_specific_config={"count_functional": False},
    )
    ours = (GOLDEN / name).read_text()
    if kwargs.get("verbose"):
        # ptflops also names the containers (InvertedResidual, MobileNetV3: no hook of their
        # own); flopmeter names the leaf types that cost 0 MACs, in ptflops' order
        ours_warnings, theirs_warnings = _warnings(ours), _warnings(theirs)
        assert ours_warnings == [w for w in theirs_warnings if w in ours_warnings]
        assert ours_warnings == [f"Warning: module {t} is treated as a zero-op." for t in VERBOSE_ZERO_OPS]
        ours, theirs = _without_warnings(ours), _without_warnings(theirs)
    assert theirs == ours


VERBOSE_ZERO_OPS = ["Hardswish", "Hardsigmoid", "Dropout"]  # ptflops has no formula for the first two


def _warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Warning")]


def _without_warnings(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.startswith("Warning"))


def test_zero_op_modules_named_once_with_verbose():
    out = io.StringIO()
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(), nn.Identity(), nn.Dropout())
    get_model_complexity_info(model, (4,), ost=out, verbose=True, print_per_layer_stat=False)
    assert out.getvalue() == (
        "Warning: module Dropout is treated as a zero-op.\nWarning: module Identity is treated as a zero-op.\n"
    )


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="'foo' is not a valid FLOPS_BACKEND"):
        get_model_complexity_info(small(), (8,), backend="foo", print_per_layer_stat=False)
    assert get_model_complexity_info(small(), (8,), backend="aten", print_per_layer_stat=False)
