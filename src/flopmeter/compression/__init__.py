"""Compression: facts about a model's weights (masks, nonzeros, sparse layouts, packed
and quantized storage, bits, groups, scales), read once before the trace, and the
compression view built from them and the counted ops. See docs/compression.md."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from ..tracing.model_walk import ModelWalk
from .facts import ModelFacts, WeightFact, collect
from .overhead import classifier
from .view import CompressionView, LayerCompression, build_view

if TYPE_CHECKING:
    from ..report import Report

__all__ = [
    "CompressionOptions",
    "CompressionView",
    "LayerCompression",
    "ModelFacts",
    "WeightFact",
    "build_view",
    "classifier",
    "collect",
    "finish",
]


@dataclass(frozen=True)
class CompressionOptions:
    """How ``profile`` treats compression.

    ``assume_sparsity``: a fraction (0.5) or a pattern ("2:4") the view assumes for every
    weight; ``assume_bits``: "w4a16", "w8a8", "w4a16g128", or a mapping from module-name
    prefix to such a string (mixed precision); ``count_overhead``: put mask multiplies,
    quantize/dequantize and the like back into the model's FLOPs/MACs;
    ``count_nonzeros``: read every weight's values in the profile to count its zeros
    (about one pass over the weights). ``profile()`` without ``compression`` (or with
    ``count_nonzeros=False``) counts them only in a model that holds a compression
    flopmeter recognises (prune masks, parametrizations, sparse layouts, quantized or
    float8 or int8 weights, quantize ops in its forward); a dense-stored model's nonzeros are
    then unknown (docs/compression.md). ``assume_sparsity`` prunes the nonzeros further,
    so it needs them counted.
    """

    assume_sparsity: float | str | None = None
    assume_bits: str | Mapping[str, str] | None = None
    count_overhead: bool = False
    count_nonzeros: bool = True

    def __post_init__(self) -> None:
        from .view import check_bits, parse_sparsity

        if self.assume_sparsity is not None:
            parse_sparsity(self.assume_sparsity)
        check_bits(self.assume_bits)
        if not isinstance(self.count_nonzeros, bool):
            raise TypeError(f"count_nonzeros must be True or False, got {self.count_nonzeros!r}")
        if self.assume_sparsity is not None and not self.count_nonzeros:
            raise ValueError(
                "assume_sparsity prunes the weights' nonzeros further, so it needs them counted: "
                "drop count_nonzeros=False"
            )


def finish(report: Report, facts: ModelFacts, options: CompressionOptions) -> Report:
    """Give ``report`` its logical params (packed weights counted, and their bytes as
    stored) and its compression view (with the options' assumptions)."""
    extra = facts.extra_params
    for name, count in extra.items():
        stats = report.modules.get(name)
        if stats is None:
            continue
        stats.own_params += count
        while True:
            stats.params += count
            if not stats.name:
                break
            from ..report import parent_of

            stats = report.modules[parent_of(stats.name, report.modules)]
        report.params += count
    report.param_bytes += facts.extra_param_bytes  # the bytes of the params just added
    report.buffers -= facts.sparse_buffers  # a sparse buffer is one of those params, counted once
    report.buffer_bytes -= facts.sparse_buffer_bytes
    report.options["count_overhead"] = options.count_overhead
    # The nonzeros now, of the weights as profiled: a model pruned in place afterwards
    # (``w[mask] = 0``, ``w.data.mul_(mask)``, ``prune.remove``) must not change this
    # report, which is the "before" of a comparison (no cheap check sees such writes).
    # Counting reads every weight: not for a plain model nobody asked the view of. A
    # quantize, dequantize or fake-quantize op in the trace (``report.overhead``: a model
    # quantizing its weights in its forward, no marker on them) is a compression too.
    if options.count_nonzeros or facts.holds_compression or report.overhead:
        facts.count()
    else:
        facts.skip_count()
    # The view is built from a shallow copy of the report (the same modules, ops and
    # options dict, the params as they are now), which holds no view: a report holding a
    # view that holds the report is a reference cycle, and kept each report, with its
    # thousands of objects, alive after its last use until the garbage collector's walk
    # found it (about 3 % of a small model's profile, in a loop of profiles).
    counted = copy.copy(report)
    counted.compression = None
    report.compression = LazyView(  # a partial, not a lambda: a Report pickles (multiprocessing)
        partial(
            build_view,
            counted,
            facts,
            assume_sparsity=options.assume_sparsity,
            assume_bits=options.assume_bits,
        )
    )
    return report


class LazyView:
    """Stands for the CompressionView of a Report and builds its tables when first read,
    from the weight facts (nonzeros included) taken by the profile."""

    def __init__(self, build: Callable[[], CompressionView]) -> None:
        self._build: Callable[[], CompressionView] | None = build
        self._view: CompressionView | None = None

    def resolve(self) -> CompressionView:
        if self._view is None:
            assert self._build is not None
            self._view, self._build = self._build(), None
        return self._view

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.resolve(), name)

    def __repr__(self) -> str:
        return repr(self.resolve())

    def __str__(self) -> str:
        return str(self.resolve())


def prepare(
    model: torch.nn.Module, options: Any, walk: ModelWalk | None = None
) -> tuple[ModelFacts, CompressionOptions]:
    """Read the weight facts of ``model`` (of its modules in ``walk``, if given) and
    normalise ``options`` (``options_of``)."""
    return collect(model, walk), options_of(options)


def options_of(options: Any) -> CompressionOptions:
    """``profile``'s ``compression`` as CompressionOptions: None or False (not asked):
    nonzeros are counted only in a model holding a recognised compression; True: the
    default options, nonzeros counted; a dict of the fields; the options themselves."""
    if options is None or options is False:  # not asked (False: as ``compression=True``'s opposite)
        return CompressionOptions(count_nonzeros=False)
    if options is True:
        return CompressionOptions()
    if isinstance(options, Mapping):
        return CompressionOptions(**options)
    if not isinstance(options, CompressionOptions):
        raise TypeError(
            "compression must be True, False, a flopmeter.CompressionOptions or a dict of its fields; "
            f"got {type(options).__name__}"
        )
    return options
