"""The traces LLM mode orchestrates: a prefill of T tokens and one decode step after a
cache of n tokens, each one ``profile()`` call on the (meta) model."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import torch

from ..api import ModelError, profile
from ..interrupts import ModeOn, completes
from ..report import Report
from ..tracing.recorder import is_meta_limitation
from .encoder_decoder import (
    decode_state,
    empty_cache,
    encoder_inputs,
    encoder_of,
    encoder_output,
    use_cache_flag,
    with_cross_cache,
)
from .model import LanguageModel, no_attention, position_table
from .ran import ParametersRead, parameters_run


def prefill(
    lm: LanguageModel, tokens: int, batch: int = 1, *, all_logits: bool = False, causal: str = "full"
) -> Report:
    """One forward over ``tokens`` prompt tokens per sequence, building the KV cache.
    ``all_logits=False`` computes the last position's logits only, as ``generate`` does
    (``logits_to_keep=1``); True computes all of them (training, scoring)."""
    _check_positive(tokens=tokens, batch=batch)
    inputs: dict[str, Any] = {**_new_tokens(lm, batch, tokens), **_use_cache(lm)}
    if lm.keeps_logits:  # else every position's logits: see ``LanguageModel.keeps_logits``
        inputs["logits_to_keep"] = 0 if all_logits else 1
    if lm.source is not None:  # generate's first forward: the encoder too (``encoder_decoder.py``)
        inputs.update(encoder_inputs(lm.model, lm.source, batch, lm.dtype))
        inputs[lm.cache_argument()] = empty_cache(lm.config)
    return _traced(lm, inputs, tokens, causal=causal, name=f"{lm.name} prefill T={tokens}")


def encode(lm: LanguageModel, batch: int = 1) -> Report:
    """An encoder-decoder model's encoder alone over its ``source`` positions: the part of the
    prefill that runs once per sequence whatever the target length."""
    assert lm.source is not None, "encode() is for an encoder-decoder model"
    inputs = encoder_inputs(lm.model, lm.source, batch, lm.dtype)
    return profile(encoder_of(lm.model), inputs, name=f"{lm.name} encoder S={lm.source}")


def _use_cache(lm: LanguageModel) -> dict[str, bool]:
    """``use_cache=True``; of an encoder-decoder model only where its forward names it (see
    ``use_cache_flag``: each phase hands it a cache anyway)."""
    return use_cache_flag(lm.model) if lm.encoder_decoder else {"use_cache": True}


def _new_tokens(lm: LanguageModel, batch: int, tokens: int) -> dict[str, torch.Tensor]:
    """The new tokens' ids under the forward's name for them: ``input_ids``, an encoder-decoder
    model's ``decoder_input_ids``."""
    return {"decoder_input_ids" if lm.encoder_decoder else "input_ids": _token_ids(batch, tokens)}


def decode(
    lm: LanguageModel,
    context: int,
    batch: int = 1,
    *,
    causal: str = "full",
    tokens: int = 1,
    recurrent_states: bool = False,
    cross_positions: int | None = None,
) -> Report:
    """One decode step: ``tokens`` new tokens per sequence (1; more for a chunk of a
    chunked prefill) after a cache of ``context`` tokens (transformers' ``DynamicCache``,
    filled with meta tensors of the model's dtype: no memory; real zeros for a real model that
    must be counted with values, see below). ``recurrent_states`` with
    ``context`` 0: a hybrid's recurrent layers hold their states all the same (the baseline
    of the as-executed KV split: a cache of no tokens, not a first token). An encoder-decoder
    model's cross-attention cache holds its S encoder positions, or ``cross_positions`` (0: the
    baseline of the as-executed KV split, which then holds what both caches add)."""
    _check_positive(batch=batch, tokens=tokens)
    if not isinstance(context, int) or isinstance(context, bool) or context < 0:
        raise ValueError(f"the decode context must be a whole number of tokens, 0 or more, got {context!r}")

    def inputs() -> dict[str, Any]:  # its states on ``lm.states_device``
        device = lm.states_device
        made: dict[str, Any] = {**_new_tokens(lm, batch, tokens), **_use_cache(lm)}
        if lm.keeps_logits:
            made["logits_to_keep"] = 1
        if lm.encoder_decoder:  # the encoder's output and its cross K/V, cached: see ``encoder_decoder.py``
            stored_layout(lm)  # records lm.cross
            made["encoder_outputs"] = encoder_output(batch, lm.encoder_positions, lm.hidden, lm.dtype, device)
            positions = lm.encoder_positions if cross_positions is None else cross_positions
            own = filled_cache(lm, context, batch)
            made[lm.cache_argument()] = with_cross_cache(own, lm.cross, positions, batch, lm.dtype, device)
        elif context or (recurrent_states and stored_layout(lm) and lm.states):
            made[lm.cache_argument()] = filled_cache(lm, context, batch)
        return made

    label = f"decode n={context}" if tokens == 1 else f"chunk of {tokens} after n={context}"
    name = f"{lm.name} {label}"
    first = inputs()
    handed = "encoder_outputs" in first or lm.cache_argument() in first  # states on meta, so far
    try:
        return _traced(lm, first, context + tokens, causal=causal, name=name)
    except ModelError as error:
        if not (handed and _needs_real_states(lm, error)):
            raise
    del first
    # a real model whose forward a shapes-only run cannot follow (dynamic activation quantization:
    # torchao's int8 matmul asserts its operands share a device, torch.ao's quantized::linear_dynamic
    # has no meta kernel) is counted with values, as profile() does; a meta cache cannot meet its
    # real activations (its attention's query), so this step and the next get real zeros
    lm.states_device = _model_device(lm.model)
    return _traced(lm, inputs(), context + tokens, causal=causal, name=name)


