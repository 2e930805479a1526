"""LLM mode as text: prefill, decode, cost versus length, KV cache, roofline times,
training conventions and MFU. The only place LLM numbers become strings."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ..hardware import Hardware
from ..llm.cost import LLMCost
from ..llm.fit import Fit, Polynomial
from ..llm.model import LanguageModel, position_table
from ..llm.phases import Phase
from ..llm.serving import Serving
from ..llm.training import TrainingStep
from . import units as u
from .speed import seconds
from .text import grid


def formula(polynomial: Polynomial, variable: str) -> str:
    """``a*T^2 + b*T + c`` with exact coefficients and thousands separators."""
    terms = []
    for power in range(polynomial.degree, -1, -1):
        c = polynomial.coefficients[power]
        if c == 0:
            continue
        value = f"{c.numerator:,}" if c.denominator == 1 else f"({c.numerator:,}/{c.denominator:,})"
        name = (
            ""
            if power == 0
            else variable
            if power == 1
            else f"{variable}^2"
            if power == 2
            else f"{variable}^{power}"
        )
        terms.append(f"{value}*{name}" if name else value)
    return " + ".join(terms).replace("+ -", "- ") or "0"


def fit_line(label: str, found: Fit, variable: str) -> str:
    xs = ", ".join(str(x) for x, _ in found.points)
    check_x, check_y = found.check
    if found.polynomial is None:
        points = "; ".join(f"{variable}={x}: {y:,}" for x, y in (*found.points, found.check))
        return f"  {label}: not a polynomial in {variable} (the check at {variable}={check_x} disagreed); traced: {points}"
    return (
        f"  {label} = {formula(found.polynomial, variable)}"
        f"   (through {variable} = {xs}; checked exactly at {variable} = {check_x}: {check_y:,})"
    )


def window_note(cost: LLMCost) -> str:
    """What the decode fit means under sliding-window attention: a decode step attends at
    most the window, so its cost is piecewise in the context, and the fit is exact where
    it was traced and checked: past the window(s), below them, or across (where it holds
    only if its check says so). Decode times come from traced contexts."""
    windows = sorted({w for w in (*cost.lm.windows, *cost.lm.chunks) if w})
    kind = "sliding-window attention" if cost.lm.has_window else "chunked attention"
    noun = "window" if cost.lm.has_window else "chunk"
    decode = cost.decode_fit()
    traced = [*(x for x, _ in decode.points), decode.check[0]]
    if min(traced) >= windows[-1]:
        where = f"past the {noun}: shorter contexts attend fewer positions and cost less"
    elif max(traced) < windows[0]:
        where = (
            f"below the {noun}: past it a step attends at most the {noun} and costs less than the fit says"
        )
    else:
        where = f"across the {noun}"
    named = (f"{noun} " if len(windows) == 1 else f"{noun}s ") + ", ".join(map(str, windows))
    return (
        f"  {kind} ({named}) makes a decode step's cost piecewise in its context:"
        f" decode(n) was traced and checked at n = {min(traced)}-{max(traced)}, {where}"
    )


def prefill_window_note(cost: LLMCost) -> list[str]:
    """What the prefill fit means under ``causal="needed"`` with sliding windows: a sliding
    layer keeps T(T+1)/2 scores per head up to its window w and w(w+1)/2 + (T-w)w past it, so
    the prefill is piecewise in T and its fit exact only on the side of the window it was
    traced and checked on. Nothing where attention counts dense (``full``, eager attention) or
    where the fit already says it is no polynomial."""
    lm, found = cost.lm, cost.prefill_fit()
    if cost.causal != "needed" or not lm.has_window or lm.eager_attention or found.polynomial is None:
        return []
    windows = sorted({w for w in lm.windows if w})
    traced = [*(x for x, _ in found.points), found.check[0]]
    if min(traced) >= windows[-1]:
        where = "past the window: a shorter prompt costs more than the fit says"
    elif max(traced) <= windows[0]:
        where = "below the window: a longer prompt costs less than the fit says"
    else:
        where = "across the window"
    named = ("window " if len(windows) == 1 else "windows ") + ", ".join(map(str, windows))
    return [
        f"  sliding-window attention ({named}) counted as needed keeps w(w+1)/2 + (T-w)w scores per head"
        f" past the window, T(T+1)/2 below it: prefill(T) is piecewise, traced and checked at"
        f" T = {min(traced)}-{max(traced)}, {where}"
    ]


def eager_needed_note(
    lm: LanguageModel, causal: str, counted: str = "counted dense under 'needed' too"
) -> list[str]:
    """A NOTE where ``causal="needed"`` was asked of a model whose attention runs eagerly
    (plain matmuls over every score: counted dense, as computed)."""
    if causal != "needed" or not lm.eager_attention:
        return []
    return [
        f"NOTE: {lm.name} runs transformers' eager attention (plain matmuls over all T x T scores, as for"
        f" soft-capping or attention sinks): {counted}, which is what it computes"
    ]


def scan_padding_note(lm: LanguageModel, tokens: int, what: str) -> list[str]:
    """A NOTE where a sequence of ``tokens`` runs Mamba-2 layers whose torch path pads it to a
    chunk (``LanguageModel.scan_chunks``): ``what`` (the traced rows, the prefill) counts the
    padded positions' scan, which is what that path computes; none at a multiple of the chunk."""
    found = lm.scan_chunks
    if found is None or tokens % found[1] == 0:
        return []
    layers, chunk = found
    padded = -(-tokens // chunk) * chunk
    return [
        f"NOTE: {lm.name}'s {layers} Mamba-2 layer{'s' if layers != 1 else ''} run transformers' torch path"
        f" (no mamba_ssm kernels), whose chunked scan pads the {tokens:,} tokens to {padded:,} (a chunk of"
        f" {chunk:,}): {what} count{'s' if what.startswith('the prefill') else ''} the padded positions'"
        f" scan, which is what it computes; none at T a multiple of {chunk:,}, nor in a fused kernel"
    ]


def pieces_line(cost: LLMCost) -> str:
    """How the roofline's decode steps get their FLOPs where cost is piecewise in the context
    (``LLMCost.decode_pieces``): the traced contexts, and whether every span was checked."""
    pieces = cost.decode_pieces("flops")
    contexts = ", ".join(f"{x:,}" for x in pieces.breaks)
    how = (
        "exact at every context"
        if pieces.exact
        else "interpolated where a span was left unchecked (trace budget spent)"
    )
    return (
        f"  decode steps of the generation: traced at n = {contexts} (both ends and around each kink),"
        f" linear between, each span checked at its middle: {how}"
    )


def _bytes(value: Fraction | int) -> str:
    return u.nbytes(float(value))


def phase_lines(
    title: str, phase: Phase, *, units: str = "auto", precision: int = 2, per_token: bool = True
) -> list[str]:
    """A phase's FLOPs and bytes; ``per_token`` False leaves out the per-token line (an
    encoder-decoder model's prefill: its encoder's work is not the target tokens')."""
    lines = [
        f"{title}",
        f"  FLOPs {u.count(phase.flops_2mac, 'FLOPs', units, precision)} (2 x MACs)"
        f" · {u.count(phase.flops, 'FLOPs', units, precision)} exact · {u.count(phase.macs, 'MACs', units, precision)}",
    ]
    if per_token and phase.tokens > 1:
        per_token_flops = phase.flops_2mac / (phase.tokens * phase.batch)
        lines.append(f"  per token: {u.count(per_token_flops, 'FLOPs', units, precision)} (2 x MACs)")
    for accounting in ("paged", "as executed"):
        split = phase.bytes(accounting)
        lines.append(
            f"  bytes ({accounting}): {_bytes(split.total)} = weights {_bytes(split.weights)}"
            f" + KV read {_bytes(split.kv_read)} + KV write {_bytes(split.kv_write)}"
            f" + activations {_bytes(split.activations)}"
        )
    return lines


def module_table(phase: Phase, depth: int = 1, *, units: str = "auto", precision: int = 2) -> list[str]:
    """Per module (down to ``depth``): FLOPs, MACs and bytes as executed."""
    header = ["module", "type", "FLOPs (exact)", "MACs", "weights", "KV read", "KV write", "activations"]
    body = [
        [
            row.name or "(total)",
            row.type,
            u.scaled(row.flops, units, precision).strip(),
            u.scaled(row.macs, units, precision).strip(),
            _bytes(row.weights),
            _bytes(row.kv_read),
            _bytes(row.kv_write),
            _bytes(row.activations),
        ]
        for row in phase.modules()
        if row.depth <= depth
    ]
    return grid(header, body)


def serving_table(servings: list[Serving]) -> list[str]:
    header = [
        "hardware",
        "bits w/kv",
        "TTFT",
        "TPOT first",
        "TPOT last",
        "tokens/s",
        "compute-bound from batch",
        "latency model, as executed: TTFT / TPOT",
    ]
    body = [
        [
            s.hardware.name,
            f"{s.weight_bits}/{s.kv_bits}",
            f"{seconds(s.ttft)} ({s.prefill.bound})",
            f"{seconds(s.first_decode.seconds)} ({s.first_decode.bound})",
            seconds(s.last_decode.seconds),
            f"{s.tokens_per_second:,.1f}",
            str(s.compute_bound_batch)
            if s.compute_bound_batch
            else "none (per-sequence KV + activation bytes dominate)",
            f"{seconds(s.executed_ttft)} ({s.executed_ttft_regime}) / "
            f"{seconds(s.executed_first_tpot)} ({s.executed_first_tpot_regime})",
        ]
        for s in servings
    ]
    return grid(header, body)


def render_llm(
    cost: LLMCost,
    servings: list[Serving] | None = None,
    *,
    depth: int | None = None,
    units: str = "auto",
    precision: int = 2,
) -> str:
    """The whole LLM-mode report: model, prefill, decode, cost vs length, KV, roofline."""
    lm, n = cost.lm, cost.params
    dtype = str(lm.dtype).removeprefix("torch.")
    if cost.all_logits:
        logits = "logits at every position"
    elif cost.every_position_logits:
        logits = f"logits at every position: {lm.name}'s forward takes no logits_to_keep, generate's neither"
    else:
        logits = "logits for the last position, as generate"
    lines = [
        f"{lm.name}: {lm.layers} layers, hidden {lm.hidden}, {_attention_shape(lm)}, vocab {lm.vocab}, {dtype}",
        f"params: N_total {n.total:,} · N_mm {n.matmul:,} (matmul weights, lm_head included, "
        f"no embeddings) · Kaplan N {n.kaplan:,} · embeddings {n.embedding:,}"
        + (
            f" (tied: the input table is lm_head's weight, its {n.lm_head:,} counted once, in N_mm)"
            if n.tied
            else ""
        ),
        *idle_lines(lm),
    ]
    if lm.is_moe:
        lines.append(
            f"mixture of experts: {lm.num_experts} experts, top {lm.experts_per_token}; active N_mm "
            f"{n.active_matmul:,} of {n.matmul:,} (uniform expert load)"
        )
        lines += _dense_experts_note(lm, cost.experts_run)
    if lm.has_window:
        windows = sorted({w for w in lm.windows if w})
        lines.append(
            f"sliding-window attention: window {', '.join(map(str, windows))} on {sum(1 for w in lm.windows if w)} of {lm.layers} layers"
        )
    if lm.has_chunks:
        chunks = sorted({c for c in lm.chunks if c})
        lines.append(
            f"chunked attention: chunk {', '.join(map(str, chunks))} on {sum(1 for c in lm.chunks if c)} of "
            f"{lm.layers} layers (paged KV reads the current chunk's tokens)"
        )
    lines.append(
        f"batch {cost.batch} · prompt {cost.prompt} · generate {cost.generate} · attention counted {cost.causal}"
    )
    lines += encoder_decoder_lines(cost)
    longest = cost.prompt + cost.generate - 1  # the last token's context, itself included
    table, limit = position_table(lm.config)
    if isinstance(limit, int) and longest > limit:
        lines.append(
            f"NOTE: prompt + generate reach {longest:,} positions, beyond the config's "
            f"{table} ({limit:,}): counted as if the model attended that far"
        )
    if lm.kv_lora_rank:
        lines.append(
            f"NOTE: MLA (latent rank {lm.kv_lora_rank}): decode counted as transformers runs it, each step "
            f"re-expanding every cached token's latent through kv_b_proj ({lm.latent_expansion_macs:,} MACs per "
            "cached token and layer); an engine that absorbs kv_b_proj into the query and output projections "
            "skips that"
        )
    lines += _sparse_attention_note(cost)
    lines += eager_needed_note(lm, cost.causal)
    lines += scan_padding_note(lm, cost.prompt, "the prefill")
    lines.append(
        f"2N per token, for comparison (attention left out): 2 N_mm = {u.count(2 * n.matmul, 'FLOPs', units, precision)}"
        f" · 2 N_total = {u.count(2 * n.total, 'FLOPs', units, precision)}"
        + (
            f" · 2 active N_mm = {u.count(2 * n.active_matmul, 'FLOPs', units, precision)}"
            if lm.is_moe
            else ""
        )
    )
    lines.append("")
    if cost.encoder is not None:
        lines += phase_lines(
            f"Encoder, S = {lm.source:,} (once per sequence; inside the prefill below)",
            cost.encoder,
            units=units,
            precision=precision,
            per_token=False,  # Whisper's source is frames
        )
    with_encoder = f" and the encoder over S = {lm.source:,}" if cost.encoder is not None else ""
    lines += phase_lines(
        f"Prefill, T = {cost.prompt}{with_encoder} ({logits})",
        cost.prefill,
        units=units,
        precision=precision,
        per_token=cost.encoder is None,  # the encoder's work is not the target tokens'
    )
    lines += phase_lines(
        f"Decode step at n = {cost.prompt} (first)", cost.first_decode, units=units, precision=precision
    )
    if cost.generate > 2:
        lines += phase_lines(
            f"Decode step at n = {cost.last_decode.context} (last)",
            cost.last_decode,
            units=units,
            precision=precision,
        )
    if depth is not None:
        lines += ["", "Prefill per module (bytes as executed)"] + module_table(
            cost.prefill, depth, units=units, precision=precision
        )
        lines += ["", "Decode per module (bytes as executed)"] + module_table(
            cost.first_decode, depth, units=units, precision=precision
        )
    lines += ["", f"Cost versus length (FLOPs, 2 x MACs, batch {cost.batch}):"]
    lines.append(fit_line("prefill(T)", cost.prefill_fit(), "T"))
    lines += prefill_window_note(cost)
    lines.append(fit_line("decode(n) ", cost.decode_fit(), "n"))
    if not cost.polynomial_expected:
        lines.append(window_note(cost))
        if servings:
            lines.append(pieces_line(cost))
    if lm.is_moe:
        lines.append(
            "  mixture of experts: traced FLOPs count top-k routed rows (any routing gives the same"
            " total); as executed a grouped GEMM reads every expert, paged only the routed ones"
            " (uniform routing)"
        )
    lines += ["", *kv_lines(cost)]
    if servings:
        lines += [
            "",
            "Roofline: each phase max(FLOPs/peak, bytes/bandwidth) with a paged KV cache; lower bounds"
            " (real prefill runs 1.5-2.6x above them); FLOPs exact (elementwise work included); tokens/s ="
            " generated tokens of the whole batch over prefill + decode. The last column is flopmeter's latency estimate"
            " of the traced code as executed (report.roofline(hw).latency).",
        ]
        lines += serving_table(servings)
    return "\n".join(lines) + "\n"


def encoder_decoder_lines(cost: LLMCost) -> list[str]:
    """What an encoder-decoder model's phases run (``llm/encoder_decoder.py``), and why 2 N per
    token overstates its decode steps (N counts the encoder's weights, which they never read)."""
    lm = cost.lm
    if lm.decoder_alone:
        return [
            f"NOTE: {type(lm.config).__name__} is an encoder-decoder config; without a source length this is "
            f"its decoder alone ({lm.name}), without encoder states: no encoder, no cross-attention. "
            "Count the encoder-decoder with --source S (source=S), the encoder's input length"
        ]
    if lm.source is None:
        return []
    return [
        f"encoder-decoder: the prefill runs the encoder once over source S = {lm.source:,} "
        f"({lm.encoder_positions:,} encoder positions) and the decoder over the prompt's {cost.prompt:,} "
        f"token{'s' if cost.prompt > 1 else ''}, its cross-attention projecting the encoder output to K/V "
        "once and caching them; "
        "a decode step runs the decoder only and reads the cached cross K/V",
        f"NOTE: N includes the encoder's {lm.encoder_matmul:,} matmul weights, read once per sequence "
        "(in the prefill), never by a decode step: 2 N per token overstates a decode step",
    ]


def idle_lines(lm: LanguageModel) -> list[str]:
    """What N leaves out: the parameters no traced phase read (a BART-style decoder's
    cross-attention without encoder states, a vision tower without an image)."""
    n = lm.params
    if not n.idle:
        return []
    return [
        f"NOTE: N counts the parameters the traced phases read; {n.idle:,} parameters "
        f"({n.idle_matmul:,} of them matmul weights) that none read are left out of every N: "
        f"{', '.join(lm.idle_modules)}"
    ]


def _dense_experts_note(lm: LanguageModel, run: Fraction | None) -> list[str]:
    """A NOTE where the traced code multiplies each token by more experts than its top k (Llama 4)."""
    if run is None or run <= lm.experts_per_token:
        return []
    return [
        f"NOTE: transformers' code for {lm.name} multiplies every token by {float(run):g} of its "
        f"{lm.num_experts} experts' weights, not the top {lm.experts_per_token} (the others with a "
        "routing weight of 0): traced FLOPs count what it runs; an engine runs the top k (active N_mm)"
    ]


def _sparse_attention_note(cost: LLMCost) -> list[str]:
    """DeepSeek-V3.2's sparse attention (an indexer caches a key per token and picks the top
    ``index_topk`` cached tokens): transformers runs the attention dense with a mask."""
    top = getattr(cost.lm.config, "index_topk", None)
    if not cost.cache.indexer_dim or not isinstance(top, int):
        return []
    return [
        f"NOTE: sparse attention (its indexer caches a key of {cost.cache.indexer_dim} per token and layer, "
        f"scores every cached token and keeps the top {top:,}): counted as transformers runs it, the "
        f"attention dense over the whole cache with a mask; an engine's sparse kernel attends the top {top:,} "
        "only, so past that many cached tokens its attention stops growing (the indexer's does not)"
    ]


def _attention_shape(lm: LanguageModel) -> str:
    """Heads, KV heads and head dims as the header prints them; where the layers differ
    (Gemma 4's full-attention layers) each shape with the layers that have it."""
    if lm.uniform_attention:
        return f"{lm.heads} heads ({lm.kv_heads} KV), {_head_dims(lm)}"
    shapes: dict[tuple[int, int, int, int], list[int]] = {}
    for layer, shape in enumerate(lm.attention_by_layer):
        shapes.setdefault(shape, []).append(layer)
    parts = []
    for (heads, kv_heads, qk_dim, v_dim), layers in shapes.items():
        dims = (
            f"head dim {qk_dim}"
            if qk_dim == v_dim
            else f"head dim {qk_dim} (queries, keys) and {v_dim} (values)"
        )
        parts.append(f"{heads} heads ({kv_heads} KV), {dims} on {_layer_list(layers)}")
    return "; ".join(parts)


def _layer_list(layers: list[int]) -> str:
    """``layer 3`` or ``5 layers (0-3, 5)``: runs of consecutive indices joined."""
    if len(layers) == 1:
        return f"layer {layers[0]}"
    runs: list[list[int]] = []
    for layer in layers:
        if runs and layer == runs[-1][-1] + 1:
            runs[-1].append(layer)
        else:
            runs.append([layer])
    spans = ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
    return f"{len(layers)} layers ({spans})"


def _head_dims(lm: LanguageModel) -> str:
    """The head dim as the header prints it; with MLA the dims the scores and the values run
    over (DeepSeek's config head_dim is the rotary part only)."""
    qk_dim, v_dim = lm.attention_dims
    if qk_dim == v_dim == lm.head_dim:
        return f"head dim {lm.head_dim}"
    return f"head dim {qk_dim} (queries, keys) and {v_dim} (values)"


def kv_lines(cost: LLMCost) -> list[str]:
    # the most the generation caches: the prompt and every token a decode step runs; the last
    # generated token is never run, so never cached (prompt + generate - 1)
    total = cost.prompt + cost.generate - 1
    stored, lm = cost.cache, cost.lm
    if not (stored.uniform and lm.uniform_attention):
        lines = [
            "KV cache (sum over the layers of 2 x KV heads x head dim x bytes per element, as each layer "
            "stores it: the layers differ):"
        ]
    elif stored.value_head_dim is None and (stored.kv_heads, stored.head_dim) == (lm.kv_heads, lm.head_dim):
        lines = ["KV cache (2 x layers x KV heads x head dim x bytes per element):"]
    else:  # as the model hands its cache: MLA's latent, Falcon's one key head
        values = stored.head_dim if stored.value_head_dim is None else stored.value_head_dim
        indexer = f" + indexer key {stored.indexer_dim} per layer" if stored.indexer_dim else ""
        # MLA hands its cache the latent as "keys" and the shared rotary key as "values"
        mla = bool(lm.kv_lora_rank) and stored.head_dim == lm.kv_lora_rank
        pair = (
            f"latent {stored.head_dim} + rope key {values}"
            if mla
            else f"key {stored.head_dim} + value {values}"
        )
        lines = [
            f"KV cache (layers x {stored.kv_heads} cached head(s) x ({pair}){indexer} "
            "x bytes per element, as the model stores it):"
        ]
    for label, cache in (("model dtype", cost.cache), ("declared", cost.declared_cache)):
        if cache is None:
            continue
        layer_bytes = cache.layer_bytes[: cache.layers]
        per_layer = (
            _bytes(cache.bytes_per_token_per_layer)
            if cache.uniform
            else f"{_bytes(min(layer_bytes))} to {_bytes(max(layer_bytes))}"
        )
        cross = " and the cross-attention cache" if cache.cross_bytes else ""
        lines.append(
            f"  {label} ({cache.bits} bits): {_bytes(cache.bytes_per_token)} per token "
            f"({per_layer} per layer) · {_bytes(cache.bytes(total, cost.batch))} "
            f"for batch {cost.batch} at {total} tokens{cross} (the generation's most: its last token is not cached)"
        )
        if cache.cross_bytes:
            lines.append(
                f"    cross-attention cache ({cost.lm.encoder_positions:,} encoder positions x 2 x layers x KV heads"
                f" x head dim x bytes): {_bytes(cache.cross_bytes)} per sequence, written by the prefill, read"
                " whole by each decode step"
            )
    if cost.state_bytes:
        lines.append(
            f"  recurrent states (Mamba, linear attention), beside it: {_bytes(cost.state_bytes)} "
            f"for batch {cost.batch} at any context"
        )
    return lines


def _frozen_note(step: TrainingStep) -> list[str]:
    """A frozen base (LoRA-style): the closed forms' backward 4N assumes every weight trained."""
    n = step.lm.params
    if n.trainable == n.total:
        return []
    return [
        f"NOTE: {n.trainable:,} of {n.total:,} parameters require grad (the rest frozen): the traced rows "
        "count the backward a frozen weight still needs (the gradient of its input) and not its weight "
        "gradient; 6N and 6N+12LHQT assume every weight is trained (backward 4N) and overstate this step"
    ]


def mfu_basis(step: TrainingStep, hardware: Hardware, devices: int, tokens_per_second: float) -> str:
    """What MFU divided by: FLOPs per token (the row's convention) x tokens/s over devices x
    the dense peak of the dtype the step computed in (``step.dtype``)."""
    peak = step.peak(hardware)
    return (
        f"MFU = FLOPs per token (each row's convention) x {tokens_per_second:,.1f} tokens/s / ({devices} x "
        f"{u.count(peak, 'FLOP/s', precision=1)}, the dense {step.dtype} peak of {hardware.name})"
    )


def render_training(
    step: TrainingStep,
    mfu: dict[str, float] | None = None,
    *,
    units: str = "auto",
    precision: int = 2,
    basis: tuple[Hardware, int, float] | None = None,
) -> str:
    """A training step under every convention side by side, with MFU when measured; ``basis``
    (hardware, devices, global tokens/s) adds the line saying what MFU divided by."""
    per_token = step.conventions()
    named = {label: f"{value:,}" for label, value in step.named_n().items()}
    header = ["convention", "N", "FLOPs per token", "FLOPs per step"] + (["MFU"] if mfu else [])
    body = []
    for name, value in per_token.items():
        row = [
            name,
            named.get(name, "(traced)"),
            u.scaled(value, units, precision).strip(),
            u.scaled(value * step.step_tokens, units, precision).strip(),
        ]
        if mfu:
            row.append(f"{100 * mfu[name]:.1f} %")
        body.append(row)
    lines = [
        f"Training step: batch {step.batch} x {step.tokens} tokens · forward {u.count(step.forward_flops, 'FLOPs', units, precision)}"
        f" · backward {u.count(step.backward_flops, 'FLOPs', units, precision)} (2 x MACs, traced)",
        *grid(header, body),
    ]
    if mfu and basis:
        lines.append(mfu_basis(step, *basis))
    if mfu and max(mfu.values()) > 1:
        lines.append(
            "NOTE: MFU above 100 %: the measured rate is faster than the peak allows; check that tokens/s"
            " is global (all devices), --devices, and the dtype whose peak is used (a float32 model whose"
            " matmuls run on TF32 tensor cores is still divided by the float32 peak)"
        )
    lines += idle_lines(step.lm)
    lines += _frozen_note(step)
    lines += eager_needed_note(step.lm, "needed", "the traced causal row counts it dense too")
    lines += scan_padding_note(step.lm, step.tokens, "the traced rows")
    lines += _dense_experts_note(step.lm, step.experts_run)
    qk_dim, v_dim = step.lm.attention_dims
    if not step.lm.uniform_attention:
        lines.append(
            f"6N+12LHQT as 6N + 6 T x (sum over the {step.attention_layers} attention layers of H (Q_qk + Q_v)"
            f" = {step.attention_width:,}): the layers' heads and head dims differ"
        )
    elif step.attention_layers != step.lm.layers or qk_dim != v_dim:
        lines.append(
            f"6N+12LHQT as 6N + 6 L H (Q_qk + Q_v) T: L = {step.attention_layers} of {step.lm.layers} layers "
            f"(those with attention), H = {step.lm.heads}, Q_qk = {qk_dim}, Q_v = {v_dim}"
        )
    if step.recompute or step.optimizer:
        extra = " + one forward (recompute)" if step.recompute else ""
        extra += f" + AdamW on {step.lm.params.trainable:,} trainable parameters" if step.optimizer else ""
        lines.append(
            f"hardware FLOPs per step: {u.count(step.hardware_flops, 'FLOPs', units, precision)} (model{extra})"
        )
        if mfu:
            key = next(k for k in mfu if k.startswith("HFU"))
            lines.append(f"HFU: {100 * mfu[key]:.1f} %")
    return "\n".join(lines) + "\n"


def plot_cost_vs_length(cost: LLMCost, path: Any = None, *, longest: int | None = None) -> Any:
    """Prefill FLOPs against T and decode FLOPs against n, from the exact fits (or the
    traced points), with the traced points marked. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - optional extra
        raise ImportError("plots need matplotlib: pip install 'flopmeter[plot]'") from error
    longest = longest or max(cost.prompt + cost.generate, 64)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, found, label in (
        (axes[0], cost.prefill_fit(), "prefill, T"),
        (axes[1], cost.decode_fit(), "decode step, n"),
    ):
        xs = list(range(1, longest + 1, max(1, longest // 200)))
        if found.polynomial is not None:
            polynomial = found.polynomial
            axis.plot(xs, [float(polynomial(x)) for x in xs], label=formula(polynomial, label[-1]))
        points = [*found.points, found.check]
        axis.scatter([x for x, _ in points], [y for _, y in points], color="black", zorder=3, label="traced")
        axis.set_xlabel(label)
        axis.set_ylabel("FLOPs (2 x MACs)")
        axis.legend(fontsize=7)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path)
    return figure
