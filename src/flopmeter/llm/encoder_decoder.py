"""Encoder-decoder models in LLM mode (BART, T5, Marian, mBART, Pegasus, Whisper
``...ForConditionalGeneration``): what their phases feed the model, as ``generate`` does.

- The prefill is generate's first forward: the encoder over the S source positions (tokens, or
  Whisper's mel frames) and the decoder over the T target tokens, its cross-attention computing
  each layer's K/V of the encoder output once and caching them (transformers'
  ``EncoderDecoderCache``).
- A decode step gets the encoder output (``encoder_outputs``: the encoder does not run again)
  and a cache whose cross-attention part holds those K/V (marked updated, so they are read, not
  recomputed) beside the self-attention keys and values of the context.

Nothing here counts: the traces do (``traces.py``), through ``profile()``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch


def is_seq2seq(model: torch.nn.Module) -> bool:
    """Whether ``model`` runs an encoder and a decoder with cross-attention (its config says
    ``is_encoder_decoder``; a decoder run alone, ``BartForCausalLM``, sets it False)."""
    config = getattr(model, "config", None)
    return getattr(config, "is_encoder_decoder", False) is True and callable(
        getattr(model, "get_encoder", None)
    )


def encoder_of(model: torch.nn.Module) -> torch.nn.Module:
    """The encoder of an encoder-decoder model (its ``get_encoder()``)."""
    encoder: torch.nn.Module = model.get_encoder()  # type: ignore[operator]  # nn.Module's __getattr__
    return encoder


def check_source(model: torch.nn.Module, source: int | None) -> None:
    """Refuse an encoder-decoder model without ``source`` (its numbers would leave out the
    encoder and count cross-attention over the target tokens), a ``source`` for a decoder-only
    model, a source that is not a positive whole number, and an encoder input LLM mode cannot
    make (images: a VisionEncoderDecoder's pixel_values)."""
    name = type(model).__name__
    if source is None:
        if is_seq2seq(model):
            raise ValueError(
                f"{name} is an encoder-decoder model: LLM mode needs source=S, the encoder's input length "
                "(source tokens; Whisper's mel frames), to count the encoder once and the decoder's "
                "cross-attention over its output (CLI --source S); flopmeter.training_step does not model "
                "encoder-decoder training: profile it directly, flopmeter.profile(model, inputs, backward=True)"
            )
        return
    if not isinstance(source, int) or isinstance(source, bool) or source < 1:
        raise ValueError(f"source must be a positive whole number of encoder positions, got {source!r}")
    if not is_seq2seq(model):
        raise ValueError(
            f"source={source} is for encoder-decoder models (BART, T5, Whisper ...ForConditionalGeneration); "
            f"{name} is a decoder-only model: drop source"
        )
    main = getattr(model, "main_input_name", "input_ids")
    if main not in ("input_ids", "input_features"):
        raise ValueError(
            f"{name}'s encoder takes {main}: LLM mode makes token ids or audio features only; "
            "profile it directly with its inputs"
        )


# what transformers raises building a model from a config it cannot hold (Marian's default pad_token_id
# outside a small vocabulary: nn.Embedding's AssertionError)
CONFIG_ERRORS = (AssertionError, IndexError, TypeError)


def unbuildable(config: Any, auto: str, error: BaseException) -> ValueError:
    """The error for a config ``auto`` (e.g. AutoModelForSeq2SeqLM) could not build a model from."""
    return ValueError(
        f"transformers could not build {type(config).__name__}'s model ({auto}): {type(error).__name__}: {error}"
    )


def seq2seq_on_meta(config: Any, dtype: torch.dtype) -> torch.nn.Module:
    """An encoder-decoder config's model with its language-model head, on meta:
    ``AutoModelForSeq2SeqLM`` (BART, T5, Marian, ...), else ``AutoModelForSpeechSeq2Seq``
    (Whisper)."""
    import transformers

    if getattr(config, "is_encoder_decoder", False) is not True:
        raise ValueError(
            f"source= is for encoder-decoder models (BART, T5, Whisper); {type(config).__name__} is not "
            "one (its is_encoder_decoder is False): drop source"
        )
    with torch.device("meta"):
        for auto in (transformers.AutoModelForSeq2SeqLM, transformers.AutoModelForSpeechSeq2Seq):
            try:
                model = auto.from_config(config, dtype=dtype)
            except ValueError:  # no class of this auto class for the config
                continue
            except CONFIG_ERRORS as error:  # the config itself
                raise unbuildable(config, auto.__name__, error) from error
            return model.eval()
    raise ValueError(
        f"transformers has no sequence-to-sequence language model (AutoModelForSeq2SeqLM, "
        f"AutoModelForSpeechSeq2Seq) for {type(config).__name__}"
    )


def encoder_inputs(model: torch.nn.Module, source: int, batch: int, dtype: torch.dtype) -> dict[str, Any]:
    """The encoder's input for ``batch`` sequences of ``source`` positions: token ids
    (batch, S), or audio features on meta: Whisper's (batch, num_mel_bins, S frames),
    Speech2Text's (batch, S frames, features)."""
    config = model.config
    if getattr(model, "main_input_name", "input_ids") == "input_ids":
        return {"input_ids": torch.zeros(batch, source, dtype=torch.long)}
    mel_bins = getattr(config, "num_mel_bins", None)
    if isinstance(mel_bins, int):
        shape: tuple[int, ...] = (batch, mel_bins, source)
    else:
        features = int(getattr(config, "input_feat_per_channel", 0)) * int(
            getattr(config, "input_channels", 1)
        )
        shape = (batch, source, features)
    return {"input_features": torch.empty(shape, dtype=dtype, device="meta")}


_META = torch.device("meta")


def decode_state(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device = _META) -> torch.Tensor:
    """A state a decode step is handed (cached keys or values, an encoder's output): on meta,
    no memory; on a real device (a model whose forward needs values: ``traces.decode``)
    zeros, whose values only have to exist (what is counted is their shapes)."""
    if device.type == "meta":
        return torch.empty(shape, dtype=dtype, device=device)
    try:
        return torch.zeros(shape, dtype=dtype, device=device)
    except RuntimeError as error:  # "can't allocate memory", "out of memory"
        size = math.prod(shape) * dtype.itemsize
        raise ValueError(
            f"this model's forward cannot be counted on the meta device (it needs values: dynamic "
            f"activation quantization, ...), so its decode steps run with a real cache, and a "
            f"state of {tuple(shape)} {str(dtype).removeprefix('torch.')} ({size:.3g} bytes) cannot "
            f"be allocated on {device} ({str(error).splitlines()[0][:120]}): lower prompt, generate "
            "or batch"
        ) from error


def encoder_output(
    batch: int, positions: int, hidden: int, dtype: torch.dtype, device: torch.device = _META
) -> Any:
    """What a decode step gets in place of running the encoder again: its output, (batch, S
    encoder positions, hidden), on meta (``decode_state``). As an ``MoEModelOutput`` (no router logits): NLLB-MoE
    reads that field of it; the others take its first field, as of a ``BaseModelOutput``."""
    from transformers.modeling_outputs import MoEModelOutput

    return MoEModelOutput(last_hidden_state=decode_state((batch, positions, hidden), dtype, device))


def with_cross_cache(
    self_cache: Any,
    cross: dict[int, tuple[tuple[int, int], tuple[int, int]]],
    positions: int,
    batch: int,
    dtype: torch.dtype,
    device: torch.device = _META,
) -> Any:
    """An ``EncoderDecoderCache`` of ``self_cache`` and a cross-attention cache holding the K/V of
    ``positions`` encoder positions in every layer of ``cross`` (meta tensors: ``decode_state``), marked updated:
    the decoder reads them, as in generate after the first step, and does not project the
    encoder output again (with 0 positions too: the as-executed split's baseline)."""
    import transformers

    cross_cache = transformers.DynamicCache()
    for layer, ((key_heads, key_dim), (value_heads, value_dim)) in sorted(cross.items()):
        keys = decode_state((batch, key_heads, positions, key_dim), dtype, device)
        values = decode_state((batch, value_heads, positions, value_dim), dtype, device)
        cross_cache.update(keys, values, layer)
    cache = transformers.EncoderDecoderCache(self_cache, cross_cache)
    cache.is_updated = dict.fromkeys(cross, True)
    return cache


def empty_cache(config: Any) -> Any:
    """The ``EncoderDecoderCache`` generate starts with: both parts empty; the prefill fills them."""
    import transformers

    return transformers.EncoderDecoderCache(
        transformers.DynamicCache(config=config), transformers.DynamicCache()
    )


def use_cache_flag(model: torch.nn.Module) -> dict[str, bool]:
    """``use_cache=True`` where the forward takes it by name; Switch Transformers' forward passes its
    keyword arguments on to its encoder, which refuses it: the cache given is used all the same."""
    return {"use_cache": True} if "use_cache" in inspect.signature(model.forward).parameters else {}
