"""Scaled dot-product attention counted whole: its output on meta without running its
math decomposition, the CPU backend torch would choose, and the arguments to record in
one order however the call spelled them."""

from __future__ import annotations

import weakref
from typing import Any

import torch

from .events import PLAIN_TYPES


def sdpa_on_meta(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], choices: dict[Any, bool]) -> Any:
    """SDPA's output on meta without running its math decomposition: (..., L, Ev), laid out
    in memory as the kernel torch would pick on the CPU writes it (fused kernels follow the
    query's layout; the math path writes contiguous), so later reshapes copy alike.

    When a gradient will flow (grad mode on, an input requiring grad), the result must
    carry the autograd history the CPU run has, or the backward of the attention and of
    everything before it is lost: the fused CPU kernel is called on meta (its backward
    is the same aten op a CPU run records), and the math path runs as it is (None)."""
    if func is not torch.nn.functional.scaled_dot_product_attention:
        return None
    call = dict(zip(_SDPA_ARGUMENTS, args, strict=False)) | kwargs
    q, k, v = call.get("query"), call.get("key"), call.get("value")
    if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and isinstance(v, torch.Tensor)):
        return None
    if not (q.is_meta and k.is_meta and v.is_meta):
        return None
    if not _shapes_agree(q, k, v, bool(call.get("enable_gqa", False))):
        return None  # the op's own kernel raises, as on the CPU (4 query heads, 3 key heads)
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    fused = _cpu_would_fuse(args, kwargs, choices)
    if needs_grad:
        return _cpu_flash_on_meta(args, kwargs) if fused else None
    shape = (*q.shape[:-1], v.shape[-1])
    if not fused:
        return torch.empty(shape, dtype=q.dtype, device="meta")
    # fused kernels lay the output out like the query
    strides = q.stride()
    order = sorted(range(q.ndim), key=lambda d: (-strides[d], d))
    physical = torch.empty([shape[d] for d in order], dtype=q.dtype, device="meta")
    return physical.permute([order.index(d) for d in range(q.ndim)])


_SDPA_ARGUMENTS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


def _shapes_agree(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gqa: bool) -> bool:
    """Whether SDPA accepts these shapes: q·k over the same head size, as many keys as
    values, batch and head dims that broadcast (with ``enable_gqa``, query heads a multiple
    of the key/value heads)."""
    if q.ndim < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        return False
    if gqa and min(q.ndim, k.ndim, v.ndim) >= 3:
        if k.shape[-3] != v.shape[-3] or q.shape[-3] % k.shape[-3]:
            return False
        q, k, v = q[..., :1, :, :], k[..., :1, :, :], v[..., :1, :, :]
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        return False
    return True


def _cpu_flash_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The CPU flash kernel called on meta as F.scaled_dot_product_attention calls it
    (a boolean mask becomes an additive one first), with its autograd history."""
    call = dict(zip(_SDPA_ARGUMENTS, args, strict=False)) | kwargs
    q, mask = call["query"], call.get("attn_mask")
    if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool:
        mask = torch.zeros((), dtype=q.dtype, device="meta").expand(mask.shape)
    elif isinstance(mask, torch.Tensor) and not mask.is_meta:
        mask = mask.detach().to("meta")
    out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q,
        call["key"],
        call["value"],
        float(call.get("dropout_p", 0.0) or 0.0),
        bool(call.get("is_causal", False)),
        attn_mask=mask,
        scale=call.get("scale"),
    )
    return out[0]


_last_mask: list[Any] = [None, False, None]  # (weak reference to a mask, whether it is causal, its window)


def recorded_call(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments to record for a whole function. SDPA's are put in one order however
    it was called (``query=q, key=k, ...`` included): query, key, value, attn_mask,
    dropout_p, is_causal positionally, scale and enable_gqa by name, plus
    ``causal_mask="bottom_right"`` when its mask is that pattern (see below)."""
    if func is not torch.nn.functional.scaled_dot_product_attention:
        return args, kwargs
    call = dict(zip(_SDPA_ARGUMENTS, args, strict=False)) | kwargs
    defaults = {"attn_mask": None, "dropout_p": 0.0, "is_causal": False}
    positional = tuple(call.get(name, defaults.get(name)) for name in _SDPA_ARGUMENTS[:6])
    named = {name: call[name] for name in _SDPA_ARGUMENTS[6:] if name in call}
    return positional, _mark_causal_mask(call, named)


