"""State held one object down (``self.state.cache``, ``self.config.flag``) is put back after
a profile, as a module's own attributes are: a shapes-only run would leave meta tensors
there and the model's next call would fail (docs/meta.md)."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

import flopmeter


class State:
    def __init__(self) -> None:
        self.cache: torch.Tensor | None = None
        self.calls = 0
        self.history: list[torch.Tensor] = []
        self.by_shape: dict[tuple[int, ...], torch.Tensor] = {}


class Cached(nn.Module):
    """Caches a mask on a plain object; the cached mask is used when present."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.state = State()
        self.fail = fail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.state
        if state.cache is None:
            state.cache = torch.ones_like(x)
        state.calls += 1
        state.history.append(x)
        state.by_shape[tuple(x.shape)] = x * 2
        state.added = True  # a new attribute on the object
        if self.fail:
            raise RuntimeError("the forward failed")
        return self.linear(x * state.cache)


@pytest.mark.parametrize("shapes_only", [True, False])
def test_an_objects_attributes_are_put_back(shapes_only: bool) -> None:
    model = Cached()
    state = model.state
    report = flopmeter.profile(model, torch.randn(2, 4), shapes_only=shapes_only)
    assert report.macs == 2 * 4 * 4  # rows 2 x in 4 x out 4 = 32
    assert model.state is state
    assert (state.cache, state.calls, state.history, state.by_shape) == (None, 0, [], {})
    assert not hasattr(state, "added")
    out = model(torch.ones(2, 4))  # the model still runs on real tensors
    assert out.device.type == "cpu" and state.calls == 1


def test_put_back_when_the_forward_raises() -> None:
    model = Cached(fail=True)
    with pytest.raises(RuntimeError, match="the forward failed"):
        flopmeter.profile(model, torch.randn(2, 4))
    assert (model.state.cache, model.state.calls, model.state.history) == (None, 0, [])


def test_an_object_shared_by_modules_is_saved_once_and_put_back() -> None:
    shared = State()
    model = nn.Sequential(Cached(), Cached())
    model[0].state = model[1].state = shared
    flopmeter.profile(model, torch.randn(2, 4))
    assert (shared.cache, shared.calls, shared.history) == (None, 0, [])


def test_a_value_cached_before_the_profile_stays() -> None:
    model = Cached()
    model(torch.randn(2, 4))
    cache = model.state.cache
    flopmeter.profile(model, torch.randn(2, 4))
    assert model.state.cache is cache and model.state.calls == 1 and len(model.state.history) == 1


class SharedState:
    """Empty until a forward caches something on it."""


class Pausing(nn.Module):
    """``first`` caches its input on the shared object (a meta tensor on a shapes-only run)
    and waits for the other model's forward to begin; the other waits for the first's
    profile to end. Each wait gives up after ``PAUSE`` seconds."""

    def __init__(self, state: SharedState, first: bool, events: dict[str, threading.Event]) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.state, self.first, self.events = state, first, events

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.first:
            self.state.cache = x
            self.events["cached"].set()
            self.events["other_running"].wait(PAUSE)
        else:
            self.events["other_running"].set()
            self.events["first_done"].wait(PAUSE)
        return self.linear(x)


PAUSE = 1.0


def test_two_models_sharing_an_object_profiled_in_two_threads_take_turns() -> None:
    """Models A and B hold one plain object. A's forward caches a meta tensor on it; B's
    profile, started meanwhile, would save the object with that tensor in it, and put it
    back after A's profile had taken it away: the object kept a meta tensor. Profiles of
    models holding one object take turns, as those sharing a module do: it ends empty."""
    shared = SharedState()
    events = {name: threading.Event() for name in ("cached", "other_running", "first_done")}
    first, second = Pausing(shared, True, events), Pausing(shared, False, events)

    def profile_first() -> None:
        flopmeter.profile(first, input_shape=(2, 4))
        events["first_done"].set()

    def profile_second() -> None:
        events["cached"].wait(PAUSE)
        flopmeter.profile(second, input_shape=(2, 4))

    threads = [threading.Thread(target=profile_first), threading.Thread(target=profile_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert vars(shared) == {}
