"""The language model LLM mode works on: built on meta from a config, and the facts
about it that the conventions need (layers, heads, parameter counts by definition)."""

from __future__ import annotations

import copy
import inspect
import warnings
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import torch

from .computed import stored_weight, weight_factors
from .encoder_decoder import CONFIG_ERRORS, check_source, encoder_of, seq2seq_on_meta, unbuildable

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts under the definitions people quote (2N and 6N mean nothing until
    N is named).

    - ``total``: every parameter, each shared tensor once.
    - ``matmul`` (N_mm): parameters with 2 or more dims that are not input embeddings nor
      biases: the weights matmuls read, lm_head included (a tied lm_head counts here).
      GPT-OSS's experts keep their biases as (experts, out) tensors, Ernie 4.5 a (1, experts)
      router bias: added, not multiplied, so not here.
    - ``kaplan``: N_mm without lm_head (Kaplan et al.: no embeddings, no lm_head).
    - ``embedding``: input embedding tables not shared with lm_head.
    - ``tied``: whether the input embedding table is lm_head's weight (``tie_word_embeddings``):
      then it is counted once, as lm_head (in N_mm and ``lm_head``), and ``embedding`` is 0.
    - ``experts`` / ``active_matmul``: mixture-of-experts weights (parameters named
      ``experts`` with 2 or more dims, biases included: what an expert stores), and N_mm with
      only ``top_k / num_experts`` of the experts' matmul weights (uniform load).
    - ``idle`` / ``idle_matmul``: once a phase has been traced, the parameters no traced phase
      read (``llm/ran.py``: a BART-style decoder's cross-attention without encoder states, a
      multimodal model's vision tower without an image), and their matmul weights: left out of
      every count above. Expert weights always count (routing, not the trace, decides which
      run: the top-k convention of ``active_matmul``).
    - ``trainable``: the parameters of ``total`` that require grad (a frozen base's weights
      are not; AdamW updates only these).

    A weight computed from parameters (``parametrizations.weight_norm``, ``orthogonal``,
    ``spectral_norm``, the older hook forms) counts in N_mm with the computed weight's size,
    held by the parameter in its shape (weight norm's v); the others it is made from (weight
    norm's g, out x 1) are parameters, not matmul weights (``llm/computed.py``).
    """

    total: int
    matmul: int
    kaplan: int
    embedding: int
    lm_head: int
    experts: int = 0
    active_matmul: int = 0
    idle: int = 0
    idle_matmul: int = 0
    trainable: int = 0
    tied: bool = False

    @property
    def active_total(self) -> int:
        """N_total with only the top-k share of the expert weights (uniform load)."""
        return self.total - self.matmul + self.active_matmul


@dataclass
class LanguageModel:
    """A causal language model and its shape facts. ``windows`` has one entry per layer:
    the sliding-window length, or None for full attention (from the config; where it names a
    window otherwise, Inkling's, from the cache transformers builds, once ``traces.stored_layout``
    has run: ``llm_cost`` runs it); ``chunks`` likewise the chunk
    of a chunked-attention layer (Llama 4: a token attends its own chunk only)."""

    model: torch.nn.Module
    config: Any
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    windows: tuple[int | None, ...]
    num_experts: int
    experts_per_token: int
    params: ParamCounts
    name: str
    chunks: tuple[int | None, ...] = ()
    # per head: the dims of the scores' dot products (queries and keys) and of the values;
    # None: head_dim. MLA (DeepSeek-V2/V3) differs: its config's head_dim is the rotary part only
    qk_head_dim: int | None = None
    v_head_dim: int | None = None
    # MLA: the rank of the latent transformers caches (keys and values re-expanded from it)
    kv_lora_rank: int | None = None
    # per layer: (heads, KV heads, query-key dim, value dim); they differ where the config is
    # heterogeneous (Gemma 4's full-attention layers: their own head_dim and KV heads), and where a
    # layer's code caches more KV heads than its config says (MiMo-V2-Flash's sliding layers: set by
    # ``traces.stored_layout``)
    layer_attention: tuple[tuple[int, int, int, int], ...] = ()
    # per layer that caches: (heads, dim) of the keys and of the values transformers stores for one
    # token, recorded by ``traces.stored_layout`` on first use
    stored: dict[int, tuple[tuple[int, int], tuple[int, int]]] | None = field(default=None, repr=False)
    # the recurrent states (Mamba, linear attention, short convolutions) a one-token prefill hands
    # its cache: (cache method, layer, shape, dtype, keyword arguments), recorded with ``stored``
    states: list[tuple[str, int, tuple[int, ...], torch.dtype, dict[str, Any]]] = field(
        default_factory=list, repr=False
    )
    # per layer with a sparse-attention indexer (DeepSeek-V3.2, GLM-MoE-DSA): the dim and dtype of the
    # indexer key it caches for each token beside its keys and values, recorded with ``stored``
    indexers: dict[int, tuple[int, torch.dtype]] = field(default_factory=dict, repr=False)
    # per cache layer the model updates: its window as the cache keeps it (None: full), recorded
    # with ``stored``; a loop model (Dory) caches more layers than it has, a copy per loop
    cache_windows: dict[int, int | None] = field(default_factory=dict, repr=False)
    # names of the parameters some traced phase read (``note_read``); None before any trace
    read: set[str] | None = field(default=None, repr=False)
    # an encoder-decoder model (BART, T5, Whisper ``...ForConditionalGeneration``): the encoder's input
    # length along its sequence axis (source tokens; Whisper's mel frames); None: a decoder alone
    source: int | None = None
    # encoder-decoder: per decoder layer, (heads, dim) of the cross-attention keys and of the values it
    # caches for one encoder position, and the encoder positions cached, recorded by ``traces.stored_layout``
    cross: dict[int, tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=dict, repr=False)
    encoder_positions: int = 0
    # built without ``source`` from an encoder-decoder config that has a causal LM class (BartConfig:
    # BartForCausalLM): its decoder alone, without encoder states
    decoder_alone: bool = False
    # the device of the states a decode step is handed (its KV cache, an encoder's output): meta,
    # or the model's own where its forward needs values (``traces.decode``: a real model a
    # shapes-only run cannot follow, as dynamic activation quantization's)
    states_device: torch.device = field(default_factory=lambda: torch.device("meta"), repr=False)

    def __repr__(self) -> str:
        from ..render.reprs import language_model_repr

        return language_model_repr(self)

    def note_read(self, names: set[str]) -> None:
        """Add the parameters a traced phase read (``ran.ParametersRead``); from then on
        ``params`` counts only parameters some traced phase read (see ``ParamCounts``)."""
        known = self.read or set()
        if self.read is None or not names <= known:
            self.read = known | names
            self.params = count_params(self.model, self.num_experts, self.experts_per_token, self.read)

    @property
    def idle_modules(self) -> tuple[str, ...]:
        """Where the parameters no traced phase read are: the top-most modules none of whose
        parameters was read, and single parameters of modules partly read, in model order; a
        layer index as ``*`` where every layer of the list is idle there
        (``model.decoder.layers.*.encoder_attn``), else the idle layers' indices
        (``model.layers.1``, ``model.layers.{3,8}``: Mllama's cross-attention layers)."""
        if self.read is None:
            return ()
        ordered = [name for name, _ in self.model.named_parameters() if not _counted(name, self.read)]
        idle = set(ordered)
        wholly: dict[str, bool] = {}  # module name -> whether all its parameters are idle

        def all_idle(prefix: str) -> bool:
            if prefix not in wholly:
                owned = [n for n, _ in self.model.get_submodule(prefix).named_parameters(prefix=prefix)]
                wholly[prefix] = bool(owned) and all(n in idle for n in owned)
            return wholly[prefix]

        found: dict[str, None] = {}
        for name in ordered:
            parts = name.split(".")
            prefixes = (".".join(parts[:depth]) for depth in range(1, len(parts)))
            # the top-most module holding only idle parameters, else the parameter itself
            found[next((prefix for prefix in prefixes if all_idle(prefix)), name)] = None
        return _by_layer_pattern(self.model, list(found))

    @property
    def attention_by_layer(self) -> tuple[tuple[int, int, int, int], ...]:
        """Per layer (heads, KV heads, query-key dim, value dim): ``layer_attention``, or the
        model's own for every layer where it was not given."""
        return self.layer_attention or ((self.heads, self.kv_heads, *self.attention_dims),) * self.layers

    @property
    def uniform_attention(self) -> bool:
        """Whether every layer has the same heads, KV heads and head dims."""
        return len(set(self.attention_by_layer)) <= 1

    @property
    def attention_dims(self) -> tuple[int, int]:
        """(query-key, value) dims per head: the scores' dot products and the weighted sum."""
        return (self.qk_head_dim or self.head_dim, self.v_head_dim or self.head_dim)

    @property
    def latent_expansion_macs(self) -> int:
        """MLA: MACs of kv_b_proj re-expanding one cached token's latent into the keys' non-rotary
        part and the values, per layer (transformers does it every decode step):
        kv_lora_rank x H x (qk_nope_head_dim + v_head_dim); 0 without MLA."""
        if not self.kv_lora_rank:
            return 0
        qk_nope = int(_get(self.config, "qk_nope_head_dim", default=0))
        return self.kv_lora_rank * self.heads * (qk_nope + self.attention_dims[1])

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def itemsize(self) -> int:
        return torch.empty((), dtype=self.dtype).element_size()

    @property
    def has_window(self) -> bool:
        return any(w is not None for w in self.windows)

    @property
    def eager_attention(self) -> bool:
        """Whether the model runs transformers' eager attention (Gemma 2's soft-capping, GPT-OSS's
        attention sinks): plain matmuls over every score, which ``causal="needed"`` cannot thin
        (the recorder recognises masks of SDPA only), so they count dense under both conventions."""
        return getattr(self.model.config, "_attn_implementation", None) == "eager"

    @property
    def scan_chunks(self) -> tuple[int, int] | None:
        """(layers, chunk) of the Mamba-2 layers that run transformers' torch path (the
        fallback without mamba_ssm's kernels, which is what a trace on meta or the CPU runs):
        its chunked scan pads a sequence of T tokens to a multiple of ``chunk`` (256 in
        Bamba, Falcon-H1, Zamba2, ...) and computes every padded position. None without them."""
        chunks: list[int] = []
        for module in self.model.modules():
            chunk = getattr(module, "chunk_size", None)
            if isinstance(chunk, int) and hasattr(module, "ssm_state_size"):
                chunks.append(chunk)
        return (len(chunks), max(chunks)) if chunks else None

    @property
    def has_chunks(self) -> bool:
        return any(c is not None for c in self.chunks)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def expert_bytes(self) -> int:
        """The bytes the expert weights are stored in (``ParamCounts.experts``' tensors: named
        ``experts``, 2 or more dims): a float one's elements x its itemsize, a tensor-subclass
        one's inner tensors (torchao's int8 ``qdata``, its scales and zero points)."""
        from ..tracing.model_walk import stored_bytes

        return sum(
            stored_bytes(p)
            for name, p in self.model.named_parameters()
            if ".experts." in f".{name}" and p.ndim >= 2
        )

    @property
    def keeps_logits(self) -> bool:
        """Whether the forward takes ``logits_to_keep`` (the last position's logits only, as
        ``generate`` asks); without it (TrOCR's, Whisper's, ProphetNet's ...ForCausalLM) the
        logits of every position are computed, in ``generate`` too."""
        return "logits_to_keep" in inspect.signature(self.model.forward).parameters

    @property
    def encoder_decoder(self) -> bool:
        """Whether the model runs an encoder over ``source`` and a decoder with cross-attention."""
        return self.source is not None

    @property
    def encoder_matmul(self) -> int:
        """N_mm of the encoder alone (its matmul weights; the embedding it shares is none): they
        run once per sequence, in the prefill, never in a decode step. 0 for a decoder alone."""
        return count_params(encoder_of(self.model)).matmul if self.encoder_decoder else 0

    def cache_argument(self) -> str:
        """The forward's name for the KV cache (``cache`` in transformers >= 5.2x,
        ``past_key_values`` before)."""
        names = inspect.signature(self.model.forward).parameters
        return "cache" if "cache" in names else "past_key_values"


def language_model(
    model_or_config: Any, dtype: str | torch.dtype | None = None, source: int | None = None
) -> LanguageModel:
    """Wrap a causal LM (``nn.Module`` with a transformers ``config``) or build one on the
    meta device from a transformers config (no memory for weights). ``dtype``: the
    dtype to build in; default the config's ``dtype``, else bfloat16 (how LLMs serve).
    ``source``: an encoder-decoder model's encoder input length (see ``encoder_decoder.py``);
    with a config it builds the seq2seq model (``AutoModelForSeq2SeqLM``, Whisper's
    ``AutoModelForSpeechSeq2Seq``), without one an encoder-decoder model is refused."""
    if isinstance(model_or_config, torch.nn.Module):
        model = model_or_config
        config = getattr(model, "config", None)
        if config is None:
            raise TypeError(
                "LLM mode needs a transformers causal LM (a model with a .config) or a transformers "
                f"config; got {type(model).__name__} without a config"
            )
        built_in = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
        if dtype is not None and _torch_dtype(dtype) != built_in:
            raise ValueError(
                f"dtype={dtype!r} builds a config; a model is used as it is ({built_in}): "
                "convert it first (model.to(dtype)) or pass its config"
            )
    else:
        model = _build_on_meta(model_or_config, dtype, seq2seq=source is not None)
        config = model.config
    check_source(model, source)
    _check_causal(model, config, built=not isinstance(model_or_config, torch.nn.Module))
    _check_language_head(model)
    described = _describe(model, config)
    described.source = source
    described.decoder_alone = (
        source is None
        and not isinstance(model_or_config, torch.nn.Module)
        and getattr(model_or_config, "is_encoder_decoder", False) is True
    )
    return described


def warn_if_compressed(model_or_config: Any) -> None:
    """LLM mode reads a compressed weight at its stored size when its tensors are seen in the
    trace: torchao's tensor subclasses (``qdata``, scales, zero points), prune masks
    (``weight_orig`` and its mask) and parametrizations (their originals): the ops that
    rebuild the weight read them, and the rebuilt float copy is left out of the paged
    activations (``phases.Phase.bytes``). Any other compression (torch.ao's quantized
    modules, bitsandbytes, GPTQ packs, observers and fake quantizers) is not followed so:
    said, not silent (P12-U5). ``llm_cost`` and ``training_step`` call it last, after every
    check and trace that may refuse the model (R12): a model refused gets the error alone. A
    config builds a float model."""
    from ..compression.facts import collect
    from ..notices import CountWarning, user_stacklevel

    model = model_or_config
    if not isinstance(model, torch.nn.Module):
        return
    facts = collect(model)
    if not facts.holds_compression:
        return
    others = sorted(
        {
            f.representation
            for f in facts.facts()
            if f.representation not in _FOLLOWED and not f.representation.startswith("torchao ")
        }
        | {
            "observers or fake quantizers"
            for name in facts.overhead_modules
            if "parametrizations" not in name
        }
    )
    if others:
        warnings.warn(
            f"{type(model).__name__} holds compressed weights LLM mode does not read at their stored "
            f"size ({', '.join(others)}): its FLOPs and MACs are right, but its bytes may not be an "
            "engine's (only torchao's quantized tensors, prune masks and parametrizations are). "
            "For the bytes, pass the float model or its config and scale with weight_bits= "
            "(CLI: --weight-bits); docs/llm.md",
            CountWarning,
            stacklevel=user_stacklevel(),
        )


# representations whose stored tensors the trace follows (``ModelWalk.roles``: "stored")
_FOLLOWED = frozenset({"dense", "prune", "parametrize"})


def _check_language_head(model: torch.nn.Module) -> None:
    """Refuse a decoder without a language-model head (LlamaModel, ...ForSequenceClassification):
    its numbers would leave out lm_head (2 d V FLOPs per token) or count a classifier."""
    output_embeddings = getattr(model, "get_output_embeddings", None)
    head = output_embeddings() if callable(output_embeddings) else getattr(model, "lm_head", None)
    if head is None:
        raise ValueError(
            f"LLM mode needs a causal language model with its lm_head; {type(model).__name__} has none "
            "(a base model or a classifier). Build one with transformers.AutoModelForCausalLM.from_config(config) "
            "or pass the config"
        )


def _check_causal(model: torch.nn.Module, config: Any, built: bool = True) -> None:
    """Refuse a model that runs as a bidirectional encoder: BERT-style classes
    (BertLMHeadModel, RobertaForCausalLM, ...) are causal only when built with
    ``is_decoder=True``, and their layers carry that flag. transformers' attention
    modules mark a causal self-attention with ``is_causal=True`` (a multimodal model
    may hold an encoder beside its causal decoder). ``built``: whether LLM mode built the
    model from a config (the hint is then the config's value, on the CLI ``--set``); a model
    passed in (in Python, or built by a FILE.py:CALLABLE, whose ``--set`` values are the
    callable's arguments) must be built so by whoever builds it."""
    decoder_flags = {
        module.is_decoder
        for module in model.modules()
        if module is not model and isinstance(getattr(module, "is_decoder", None), bool)
    }
    causal = any(getattr(module, "is_causal", None) is True for module in model.modules())
    if decoder_flags == {False} and not causal:
        hint = (
            "Build it as a decoder with is_decoder=True (CLI: --set is_decoder=true)"
            if built
            else f"Build the model as a decoder, from a config with is_decoder=True (e.g. "
            f"transformers.{type(config).__name__}(..., is_decoder=True), or config.is_decoder = True before "
            "building it; for FILE.py:CALLABLE, in the callable)"
        )
        raise ValueError(
            f"LLM mode needs a causal language model; {type(model).__name__} from "
            f"{type(config).__name__} runs as a bidirectional encoder (is_decoder=False). {hint}"
        )


def _build_on_meta(config: Any, dtype: str | torch.dtype | None, seq2seq: bool = False) -> torch.nn.Module:
    try:
        import transformers
    except ImportError as error:  # pragma: no cover - the extra is installed in CI
        raise ImportError(
            "building a model from a config needs transformers: pip install transformers"
        ) from error
    if not isinstance(config, transformers.PretrainedConfig):
        raise TypeError(
            f"expected an nn.Module or a transformers config (e.g. LlamaConfig(...)), got {type(config).__name__}"
        )
    chosen = _torch_dtype(dtype if dtype is not None else getattr(config, "dtype", None) or "bfloat16")
    config = copy.deepcopy(config)  # from_config writes dtype and attention choices into it
    if seq2seq:
        return seq2seq_on_meta(config, chosen)
    with torch.device("meta"):
        try:
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=chosen)
        except ValueError as error:
            hint = (
                f" ({type(config).__name__} is an encoder-decoder config: llm_cost counts it with source=S, the "
                "encoder's input length (CLI --source S); training_step does not model encoder-decoder training)"
                if getattr(config, "is_encoder_decoder", False)
                else ""
            )
            raise ValueError(
                f"LLM mode needs a causal language model; transformers.AutoModelForCausalLM has none "
                f"for {type(config).__name__}{hint}"
            ) from error
        except CONFIG_ERRORS as error:
            raise unbuildable(config, "AutoModelForCausalLM", error) from error
    return model.eval()


def _torch_dtype(value: str | torch.dtype) -> torch.dtype:
    if isinstance(value, torch.dtype):
        return value
    if str(value).removeprefix("torch.") not in DTYPES:
        raise ValueError(f"unknown dtype {value!r}; expected one of {', '.join(DTYPES)}")
    return DTYPES[str(value).removeprefix("torch.")]


def _get(config: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = _attribute(config, name)
        if value is not None:
            return value
    return default


def _attribute(config: Any, name: str) -> Any:
    """``config.name`` or None; of a heterogeneous config (transformers' ``per_layer_config``:
    Gemma 4's full-attention layers have their own head_dim and KV heads), the global value
    of an attribute its layers override (reading it plainly raises
    AmbiguousGlobalPerLayerAttributeError); ``layer_configs`` gives each layer's."""
    try:
        return getattr(config, name, None)
    except RuntimeError:  # AmbiguousGlobalPerLayerAttributeError
        return config._getattr_without_heterogeneous_validation(name, None)


def position_table(config: Any) -> tuple[str, int | None]:
    """The config's attribute for the positions its decoder can index, and its value (None where
    it has none): ``max_position_embeddings``, or Whisper's ``max_target_positions``."""
    for name in ("max_position_embeddings", "max_target_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return name, value
    return "max_position_embeddings", None


def layer_configs(config: Any, layers: int) -> list[Any]:
    """One config per layer: a heterogeneous config's ``per_layer_config`` views (each layer's
    overrides applied), else ``config`` for every layer."""
    if getattr(config, "is_heterogeneous", False) is True:
        return list(config.per_layer_config)
    return [config] * layers


def _whole(value: Any) -> int:
    """A config's count as an int: 0 for None; a per-layer list (Hunyuan's moe_topk) of one
    value that value, of several 0 (the uniform top-k share needs one)."""
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value and len(set(value)) == 1 else 0
    return int(value or 0)


def no_attention(model: torch.nn.Module, config: Any, why: str) -> ValueError:
    """The refusal of a model without attention (Mamba, Mamba-2): LLM mode's KV cache and
    cost versus length are attention's."""
    return ValueError(
        f"LLM mode needs a transformer language model with attention heads; {type(model).__name__} "
        f"({type(config).__name__}) {why}: profile it directly, "
        "e.g. flopmeter.profile(model, input_shape='input_ids:1x128:int64')"
    )


def _describe(model: torch.nn.Module, config: Any) -> LanguageModel:
    config = getattr(config, "get_text_config", lambda: config)()
    if _get(config, "num_attention_heads", "n_head", "num_heads") is None:
        raise no_attention(model, config, "has none (a state-space model?)")
    # an encoder-decoder config's num_hidden_layers and num_attention_heads are its encoder's (BART's and
    # Whisper's attribute_map): the decoder's, which LLM mode's phases run, are decoder_layers (T5:
    # num_decoder_layers) and decoder_attention_heads
    layers = int(
        _get(config, "decoder_layers", "num_decoder_layers", "num_hidden_layers", "n_layer", "num_layers")
    )
    hidden = int(_get(config, "hidden_size", "n_embd", "d_model"))
    # the config's values; a heterogeneous config's layers may differ (``layer_configs``)
    heads, kv_heads, head_dim, qk_head_dim, v_head_dim = _attention_of(config, hidden)
    each_layer = layer_configs(config, layers)
    types: list[str | None] = list(getattr(config, "layer_types", None) or [None] * layers)
    per_layer = [
        _attention_of(layer_config, hidden, sliding="sliding" in str(types[i]))
        for i, layer_config in enumerate(each_layer)
    ]
    windows = tuple(_window_of(c, types[i]) for i, c in enumerate(each_layer))
    chunk = getattr(config, "attention_chunk_size", None)
    if isinstance(chunk, int) and chunk > 0 and types:
        chunks = tuple(chunk if t == "chunked_attention" else None for t in types)
    else:
        chunks = (None,) * layers
    # Aria, DBRX (its ffn_config), Hunyuan-MoE and LongCat name them moe_num_experts / moe_topk, Gemma 4
    # its top k top_k_experts
    ffn = getattr(config, "ffn_config", None)
    experts = _whole(
        _get(config, "num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
        or _get(ffn, "moe_num_experts")
    )
    top_k = _whole(
        _get(config, "num_experts_per_tok", "top_k", "moe_topk", "moe_top_k", "top_k_experts")
        or _get(ffn, "moe_top_k")
    )
    return LanguageModel(
        model=model,
        config=config,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=int(_get(config, "vocab_size")),
        windows=windows,
        chunks=chunks,
        qk_head_dim=qk_head_dim,
        v_head_dim=v_head_dim,
        kv_lora_rank=_get(config, "kv_lora_rank"),
        layer_attention=tuple((h, kv, qk, v) for h, kv, _, qk, v in per_layer),
        num_experts=experts,
        experts_per_token=top_k,
        params=count_params(model, experts, top_k),
        name=type(model).__name__,
    )


def _attention_of(config: Any, hidden: int, sliding: bool = False) -> tuple[int, int, int, int, int]:
    """(heads, KV heads, head_dim, query-key dim, value dim) per head of a (layer's) config; of a
    ``sliding`` layer, the config's ``swa_`` values where it has them (Inkling)."""
    swa = "swa_" if sliding else "-"  # no config attribute starts with "-"
    decoder_heads = _get(config, "decoder_attention_heads")  # BART, Whisper: see ``_describe``
    heads = int(
        decoder_heads
        or _get(config, f"{swa}num_attention_heads", "num_attention_heads", "n_head", "num_heads")
    )
    kv_heads = int(
        decoder_heads
        or _get(config, f"{swa}num_key_value_heads", "num_key_value_heads", "num_kv_heads", default=heads)
    )
    if _attribute(config, "multi_query") and not _attribute(config, "new_decoder_architecture"):
        kv_heads = 1  # Falcon-7B, GPT-BigCode: one key/value head (Falcon's num_kv_heads then says H)
    head_dim = int(_get(config, f"{swa}head_dim", "head_dim", "d_kv", default=hidden // heads))  # T5: d_kv
    # MLA (DeepSeek-V2/V3, MiniCPM3): head_dim is the rotary part; a score's dot product runs
    # over qk_head_dim = qk_nope_head_dim + qk_rope_head_dim, the weighted sum over v_head_dim
    qk_head_dim = int(_get(config, "qk_head_dim", default=head_dim))
    v_head_dim = int(_get(config, "v_head_dim", default=head_dim))
    return heads, kv_heads, head_dim, qk_head_dim, v_head_dim


def _window_of(config: Any, layer_type: str | None) -> int | None:
    """A (layer's) config's sliding window, or None: full attention (``use_sliding_window``
    False, or a ``layer_types`` entry other than sliding_attention)."""
    window = _get(config, "sliding_window")
    if _attribute(config, "use_sliding_window") is False or (
        layer_type and layer_type != "sliding_attention"
    ):
        return None
    return int(window) if window else None


def _by_layer_pattern(model: torch.nn.Module, places: list[str]) -> tuple[str, ...]:
    """``places`` (module or parameter names) grouped by their name with the layer index as
    ``*``: ``*`` where all of a list's layers are there, else the indices (``{3,8}``)."""
    groups: dict[str, list[str]] = {}
    for place in places:
        groups.setdefault(".".join("*" if p.isdigit() else p for p in place.split(".")), []).append(place)
    named = []
    for pattern, members in groups.items():
        parts = pattern.split(".")
        if parts.count("*") != 1:
            named.append(pattern)
            continue
        at = parts.index("*")
        indices = sorted({int(member.split(".")[at]) for member in members})
        layers = _entries(model.get_submodule(".".join(parts[:at])))
        if len(indices) < layers:
            parts[at] = str(indices[0]) if len(indices) == 1 else "{" + ",".join(map(str, indices)) + "}"
        named.append(".".join(parts))
    return tuple(named)


def _entries(container: torch.nn.Module) -> int:
    """How many numbered entries a list holds: a ``ModuleList``'s layers, a ``ParameterList``'s
    parameters (whose ``children()`` are none)."""
    held = chain(container.named_children(), container.named_parameters(recurse=False))
    return sum(1 for key, _ in held if key.isdigit())


def _counted(name: str, read: set[str] | None) -> bool:
    """Whether parameter ``name`` counts: every one before a trace; after, those read and
    every expert weight (see ``ParamCounts``)."""
    return read is None or name in read or ".experts." in f".{name}"


def count_params(
    model: torch.nn.Module, num_experts: int = 0, top_k: int = 0, read: set[str] | None = None
) -> ParamCounts:
    """Parameter counts by definition (see ParamCounts), each tensor once; with ``read``
    (the names of the parameters traced phases read), only those and the expert weights."""
    output_embeddings = getattr(model, "get_output_embeddings", None)
    head = output_embeddings() if callable(output_embeddings) else None
    head_weight = stored_weight(head) if isinstance(head, torch.nn.Module) else None
    tables = [stored_weight(m) for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    embedding_ids = {id(weight) for weight in tables if weight is not head_weight}
    tied = head_weight is not None and any(weight is head_weight for weight in tables)
    factors = weight_factors(model)  # weight norm's g and the like: not the weight multiplied
    total = matmul = embedding = experts = expert_matmul = idle = idle_matmul = trainable = 0
    for name, p in model.named_parameters():  # named_parameters yields a shared tensor once
        # a matmul weight: 2-D or more, no embedding, no bias (GPT-OSS's experts keep 2-D biases (E, out))
        is_matmul = (
            id(p) not in embedding_ids and id(p) not in factors and p.ndim >= 2 and not name.endswith("bias")
        )
        if not _counted(name, read):
            idle += p.numel()
            idle_matmul += p.numel() if is_matmul else 0
            continue
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
        in_experts = ".experts." in f".{name}"
        experts += p.numel() if in_experts and p.ndim >= 2 else 0
        if id(p) in embedding_ids:
            embedding += p.numel()
        elif is_matmul:
            matmul += p.numel()
            expert_matmul += p.numel() if in_experts else 0
    lm_head = head_weight.numel() if isinstance(head_weight, torch.Tensor) else 0
    for module, weights, biases in _packed_linears(model):  # torch.ao's: not in named_parameters
        total += weights + biases
        matmul += weights
        lm_head = weights if module is head else lm_head
    active = matmul - expert_matmul + (expert_matmul * top_k // num_experts if num_experts else 0)
    return ParamCounts(
        total=total,
        matmul=matmul,
        kaplan=matmul - lm_head,
        embedding=embedding,
        lm_head=lm_head,
        experts=experts,
        active_matmul=active,
        idle=idle,
        idle_matmul=idle_matmul,
        trainable=trainable,
        tied=tied,
    )


def _packed_linears(model: torch.nn.Module) -> list[tuple[torch.nn.Module, int, int]]:
    """torch.ao's quantized Linears (``quantize_dynamic``, static ``convert``): their weight and
    bias live in a packed object (``_packed_params._packed_params``), which ``parameters()`` does
    not show; (module, weight elements, bias elements) of each. Counted as run by every phase
    (the trace sees no parameter of theirs to tell an idle one by)."""
    found = []
    for module in model.modules():
        if isinstance(module, torch.jit.ScriptModule):  # its own kind of module dict; no packed wrapper
            continue
        wrapper = module._modules.get("_packed_params")
        packed = vars(wrapper).get("_packed_params") if wrapper is not None else None
        if not (isinstance(packed, torch.ScriptObject) and packed._has_method("unpack")):  # type: ignore[attr-defined]
            continue
        unpacked = packed.unpack()  # type: ignore[attr-defined]
        weight, bias = unpacked[:2] if isinstance(unpacked, tuple) else (unpacked, None)
        found.append((module, weight.numel(), bias.numel() if bias is not None else 0))
    return found