def _needs_real_states(lm: LanguageModel, error: ModelError) -> bool:
    """Whether a decode step's failure is a real model's values run meeting the meta states it
    was handed: the model holds no meta tensor, and its error is one of meta tensors."""
    if lm.states_device.type != "meta":
        return False
    held = (*lm.model.parameters(), *lm.model.buffers())
    cause = error.__cause__
    return not any(t.is_meta for t in held) and cause is not None and is_meta_limitation(cause)


def _model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); the CPU for a model holding none."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _token_ids(batch: int, tokens: int) -> torch.Tensor:
    """The (batch, tokens) int64 ids a phase runs on: real (an embedding reads them), so
    8 bytes per token; a size this machine cannot allocate is a clear error, not torch's."""
    try:
        return torch.zeros(batch, tokens, dtype=torch.long)
    except RuntimeError as error:  # "can't allocate memory", "Storage size calculation overflowed"
        raise ValueError(
            f"batch x tokens = {batch} x {tokens}: its token ids ({batch * tokens * 8:.3g} bytes) "
            f"cannot be allocated here ({str(error).splitlines()[0][:120]})"
        ) from error


@completes  # an interrupt that stops ModeOn's __exit__ at its first line: undone here
def _traced(lm: LanguageModel, inputs: dict[str, Any], positions: int, *, causal: str, name: str) -> Report:
    """``profile()`` of one phase, noting the parameters it reads (N counts those: see
    ``ParamCounts``); a model that fails on a trace reaching past its
    max_position_embeddings (GPT-2's learned table: "index out of range") is told so."""
    try:
        with ModeOn(ParametersRead(lm.model)) as watch:  # off again even if interrupted
            report = profile(lm.model, inputs, causal=causal, name=name)
        lm.note_read(parameters_run(lm.model, report, watch.seen))
        return report
    except ModelError as error:
        table, limit = position_table(lm.config)
        # a text encoder's source positions index the same table (BART); Whisper's frames do not
        source = lm.source if getattr(lm.model, "main_input_name", None) == "input_ids" else None
        if isinstance(limit, int) and max(positions, source or 0) > limit:
            reached = (
                f"Its source reaches {source:,}"
                if positions <= limit
                else f"This trace reaches {positions:,}"
            )
            raise ModelError(
                f"{error} {reached} positions, beyond the config's {table} "
                f"({limit:,}): keep prompt + generate - 1{' and source' if source else ''} within it"
            ) from error.__cause__
        raise


