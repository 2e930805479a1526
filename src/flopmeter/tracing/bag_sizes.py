"""The rows an ``embedding_bag`` call reduces, read from its real indices and offsets.

An EmbeddingBag's work depends on its bags' sizes, which are values: a bag of n rows of
width D costs (n - 1)*D adds (or max comparisons), an empty bag (two equal offsets) none,
and a row equal to ``padding_idx`` is skipped by the kernel. The shapes alone give only
"every bag holds at least one row" (D too few per empty bag). When the indices and
offsets are real tensors (always in a run with values; in a shapes-only run too when
they are the model's integer inputs, which stay real), their sizes are recorded with
the call as two plain numbers, ``bag_rows`` (the rows reduced) and ``filled_bags``
(the bags holding one or more): ``registry._embedding_bag`` reads them. Offsets computed
on meta stop a shapes-only run, which is then made again with values.
"""

from __future__ import annotations

from typing import Any

import torch

from .events import call_arg

BAG_OPS = frozenset({"_embedding_bag", "_embedding_bag_forward_only"})
# A shapes-only run meeting indices or offsets computed on meta stops with this (a meta
# limitation: the profile runs again with values, where the sizes are read).
BAGS_ON_META = "embedding_bag's indices or offsets are on meta: its bags' sizes need their values"

# _embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode, sparse,
#                per_sample_weights, include_last_offset, padding_idx)
_INCLUDE_LAST, _PADDING = (7, "include_last_offset"), (8, "padding_idx")


def bag_sizes(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, int] | None:
    """``{"bag_rows": ..., "filled_bags": ...}`` of a ``_embedding_bag*`` call; None when
    its indices or offsets are on meta; ``{}`` when they are not 1-d integer tensors (then
    the formula assumes every bag holds a row). A bag's size is as the CPU kernel takes
    it: from its offset to the next, the last to the end of the indices; rows equal to
    ``padding_idx`` (>= 0; -1 for none) left out."""
    indices = call_arg(args, kwargs, 1, "indices")
    offsets = call_arg(args, kwargs, 2, "offsets")
    if not (isinstance(indices, torch.Tensor) and isinstance(offsets, torch.Tensor)):
        return {}
    if indices.is_meta or offsets.is_meta:
        return None
    if indices.ndim != 1 or offsets.ndim != 1:
        return {}
    if indices.is_floating_point() or offsets.is_floating_point() or indices.layout != torch.strided:
        return {}
    include_last = bool(call_arg(args, kwargs, *_INCLUDE_LAST, False))
    padding = call_arg(args, kwargs, *_PADDING, -1)
    padding = -1 if padding is None else int(padding)
    bags = offsets.shape[0] - (1 if include_last else 0)
    if bags <= 0:
        return {"bag_rows": 0, "filled_bags": 0}
    with torch.no_grad():
        starts = offsets[:bags].to(device="cpu", dtype=torch.int64)
        ends = torch.cat([starts[1:], torch.tensor([indices.shape[0]], dtype=torch.int64)])
        if padding >= 0:  # rows the kernel skips: count the others per bag
            kept = torch.cat([torch.zeros(1, dtype=torch.int64), (indices.cpu() != padding).cumsum(0)])
            counts = kept[ends.clamp(0, indices.shape[0])] - kept[starts.clamp(0, indices.shape[0])]
        else:
            counts = ends - starts
        counts = counts.clamp(min=0)
        return {"bag_rows": int(counts.sum()), "filled_bags": int((counts > 0).sum())}
