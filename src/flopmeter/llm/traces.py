"""The traces LLM mode orchestrates: a prefill of T tokens and one decode step after a
cache of n tokens, each one ``profile()`` call on the (meta) model."""

from __future__ import annotations

from typing import Any

import torch

from ..api import profile
from ..report import Report
from .model import LanguageModel


def prefill(
    lm: LanguageModel, tokens: int, batch: int = 1, *, all_logits: bool = False, causal: str = "full"
) -> Report:
    """One forward over ``tokens`` prompt tokens per sequence, building the KV cache.
    ``all_logits=False`` computes the last position's logits only, as ``generate`` does
    (``logits_to_keep=1``); True computes all of them (training, scoring)."""
    _check_positive(tokens=tokens, batch=batch)
    inputs: dict[str, Any] = {
        "input_ids": torch.zeros(batch, tokens, dtype=torch.long),
        "use_cache": True,
        "logits_to_keep": 0 if all_logits else 1,
    }
    return profile(lm.model, inputs, causal=causal, name=f"{lm.name} prefill T={tokens}")


def decode(
    lm: LanguageModel, context: int, batch: int = 1, *, causal: str = "full", tokens: int = 1
) -> Report:
    """One decode step: ``tokens`` new tokens per sequence (1; more for a chunk of a
    chunked prefill) after a cache of ``context`` tokens (transformers' ``DynamicCache``,
    filled with meta tensors of the model's dtype: no memory)."""
    _check_positive(batch=batch, tokens=tokens)
    if context < 0:
        raise ValueError(f"the decode context must be 0 or more tokens, got {context}")
    inputs: dict[str, Any] = {
        "input_ids": torch.zeros(batch, tokens, dtype=torch.long),
        "use_cache": True,
        "logits_to_keep": 1,
    }
    if context:
        inputs[lm.cache_argument()] = filled_cache(lm, context, batch)
    label = f"decode n={context}" if tokens == 1 else f"chunk of {tokens} after n={context}"
    return profile(lm.model, inputs, causal=causal, name=f"{lm.name} {label}")


def filled_cache(lm: LanguageModel, context: int, batch: int) -> Any:
    """A transformers DynamicCache holding ``context`` tokens of keys and values per layer,
    as meta tensors (B, kv_heads, context, head_dim)."""
    import transformers

    cache = transformers.DynamicCache(config=lm.config)
    shape = (batch, lm.kv_heads, context, lm.head_dim)
    for layer in range(lm.layers):
        keys = torch.empty(shape, dtype=lm.dtype, device="meta")
        cache.update(keys, torch.empty_like(keys), layer)
    return cache


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
