"""KV-cache sizes: 2 (keys and values) x kv_heads x head_dim x bytes per element, per
token and layer. Sliding-window layers keep at most ``window`` tokens; chunked-attention
layers (Llama 4) the tokens of the current chunk."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from fractions import Fraction

from .model import LanguageModel
from .traces import stored_layout

# bits per element of the cache dtypes people declare for a what-if
KV_BITS = {
    "float32": 32,
    "fp32": 32,
    "bfloat16": 16,
    "bf16": 16,
    "float16": 16,
    "fp16": 16,
    "fp8": 8,
    "int8": 8,
    "int4": 4,
}


MAX_BITS = 64
"""The most bits per element a what-if takes (float64's): 100-bit weights or cache entries
are a typo, not a format (``weight_bits=``, ``kv_bits=``, ``--weight-bits``, ``--kv-dtype``)."""


def bits_of(dtype: str | int) -> int:
    """Bits per element of a dtype name ("bf16", "fp8", "int4") or a bit count, 1 to
    ``MAX_BITS`` (8)."""
    if isinstance(dtype, bool) or not isinstance(dtype, (numbers.Integral, str)):
        raise TypeError(f"bits per element must be a whole number of bits or a dtype name, got {dtype!r}")
    if isinstance(dtype, numbers.Integral):
        dtype = int(dtype)
        if dtype < 1:
            raise ValueError(f"bits per element must be positive, got {dtype}")
        if dtype > MAX_BITS:
            raise ValueError(f"bits per element must be at most {MAX_BITS} (float64's), got {dtype}")
        return dtype
    if dtype not in KV_BITS:
        raise ValueError(
            f"unknown cache dtype {dtype!r}; expected one of {', '.join(KV_BITS)} or a bit count"
        )
    return KV_BITS[dtype]


@dataclass(frozen=True)
class KVCache:
    """KV-cache geometry of a model at ``bits`` per element."""

    layers: int
    kv_heads: int
    head_dim: int
    bits: int
    windows: tuple[int | None, ...]
    value_head_dim: int | None = None  # when values differ from keys (MLA); None: head_dim
    chunks: tuple[int | None, ...] = ()  # per layer: its attention chunk, or None
    # per layer that attends another layer's cache (KV sharing, Gemma 3n): its window, or None.
    # It stores nothing and reads that cache again
    sharing: tuple[int | None, ...] = ()
    # per layer, those of ``windows`` then those of ``sharing``: elements one token takes (all its
    # heads' keys and values) where layers differ (Gemma 4's full-attention layers: their own
    # head_dim and KV heads); empty: every layer kv_heads x (head_dim + value dim)
    layer_elements: tuple[int, ...] = ()
    # the key and value dims of every caching layer where the layers differ (else empty)
    layer_dims: tuple[int, ...] = ()
    # per token and layer beside keys and values: a sparse-attention indexer's key (DeepSeek-V3.2's
    # index_head_dim), which the indexer reads for every cached token at each step
    indexer_dim: int = 0
    # an encoder-decoder model's cross-attention cache, one sequence, all layers: the K/V of its S encoder
    # positions, 2 x layers x KV heads x head dim x S x bytes; written once by the prefill, read whole by
    # every decode step (``read_bytes``), held beside the self-attention cache (``bytes``)
    cross_bytes: Fraction = Fraction(0)

    @property
    def uniform(self) -> bool:
        """Whether every layer takes the same bytes per token (``bytes_per_token_per_layer``)."""
        return len(set(self.layer_elements)) <= 1

    @property
    def layer_bytes(self) -> tuple[Fraction, ...]:
        """Bytes one token takes in each layer, those of ``windows`` then those of ``sharing``
        (what a sharing layer reads of the cache it attends)."""
        if self.layer_elements:
            return tuple(Fraction(elements * self.bits, 8) for elements in self.layer_elements)
        return (self.bytes_per_token_per_layer,) * (len(self.windows) + len(self.sharing))

    @property
    def layer_chunks(self) -> tuple[int | None, ...]:
        """Per layer that stores its cache: its attention chunk, or None (``chunks`` may be
        empty: no layer is chunked)."""
        return self.chunks or (None,) * len(self.windows)

    @property
    def bytes_per_token_per_layer(self) -> Fraction:
        """2 * kv_heads * head_dim * bits / 8 (a Fraction: int4 can be half a byte); with
        values of another size, kv_heads * (head_dim + value_head_dim) * bits / 8. Where
        layers differ (``uniform`` False): the first layer's."""
        values = self.head_dim if self.value_head_dim is None else self.value_head_dim
        return Fraction((self.kv_heads * (self.head_dim + values) + self.indexer_dim) * self.bits, 8)

    @property
    def bytes_per_token(self) -> Fraction:
        """Per token over all layers: 2 * L * kv_heads * head_dim * bits / 8; where layers
        differ, the sum of each layer's ``layer_bytes``."""
        return sum(self.layer_bytes[: self.layers], Fraction(0))

    def tokens_held(self, context: int) -> int:
        """Token slots over all layers for a context of ``context`` tokens: a sliding-window
        layer holds at most its window; a chunked-attention layer of chunk C the tokens of
        the chunk the last token is in, ``(context - 1) % C + 1`` (its attention reads no
        other: an engine keeps no more). These are the slots the last token reads:
        ``tokens_read(context - 1, 1)`` without the layers that share another's cache."""
        if context < 1:
            return 0
        return self._slots(context - 1, 1, self.windows, self.layer_chunks)

    def bytes(self, context: int, batch: int = 1) -> Fraction:
        """The whole cache for ``batch`` sequences of ``context`` tokens: each layer's bytes
        per token x the tokens it holds."""
        if context < 1:
            return Fraction(0)
        slots = self._layer_slots(context - 1, 1, self.windows, self.layer_chunks)
        held = sum((b * n for b, n in zip(self.layer_bytes, slots, strict=False)), Fraction(0))
        return (held + self.cross_bytes) * batch

    def read_bytes(self, context: int, tokens: int) -> Fraction:
        """Bytes ``tokens`` new tokens after ``context`` cached ones read of the cache, one
        sequence: each layer's bytes per token x its ``tokens_read`` slots, and an encoder-decoder
        model's whole cross-attention cache (``cross_bytes``)."""
        chunks = self.layer_chunks + (None,) * len(self.sharing)
        slots = self._layer_slots(context, tokens, self.windows + self.sharing, chunks)
        attended = sum((b * n for b, n in zip(self.layer_bytes, slots, strict=True)), Fraction(0))
        return attended + self.cross_bytes

    def tokens_read(self, context: int, tokens: int) -> int:
        """Token slots over all layers that ``tokens`` new tokens after ``context`` cached
        ones attend, each read once (the new ones included): a full layer all
        ``context + tokens``; a sliding-window layer of window w the union of the new tokens'
        windows, ``min(context + tokens, w + tokens - 1)``; a chunked layer of chunk C from the
        start of the chunk the first new token is in, ``context + tokens - (context // C) * C``.
        One new token (a decode step): ``tokens_held(context + 1)``, plus what the layers that
        attend another layer's cache (``sharing``) read of it again."""
        chunks = self.layer_chunks + (None,) * len(self.sharing)
        return self._slots(context, tokens, self.windows + self.sharing, chunks)

    @classmethod
    def _slots(
        cls, context: int, tokens: int, windows: tuple[int | None, ...], chunks: tuple[int | None, ...]
    ) -> int:
        """Token slots the layers of ``windows`` / ``chunks`` attend for ``tokens`` new tokens
        after ``context`` (see ``tokens_read``)."""
        return sum(cls._layer_slots(context, tokens, windows, chunks))

    @staticmethod
    def _layer_slots(
        context: int, tokens: int, windows: tuple[int | None, ...], chunks: tuple[int | None, ...]
    ) -> list[int]:
        """``_slots`` of each layer."""
        total = context + tokens
        read = []
        for window, chunk in zip(windows, chunks, strict=True):
            if chunk is not None:
                read.append(total - (context // chunk) * chunk)
            elif window is not None:
                read.append(min(total, window + tokens - 1))
            else:
                read.append(total)
        return read


def kv_cache(lm: LanguageModel, dtype: str | int | None = None) -> KVCache:
    """The model's KV cache in its own dtype, or in ``dtype`` (what-if: "fp8", "int4", 8),
    shaped as the model hands it to its cache (``stored_layout``: Falcon-7B's one key head,
    DeepSeek's MLA latent of kv_lora_rank "keys" and qk_rope_head_dim "values" in one head),
    except keys broadcast to every query head (``_cached_heads``): Falcon-40B's transformers code
    stores them so, an engine stores num_kv_heads. Layers:
    those that hand their cache keys and values (not a hybrid's Mamba layers); Gemma 3n's last
    ``num_kv_shared_layers`` attend an earlier layer's cache (read again, stored once)."""
    bits = lm.itemsize * 8 if dtype is None else bits_of(dtype)
    stored = stored_layout(lm)
    first = min(stored)
    (key_heads, key_dim), (_, value_dim) = stored[first]
    heads = _cached_heads(lm, first, key_heads)
    # only the layers that cache keys and values: a hybrid's Mamba layers (Jamba) keep a state instead
    # a loop model (Dory) caches more layers than it has: a copy of its looped layers per loop
    caching = sorted(stored)
    windows = tuple(_window(lm, layer) for layer in caching) or lm.windows
    all_chunks = lm.chunks or (None,) * len(lm.windows)
    chunks = tuple(all_chunks[layer] if layer < len(all_chunks) else None for layer in caching) or all_chunks
    # KV sharing (Gemma 3n): the last num_kv_shared_layers layers attend an earlier layer's cache
    shared = int(getattr(lm.config, "num_kv_shared_layers", 0) or 0)
    sharing = tuple(lm.windows[len(lm.windows) - shared :]) if caching and shared else ()
    elements = _layer_elements(lm, caching, len(sharing))
    uniform = len(set(elements)) <= 1
    dims = sorted({dim for layer in caching for (_, dim) in stored[layer]})
    return KVCache(
        len(windows),
        heads,
        key_dim,
        bits,
        windows,
        None if value_dim == key_dim else value_dim,
        chunks,
        sharing,
        () if uniform else elements,
        () if uniform else tuple(dims),
        lm.indexers[caching[0]][0] if caching and caching[0] in lm.indexers else 0,
        Fraction(cross_elements(lm) * bits, 8),
    )


def cross_elements(lm: LanguageModel) -> int:
    """Elements of an encoder-decoder model's cross-attention cache, one sequence: per decoder
    layer (key heads x key dim + value heads x value dim) x S encoder positions, as the layers hand
    their cache (``stored_layout``); 0 for a decoder alone."""
    stored_layout(lm)  # records lm.cross
    per_position = sum(kh * kd + vh * vd for (kh, kd), (vh, vd) in lm.cross.values())
    return per_position * lm.encoder_positions


def _window(lm: LanguageModel, layer: int) -> int | None:
    """The window of cache layer ``layer``: its model layer's, or for a loop model's extra cache
    layer (past the model's layers) the one the cache kept for it."""
    return lm.windows[layer] if layer < len(lm.windows) else lm.cache_windows.get(layer)


def _cached_heads(lm: LanguageModel, layer: int, key_heads: int) -> int:
    """The key heads ``layer`` hands its cache for one token, except keys broadcast to every
    query head (Falcon-40B's transformers code, where the config has fewer KV heads): an engine
    stores the config's KV heads. More heads than the config's are kept otherwise: MiMo-V2-Flash's
    sliding-window layers have twice its num_key_value_heads."""
    source = layer if layer < lm.layers else _copied_layer(lm, layer)
    heads, kv_heads = lm.attention_by_layer[source][:2] if source is not None else (lm.heads, lm.kv_heads)
    return kv_heads if key_heads == heads and kv_heads < key_heads else key_heads


def _copied_layer(lm: LanguageModel, layer: int) -> int | None:
    """The model layer a loop model's extra cache layer ``layer`` copies (Dory's, Inkling-2-Loop's
    looped layers, one copy per pass): the first that stores keys and values of its shapes with
    its window; None if none does."""
    stored = stored_layout(lm)
    return next(
        (
            own
            for own in sorted(stored)
            if own < lm.layers and stored[own] == stored[layer] and lm.windows[own] == _window(lm, layer)
        ),
        None,
    )


def _layer_elements(lm: LanguageModel, caching: list[int], sharing: int) -> tuple[int, ...]:
    """Elements one token takes in each caching layer, as it hands its cache keys and values
    (``_cached_heads``: not Falcon-40B's broadcast keys), then in each of the last
    ``sharing`` layers: those of the last caching layer before them with the same window (the
    cache they attend: Gemma 3n and Gemma 4 share a cache by attention type)."""
    stored = stored_layout(lm)
    own = {
        layer: _cached_heads(lm, layer, key_heads) * (key_dim + value_dim) + lm.indexers.get(layer, (0,))[0]
        for layer, ((key_heads, key_dim), (_, value_dim)) in stored.items()
        if layer in caching
    }
    first_shared = len(lm.windows) - sharing
    shared = []
    for layer in range(first_shared, len(lm.windows)):
        sources = [c for c in caching if c < first_shared and lm.windows[c] == lm.windows[layer]]
        shared.append(own[sources[-1]] if sources else own[caching[0]])
    return tuple(own[layer] for layer in caching) + tuple(shared)
