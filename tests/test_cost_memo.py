"""CostMemo: each distinct op call costed once per profile, with the same numbers; and
the one walk of the module tree that reads params and buffers (aggregate.module_tree)."""

from __future__ import annotations

import torch

import flopmeter
from flopmeter import registry
from flopmeter.aggregate import module_tree
from flopmeter.cost import Cost
from flopmeter.cost_memo import CostMemo, signature
from flopmeter.registry import CountOptions
from flopmeter.tracing.events import OpEvent, TensorMeta

X = TensorMeta((2, 8), "float32", 4)
W = TensorMeta((8, 8), "float32", 4, "param")


def _add(alpha: object, other: object = X) -> OpEvent:
    return OpEvent("aten.add", (X, other), {"alpha": alpha}, (X,))


def test_numbers_lists_and_tuples_are_keyed_with_their_type() -> None:
    # 1, 1.0 and True are equal in Python; a formula may tell them apart, so the keys differ
    keys = {signature(_add(1)), signature(_add(1.0)), signature(_add(True))}
    assert len(keys) == 3
    as_list = OpEvent("aten.sum", (X, [1]), {}, (TensorMeta((2,), "float32", 4),))
    as_tuple = OpEvent("aten.sum", (X, (1,)), {}, (TensorMeta((2,), "float32", 4),))
    assert signature(as_list) != signature(as_tuple)
    # a tensor input and a plain 4-tuple with the same items are not the same argument
    assert signature(_add(1, X)) != signature(_add(1, tuple(X)))
    assert signature(_add(1)) == signature(_add(1))


def test_an_opaque_argument_is_not_memoized() -> None:
    packed = object()  # a packed weight: its formula looks it up by identity
    event = OpEvent("quantized.linear", (X, packed, 1.0, 0), {}, (X,))
    assert signature(event) is None


def test_a_repeated_call_reuses_the_first_result_with_the_same_numbers() -> None:
    memo = CostMemo(CountOptions())
    first, again = _add(2), _add(2)
    counted = memo.count(first)
    assert memo.count(again) is counted
    assert counted.cost == registry.cost_of(again, CountOptions())
    # add with alpha != 1: 2 FLOPs per element, 2*8 = 16 elements -> 32; bytes: 2 inputs
    # of 16 float32 read (128), one written (64)
    assert (counted.cost.flops, counted.cost.bytes_read, counted.cost.bytes_written) == (32, 128, 64)
    assert counted.dtype == "float32" and counted.shapes == ((2, 8), (2, 8))
    # alpha 1: one FLOP per element -> 16; a different key, not the memoized 32
    assert memo.count(_add(1)).cost.flops == 16


def test_a_role_changes_the_key_and_the_weight_bytes() -> None:
    memo = CostMemo(CountOptions())
    as_activation = memo.count(OpEvent("aten.mm", (X, TensorMeta((8, 8), "float32", 4)), {}, (X,)))
    as_param = memo.count(OpEvent("aten.mm", (X, W), {}, (X,)))
    assert as_activation.cost.weight_bytes == 0
    assert as_param.cost.weight_bytes == 8 * 8 * 4  # = 256


def test_a_custom_formula_is_called_for_every_call() -> None:
    calls: list[int] = []

    def counting(event: OpEvent) -> int:
        calls.append(1)
        return 10 * len(calls)  # stateful: a memo would repeat the first answer

    model = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.ReLU())
    report = flopmeter.profile(model, torch.randn(2, 4), custom_formulas={"aten.relu": counting})
    assert len(calls) == 3
    assert report.operators["aten.relu"].cost.flops == 10 + 20 + 30  # = 60


class _Shared(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(4, 3)  # 4*3 + 3 = 15 params
        self.b = torch.nn.BatchNorm1d(3)  # 3 + 3 params; buffers 3 + 3 + 1
        self.again = self.a  # shared: listed and counted once
        self.frozen = torch.nn.Linear(3, 2)  # 3*2 + 2 = 8 params, not trainable
        self.frozen.requires_grad_(False)
        self.register_buffer("scale", torch.ones(5, dtype=torch.float16))  # 5 x 2 bytes


def test_module_tree_counts_params_and_buffers_as_the_model_lists_them() -> None:
    model = _Shared()
    tree = module_tree(model)
    assert list(tree.modules) == ["", "a", "b", "frozen"]
    assert tree.parents == {"a": "", "b": "", "frozen": ""}
    assert tree.params == 15 + 6 + 8 == sum(p.numel() for p in model.parameters())
    assert tree.trainable_params == 15 + 6
    assert tree.param_bytes == (15 + 6 + 8) * 4
    assert tree.buffers == 3 + 3 + 1 + 5 == sum(b.numel() for b in model.buffers())
    # running mean/var float32 (6 x 4), num_batches_tracked int64 (8), scale float16 (5 x 2)
    assert tree.buffer_bytes == 6 * 4 + 8 + 5 * 2
    assert tree.modules[""].params == 29 and tree.modules["a"].params == 15
    assert tree.modules["a"].extra_repr == "in_features=4, out_features=3, bias=True"
    assert tree.modules[""].extra_repr == ""  # nn.Module's own: not called


def test_cost_subtraction_is_field_by_field() -> None:
    total = Cost(10, 20, 30, 40, 50, 60, 70)
    part = Cost(1, 2, 3, 4, 5, 6, 7)
    assert total - part == Cost(9, 18, 27, 36, 45, 54, 63)
    assert (total - part) + part == total


def test_forward_is_the_total_less_the_backward() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    report = flopmeter.profile(model, torch.randn(2, 4), backward=True)
    forward = [r.cost for r in report.ops if r.phase == "forward"]
    # linear: (2*4-1)*2*3 + 2*3 bias = 48; relu: 2*3 = 6 -> 54
    assert report.forward.flops == sum(c.flops for c in forward) == 54
    assert report.forward.bytes_read == sum(c.bytes_read for c in forward)
    assert report.backward_cost.flops == sum(r.cost.flops for r in report.ops if r.phase == "backward") > 0
    assert report.modules[""].total == report.forward + report.backward_cost


def test_sum_of_adds_field_by_field() -> None:
    """Cost.sum_of (the report's one sum per module and operator) equals repeated +."""
    costs = [Cost(1, 2, 3, 4, 5, 6, 7), Cost(10, 20, 30, 40, 50, 60, 70), Cost(flops=5)]
    # macs 1+10 = 11, flops 2+20+5 = 27, then 33, 44, 55, 66, 77
    assert Cost.sum_of(costs) == Cost(11, 27, 33, 44, 55, 66, 77) == costs[0] + costs[1] + costs[2]
    assert Cost.sum_of([]) == Cost()
