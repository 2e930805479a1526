"""torch's higher-order operators in an eager forward (tracing/higher_order.py).

Before, every one of them (``torch.cond``, ``while_loop``, ``scan``, ``map``,
``flex_attention``, ...) made the profile fail with torch's "no rule registered for
HigherOrderOperator" blamed on the model, although the model runs."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import flopmeter


class Branches(nn.Module):
    """torch.cond(sum > 0, a(x), b(x) * 2): a has a bias, b has none."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda x: self.a(x), lambda x: self.b(x) * 2, (x,))


def test_cond_counts_the_branch_taken() -> None:
    taken_a = flopmeter.profile(Branches(), torch.ones(5, 8))
    assert taken_a.macs == 5 * 8 * 8  # = 320
    modules = taken_a.by_module()
    assert modules["a"].total.macs == 320
    assert modules["b"].total.macs == 0  # not run: FlopCounterMode would count the larger branch
    # a: 2*8*5*8 = 640 (with bias), x.sum(): 40 - 1 = 39, > 0: 1  ->  680
    assert taken_a.flops == 640 + 39 + 1
    taken_b = flopmeter.profile(Branches(), -torch.ones(5, 8))
    assert taken_b.by_module()["b"].total.macs == 320
    assert taken_b.by_module()["a"].total.macs == 0
    # b: (2*8-1)*5*8 = 600 (no bias), * 2: 40, sum 39, > 1  ->  680
    assert taken_b.flops == 600 + 40 + 39 + 1


def test_cond_on_a_tensor_predicate_is_counted_with_values() -> None:
    """The branch depends on x's values: the shapes-only attempt hands over to a values run."""
    report = flopmeter.profile(Branches(), torch.ones(5, 8))
    assert report.options["computed"] == "values"
    with pytest.raises(flopmeter.ModelError, match="meta"):
        flopmeter.profile(Branches(), torch.ones(5, 8), shapes_only=True)


