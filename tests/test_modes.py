"""Every mode a user may call from gives the numbers of the plain call (or a clear error).

Under ``torch.inference_mode()`` autograd is skipped and composite ops (linear, matmul,
einsum, lstm, group_norm, bilinear) reach the recorder whole; they must still be
counted exactly as in a plain call.
"""

import warnings

import pytest
import torch
import torchvision
from torch import nn

import flopmeter


class Mixed(nn.Module):
    """One of each composite op; batch 2, 5 tokens, width 8."""

    def __init__(self, bilinear: bool = True) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.gn = nn.GroupNorm(2, 8)
        self.bil = nn.Bilinear(8, 8, 4) if bilinear else None

    def forward(self, x):
        h = self.lin(x)
        h, _ = self.mha(h, h, h)
        h, _ = self.lstm(h)
        h = self.gn(h.transpose(1, 2)).transpose(1, 2)
        h = torch.einsum("bld,bmd->blm", h, h) @ h
        h = torch.matmul(h, torch.ones(8, 8, dtype=h.dtype))
        return self.bil(h, h) if self.bil is not None else h


# MACs by hand (10 tokens = batch 2 x 5):
EXPECTED_MACS = {
    "lin": 10 * 8 * 8,  # 640
    # q, k, v projections 3*10*8*8 = 1920; scores and weighted sum 2 * (2*2 heads*5*5*4) = 800;
    # out projection 10*8*8 = 640
    "mha": 1920 + 800 + 640,  # 3,360
    "lstm": 10 * 4 * 8 * (8 + 8),  # 4 gates x hidden 8 x (input 8 + hidden 8) per token = 5,120
    "gn": 0,
    "bil": 10 * 4 * 8 * 8,  # 4 outputs x 8 x 8 per token = 2,560
    # root's own: einsum 2*5*5*8 = 400, @ 2*5*5*8 = 400, matmul 10*8*8 = 640
    "": 400 + 400 + 640,  # 1,440
}


def per_module(report) -> dict:
    return {
        name: (stats.calls, stats.own.macs, stats.own.flops, stats.own.bytes)
        for name, stats in report.modules.items()
    }


def summary(report) -> tuple:
    return report.macs, report.flops, report.forward.bytes, per_module(report), sorted(report.unsupported)


@pytest.fixture(scope="module")
def model():
    return Mixed().eval()


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 5, 8)


@pytest.fixture(scope="module")
def plain(model, x):
    return flopmeter.profile(model, x)


def test_hand_counts(plain):
    assert {name: stats.own.macs for name, stats in plain.modules.items() if name != "mha.out_proj"} == (
        EXPECTED_MACS
    )
    assert plain.macs == 13_120
    assert not plain.unsupported


@pytest.mark.parametrize("shapes_only", [None, False])
def test_inference_mode(model, x, plain, shapes_only):
    with torch.inference_mode():
        report = flopmeter.profile(model, x, shapes_only=shapes_only)
    assert summary(report) == summary(plain)


def test_inference_tensors_as_inputs_and_parameters(x, plain):
    with torch.inference_mode():
        frozen = Mixed()
        frozen.load_state_dict(Mixed().state_dict())
        inference_x = x.clone()
    frozen.eval()
    assert frozen.lin.weight.is_inference() and inference_x.is_inference()
    flags = [p.requires_grad for p in frozen.parameters()]
    for report in (flopmeter.profile(frozen, inference_x), flopmeter.profile(frozen, x)):
        assert summary(report)[:2] == summary(plain)[:2]
        assert per_module(report) == per_module(plain)
    with torch.inference_mode():
        assert summary(flopmeter.profile(frozen, inference_x)) == summary(plain)
    assert [p.requires_grad for p in frozen.parameters()] == flags  # untouched


def test_no_grad_and_enable_grad(model, x, plain):
    with torch.no_grad():
        assert summary(flopmeter.profile(model, x)) == summary(plain)
    with torch.enable_grad():
        assert summary(flopmeter.profile(model, x)) == summary(plain)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_and_bfloat16_models(x, plain, dtype):
    low = Mixed().eval().to(dtype)
    shapes = flopmeter.profile(low, x.to(dtype))
    values = flopmeter.profile(low, x.to(dtype), shapes_only=False)
    assert summary(shapes) == summary(values)
    assert (shapes.macs, shapes.flops) == (plain.macs, plain.flops)
    with torch.inference_mode():
        assert summary(flopmeter.profile(low, x.to(dtype))) == summary(values)


def test_autocast_counts_what_autocast_runs(x):
    model = Mixed(bilinear=False).eval()  # nn.Bilinear itself fails under CPU autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(x)
        report = flopmeter.profile(model, x)
        values = flopmeter.profile(model, x, shapes_only=False)
        after = model(x)  # autocast's weight cache holds no meta tensor
    assert report.options["computed"] == "values"  # autocast does not cast meta tensors
    assert summary(report) == summary(values)
    assert report.macs == 13_120 - EXPECTED_MACS["bil"]
    assert "bfloat16" in report.traffic_by_dtype()
    assert torch.equal(expected, after)


