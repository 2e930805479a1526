"""Findings of the probe-3 zoo sweep (docs/probe-3/zoo.md), each with the case that showed it."""

from __future__ import annotations

import pytest
import torch

import flopmeter


class NoiseInjection(torch.nn.Module):
    """Adds noise drawn from its own generator (as noise-injection and diffusion code do)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.noise = torch.Generator().manual_seed(0)
        self.held = [torch.Generator().manual_seed(1)]  # one level inside a container too

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (
            self.linear(x)
            + torch.randn(x.shape, generator=self.noise)
            + torch.rand(1, generator=self.held[0])
        )


def _states(model: NoiseInjection) -> list[torch.Tensor]:
    return [model.noise.get_state(), model.held[0].get_state()]


def test_a_models_own_generator_is_left_where_it_was() -> None:
    model = NoiseInjection()
    before = _states(model)
    for shapes_only in (None, True, False):
        report = flopmeter.profile(model, torch.randn(2, 4), shapes_only=shapes_only)
        assert report.macs == 2 * 4 * 4  # one Linear(4, 4) on 2 rows: 32 MACs
        assert all(map(torch.equal, _states(model), before)), shapes_only


def test_the_next_forward_after_a_profile_draws_what_it_would_have() -> None:
    model, twin = NoiseInjection(), NoiseInjection()
    twin.load_state_dict(model.state_dict())
    x = torch.randn(2, 4)
    flopmeter.profile(model, x)
    assert torch.equal(model(x), twin(x))


def test_a_generator_given_as_an_input_is_left_where_it_was() -> None:
    class Sampler(torch.nn.Module):
        def forward(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            return x + torch.randn(x.shape, generator=generator)

    generator = torch.Generator().manual_seed(0)
    before = generator.get_state()
    flopmeter.profile(Sampler(), {"x": torch.randn(2, 4), "generator": generator})
    assert torch.equal(generator.get_state(), before)


class RandomMask(torch.nn.Module):
    """A parametrization that draws (DropConnect written as a parametrization)."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * (torch.rand(weight.shape) > 0.5)


def test_evaluating_a_parametrized_weight_keeps_the_random_stream() -> None:
    linear = torch.nn.Linear(8, 8)
    torch.nn.utils.parametrize.register_parametrization(linear, "weight", RandomMask())
    x = torch.randn(2, 8)
    state = torch.get_rng_state()
    report = flopmeter.profile(linear, x)
    assert torch.equal(torch.get_rng_state(), state)
    assert report.macs == 2 * 8 * 8  # 128: the mask multiply is overhead, not model MACs


class TransposedAttention(torch.nn.Module):
    """timm's cpubone: queries whose last dim is not contiguous (a conv's channels read as
    (head_dim, tokens), then transposed), and the output transposed back and flattened."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x.transpose(-1, -2)  # (1, 3, 49, 32), strides (4704, 1568, 1, 49)
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q)
        return out.transpose(-1, -2).reshape(1, -1)


def test_attention_on_queries_with_a_strided_last_dim_is_laid_out_as_on_the_cpu() -> None:
    # the CPU's fused kernel needs a last-dim stride of 1, so this runs the math path,
    # whose output is contiguous: the flatten after the transpose copies, as a clone of
    # 3 * 32 * 49 = 4,704 floats = 18,816 bytes read and written
    x = torch.randn(1, 3, 32, 49)
    shapes = flopmeter.profile(TransposedAttention(), x, shapes_only=True)
    values = flopmeter.profile(TransposedAttention(), x, shapes_only=False)
    for report in (shapes, values):
        assert report.macs == 3 * 49 * 49 * 32 * 2  # QK^T and AV: 460,992
        clone = report.by_operator()["aten.clone"]
        assert (clone.calls, clone.cost.bytes_read, clone.cost.bytes_written) == (1, 18_816, 18_816)
    assert (shapes.bytes_read, shapes.bytes_written) == (values.bytes_read, values.bytes_written)


class Annotated(torch.nn.Module):
    """A forward annotated for torch.profiler, as training code and nn.DataParallel do."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autograd.profiler.record_function("block"):
            return self.linear(x)


def test_profiler_annotations_are_not_unsupported_ops() -> None:
    x = torch.randn(2, 4)
    for model in (Annotated(), torch.nn.DataParallel(torch.nn.Linear(4, 3))):
        for shapes_only in (True, False):
            report = flopmeter.profile(model, x, shapes_only=shapes_only)
            assert report.unsupported_ops() == {}
            assert report.macs == 2 * 4 * 3  # 24


