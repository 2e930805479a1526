"""The batch size of a profile: what ``per_sample()`` divides by.

The leading dimension of the first input tensor, except where torch itself takes the
input otherwise: a torchvision detection model batches the list of (C, H, W) images it
is given, a PackedSequence holds ``batch_sizes[0]`` sequences, a torch layer given one
unbatched sample gives it a batch of 1 itself, and a sequence-first torch layer
(``batch_first=False``) given a (seq, batch, features) input reads its batch at dim 1.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils._pytree import tree_flatten

from .tracing.events import OpEvent
from .tracing.model_walk import ModelWalk
from .tracing.run import Trace


def first_input(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    """The first input tensor with at least one dim (positional, then keyword)."""
    return next((t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.ndim), None)


def _leaves_and_packed(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The inputs' leaves, a PackedSequence (a named tuple) kept whole, in a tuple or dict too."""
    return tree_flatten((args, kwargs), is_leaf=lambda leaf: isinstance(leaf, PackedSequence))[0]


def batch_before_the_run(walk: ModelWalk, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """The first input's leading dimension (1 without one), or the number of images a
    model holding a torchvision detection transform is given (the first image's leading
    dimension is its channels); an empty batch is refused."""
    if any(kind.__name__ == "GeneralizedRCNNTransform" for kind in walk.kinds):
        images = kwargs["images"] if "images" in kwargs else next(iter([*args, *kwargs.values()]), None)
        if isinstance(images, (list, tuple)) and all(isinstance(image, torch.Tensor) for image in images):
            if not images:
                raise ValueError("the batch is empty: the detection model was given a list of no images")
            return len(images)
    packed = next((a for a in _leaves_and_packed(args, kwargs) if isinstance(a, PackedSequence)), None)
    if packed is not None:  # its data is (all tokens, features); batch_sizes[0] sequences
        return int(packed.batch_sizes[0])
    first = first_input(args, kwargs)
    if first is None:
        return 1
    if first.shape[0] == 0:
        raise ValueError(
            f"the batch is empty: the first input has shape {tuple(first.shape)}, and a batch of 0 "
            "has nothing to count; give at least one sample (or batch_size= if the leading "
            "dimension is not the batch)"
        )
    return int(first.shape[0])


# ops torch's layers use to give an unbatched input its batch of one (Conv: unsqueeze(0);
# Linear on a vector: a view as one row; RNNs: unsqueeze at their batch dim)
_ADDS_A_BATCH_OF_ONE = frozenset({"aten.unsqueeze", "aten.view", "aten.reshape", "aten._unsafe_view"})
_MHA = "nn.functional.multi_head_attention_forward"


def _one_unbatched_sample(first: torch.Tensor, event: OpEvent, walk: ModelWalk) -> bool:
    """Whether the first input is one unbatched sample, as the torch layer that first reads
    it (``event``: the input tensor itself, not one of its shape) takes it: a Conv or Linear
    that makes it (1, *shape) (a (C, H, W) image, an (I,) vector), an RNN that inserts its
    batch dim of 1 into an (L, H) sequence, a MultiheadAttention given an (L, E) query. Its
    leading dimension is then not the batch: the batch is 1. A model's own code that adds
    a dim (for an RNN's layer dim, say) is not a layer taking one sample."""
    module = walk.module(event.module)
    shape = tuple(first.shape)
    inputs, outputs = event.tensor_inputs(), event.outputs
    if not inputs or inputs[0].shape != shape:
        return False
    if event.op == _MHA:
        return isinstance(module, torch.nn.MultiheadAttention) and len(shape) == 2
    if event.op not in _ADDS_A_BATCH_OF_ONE or len(outputs) != 1:
        return False
    made = outputs[0].shape
    if isinstance(module, (torch.nn.modules.conv._ConvNd, torch.nn.Linear)):
        return made == (1, *shape)
    if isinstance(module, torch.nn.RNNBase):
        return len(shape) == 2 and made in ((1, *shape), (shape[0], 1, shape[1]))
    return False


def batch_after_the_run(
    batch: int, trace: Trace, args: tuple[Any, ...], kwargs: dict[str, Any], walk: ModelWalk
) -> int:
    """``batch`` (from ``batch_before_the_run``) corrected by the layer that first read
    the first input: 1 for one unbatched sample, dim 1 for a sequence-first layer."""
    first = first_input(args, kwargs)
    index = trace.first_input_event
    if first is None or index is None or index >= len(trace.events):
        return batch  # no op of the run read the input tensor itself
    event = trace.events[index]
    if batch > 1 and _one_unbatched_sample(first, event, walk):
        return 1
    across = _sequence_first_batch(first, event, walk)
    return batch if across is None else across


# torch layers whose batch_first=False (their default) puts the batch at dim 1
_SEQUENCE_LAYERS = (
    nn.RNNBase,
    nn.MultiheadAttention,
    nn.Transformer,
    nn.TransformerEncoder,
    nn.TransformerDecoder,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
)


def _sequence_first_batch(first: torch.Tensor, event: OpEvent, walk: ModelWalk) -> int | None:
    """The batch of a (seq, batch, features) first input that a sequence-first torch layer
    reads itself (``event``, the op that first reads it, runs inside that layer): its dim
    1. None when another layer or the model's own code reads it first, or the layer is
    batch-first."""
    if first.ndim != 3:
        return None
    name: str | None = event.module
    while name is not None:  # the innermost enclosing sequence layer
        module = walk.module(name)
        if isinstance(module, _SEQUENCE_LAYERS):  # a subclass's own forward may reorder dims
            torch_forward = type(module).forward.__module__.startswith("torch.")
            return None if _batch_first(module) or not torch_forward else int(first.shape[1])
        name = name.rpartition(".")[0] if name else None
    return None


def _batch_first(layer: nn.Module) -> bool:
    """A sequence layer's batch_first (a transformer layer keeps it in its attention)."""
    if hasattr(layer, "batch_first"):
        return bool(layer.batch_first)
    if isinstance(layer, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        return bool(layer.self_attn.batch_first)
    if isinstance(layer, (nn.TransformerEncoder, nn.TransformerDecoder)) and len(layer.layers):
        return _batch_first(layer.layers[0])
    return True  # nothing says otherwise: keep the leading dimension
