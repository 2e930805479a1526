"""LLM mode on a model holding quantized or pruned weights: its bytes are a float engine's,
said by a warning at the user's line (probe 12, P12-U5; docs/llm.md "Not covered yet")."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.utils.prune

import flopmeter
from flopmeter.notices import CountWarning

transformers = pytest.importorskip("transformers")


def _llama(config: object) -> torch.nn.Module:
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def _flopmeter_warnings(model: torch.nn.Module) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flopmeter.llm_cost(model, prompt=16, generate=4)
    return [w for w in caught if issubclass(w.category, flopmeter.FlopmeterWarning)]


def test_a_float_model_gives_no_warning(tiny_llama_config: object) -> None:
    assert _flopmeter_warnings(_llama(tiny_llama_config)) == []


def test_a_pruned_model_is_warned_about_at_the_users_line(tiny_llama_config: object) -> None:
    model = _llama(tiny_llama_config)
    pruned = copy.deepcopy(model)
    torch.nn.utils.prune.l1_unstructured(pruned.model.layers[0].mlp.up_proj, "weight", amount=0.5)
    caught = _flopmeter_warnings(pruned)
    assert len(caught) == 1
    assert caught[0].category is CountWarning
    assert "holds quantized or pruned weights" in str(caught[0].message)
    assert "weight_bits=" in str(caught[0].message)
    assert caught[0].filename == __file__  # _flopmeter_warnings' call, not flopmeter's own file
    # the numbers are those of the float model: the warning is about bytes only
    assert (
        flopmeter.llm_cost(model, prompt=16, generate=4).prefill.macs
        == flopmeter.llm_cost(pruned, prompt=16, generate=4).prefill.macs
    )


def test_a_torchao_quantized_model_is_warned_about(tiny_llama_config: object) -> None:
    quantization = pytest.importorskip("torchao.quantization")
    model = _llama(tiny_llama_config)
    quantization.quantize_(model, quantization.Int8WeightOnlyConfig())
    caught = _flopmeter_warnings(model)
    assert [w.category for w in caught] == [CountWarning]
