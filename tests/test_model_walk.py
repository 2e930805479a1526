"""The one walk of the model a profile shares (tracing/model_walk.py) answers as torch's
own walks do, and the state guard gives each module its own ``__dict__`` back."""

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.compression.facts import collect
from flopmeter.tracing.model_walk import ModelWalk


class Tangled(nn.Module):
    """A shared submodule, a tied weight, a None child and a buffer-only module."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.block = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
        self.again = self.block[0]  # shared: known by its first name, "block.0"
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.missing = None
        self.register_module("empty_slot", None)

    def forward(self, ids):
        return self.head(self.block(self.embed(ids)))


def test_the_walk_answers_as_torchs_walks():
    model = Tangled()
    walk = ModelWalk(model)
    named = list(model.named_modules())
    assert walk.names == [name for name, _ in named]
    assert all(a is b for a, b in zip(walk.modules, (m for _, m in named), strict=True))
    assert [id(p) for p in walk.parameters] == [id(p) for p in model.parameters()]
    assert [id(b) for b in walk.buffers] == [id(b) for b in model.buffers()]
    # 3 buffers of the batch norm; parameters: embedding (tied head), linear w+b, norm w+b
    assert sorted(walk.roles.values()) == ["buffer"] * 3 + ["param"] * 5
    assert walk.module_ids()[id(model.again)] == "block.0"


class SetsAttributes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        self.fc.note = "set in forward"
        return self.fc(x)


def test_each_module_keeps_its_own_dict_untouched():
    model = SetsAttributes()
    dicts = [vars(m) for m in model.modules()]
    before = [dict(d) for d in dicts]
    flopmeter.profile(model, torch.randn(2, 4))
    assert all(vars(m) is d for m, d in zip(model.modules(), dicts, strict=True))
    assert all(d == b for d, b in zip(dicts, before, strict=True))  # no "note", calls still 0
    assert model.calls == 0 and not hasattr(model.fc, "note")


class BiasProperty(nn.Module):
    """No parameter, buffer or tensor attribute: its bias comes from its class."""

    @property
    def bias(self):
        return torch.zeros(3)

    def forward(self, x):
        return x + self.bias


def test_a_bias_the_class_defines_is_still_read():
    facts = collect(nn.Sequential(BiasProperty(), nn.ReLU()))
    assert facts.bias_params == {"0": 3}  # zeros(3): 3 elements
    assert facts.weights == {}


class RebindsToAView(nn.Module):
    """``.data =`` a view of the buffer's own storage: same address, other shape or dtype."""

    def __init__(self, view) -> None:
        super().__init__()
        self.register_buffer("buf", torch.arange(4.0))
        self.view = view

    def forward(self, x):
        self.buf.data = self.view(self.buf.data)
        return x * 2


@pytest.mark.parametrize(
    "view",
    [lambda t: t.view(2, 2), lambda t: t.view(torch.int32), lambda t: t[1:]],
    ids=["shape", "dtype", "offset"],
)
def test_data_rebound_to_a_view_of_its_own_storage_is_undone(view):
    model = RebindsToAView(view)
    buf = model.buf
    flopmeter.profile(model, torch.randn(2, 4), shapes_only=False)
    assert model.buf is buf and buf.shape == (4,) and buf.dtype == torch.float32
    assert torch.equal(buf, torch.arange(4.0))
