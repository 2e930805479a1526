"""Review b of probe 8's leave-no-trace change (docs/probe-8/review-b.md)."""

from __future__ import annotations

import warnings

import pytest
import torch

import flopmeter
from flopmeter.tracing import recorder


class _Tagged(torch.Tensor):
    """A tensor subclass (its meta twin keeps the class)."""


def test_a_tensor_that_reuses_a_freed_ones_id_gets_a_twin_of_its_own_class():
    """R8b-1: the meta twins are cached by ``id``, without a reference to the tensor: a
    plain tensor freed after a profile leaves a twin that a later subclass tensor with the
    same id, dtype, shape and strides took (a plain twin for a subclass weight)."""
    weight = torch.randn(8, 8)
    recorder._twin(weight)  # the twin of a plain tensor, kept under its id
    weight.__class__ = _Tagged  # stands for a new tensor that took the freed one's id
    assert type(recorder._twin(weight)) is _Tagged  # _to_meta(weight)'s class
    assert type(recorder._to_meta(weight)) is _Tagged


def test_a_twin_is_kept_for_the_same_tensor():
    layer = torch.nn.Linear(4, 4)
    assert recorder._twin(layer.weight) is recorder._twin(layer.weight)


class _WantsGrad(torch.nn.Module):
    """A forward that switches grad on and leaves it on (as some models do, to take a
    gradient inside): for a caller with grad on, a plain call changes nothing."""

    def __init__(self, enabled: bool) -> None:
        super().__init__()
        self.l = torch.nn.Linear(4, 4)
        self.enabled = enabled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.set_grad_enabled(self.enabled)
        return self.l(x)


def test_no_warning_for_a_grad_mode_a_plain_call_would_not_change(recwarn):
    """R8b-2: the run's own grad mode (off, for a forward-only profile) was taken as the
    caller's: a forward setting grad on, called with grad on, was said to leave it changed
    ("off -> on ... a plain call of the model leaves it changed"), which a plain call does not."""
    assert torch.is_grad_enabled()
    report = flopmeter.profile(_WantsGrad(True), torch.randn(2, 4))
    assert report.macs == 32  # 2*4*4
    assert not [w for w in recwarn if "grad mode" in str(w.message)]
    assert torch.is_grad_enabled()


def test_a_grad_mode_a_plain_call_would_change_is_named_from_the_callers():
    """R8b-2: called under ``torch.no_grad()``, a forward that sets grad on leaves it on
    after a plain call: the warning names the caller's mode (off) and the forward's (on)."""
    try:
        with torch.no_grad():
            with pytest.warns(RuntimeWarning, match=r"grad mode \(off -> on\)"):
                report = flopmeter.profile(_WantsGrad(True), torch.randn(2, 4))
            assert not torch.is_grad_enabled()  # the caller's mode, put back
    finally:
        torch.set_grad_enabled(True)
    assert report.macs == 32  # 2*4*4


class _LeavesFloat64(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.set_default_dtype(torch.float64)
        return self.l(x)


def test_flopmeters_own_warning_turned_error_is_not_said_to_be_the_models():
    """R8b-3: with warnings as errors (``-W error`` in a test suite), flopmeter's own
    "the model's forward changed torch's default dtype" warning was raised inside the
    model's run and reported as "the model raised RuntimeWarning" (a ModelError)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(
                RuntimeWarning, match="the model's forward changed torch's default dtype"
            ) as raised:
                flopmeter.profile(_LeavesFloat64(), torch.randn(2, 4))
    finally:
        torch.set_default_dtype(torch.float32)
    assert not isinstance(raised.value, flopmeter.ModelError)
    assert torch.get_default_dtype() == torch.float32  # put back by the profile


class _WritesUnseen(torch.nn.Module):
    """A forward that sets an attribute, caches its input and moves a buffer's version
    counter without a write torch's dispatcher sees (as a C++ extension writing memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.l = torch.nn.Linear(4, 4)
        self.register_buffer("n", torch.zeros(1))
        self.flag = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.flag = 1
        self.seen = x
        torch._C._autograd._unsafe_set_version_counter((self.n,), (self.n._version + 1,))
        return self.l(x)


@pytest.mark.parametrize("shapes_only", [True, False])
def test_the_model_is_put_back_before_the_unseen_write_warning(shapes_only):
    """R8b-4: the "wrote ... in a way flopmeter could not see" warning came first in the
    guard's cleanup: under warnings as errors it raised there (four times, the retry loop)
    and nothing was put back: ``flag`` stayed 1 and ``seen`` held the run's input (a meta
    tensor after a shapes-only run)."""
    model = _WritesUnseen()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="could not see"):
            flopmeter.profile(model, torch.randn(2, 4), shapes_only=shapes_only)
    assert model.flag == 0
    assert "seen" not in model.__dict__
