"""In-place indexed writes move the slice they write, not the whole destination.

A KV cache of shape (1, 2, 64, 8) float32 is 1*2*64*8*4 = 4,096 bytes; each write
below puts 4 new positions (1, 2, 4, 8) = 64 values = 256 bytes into it."""

import pytest
import torch

import flopmeter

CACHE = (1, 2, 64, 8)


class Write(torch.nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how

    def forward(self, new):
        cache = torch.zeros(CACHE)
        positions = torch.arange(4)  # int64: 4*8 = 32 bytes
        scatter_index = torch.zeros(1, 2, 4, 8, dtype=torch.long)  # 64*8 = 512 bytes
        if self.how == "index_copy_":
            cache.index_copy_(2, positions, new)
        elif self.how == "setitem":
            cache[:, :, positions] = new
        elif self.how == "scatter_":
            cache.scatter_(2, scatter_index, new)
        elif self.how == "scatter_add_":
            cache.scatter_add_(2, scatter_index, new)
        elif self.how == "index_add_":
            cache.index_add_(2, positions, new)
        elif self.how == "index_copy":
            cache = cache.index_copy(2, positions, new)
        elif self.how == "mask":
            cache[cache > 0] = 1.0
        return cache


def _op(how, name):
    report = flopmeter.profile(Write(how), torch.randn(1, 2, 4, 8))
    assert report.unsupported_ops() == {}
    return report.operators[name].cost


def test_index_copy_in_place_moves_the_slice():
    cost = _op("index_copy_", "aten.index_copy_")
    assert cost.bytes_read == 32 + 256  # positions + the new values
    assert cost.bytes_written == 256  # 64 values, not the 4,096-byte cache
    assert cost.flops == 0


def test_setitem_index_put_moves_the_slice():
    cost = _op("setitem", "aten.index_put_")
    # cache[:, :, positions]: 4 positions x the 1*2 skipped dims x 8 trailing = 64 values
    assert (cost.bytes_read, cost.bytes_written) == (32 + 256, 256)


def test_scatter_in_place_reads_index_and_source():
    cost = _op("scatter_", "aten.scatter_")
    assert (cost.bytes_read, cost.bytes_written, cost.flops) == (512 + 256, 256, 0)


def test_scatter_add_in_place_also_reads_what_it_adds_to():
    cost = _op("scatter_add_", "aten.scatter_add_")
    # 64 adds; reads index 512 + source 256 + old values 256; writes 256
    assert (cost.flops, cost.bytes_read, cost.bytes_written) == (64, 512 + 256 + 256, 256)


def test_index_add_in_place():
    cost = _op("index_add_", "aten.index_add_")
    # 64 adds; reads positions 32 + source 256 + old values 256; writes 256
    assert (cost.flops, cost.bytes_read, cost.bytes_written) == (64, 32 + 256 + 256, 256)


def test_out_of_place_index_copy_writes_a_whole_new_tensor():
    cost = _op("index_copy", "aten.index_copy")
    assert (cost.bytes_read, cost.bytes_written) == (4096 + 32 + 256, 4096)


def test_boolean_mask_write_keeps_the_whole_destination_rule():
    """How many positions a mask picks depends on values: the count stays the upper
    bound (mask 1*2*64*8 = 1,024 bytes of bool + the 4,096-byte cache read and written)."""
    report = flopmeter.profile(Write("mask"), torch.randn(1, 2, 4, 8), shapes_only=False)
    cost = report.operators["aten.index_put_"].cost
    assert (cost.bytes_read, cost.bytes_written) == (4096 + 1024 + 4, 4096)


@pytest.mark.parametrize("cache_class", ["StaticCache"])
def test_static_cache_decode_step_writes_one_slot(cache_class):
    """A Llama decode step with transformers' StaticCache: each layer's index_copy_
    writes one token's keys (and values): 1 x 2 kv heads x 1 x 16 head_dim x 4 B = 128 B."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        num_hidden_layers=2,
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=100,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    cache = getattr(transformers, cache_class)(config=config, max_cache_len=32)
    ids = torch.zeros(1, 1, dtype=torch.long)
    report = flopmeter.profile(
        model,
        {"input_ids": ids, "cache": cache, "use_cache": True},
    )
    cost = report.operators["aten.index_copy_"].cost
    calls = report.operators["aten.index_copy_"].calls
    assert calls == 2 * 2  # keys and values, 2 layers
    assert cost.bytes_written == calls * 128
    assert cost.bytes_read == calls * (128 + 8)  # the token's values + one int64 position
