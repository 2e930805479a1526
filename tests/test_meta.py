"""Meta-device runs: no memory for weights or activations, the same numbers as on CPU."""

import pytest
import torch

import flopmeter

transformers = pytest.importorskip("transformers")


def tiny_llama_config():
    # 2 layers, hidden 64, 4 query heads and 2 key/value heads (GQA), MLP 128
    return transformers.LlamaConfig(
        num_hidden_layers=2,
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=1000,
    )


def test_llama_on_meta_with_attention_mask_equals_cpu():
    """The model calls .all()/.item() on the mask: integer inputs stay real on meta."""
    spec = ["input_ids:1x16:int64", "attention_mask:1x16:int64"]
    with torch.device("meta"):
        meta_model = transformers.AutoModelForCausalLM.from_config(tiny_llama_config())
    meta = flopmeter.profile(meta_model, input_shape=spec)
    cpu = flopmeter.profile(
        transformers.AutoModelForCausalLM.from_config(tiny_llama_config()), input_shape=spec
    )
    assert meta.unsupported_ops() == {}
    assert (meta.macs, meta.flops, meta.params) == (cpu.macs, cpu.flops, cpu.params)
    assert all(p.device.type == "meta" for p in meta_model.parameters())


def test_meta_model_with_user_built_real_mask():
    with torch.device("meta"):
        model = transformers.AutoModel.from_config(tiny_llama_config())
    inputs = {
        "input_ids": torch.zeros(2, 8, dtype=torch.long),
        "attention_mask": torch.ones(2, 8, dtype=torch.long),
    }
    report = flopmeter.profile(model, inputs)
    assert report.batch_size == 2 and report.macs > 0 and report.unsupported_ops() == {}
