"""Review b of probe 8's leave-no-trace change (probe8-review-b.md)."""

from __future__ import annotations

import torch

from flopmeter.tracing import recorder


class _Tagged(torch.Tensor):
    """A tensor subclass (its meta twin keeps the class)."""


def test_a_tensor_that_reuses_a_freed_ones_id_gets_a_twin_of_its_own_class():
    """R8b-1: the meta twins are cached by ``id``, without a reference to the tensor: a
    plain tensor freed after a profile leaves a twin that a later subclass tensor with the
    same id, dtype, shape and strides took (a plain twin for a subclass weight)."""
    weight = torch.randn(8, 8)
    recorder._twin(weight)  # the twin of a plain tensor, kept under its id
    weight.__class__ = _Tagged  # stands for a new tensor that took the freed one's id
    assert type(recorder._twin(weight)) is _Tagged  # _to_meta(weight)'s class
    assert type(recorder._to_meta(weight)) is _Tagged


def test_a_twin_is_kept_for_the_same_tensor():
    layer = torch.nn.Linear(4, 4)
    assert recorder._twin(layer.weight) is recorder._twin(layer.weight)
