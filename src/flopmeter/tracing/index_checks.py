"""The index checks a real kernel makes, for a call that runs on meta with real indices.

In a shapes-only run, integer inputs (token ids, positions) stay real while the table
they index is moved to meta (a model weight) or already is (an activation). Meta
kernels read no index values, so ``Embedding(10, 4)`` would take id 50 that the real
call rejects. Here the real indices are checked against the indexed size before the
call moves to meta, and the error the real kernel raises (its type and words) is
raised instead: a shapes-only run rejects what the real call rejects.
"""

from __future__ import annotations

from typing import Any

import torch

_OUT_OF_BOUNDS = "index {bad} is out of bounds for dimension {dim} with size {size}"

# aten op -> (position of the indexed tensor, of the dim (None: 0), of the indices, the
# error the real kernel raises and its words); none of these takes negative indices
_RULES: dict[str, tuple[int, int | None, int, type[Exception], str]] = {
    "embedding": (0, None, 1, IndexError, "index out of range in self"),
    "index_select": (0, 1, 2, IndexError, "index out of range in self"),
    "gather": (0, 1, 2, RuntimeError, _OUT_OF_BOUNDS),
    "scatter": (0, 1, 2, RuntimeError, _OUT_OF_BOUNDS),
    "scatter_": (0, 1, 2, RuntimeError, _OUT_OF_BOUNDS),
    "index_copy": (0, 1, 2, IndexError, "index_copy(): " + _OUT_OF_BOUNDS),
    "index_copy_": (0, 1, 2, IndexError, "index_copy_(): " + _OUT_OF_BOUNDS),
    "_embedding_bag": (
        0,
        None,
        1,
        RuntimeError,
        "an index takes value {bad}, not in the valid range [0, {size})",
    ),
    "_embedding_bag_forward_only": (
        0,
        None,
        1,
        RuntimeError,
        "an index takes value {bad}, not in the valid range [0, {size})",
    ),
}
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
    if rule is None:
        return
    table_at, dim_at, index_at, error, words = rule
    if len(args) <= index_at or not isinstance(args[table_at], torch.Tensor):
        return
    table, index = args[table_at], args[index_at]
    dim = args[dim_at] if dim_at is not None else 0
    if not _real_integer(index) or not isinstance(dim, int) or table.ndim == 0:
        return
    size = table.shape[dim]
    low, high = _bounds(index)
    if high is not None and not (0 <= low and high < size):
        raise error(words.format(bad=low if low < 0 else high, dim=dim % table.ndim, size=size))


def _check_index_list(table: torch.Tensor, indices: list[Any] | tuple[Any, ...]) -> None:
    """``table[i0, i1, ...]``: integer indices may count from the end."""
    dim = 0
    for index in indices:
        if isinstance(index, torch.Tensor) and index.dtype in (torch.bool, torch.uint8):
            dim += index.ndim  # a mask spans its own number of dims
            continue
        if _real_integer(index) and dim < table.ndim:
            size = table.shape[dim]
            low, high = _bounds(index)
            if high is not None and not (-size <= low and high < size):
                bad = low if low < -size else high
                raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size {size}")
        dim += 1


def _real_integer(value: Any) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and not value.is_meta
        and not value.is_floating_point()
        and not value.is_complex()
        and value.dtype != torch.bool
    )


def _bounds(index: torch.Tensor) -> tuple[int, int | None]:
    """The smallest and largest index (None, None-like for an empty tensor)."""
    if index.numel() == 0:
        return 0, None
    with torch._C.DisableTorchFunction():
        low, high = torch.aminmax(index.detach())
    return int(low), int(high)