def _mark_causal_mask(call: dict[str, Any], named: dict[str, Any]) -> dict[str, Any]:
    """``named`` plus ``causal_mask="bottom_right"`` when SDPA's mask is a real boolean
    tensor equal to the bottom-right causal pattern (query i of L sees keys up to S-L+i:
    chunked prefill after a cache), so ``causal="needed"`` can count only the kept scores.
    One check per mask tensor (layers share it)."""
    mask, q, k = call.get("attn_mask"), call.get("query"), call.get("key")
    if not isinstance(mask, torch.Tensor) or mask.is_meta or mask.dtype != torch.bool or mask.ndim < 2:
        return named
    if not isinstance(q, torch.Tensor) or not isinstance(k, torch.Tensor):
        return named
    known = _last_mask[0]() if _last_mask[0] is not None else None
    if known is not mask:
        queries, keys = q.shape[-2], k.shape[-2]
        window = _sliding_window(mask) if tuple(mask.shape[-2:]) == (queries, keys) else None
        causal = tuple(mask.shape[-2:]) == (queries, keys) and _is_bottom_right_causal(mask, window)
        _last_mask[:] = [weakref.ref(mask), causal, window]
    if not _last_mask[1]:
        return named
    window = _last_mask[2]
    return {**named, "causal_mask": "bottom_right", **({"causal_window": window} if window else {})}


def _sliding_window(mask: torch.Tensor) -> int | None:
    """The window a bottom-right causal mask with a sliding window would have: the keys the
    last query sees, when fewer than all (None: all, a plain causal mask)."""
    kept = int(mask.reshape(-1, mask.shape[-1])[-1].sum())
    return kept if 0 < kept < mask.shape[-1] else None


def _is_bottom_right_causal(mask: torch.Tensor, window: int | None = None) -> bool:
    """Whether every (L, S) slice of ``mask`` keeps exactly keys 0 .. S-L+i in row i (with a
    sliding ``window``: keys S-L+i-window+1 .. S-L+i, as Mistral's and Gemma's sliding layers).
    Compared a block of rows at a time against the pattern, so a long prompt's mask
    costs no more than a block of memory."""
    queries, keys = mask.shape[-2], mask.shape[-1]
    rows = mask.reshape(-1, queries, keys)
    block = max(1, 2**22 // max(keys, 1))
    for start in range(0, queries, block):
        stop = min(start + block, queries)
        pattern = torch.ones(stop - start, keys, dtype=torch.bool).tril(keys - queries + start)
        if window is not None:
            pattern &= ~torch.ones(stop - start, keys, dtype=torch.bool).tril(keys - queries + start - window)
        if not bool((rows[:, start:stop] == pattern).all()):
            return False
    return True


def _cpu_would_fuse(args: tuple[Any, ...], kwargs: dict[str, Any], choices: dict[Any, bool]) -> bool:
    """Ask torch's own backend choice on memory-free CPU stand-ins of the same shapes
    (and the same requires_grad: the choice may depend on it). The answer is kept in
    ``choices`` (one run's): every layer of a model asks the same question."""
    call = dict(zip(_SDPA_ARGUMENTS, args, strict=False)) | kwargs
    key = _choice_key(call)
    known = choices.get(key) if key is not None else None
    if known is None:
        known = _ask_cpu_would_fuse(call)
        if key is not None:
            choices[key] = known
    return known


def _choice_key(call: dict[str, Any]) -> tuple[Any, ...] | None:
    """What the backend choice depends on: the backends allowed now (``sdpa_kernel``),
    grad mode, each argument's shape, dtype and requires_grad (tensors) or value; None if
    some value cannot be a key."""
    backends = torch.backends.cuda
    key: list[Any] = [
        torch.is_grad_enabled(),
        backends.flash_sdp_enabled(),
        backends.mem_efficient_sdp_enabled(),
        backends.math_sdp_enabled(),
        backends.cudnn_sdp_enabled(),
        torch.are_deterministic_algorithms_enabled(),
    ]
    for name, value in sorted(call.items()):
        if isinstance(value, torch.Tensor):
            key.append((name, tuple(value.shape), value.dtype, value.requires_grad, _unit_last_stride(value)))
        elif type(value) in PLAIN_TYPES:
            key.append((name, value))
        else:
            return None
    return tuple(key)


def _unit_last_stride(tensor: torch.Tensor) -> bool:
    """Whether the last dim has stride 1 (torch's check before a fused kernel)."""
    return not tensor.ndim or tensor.stride(-1) == 1


def _ask_cpu_would_fuse(call: dict[str, Any]) -> bool:

    def stand_in(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.ndim:
            # the fused kernels need a last-dim stride of 1: a stand-in has it when the value has
            base = torch.empty(value.shape[-1], 1 if _unit_last_stride(value) else 2, dtype=value.dtype)[:, 0]
            if value.requires_grad and torch.is_grad_enabled():
                base.requires_grad_(True)
            return base.expand(value.shape)
        return value

    try:
        choice = torch._fused_sdp_choice(**{k: stand_in(v) for k, v in call.items()})
    except (RuntimeError, TypeError):
        return True
    return bool(choice != 0)  # 0 is the math path
