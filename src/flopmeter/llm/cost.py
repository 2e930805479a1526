"""``flopmeter.llm_cost``: what a language model costs to serve, from a few traces.

Orchestration over ``profile()`` (no counting of its own): a prefill trace, decode-step
traces at the contexts asked for, exact polynomial fits in sequence length checked at
one more traced point, KV-cache sizes, and roofline times on hardware presets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from itertools import islice
from typing import Any

from ..hardware import Hardware, get
from ..inputs import check_numel
from ..report import Report
from ..roofline import flops_by_dtype
from . import traces
from .fit import Fit, PiecewiseLinear, fit, piecewise_linear
from .kv import KVCache, bits_of, kv_cache
from .model import LanguageModel, ParamCounts, language_model, position_table, warn_if_compressed
from .phases import Phase
from .serving import PhaseTime, Serving, compute_bound_batch, decode_steps_seconds, phase_time

QUANTITIES: dict[str, Callable[[Phase], int]] = {
    "flops": lambda phase: phase.flops,
    "flops_2mac": lambda phase: phase.flops_2mac,
    "macs": lambda phase: phase.macs,
    "bytes as executed": lambda phase: int(phase.bytes("as executed").total),
}

# lengths the fits are traced at (small: cheap), and the extra point that checks them
PREFILL_POINTS = (16, 32, 48)
DECODE_POINTS = (16, 32)
# most decode steps traced for ``decode_pieces`` (a chunked model's many chunk starts can
# pass it: a span left unchecked then is interpolated)
DECODE_TRACE_BUDGET = 32


@dataclass
class LLMCost:
    """Prefill, decode and generation costs of one model; see ``llm_cost``."""

    lm: LanguageModel
    prompt: int
    generate: int
    batch: int
    all_logits: bool
    causal: str
    kv_dtype: str | int | None
    _prefills: dict[tuple[int, int], Phase] = field(default_factory=dict, repr=False)
    _decodes: dict[tuple[int, int, int], Phase] = field(default_factory=dict, repr=False)
    _fits: dict[tuple[str, str], Fit] = field(default_factory=dict, repr=False)
    _baselines: dict[tuple[int, int], Report] = field(default_factory=dict, repr=False)
    _pieces: dict[tuple[str, int], PiecewiseLinear] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        from ..render.reprs import llm_cost_repr

        return llm_cost_repr(self)

    def __str__(self) -> str:
        """The whole LLM-mode report, as the CLI prints it (traces the fits it shows)."""
        from ..render.llm import render_llm

        return render_llm(self)

    def variant(self, **changes: Any) -> LLMCost:
        """The same model with other settings (``causal``, ``all_logits``, ``prompt``, ...):
        no rebuild, fresh traces."""
        unknown = set(changes) - {"prompt", "generate", "batch", "all_logits", "causal", "kv_dtype"}
        if unknown:
            raise TypeError(f"variant() cannot change {', '.join(sorted(unknown))}")
        changed = replace(self, _prefills={}, _decodes={}, _fits={}, _baselines={}, _pieces={}, **changes)
        _check_settings(changed.prompt, changed.generate, changed.batch, changed.causal, changed.kv_dtype)
        return changed

    # -- phases -----------------------------------------------------------------
    @property
    def every_position_logits(self) -> bool:
        """Whether the prefill computes the logits of every position: asked (``all_logits``), or
        the model's forward takes no ``logits_to_keep`` (TrOCR's ...ForCausalLM: ``generate``
        computes them all too)."""
        return self.all_logits or not self.lm.keeps_logits

    @property
    def cache(self) -> KVCache:
        """The KV cache in the model's dtype."""
        return kv_cache(self.lm)

    @property
    def declared_cache(self) -> KVCache | None:
        """The KV cache in the declared what-if dtype (``kv_dtype``), if any."""
        return None if self.kv_dtype is None else kv_cache(self.lm, self.kv_dtype)

    @property
    def _experts(self) -> tuple[int, int, int]:
        """(expert weight bytes as stored, top k, number of experts) for the paged weight share."""
        lm = self.lm
        return (lm.expert_bytes, lm.experts_per_token, lm.num_experts) if lm.is_moe else (0, 0, 0)

    def prefill_at(self, tokens: int, batch: int | None = None) -> Phase:
        """The prefill of ``tokens`` prompt tokens (traced once, then remembered)."""
        batch = self.batch if batch is None else batch
        key = (tokens, batch)
        if key not in self._prefills:
            report = traces.prefill(self.lm, tokens, batch, all_logits=self.all_logits, causal=self.causal)
            self._prefills[key] = Phase("prefill", tokens, 0, batch, report, self.cache, None, self._experts)
        return self._prefills[key]

    @property
    def prefill(self) -> Phase:
        """The prefill of the prompt (of an encoder-decoder model: the encoder's pass included,
        as generate's first forward)."""
        return self.prefill_at(self.prompt)

    @property
    def encoder(self) -> Phase | None:
        """An encoder-decoder model's encoder pass over its ``source`` positions, once per
        sequence: part of the prefill (``prefill`` less this is the decoder's prefill, its
        cross-attention included); None for a decoder alone."""
        if self.lm.source is None:
            return None
        key = (-1, self.batch)  # no prefill has -1 tokens
        if key not in self._prefills:
            report = traces.encode(self.lm, self.batch)
            self._prefills[key] = Phase("encode", self.lm.source, 0, self.batch, report, self.cache)
        return self._prefills[key]

    def decode(self, context: int, batch: int | None = None) -> Phase:
        """One decode step after ``context`` cached tokens (traced, with the same step at an
        empty cache for the as-executed KV split)."""
        return self.chunk(context, 1, batch)

    def chunk(self, context: int, tokens: int, batch: int | None = None) -> Phase:
        """``tokens`` new tokens after ``context`` cached ones: a chunk of a chunked prefill
        (one decode step when ``tokens`` is 1). With ``causal="needed"`` the chunk's
        bottom-right causal mask keeps tokens*context + tokens*(tokens+1)/2 scores per head."""
        batch = self.batch if batch is None else batch
        key = (context, batch, tokens)
        if key not in self._decodes:
            report = traces.decode(self.lm, context, batch, causal=self.causal, tokens=tokens)
            empty = (
                report if context == 0 and not self.lm.encoder_decoder else self._empty_cache(tokens, batch)
            )
            kind = "decode" if tokens == 1 else "chunk"
            self._decodes[key] = Phase(kind, tokens, context, batch, report, self.cache, empty, self._experts)
        return self._decodes[key]

    def _empty_cache(self, tokens: int, batch: int) -> Report:
        """The same step with a cache of no tokens (the as-executed KV split's baseline): the
        first token, except that a hybrid's recurrent layers keep their states (their decode
        path, as at any context; a first token runs their prefill path), and that an
        encoder-decoder model's cross-attention cache is empty too (its reads are KV traffic)."""
        traces.stored_layout(self.lm)  # records the recurrent states
        if not self.lm.states and not self.lm.encoder_decoder:
            return self.chunk(0, tokens, batch).report
        key = (batch, tokens)
        if key not in self._baselines:
            self._baselines[key] = traces.decode(
                self.lm, 0, batch, causal=self.causal, tokens=tokens, recurrent_states=True, cross_positions=0
            )
        return self._baselines[key]

    @property
    def params(self) -> ParamCounts:
        """N as the report gives it: the parameters the prefill and the decode steps it shows
        (the first and the last) read; those steps are traced for it (``lm.params`` counts the
        phases traced so far)."""
        self.decode(self.prompt)
        self.decode(self.last_context)
        return self.lm.params

    @property
    def first_decode(self) -> Phase:
        """The first decode step: the cache holds the prompt."""
        return self.decode(self.prompt)

    @property
    def last_decode(self) -> Phase:
        """The last decode step of the generation (``last_context``)."""
        return self.decode(self.last_context)

    @property
    def last_context(self) -> int:
        """The context of the generation's last decode step: prompt + generate - 2 (the
        prefill gives the first token; a one-token generation decodes at the prompt)."""
        return self.prompt + max(self.generate - 2, 0)

    @property
    def state_bytes(self) -> int:
        """A hybrid's recurrent states (Mamba, linear attention) for the batch: constant in the
        context, beside the KV cache (``traces.recurrent_state_bytes``); 0 without."""
        return traces.recurrent_state_bytes(self.lm, self.batch)

    @property
    def experts_run(self) -> Fraction | None:
        """Experts whose weights the traced prefill multiplies per token (mixture of experts;
        None otherwise): top k where a grouped GEMM runs the routed rows (Mixtral, Qwen3-MoE),
        all of them where transformers runs every expert on every token (Llama 4). The MACs of
        the modules named ``experts`` per token over one expert's: expert matmul weights / E."""
        return experts_run(self.prefill.report, self.lm, self.batch * self.prompt)

    # -- cost versus length -----------------------------------------------------
    @property
    def polynomial_expected(self) -> bool:
        """False for sliding-window or chunked attention (piecewise in length): traced
        points instead."""
        return not (self.lm.has_window or self.lm.has_chunks)

    def prefill_fit(self, quantity: str = "flops_2mac") -> Fit:
        """``quantity`` of the prefill as a polynomial in T (degree 2), fitted through
        T = 16, 32, 48 and checked at the prompt length (or 64)."""
        points, check = self._lengths(PREFILL_POINTS, positions_after=0)
        return self._fit("prefill", quantity, points, check, self.prefill_at)

    def decode_fit(self, quantity: str = "flops_2mac") -> Fit:
        """``quantity`` of a decode step as a polynomial in n (degree 1), fitted through
        n = 16, 32 and checked at the prompt length (or 64)."""
        points, check = self._lengths(DECODE_POINTS, positions_after=1)
        return self._fit("decode", quantity, points, check, self.decode)

    def _lengths(self, usual: tuple[int, ...], positions_after: int) -> tuple[tuple[int, ...], int]:
        """The lengths a fit is traced at (``usual``: 16, 32, ...) and its check (the prompt,
        or 64), scaled down to fit a position table shorter than 64 + ``positions_after``
        (GPT-2's learned ``n_positions``: a longer trace would index past it)."""
        _, limit = position_table(self.lm.config)  # GPT-2: n_positions; Whisper: max_target_positions
        step = usual[0]
        if isinstance(limit, int) and limit - positions_after < 4 * step:
            step = max(1, (limit - positions_after) // 4)
        points = tuple(step * (i + 1) for i in range(len(usual)))
        return points, self.prompt if self.prompt not in points else 4 * step

    def _fit(
        self, kind: str, quantity: str, xs: tuple[int, ...], check: int, trace: Callable[[int], Phase]
    ) -> Fit:
        if quantity not in QUANTITIES:
            raise ValueError(f"quantity must be one of {', '.join(QUANTITIES)}, got {quantity!r}")
        if (kind, quantity) not in self._fits:
            value = QUANTITIES[quantity]
            points = [(x, value(trace(x))) for x in xs]
            self._fits[(kind, quantity)] = fit(points, (check, value(trace(check))))
        return self._fits[(kind, quantity)]

    # -- speed ------------------------------------------------------------------
    def serving(
        self,
        hardware: Hardware | str,
        *,
        weight_bits: int | None = None,
        kv_bits: str | int | None = None,
        batch: int | None = None,
    ) -> Serving:
        """Roofline times of the generation on ``hardware`` (a preset name or Hardware),
        with paged KV traffic. ``weight_bits`` / ``kv_bits`` (e.g. ``cost.kv_dtype``) scale the
        weight and KV-cache bytes for a what-if (e.g. 4-bit weights, fp8 cache)."""
        spec = get(hardware) if isinstance(hardware, str) else hardware
        batch = self.batch if batch is None else batch
        native = self.lm.itemsize * 8
        wbits = native if weight_bits is None else _bits("weight_bits", weight_bits)
        cache = kv_cache(self.lm, None if kv_bits is None else _bits("kv_bits", kv_bits))
        # each FLOP at the peak of the model's dtype, except float32 matmuls (where the user
        # lets them), convolutions and RNNs that torch runs on TF32: the roofline's grouping by
        # op class (docs/speed.md)
        dtype = str(self.lm.dtype).removeprefix("torch.")
        tf32: dict[str, bool] = {}  # op class -> tf32_allowed, read once per call

        def on_tf32(phase: Phase) -> int:
            return flops_by_dtype(phase.report, spec, dtype=dtype, allowed=tf32).get("tfloat32", 0)

        def by_peak(flops: int, tf32_flops: int) -> dict[str, int]:
            return {"tfloat32": tf32_flops, dtype: flops - tf32_flops} if tf32_flops else {dtype: flops}

        def time_of(phase: Phase, flops: dict[str, int]) -> PhaseTime:
            split = phase.bytes("paged", cache)
            weights = Fraction(split.weights * wbits, native)
            return phase_time(flops, weights + split.kv_read + split.kv_write + split.activations, spec)

        first = self.prefill_at(self.prompt, batch)
        prefill = time_of(first, by_peak(first.flops, on_tf32(first)))
        flops_at, breaks = self._decode_flops(batch)
        template = self.decode(self.prompt, batch)
        tf32_at = self._decode_flops(batch, on_tf32)[0] if on_tf32(template) else (lambda n: 0)

        def step(context: int) -> PhaseTime:
            phase = replace(template, context=context)
            return time_of(phase, by_peak(flops_at(context), tf32_at(context)))

        steps = max(self.generate - 1, 0)
        decode_seconds = decode_steps_seconds(step, self.prompt, steps, breaks)
        one = self.decode(self.prompt, 1)
        split = one.bytes("paged", cache)
        weights = Fraction(split.weights * wbits, native)
        per_sequence = by_peak(one.flops, on_tf32(one))
        executed_prefill = first.report.roofline(spec)
        executed_decode = template.report.roofline(spec)
        return Serving(
            hardware=spec,
            batch=batch,
            prompt=self.prompt,
            generate=self.generate,
            prefill=prefill,
            first_decode=step(self.prompt),
            last_decode=step(self.last_context),
            decode_seconds=decode_seconds,
            compute_bound_batch=compute_bound_batch(
                per_sequence, weights, split.kv_read + split.kv_write + split.activations, spec
            ),
            weight_bits=wbits,
            kv_bits=cache.bits,
            executed_ttft=executed_prefill.latency,
            executed_first_tpot=executed_decode.latency,
            executed_ttft_regime=executed_prefill.total.regime,
            executed_first_tpot_regime=executed_decode.total.regime,
        )

    def to_dict(self, servings: list[Serving] | None = None) -> dict[str, Any]:
        """Plain data (ints, floats, strings, lists, dicts) for JSON: the model's facts, the
        prefill, the first and last decode steps, the fits, the KV cache and roofline times."""
        lm = self.lm

        def phase(p: Phase) -> dict[str, Any]:
            return {
                "tokens": p.tokens,
                "context": p.context,
                "batch": p.batch,
                "flops": p.flops,
                "flops_2mac": p.flops_2mac,
                "macs": p.macs,
                "bytes": {
                    a: {k: _number(v) for k, v in asdict(p.bytes(a)).items()}
                    for a in ("paged", "as executed")
                },
            }

        def fitted(found: Fit) -> dict[str, Any]:
            coefficients = found.polynomial.coefficients if found.polynomial else None
            return {
                "points": [list(point) for point in found.points],
                "check": list(found.check),
                "exact": found.exact,
                "coefficients": [_number(c) for c in coefficients] if coefficients else None,
            }

        return {
            "model": lm.name,
            "layers": lm.layers,
            "hidden": lm.hidden,
            "heads": lm.heads,
            "kv_heads": lm.kv_heads,
            "head_dim": lm.head_dim,
            "qk_head_dim": lm.attention_dims[0],  # MLA: the scores' dims (config head_dim: rotary part)
            "v_head_dim": lm.attention_dims[1],
            # per layer [heads, KV heads, query-key dim, value dim]: they differ in Gemma 4
            "attention_by_layer": [list(shape) for shape in lm.attention_by_layer],
            "dtype": str(lm.dtype).removeprefix("torch."),
            "params": asdict(self.params),
            "idle_modules": list(lm.idle_modules),  # where the parameters no traced phase read are
            "prompt": self.prompt,
            "generate": self.generate,
            "batch": self.batch,
            "all_logits": self.all_logits,
            "every_position_logits": self.every_position_logits,  # what the prefill computes
            "causal": self.causal,
            # an encoder-decoder model: the encoder's input length and the positions its output has, and
            # the encoder's pass (inside "prefill"); None for a decoder alone
            "source": lm.source,
            "encoder_positions": lm.encoder_positions if lm.encoder_decoder else None,
            "encoder_matmul": lm.encoder_matmul if lm.encoder_decoder else None,  # the encoder's N_mm
            "encoder": phase(self.encoder) if self.encoder is not None else None,
            "prefill": phase(self.prefill),
            "first_decode": phase(self.first_decode),
            "last_decode": phase(self.last_decode),
            "prefill_fit": fitted(self.prefill_fit()),
            "decode_fit": fitted(self.decode_fit()),
            "kv_bytes_per_token": _number(self.cache.bytes_per_token),
            # an encoder-decoder model's cross-attention cache per sequence (0 for a decoder alone)
            "cross_kv_bytes": _number(self.cache.cross_bytes),
            "state_bytes": self.state_bytes,
            # piecewise decode (sliding windows, chunks): the traced steps the roofline's sum used
            "decode_steps": None
            if self.polynomial_expected or not servings
            else {
                "traced": [list(point) for point in self.decode_pieces("flops").points],
                "exact": self.decode_pieces("flops").exact,
            },
            "roofline": [
                {
                    "hardware": s.hardware.name,
                    "weight_bits": s.weight_bits,
                    "kv_bits": s.kv_bits,
                    "ttft_s": s.ttft,
                    "tpot_s": s.tpot,
                    "tokens_per_second": s.tokens_per_second,
                    "compute_bound_batch": s.compute_bound_batch,
                    # the text table's other cells (probe 8: JSON had only the mean TPOT)
                    "prefill_bound": s.prefill.bound,
                    "tpot_first_s": s.first_decode.seconds,
                    "tpot_first_bound": s.first_decode.bound,
                    "tpot_last_s": s.last_decode.seconds,
                    "executed_ttft_s": s.executed_ttft,
                    "executed_first_tpot_s": s.executed_first_tpot,
                    "executed_ttft_regime": s.executed_ttft_regime,
                    "executed_first_tpot_regime": s.executed_first_tpot_regime,
                }
                for s in servings or []
            ],
        }

    def _decode_flops(
        self, batch: int, part: Callable[[Phase], int] | None = None
    ) -> tuple[Callable[[int], int], tuple[int, ...]]:
        """Exact FLOPs of a decode step at any context of the generation, and the contexts
        where it may turn (none: linear throughout): from the exact linear fit when the model
        is polynomial in n, else from ``decode_pieces``. ``part``: a share of a traced step's
        FLOPs to follow instead (those at the TF32 peak), fitted the same way, not kept."""
        if batch == self.batch and self.polynomial_expected:
            if part is None:
                found = self.decode_fit("flops")
            else:
                points, check = self._lengths(DECODE_POINTS, positions_after=1)
                found = fit([(x, part(self.decode(x))) for x in points], (check, part(self.decode(check))))
            if found.polynomial is not None:
                polynomial = found.polynomial
                return (lambda n: int(polynomial(n))), ()
        if part is None:
            pieces = self.decode_pieces("flops", batch)
        else:
            pieces = piecewise_linear(
                lambda n: part(self.decode(n, batch)), self._decode_kinks(), DECODE_TRACE_BUDGET
            )
        return (lambda n: int(pieces(n))), pieces.breaks

    def decode_pieces(self, quantity: str = "flops_2mac", batch: int | None = None) -> PiecewiseLinear:
        """``quantity`` of a decode step at every context of the generation (prompt ..
        prompt + generate - 2) as a piecewise-linear function, exact where ``exact``: traced at
        both ends and at the integers around each kink (a sliding window w: n = w-2 .. w+1, past
        which a step attends w positions; a chunk C: around each multiple of C, where the chunk
        starts anew), linear between them, each span checked at its middle (one off the line
        is split and traced), at most ``DECODE_TRACE_BUDGET`` traces in all: beyond (a long
        generation's many chunk starts), interpolated and not ``exact``."""
        if quantity not in QUANTITIES:
            raise ValueError(f"quantity must be one of {', '.join(QUANTITIES)}, got {quantity!r}")
        batch = self.batch if batch is None else batch
        key = (quantity, batch)
        if key not in self._pieces:
            value = QUANTITIES[quantity]
            self._pieces[key] = piecewise_linear(
                lambda n: value(self.decode(n, batch)), self._decode_kinks(), DECODE_TRACE_BUDGET
            )
        return self._pieces[key]

    def _decode_kinks(self) -> set[int]:
        """The contexts ``decode_pieces`` traces first: both ends of the generation and the
        integers around each kink inside it, up to the budget."""
        first, last = self.prompt, self.last_context
        kinks = {w + shift for w in self.lm.windows if w for shift in (-2, -1, 0, 1)}
        for chunk in {c for c in self.lm.chunks if c}:  # the first chunk starts, up to the budget
            starts = islice(range(max(chunk, first - first % chunk), last + 2, chunk), DECODE_TRACE_BUDGET)
            kinks |= {start + shift for start in starts for shift in (-2, -1, 0, 1)}
        inside = sorted(k for k in kinks if first < k < last)
        # past the budget (a long generation's many chunk starts) the rest is interpolated
        return {first, last, *inside[: DECODE_TRACE_BUDGET - 2]}


def experts_run(report: Report, lm: LanguageModel, tokens: int) -> Fraction | None:
    """See ``LLMCost.experts_run``; ``tokens`` the traced tokens (batch x length); a training
    step's backward is left out."""
    n, count, top_k = lm.params, lm.num_experts, lm.experts_per_token
    if not lm.is_moe or top_k >= count:
        return None
    expert_matmul = Fraction((n.matmul - n.active_matmul) * count, count - top_k)  # active = mm - e + e k/E
    macs = sum(
        op.cost.macs for op in report.ops if op.phase == "forward" and "experts" in op.module.split(".")
    )
    return Fraction(macs, tokens) / (expert_matmul / count) if expert_matmul else None


def llm_cost(
    model_or_config: Any,
    *,
    prompt: int,
    generate: int = 1,
    batch: int = 1,
    all_logits: bool = False,
    causal: str = "full",
    dtype: str | None = None,
    kv_dtype: str | int | None = None,
    source: int | None = None,
) -> LLMCost:
    """What a causal language model costs to serve: prefill of ``prompt`` tokens, decode
    steps while generating ``generate`` tokens, for ``batch`` sequences.

    ``source``: an encoder-decoder model's encoder input length (source tokens; Whisper's
    mel frames, 2 x max_source_positions); ``prompt`` is then the decoder's tokens. The
    prefill runs the encoder and the decoder (cross K/V computed and cached), each decode
    step the decoder only, reading the cached cross K/V (``encoder_decoder.py``).

    ``model_or_config``: a transformers causal LM, or a transformers config (the model is
    built on the meta device: no memory for weights, in ``dtype``, default the config's
    or bfloat16). ``all_logits``: the prefill computes logits for every position (as
    training and scoring do) instead of the last one only (as ``generate`` does).
    ``causal``: "full" counts the dense score matrix, "needed" only what a causal mask
    keeps. ``kv_dtype``: a declared KV-cache dtype for what-ifs ("fp8", "int8", "int4").

    The prefill is traced at once; decode steps, fits and roofline times on first use.
    """
    _check_settings(prompt, generate, batch, causal, kv_dtype)
    lm = language_model(model_or_config, dtype, source)
    _check_compressed_attention(lm)
    result = LLMCost(lm, prompt, generate, batch, all_logits, causal, kv_dtype)
    result.prefill  # noqa: B018 - trace now: a model that cannot run fails here, clearly
    traces.stored_layout(result.lm)  # the cache's layout: windows the config names otherwise
    warn_if_compressed(model_or_config)  # last: a model refused above gets the error alone
    return result


def _check_compressed_attention(lm: LanguageModel) -> None:
    """Refuse a model whose cache keeps compressed entries that grow with the context beside
    its keys and values (DeepSeek-V4's compressed sparse and heavily compressed attention: one
    entry per ``compress_rates`` tokens, and an indexer key per entry): a decode step attends
    them, and LLM mode's decode cache and KV sizes hold the keys and values only, so its decode
    FLOPs would stay flat in the context and its KV cache leave them out."""
    config = getattr(lm.config, "get_text_config", lambda: lm.config)()
    rates = getattr(config, "compress_rates", None)
    if rates:
        raise ValueError(
            f"LLM mode does not model {lm.name}'s compressed attention ({type(config).__name__} "
            f"compress_rates {rates}): beside a sliding window its cache keeps one compressed entry per "
            "compress rate tokens, which decode steps attend, and LLM mode's decode cache and KV sizes hold "
            "keys and values only; profile it directly, e.g. flopmeter.profile(model, "
            "input_shape='input_ids:1x128:int64') for a prefill, or a decode step given the cache a real "
            "forward left"
        )


def _check_settings(prompt: int, generate: int, batch: int, causal: str, kv_dtype: str | int | None) -> None:
    if causal not in ("full", "needed"):
        raise ValueError(f"causal must be 'full' or 'needed', got {causal!r}")
    for name, value in (("prompt", prompt), ("generate", generate), ("batch", batch)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive whole number of tokens/sequences, got {value!r}")
    check_numel((batch, prompt), "batch x prompt:")  # the prefill's (batch, prompt) token ids
    if kv_dtype is not None:
        _bits("kv_dtype", kv_dtype)  # fails early on an unknown name


def _bits(name: str, value: str | int) -> int:
    """``bits_of(value)``, its error naming the argument ``name``."""
    try:
        return bits_of(value)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{name}: {error}") from None


def _number(value: Fraction | int) -> int | float:
    """An exact int when the value is whole, else a float (JSON has no fractions)."""
    fraction = Fraction(value)
    return fraction.numerator if fraction.denominator == 1 else float(fraction)
