"""Weights computed from parameters: which parameter stands for the weight a matmul reads.

``torch.nn.utils.parametrize`` (``parametrizations.weight_norm``, ``orthogonal``,
``spectral_norm``) and the older hook forms (``torch.nn.utils.weight_norm``,
``torch.nn.utils.spectral_norm``) compute a module's ``weight`` from parameters at each call.
The convention here: the matmul weight is the computed weight, so it counts its size once, held
by the parameter stored in its shape (``original`` with one original; with several
(weight norm's g and v) the largest, v: torch checks that a parametrization returns the shape
the weight had unless registered ``unsafe``; ``weight_v``, ``weight_orig`` of the hook forms).
The rest (weight norm's g, out_features x 1, which broadcasts to v; parameters of a
parametrization module) are parameters, not matmul weights. Several originals of which none
broadcasts to another (a low-rank parametrization's U and V from ``right_inverse``: none in
the weight's shape) are stored pieces of the weight: each a matmul weight, as stored factors
are (N_mm counts parameters). Nothing here computes a weight (spectral norm's forward
would run a power-iteration step on the user's buffers in training mode).
"""

from __future__ import annotations

from itertools import chain

import torch
from torch.nn.utils import parametrize
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm


def stored_weight(module: torch.nn.Module, name: str = "weight") -> torch.Tensor | None:
    """The parameter that holds ``module.<name>``'s values in its shape, without computing
    it: a parametrized tensor's (largest) original, the hook forms' ``<name>_v`` or
    ``<name>_orig``, else the tensor itself (None where the module has no such tensor)."""
    if parametrize.is_parametrized(module, name):
        return _main_original(_parametrizations(module)[name])
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == name:
            return getattr(module, f"{name}_v")
        if isinstance(hook, SpectralNorm) and hook.name == name:
            return getattr(module, f"{name}_orig")
    tensor = getattr(module, name, None)
    return tensor if isinstance(tensor, torch.Tensor) else None


def weight_factors(model: torch.nn.Module) -> set[int]:
    """Ids of the parameters a computed weight is made from besides the one that stands for
    it (``stored_weight``): an original that broadcasts to it (weight norm's g, out x 1), a
    parametrization module's own parameters. An original that does not broadcast to it (a
    low-rank parametrization's factors U (out, r) and V (r, in): neither has the weight's
    shape) is a stored piece of the weight, left a matmul weight."""
    factors: set[int] = set()
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for computed in _parametrizations(module).values():
                main = _main_original(computed)
                originals = _originals(computed)
                factors |= {
                    id(p)
                    for p in computed.parameters()
                    if p is not main and (all(p is not o for o in originals) or _broadcasts_to(p, main))
                }
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm):
                factors.add(id(getattr(module, f"{hook.name}_g")))
    return factors


def _parametrizations(module: torch.nn.Module) -> torch.nn.ModuleDict:
    """A parametrized module's ``parametrizations`` (a ModuleDict of ParametrizationList)."""
    held = module.parametrizations
    assert isinstance(held, torch.nn.ModuleDict)
    return held


def _main_original(computed: torch.nn.Module) -> torch.Tensor:
    """A ParametrizationList's original in the computed tensor's shape: ``original``, or the
    largest of ``original0``, ``original1``, ... (weight norm: v, not g)."""
    single = getattr(computed, "original", None)
    if isinstance(single, torch.Tensor):
        return single
    return max(_originals(computed), key=lambda t: t.numel())


def _originals(computed: torch.nn.Module) -> list[torch.Tensor]:
    """A ParametrizationList's ``original0``, ``original1``, ... (parameters or buffers)."""
    held = chain(computed.named_parameters(recurse=False), computed.named_buffers(recurse=False))
    return [t for n, t in held if n.startswith("original")]


def _broadcasts_to(tensor: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether ``tensor``'s shape broadcasts to ``target``'s (a per-row scale: g of shape
    (out, 1) to v's (out, in)), dim for dim."""
    return tensor.ndim == target.ndim and all(
        a in (1, b) for a, b in zip(tensor.shape, target.shape, strict=True)
    )