class KeyCache:
    """A key cache a decode step extends (as transformers' DynamicCache.update does)."""

    def __init__(self, keys: torch.Tensor) -> None:
        self.keys = keys

    def update(self, new: torch.Tensor) -> torch.Tensor:
        self.keys = torch.cat([self.keys, new], dim=1)
        return self.keys


class DecodeStep(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.key = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, cache: KeyCache) -> torch.Tensor:
        keys = cache.update(self.key(x))  # (1, n + 1, 8)
        return x @ keys.transpose(1, 2)  # (1, 1, n + 1)


def test_a_cache_given_as_an_input_is_left_as_it_was() -> None:
    keys = torch.randn(1, 5, 8)
    cache = KeyCache(keys)
    model, x = DecodeStep(), torch.randn(1, 1, 8)
    for shapes_only in (None, True, False, None):
        report = flopmeter.profile(model, {"x": x, "cache": cache}, shapes_only=shapes_only)
        # key projection 8*8 = 64, scores over 5 + 1 keys: 6*8 = 48, so 112 every time
        assert report.macs == 64 + 48, shapes_only
        assert cache.keys is keys  # not extended, no meta tensor left in it
    assert model(x, cache).shape == (1, 1, 6)  # the caller's cache still works


def test_a_transformers_cache_is_left_as_it_was(tiny_llama_config: object) -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(tiny_llama_config).eval()
    with torch.no_grad():
        cache = model(torch.randint(0, 100, (1, 12)), use_cache=True).past_key_values
    step = {"input_ids": torch.randint(0, 100, (1, 1)), "past_key_values": cache, "use_cache": True}
    # per layer: q, o 64*64 + k, v 64*32 = 12,288; MLP 3*64*128 = 24,576; attention over
    # 12 + 1 keys: 4 heads * 13 * 16 * 2 = 1,664; two layers + lm_head 64*100 = 83,456
    for shapes_only in (None, True, False):
        assert flopmeter.profile(model, step, shapes_only=shapes_only).macs == 83_456
        assert cache.get_seq_length() == 12
    with torch.no_grad():
        model(**step)  # a meta tensor left in the cache would fail here
    assert cache.get_seq_length() == 13


def test_a_mapping_of_keyword_inputs_is_taken_as_a_dict() -> None:
    """transformers' tokenizers return a BatchEncoding (a UserDict), which users pass on."""
    from collections import UserDict

    class Keywords(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
            return self.linear(x) * scale

    report = flopmeter.profile(Keywords(), UserDict({"x": torch.randn(2, 4), "scale": 2.0}))
    assert (report.macs, report.batch_size) == (2 * 4 * 3, 2)  # 24 MACs for 2 rows


SEEN_KEYS: list[int] = []  # outside the model: what each call of ``Watched`` attended to


class Watched(DecodeStep):
    def forward(self, x: torch.Tensor, cache: KeyCache) -> torch.Tensor:
        out = super().forward(x, cache)
        SEEN_KEYS.append(out.shape[-1])
        return out


def test_every_timed_decode_step_sees_the_cache_it_was_given() -> None:
    keys = torch.randn(1, 5, 8)
    cache = KeyCache(keys)
    SEEN_KEYS.clear()
    flopmeter.benchmark(
        Watched(), {"x": torch.randn(1, 1, 8), "cache": cache}, warmup=2, repeat=3, per_module=True
    )
    assert SEEN_KEYS and set(SEEN_KEYS) == {6}  # 5 cached keys + 1 new, in every run
    assert cache.keys is keys


class BroadcastPermuted(torch.nn.Module):
    """torchvision mvit's relative positions: a permuted tensor broadcast against another,
    then flattened. The CPU lays the sum out after its inputs' strides, not contiguous."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.permute(2, 0, 1)[..., None] + y  # (4, 2, 3, 1) + (4, 2, 1, 5), strides (5, 60, 20, 1)
        return total.reshape(8, 15)


def test_a_broadcast_sum_of_permuted_inputs_is_laid_out_as_on_the_cpu() -> None:
    # (4, 2, 3, 5) is not contiguous on the CPU, so the reshape copies it: a clone of
    # 4 * 2 * 3 * 5 = 120 floats = 480 bytes read and written, in both modes
    inputs = (torch.randn(2, 3, 4), torch.randn(4, 2, 1, 5))
    shapes = flopmeter.profile(BroadcastPermuted(), inputs, shapes_only=True)
    values = flopmeter.profile(BroadcastPermuted(), inputs, shapes_only=False)
    for report in (shapes, values):
        clone = report.by_operator()["aten.clone"]
        assert (clone.calls, clone.cost.bytes_read, clone.cost.bytes_written) == (1, 480, 480)
        assert report.flops == 120  # one add per output element
    assert (shapes.bytes_read, shapes.bytes_written) == (values.bytes_read, values.bytes_written)
