"""The values fallback retries only what meta cannot do; backward=True problems are
flopmeter's own clear errors (probe-1 E6, E8, E11, E12; zoo-1 "any exception retried")."""

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.api import needs_values


class Counted(nn.Module):
    """Counts its forward calls in a list outside the model (the guard puts back lists
    held in the model's attributes, so a list attribute would read empty)."""

    def __init__(self, body, calls: list) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.body = body
        self.count_call = calls.append

    def forward(self, x):
        self.count_call(1)
        return self.body(self.lin(x))


def raise_value_error(y):
    raise ValueError("H and W should be divisible by 8")


def raise_runtime_error(y):
    raise RuntimeError("boom")


@pytest.mark.parametrize("body", [raise_value_error, raise_runtime_error])
def test_an_error_the_model_raises_runs_the_forward_once(body):
    calls: list = []
    with pytest.raises(flopmeter.ModelError, match="shapes_only=False") as info:
        flopmeter.profile(Counted(body, calls), torch.randn(2, 4))
    assert len(calls) == 1
    assert info.value.__cause__ is not None


def test_an_error_from_a_meta_kernel_check_is_reported_in_the_real_kernels_words():
    calls: list = []
    model = Counted(lambda y: y @ torch.ones(5, 5, device=y.device), calls)
    with pytest.raises(flopmeter.ModelError, match=r"cannot be multiplied \(2x4 and 5x5\)") as info:
        flopmeter.profile(model, torch.randn(2, 4))  # meta says "must have same reduction dim"
    assert len(calls) == 2 and "shapes-only" not in str(info.value)


def test_a_genuine_error_in_a_values_run_has_no_shapes_only_hint():
    calls: list = []
    with pytest.raises(flopmeter.ModelError, match="divisible by 8") as info:
        flopmeter.profile(Counted(raise_value_error, calls), torch.randn(2, 4), shapes_only=False)
    assert "shapes-only" not in str(info.value) and len(calls) == 1


@pytest.mark.parametrize(
    "body",
    [
        lambda y: y if y.max() > 0 else -y,  # a value of a meta tensor
        lambda y: y[y > 0],  # a data-dependent size
        lambda y: torch.tensor(y.tolist()) * 2,  # copying values out of meta
        lambda y: torch.from_numpy(y.numpy()),
    ],
)
def test_meta_limitations_fall_back_to_one_values_run(body):
    calls: list = []
    report = flopmeter.profile(Counted(body, calls), torch.randn(2, 4))
    assert report.options["computed"] == "values"
    assert report.macs == 32  # Linear(4, 4) on 2 rows: 2*4*4
    assert len(calls) == 2  # the shapes attempt, then the values run


def test_which_errors_need_values():
    assert needs_values(RuntimeError("Tensor.item() cannot be called on meta tensors"))
    assert needs_values(NotImplementedError("Cannot copy out of meta tensor; no data!"))
    assert needs_values(RuntimeError("Input and parameter tensors are not at the same device"))
    assert not needs_values(ValueError("H and W should be divisible by 8"))
    assert not needs_values(RuntimeError("boom"))


class ReturnsNone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x):
        self.l(x)


class Detaches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x):
        return self.l(x).detach()


def test_backward_of_a_model_returning_none_says_so():
    with pytest.raises(ValueError, match="returned NoneType with no tensor") as info:
        flopmeter.profile(ReturnsNone(), torch.randn(2, 4), backward=True)
    assert not isinstance(info.value, flopmeter.ModelError)  # the model raised nothing
    assert "Check that the inputs" not in str(info.value)


def test_backward_of_a_detached_output_says_why():
    with pytest.raises(ValueError, match=r"does not require grad although 2 parameter\(s\)"):
        flopmeter.profile(Detaches(), torch.randn(2, 4), backward=True)


def test_backward_of_a_frozen_model_is_refused_before_running():
    calls: list = []
    model = Counted(lambda y: y, calls).requires_grad_(False)
    with pytest.raises(ValueError, match="none of the model's 2 parameters requires grad"):
        flopmeter.profile(model, torch.randn(2, 4), backward=True)
    assert calls == []
    # an input that requires grad is something to differentiate
    report = flopmeter.profile(model, torch.randn(2, 4, requires_grad=True), backward=True)
    assert report.macs > 32