def filled_cache(lm: LanguageModel, context: int, batch: int) -> Any:
    """A transformers DynamicCache (the model's own subclass where it takes no other: MiniMax's) holding ``context`` tokens of keys and values in every
    layer that caches, as meta tensors shaped as the model stores them (see ``stored_layout``):
    (B, heads, context, dim), and a sparse-attention indexer's keys of the ``context`` tokens
    (B, context, dim), so the indexer scores every cached token. Cache layers past the model's
    layers (a loop model's copies of its looped layers: Dory's ``per_loop``, Inkling-2-Loop's
    passes) are left to the model, which copies the filled ones when its cache has no more
    layers than it has, as a prefill's does. A hybrid's recurrent layers (Mamba, linear attention) get the
    states a prefill leaves (their size does not grow with the context), so the model runs
    its one-token recurrent step there, not a prefill of one token from a zero state."""
    device = lm.states_device
    cache = new_cache(lm, _cache_class(lm))
    layout = stored_layout(lm)  # records lm.states too
    own = {layer: shapes for layer, shapes in layout.items() if layer < lm.layers}  # not a loop's copies
    for layer, ((key_heads, key_dim), (value_heads, value_dim)) in sorted(own.items() if context else ()):
        keys = decode_state((batch, key_heads, context, key_dim), lm.dtype, device)
        values = decode_state((batch, value_heads, context, value_dim), lm.dtype, device)
        cache.update(keys, values, layer)
    for layer, (dim, dtype) in sorted(lm.indexers.items() if context else ()):  # DeepSeek-V3.2's indexer keys
        if layer < lm.layers:
            cache.update_indexer(decode_state((batch, context, dim), dtype, device), layer)
    for method, layer, shape, dtype, kwargs in lm.states:  # a hybrid's Mamba / linear-attention layers
        if layer >= lm.layers:  # a loop's copy: the model makes it
            continue
        state = decode_state((batch, *shape[1:]), dtype, device)
        if method == "set_linear_cache":  # MiniMax's own cache: (layer, state)
            cache.set_linear_cache(layer, state)
        else:
            getattr(cache, method)(state, layer, **kwargs)
    return cache


def _cache_class(lm: LanguageModel) -> type:
    """The cache class the model takes: its modeling module's own ``DynamicCache`` subclass
    where it defines one that builds from the config alone (MiniMax refuses any other:
    ``MiniMaxCache`` keeps its lightning attention's K^T V states in ``linear_cache``), else
    transformers' ``DynamicCache`` (a subclass that needs a batch size or a device, as the
    hybrid caches of transformers 4.x, is not one LLM mode can fill)."""
    import transformers

    module = sys.modules.get(type(lm.model).__module__)
    own = (
        [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, transformers.DynamicCache)
            and value is not transformers.DynamicCache
            and value.__module__ == getattr(module, "__name__", None)
            and _builds_from_config(value)
        ]
        if module is not None
        else []
    )
    return own[0] if len(own) == 1 else transformers.DynamicCache


