"""Repeated whole calls on meta (one per transformer layer) answered from the first one:
the same report, peak memory included, as running every body."""

import pytest
import torch

import flopmeter
from flopmeter.tracing import recorder, replay


class Layers(torch.nn.Module):
    """Three attention layers of one shape, then one of another (a different signature)."""

    def __init__(self) -> None:
        super().__init__()
        self.same = torch.nn.ModuleList(torch.nn.MultiheadAttention(16, 4) for _ in range(3))
        self.other = torch.nn.MultiheadAttention(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attention in self.same:
            x = x + attention(x, x, x, need_weights=True)[0]
        return self.other(x, x, x, need_weights=False)[0]


@pytest.fixture
def replays(monkeypatch):
    """Counts the replayed calls; ``replays.off()`` makes every call run its body."""

    class Counter:
        count = 0

        def off(self) -> None:
            monkeypatch.setattr(replay, "REPLAYABLE", frozenset())

    counter = Counter()
    original = recorder.OpRecorder.replayed

    def counting(self, known):
        counter.count += 1
        return original(self, known)

    monkeypatch.setattr(recorder.OpRecorder, "replayed", counting)
    return counter


def test_repeats_are_replayed_with_the_same_report(replays):
    model, x = Layers().eval(), torch.randn(5, 2, 16)
    fast = flopmeter.profile(model, x)
    assert replays.count == 2  # layers 2 and 3 repeat layer 1; 'other' has 2 heads: its own signature
    replays.off()
    slow = flopmeter.profile(model, x)
    assert replays.count == 2
    assert fast.to_dict() == slow.to_dict()
    assert fast.peak_activation_bytes == slow.peak_activation_bytes > 0
    assert str(fast) == str(slow)


def test_no_replay_with_values_or_a_backward(replays):
    model, x = Layers(), torch.randn(5, 2, 16)
    flopmeter.profile(model, x, shapes_only=False)
    flopmeter.profile(model, x, backward=True)
    assert replays.count == 0


def test_signature_tells_layouts_and_flags_apart():
    weights: dict[int, str] = {}
    x = torch.empty(4, 3, device="meta")
    base = replay.signature((x, 1.0), {"flag": True}, weights)
    assert base == replay.signature((torch.empty(4, 3, device="meta"), 1.0), {"flag": True}, weights)
    assert base != replay.signature((x.t().contiguous().t(), 1.0), {"flag": True}, weights)  # strides
    assert base != replay.signature((x, 1), {"flag": True}, weights)  # 1.0 and 1 apart
    assert base != replay.signature((x, 1.0), {"flag": False}, weights)
    assert replay.signature((torch.empty(4, 3), 1.0), {}, weights) is None  # a real tensor, not a weight
    assert replay.signature((x, object()), {}, weights) is None
