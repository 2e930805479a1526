"""A shapes-only run rejects indices the real call rejects (token ids past the vocabulary,
positions past a cache), with the real kernel's error type; indices in range count as a
run with values counts them (tracing/index_checks.py)."""

import pytest
import torch

import flopmeter
from flopmeter.tracing.index_checks import check_indices


class Lookup(torch.nn.Module):
    """Reads a weight of 10 rows (a vocabulary) at integer indices, one way or another."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.table = torch.nn.Embedding(10, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        weight = self.table.weight
        if self.how == "embedding":
            return self.table(ids)
        if self.how == "index":
            return weight[ids]
        if self.how == "index_select":
            return weight.index_select(0, ids.flatten())
        if self.how == "gather":
            return weight.gather(0, ids.reshape(-1, 1).expand(-1, 4))
        if self.how == "embedding_bag":
            return torch.nn.functional.embedding_bag(ids, weight)
        raise AssertionError(self.how)


# how -> (the real call's error, whether -1 is a valid index)
WAYS = {
    "embedding": (IndexError, False),
    "index": (IndexError, True),
    "index_select": (IndexError, False),
    "gather": (RuntimeError, False),
    "embedding_bag": (RuntimeError, False),
}


@pytest.mark.parametrize("how", WAYS)
@pytest.mark.parametrize("bad", [10, 50, -11])
def test_out_of_range_is_rejected_as_the_real_call_rejects_it(how, bad):
    model, ids = Lookup(how).eval(), torch.tensor([[1, bad]])
    error, _ = WAYS[how]
    with pytest.raises(error):
        model(ids)  # the real call
    with pytest.raises(flopmeter.ModelError, match=error.__name__) as raised:
        flopmeter.profile(model, ids, shapes_only=True)
    assert isinstance(raised.value.__cause__, error)
    with pytest.raises(flopmeter.ModelError, match=error.__name__):
        flopmeter.profile(model, ids)  # the default: a second run with values raises it again


@pytest.mark.parametrize("how", WAYS)
def test_indices_in_range_count_as_with_values(how):
    model = Lookup(how).eval()
    _, negative_ok = WAYS[how]
    ids = torch.tensor([[0, 9, -1 if negative_ok else 3]])
    shapes = flopmeter.profile(model, ids, shapes_only=True)
    values = flopmeter.profile(model, ids, shapes_only=False)
    assert shapes.to_dict()["modules"] == values.to_dict()["modules"]
    assert shapes.total == values.total


def test_a_write_past_a_meta_cache_is_rejected():
    """A KV cache on meta written at real positions: position 8 of an 8-slot cache."""

    class Cache(torch.nn.Module):
        def forward(self, k: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
            cache = torch.zeros(1, 8, 4, device=k.device, dtype=k.dtype)
            return cache.index_copy_(1, positions, k)

    k = torch.randn(1, 2, 4)
    for positions, raises in ((torch.tensor([6, 7]), False), (torch.tensor([7, 8]), True)):
        if raises:
            with pytest.raises(flopmeter.ModelError, match="IndexError"):
                flopmeter.profile(Cache(), (k, positions), shapes_only=True)
        else:
            assert (
                flopmeter.profile(Cache(), (k, positions), shapes_only=True).options["computed"] == "shapes"
            )


def _cases():
    """(aten op, its arguments with a meta table) of calls the real kernel rejects."""
    table, vector, scalar = torch.empty(10, 4), torch.empty(4), torch.tensor(1.0)
    source = torch.ones(1, 4)
    return [
        ("embedding", (table, torch.tensor([10]))),
        ("index_select", (table, 0, torch.tensor([-1]))),
        ("index_select", (table, 1, torch.tensor([4]))),  # the last dim: RuntimeError on the CPU
        ("index_select", (vector, 0, torch.tensor([4]))),
        ("index_select", (scalar, 0, torch.tensor([1]))),  # a 0-d tensor indexes as one element
        ("gather", (table, 0, torch.tensor([[-1]]))),
        ("gather", (scalar, 0, torch.tensor(1))),
        ("scatter_add", (table, 0, torch.full((1, 4), 10), source)),
        ("scatter_reduce", (table, 0, torch.full((1, 4), 10), source, "sum")),
        ("index_add", (table, 0, torch.tensor([10]), source)),
        ("index_copy", (table, 0, torch.tensor([10]), source)),
        ("index_fill", (table, 0, torch.tensor([-11]), 1.0)),
        ("take", (table, torch.tensor([40]))),
        ("put", (table, torch.tensor([-41]), torch.tensor([1.0]))),
        ("index", (table, [None, torch.tensor([-5])])),
        ("index", (table, [torch.ones(10, dtype=torch.bool), torch.tensor([4])])),
    ]


def _raises_as_the_cpu_does(op: str, args: tuple) -> None:
    """The real CPU call raises; check_indices, given the float tensors on meta (as a
    shapes-only run has them), raises the same type."""
    with pytest.raises(Exception) as real:
        getattr(torch.ops.aten, op)(*args)
    on_meta = tuple(
        a.to("meta") if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args
    )
    with pytest.raises(type(real.value)):
        check_indices(op, on_meta)


@pytest.mark.parametrize("op, args", _cases())
def test_check_indices_raises_what_the_cpu_kernel_raises(op, args):
    _raises_as_the_cpu_does(op, args)


def test_what_is_not_checked():
    table = torch.empty(10, 4, device="meta")
    check_indices("embedding", (table, torch.tensor([9])))  # in range
    check_indices("embedding", (table, torch.empty(0, dtype=torch.long)))  # nothing to look up
    check_indices("embedding", (table, torch.empty(3, dtype=torch.long, device="meta")))  # no values
    check_indices("index", (table, [None, torch.tensor([-4, 3])]))  # from the end, in range
    check_indices("add", (table, torch.tensor([99])))  # not an indexing op
    check_indices("take", (table, torch.tensor([-40, 39])))  # take counts from the end
    check_indices("index_fill", (table, 0, torch.tensor([-10]), 1.0))  # so does index_fill
    check_indices("index_select", (torch.empty((), device="meta"), 0, torch.tensor([0])))


@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
def test_index_select_and_index_add_raise_the_cpu_error_type_along_every_dim(ndim):
    """The CPU's error type depends on the dim and the index dtype for these two ops
    (RuntimeError along dim 1 for index_select, along the first or last dim with int64
    indices for index_add; IndexError otherwise); the check raises the same."""
    table = torch.zeros((3,) * ndim)
    for dim in range(ndim):
        for dtype in (torch.int64, torch.int32):
            index = torch.tensor([3], dtype=dtype)
            source = torch.zeros(table.index_select(dim, torch.tensor([0])).shape)
            for op, args in (
                ("index_select", (table, dim, index)),
                ("index_add", (table, dim, index, source)),
            ):
                _raises_as_the_cpu_does(op, args)


def test_a_bool_index_to_index_select_is_refused_as_the_real_call_refuses_it():
    table = torch.empty(10, 4, device="meta")
    with pytest.raises(RuntimeError, match="int32 or int64"):
        check_indices("index_select", (table, 0, torch.tensor([True, False])))
