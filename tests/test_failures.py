"""Errors name the module that was running; shapes-only runs reject what the real call rejects."""

import sys
import warnings

import pytest
import torch
from torch import nn

import flopmeter


class RootFails(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.fc(x)) @ torch.randn(5, 5)  # the root's own code fails


class ViewAfterBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(4, 4), nn.ReLU())

    def forward(self, x):
        h = self.block(x)
        return h.view(3, -1)  # 2x4 has 8 elements: no view with 3 rows


class Boom(nn.Module):
    def forward(self, x):
        raise ValueError("boom in the child")


class NestedFails(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.block = nn.Sequential(nn.Linear(4, 4), Boom(), nn.Linear(4, 4))
        self.last = nn.Linear(4, 4)

    def forward(self, x):
        return self.last(self.block(self.first(x)))


class CaughtInside(nn.Module):
    """A child raises, the root catches it and goes on; then the root fails itself."""

    def __init__(self) -> None:
        super().__init__()
        self.boom = Boom()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        try:
            self.boom(x)
        except ValueError:
            pass
        return self.fc(x).view(3, -1)


@pytest.mark.parametrize("shapes_only", [None, False])
@pytest.mark.parametrize(
    "model, where",
    [
        (RootFails(), r"in module '\(root\)' \(RootFails\) when"),  # no ': ' for an empty extra_repr (A21)
        (ViewAfterBlock(), r"in module '\(root\)' \(ViewAfterBlock\) when"),
        (NestedFails(), r"in module 'block\.1' \(Boom\) when"),
        (CaughtInside(), r"in module '\(root\)' \(CaughtInside\) when"),
    ],
)
def test_errors_name_the_running_module(model, where, shapes_only):
    with pytest.raises(flopmeter.ModelError, match=where):
        flopmeter.profile(model, torch.randn(2, 4), shapes_only=shapes_only)


def test_zoo_repro_root_code_after_a_child_returned():
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            self.lin(x)
            raise ValueError("raised in the root module's own code, after lin returned")

    with pytest.raises(flopmeter.ModelError, match=r"in module '\(root\)'") as caught:
        flopmeter.profile(M(), torch.randn(1, 4))
    assert isinstance(caught.value.__cause__, ValueError)


@pytest.mark.parametrize("dtype", [torch.int64, torch.float64, torch.float16])
@pytest.mark.parametrize("shapes_only", [None, True, False])
def test_a_linear_rejects_inputs_of_another_dtype_in_every_mode(dtype, shapes_only):
    layer = nn.Linear(4, 3)
    bad = torch.ones(2, 4, dtype=dtype)
    with pytest.raises(RuntimeError):
        layer(bad)  # the real call
    with pytest.raises(flopmeter.ModelError, match="dtype"):
        flopmeter.profile(layer, bad, shapes_only=shapes_only)


@pytest.mark.parametrize("shapes_only", [None, True, False])
def test_conv_and_matmul_reject_mixed_dtypes(shapes_only):
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(flopmeter.ModelError):
        flopmeter.profile(conv, torch.ones(1, 3, 8, 8, dtype=torch.float64), shapes_only=shapes_only)

    class MatMul(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(4, 4))

        def forward(self, x):
            return x @ self.w

    with pytest.raises(RuntimeError):
        MatMul()(torch.ones(2, 3, 4, dtype=torch.float64))
    with pytest.raises(flopmeter.ModelError):
        flopmeter.profile(MatMul(), torch.ones(2, 3, 4, dtype=torch.float64), shapes_only=shapes_only)


def test_float_inputs_built_for_a_half_model_are_rejected():
    model = nn.Linear(4, 4).half()
    with pytest.raises(flopmeter.ModelError, match="dtype"):
        flopmeter.profile(model, torch.randn(2, 4))
    report = flopmeter.profile(model, torch.randn(2, 4).half())
    assert report.macs == 2 * 4 * 4  # 32
    assert report.options["computed"] == "shapes"


def test_matching_dtypes_are_still_counted_on_shapes():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3)).double()
    report = flopmeter.profile(model, torch.zeros(2, 5, dtype=torch.long))
    assert report.options["computed"] == "shapes"
    assert report.macs == 2 * 5 * 4 * 3  # 120


def test_moving_an_activation_to_the_parameters_device_needs_no_values():
    class M(nn.Module):  # diffusers PixArt: embedded_timestep.to(self.scale_shift_table.device)
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(torch.randn(2, 4))

        def forward(self, x):
            return self.table + x.to(self.table.device) + x.to(self.table.device, torch.float64).float()

    x = torch.randn(2, 4)
    shapes = flopmeter.profile(M(), x)
    values = flopmeter.profile(M(), x, shapes_only=False)
    assert shapes.options["computed"] == "shapes"
    assert shapes.flops == values.flops == 2 * 8  # two adds of 2x4
    assert shapes.forward.bytes == values.forward.bytes
    assert shapes.operators["aten._to_copy"].calls == values.operators["aten._to_copy"].calls == 2


def test_conjugation_is_a_free_view():
    class Spectrum(nn.Module):
        def forward(self, x):
            f = torch.fft.rfft(x)
            return (f * f.conj()).real

    report = flopmeter.profile(Spectrum(), torch.randn(2, 8))
    assert "aten._conj" not in report.unsupported
    assert report.operators["aten._conj"].cost.flops == 0


def test_a_forward_returning_a_generator_warns():
    class Lazy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, xs):
            return (self.fc(x) for x in xs)

    with pytest.warns(UserWarning, match="generator"):
        report = flopmeter.profile(Lazy(), torch.randn(3, 4))
    assert report.macs == 0


def test_as_deep_as_a_plain_forward():
    def nested(depth: int) -> nn.Module:
        model: nn.Module = nn.Linear(2, 2)
        for _ in range(depth):
            model = nn.Sequential(model)
        return model

    x = torch.randn(1, 2)
    deepest = 0
    for depth in range(50, sys.getrecursionlimit(), 25):  # the deepest a plain call manages here
        try:
            nested(depth)(x)
        except RecursionError:
            break
        deepest = depth
    limit = sys.getrecursionlimit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = flopmeter.profile(nested(deepest), x)
    assert report.macs == 4
    assert sys.getrecursionlimit() == limit  # put back


def test_a_real_tensor_moved_to_the_activations_device_is_counted_on_shapes_and_put_back():
    class Cached(nn.Module):  # torchvision's AnchorGenerator: self.cell_anchors = [a.to(device) ...]
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.cache = [torch.ones(4)]

        def forward(self, x):
            self.cache = [c.to(x.device) for c in self.cache]
            return self.lin(x) + self.cache[0]

    model, x = Cached(), torch.randn(2, 4)
    shapes = flopmeter.profile(model, x)
    assert shapes.options["computed"] == "shapes"
    assert model.cache[0].device.type == "cpu"  # no meta tensor left in the model
    model(x)  # still usable
    values = flopmeter.profile(model, x, shapes_only=False)
    assert (shapes.macs, shapes.flops, shapes.forward.bytes) == (
        values.macs,
        values.flops,
        values.forward.bytes,
    )
    assert shapes.macs == 2 * 4 * 4  # 32
