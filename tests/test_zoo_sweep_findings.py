"""Findings of the probe-3 zoo sweep (probe3-zoo.md), each with the case that showed it."""

from __future__ import annotations

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
