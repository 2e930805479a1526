"""LLM mode on a model holding compressed weights it does not follow to their storage: its
bytes may not be an engine's, said by a warning at the user's line (probe 12, P12-U5;
docs/llm.md "Compressed models"). torchao's quantized tensors, prune masks and
parametrizations are followed (tests/test_llm_compressed_bytes.py) and get no warning."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.utils.parametrizations
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


class _Packed(torch.nn.Module):
    """A GPTQ-style packed Linear(64, 64) at 4 bits (``qweight``, ``scales``, ``qzeros``): a
    compression LLM mode does not follow to its storage (its own kernels unpack it)."""

    def __init__(self) -> None:
        super().__init__()
        self.bits, self.infeatures, self.outfeatures, self.group_size = 4, 64, 64, 32
        self.register_buffer("qweight", torch.zeros(64 * 4 // 32, 64, dtype=torch.int32))
        self.register_buffer("scales", torch.ones(2, 64))
        self.register_buffer("qzeros", torch.zeros(2, 64 * 4 // 32, dtype=torch.int32))


def test_a_float_model_gives_no_warning(tiny_llama_config: object) -> None:
    assert _flopmeter_warnings(_llama(tiny_llama_config)) == []


def test_followed_compressions_give_no_warning(tiny_llama_config: object) -> None:
    """Before probe 13 each of these was warned about: their bytes were a float engine's."""
    model = _llama(tiny_llama_config)
    pruned = copy.deepcopy(model)
    torch.nn.utils.prune.l1_unstructured(pruned.model.layers[0].mlp.up_proj, "weight", amount=0.5)
    normed = copy.deepcopy(model)
    torch.nn.utils.parametrizations.weight_norm(normed.lm_head)
    assert _flopmeter_warnings(pruned) == [] and _flopmeter_warnings(normed) == []
    quantization = pytest.importorskip("torchao.quantization")
    quantization.quantize_(model, quantization.Int8WeightOnlyConfig())
    assert _flopmeter_warnings(model) == []


def test_a_packed_model_is_warned_about_at_the_users_line(tiny_llama_config: object) -> None:
    model = _llama(tiny_llama_config)
    packed = copy.deepcopy(model)
    packed.model.packed = _Packed()
    caught = _flopmeter_warnings(packed)
    assert len(caught) == 1
    assert caught[0].category is CountWarning
    assert "does not read at their stored size (gptq)" in str(caught[0].message)
    assert "weight_bits=" in str(caught[0].message)
    assert caught[0].filename == __file__  # _flopmeter_warnings' call, not flopmeter's own file
    # the numbers are those of the float model: the warning is about bytes only
    assert (
        flopmeter.llm_cost(model, prompt=16, generate=4).prefill.macs
        == flopmeter.llm_cost(packed, prompt=16, generate=4).prefill.macs
    )


def test_a_compressed_model_llm_mode_refuses_gets_the_error_alone(tiny_llama_config: object) -> None:
    """A base model without lm_head is refused; packed or not, with the refusal only."""
    base = transformers.LlamaModel(tiny_llama_config).eval()
    base.packed = _Packed()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="lm_head"):
            flopmeter.llm_cost(base, prompt=16, generate=4)
    assert not [w for w in caught if issubclass(w.category, flopmeter.FlopmeterWarning)]


def test_a_compressed_model_training_step_refuses_gets_the_error_alone(tiny_mamba2_config: object) -> None:
    """R12 (probe 12's review): the warning came from language_model, before training_step's
    own refusal of a model without attention (Mamba-2); now it comes last, so the refusal is alone."""
    from flopmeter.llm.training import training_step

    model = transformers.Mamba2ForCausalLM(tiny_mamba2_config).eval()
    model.backbone.packed = _Packed()  # a compression LLM mode warns about
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="caches recurrent states, no keys and values"):
            training_step(model, tokens=8)
    assert not [w for w in caught if issubclass(w.category, flopmeter.FlopmeterWarning)]


def test_a_compressed_model_training_step_counts_is_warned_about_once(tiny_llama_config: object) -> None:
    from flopmeter.llm.training import training_step

    packed = _llama(tiny_llama_config)
    packed.model.packed = _Packed()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training_step(packed, tokens=8)
    ours = [w for w in caught if issubclass(w.category, flopmeter.FlopmeterWarning)]
    assert [w.category for w in ours] == [CountWarning]
    assert ours[0].filename == __file__  # at the user's line
