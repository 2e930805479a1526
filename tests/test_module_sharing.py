"""A module held by two parents (P6-A12): each call is charged to the name it was
called through. A Linear(4, 4) on a batch of 2 is 2*4*4 = 32 MACs and
(2*4-1)*4*2 + 2*4 (bias) = 64 FLOPs a call; a ReLU on 2x4 is 8 FLOPs."""

from __future__ import annotations

import torch
import torch.nn.utils.prune as prune
from torch import nn

import flopmeter
from flopmeter.render.text import render_tree
from flopmeter.tracing.model_walk import ModelWalk
from flopmeter.tracing.shared_names import further_names


class TwoParents(nn.Module):
    """One Linear(4, 4) held as ``a`` and as ``b[0]``; ``b(a(x))`` calls it once through each."""

    def __init__(self) -> None:
        super().__init__()
        shared = nn.Linear(4, 4)
        self.a, self.b = shared, nn.Sequential(shared, nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def _rows(report: flopmeter.Report) -> dict[str, tuple[int, int, int, int]]:
    return {n: (m.calls, m.total.macs, m.total.flops, m.params) for n, m in report.modules.items()}


def test_each_call_is_charged_to_the_parent_it_was_called_through():
    """Fails on main (before stop 19): there 'a' had both calls (64 MACs), 'b' 0 MACs, no 'b.0' row."""
    report = flopmeter.profile(TwoParents(), torch.randn(2, 4))
    assert report.macs == 64  # 2 calls * 32
    assert report.flops == 136  # 2 calls * 64 + ReLU 8
    assert report.params == 20  # 4*4 weight + 4 bias, once
    assert _rows(report) == {
        # name: (calls, MACs, FLOPs, params)
        "": (1, 64, 136, 20),
        "a": (1, 32, 64, 20),  # the direct call from the model's forward: its first name
        "b": (1, 32, 72, 0),  # 64 (b.0) + 8 (ReLU)
        "b.0": (1, 32, 64, 0),  # the call made by b; its params are counted at 'a'
        "b.1": (1, 0, 8, 0),
    }
    assert report.modules["b"].children == ["b.0", "b.1"]  # in the order b holds them
    assert (report.modules["b.0"].shared_with, report.modules["b.0"].type) == ("a", "Linear")
    assert report.modules["b.0"].depth == 2
    # the % columns add up: the top-level rows share out the model's MACs and params
    assert report.modules["a"].macs + report.modules["b"].macs == report.macs
    assert report.modules["a"].params + report.modules["b"].params == report.params
    tree = render_tree(report)
    assert "(0): Linear(0 params, 0.00% params, 32 MACs, 50.00% MACs, 64 FLOPs, shared with a," in tree
    shared_rows = [m for m in report.to_dict()["modules"] if "shared_with" in m]
    assert [(m["name"], m["shared_with"]) for m in shared_rows] == [("b.0", "a")]


class Loop(nn.Module):
    """A tied block: one Linear(4, 4) applied three times by the same parent."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = self.block(x)
        return x


def test_a_module_called_in_a_loop_stays_one_row():
    report = flopmeter.profile(Loop(), torch.randn(2, 4))
    assert _rows(report) == {"": (1, 96, 192, 20), "block": (3, 96, 192, 20)}  # 3 * 32 MACs, 3 * 64 FLOPs


class Twice(nn.Module):
    """Applies the layer it holds twice."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.layer(x))


class SharedByTwoBlocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        shared = nn.Linear(4, 4)
        self.p, self.q = Twice(shared), Twice(shared)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.q(self.p(x))


def test_a_module_shared_by_two_parents_has_each_parents_calls():
    report = flopmeter.profile(SharedByTwoBlocks(), torch.randn(2, 4))
    assert _rows(report) == {
        "": (1, 128, 256, 20),  # 4 calls * 32 MACs, 4 * 64 FLOPs
        "p": (1, 64, 128, 20),
        "p.layer": (2, 64, 128, 20),  # 2 calls * 32
        "q": (1, 64, 128, 0),
        "q.layer": (2, 64, 128, 0),  # its params are p.layer's
    }
    assert report.modules["q.layer"].shared_with == "p.layer"


class SharedBlock(nn.Module):
    """A shared block with children: ``a`` is Sequential(Linear(4, 4), ReLU), also held as ``b[0]``."""

    def __init__(self) -> None:
        super().__init__()
        block = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
        self.a, self.b = block, nn.Sequential(block, nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def test_a_shared_block_charges_its_children_under_the_path_it_was_called_through():
    report = flopmeter.profile(SharedBlock(), torch.randn(2, 4), backward=True)
    forward = {n: (m.calls, m.total.macs - m.backward.macs) for n, m in report.modules.items()}
    assert forward == {
        "": (1, 64),
        "a": (1, 32),
        "a.0": (1, 32),
        "a.1": (1, 0),
        "b": (1, 32),
        "b.0": (1, 32),
        "b.0.0": (1, 32),
        "b.0.1": (1, 0),
        "b.1": (1, 0),
    }
    assert report.modules["b.0.0"].shared_with == "a.0"
    backward = {n: report.modules[n].backward.macs for n in ("a.0", "b.0.0", "")}
    # a.0: its input needs no gradient: grad weight (4x2)@(2x4) = 32 MACs;
    # b.0.0: grad input (2x4)@(4x4) = 32 + grad weight 32 = 64 MACs
    assert backward == {"a.0": 32, "b.0.0": 64, "": 96}


class DirectCall(TwoParents):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b[0](x)  # b itself does not run: the call is the model's own


def test_a_call_made_by_the_model_itself_goes_to_the_first_name():
    report = flopmeter.profile(DirectCall(), torch.randn(2, 4))
    assert {n: (m.calls, m.total.macs) for n, m in report.modules.items()} == {
        "": (1, 32),
        "a": (1, 32),
        "b": (0, 0),
        "b.0": (0, 0),
        "b.1": (0, 0),
    }


def test_a_pruned_shared_module_keeps_its_mask_multiplies_out_of_the_count():
    """The mask multiply (weight_orig * weight_mask, 16 FLOPs a call) is pruning overhead
    whichever name the call was made through; half the 16 weights are zero."""
    model = TwoParents()
    prune.l1_unstructured(model.a, "weight", 0.5)
    report = flopmeter.profile(model, torch.randn(2, 4))
    assert report.flops == 136  # as unpruned: 2 * 64 + 8
    view = report.compression
    assert view.overhead["aten.mul"].flops == 32  # 2 calls * 16
    # 8 nonzero weights * batch 2 = 16 effective MACs a call, at a and at b.0
    assert (view.layers["a"].macs_effective, view.layers["b.0"].macs_effective) == (16, 16)
    assert view.layers["b.0"].params == 0  # counted at a


class SharedRecurrent(nn.Module):
    """A sequence-first LSTM held as ``a`` and ``b[1]``, run only through ``b``."""

    def __init__(self) -> None:
        super().__init__()
        lstm = nn.LSTM(4, 8)
        self.a, self.b = lstm, nn.Sequential(nn.Identity(), lstm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(x)[0]


def test_the_batch_is_found_through_a_shared_module_s_further_name():
    """(5, 3, 4) into an LSTM without batch_first: sequence 5, batch 3."""
    report = flopmeter.profile(SharedRecurrent(), torch.randn(5, 3, 4))
    assert report.batch_size == 3
    assert (report.modules["b.1"].calls, report.modules["a"].calls) == (1, 0)


def test_a_tree_has_no_further_names_and_a_cycle_ends():
    assert further_names(ModelWalk(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))) == {}
    inner = nn.Sequential(nn.Linear(2, 2))
    outer = nn.Sequential(inner)
    inner.add_module("back", outer)  # holds its own parent
    assert further_names(ModelWalk(outer)) == {}  # every module has one name; no path repeats
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.Sequential(shared))
    assert list(further_names(ModelWalk(model))) == ["1.0"]


class HeldTwiceByOneParent(nn.Module):
    """``self.fc`` and its alias ``self.head`` (a parent holding one Linear(4, 4) under two keys)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.head = self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc(x))


def test_a_parent_holding_a_module_twice_calls_it_by_its_first_name():
    """One parent cannot tell which of its keys a call used: both calls are 'fc''s, and
    'head' has no row (as before stop 19)."""
    report = flopmeter.profile(HeldTwiceByOneParent(), torch.randn(2, 4))
    assert {n: (m.calls, m.total.macs) for n, m in report.modules.items()} == {
        "": (1, 64),  # 2 calls * 32
        "fc": (2, 64),
    }
    model = nn.Sequential(HeldTwiceByOneParent())  # and under a further name of the pair's parent
    shared = nn.Sequential(model[0])
    both = nn.Sequential(model, shared)
    assert list(further_names(ModelWalk(both))) == ["1.0", "1.0.fc"]  # not 1.0.head
