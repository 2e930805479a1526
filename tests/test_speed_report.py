"""The report's sums after the speed pass of probe 7 (aggregate.build_report, module_tree,
compression facts): each module's own cost, its inclusive total and backward, each
operator's sum, by hand; and the facts' bias lookup that bypasses Module.__getattr__."""

from __future__ import annotations

import pytest
import torch

import flopmeter
from flopmeter.compression.facts import _attribute, _plain_class
from flopmeter.cost import Cost


class _Outer(torch.nn.Module):
    """An op of its own (the multiply) beside a child's (the linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * 2


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(_Outer(), torch.nn.ReLU()).eval()


def test_own_total_and_operator_sums_by_hand() -> None:
    report = flopmeter.profile(_model(), torch.randn(2, 4))
    modules = report.modules
    # linear 4 -> 3 on 2 rows: (2*4-1)*2*3 products and sums + 2*3 bias adds = 42 + 6 = 48
    assert modules["0.inner"].own.flops == modules["0.inner"].total.flops == 48
    assert modules["0.inner"].own.macs == 4 * 2 * 3  # = 24
    # the multiply by 2 runs in _Outer itself: 2*3 = 6 FLOPs own, 48 + 6 = 54 in all
    assert modules["0"].own.flops == 6 and modules["0"].total.flops == 54
    assert modules["1"].own.flops == modules["1"].total.flops == 6  # relu: 2*3
    assert modules[""].own == Cost() and modules[""].total.flops == 54 + 6  # = 60
    assert report.forward == modules[""].total and report.flops == 60
    # bytes: a module's total is its own plus its children's, field by field
    for name, stats in modules.items():
        children = [modules[child].total for child in stats.children]
        assert stats.total == Cost.sum_of([stats.own, *children]), name
    operators = report.operators
    assert operators["aten.addmm"].cost.flops == 48 and operators["aten.addmm"].calls == 1
    assert operators["aten.mul"].cost.flops == 6 and operators["aten.relu"].cost.flops == 6
    assert (
        operators["aten.t"].kind == "view" and operators["aten.t"].cost == Cost()
    )  # free, counted as a call
    assert operators["aten.t"].calls == 1
    assert Cost.sum_of([o.cost for o in operators.values()]) == report.forward


def test_backward_sums_are_the_backward_records() -> None:
    report = flopmeter.profile(_model(), torch.randn(2, 4), backward=True)
    backward = [r for r in report.ops if r.phase == "backward"]
    assert backward  # the backward ran and was charged
    assert report.backward_cost == Cost.sum_of([r.cost for r in backward])
    for name, stats in report.modules.items():
        own = Cost.sum_of([r.cost for r in backward if r.module == name])
        children = [report.modules[child].backward for child in stats.children]
        assert stats.backward == Cost.sum_of([own, *children]), name
    for op, entry in report.operators.items():
        if entry.kind != "view":
            assert entry.backward_calls == sum(1 for r in backward if r.op == op), op
    assert report.modules[""].backward == report.backward_cost
    assert report.modules[""].total == report.forward + report.backward_cost


class _BiasAsAttribute(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.zeros(3)  # a plain tensor attribute, not a buffer


class _BiasAsBuffer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("bias", torch.zeros(3))


class _BiasAsModule(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Identity()


@pytest.mark.parametrize(
    "module",
    [
        torch.nn.Linear(2, 3),  # a parameter
        torch.nn.Linear(2, 3, bias=False),  # registered as None
        torch.nn.ReLU(),  # none at all
        _BiasAsAttribute(),
        _BiasAsBuffer(),
        _BiasAsModule(),
    ],
    ids=["parameter", "none", "missing", "attribute", "buffer", "module"],
)
def test_the_bias_is_found_as_getattr_finds_it(module: torch.nn.Module) -> None:
    assert _plain_class(type(module))
    assert _attribute(module, "bias") is getattr(module, "bias", None)
