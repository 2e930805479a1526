"""Review-4 findings (review4.md): each test failed before its fix."""

from __future__ import annotations

import torch

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
