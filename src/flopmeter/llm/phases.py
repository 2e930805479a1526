"""Prefill and decode phases: FLOPs and bytes split into weights, KV-cache reads,
KV-cache writes and activations, under two accountings.

- ``as executed``: what the traced code did. The KV-cache part of a decode step is
  everything a cache of n tokens adds to the traced traffic: the trace at n minus the
  trace of the same step with an empty cache (Hugging Face's ``DynamicCache`` copies
  the whole cache with ``cat`` every step, and attention reads it). Activations are the
  rest of the non-weight traffic (an encoder-decoder model's baseline has an empty
  cross-attention cache too: reading that cache is KV traffic). A prefill has no cache to compare with, so its KV
  columns are 0 and the traffic is activations (``DynamicCache``'s copy of the new keys
  and values included).
- ``paged``: what a serving engine does. A decode step writes one slot per layer and
  reads the whole cache once (n+1 tokens: the new one included); a chunk of k tokens
  writes k slots and reads the tokens its queries attend (``KVCache.tokens_read``); a prefill writes T tokens and reads none. Activations
  are as executed less ``DynamicCache``'s copies of the new tokens into its empty
  placeholder (an engine's single write of them is the KV write); weights are as executed, except that of a mixture of experts only the experts
  some token was routed to are read (uniform routing: the expected share).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from ..cost import Cost
from ..report import Report
from .kv import KVCache

ACCOUNTINGS = ("paged", "as executed")
# up to this many routed tokens the paged expert share (1 - k/E)^(B T) is an exact fraction; a
# prefill of 8,192 tokens over 4 experts would take a 4,932-digit denominator (its repr failed)
EXACT_ROUTED_TOKENS = 256


@dataclass(frozen=True)
class Bytes:
    """Memory traffic of one phase, split by what is moved."""

    weights: int | Fraction
    kv_read: Fraction
    kv_write: Fraction
    activations: int

    @property
    def total(self) -> Fraction:
        return self.weights + self.kv_read + self.kv_write + self.activations

    def __repr__(self) -> str:
        """Whole byte counts as ints (``kv_read=2113536``, not ``Fraction(2113536, 1)``);
        a fractional one (a 4-bit cache of an odd count) as its fraction."""
        parts = ", ".join(
            f"{name}={value.numerator if Fraction(value).denominator == 1 else value}"
            for name, value in (
                ("weights", Fraction(self.weights)),
                ("kv_read", self.kv_read),
                ("kv_write", self.kv_write),
                ("activations", Fraction(self.activations)),
            )
        )
        return f"Bytes({parts})"


def cache_fill_bytes(report: Report, cache: KVCache) -> int:
    """Traffic of the ops that put new tokens' keys and values into an empty
    ``DynamicCache``: a ``cat`` of its empty placeholder (``torch.tensor([])``, shape (0,))
    and a (batch, heads, tokens, dim) tensor of the cache's key or value dim, one per layer
    for K and one for V (and one of (batch, tokens, dim) for a sparse-attention indexer's keys). A serving engine writes the projections' keys and values into its
    cache once, the paged view's KV write, so the copy (its read and its write) leaves the
    paged view's activations."""
    dims = {cache.head_dim, cache.value_head_dim or cache.head_dim, *cache.layer_dims}
    total = 0
    for record in report.ops:
        shapes = record.shapes
        if (
            record.op == "aten.cat"
            and len(shapes) == 2
            and shapes[0] == (0,)
            and (
                (len(shapes[1]) == 4 and shapes[1][-1] in dims)
                # a sparse-attention indexer's keys, (batch, tokens, dim)
                or (len(shapes[1]) == 3 and cache.indexer_dim and shapes[1][-1] == cache.indexer_dim)
            )
        ):
            total += record.cost.bytes_read + record.cost.bytes_written
    return total


@dataclass(frozen=True)
class ModuleRow:
    """One module's share of a phase: FLOPs (exact), MACs and bytes as executed."""

    name: str
    type: str
    depth: int
    flops: int
    macs: int
    weights: int
    kv_read: int
    kv_write: int
    activations: int


@dataclass
class Phase:
    """One prefill (``tokens`` = T, ``context`` = 0), one decode step (``tokens`` = 1
    after ``context`` = n cached tokens), one chunk of a chunked prefill (``tokens`` = k
    after n) or an encoder-decoder model's encoder pass (``kind`` "encode", ``tokens`` = S),
    for ``batch`` sequences. ``report`` is the
    trace; ``empty_cache`` the same decode step traced with no cache (decode only)."""

    kind: str
    tokens: int
    context: int
    batch: int
    report: Report
    cache: KVCache
    empty_cache: Report | None = None
    experts: tuple[int, int, int] = (0, 0, 0)  # (expert weight bytes, top k, number of experts)

    def __repr__(self) -> str:
        from ..render.reprs import phase_repr

        return phase_repr(self)

    # -- work -------------------------------------------------------------------
    @property
    def flops(self) -> int:
        """Exact FLOPs (multiplies + adds + every elementwise op)."""
        return self.report.flops

    @property
    def macs(self) -> int:
        return self.report.macs

    @property
    def flops_2mac(self) -> int:
        """2 x MACs: the convention of the reference forms (2 N per token and the like)."""
        return 2 * self.report.macs

    # -- bytes ------------------------------------------------------------------
    def bytes(self, accounting: str = "paged", cache: KVCache | None = None) -> Bytes:
        """Traffic under ``accounting`` ("paged" or "as executed"); ``cache`` re-sizes the
        paged KV traffic for a declared cache dtype (what-if)."""
        if accounting not in ACCOUNTINGS:
            raise ValueError(f"accounting must be one of {', '.join(ACCOUNTINGS)}, got {accounting!r}")
        executed = self._split(self.report.total, self.empty_cache.total if self.empty_cache else None)
        stored, temporaries = self._compressed_traffic()
        if accounting == "as executed":
            return Bytes(
                executed.weights + stored,
                executed.kv_read,
                executed.kv_write,
                executed.activations + temporaries,
            )
        geometry = cache or self.cache
        if self.kind == "encode":  # an encoder-decoder model's encoder: no cache of its own
            read, written = Fraction(0), Fraction(0)
        elif self.kind == "prefill":  # and an encoder-decoder model's cross K/V, written once
            read = Fraction(0)
            written = (geometry.bytes_per_token * self.tokens + geometry.cross_bytes) * self.batch
        else:
            read = geometry.read_bytes(self.context, self.tokens) * self.batch
            written = geometry.bytes_per_token * self.tokens * self.batch
        source = self.empty_cache if self.empty_cache is not None else self.report
        activations = (
            executed.activations
            - cache_fill_bytes(source, self.cache)  # the engine writes ``written``
            - self.report.rebuilt_weight_bytes  # a fused kernel reads the stored weight only
        )
        return Bytes(self._paged_weights(executed.weights + stored), read, written, activations)

    def _compressed_traffic(self) -> tuple[int, int]:
        """Of a model holding compressed weights (torchao's quantized tensors, prune masks,
        parametrizations), the traffic of the ops that rebuild each weight from its storage,
        which the report keeps out of the model's totals as compression overhead
        (docs/compression.md): (their reads of the stored tensors, weight traffic in both
        accountings: int8 ``qdata`` and scales, ``weight_orig`` and its mask; the rest of their
        reads and writes, the rebuilt temporaries and the like, activations as executed only).
        (0, 0) for a float model."""
        return _stored_and_temporaries(entry.cost for entry in self.report.overhead.values())

    def _paged_weights(self, traced: int | Fraction) -> int | Fraction:
        """Weights an engine reads: a grouped GEMM reads every expert, an engine only the
        experts some token was routed to. With uniform, independent top-k routing an expert
        is untouched by all batch x tokens tokens with probability (1 - k/E)^(B*T); that
        expected share of the expert weights (as stored: int8 ones at their int8 size) is not
        read. The traced reads of the ``experts`` modules (every expert for a grouped GEMM, the
        routed ones for transformers' eager loop, int8 ones through their dequantizing
        overhead) are replaced by that expected share of all of them."""
        expert_bytes, top_k, count = self.experts
        if not expert_bytes or not count:
            return traced
        in_experts = sum(
            op.cost.weight_bytes for op in self.report.ops if "experts" in op.module.split(".")
        ) + sum(
            cost.weight_bytes
            for where, cost in self.report.overhead_by_module.items()
            if "experts" in where.split(".")
        )
        routed = self.batch * self.tokens
        if routed <= EXACT_ROUTED_TOKENS:
            untouched = (1 - Fraction(top_k, count)) ** routed
        else:  # in floating point: the exact denominator, count ** routed, grows by digits per token
            untouched = Fraction((1 - top_k / count) ** routed)
        return traced - in_experts + expert_bytes * (1 - untouched)

    @staticmethod
    def _split(traced: Cost, empty: Cost | None) -> Bytes:
        read = traced.bytes_read - traced.weight_bytes
        written = traced.bytes_written
        if empty is None:
            return Bytes(traced.weight_bytes, Fraction(0), Fraction(0), read + written)
        base_read, base_written = empty.bytes_read - empty.weight_bytes, empty.bytes_written
        return Bytes(
            traced.weight_bytes,
            Fraction(read - base_read),
            Fraction(written - base_written),
            base_read + base_written,
        )

    # -- per module -------------------------------------------------------------
    def modules(self) -> list[ModuleRow]:
        """Every module's FLOPs, MACs and bytes (as executed), inclusive of its children; a
        compressed weight's rebuilding ops (``_compressed_traffic``) in the module they ran in:
        their stored reads as weights, the rest as activations."""
        rows = []
        aside = self.report.overhead_by_module
        for name, stats in self.report.modules.items():
            empty = self.empty_cache.modules.get(name) if self.empty_cache else None
            split = self._split(stats.total, empty.total if empty else None)
            prefix = f"{name}."
            stored, temporaries = _stored_and_temporaries(
                cost for where, cost in aside.items() if not name or where == name or where.startswith(prefix)
            )
            rows.append(
                ModuleRow(
                    name,
                    stats.type,
                    stats.depth,
                    stats.total.flops,
                    stats.total.macs,
                    int(split.weights) + stored,
                    int(split.kv_read),
                    int(split.kv_write),
                    split.activations + temporaries,
                )
            )
        return rows


def _stored_and_temporaries(costs: Iterable[Cost]) -> tuple[int, int]:
    """Of compression-overhead ops' ``costs``: (their reads of stored weights, their other
    reads and writes), the split ``Phase.bytes`` and ``Phase.modules`` make."""
    stored = temporaries = 0
    for cost in costs:
        stored += cost.weight_bytes
        temporaries += cost.bytes_read - cost.weight_bytes + cost.bytes_written
    return stored, temporaries
