"""Facts about a model's weights, read once before the trace.

For every weight tensor a module holds: its logical shape, how it is stored
(masked, parametrized, sparse layout, packed, quantized subclass, ...), its nonzeros
(per output row too), its bits, groups, scales and the bytes its storages really
take. The compression view (view.py) joins these facts with the counted ops of the
module that holds them. Only tensors are read here; the model is not changed.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch

from ..dtypes import dtype_bits
from ..flat_graph import regrouped_graph
from ..interrupts import GradMode
from ..tracing.model_walk import ModelWalk
from ..tracing.run import undone
from .packed import PackedLayout, is_packed, layout_and_nonzeros
from .pt2e_fold import FoldStep


@lru_cache(maxsize=64)
def bits_of(dtype: Any) -> int:
    """Bits per value of a dtype (``torch.int4`` -> 4, ``float8_e4m3fn`` -> 8); 32 when unknown."""
    bits = dtype_bits(dtype)
    return 32 if bits is None else bits


@dataclass
class WeightFact:
    """One weight tensor, in logical terms.

    ``representation``: how it is stored (dense, prune, parametrize, sparse_coo,
    sparse_csr, sparse_csc, sparse_bsr, semi_structured, torch.ao static, torch.ao
    dynamic, torchao <Class>, bitsandbytes, gptq, or "unrecognised <Class>").
    ``nonzero`` / ``row_nonzero`` are None when the values are unknown (meta device,
    packed storages not read). ``storage_bytes``: the weight's value storage as it
    exists; ``scale_bytes``: its scales and zero points.
    """

    module: str
    name: str
    representation: str
    shape: tuple[int, ...]
    dtype: str
    weight_bits: int
    nonzero: int | None = None
    row_nonzero: list[int] | None = None
    zero_columns: int = 0
    nm: tuple[int, int] | None = None
    sparse_format: str | None = None
    group_size: int | None = None
    n_scales: int = 0
    storage_bytes: int = 0
    scale_bytes: int = 0
    ideal_scale_bytes: int = 0
    logical_extra_params: int = 0  # elements parameters() does not show (packed weights)
    # the values whose nonzeros are still to count: after the trace, before profile()
    # returns (``compression.finish``; the model is as it was profiled then)
    pending: Callable[[], torch.Tensor] | None = field(default=None, repr=False)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def out_channels(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def structure(self) -> str:
        """dense | unstructured | N:M | channel | unknown (values not readable)."""
        if self.nonzero is None:
            return "unknown"
        if self.nonzero == self.numel:
            return "dense"
        if self.nm is not None:
            return f"{self.nm[0]}:{self.nm[1]}"
        if self.row_nonzero is not None:
            rows_zero = sum(1 for r in self.row_nonzero if r == 0)
            if rows_zero or self.zero_columns:
                kept_rows = [r for r in self.row_nonzero if r]
                per_row = self.numel // max(self.out_channels, 1)
                kept_cols = per_row - self.zero_columns * self._column_size()
                if all(r == min(per_row, kept_cols) for r in kept_rows):
                    return "channel"
        return "unstructured"

    def _column_size(self) -> int:
        """Elements of one input channel in one output row (the kernel's size)."""
        return max(
            1, self.numel // max(self.out_channels, 1) // max(self.shape[1] if len(self.shape) > 1 else 1, 1)
        )


@dataclass
class ModelFacts:
    """All weight facts of a model, by module; the packed layouts the op formulas
    look up; the biases (kept apart from weights, as the spec's sparsity asks)."""

    weights: dict[str, list[WeightFact]] = field(default_factory=dict)
    packed: dict[int, PackedLayout] = field(default_factory=dict)
    bias_params: dict[str, int] = field(default_factory=dict)  # module -> bias elements
    bias_zeros: dict[str, int] = field(default_factory=dict)  # module -> zeros of its pruned bias's mask
    bias_bits: dict[str, int] = field(default_factory=dict)
    overhead_modules: set[str] = field(default_factory=set)  # parametrizations, observers, fake quants
    # weights a module uses but another module holds (tied: the same Parameter), by module
    tied: dict[str, list[WeightFact]] = field(default_factory=dict)
    # bytes (at their dtype) of each module's own params that are neither a weight nor
    # its bias (norm scales, LSTM biases), and of its bias; each storage once
    other_param_bytes: dict[str, int] = field(default_factory=dict)
    other_params: dict[str, int] = field(default_factory=dict)
    bias_bytes: dict[str, int] = field(default_factory=dict)
    by_tensor: dict[int, WeightFact] = field(default_factory=dict, repr=False)  # id(parameter) -> its fact
    # QAT layer (or torchao layer quantizing its input) -> its activations' bits
    qat_act_bits: dict[str, int] = field(default_factory=dict)
    folded_batch_norms: set[str] = field(default_factory=set)  # QAT ConvBn*: BN folded in emulation
    # a prepare_qat_pt2e graph's simulated batch-norm folds, by the module running the graph
    pt2e_folds: dict[str, list[FoldStep]] = field(default_factory=dict)
    # torch.nn.utils.prune's masks by module, their shapes: on ``bias`` (the pruning tutorial
    # prunes it), an LSTM's ``bias_ih_l0``, MHA's ``in_proj_bias``, a weight (its fact's too)
    prune_masks: dict[str, set[tuple[int, ...]]] = field(default_factory=dict)
    # eager QAT: activation fake quantizers (not the weights') -> their bits; and, found
    # in trace order by the overhead classifier, each QAT layer's input bits: those of
    # the activation quantizer that ran last before its contraction
    activation_quantizers: dict[str, int] = field(default_factory=dict)
    qat_input_bits: dict[str, int] = field(default_factory=dict)
    # sparse-layout buffers, counted as params (``logical_extra_params``): their elements and
    # their bytes as the report's buffer totals counted them (dense), taken out of those
    sparse_buffers: int = 0
    sparse_buffer_bytes: int = 0

    def facts(self) -> list[WeightFact]:
        return [f for facts in self.weights.values() for f in facts]

    # True when the profile left the nonzeros of the dense-stored weights uncounted
    # (nobody asked for them: ``CompressionOptions.count_nonzeros``); they are unknown
    nonzeros_skipped: bool = False

    def count(self) -> None:
        """Count the nonzeros still pending (once; the references are then dropped)."""
        for fact in self._all_facts():
            if fact.pending is not None:
                _count_nonzeros(fact, fact.pending())
                fact.pending = None

    def skip_count(self) -> None:
        """Leave the pending nonzeros unknown (None) and drop the references to the values."""
        for fact in self._all_facts():
            if fact.pending is not None:
                fact.pending = None
                self.nonzeros_skipped = True

    def _all_facts(self) -> list[WeightFact]:
        return [*self.facts(), *(f for facts in self.tied.values() for f in facts)]

    @property
    def holds_compression(self) -> bool:
        """Whether the model holds a compression recognised without reading values: a
        weight stored otherwise than dense (prune mask, parametrization, sparse layout,
        quantized or packed) or in fewer than 16 bits (a float8 weight; an int8 one, though
        not recognised), or a prune mask, parametrization, observer or fake quantizer."""
        return bool(self.prune_masks or self.overhead_modules) or any(
            (fact.representation != "dense" and not fact.representation.startswith("unrecognised"))
            or fact.weight_bits < 16
            for fact in self._all_facts()
        )

    @property
    def extra_param_bytes(self) -> int:
        """The bytes of the logical params ``parameters()`` misses, as stored: packed
        values and their scales, and the float32 biases torch.ao packs beside them."""
        return sum(
            f.storage_bytes + f.scale_bytes + 4 * max(f.logical_extra_params - f.numel, 0)
            for f in self.facts()
            if f.logical_extra_params
        )

    @property
    def extra_params(self) -> dict[str, int]:
        """Logical params that ``parameters()`` misses (packed weights and biases), by module."""
        extra: dict[str, int] = {}
        for name, facts in self.weights.items():
            count = sum(f.logical_extra_params for f in facts)
            if count:
                extra[name] = count
        return extra


def collect(model: torch.nn.Module, walk: ModelWalk | None = None) -> ModelFacts:
    """Read the weight facts of every module of ``model`` (no model change); ``walk``:
    the model's modules, if already walked."""
    walk = walk if walk is not None else ModelWalk(model)
    found = ModelFacts()
    seen: set[int] = set()
    holds_objects = walk.attributes.holds_objects
    counted: set[int] = set()  # params whose bytes are counted
    classes: dict[type, tuple[bool, bool, bool]] = {}
    for name, module in zip(walk.names, walk.modules, strict=True):
        kind = type(module)
        known = classes.get(kind)
        if known is None:
            known = classes[kind] = (_unread_class(kind), _plain_class(kind), _emulation_class(kind))
        unread, plain, emulation = known
        if unread:
            continue
        if emulation or (
            "parametrizations" in name
            and ".parametrizations." in f".{name}."
            and name.rsplit(".", 1)[-1].isdigit()
        ):
            found.overhead_modules.add(name)
            if emulation and "weight_fake_quant" not in name.split("."):  # nor its observer
                bits = _quantizer_bits(module)
                if bits is not None:
                    found.activation_quantizers[name] = bits
        held = _held(module) if holds_objects else _NOTHING_HELD
        if not (
            held
            or module._parameters
            or module._buffers
            or not plain
            or not _WRAPPER_CHILDREN.isdisjoint(module._modules)
        ):
            continue  # no weight anywhere, and its ``bias`` can only be a child module or missing
        facts = _module_facts(name, module, found, seen, held)
        if facts:
            found.weights[name] = facts
        if facts and facts[0].representation.startswith("torchao "):
            _torchao_activation_bits(name, module, found)
        if "weight_fake_quantizer" in module._modules:
            _torchao_quantization_aware(name, module, facts, found)
        if "weight_fake_quant" in module._modules:
            _quantization_aware(name, module, facts, found)
            if any(c.__name__ in _FOLDING_CLASSES for c in kind.__mro__):
                found.folded_batch_norms.add(name)
        masks = _prune_masks(module)
        bias = _attribute(module, "bias") if plain else getattr(module, "bias", None)
        if isinstance(bias, torch.Tensor) and bias.ndim == 1:
            found.bias_params[name] = bias.numel()
            found.bias_bits[name] = bits_of(bias.dtype)
            found.bias_bytes[name] = bias.numel() * bias.element_size()  # a param, buffer or prune's product
            if "bias" in masks:
                found.bias_bytes[name] += _nbytes(masks["bias"])  # the mask buffer exists too
                if not masks["bias"].is_meta:  # a pruned bias's zeros are known without reading values
                    found.bias_zeros[name] = masks["bias"].numel() - int(torch.count_nonzero(masks["bias"]))
        elif callable(bias) and facts and facts[0].representation.startswith("torch.ao"):
            found.bias_params[name] = facts[0].logical_extra_params - facts[0].numel
            found.bias_bits[name] = 32
        if masks:
            found.prune_masks[name] = {tuple(mask.shape) for mask in masks.values()}
        _count_param_bytes(name, module, found, counted, masks)
    if isinstance(model, torch.fx.GraphModule) or regrouped_graph(model) is not None:
        _graph_input_bits(model, found)  # the graph shows which quantizer feeds each layer
        found.activation_quantizers.clear()
    if isinstance(getattr(model, "graph", None), torch.fx.Graph):  # a GraphModule, an unflattened program
        from .pt2e import read_pt2e_weights  # (imports this module)

        read_pt2e_weights(model, found)
    return found


def _prune_masks(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The masks torch.nn.utils.prune keeps on a module, by the name of the parameter
    pruned: a ``<name>_mask`` buffer beside a ``<name>_orig`` parameter, for any name."""
    return {
        key.removesuffix("_mask"): mask
        for key, mask in module._buffers.items()
        if key.endswith("_mask")
        and isinstance(mask, torch.Tensor)
        and f"{key.removesuffix('_mask')}_orig" in module._parameters
    }


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _graph_input_bits(model: torch.nn.Module, found: ModelFacts) -> None:
    """FX quantization-aware models: a QAT layer's activations take the bits of the
    fake quantizer whose output the graph feeds it (``activation_post_process_N``; one
    quantizer may be registered under several names: after a max pool, which shares its
    input's, so duplicates are kept)."""
    modules = dict(model.named_modules(remove_duplicate=False))
    graph = model.graph if isinstance(model, torch.fx.GraphModule) else regrouped_graph(model)
    for node in graph.nodes if graph is not None else ():
        if node.op != "call_module" or node.target in found.qat_act_bits:
            continue
        layer = modules.get(str(node.target))
        if layer is None or "weight_fake_quant" not in layer._modules:
            continue
        source = node.args[0] if node.args else None
        if isinstance(source, torch.fx.Node) and source.op == "call_module":
            bits = _quantizer_bits(modules.get(str(source.target)))
            if bits is not None:
                found.qat_act_bits[str(node.target)] = bits


def _quantization_aware(
    name: str, module: torch.nn.Module, facts: list[WeightFact], found: ModelFacts
) -> None:
    """A QAT layer (torch.ao ``weight_fake_quant``): its float weight stands for the
    integer weight the fake quantizer rounds it to, so the weight's bits are the
    quantizer's (``quant_max - quant_min`` needs ``(quant_max - quant_min).bit_length()``
    bits: -128..127 -> 8, -8..7 -> 4), with one scale per output channel (per-channel
    schemes) or one in all, costed as torch.ao's converted layers store them (16 bytes:
    a float64 scale and an int64 zero point; 8 for an embedding's float32 pair). Its
    activations take the bits of the layer's own output fake quantizer
    (``activation_post_process``), one bit more under ``reduce_range`` (quint8 0..127 is
    still an 8-bit tensor): the fallback when the quantizer feeding the layer is not found
    (in an FX graph, ``_graph_input_bits``; in eager mode, ``overhead._input_quantizers``
    follows the trace). The stored bytes stay the float ones."""
    weight_quantizer = module._modules["weight_fake_quant"]
    bits = _quantizer_bits(weight_quantizer)
    if bits is None:
        return
    for fact in facts:
        if fact.name != "weight" or fact.representation not in ("dense", "prune", "parametrize"):
            continue  # a weight already packed or quantized keeps its own bits
        fake_quantized(fact, weight_quantizer, bits)
    activation = module._modules.get("activation_post_process")
    act_bits = _quantizer_bits(activation) if activation is not None else None
    if act_bits is not None:
        found.qat_act_bits[name] = act_bits


def _torchao_quantization_aware(
    name: str, module: torch.nn.Module, facts: list[WeightFact], found: ModelFacts
) -> None:
    """A torchao QAT layer (``QATConfig``: ``FakeQuantizedLinear``, any with a ``weight_fake_quantizer``):
    as a torch.ao one (``_quantization_aware``), its weight stands for the integer weight
    its ``weight_fake_quantizer`` rounds it to: the bits of the quantizer config's dtype
    (``torch.int4`` -> 4), one scale per group (``PerGroup``) or per output row (per
    channel), each costed at the config's scale and zero-point precisions
    (float32 and int32 when not set: 8 bytes). Its activations take the bits of its
    ``activation_fake_quantizer``'s dtype. The stored bytes stay the float ones."""
    config = getattr(module._modules["weight_fake_quantizer"], "config", None)
    dtype = str(getattr(config, "dtype", "")).removeprefix("torch.")
    bits = dtype_bits(dtype) if dtype.startswith(("int", "uint")) else None
    if bits is None:
        return  # a float8 config (no zero point, no integer range), or an unknown one
    granularity = getattr(config, "granularity", None)
    group = getattr(granularity, "group_size", None)
    per_scale = sum(
        (getattr(config, attribute, None) or default).itemsize
        for attribute, default in (("scale_precision", torch.float32), ("zero_point_precision", torch.int32))
    )
    for fact in facts:
        if fact.name != "weight" or fact.representation != "dense":
            continue
        if isinstance(group, int) and group > 0:
            fact.group_size, fact.n_scales, scheme = group, fact.numel // group, "per_group"
        else:  # per channel (torchao's QAT weights have no per-tensor scheme)
            fact.n_scales, scheme = fact.out_channels, "per_channel"
        fact.weight_bits = bits
        fact.ideal_scale_bytes = fact.n_scales * per_scale
        fact.representation = f"qat {dtype} {scheme}"
    activation = getattr(module._modules.get("activation_fake_quantizer"), "config", None)
    act_bits = dtype_bits(getattr(activation, "dtype", None))
    if act_bits is not None:
        found.qat_act_bits[name] = act_bits


def fake_quantized(fact: WeightFact, quantizer: Any, bits: int) -> None:
    """``fact`` as the integer weight ``quantizer`` rounds it to: ``bits``, one scale per
    output channel (per-channel schemes) or one, 16 bytes each as torch.ao's converted
    layers store them (8 for float qparams: an embedding's float32 scale and zero point
    per row); a dense weight's representation becomes "qat <dtype> <scheme>" (a pruned
    one stays "prune")."""
    scheme = str(getattr(quantizer, "qscheme", "")).removeprefix("torch.")
    per_channel = scheme.startswith("per_channel")
    axis = getattr(quantizer, "ch_axis", 0)
    fact.n_scales = fact.shape[axis] if per_channel and -len(fact.shape) <= axis < len(fact.shape) else 1
    fact.ideal_scale_bytes = (8 if scheme.endswith("float_qparams") else 16) * fact.n_scales
    fact.weight_bits = bits
    if fact.representation == "dense":
        dtype = str(getattr(quantizer, "dtype", "")).removeprefix("torch.")
        fact.representation = f"qat {dtype} {'per_channel' if per_channel else 'per_tensor'}"


def _quantizer_bits(quantizer: Any) -> int | None:
    """The bits a torch.ao fake quantizer's integer range needs; None for anything else
    (a float16 "fake quantizer", an unknown class)."""
    if not _emulation_class(type(quantizer)):
        return None
    low, high = getattr(quantizer, "quant_min", None), getattr(quantizer, "quant_max", None)
    if not (isinstance(low, int) and isinstance(high, int)) or high <= low:
        return None
    bits = (high - low).bit_length()
    observer = getattr(quantizer, "activation_post_process", None)
    if getattr(observer, "reduce_range", False):
        bits += 1
    return bits


def _count_param_bytes(
    name: str, module: torch.nn.Module, found: ModelFacts, counted: set[int], masks: dict[str, torch.Tensor]
) -> None:
    """The bytes of ``module``'s own params at their dtype (with a prune mask's, ``masks``):
    its bias apart, weights (their facts hold them) left out, every storage once; plus the float32 biases
    packed in torch.ao weights that are not the module's ``bias`` (recurrent cells)."""
    other = other_bytes = 0
    for key, param in module._parameters.items():
        if param is None or id(param) in counted:
            continue
        counted.add(id(param))
        size = param.numel() * param.element_size()
        if key in ("bias", "bias_orig") and name in found.bias_params:
            continue  # the layer's bias: ``bias_bytes``
        if id(param) not in found.by_tensor:  # a parametrization's original: at the weight's module
            other, other_bytes = other + param.numel(), other_bytes + size
            mask = masks.get(key.removesuffix("_orig")) if key.endswith("_orig") else None
            if mask is not None:  # prune's mask on it (an LSTM's bias_ih_l0) is stored too
                other_bytes += _nbytes(mask)
    packed_biases = sum(
        f.logical_extra_params - f.numel
        for f in found.weights.get(name, ())
        if f.representation.startswith("torch.ao")
    )
    if name in found.bias_params and name not in found.bias_bytes:  # a quantized Linear's: its layer's bias
        packed_biases -= found.bias_params[name]
    other, other_bytes = other + packed_biases, other_bytes + 4 * packed_biases
    if other:
        found.other_params[name], found.other_param_bytes[name] = other, other_bytes


_NOTHING_HELD: list[tuple[str, Any]] = []  # never appended to

# torch.ao's fused QAT layers that simulate folding their batch norm into the weight
_FOLDING_CLASSES = frozenset({"_ConvBnNd", "LinearBn1d"})

# the children a wrapped weight lives in: torch.ao's packed params (and packed recurrent cells), torch's parametrizations
_WRAPPER_CHILDREN = frozenset({"_packed_params", "parametrizations", "_all_weight_values"})


def _unread_class(kind: type) -> bool:
    """TorchScript modules (compiled: no prune/quant wrappers to read) and torch.ao's
    Linear/Embedding packed-params wrappers (their packed weight is read at the module
    that owns them)."""
    return issubclass(kind, torch.jit.ScriptModule) or kind.__name__.endswith("PackedParams")


def _emulation_class(kind: type) -> bool:
    """torch.ao observers and fake quantizers (of a prepared or QAT model), torchao's QAT
    fake quantizers: they calibrate or emulate quantization, so their ops are compression
    overhead."""
    return any(c.__name__ in ("ObserverBase", "FakeQuantizeBase", "FakeQuantizerBase") for c in kind.__mro__)


def _plain_class(kind: type) -> bool:
    """Whether ``getattr(module, "bias" or "qweight")`` finds only what the module's
    ``__dict__``, ``_parameters``, ``_buffers`` and ``_modules`` hold: the class defines
    neither name and keeps torch's ``__getattr__``."""
    return (
        not hasattr(kind, "bias")
        and not hasattr(kind, "qweight")
        and getattr(kind, "__getattr__", None) is torch.nn.Module.__getattr__
        and kind.__getattribute__ is object.__getattribute__
    )


def _attribute(module: torch.nn.Module, key: str) -> Any:
    """``getattr(module, key, None)`` for a module of a ``_plain_class``, without torch's
    ``Module.__getattr__`` (a Python call, and an AttributeError raised and caught when
    the module has no such entry): its ``__dict__``, then ``_parameters``, ``_buffers``
    and ``_modules``, as that lookup goes."""
    attributes = module.__dict__
    if key in attributes:
        return attributes[key]
    for place in ("_parameters", "_buffers", "_modules"):
        held = attributes.get(place)
        if held is not None and key in held:
            return held[key]
    return None


# the types most module attributes have (flags, sizes, hook dicts): never a weight, so
# skipped before the slower ``isinstance`` check
_PLAIN_ATTRIBUTES = frozenset({bool, int, float, str, type(None), dict, OrderedDict, tuple, list})


def _held(module: torch.nn.Module) -> list[tuple[str, Any]]:
    """Plain attributes that may hold a weight (packed objects, sparse tensors)."""
    return [
        (k, v)
        for k, v in vars(module).items()
        if type(v) not in _PLAIN_ATTRIBUTES and isinstance(v, (torch.Tensor, torch.ScriptObject))
    ]


def _module_facts(
    name: str, module: torch.nn.Module, found: ModelFacts, seen: set[int], held: list[tuple[str, Any]]
) -> list[WeightFact]:
    facts: list[WeightFact] = []
    parameters, buffers, children = module._parameters, module._buffers, module._modules
    for packed, dtype in _packed_of(module, held) if held or "_packed_params" in children else ():
        if id(packed) in seen:
            continue
        seen.add(id(packed))
        try:
            layout, nonzeros = layout_and_nonzeros(packed, dtype)
        except RuntimeError:  # embeddings' packed rows have no unpack(): read weight()
            facts.append(_embedding_fact(name, module) or _unpackable_fact(name, module))
            continue
        found.packed[id(packed)] = layout
        facts.append(_packed_fact(name, module, layout, nonzeros))
    cells = children.get("_all_weight_values")
    if cells is not None:
        facts += _recurrent_facts(name, module, cells, found)
    masked = {key[: -len("_orig")] for key in parameters if key.endswith("_orig")}
    parametrizations = children.get("parametrizations")
    parametrized: list[str] = list(parametrizations._modules) if parametrizations is not None else []
    for key, param in parameters.items():
        if param is None or key == "bias" or param.ndim < 2:
            continue
        base = key[: -len("_orig")] if key.endswith("_orig") else key
        if id(param) in seen:  # tied: held (and counted) by an earlier module
            if base in masked and (mask := buffers.get(f"{base}_mask")) is not None:
                found.tied.setdefault(name, []).append(_masked_fact(name, base, param, mask))  # its own mask
            elif (owner := found.by_tensor.get(id(param))) is not None:
                if owner.representation == "prune" and key == base:  # the holder's mask is not
                    owner = _tensor_fact(name, key, param)  # applied here: this module reads ``*_orig``
                found.tied.setdefault(name, []).append(owner)
            continue
        seen.add(id(param))
        if base in masked and (mask := buffers.get(f"{base}_mask")) is not None:
            facts.append(_masked_fact(name, base, param, mask))
        else:
            facts.append(_tensor_fact(name, key, param))
        found.by_tensor[id(param)] = facts[-1]
    for key in parametrized:
        originals = _originals(getattr(parametrizations, key))
        if not originals or any(id(original) in seen for original in originals):
            continue
        seen.update(map(id, originals))
        # several tensors (weight_norm's g and v): the largest stands for the weight
        original = max(originals, key=lambda tensor: tensor.numel())
        facts.append(_parametrized_fact(name, key, module, original))
        found.by_tensor[id(original)] = facts[-1]  # its bytes are the fact's, not its list's
    for key, value in [*held, *buffers.items()]:
        if isinstance(value, torch.Tensor) and value.layout != torch.strided and id(value) not in seen:
            seen.add(id(value))
            fact = _tensor_fact(name, key, value)
            fact.logical_extra_params = fact.numel  # a weight parameters() does not list
            facts.append(fact)
            if any(buffer is value for buffer in buffers.values()):  # a param now, not a buffer too (R11b-7)
                found.sparse_buffers += value.numel()
                found.sparse_buffer_bytes += value.numel() * value.element_size()
    facts.extend(_library_facts(name, module))
    return facts


_RNN_WEIGHTS = ("weight_ih_l", "weight_hh_l")


def _recurrent_facts(name: str, module: torch.nn.Module, cells: Any, found: ModelFacts) -> list[WeightFact]:
    """A dynamic quantized LSTM/GRU (torch.ao): ``_all_weight_values`` holds one packed
    cell per layer and direction, ``(kind, biases, ..., [packed W_ih, packed W_hh])``;
    its weights are named as the float module's (``weight_ih_l0_reverse``)."""
    facts: list[WeightFact] = []
    directions = 2 if getattr(module, "bidirectional", False) else 1
    for index, cell in enumerate(getattr(cells, "_modules", {}).values()):
        state = getattr(getattr(cell, "param", None), "__getstate__", None)
        if state is None:
            continue
        try:
            cell_state = state()[0]
            kind, packed = cell_state[0], cell_state[4]
        except (RuntimeError, IndexError, TypeError):
            continue
        suffix = f"{index // directions}{'_reverse' if index % directions else ''}"
        for key, weight in zip(_RNN_WEIGHTS, packed, strict=False):
            if not is_packed(weight):
                continue
            layout, nonzeros = layout_and_nonzeros(weight, torch.float16 if "fp16" in str(kind) else None)
            fact = _packed_fact(name, module, layout, nonzeros)
            fact.name = f"{key}{suffix}"
            facts.append(fact)
    return facts


def _originals(parametrization_list: torch.nn.Module) -> list[torch.Tensor]:
    """The tensors a ``ParametrizationList`` keeps: ``original``, or ``original0``,
    ``original1``, ... when its right inverse returns several (``weight_norm``)."""
    if getattr(parametrization_list, "is_tensor", True):
        original = getattr(parametrization_list, "original", None)
        return [original] if isinstance(original, torch.Tensor) else []
    count = getattr(parametrization_list, "ntensors", 0)
    found = [getattr(parametrization_list, f"original{index}", None) for index in range(count)]
    return [tensor for tensor in found if isinstance(tensor, torch.Tensor)]


def _packed_of(module: torch.nn.Module, held: list[tuple[str, Any]]) -> list[tuple[Any, Any]]:
    found = [(v, None) for _, v in held if is_packed(v)]
    wrapper = module._modules.get("_packed_params")  # torch.ao Linear / Embedding wrappers
    if wrapper is not None:
        inner = vars(wrapper).get("_packed_params", vars(wrapper).get("_packed_weight"))
        if isinstance(inner, torch.ScriptObject):
            found.append((inner, vars(wrapper).get("dtype")))
    return found


def _embedding_fact(name: str, module: torch.nn.Module) -> WeightFact | None:
    """A torch.ao quantized Embedding/EmbeddingBag: ``weight()`` gives the quantized
    rows (quint8 8 bits, quint4x2 4 bits) with one float32 scale and one float32 zero
    point per row (``per_channel_affine_float_qparams``); a value is zero when it
    dequantizes to 0. None when it cannot be read."""
    read = getattr(module, "weight", None)
    try:
        weight = read() if callable(read) else None
    except RuntimeError:
        return None
    if not isinstance(weight, torch.Tensor) or not weight.is_quantized or weight.ndim != 2:
        return None
    rows, numel, bits = weight.shape[0], weight.numel(), bits_of(weight.dtype)
    fact = WeightFact(
        module=name,
        name="weight",
        representation=f"torch.ao static {_dtype_name(weight.dtype)} per_channel",
        shape=tuple(weight.shape),
        dtype=_dtype_name(weight.dtype),
        weight_bits=bits,
        n_scales=rows,
        storage_bytes=(numel * bits + 7) // 8,
        scale_bytes=8 * rows,
        ideal_scale_bytes=8 * rows,
        logical_extra_params=numel,
    )
    fact.pending = weight.dequantize
    return fact


def _unpackable_fact(name: str, module: torch.nn.Module) -> WeightFact:
    """A packed weight torch cannot open: named as unrecognised, with the logical shape
    an embedding declares when it does (its params still count)."""
    rows, dim = getattr(module, "num_embeddings", None), getattr(module, "embedding_dim", None)
    shape = (rows, dim) if isinstance(rows, int) and isinstance(dim, int) else ()
    numel = rows * dim if isinstance(rows, int) and isinstance(dim, int) else 0
    return WeightFact(
        module=name,
        name="weight",
        representation=f"unrecognised packed {type(module).__name__}",
        shape=shape,
        dtype="unknown",
        weight_bits=8,
        logical_extra_params=numel,
    )


def _packed_fact(
    name: str, module: torch.nn.Module, layout: PackedLayout, nonzeros: torch.Tensor
) -> WeightFact:
    """A torch.ao packed weight as the float weight it stands for; ``nonzeros`` (the
    unpacked weight's map of nonzeros) gives its rows' nonzeros and structure, so a pruned
    then quantized layer's effective integer ops skip its zeros as a float layer's FLOPs do."""
    numel = 1
    for d in layout.weight_shape:
        numel *= d
    bits = bits_of(layout.dtype)
    kind = "torch.ao dynamic" if ".dynamic." in type(module).__module__ else "torch.ao static"
    fact = WeightFact(
        module=name,
        name="weight",
        representation=f"{kind} {layout.dtype} {layout.scheme}".replace(" none", ""),
        shape=layout.weight_shape,
        dtype=layout.dtype,
        weight_bits=bits,
        nonzero=layout.nonzero,
        n_scales=layout.n_scales,
        storage_bytes=(numel * bits + 7) // 8,
        scale_bytes=layout.scale_bytes,  # float64 scale + int64 zero point each
        ideal_scale_bytes=layout.scale_bytes,
        logical_extra_params=numel + layout.bias_numel,
    )
    _count_nonzeros(fact, nonzeros)
    return fact


def _masked_fact(name: str, base: str, original: torch.Tensor, mask: torch.Tensor) -> WeightFact:
    fact = _tensor_fact(name, base, original, values=mask)
    fact.representation = "prune"
    fact.storage_bytes += mask.numel() * mask.element_size()  # the mask buffer exists too
    return fact


def _parametrized_fact(name: str, key: str, module: torch.nn.Module, original: torch.Tensor) -> WeightFact:
    fact = _tensor_fact(name, key, original)
    fact.representation = "parametrize"
    if not original.is_meta:

        def parametrized() -> torch.Tensor:
            # the parametrization's own state (spectral_norm's _u, _v) is put back after
            with GradMode(False), undone(module):
                return getattr(module, key).detach()

        fact.pending = parametrized
    return fact


@lru_cache(maxsize=64)
def _subclass_family(kind: type) -> str | None:
    """ "torchao" or "semi_structured" for those tensor subclasses (known by the names
    of their bases: neither library is imported here), else None."""
    bases = [c.__name__ for c in kind.__mro__]
    if "TorchAOBaseTensor" in bases:
        return "torchao"
    if "SparseSemiStructuredTensor" in bases:
        return "semi_structured"
    return None


@lru_cache(maxsize=64)
def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _tensor_fact(name: str, key: str, tensor: torch.Tensor, values: torch.Tensor | None = None) -> WeightFact:
    """A plain, masked, sparse-layout or subclass tensor."""
    kind = type(tensor).__name__
    family = _subclass_family(type(tensor))
    if family == "torchao":
        return _torchao_fact(name, key, tensor)
    if family == "semi_structured":
        numel = tensor.numel()
        return WeightFact(
            module=name,
            name=key,
            representation="semi_structured",
            shape=tuple(tensor.shape),
            dtype=str(tensor.dtype).removeprefix("torch."),
            weight_bits=bits_of(tensor.dtype),
            nonzero=numel // 2,
            nm=(2, 4),
            storage_bytes=sum(t.numel() * t.element_size() for t in _inner_tensors(tensor)),
        )
    strided = tensor.layout == torch.strided
    if kind not in ("Parameter", "Tensor") and strided:
        return _unrecognised(name, key, tensor, kind)
    dtype = _dtype_name(tensor.dtype)
    fact = WeightFact(
        module=name,
        name=key,
        representation="dense",
        shape=tuple(tensor.shape),
        dtype=dtype,
        weight_bits=bits_of(tensor.dtype),
        storage_bytes=tensor.numel() * tensor.element_size(),
    )
    if not strided:
        return _sparse_layout_fact(fact, tensor)
    if not tensor.is_floating_point():
        return _unrecognised(name, key, tensor, f"{kind} of {dtype}")
    source = tensor if values is None else values
    if not source.is_meta:
        fact.pending = _nonzero_reader(source)  # counted when profile() finishes (ModelFacts.count)
    return fact


def _nonzero_reader(source: torch.Tensor) -> Callable[[], torch.Tensor] | None:
    """What ``_count_nonzeros`` reads of a floating weight: its values; a float8 one's widened
    to bfloat16, exactly (every float8 value, e8m0's 2^-127 .. 2^127 too, is a bfloat16; torch
    counts no float8 nonzeros on the CPU); None for a packed float4 (two values a byte, none
    readable alone): its nonzeros stay unknown."""
    if source.element_size() > 1:
        return source.detach
    if "_x2" in str(source.dtype):
        return None
    return lambda: source.detach().to(torch.bfloat16)


def _unrecognised(name: str, key: str, tensor: torch.Tensor, kind: str) -> WeightFact:
    return WeightFact(
        module=name,
        name=key,
        representation=f"unrecognised {kind}",
        shape=tuple(tensor.shape),
        dtype=str(tensor.dtype).removeprefix("torch."),
        weight_bits=bits_of(tensor.dtype),
        storage_bytes=tensor.numel() * tensor.element_size(),
    )


def _count_nonzeros(fact: WeightFact, values: torch.Tensor) -> None:
    """nonzero; when some weights are zero also the per-row nonzeros, the all-zero
    input columns and an N:M pattern (only possible at 50 % sparsity or more).

    ``count_nonzero`` over the whole tensor is one fast pass; per row or column it is
    many times slower, so a weight with few zeros (a padding row, an exact zero of a
    random init) is counted from the positions of its zeros instead. A large weight is
    counted in ``_CHUNKS`` contiguous pieces (as fast as one pass), so that only the
    pieces holding a zero are searched for their positions."""
    pieces = _piece_counts(values)
    nonzero = sum(count for _, _, count in pieces) if pieces else int(torch.count_nonzero(values))
    fact.nonzero = nonzero
    if nonzero == values.numel() or values.ndim < 2:
        return
    if nonzero == 0:  # a zero-initialised head: every row and input channel empty, no N:M pattern
        fact.row_nonzero, fact.zero_columns = [0] * values.shape[0], values.shape[1]
        return
    rows = values.reshape(values.shape[0], -1)
    zeros = values.numel() - nonzero
    if zeros <= values.numel() // _FEW_ZEROS:
        row_of, column_of = _zero_positions(values, pieces)
        per_row = torch.full((values.shape[0],), rows.shape[1], dtype=torch.int64)
        per_row -= torch.bincount(row_of, minlength=values.shape[0])
        fact.row_nonzero = per_row.tolist()
        column_size = values.numel() // values.shape[1]
        columns_zero = torch.bincount(column_of, minlength=values.shape[1]) == column_size
        fact.zero_columns = int(columns_zero.sum())
        return
    nonzeros = values != 0
    fact.row_nonzero = nonzeros.reshape(values.shape[0], -1).sum(1).tolist()
    columns = nonzeros.sum([d for d in range(values.ndim) if d != 1])  # in place: no copy
    fact.zero_columns = int((columns == 0).sum())
    if 2 * nonzero <= values.numel():
        fact.nm = n_m_pattern(rows)
        if fact.nm is None and values.ndim > 2:  # a conv's: along C_in at each kernel position (NVIDIA ASP)
            fact.nm = n_m_pattern(values.movedim(1, -1), width=values.shape[1])


_FEW_ZEROS = 64  # at most 1 zero in 64 weights: counted from the zeros' positions
_CHUNKS = 16  # pieces of a large weight counted apart (16 calls cost about one pass)
_CHUNKED_FROM = 1 << 20  # elements: below, one count_nonzero call


def _piece_counts(values: torch.Tensor) -> list[tuple[int, int, int]] | None:
    """(start, size, nonzeros) of each of ``_CHUNKS`` contiguous pieces of a large
    contiguous tensor, in flat order; None for a small or strided one (counted whole)."""
    if values.numel() < _CHUNKED_FROM or not values.is_contiguous():
        return None
    flat = values.view(-1)
    size = -(-flat.numel() // _CHUNKS)
    counts = torch.stack([torch.count_nonzero(piece) for piece in flat.split(size)]).tolist()
    return [(i * size, min(size, flat.numel() - i * size), count) for i, count in enumerate(counts)]


def _zero_positions(
    values: torch.Tensor, pieces: list[tuple[int, int, int]] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The row (dim 0) and input-channel (dim 1) index of every zero of ``values``,
    searched for only in the pieces that hold one."""
    if pieces is None:
        where = torch.nonzero(values == 0)  # (zeros, ndim) positions
        return where[:, 0], where[:, 1]
    flat = values.view(-1)
    found = [
        torch.nonzero(flat[start : start + size] == 0).flatten() + start
        for start, size, count in pieces
        if count < size
    ]
    index = torch.cat(found)
    column_size = values.numel() // (values.shape[0] * values.shape[1])  # a kernel's elements
    return index // (values.numel() // values.shape[0]), index // column_size % values.shape[1]


def n_m_pattern(rows: torch.Tensor, width: int | None = None) -> tuple[int, int] | None:
    """The smallest M in {4, 8, 16} with at most N <= M/2 nonzeros in every group of M
    consecutive elements along the reduction (last) dim, and that N; None if none.
    ``width``: the length of the dim the groups run along (the last), when ``rows`` has
    more than two dims."""
    width = width or rows.shape[-1]
    for m in (4, 8, 16):
        if width % m:
            continue
        most = int(torch.count_nonzero(rows.reshape(-1, m), dim=1).max())
        if most == 0:  # all zero: no pattern (every output row is zero: "channel")
            return None
        if most <= m // 2:
            return (most, m)
    return None


def _sparse_layout_fact(fact: WeightFact, tensor: torch.Tensor) -> WeightFact:
    layout = str(tensor.layout).removeprefix("torch.")
    fmt = {
        "sparse_coo": "coo",
        "sparse_csr": "csr",
        "sparse_csc": "csc",
        "sparse_bsr": "bsr",
        "sparse_bsc": "bsc",
    }.get(layout, layout)
    values = tensor._values() if fmt == "coo" else tensor.values()
    fact.representation = layout
    fact.sparse_format = fmt
    fact.dtype = str(values.dtype).removeprefix("torch.")
    fact.weight_bits = bits_of(values.dtype)
    fact.nonzero = (
        int(values.numel())
        if fmt != "coo"
        else int(tensor._nnz() * values[0].numel() if values.ndim > 1 else tensor._nnz())
    )
    fact.storage_bytes = sum(t.numel() * t.element_size() for t in _inner_tensors(tensor))
    if not values.is_meta and tensor.ndim == 2:
        nonzero = fact.nonzero
        _count_nonzeros(fact, tensor.to_dense())  # rows and patterns; stored zeros still count as stored
        fact.nonzero = nonzero
    return fact


def _inner_tensors(tensor: torch.Tensor) -> list[torch.Tensor]:
    """The storages that really hold a sparse or subclass tensor."""
    if tensor.layout == torch.sparse_coo:
        return [tensor._indices(), tensor._values()]
    if tensor.layout in (torch.sparse_csr, torch.sparse_bsr):
        return [tensor.crow_indices(), tensor.col_indices(), tensor.values()]
    if tensor.layout in (torch.sparse_csc, torch.sparse_bsc):
        return [tensor.ccol_indices(), tensor.row_indices(), tensor.values()]
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if flatten is None:
        return [tensor]
    names, _ = flatten()
    inner = [getattr(tensor, n) for n in names]
    return [t for t in inner if isinstance(t, torch.Tensor)]


def _torchao_fact(name: str, key: str, tensor: Any) -> WeightFact:
    """torchao tensor subclasses: ``qdata`` holds the values, ``target_dtype`` (if set)
    the bits they stand for, ``block_size`` the quantization groups."""
    qdata = getattr(tensor, "qdata", None)
    target = getattr(tensor, "target_dtype", None)
    stored = qdata.dtype if isinstance(qdata, torch.Tensor) else tensor.dtype
    bits = bits_of(target if target is not None else stored)
    shape = tuple(tensor.shape)
    inner = _inner_tensors(tensor)
    scales = [t for t in inner if t is not qdata]
    block = getattr(tensor, "block_size", None)
    group = int(block[-1]) if block and 0 < int(block[-1]) < shape[-1] else None
    scale = getattr(tensor, "scale", None)
    zero = getattr(tensor, "zero_point", None)
    n_scales = int(scale.numel()) if isinstance(scale, torch.Tensor) else 0
    fact = WeightFact(
        module=name,
        name=key,
        representation=f"torchao {type(tensor).__name__}",
        shape=shape,
        dtype=str(target or stored).removeprefix("torch."),
        weight_bits=bits,
        group_size=group,
        n_scales=n_scales,
        storage_bytes=qdata.numel() * qdata.element_size() if isinstance(qdata, torch.Tensor) else 0,
        scale_bytes=sum(t.numel() * t.element_size() for t in scales),
        ideal_scale_bytes=sum(t.numel() * t.element_size() for t in scales),
    )
    if isinstance(qdata, torch.Tensor) and qdata.shape == shape and not qdata.is_meta:

        def differences() -> torch.Tensor:  # a value equal to its zero point is a zero
            if qdata.is_floating_point():  # float8: no zero point, widen to count
                return qdata.to(torch.float32)
            values = qdata.to(torch.int32)
            if isinstance(zero, torch.Tensor) and zero.numel():
                values = values - _expand_blocks(zero.to(torch.int32), shape)
            return values

        fact.pending = differences
    return fact


def _torchao_activation_bits(name: str, module: torch.nn.Module, found: ModelFacts) -> None:
    """A torchao weight that quantizes the layer's activations before its matmul
    (``IntxUnpackedToInt8Tensor.activation_quantization = "int8_asym_per_token"``, from
    ``Int8DynamicActivationIntxWeightConfig``): the activations are ``int8``, though on a
    CPU without its kernels torchao rounds them and runs a float matmul."""
    mode = getattr(module._parameters.get("weight"), "activation_quantization", None)
    bits = re.match(r"u?int(\d+)", str(getattr(mode, "value", mode) or ""))
    if bits:
        found.qat_act_bits[name] = int(bits.group(1))


def _expand_blocks(per_block: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A per-block tensor (one value per group) repeated to ``shape``."""
    out = per_block.reshape(*per_block.shape[: len(shape)], *([1] * max(0, len(shape) - per_block.ndim)))
    for dim, size in enumerate(shape):
        if out.shape[dim] != size:
            out = out.repeat_interleave(size // out.shape[dim], dim=dim)
    return out


def _library_facts(name: str, module: torch.nn.Module) -> list[WeightFact]:
    """bitsandbytes and GPTQ/AWQ-style packed linears, read from their attributes."""
    weight = module._parameters.get("weight")
    kind = type(weight).__name__ if weight is not None else ""
    if kind in ("Params4bit", "Int8Params"):
        return [_bitsandbytes_fact(name, weight, kind)]
    if not ("qweight" in module._buffers or "qweight" in module._parameters or "qweight" in vars(module)):
        return []
    qweight = getattr(module, "qweight", None)
    bits = getattr(module, "bits", getattr(module, "w_bit", None))
    if isinstance(qweight, torch.Tensor) and isinstance(bits, int):
        in_f = getattr(module, "infeatures", getattr(module, "in_features", None))
        out_f = getattr(module, "outfeatures", getattr(module, "out_features", None))
        if isinstance(in_f, int) and isinstance(out_f, int):
            group = getattr(module, "group_size", None)
            scales = [
                t
                for t in (getattr(module, "scales", None), getattr(module, "qzeros", None))
                if isinstance(t, torch.Tensor)
            ]
            return [
                WeightFact(
                    module=name,
                    name="qweight",
                    representation="gptq",
                    shape=(out_f, in_f),
                    dtype=f"int{bits}",
                    weight_bits=bits,
                    group_size=group if isinstance(group, int) and group > 0 else None,
                    n_scales=int(scales[0].numel()) if scales else 0,
                    storage_bytes=qweight.numel() * qweight.element_size(),
                    scale_bytes=sum(t.numel() * t.element_size() for t in scales),
                    ideal_scale_bytes=sum(t.numel() * t.element_size() for t in scales),
                    logical_extra_params=out_f * in_f,
                )
            ]
    return []


def _bitsandbytes_fact(name: str, weight: Any, kind: str) -> WeightFact:
    state = getattr(weight, "quant_state", None)
    shape = tuple(getattr(state, "shape", None) or weight.shape)
    numel = 1
    for d in shape:
        numel *= d
    bits = 4 if kind == "Params4bit" else 8
    block = int(getattr(state, "blocksize", 64) or 64) if bits == 4 else None
    n_scales = numel // block if block else shape[0]
    return WeightFact(
        module=name,
        name="weight",
        representation="bitsandbytes",
        shape=shape,
        dtype=f"int{bits}",
        weight_bits=bits,
        group_size=block,
        n_scales=n_scales,
        storage_bytes=weight.numel() * weight.element_size(),
        scale_bytes=4 * n_scales,
        ideal_scale_bytes=4 * n_scales,
        logical_extra_params=numel - weight.numel(),
    )
