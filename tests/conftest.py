import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _llama_config(hidden: int, mlp: int, layers: int, vocab: int):
    """A small Llama config with 4 query and 2 KV heads."""
    transformers = pytest.importorskip("transformers")
    return transformers.LlamaConfig(
        hidden_size=hidden,
        intermediate_size=mlp,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=vocab,
    )


@pytest.fixture
def tiny_llama_config():
    """A 2-layer Llama config, hidden 64, 4 query and 2 KV heads, MLP 128, vocabulary 100."""
    return _llama_config(hidden=64, mlp=128, layers=2, vocab=100)


@pytest.fixture
def one_layer_llama_config():
    """A 1-layer Llama config, hidden 32, 4 query and 2 KV heads, MLP 64, vocabulary 64."""
    return _llama_config(hidden=32, mlp=64, layers=1, vocab=64)


@pytest.fixture
def tiny_mamba2_config():
    """A 2-layer Mamba-2 config: hidden 64, 4 heads of 32, state 8, one group, vocabulary 100."""
    transformers = pytest.importorskip("transformers")
    return transformers.Mamba2Config(
        num_hidden_layers=2,
        hidden_size=64,
        vocab_size=100,
        num_heads=4,
        head_dim=32,
        state_size=8,
        n_groups=1,
    )