class Loop(nn.Module):
    """while i < 3: x = l(x) (a 4 -> 4 Linear with bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch._higher_order_ops.while_loop import while_loop

        start = torch.tensor(0)
        return while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, self.l(x)), (start, x))[1]


def test_while_loop_counts_every_iteration() -> None:
    report = flopmeter.profile(Loop(), torch.randn(2, 4))
    assert report.macs == 3 * 2 * 4 * 4  # 3 iterations of 2x4 @ 4x4 = 96
    assert report.flops == 3 * 2 * 4 * 2 * 4  # with bias 2*I*O per row: 3 * 2 * 32 = 192 (i+1, i<3: integer)
    assert report.options["computed"] == "shapes"  # the counter is an integer tensor: it stays real


class Scan(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4, bias=False)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        from torch._higher_order_ops.scan import scan

        def step(carry: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            carry = self.l(carry) + x
            return carry, carry.clone()

        return scan(step, torch.zeros(2, 4), xs)[1]


def test_scan_counts_every_step_on_meta() -> None:
    report = flopmeter.profile(Scan(), torch.randn(5, 2, 4))
    assert report.options["computed"] == "shapes"
    assert report.macs == 5 * 2 * 4 * 4  # 5 steps of 2x4 @ 4x4 = 160
    # per step: (2*4-1)*2*4 = 56 for the matmul, 8 adds  ->  5 * 64 = 320
    assert report.flops == 5 * (56 + 8)
    assert report.by_module()["l"].total.macs == 160


def test_map_counts_every_slice() -> None:
    from torch._higher_order_ops.map import map as map_slices

    class Mapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l = nn.Linear(4, 4, bias=False)

        def forward(self, xs: torch.Tensor) -> torch.Tensor:
            return map_slices(lambda x: self.l(x), xs)

    report = flopmeter.profile(Mapped(), torch.randn(3, 2, 4))
    assert report.macs == 3 * 2 * 4 * 4  # = 96
    assert report.flops == 3 * (2 * 4 - 1) * 2 * 4  # = 168


def test_out_dtype_is_counted_as_its_op() -> None:
    """torch.ao's integer matmul: out_dtype(aten.mm, int32, a, b) is an int8 mm."""
    from torch._higher_order_ops.out_dtype import out_dtype

    class IntegerMatmul(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("w", torch.randint(-5, 5, (16, 8), dtype=torch.int8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return out_dtype(torch.ops.aten.mm.default, torch.int32, x, self.w)

    report = flopmeter.profile(IntegerMatmul(), torch.randint(-5, 5, (4, 16), dtype=torch.int8))
    assert report.macs == 4 * 16 * 8  # = 512 integer MACs
    assert report.flops == 0  # integer arithmetic is not floating point
    assert report.by_operator()["aten.mm"].calls == 1


class Flex(nn.Module):
    def __init__(self, **options: object) -> None:
        super().__init__()
        self.options = options

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        from torch.nn.attention.flex_attention import flex_attention

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "flex_attention called without torch.compile"
            return flex_attention(q, k, v, **self.options)


def test_flex_attention_is_counted_whole_as_attention() -> None:
    q = torch.randn(1, 2, 16, 8)
    report = flopmeter.profile(Flex(), (q, q, q))
    assert report.macs == 2 * 16 * 16 * (8 + 8)  # 2 heads, 16x16 scores, QK^T and AV: 8,192
    # per head: QK^T 256*(2*8-1) = 3,840, scale 256, softmax 5*256 - 2*16 = 1,248,
    # AV 8*(2*256 - 16) = 3,968  ->  9,312 per head, 18,624 for 2
    assert report.flops == 2 * (3840 + 256 + 1248 + 3968)
    assert report.by_operator()["higher_order.flex_attention"].calls == 1
    assert not report.unsupported_ops()


def test_flex_attention_with_a_block_mask_and_grouped_heads() -> None:
    from torch.nn.attention.flex_attention import create_block_mask

    def causal(batch: object, head: object, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return query >= key

    mask = create_block_mask(causal, None, None, 256, 256, device="cpu")
    q, kv = torch.randn(1, 4, 256, 16), torch.randn(1, 2, 256, 16)
    report = flopmeter.profile(Flex(block_mask=mask, enable_gqa=True), (q, kv, kv))
    assert report.macs == 4 * 256 * 256 * (16 + 16)  # dense scores, 4 query heads: 8,388,608
    # per head: QK^T 65,536*31 = 2,031,616, scale + mask 2*65,536 = 131,072,
    # softmax 5*65,536 - 2*256 = 327,168, AV 16*(2*65,536 - 256) = 2,093,056  ->  4,582,912
    assert report.flops == 4 * (2_031_616 + 131_072 + 327_168 + 2_093_056)


def test_an_operator_without_a_formula_is_listed_never_zero() -> None:
    from torch._higher_order_ops.print import print as print_op

    class Printing(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            print_op("x is {x}", x=x)
            return x * 2

    report = flopmeter.profile(Printing(), torch.ones(3))
    unsupported = report.unsupported_ops()
    assert list(unsupported) == ["higher_order.print"]
    assert unsupported["higher_order.print"].calls == 1
    assert unsupported["higher_order.print"].shapes == ["(3:float32)"]
    assert report.flops == 3  # x * 2


@pytest.mark.parametrize("mode", ["plain", "no_grad", "inference_mode"])
def test_the_same_numbers_in_every_mode(mode: str) -> None:
    contexts = {"plain": torch.enable_grad, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}
    q = torch.randn(1, 2, 16, 8)
    with contexts[mode]():
        branches = flopmeter.profile(Branches(), torch.ones(5, 8))
        scan = flopmeter.profile(Scan(), torch.randn(5, 2, 4))
        flex = flopmeter.profile(Flex(), (q, q, q))
    assert (branches.macs, branches.flops) == (320, 680)
    assert (scan.macs, scan.flops) == (160, 320)
    assert (flex.macs, flex.flops) == (8192, 18624)


def test_the_model_is_left_as_it_was() -> None:
    model = Branches()
    x = torch.ones(5, 8)
    before = model(x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flopmeter.profile(model, x)
    assert torch.equal(model(x), before)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert not any(p.is_meta for p in model.parameters())


def test_a_training_step_through_cond_says_why_it_cannot_be_counted() -> None:
    with pytest.raises(flopmeter.ModelError, match="higher-order operator .* only through its compiler"):
        flopmeter.profile(Branches(), torch.ones(5, 8, requires_grad=True), backward=True)


def test_attention_in_a_branch_is_counted() -> None:
    class AttendOrCopy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            def attend(x: torch.Tensor) -> torch.Tensor:
                return nn.functional.scaled_dot_product_attention(self.q(x), x, x)

            return torch.cond(x.sum() > 0, attend, lambda x: x.clone(), (x,))

    report = flopmeter.profile(AttendOrCopy(), torch.ones(1, 2, 4, 8))
    # q: 8 rows (1*2*4) x 8 x 8 = 512; attention: 2 heads x 4x4 scores x (8 + 8) = 512
    assert report.macs == 512 + 512
    assert report.by_module()["q"].total.macs == 512


# The promises of docs/formulas.md's higher-order table, one by one (promises audit, stop 22).


@pytest.mark.parametrize("model, inputs", [(Loop, (2, 4)), (Scan, (5, 2, 4))])
def test_a_training_step_through_while_loop_or_scan_says_why(
    model: type[nn.Module], inputs: tuple[int, ...]
) -> None:
    """Their eager kernels give the output no grad_fn: the error names the operator, not
    a torch.no_grad() the model never called."""
    with pytest.raises(ValueError, match="higher-order operator.* only through its compiler"):
        flopmeter.profile(model(), torch.randn(*inputs), backward=True)


def test_a_loop_decided_by_a_float_tensor_is_counted_with_values() -> None:
    """while x.sum() < 100: x = l(x) + 1, l the identity: x.sum() is 8 k after k steps of a
    2x4 zero start, so 13 iterations (8*13 = 104)."""
    from torch._higher_order_ops.while_loop import while_loop

    class FloatLoop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l = nn.Linear(4, 4)
            with torch.no_grad():
                self.l.weight.copy_(torch.eye(4))
                self.l.bias.zero_()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            def body(i: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                return i + 1, self.l(x) + 1

            return while_loop(lambda i, x: x.sum() < 100.0, body, (torch.tensor(0), x))[1]

    report = flopmeter.profile(FloatLoop(), torch.zeros(2, 4))
    assert report.options["computed"] == "values"
    assert report.macs == 13 * 2 * 4 * 4  # = 416
    # per iteration: linear 2*4*4*2 = 64 (bias), + 1: 8, sum 7, < 1  ->  80; 14 checks, 13 bodies:
    # 13 * 80 + the last check 8 = 1,048
    assert report.flops == 13 * 80 + 8


def test_flex_attention_is_counted_in_a_run_with_values() -> None:
    q = torch.randn(1, 2, 16, 8)
    assert flopmeter.profile(Flex(), (q, q, q)).options["computed"] == "values"
    with pytest.raises(flopmeter.ModelError, match="meta"):  # refused on meta tensors
        flopmeter.profile(Flex(), (q, q, q), shapes_only=True)


def test_flex_attention_score_mod_is_not_counted_nor_causal_needed_applied() -> None:
    def shifted(score: torch.Tensor, batch: object, head: object, query: object, key: object) -> torch.Tensor:
        return score + (query - key)  # type: ignore[operator]

    q = torch.randn(1, 2, 16, 8)
    with_mod = flopmeter.profile(Flex(score_mod=shifted), (q, q, q))
    assert (with_mod.macs, with_mod.flops) == (8192, 18624)  # as without score_mod (above)
    from torch.nn.attention.flex_attention import create_block_mask

    def causal(batch: object, head: object, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return query >= key

    mask = create_block_mask(causal, None, None, 256, 256, device="cpu")
    q = torch.randn(1, 2, 256, 16)
    dense = flopmeter.profile(Flex(block_mask=mask), (q, q, q))
    needed = flopmeter.profile(Flex(block_mask=mask), (q, q, q), causal="needed")
    assert dense.macs == needed.macs == 2 * 256 * 256 * 32  # dense scores both: 4,194,304
    assert dense.flops == needed.flops


def test_flex_attention_mask_term_comes_with_any_mask_mod() -> None:
    """The eager kernel applies a mask_mod to every score, even one that keeps them all."""
    from torch.nn.attention.flex_attention import create_block_mask

    def keep_all(batch: object, head: object, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return query >= 0

    mask = create_block_mask(keep_all, None, None, 256, 256, device="cpu")
    q = torch.randn(1, 2, 256, 16)
    masked = flopmeter.profile(Flex(block_mask=mask), (q, q, q))
    plain = flopmeter.profile(Flex(), (q, q, q))
    assert masked.flops - plain.flops == 2 * 256 * 256  # one mask op per score, 2 heads: 131,072


def test_attention_in_a_branch_takes_the_kernels_name() -> None:
    class Attend(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            attend = nn.functional.scaled_dot_product_attention
            return torch.cond(x.sum() > 0, lambda x: attend(x, x, x), lambda x: x.clone(), (x,))

    operators = flopmeter.profile(Attend(), torch.ones(1, 2, 4, 8)).by_operator()
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in operators
    assert "aten.scaled_dot_product_attention" not in operators
    assert operators["aten._scaled_dot_product_flash_attention_for_cpu"].cost.macs == 2 * 4 * 4 * 16  # = 512


def test_associative_scan_and_invoke_subgraph_count_what_they_run() -> None:
    from torch._higher_order_ops.associative_scan import associative_scan
    from torch._higher_order_ops.invoke_subgraph import invoke_subgraph

    class PrefixSum(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return associative_scan(lambda a, b: a + b, x, dim=0, combine_mode="generic")

    report = flopmeter.profile(PrefixSum(), torch.randn(8, 3))
    # the work-efficient scan of 8 rows: up 4 + 2 + 1 combines, down 1 + 3: 11 rows of 3 adds = 33
    assert report.flops == 11 * 3
    assert report.operators["aten.add"].calls == 6  # one per level and direction

    class Subgraph(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l = nn.Linear(4, 4, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return invoke_subgraph(lambda x: self.l(x), "layer", x)

    report = flopmeter.profile(Subgraph(), torch.randn(2, 4))
    assert report.macs == report.modules["l"].macs == 2 * 4 * 4  # = 32, charged to l


def test_cond_counts_the_branch_taken_where_flop_counter_mode_counts_the_larger() -> None:
    """docs/formulas.md's comparison: a (8 -> 8) taken, b (8 -> 64) not."""
    from torch.utils.flop_counter import FlopCounterMode

    class Unequal(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 64)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cond(x.sum() > 0, lambda x: self.a(x).sum(-1), lambda x: self.b(x).sum(-1), (x,))

    model, x = Unequal(), torch.ones(5, 8)
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert counter.get_total_flops() == 2 * 5 * 8 * 64  # b's matmul: 5,120
    assert flopmeter.profile(model, x).macs == 5 * 8 * 8  # a's: 320 MACs


def test_results_the_operator_makes_count_as_live_memory() -> None:
    """map stacks its slices' results itself, with the recorder off: that result is live
    memory all the same (before, the peak missed it and so did every later op)."""
    from torch._higher_order_ops.map import map as map_slices

    class Doubled(nn.Module):
        def forward(self, xs: torch.Tensor) -> torch.Tensor:
            ys = map_slices(lambda x: x * 2, xs)
            return torch.cat([ys, ys])

    report = flopmeter.profile(Doubled(), torch.randn(8, 256))
    # input 8*256*4 = 8,192 bytes, held; at the stacking: 8 slice results of 1,024 bytes
    # (8,192) and the stacked 8,192  ->  24,576. Then the cat: input 8,192 + ys 8,192 +
    # cat 16,384 = 32,768 (the slice results are gone by then)
    assert report.peak_activation_bytes == 32_768
    assert report.flops == 8 * 256  # the doubling; stacking and cat move bytes only


def test_the_stacking_itself_raises_the_peak() -> None:
    from torch._higher_order_ops.map import map as map_slices

    class Mapped(nn.Module):
        def forward(self, xs: torch.Tensor) -> torch.Tensor:
            return map_slices(lambda x: x * 2, xs)

    report = flopmeter.profile(Mapped(), torch.randn(8, 256))
    # input 8,192 + the 8 slice results 8 * 1,024 = 8,192 + the stacked result 8,192 = 24,576
    assert report.peak_activation_bytes == 24_576


def test_a_backward_through_a_branch_is_refused_never_counted_short() -> None:
    """cond's branch calls ``a``, whose weight is no operand of cond: torch runs the branch
    below autograd, so ``a`` got no weight gradient and the backward was counted short
    (960 MACs where the same model without cond counts 1,280), with no word."""

    class CondPlus(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(8, 8, bias=False)
            self.c = nn.Linear(8, 8, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cond(x.sum() > 0, lambda x: self.a(x), lambda x: self.a(x) * 2, (x,)) + self.c(x)

    model = CondPlus()
    with pytest.raises(ValueError, match="higher-order operator cond .* no gradient"):
        flopmeter.profile(model, torch.ones(5, 8), backward=True)
    # the forward alone: a and c, 5 rows x 8 x 8 = 320 MACs each
    assert flopmeter.profile(model, torch.ones(5, 8)).macs == 640
    assert all(p.grad is None for p in model.parameters())


def test_a_backward_through_a_loop_says_why() -> None:
    """Before: "the model's output does not require grad ... does its forward run under
    torch.no_grad()?", which it does not."""
    with pytest.raises(ValueError, match="higher-order operator while_loop"):
        flopmeter.profile(Loop(), torch.randn(2, 4), backward=True)


def test_a_profile_inside_the_users_own_dispatch_mode() -> None:
    """torch's eager kernels of cond and scan assert that no dispatch mode is on: under a
    mode of the user's (FlopCounterMode, say) the profile failed with torch's "Mode should
    never be enabled for CPU/CUDA key", blamed on the model."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Watching(TorchDispatchMode):
        seen: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            self.seen.add(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    with Watching() as watching:
        branches = flopmeter.profile(Branches(), torch.ones(5, 8))
        scan = flopmeter.profile(Scan(), torch.randn(5, 2, 4))
    assert (branches.macs, scan.macs) == (320, 160)  # as without the user's mode
    assert "aten.addmm" in watching.seen  # the branch's Linear still reaches the user's mode


def test_a_branch_that_leaves_a_mode_on_leaves_no_recorder_on() -> None:
    """A branch that enters a dispatch mode of its own and leaves it on: torch's ``__exit__``
    of the recorder took that mode off instead, and the recorder stayed on the stack after
    the profile, seeing every later op of the process."""
    from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode_stack, _pop_mode

    class Left(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            return func(*args, **(kwargs or {}))

    class LeavesAMode(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            def branch(x: torch.Tensor) -> torch.Tensor:
                Left().__enter__()  # never exited
                return self.a(x)

            return torch.cond(x.sum() > 0, branch, lambda x: x.clone(), (x,))

    before = len(_get_current_dispatch_mode_stack())
    try:
        report = flopmeter.profile(LeavesAMode(), torch.ones(5, 8), shapes_only=False)
        left = [type(mode).__name__ for mode in _get_current_dispatch_mode_stack()[before:]]
    finally:
        while len(_get_current_dispatch_mode_stack()) > before:
            _pop_mode()
    assert report.macs == 5 * 8 * 8  # = 320, the branch taken
    assert "OpRecorder" not in left  # only the model's own mode is left on


def test_a_shapes_only_failure_the_model_catches_hands_over_to_values() -> None:
    """cond on a predicate made from a weight (meta in the shapes-only attempt) fails there;
    a model that catches it and goes on took another path than the real run: before, that
    path was counted (40 MACs, the gate alone)."""

    class Catches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.g = nn.Linear(8, 1)
            self.a = nn.Linear(8, 8, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            try:
                return torch.cond(self.g(x).sum() > 0, lambda x: self.a(x), lambda x: self.a(x) * 2, (x,))
            except RuntimeError:
                return x * 3

    report = flopmeter.profile(Catches(), torch.ones(5, 8))
    assert report.options["computed"] == "values"
    assert report.macs == 5 * 8 * 1 + 5 * 8 * 8  # g 40 + a 320 = 360 (either branch runs a)
