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
    assert "holds quantized, pruned or parametrized weights" in str(caught[0].message)
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


def test_a_parametrized_model_is_warned_about_as_parametrized(tiny_llama_config: object) -> None:
    """Review of probe 12: a weight_norm parametrization (no quantization, no pruning) is warned
    about too, rightly (its weight is rebuilt by overhead ops, as a mask's), but the warning
    called it "quantized or pruned"."""
    model = _llama(tiny_llama_config)
    torch.nn.utils.parametrizations.weight_norm(model.lm_head)
    (caught,) = _flopmeter_warnings(model)
    assert "holds quantized, pruned or parametrized weights" in str(caught.message)


def test_the_decode_bytes_docs_llm_md_gives(tiny_llama_config: object) -> None:
    """docs/llm.md "Not covered yet": the numbers of a compressed 2-layer d = 64 Llama's decode
    step after 16 tokens (paged bytes), float32, vocabulary 100."""
    quantization = pytest.importorskip("torchao.quantization")
    model = _llama(tiny_llama_config)

    def decode_bytes(m: torch.nn.Module) -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CountWarning)
            return flopmeter.llm_cost(m, prompt=16, generate=4).decode(16).bytes("paged")

    dense = decode_bytes(model)
    quantized = copy.deepcopy(model)
    quantization.quantize_(quantized, quantization.Int8WeightOnlyConfig())
    int8 = decode_bytes(quantized)
    # weights read: 5 norms of 64 float32 = 1,280 + one embedding row 64 * 4 = 256 + the rotary
    # frequencies 8 * 4 = 32 -> 1,568; the int8 Linears' bytes are left out as overhead
    assert int8.weights == 1_280 + 256 + 32 == 1_568  # type: ignore[attr-defined]
    # the float32 copies the matmuls read count as activations: per layer q, o 64*64, k, v 64*32,
    # gate, up, down 64*128: 36,864; 2 layers + lm_head 100*64 = 80,128 values * 4 B = 320,512 more
    assert int8.activations - dense.activations == 320_512  # type: ignore[attr-defined]
    total = ("weights", "kv_read", "kv_write", "activations")
    assert sum(getattr(int8, k) for k in total) == sum(getattr(dense, k) for k in total)
    masked = copy.deepcopy(model)
    for layer in masked.model.layers:  # the decoder layers' Linears; lm_head stays dense
        for linear in [m for m in layer.modules() if isinstance(m, torch.nn.Linear)]:
            torch.nn.utils.prune.l1_unstructured(linear, "weight", amount=0.5)
    # lm_head 100 * 64 * 4 = 25,600 + the 1,568 above = 27,168
    assert decode_bytes(masked).weights == 25_600 + 1_568 == 27_168  # type: ignore[attr-defined]


def test_a_compressed_model_llm_mode_refuses_gets_the_error_alone(tiny_llama_config: object) -> None:
    """A base model without lm_head is refused; pruned or not, with the refusal only."""
    base = transformers.LlamaModel(tiny_llama_config).eval()
    torch.nn.utils.prune.l1_unstructured(base.layers[0].mlp.up_proj, "weight", amount=0.5)
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
    torch.nn.utils.prune.l1_unstructured(model.backbone.layers[0].mixer.out_proj, "weight", amount=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="caches recurrent states, no keys and values"):
            training_step(model, tokens=8)
    assert not [w for w in caught if issubclass(w.category, flopmeter.FlopmeterWarning)]


def test_a_compressed_model_training_step_counts_is_warned_about_once(tiny_llama_config: object) -> None:
    from flopmeter.llm.training import training_step

    pruned = _llama(tiny_llama_config)
    torch.nn.utils.prune.l1_unstructured(pruned.model.layers[0].mlp.up_proj, "weight", amount=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training_step(pruned, tokens=8)
    ours = [w for w in caught if issubclass(w.category, flopmeter.FlopmeterWarning)]
    assert [w.category for w in ours] == [CountWarning]
    assert ours[0].filename == __file__  # at the user's line