def test_autocast_refuses_a_shapes_only_run(x):
    model = nn.Linear(8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(flopmeter.ModelError, match="autocast"):
        flopmeter.profile(model, x, shapes_only=True)


def test_autocast_with_a_layer_the_real_call_rejects(x):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(RuntimeError):
            Mixed().eval()(x)
        with pytest.raises(flopmeter.ModelError):
            flopmeter.profile(Mixed().eval(), x)


def test_compiled_module_is_counted_as_its_original(model, x, plain):
    compiled = torch.compile(model)
    report = flopmeter.profile(compiled, x)
    assert summary(report) == summary(plain)
    assert report.model_name == "Mixed"


def test_scripted_and_traced_models_warn_that_submodules_are_not_seen():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    x = torch.randn(2, 8)
    eager = flopmeter.profile(model, x)
    for converted in (torch.jit.script(model), torch.jit.trace(model, x)):
        with pytest.warns(UserWarning, match="TorchScript"):
            report = flopmeter.profile(converted, x)
        assert (report.macs, report.flops) == (eager.macs, eager.flops)  # 2*8*16 + 2*16*4 = 384 MACs
        assert report.macs == 384
        assert report.modules[""].own.macs == 384  # all charged to the root, as the warning says
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flopmeter.profile(model, x)  # no warning for an eager model


def test_torchvision_model_under_inference_mode():
    model = torchvision.models.mobilenet_v3_small().eval()
    x = torch.randn(1, 3, 224, 224)
    plain = flopmeter.profile(model, x)
    with torch.inference_mode():
        report = flopmeter.profile(model, x)
    assert summary(report) == summary(plain)
    assert report.macs == 56_510_400  # torchvision's published 0.06 GFLOPS (as MACs)


def test_small_vision_transformer_under_inference_mode():
    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    ).eval()
    x = torch.randn(1, 3, 32, 32)
    plain = flopmeter.profile(model, x)
    with torch.inference_mode():
        report = flopmeter.profile(model, x)
    assert summary(report) == summary(plain)
    assert report.options["computed"] == "shapes"
    assert not report.unsupported


TRAIN_CALLS: list[bool] = []


class OwnTrain(nn.Module):
    """Overrides ``train()``: a profile must still call it (only torch's plain
    ``train()`` is skipped when every module already is in the asked mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def train(self, mode: bool = True) -> "OwnTrain":
        TRAIN_CALLS.append(mode)  # outside the model: the state guard puts its lists back
        return super().train(mode)

    def forward(self, x):
        return self.fc(x) if not self.training else self.fc(x) * 2


def test_the_requested_mode_is_set_however_the_model_was():
    model = OwnTrain().eval()
    report = flopmeter.profile(model, torch.randn(3, 4), train=True)
    # addmm: 3*2 outputs * (4 mults + 3 adds + 1 bias) = 48; train mode adds the * 2: 3*2 = 6
    assert report.flops == 48 + 6 and not model.training
    plain = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5)).train()
    assert (
        flopmeter.profile(plain, torch.randn(3, 4)).operators.keys()
        == flopmeter.profile(plain.eval(), torch.randn(3, 4)).operators.keys()
    )
    assert not plain.training
    TRAIN_CALLS.clear()
    flopmeter.profile(model, torch.randn(3, 4))  # already in eval: its own train() is still called
    assert TRAIN_CALLS[0] is False


def test_a_traced_graph_that_cannot_run_under_a_mode_says_so():
    """probe-2: a torch.jit.trace'd torchvision ViT compares tensor sizes in its graph, which
    fails under any TorchDispatchMode (torch's FlopCounterMode too). The error says that,
    not that the inputs may be wrong."""
    torchvision = pytest.importorskip("torchvision")
    from torch.utils.flop_counter import FlopCounterMode

    vit = torchvision.models.VisionTransformer(
        image_size=32, patch_size=16, num_layers=1, num_heads=2, hidden_dim=32, mlp_dim=64
    ).eval()
    x = torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(vit, x, check_trace=False)
        assert traced(x).shape == (2, 1000)  # a plain call works
        with pytest.raises(RuntimeError), FlopCounterMode(display=False):
            traced(x)  # torch's own counter fails the same way
        with pytest.raises(flopmeter.ModelError, match="cannot run under a TorchDispatchMode") as raised:
            flopmeter.profile(traced, x)
    assert "Check that the inputs" not in str(raised.value)

    class HoldsAScriptedReLU(nn.Module):  # a plain Linear given a wrong input: no such hint
        def __init__(self) -> None:
            super().__init__()
            self.act = torch.jit.script(nn.ReLU())
            self.lin = nn.Linear(8, 4)

        def forward(self, x):
            return self.lin(self.act(x))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(flopmeter.ModelError, match="Check that the inputs") as raised:
            flopmeter.profile(HoldsAScriptedReLU(), torch.randn(2, 5))
    assert "TorchScript" not in str(raised.value) and "in module 'lin'" in str(raised.value)
