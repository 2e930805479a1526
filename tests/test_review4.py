"""Review-4 findings (review4.md): each test failed before its fix."""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.utils.rnn import pack_padded_sequence

import flopmeter
from test_zoo_sweep_findings import DecodeStep, KeyCache


def test_a_cache_made_with_grad_on_is_left_as_it_was() -> None:
    # P4-R1: keys a forward made with autograd on are non-leaf tensors, which deepcopy
    # refuses; the run then used the caller's cache and left meta tensors in it
    model, x = DecodeStep(), torch.randn(1, 1, 8)
    keys = model.key(torch.randn(1, 5, 8))  # non-leaf, requires grad
    cache = KeyCache(keys)
    for shapes_only in (True, False):
        report = flopmeter.profile(model, {"x": x, "cache": cache}, shapes_only=shapes_only)
        assert report.macs == 64 + 48, shapes_only  # key projection 8*8, scores 6*8
        assert cache.keys is keys and not keys.is_meta
    assert model(x, cache).shape == (1, 1, 6)


class BatchFirstLSTM(torch.nn.LSTM):
    """A sequence-first LSTM subclass whose own forward takes (batch, seq, features)."""

    def forward(self, x: torch.Tensor) -> Any:  # type: ignore[override]
        return super().forward(x.transpose(0, 1))


def test_a_sequence_layer_subclass_that_reorders_its_input_keeps_dim_0() -> None:
    # P4-R2: the model is an nn.LSTM (batch_first=False) but its own forward transposes
    # a (3, 7, 4) batch-first input: 3 sequences, not 7
    report = flopmeter.profile(BatchFirstLSTM(4, 5), torch.randn(3, 7, 4))
    assert report.batch_size == 3


class PackedInAContainer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(4, 5)

    def forward(self, inputs: dict[str, Any]) -> torch.Tensor:
        return self.lstm(inputs["packed"])[0].data


def test_a_packed_sequence_inside_a_dict_gives_its_sequences_as_the_batch() -> None:
    # P4-R3: three sequences of lengths 7, 5, 2: batch 3, not the 7 + 5 + 2 = 14 tokens
    packed = pack_padded_sequence(torch.randn(7, 3, 4), torch.tensor([7, 5, 2]))
    assert flopmeter.profile(PackedInAContainer(), ({"packed": packed},)).batch_size == 3
    assert flopmeter.profile(PackedInAContainer(), {"inputs": {"packed": packed}}).batch_size == 3


def test_random_inputs_built_from_input_shape_leave_the_random_stream() -> None:
    # P4-R6: profile(..., input_shape=..., shapes_only=False) and benchmark(input_shape=)
    # drew their random inputs from the caller's stream, so the next draw after a
    # profile differed from the one without it (kept_random_state's promise)
    model = torch.nn.Linear(10, 2)
    torch.manual_seed(0)
    expected = torch.rand(3)
    for run in (
        lambda: flopmeter.profile(model, input_shape=(2, 10), shapes_only=False),
        lambda: flopmeter.benchmark(model, input_shape=(2, 10), warmup=1, repeat=1),
    ):
        torch.manual_seed(0)
        run()
        assert torch.equal(torch.rand(3), expected)
