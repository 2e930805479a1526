"""The recorder's bookkeeping: argument lists, live memory, parameters' meta twins."""

import gc

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.tracing.events import OpEvent, TensorMeta
from flopmeter.tracing.modules import ModuleStack
from flopmeter.tracing.recorder import OpRecorder, _twin


def meta(*shape: int) -> TensorMeta:
    return TensorMeta(shape, "float32", 4)


def test_tensor_inputs_in_order_through_lists_and_keywords():
    a, b, c, d = meta(1), meta(2), meta(3), meta(4)
    event = OpEvent("aten.cat", ([a, b], 0), {"out": c, "extra": (d, None)}, (meta(3),))
    assert event.tensor_inputs() == [a, b, c, d]
    assert event.tensor_inputs() is event.tensor_inputs()  # worked out once


def test_live_memory_counts_a_tensor_once_and_frees_it():
    recorder = OpRecorder(ModuleStack(nn.Identity()), {})
    tensor = torch.empty(4, 8)  # 4*8*4 = 128 bytes
    recorder._allocated(tensor)
    recorder._allocated(tensor)  # an op may hand back a tensor it was given
    assert (recorder.live_bytes, recorder.peak_bytes) == (128, 128)
    del tensor
    assert (recorder.live_bytes, recorder.peak_bytes) == (0, 128)


def test_meta_twins_follow_a_parameter_that_changes_shape():
    layer = nn.Linear(4, 3)
    x = torch.randn(2, 4)
    assert flopmeter.profile(layer, x).macs == 2 * 4 * 3  # 24
    first = _twin(layer.weight)
    assert _twin(layer.weight) is first  # kept between profiles
    with torch.no_grad():
        layer.weight.data = torch.randn(5, 4)  # same Parameter object, new shape
        layer.bias.data = torch.randn(5)
    assert flopmeter.profile(layer, x).macs == 2 * 4 * 5  # 40
    assert _twin(layer.weight) is not first and _twin(layer.weight).shape == (5, 4)


def test_the_garbage_collector_is_paused_only_during_a_profile():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(gc.isenabled())
            return x * 2

    assert gc.isenabled()
    flopmeter.profile(Probe(), torch.randn(2))
    with pytest.raises(flopmeter.ModelError):
        flopmeter.profile(nn.Linear(2, 2), torch.randn(1, 3))
    assert seen == [False] and gc.isenabled()  # back on, also after a failure
    gc.disable()
    try:
        flopmeter.profile(Probe(), torch.randn(2))
        assert not gc.isenabled()  # a user's choice is kept
    finally:
        gc.enable()
