"""LLM mode on a compressed model reads each weight at its stored size (probe 12, P12-U5;
docs/llm.md "Compressed models"): the ops that rebuild a weight from its storage (torchao's
dequantize copy, the prune mask multiply, a parametrization) are compression overhead, but
their reads of the stored tensors are the phase's weight traffic; the rebuilt float copy the
matmul reads is left out of the paged activations (a fused kernel never writes it), and "as
executed" counts it and the overhead ops' other traffic as activations.

A 2-layer Llama, hidden 64, 4 query and 2 KV heads (head dim 16), MLP 128, vocabulary 100,
float32 (``tiny_llama_config``); a decode step after 16 tokens, a prefill of 16. Its Linears
per layer: q 64x64, k 64x32, v 64x32, o 64x64, gate 64x128, up 64x128, down 128x64 =
4,096 + 2,048 + 2,048 + 4,096 + 3 * 8,192 = 36,864 weights, output rows 64 + 32 + 32 + 64 +
128 + 128 + 64 = 512; lm_head 100x64 = 6,400 weights, 100 rows."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
import torch.nn.utils.parametrizations
import torch.nn.utils.prune

import flopmeter

transformers = pytest.importorskip("transformers")

LINEAR_WEIGHTS = 2 * 36_864 + 6_400  # 80,128 (2 layers + lm_head)
ROWS = 2 * 512 + 100  # 1,124 output rows: one scale each
# a decode step's other weights: 5 RMSNorms of 64 float32 (2 per layer + the final one) 1,280,
# one embedding row 64 * 4 = 256, the rotary frequencies 8 * 4 = 32
DECODE_OTHER = 5 * 64 * 4 + 64 * 4 + 8 * 4  # 1,568
PREFILL_OTHER = DECODE_OTHER + 15 * 64 * 4  # 15 more embedding rows: 5,408


def _llama(config: object) -> torch.nn.Module:
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def _cost(model: torch.nn.Module) -> flopmeter.LLMCost:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cost = flopmeter.llm_cost(model, prompt=16, generate=4)
    assert not [w for w in caught if issubclass(w.category, flopmeter.FlopmeterWarning)]
    return cost


def _int8(model: torch.nn.Module) -> torch.nn.Module:
    quantization = pytest.importorskip("torchao.quantization")
    quantized = copy.deepcopy(model)
    quantization.quantize_(quantized, quantization.Int8WeightOnlyConfig())
    return quantized


def test_an_int8_weight_only_model_reads_int8_values_and_scales(tiny_llama_config: object) -> None:
    model = _llama(tiny_llama_config)
    dense, int8 = _cost(model), _cost(_int8(model))
    paged, executed = int8.decode(16).bytes("paged"), int8.decode(16).bytes("as executed")
    float_paged, float_executed = dense.decode(16).bytes("paged"), dense.decode(16).bytes("as executed")
    # the float model's own numbers (unchanged by the fix): its Linears 80,128 * 4 = 320,512 + 1,568
    assert float_paged.weights == LINEAR_WEIGHTS * 4 + DECODE_OTHER == 322_080
    # int8 values 80,128 * 1 B + a float32 scale per output row 1,124 * 4 = 4,496 + 1,568
    assert paged.weights == LINEAR_WEIGHTS + ROWS * 4 + DECODE_OTHER == 86_192
    # the float32 copies the matmuls read are no activations of an engine: the float model's
    assert paged.activations == float_paged.activations
    assert (paged.kv_read, paged.kv_write) == (float_paged.kv_read, float_paged.kv_write)
    # as executed: the same weights; the activations hold the copies, written by the dequantize
    # and read by the matmul (80,128 * 4 each), and the scale multiply on the outputs (1,124
    # float32 read and 1,124 written): 2 * 320,512 + 2 * 4,496 = 650,016 more
    assert executed.weights == paged.weights
    assert executed.activations - float_executed.activations == 2 * 320_512 + 2 * 4_496 == 650_016
    assert int8.decode(16).macs == dense.decode(16).macs == 84_480  # the work is the float model's
    # per module (as executed), the rebuilding ops in the module they ran in: q_proj reads
    # 64 * 64 int8 = 4,096 + 64 float32 scales = 256; the root's row is the phase's total
    rows = {row.name: row for row in int8.decode(16).modules()}
    assert rows["model.layers.0.self_attn.q_proj"].weights == 4_096 + 64 * 4 == 4_352
    assert (rows[""].weights, rows[""].activations) == (executed.weights, executed.activations)
    # the prefill reads the same stored weights, and 15 more embedding rows
    prefill = int8.prefill.bytes("paged")
    assert prefill.weights == LINEAR_WEIGHTS + ROWS * 4 + PREFILL_OTHER == 90_032
    assert prefill.activations == dense.prefill.bytes("paged").activations


def test_a_pruned_model_reads_its_stored_weights_and_masks(tiny_llama_config: object) -> None:
    """``torch.nn.utils.prune`` keeps the dense ``weight_orig`` and a float mask of the same
    shape, and the forward reads both (the compression view's ``bytes_actual``); an engine
    serving the pruned weights reads what ``prune.remove`` leaves (the float model's bytes)."""
    model = _llama(tiny_llama_config)
    pruned = copy.deepcopy(model)
    for layer in pruned.model.layers:  # the decoder layers' Linears; lm_head stays dense
        for linear in [m for m in layer.modules() if isinstance(m, torch.nn.Linear)]:
            torch.nn.utils.prune.l1_unstructured(linear, "weight", amount=0.5)
    dense, masked = _cost(model).decode(16).bytes("paged"), _cost(pruned).decode(16).bytes("paged")
    # weight_orig 2 * 36,864 * 4 = 294,912 + masks as much + lm_head 6,400 * 4 = 25,600 + 1,568
    assert masked.weights == 2 * 294_912 + 25_600 + DECODE_OTHER == 616_992
    assert masked.activations == dense.activations
    for layer in pruned.model.layers:
        for linear in [m for m in layer.modules() if isinstance(m, torch.nn.Linear)]:
            torch.nn.utils.prune.remove(linear, "weight")
    assert _cost(pruned).decode(16).bytes("paged") == dense  # masks folded: the float model's


def test_a_parametrized_weight_is_read_as_its_originals(tiny_llama_config: object) -> None:
    """weight_norm on lm_head: its g (100 x 1) and v (100 x 64) are read, not the rebuilt weight."""
    model = _llama(tiny_llama_config)
    normed = copy.deepcopy(model)
    torch.nn.utils.parametrizations.weight_norm(normed.lm_head)
    dense, paged = _cost(model).decode(16).bytes("paged"), _cost(normed).decode(16).bytes("paged")
    # the float model's 322,080 - lm_head 25,600 + v 6,400 * 4 = 25,600 + g 100 * 4 = 400
    assert paged.weights == 322_080 - 25_600 + 25_600 + 400 == 322_480
    assert paged.activations == dense.activations


def test_the_model_is_left_as_it_was(tiny_llama_config: object) -> None:
    """The roles are the trace's own: the quantized weights are the same objects, same values."""
    quantized = _int8(_llama(tiny_llama_config))
    linears = [m for m in quantized.modules() if isinstance(m, torch.nn.Linear)]
    before = [(m.weight, m.weight.qdata.clone(), m.weight.scale.clone(), vars(m).copy()) for m in linears]
    _cost(quantized)
    for module, (weight, qdata, scale, attributes) in zip(linears, before, strict=True):
        assert module.weight is weight and vars(module) == attributes
        assert torch.equal(weight.qdata, qdata) and torch.equal(weight.scale, scale)


def test_the_printed_report_and_its_data_give_the_same_bytes(tiny_llama_config: object) -> None:
    """The command line takes configs only in LLM mode (``--prompt``): a compressed model goes
    through Python, where ``print(cost)`` is the CLI's report and ``cost.to_dict()`` its JSON."""
    cost = _cost(_int8(_llama(tiny_llama_config)))
    data = cost.to_dict()
    # the first decode step attends the 16 prompt tokens: the step decode(16) above
    assert data["first_decode"]["context"] == 16
    assert data["first_decode"]["bytes"]["paged"]["weights"] == 86_192  # 80,128 + 4,496 + 1,568
    assert json.loads(json.dumps(data)) == data
    # the first decode step's paged line: 86,192 B / 1,024 = 84.17 KiB; KV read 17 tokens * 512 B
    assert "= weights 84.17 KiB + KV read 8.50 KiB + KV write 512 B" in str(cost)


def test_dynamic_activation_quantization_prefill_is_the_float_models_work(
    tiny_llama_config: object,
) -> None:
    """torchao's Int8DynamicActivationInt8WeightConfig: the prefill does the float model's work
    and reads its weights as stored (its decode steps: tests/test_llm_dynamic_quant.py; until
    probe 13's dynquant they raised a ModelError)."""
    quantization = pytest.importorskip("torchao.quantization")
    model = _llama(tiny_llama_config)
    quantized = copy.deepcopy(model)
    quantization.quantize_(quantized, quantization.Int8DynamicActivationInt8WeightConfig())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = flopmeter.llm_cost(quantized, prompt=16, generate=4)
        dense = flopmeter.llm_cost(model, prompt=16, generate=4)
        # the prefill: the float model's work; its weights int8 80,128 + scales 1,124 * 4 + 5,408
        assert cost.prefill.flops_2mac == dense.prefill.flops_2mac
        assert cost.prefill.bytes("paged").weights == LINEAR_WEIGHTS + ROWS * 4 + PREFILL_OTHER == 90_032
