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


class Recurrent(nn.Module):
    def __init__(self, kind: type) -> None:
        super().__init__()
        self.rnn = kind(16, 32, batch_first=True)
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, -1])


def test_lstm_matches_ptflops_rule():
    # ptflops' rnn_flops per token, I=16, H=32: W_ih 128*16 = 2,048; W_hh 128*32 = 4,096;
    # 4H + 3H + 3H = 320; biases 128 + 128 = 256  -> 6,720; 12 tokens: 80,640; fc 32*4 + 4 = 132
    macs, _ = get_model_complexity_info(
        Recurrent(nn.LSTM), (12, 16), as_strings=False, print_per_layer_stat=False
    )
    assert macs == 80_772


@pytest.mark.parametrize(
    "kind,expected",
    [
        # CPU runs GRU and RNN as aten ops (addmm, sigmoid, tanh, mul, add), each counted by its
        # own ptflops rule; ptflops' extra 7H (GRU) and H (RNN) per token are not added
        # (docs/conventions.md): GRU 12 * (1,536 + 3,072 + 192) + 132 = 57,732
        (nn.GRU, 57_732),
        # RNN 12 * (512 + 1,024 + 64) + 132 = 19,332
        (nn.RNN, 19_332),
    ],
)
def test_gru_and_rnn_as_documented(kind, expected):
    macs, _ = get_model_complexity_info(
        Recurrent(kind), (12, 16), as_strings=False, print_per_layer_stat=False
    )
    assert macs == expected


def test_transformer_encoder_layer_as_documented():
    # docs/conventions.md: ptflops 347,280; ours 348,800 = 347,280 - 1,040 (attention's
    # scaling 10*64 and softmax 4*10*10, which ptflops' MHA rule adds) + 2 * 640 (LayerNorm
    # with affine, 2 per element; ptflops' hook looks for `.affine` and counts 1)
    # + 1,280 (the F.relu in the feed-forward, 10*128, which ptflops misses)
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
    macs, _ = get_model_complexity_info(layer, (10, 64), as_strings=False, print_per_layer_stat=False)
    assert macs == 347_280 - 1_040 + 2 * 640 + 1_280 == 348_800


def test_alexnet_strings_as_docs_say():
    # docs/conventions.md and README: ours '715.56 MMac' (715,561,896); ptflops 0.7.5 by
    # default '716.44 MMac' (it counts each nn.ReLU twice), '715.56 MMac' without functionals
    def alexnet():
        return torchvision.models.alexnet()

    ours = get_model_complexity_info(alexnet(), (3, 224, 224), print_per_layer_stat=False)
    assert ours == ("715.56 MMac", "61.1 M")
    ptflops = pytest.importorskip("ptflops")
    assert ptflops.get_model_complexity_info(alexnet(), (3, 224, 224), print_per_layer_stat=False)[0] == (
        "716.44 MMac"
    )
    no_functional = {"count_functional": False}
    assert (
        ptflops.get_model_complexity_info(
            alexnet(), (3, 224, 224), print_per_layer_stat=False, backend_specific_config=no_functional
        )
        == ours
    )
