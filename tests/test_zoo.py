"""Real model families: nothing unsupported, and contraction counts equal to the peers'."""

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

import flopmeter

torchvision = pytest.importorskip("torchvision")

ZOO = [
    "resnet18",
    "vgg11",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "shufflenet_v2_x0_5",
    "densenet121",
    "regnet_y_400mf",
    "convnext_tiny",
    "vit_b_16",
    "swin_t",
    "maxvit_t",
]
CONTRACTIONS = {
    "aten.convolution",
    "aten.mm",
    "aten.addmm",
    "aten.bmm",
    "aten.baddbmm",
    "aten.scaled_dot_product_attention",
    "aten._native_multi_head_attention",
}


class _SamePath(TorchFunctionMode):
    """Runs FlopCounterMode under a function mode too, so both tools see the same kernels
    (a function mode turns off nn.MultiheadAttention's fused fast path)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ZOO)
def test_torchvision_zoo(name):
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    report = flopmeter.profile(model, x)
    assert report.unsupported_ops() == {}
    # FlopCounterMode has no formula for the CPU flash-attention kernel, so it runs on meta,
    # where attention decomposes into the bmm it does count (and under a function mode, so
    # nn.MultiheadAttention takes the same unfused path as under flopmeter)
    try:
        with torch.device("meta"):
            peer_model, peer_x = torchvision.models.get_model(name, weights=None).eval(), x.to("meta")
    except NotImplementedError:  # regnet computes its widths with tensors: build it for real
        peer_model, peer_x = model, x
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), _SamePath(), counter:
        peer_model(peer_x)
    theirs = {f"aten.{op.__name__}": n for op, n in counter.get_flop_counts()["Global"].items()}
    ours = report.by_operator()
    if "aten.convolution" in theirs:
        assert 2 * ours["aten.convolution"].cost.macs == theirs["aten.convolution"]  # mac view = theirs / 2
    assert 2 * report.macs == sum(theirs.values())


transformers = pytest.importorskip("transformers")

# Tiny configs; expected MACs counted by hand from the linear and attention layers (L tokens).
HF_MODELS = {
    # per layer: q,k,v,o 4*16*64*64 = 262,144; FFN 2*16*64*128 = 262,144; attention 2*16*16*64 = 32,768
    # 2 layers = 1,114,112; pooler on one token 64*64 = 4,096
    "bert": (
        lambda T: T.BertConfig(
            num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128
        ),
        ["input_ids:1x16:int64", "attention_mask:1x16:int64"],
        1_118_208,
    ),
    # per layer: c_attn 16*64*192 = 196,608; c_proj 65,536; MLP 2*16*64*256 = 524,288; attention 32,768
    "gpt2": (lambda T: T.GPT2Config(n_layer=2, n_embd=64, n_head=4), ["input_ids:1x16:int64"], 1_638_400),
    # per layer: q 16*64*64 = 65,536; k, v (2 kv heads of 16) 2*16*64*32 = 65,536; o 65,536;
    # MLP 3*16*64*128 = 393,216; attention 2*4*16*16*16 = 32,768 -> 622,592
    "llama-gqa": (
        lambda T: T.LlamaConfig(
            num_hidden_layers=2,
            hidden_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=128,
        ),
        ["input_ids:1x16:int64", "attention_mask:1x16:int64"],
        1_245_184,
    ),
    # encoder layer 557,056 (as bert); decoder layer: self 262,144 + 32,768, cross q,o 131,072 + k,v 131,072
    # + 32,768, FFN 262,144 = 851,968; 2 of each
    "t5": (
        lambda T: T.T5Config(num_layers=2, d_model=64, num_heads=4, d_kv=16, d_ff=128),
        ["input_ids:1x16:int64", "decoder_input_ids:1x16:int64"],
        2_818_048,
    ),
    # conv1 200*64*80*3 = 3,072,000; conv2 100*64*64*3 = 1,228,800; encoder layer (100 frames)
    # 1,638,400 + 1,638,400 + 1,280,000; decoder layer: self 262,144 + 32,768, cross q,o 131,072,
    # k,v 2*100*64*64 = 819,200, attention 2*16*100*64 = 204,800, FFN 262,144
    "whisper": (
        lambda T: T.WhisperConfig(
            encoder_layers=2,
            decoder_layers=2,
            d_model=64,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=128,
            decoder_ffn_dim=128,
            num_mel_bins=80,
            max_source_positions=100,
        ),
        ["input_features:1x80x200:float32", "decoder_input_ids:1x16:int64"],
        16_838_656,
    ),
}


# Mixture of experts (grouped GEMM): 1 layer, hidden 64, 4 experts, top-2, expert MLP 128.
# attention 229,376 (as llama-gqa's layer without its MLP); router 16*64*4 = 4,096;
# 16 tokens * 2 experts = 32 routed rows, each gate+up 64*256 = 16,384 and down 128*64 = 8,192
HF_MODELS["mixtral-moe"] = (
    lambda T: T.MixtralConfig(
        num_hidden_layers=1,
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        num_local_experts=4,
        num_experts_per_tok=2,
    ),
    ["input_ids:1x16:int64"],
    1_019_904,  # 229,376 + 4,096 + 32 * 24,576
)


@pytest.mark.parametrize("name", sorted(HF_MODELS))
def test_transformers_models_match_hand_counts(name):
    make_config, inputs, expected_macs = HF_MODELS[name]
    model = transformers.AutoModel.from_config(make_config(transformers)).eval()
    report = flopmeter.profile(model, input_shape=inputs)
    assert report.unsupported_ops() == {}
    assert report.macs == expected_macs
