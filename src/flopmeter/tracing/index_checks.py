"""The index checks a real kernel makes, for a call that runs on meta with real indices.

In a shapes-only run, integer inputs (token ids, positions) stay real while the table
they index is moved to meta (a model weight) or already is (an activation). Meta
kernels read no index values, so ``Embedding(10, 4)`` would take id 50 that the real
call rejects. Here the real indices are checked against the indexed size before the
call moves to meta, and the error the real kernel raises (its type and words) is
raised instead: a shapes-only run rejects what the real call rejects.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

_OUT_OF_BOUNDS = "index {bad} is out of bounds for dimension {dim} with size {size}"
_OUT_OF_RANGE = "out of range: tried to access index {bad} on a tensor of {size} elements."
_NUMEL = -1  # "dim" of the ops that index the flattened tensor (take, put_)


class _Rule(NamedTuple):
    """Where an op's indexed tensor, dim and indices are, whether an index may count from
    the end, and the error (type and words) its real kernel raises."""

    table: int
    dim: int | None  # position of the dim argument; None: dim 0; _NUMEL: the flattened tensor
    indices: int
    negative_ok: bool
    error: type[Exception]
    words: str


def _rules(names: str, *rule: Any) -> dict[str, _Rule]:
    return dict.fromkeys(names.split(), _Rule(*rule))


_RULES: dict[str, _Rule] = {
    **_rules("embedding", 0, None, 1, False, IndexError, "index out of range in self"),
    **_rules("index_select", 0, 1, 2, False, IndexError, "index out of range in self"),
    **_rules(
        "gather scatter scatter_ scatter_add scatter_add_ scatter_reduce scatter_reduce_ index_add index_add_",
        0,
        1,
        2,
        False,
        RuntimeError,
        _OUT_OF_BOUNDS,
    ),
    **_rules("index_copy index_copy_", 0, 1, 2, False, IndexError, "index_copy_(): " + _OUT_OF_BOUNDS),
    **_rules("index_fill index_fill_", 0, 1, 2, True, IndexError, _OUT_OF_BOUNDS),
    **_rules("take put put_", 0, _NUMEL, 1, True, IndexError, _OUT_OF_RANGE),
    **_rules(
        "_embedding_bag _embedding_bag_forward_only",
        0,
        None,
        1,
        False,
        RuntimeError,
        "an index takes value {bad}, not in the valid range [0, {size})",
    ),
}
# the CPU's index_select along dim 1 of a tensor of two or more dims says it so
_DIM_1_SELECT = "INDICES element is out of DATA bounds, id={bad} axis_dim={size}"

# advanced indexing (``x[ids]``, ``x[ids] = v``): a list of optional index tensors,
# which may count from the end
_INDEX_LISTS = frozenset({"index", "index_put", "index_put_", "_unsafe_index", "_unsafe_index_put"})

CHECKED_OPS = frozenset(_RULES) | _INDEX_LISTS


def check_indices(op: str, args: tuple[Any, ...]) -> None:
    """Raise what the real kernel raises if a real index tensor of this call points
    outside the indexed size. ``op``: the aten op's name without namespace."""
    if op in _INDEX_LISTS:
        if len(args) > 1 and isinstance(args[0], torch.Tensor) and isinstance(args[1], (list, tuple)):
            _check_index_list(args[0], args[1])
        return
    rule = _RULES.get(op)
    if rule is None or len(args) <= rule.indices or not isinstance(args[rule.table], torch.Tensor):
        return
    table, index = args[rule.table], args[rule.indices]
    dim = 0 if rule.dim is None or rule.dim == _NUMEL else args[rule.dim]
    if (
        op == "index_select"
        and isinstance(index, torch.Tensor)
        and index.dtype not in (torch.int32, torch.int64)
    ):
        raise RuntimeError("index_select(): Expected dtype int32 or int64 for index")
    if not _real_integer(index) or not isinstance(dim, int):
        return
    if rule.dim == _NUMEL:
        size = table.numel()
    else:
        size = table.shape[dim] if table.ndim else 1  # a 0-d tensor indexes as one element
        dim = dim % max(table.ndim, 1)
    bad = _bad_index(index, size, rule.negative_ok)
    if bad is None:
        return
    error, words = _cpu_error(op, rule, table.ndim, dim, index.dtype)
    raise error(words.format(bad=bad, dim=dim, size=size))


def _cpu_error(
    op: str, rule: _Rule, ndim: int, dim: int, index_dtype: torch.dtype
) -> tuple[type[Exception], str]:
    """The error type and words of the CPU kernel, where they depend on the call (measured
    against torch 2.14's CPU kernels in tests/test_index_checks.py): index_select along
    dim 1 of a tensor of 2+ dims, and index_add with int64 indices along the first or last
    dim of one, raise RuntimeError; the rest of those two ops, IndexError."""
    if op == "index_select":
        return (RuntimeError, _DIM_1_SELECT) if ndim > 1 and dim == 1 else (IndexError, rule.words)
    if op.startswith("index_add"):
        if index_dtype == torch.int64 and ndim > 1 and dim in (0, ndim - 1):
            return RuntimeError, rule.words
        return IndexError, "index out of range in self"
    return rule.error, rule.words


def _check_index_list(table: torch.Tensor, indices: list[Any] | tuple[Any, ...]) -> None:
    """``table[i0, i1, ...]``: integer indices may count from the end."""
    dim = 0
    for index in indices:
        if isinstance(index, torch.Tensor) and index.dtype in (torch.bool, torch.uint8):
            dim += index.ndim  # a mask spans its own number of dims
            continue
        if _real_integer(index) and dim < table.ndim:
            bad = _bad_index(index, table.shape[dim], negative_ok=True)
            if bad is not None:
                raise IndexError(_OUT_OF_BOUNDS.format(bad=bad, dim=dim, size=table.shape[dim]))
        dim += 1


def _real_integer(value: Any) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and not value.is_meta
        and not value.is_floating_point()
        and not value.is_complex()
        and value.dtype != torch.bool
    )


def _bad_index(index: torch.Tensor, size: int, negative_ok: bool) -> int | None:
    """An index outside [0, size) (or [-size, size) when it may count from the end): the
    smallest if it is too low, else the largest; None when every index is in range (or
    there is none)."""
    if index.numel() == 0:
        return None
    with torch._C.DisableTorchFunction():
        low, high = (int(v) for v in torch.aminmax(index.detach()))
    lowest = -size if negative_ok else 0
    if low < lowest:
        return low
    return high if high >= size else None