def _builds_from_config(cls: type) -> bool:
    """Whether ``cls`` can be built with no arguments but, at most, ``config``."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    needed = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
    return not any(p.default is p.empty and p.kind in needed and p.name != "config" for p in parameters)


def new_cache(lm: LanguageModel, cls: type) -> Any:
    """An empty cache of ``cls``, given the config where its constructor takes one."""
    takes_config = "config" in inspect.signature(cls).parameters
    return cls(config=lm.config) if takes_config else cls()


def recurrent_state_bytes(lm: LanguageModel, batch: int = 1) -> int:
    """Bytes of the states a hybrid's recurrent layers (Mamba, linear attention, short
    convolutions) keep for ``batch`` sequences, the same at any context: the conv and SSM
    states transformers allocates from what a one-token prefill hands its cache. 0 without."""
    stored_layout(lm)
    if not lm.states:
        return 0
    total = 0
    cache = filled_cache(lm, 0, batch)
    for layer in cache.layers:
        for states in (getattr(layer, "conv_states", None), getattr(layer, "recurrent_states", None)):
            for state in (states or {}).values():
                total += state.numel() * state.element_size() if state is not None else 0
    for state in getattr(cache, "linear_cache", []):  # MiniMax's lightning-attention K^T V per layer
        total += state.numel() * state.element_size() if isinstance(state, torch.Tensor) else 0
    return total


def stored_layout(lm: LanguageModel) -> dict[int, tuple[tuple[int, int], tuple[int, int]]]:
    """Per layer that caches: (heads, dim) of the keys and of the values the model hands its
    cache, recorded once from a one-token trace. Not always kv_heads x head_dim: Falcon-7B
    stores one key head, Falcon-40B its keys broadcast to every query head, DeepSeek's MLA
    keys of qk_nope + qk_rope dims and values of v_head_dim. A sparse-attention indexer's keys
    (DeepSeek-V3.2: ``update_indexer``, one (dim) vector per token and layer) go to
    ``lm.indexers``."""
    if lm.stored is None:
        import transformers

        seen: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {}
        indexers: dict[int, tuple[int, torch.dtype]] = {}
        windows: dict[int, int | None] = {}
        states: list[tuple[str, int, tuple[int, ...], torch.dtype, dict[str, Any]]] = []

        def record(method: str, state: Any, layer: int, state_idx: int, kwargs: dict[str, Any]) -> None:
            states.append(
                (method, layer, tuple(state.shape), state.dtype, {"state_idx": state_idx, **kwargs})
            )

        class Recording(_cache_class(lm)):  # type: ignore[misc]
            def update(
                self, key_states: Any, value_states: Any, layer_idx: int, *args: Any, **kwargs: Any
            ) -> Any:
                seen[layer_idx] = (
                    (key_states.shape[1], key_states.shape[-1]),
                    (value_states.shape[1], value_states.shape[-1]),
                )
                updated = super().update(key_states, value_states, layer_idx, *args, **kwargs)
                windows[layer_idx] = getattr(self.layers[layer_idx], "sliding_window", None)
                return updated

            def update_indexer(self, indexer_key_states: Any, layer_idx: int) -> Any:
                indexers[layer_idx] = (indexer_key_states.shape[-1], indexer_key_states.dtype)
                return super().update_indexer(indexer_key_states, layer_idx)

            def update_conv_state(
                self, conv_states: Any, layer_idx: int, state_idx: int = 0, **kwargs: Any
            ) -> Any:
                record("update_conv_state", conv_states, layer_idx, state_idx, kwargs)
                return super().update_conv_state(conv_states, layer_idx, state_idx, **kwargs)

            def update_recurrent_state(
                self, recurrent_states: Any, layer_idx: int, state_idx: int = 0, **kwargs: Any
            ) -> Any:
                record("update_recurrent_state", recurrent_states, layer_idx, state_idx, kwargs)
                return super().update_recurrent_state(recurrent_states, layer_idx, state_idx, **kwargs)

            def set_linear_cache(self, layer_idx: int, linear_cache: Any) -> Any:  # MiniMax's own cache
                record("set_linear_cache", linear_cache, layer_idx, 0, {})
                return super().set_linear_cache(layer_idx, linear_cache)

        inputs: dict[str, Any] = {
            "input_ids": torch.zeros(1, 1, dtype=torch.long),
            "use_cache": True,
            "logits_to_keep": 1,
            lm.cache_argument(): new_cache(lm, Recording),
        }
        cross: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {}
        if lm.source is not None:  # and the cross-attention K/V of the encoder's output, per layer
            positions: list[int] = []

            class CrossRecording(transformers.DynamicCache):
                def update(
                    self, key_states: Any, value_states: Any, layer_idx: int, *args: Any, **kwargs: Any
                ) -> Any:
                    cross[layer_idx] = (
                        (key_states.shape[1], key_states.shape[-1]),
                        (value_states.shape[1], value_states.shape[-1]),
                    )
                    positions.append(key_states.shape[-2])
                    return super().update(key_states, value_states, layer_idx, *args, **kwargs)

            inputs = {
                **_new_tokens(lm, 1, 1),
                **encoder_inputs(lm.model, lm.source, 1, lm.dtype),
                **_use_cache(lm),
                lm.cache_argument(): transformers.EncoderDecoderCache(
                    new_cache(lm, Recording), CrossRecording()
                ),
            }
        profile(lm.model, inputs, name=f"{lm.name} cache layout")
        if lm.source is not None:
            lm.cross, lm.encoder_positions = cross, max(positions, default=0)
        if not seen and states:  # Mamba-2 has num_heads, of its SSM: no attention at all
            raise no_attention(
                lm.model, lm.config, "caches recurrent states, no keys and values (a state-space model)"
            )
        default = ((lm.kv_heads, lm.head_dim), (lm.kv_heads, lm.head_dim))
        lm.stored = seen or {layer: default for layer in range(lm.layers)}
        lm.states = states
        lm.indexers = indexers
        lm.cache_windows = windows
        # a window the config names otherwise (Inkling's "hybrid_sliding" layers, sliding_window_size):
        # the cache transformers builds for the layer keeps it; not a chunked layer's (Llama 4), which
        # transformers caches in a sliding-window layer of the chunk's length
        chunked = lm.chunks or (None,) * len(lm.windows)
        lm.windows = tuple(
            w if w is not None or chunked[i] is not None else windows.get(i) for i, w in enumerate(lm.windows)
        )
        lm.layer_attention = _attending_heads(lm)
    return lm.stored


def _attending_heads(lm: LanguageModel) -> tuple[tuple[int, int, int, int], ...]:
    """``lm.attention_by_layer`` with the KV heads a layer hands its cache where its code has
    more than its config says (MiMo-V2-Flash's sliding layers: 2 x num_key_value_heads), but not
    keys broadcast to every query head (Falcon-40B), nor fewer (MLA's one latent, Falcon-7B)."""
    stored = lm.stored or {}
    shapes = []
    for layer, (heads, kv_heads, qk_dim, v_dim) in enumerate(lm.attention_by_layer):
        key_heads = stored[layer][0][0] if layer in stored else kv_heads
        shapes.append((heads, key_heads if kv_heads < key_heads < heads else kv_heads, qk_dim, v_dim))
    return tuple(shapes)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
