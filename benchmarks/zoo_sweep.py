"""A sweep over public model zoos: does every model profile, with the right numbers, and
is it left exactly as it was?

    python benchmarks/zoo_sweep.py [--suite torchvision|timm|transformers|diffusers|all] [--limit N]
        [--only NAME,NAME] [--out results.jsonl] [--timeout 300]

Run with ``PYTHONPATH=src`` from the repository root to sweep the working tree. One line
per model, then a summary table. Models: torchvision's classification models (every one
``list_models(module=torchvision.models)`` gives, ``weights=None``, 1x3x224x224) and a
few detection / segmentation / video ones; one timm model per family (module), a small
variant, at its ``pretrained_cfg`` input size (skipped when a forward takes over
``--max-forward`` CPU seconds); 40+ transformers architectures from small configs;
28 diffusers models (UNets, ControlNet, autoencoders, DiT-style transformers) from tiny
configs, called as their pipelines call them (an empty suite without diffusers installed).
Each model, one thread, random weights:

1. ``flopmeter.profile(model, x)`` with defaults succeeds; its unsupported ops are listed;
2. its MACs == FlopCounterMode's FLOPs / 2 on a real forward, SDPA forced to the math
   kernel (FCM counts contractions only: mm, bmm, conv, SDPA; it misses LSTM/GRU cells,
   some einsum paths and MoE expert products, so a difference is a lead, not a verdict);
3. ``shapes_only=True`` and ``shapes_only=False`` (both with ``compression=True``) give the
   same macs, flops, params,
   batch_size (a shapes-only run that needs values and raises is noted, not failed), and
   bytes read and written (their own column: a layout difference on meta shows there);
4. the model is left as it was after the three profiles: every state_dict tensor's bytes
   and device, every tensor held in a module's ``__dict__`` (none on meta), every hook
   dict, every training flag and requires_grad, torch's CPU random state and grad mode;
   and a forward afterwards (eval, same input, ``torch.manual_seed(0)``) equals the one
   before bit for bit;
5. ``report.batch_size`` is 1 for a one-sample input, the number of images for detectors;
6. the weight nonzeros of check 3's first profile (``compression=True``: a default profile
   leaves a dense model's unknown), per layer and in total, equal a brute-force
   ``torch.count_nonzero`` over every parameter with ndim >= 2 other than ``bias``.

Each suite runs in a worker process (1 thread, address space capped by ``--memory-gb``)
under ``--timeout`` seconds per model; results go to ``--out`` as JSON lines and a rerun
skips models already there (delete the file for a fresh sweep).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

DETECTION = [
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "fasterrcnn_resnet50_fpn",
    "fcos_resnet50_fpn",
    "retinanet_resnet50_fpn",
    "maskrcnn_resnet50_fpn",
    "keypointrcnn_resnet50_fpn",
    "ssdlite320_mobilenet_v3_large",
    "ssd300_vgg16",
]
SEGMENTATION = ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50"]
VIDEO = ["r3d_18", "s3d", "mvit_v2_s"]
MAX_PARAMS = 150_000_000  # larger models exceed the memory guard with a values run

# ---------------------------------------------------------------- model builders
Built = tuple[Any, tuple[Any, ...], dict[str, Any], int]  # model, args, kwargs, expected batch


def torchvision_names() -> list[str]:
    import torchvision.models as tvm

    names = [f"tv:{n}" for n in tvm.list_models(module=tvm)]
    names += [f"tv-det:{n}" for n in DETECTION] + [f"tv-seg:{n}" for n in SEGMENTATION]
    return names + [f"tv-video:{n}" for n in VIDEO]


def build_torchvision(name: str) -> Built:
    import torch
    import torchvision.models as tvm

    kind, model_name = name.split(":")
    if kind == "tv-det":
        extra = {"min_size": 320, "max_size": 320} if "ssd" not in model_name else {}
        model = tvm.get_model(model_name, weights=None, weights_backbone=None, **extra)
        images = [torch.randn(3, 320, 320), torch.randn(3, 256, 320)]
        return model, (images,), {}, 2  # two images: a batch of 2
    if kind == "tv-seg":
        model = tvm.get_model(model_name, weights=None, weights_backbone=None, aux_loss=False)
        return model, (torch.randn(1, 3, 224, 224),), {}, 1
    if kind == "tv-video":
        model = tvm.get_model(model_name, weights=None)
        frames = 16 if model_name.startswith(("mvit", "s3d")) else 8
        return model, (torch.randn(1, 3, frames, 224, 224),), {}, 1
    model = tvm.get_model(model_name, weights=None)
    size = 299 if model_name == "inception_v3" else 224
    return model, (torch.randn(1, 3, size, size),), {}, 1


_SMALL_WORDS = (
    "atto",
    "femto",
    "pico",
    "nano",
    "tiny",
    "xxs",
    "xs",
    "small",
    "_s_",
    "b0",
    "18",
    "mini",
    "lite",
)


def timm_names() -> list[str]:
    import timm
    from timm.models import _registry

    families: dict[str, list[str]] = {}
    for model_name in timm.list_models():
        families.setdefault(_registry._model_to_module.get(model_name, model_name), []).append(model_name)

    def smallness(model_name: str) -> tuple[int, int, str]:
        rank = next((i for i, w in enumerate(_SMALL_WORDS) if w in model_name), len(_SMALL_WORDS))
        return rank, len(model_name), model_name

    return [f"timm:{min(members, key=smallness)}" for _, members in sorted(families.items())]


def build_timm(name: str) -> Built:
    import timm
    import torch

    model = timm.create_model(name.split(":", 1)[1], pretrained=False)
    size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    return model, (torch.randn(1, *size),), {}, 1


# transformers: model_type -> config overrides (on top of the generic shrink) and the input kind
HF: dict[str, tuple[dict[str, Any], str]] = {
    "bert": ({}, "text"),
    "roberta": ({}, "text"),
    "distilbert": ({"dim": 64, "hidden_dim": 128, "n_heads": 4, "n_layers": 2}, "text"),
    "albert": ({"embedding_size": 32}, "text"),
    "electra": ({"embedding_size": 32}, "text"),
    "deberta": ({}, "text"),
    "deberta-v2": ({}, "text"),
    "mpnet": ({}, "text"),
    "xlm-roberta": ({}, "text"),
    "xlnet": ({"d_inner": 128}, "text"),
    "mobilebert": (
        {"embedding_size": 32, "intra_bottleneck_size": 32, "num_feedforward_networks": 1},
        "text",
    ),
    "gpt_bigcode": ({}, "text"),
    "gpt2": ({}, "text"),
    "gpt_neo": ({"attention_types": [[["global", "local"], 1]], "num_layers": 2}, "text"),
    "gptj": ({"rotary_dim": 8}, "text"),
    "gpt_neox": ({}, "text"),
    "opt": ({"word_embed_proj_dim": 64}, "text"),
    "bloom": ({}, "text"),
    "falcon": ({}, "text"),
    "llama": ({}, "text"),
    "mistral": ({}, "text"),
    "mixtral": ({"num_local_experts": 4, "num_experts_per_tok": 2}, "text"),
    "qwen2": ({}, "text"),
    "qwen2_moe": ({"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}, "text"),
    "qwen3": ({}, "text"),
    "phi": ({}, "text"),
    "phi3": ({}, "text"),
    "gemma": ({}, "text"),
    "gemma2": ({}, "text"),
    "starcoder2": ({}, "text"),
    "olmo": ({}, "text"),
    "olmo2": ({}, "text"),
    "stablelm": ({}, "text"),
    "cohere": ({}, "text"),
    "granite": ({}, "text"),
    "mamba": ({"state_size": 8}, "text"),
    "rwkv": ({"attention_hidden_size": 64, "intermediate_size": 128}, "text"),
    "t5": ({"d_kv": 16}, "seq2seq"),
    "bart": ({}, "seq2seq"),
    "pegasus": ({}, "seq2seq"),
    "marian": ({"decoder_vocab_size": 1000}, "seq2seq"),
    "vit": ({"image_size": 64, "patch_size": 16}, "image"),
    "deit": ({"image_size": 64, "patch_size": 16}, "image"),
    "beit": ({"image_size": 64, "patch_size": 16}, "image"),
    "dinov2": ({"image_size": 64, "patch_size": 16}, "image"),
    "swin": (
        {"image_size": 64, "embed_dim": 16, "depths": [1, 1], "num_heads": [2, 2], "window_size": 4},
        "image",
    ),
    "convnext": ({"hidden_sizes": [16, 32], "depths": [1, 1], "num_stages": 2}, "image"),
    "resnet": ({"hidden_sizes": [16, 32], "depths": [1, 1], "embedding_size": 16}, "image"),
    "mobilevit": ({"image_size": 64}, "image"),
    "segformer": ({"hidden_sizes": [16, 32, 48, 64], "decoder_hidden_size": 64}, "image"),
    "wav2vec2": ({"conv_dim": [32, 32], "conv_kernel": [10, 3], "conv_stride": [5, 2]}, "audio"),
    "hubert": ({"conv_dim": [32, 32], "conv_kernel": [10, 3], "conv_stride": [5, 2]}, "audio"),
    "whisper": ({"num_mel_bins": 16, "max_source_positions": 32}, "speech"),
}
_LAYERS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers", "encoder_layers", "decoder_layers")
_LAYERS += ("num_decoder_layers",)
_HIDDEN = ("hidden_size", "d_model", "n_embd", "dim")
_HEADS = ("num_attention_heads", "n_head", "encoder_attention_heads", "decoder_attention_heads")
_FFN = ("intermediate_size", "ffn_dim", "encoder_ffn_dim", "decoder_ffn_dim", "d_ff", "n_inner")


def transformers_names() -> list[str]:
    return [f"hf:{t}" for t in HF]


def build_transformers(name: str) -> Built:
    import torch
    import transformers

    model_type = name.split(":", 1)[1]
    overrides, kind = HF[model_type]
    config = transformers.AutoConfig.for_model(model_type)
    small: dict[str, Any] = {}
    for key, value in config.to_dict().items():
        if key in _LAYERS and isinstance(value, int):
            small[key] = 2
        elif key in _HIDDEN and isinstance(value, int):
            small[key] = 64
        elif key in _HEADS and isinstance(value, int):
            small[key] = 4
        elif key in _FFN and isinstance(value, int):
            small[key] = 128
        elif key in ("num_key_value_heads", "multi_query_group_num") and isinstance(value, int):
            small[key] = 2
        elif key == "head_dim" and isinstance(value, int):
            small[key] = 16
        elif key == "vocab_size" and isinstance(value, int):
            small[key] = 1000
        elif key in ("max_position_embeddings", "n_positions") and isinstance(value, int):
            small[key] = 128
        elif key.endswith("token_id") and isinstance(value, int) and value >= 1000:
            small[key] = 1  # inside the small vocabulary
    small.update(overrides)
    config = transformers.AutoConfig.for_model(model_type, **small)
    model = transformers.AutoModel.from_config(config)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 1000, (1, 16), generator=generator)
    if kind == "text":
        inputs: dict[str, Any] = {"input_ids": ids}
    elif kind == "seq2seq":
        inputs = {"input_ids": ids, "decoder_input_ids": ids[:, :8]}
    elif kind == "image":
        size = getattr(config, "image_size", 64)
        size = size if isinstance(size, int) and size <= 64 else 64
        inputs = {"pixel_values": torch.randn(1, config.num_channels, size, size)}
    elif kind == "audio":
        inputs = {"input_values": torch.randn(1, 1600)}
    else:  # speech: whisper's log-mel features and decoder tokens
        frames = 2 * config.max_source_positions
        inputs = {
            "input_features": torch.randn(1, config.num_mel_bins, frames),
            "decoder_input_ids": ids[:, :4],
        }
    return model, (), inputs, 1


# diffusers: name -> builder of a tiny model (random weights, no download) and its real call
def _diffusers_models() -> dict[str, Callable[[], tuple[Any, dict[str, Any]]]]:
    import diffusers as d
    import torch

    def randn(*shape: int) -> Any:
        return torch.randn(*shape)

    t = torch.tensor([10])

    def denoiser_inputs(
        x: tuple[int, ...], text: tuple[int, ...], x_name: str = "hidden_states", **more: Any
    ) -> dict[str, Any]:
        """A denoiser's call: the noisy latents, a timestep, the text states, then ``more``
        (which may replace the timestep)."""
        return {x_name: randn(*x), "timestep": t, "encoder_hidden_states": randn(*text), **more}

    unet_blocks = {
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "sample_size": 16,
    }

    def unet2d() -> tuple[Any, dict[str, Any]]:
        model = d.UNet2DModel(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=8,
            **unet_blocks,
        )
        return model, {"sample": randn(1, 3, 16, 16), "timestep": t}

    def unet2d_condition() -> tuple[Any, dict[str, Any]]:
        model = d.UNet2DConditionModel(
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            **unet_blocks,
        )
        return model, denoiser_inputs((1, 4, 16, 16), (1, 7, 32), x_name="sample")

    def unet2d_sdxl() -> tuple[Any, dict[str, Any]]:  # text_time added conditions, linear projections
        model = d.UNet2DConditionModel(
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=80,  # 6 * 8 + 32
            **unet_blocks,
        )
        added = {"text_embeds": randn(1, 32), "time_ids": randn(1, 6)}
        return model, denoiser_inputs((1, 4, 16, 16), (1, 7, 32), x_name="sample", added_cond_kwargs=added)

    def controlnet() -> tuple[Any, dict[str, Any]]:
        model = d.ControlNetModel(
            in_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            conditioning_embedding_out_channels=(8, 16),
            block_out_channels=(32, 64),
            layers_per_block=1,
            norm_num_groups=8,
        )
        return model, denoiser_inputs(
            (1, 4, 16, 16), (1, 7, 32), x_name="sample", controlnet_cond=randn(1, 3, 32, 32)
        )

    coder = {  # the encoder-decoder shared by the KL and VQ autoencoders
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
        "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
        "block_out_channels": (16, 32),
        "latent_channels": 4,
    }

    def vae() -> tuple[Any, dict[str, Any]]:
        model = d.AutoencoderKL(
            **coder,
            norm_num_groups=8,
            sample_size=32,
        )
        return model, {"sample": randn(1, 3, 32, 32)}

    def vq() -> tuple[Any, dict[str, Any]]:
        model = d.VQModel(
            **coder,
            num_vq_embeddings=64,
            norm_num_groups=8,
        )
        return model, {"sample": randn(1, 3, 32, 32)}

    def unet3d() -> tuple[Any, dict[str, Any]]:
        model = d.UNet3DConditionModel(
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
            up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
            block_out_channels=(32, 64),
            layers_per_block=1,
            norm_num_groups=8,
            cross_attention_dim=32,
            attention_head_dim=8,
        )
        return model, denoiser_inputs((1, 4, 3, 16, 16), (1, 7, 32), x_name="sample")

    def svd() -> tuple[Any, dict[str, Any]]:
        model = d.UNetSpatioTemporalConditionModel(
            in_channels=8,
            out_channels=4,
            down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
            up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
            block_out_channels=(32, 64),
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=24,  # 3 * 8
            layers_per_block=1,
            cross_attention_dim=32,
            num_attention_heads=(2, 4),
        )
        return model, denoiser_inputs(
            (1, 3, 8, 16, 16), (1, 1, 32), x_name="sample", added_time_ids=randn(1, 3)
        )

    def dit() -> tuple[Any, dict[str, Any]]:
        model = d.DiTTransformer2DModel(
            num_attention_heads=2,
            attention_head_dim=16,
            in_channels=4,
            num_layers=2,
            sample_size=8,
            norm_num_groups=8,
        )
        return model, {"hidden_states": randn(1, 4, 8, 8), "timestep": t, "class_labels": torch.tensor([3])}

    def pixart() -> tuple[Any, dict[str, Any]]:
        model = d.PixArtTransformer2DModel(
            num_attention_heads=2,
            attention_head_dim=16,
            in_channels=4,
            out_channels=8,
            num_layers=2,
            cross_attention_dim=32,
            caption_channels=24,
            sample_size=8,
            norm_num_groups=8,
        )
        added = {"resolution": None, "aspect_ratio": None}
        return model, denoiser_inputs((1, 4, 8, 8), (1, 7, 24), added_cond_kwargs=added)

    def sd3() -> tuple[Any, dict[str, Any]]:
        model = d.SD3Transformer2DModel(
            sample_size=8,
            patch_size=2,
            in_channels=4,
            num_layers=2,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=24,
            caption_projection_dim=32,
            pooled_projection_dim=16,
            out_channels=4,
            pos_embed_max_size=16,
            dual_attention_layers=(0,),
            qk_norm="rms_norm",
        )
        return model, denoiser_inputs((1, 4, 8, 8), (1, 7, 24), pooled_projections=randn(1, 16))

    def flux() -> tuple[Any, dict[str, Any]]:
        model = d.FluxTransformer2DModel(
            patch_size=1,
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=24,
            pooled_projection_dim=16,
            guidance_embeds=True,
            axes_dims_rope=(4, 6, 6),
        )
        return model, denoiser_inputs(
            (1, 16, 16),
            (1, 7, 24),
            pooled_projections=randn(1, 16),
            timestep=torch.tensor([0.5]),
            img_ids=torch.zeros(16, 3),
            txt_ids=torch.zeros(7, 3),
            guidance=torch.tensor([3.5]),
        )

    def flux2() -> tuple[Any, dict[str, Any]]:
        model = d.Flux2Transformer2DModel(
            patch_size=1,
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=24,
            timestep_guidance_channels=32,
            axes_dims_rope=(4, 4, 4, 4),
        )
        return model, denoiser_inputs(
            (1, 16, 16),
            (1, 7, 24),
            timestep=torch.tensor([0.5]),
            img_ids=torch.zeros(1, 16, 4),
            txt_ids=torch.zeros(1, 7, 4),
            guidance=torch.tensor([3.5]),
        )

    def wan() -> tuple[Any, dict[str, Any]]:
        model = d.WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=12,
            in_channels=4,
            out_channels=4,
            text_dim=16,
            freq_dim=32,
            ffn_dim=32,
            num_layers=2,
            rope_max_seq_len=32,
        )
        return model, denoiser_inputs((1, 4, 2, 8, 8), (1, 7, 16))

    def cogvideox() -> tuple[Any, dict[str, Any]]:
        model = d.CogVideoXTransformer3DModel(
            num_attention_heads=2,
            attention_head_dim=8,
            in_channels=4,
            out_channels=4,
            time_embed_dim=4,
            text_embed_dim=16,
            num_layers=2,
            sample_width=8,
            sample_height=8,
            sample_frames=9,
            patch_size=2,
            temporal_compression_ratio=4,
            max_text_seq_length=7,
        )
        return model, denoiser_inputs((1, 3, 4, 8, 8), (1, 7, 16))

    def hunyuan_dit() -> tuple[Any, dict[str, Any]]:
        model = d.HunyuanDiT2DModel(
            num_attention_heads=2,
            attention_head_dim=8,
            in_channels=4,
            patch_size=2,
            sample_size=8,
            hidden_size=16,
            num_layers=2,
            cross_attention_dim=32,
            cross_attention_dim_t5=32,
            pooled_projection_dim=16,
            text_len=7,
            text_len_t5=7,
        )
        from diffusers.models.embeddings import get_2d_rotary_pos_embed

        rope = get_2d_rotary_pos_embed(8, ((0, 0), (4, 4)), (4, 4))
        return model, {
            "hidden_states": randn(1, 4, 8, 8),
            "timestep": torch.tensor([10.0]),  # its embedding runs in the timestep's dtype
            "encoder_hidden_states": randn(1, 7, 32),
            "text_embedding_mask": torch.ones(1, 7),
            "encoder_hidden_states_t5": randn(1, 7, 32),
            "text_embedding_mask_t5": torch.ones(1, 7),
            "image_meta_size": torch.tensor([[8.0, 8.0, 8.0, 8.0, 0.0, 0.0]]),
            "style": torch.zeros(1, dtype=torch.long),
            "image_rotary_emb": rope,
        }

    def ltx() -> tuple[Any, dict[str, Any]]:
        model = d.LTXVideoTransformer3DModel(
            in_channels=8,
            out_channels=8,
            num_attention_heads=2,
            attention_head_dim=8,
            cross_attention_dim=16,
            num_layers=2,
            caption_channels=16,
        )
        return model, denoiser_inputs(
            (1, 2 * 4 * 4, 8),
            (1, 7, 16),
            encoder_attention_mask=torch.ones(1, 7),
            num_frames=2,
            height=4,
            width=4,
        )

    def mochi() -> tuple[Any, dict[str, Any]]:
        model = d.MochiTransformer3DModel(
            patch_size=2,
            num_attention_heads=2,
            attention_head_dim=8,
            num_layers=2,
            pooled_projection_dim=16,
            in_channels=4,
            text_embed_dim=16,
            time_embed_dim=4,
            max_sequence_length=7,
        )
        return model, denoiser_inputs(
            (1, 4, 2, 8, 8), (1, 7, 16), encoder_attention_mask=torch.ones(1, 7, dtype=torch.bool)
        )

    def sana() -> tuple[Any, dict[str, Any]]:
        model = d.SanaTransformer2DModel(
            in_channels=4,
            out_channels=4,
            num_attention_heads=2,
            attention_head_dim=8,
            num_layers=2,
            num_cross_attention_heads=2,
            cross_attention_head_dim=8,
            cross_attention_dim=16,
            caption_channels=8,
            sample_size=8,
        )
        return model, denoiser_inputs((1, 4, 8, 8), (1, 7, 8))

    def auraflow() -> tuple[Any, dict[str, Any]]:
        model = d.AuraFlowTransformer2DModel(
            sample_size=8,
            patch_size=2,
            in_channels=4,
            num_mmdit_layers=1,
            num_single_dit_layers=1,
            attention_head_dim=8,
            num_attention_heads=4,
            joint_attention_dim=16,
            caption_projection_dim=32,
            out_channels=4,
            pos_embed_max_size=64,
        )
        return model, denoiser_inputs((1, 4, 8, 8), (1, 7, 16))

    def lumina2() -> tuple[Any, dict[str, Any]]:
        model = d.Lumina2Transformer2DModel(
            sample_size=8,
            patch_size=2,
            in_channels=4,
            hidden_size=24,
            num_layers=2,
            num_refiner_layers=1,
            num_attention_heads=3,
            num_kv_heads=1,
            multiple_of=16,
            axes_dim_rope=(4, 2, 2),
            axes_lens=(64, 16, 16),
            cap_feat_dim=8,
        )
        return model, denoiser_inputs(
            (1, 4, 8, 8), (1, 7, 8), encoder_attention_mask=torch.ones(1, 7, dtype=torch.bool)
        )

    def hunyuan_video() -> tuple[Any, dict[str, Any]]:
        model = d.HunyuanVideoTransformer3DModel(
            in_channels=4,
            out_channels=4,
            num_attention_heads=2,
            attention_head_dim=8,
            num_layers=1,
            num_single_layers=1,
            num_refiner_layers=1,
            patch_size=1,
            text_embed_dim=16,
            pooled_projection_dim=8,
            rope_axes_dim=(2, 4, 2),
        )
        return model, denoiser_inputs(
            (1, 4, 1, 8, 8),
            (1, 7, 16),
            encoder_attention_mask=torch.ones(1, 7),
            pooled_projections=randn(1, 8),
            guidance=torch.tensor([3.5]),
        )

    def qwen_image() -> tuple[Any, dict[str, Any]]:
        model = d.QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=16,
            out_channels=4,
            num_layers=2,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=16,
            axes_dims_rope=(8, 4, 4),
        )
        return model, denoiser_inputs(
            (1, 16, 16),
            (1, 7, 16),
            encoder_hidden_states_mask=torch.ones(1, 7),
            timestep=torch.tensor([0.5]),
            img_shapes=[(1, 4, 4)],
        )

    def cogview4() -> tuple[Any, dict[str, Any]]:
        model = d.CogView4Transformer2DModel(
            patch_size=2,
            in_channels=4,
            out_channels=4,
            num_layers=2,
            attention_head_dim=8,
            num_attention_heads=2,
            text_embed_dim=16,
            time_embed_dim=8,
            condition_dim=4,
            pos_embed_max_size=16,
            sample_size=8,
            rope_axes_dim=(4, 4),
        )
        size = torch.tensor([[64.0, 64.0]])
        return model, denoiser_inputs(
            (1, 4, 8, 8), (1, 7, 16), original_size=size, target_size=size, crop_coords=torch.zeros(1, 2)
        )

    def vae_wan() -> tuple[Any, dict[str, Any]]:  # causal 3-D convolutions with a feature cache
        model = d.AutoencoderKLWan(
            base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[True]
        )
        return model, {"sample": randn(1, 3, 5, 16, 16)}

    def vae_cogvideox() -> tuple[Any, dict[str, Any]]:
        model = d.AutoencoderKLCogVideoX(
            down_block_types=("CogVideoXDownBlock3D", "CogVideoXDownBlock3D"),
            up_block_types=("CogVideoXUpBlock3D", "CogVideoXUpBlock3D"),
            block_out_channels=(8, 16),
            latent_channels=4,
            layers_per_block=1,
            norm_num_groups=4,
            temporal_compression_ratio=2,
        )
        return model, {"sample": randn(1, 3, 3, 16, 16)}

    def vae_tiny() -> tuple[Any, dict[str, Any]]:
        model = d.AutoencoderTiny(
            encoder_block_out_channels=(8, 8),
            decoder_block_out_channels=(8, 8),
            num_encoder_blocks=(1, 1),
            num_decoder_blocks=(1, 1),
        )
        return model, {"sample": randn(1, 3, 16, 16)}

    def prior() -> tuple[Any, dict[str, Any]]:  # unCLIP / Kandinsky's image-embedding prior
        model = d.PriorTransformer(
            num_attention_heads=2, attention_head_dim=8, num_layers=2, embedding_dim=16, num_embeddings=7
        )
        return model, {
            "hidden_states": randn(1, 16),
            "timestep": t,
            "proj_embedding": randn(1, 16),
            "encoder_hidden_states": randn(1, 7, 16),
            "attention_mask": torch.ones(1, 7, dtype=torch.bool),
        }

    return {
        f.__name__: f
        for f in (
            unet2d,
            unet2d_condition,
            unet2d_sdxl,
            controlnet,
            vae,
            vq,
            unet3d,
            svd,
            dit,
            pixart,
            sd3,
            flux,
            flux2,
            wan,
            cogvideox,
            hunyuan_dit,
            ltx,
            mochi,
            sana,
            auraflow,
            lumina2,
            hunyuan_video,
            qwen_image,
            cogview4,
            vae_wan,
            vae_cogvideox,
            vae_tiny,
            prior,
        )
    }


def diffusers_names() -> list[str]:
    try:
        import diffusers  # noqa: F401 - optional: the suite is empty without it
    except ImportError:
        print("diffusers is not installed: the diffusers suite is empty", file=sys.stderr)
        return []
    return [f"diffusers:{n}" for n in _diffusers_models()]


def build_diffusers(name: str) -> Built:
    model, inputs = _diffusers_models()[name.split(":", 1)[1]]()
    return model, (), inputs, 1


SUITES: dict[str, tuple[Callable[[], list[str]], Callable[[str], Built]]] = {
    "torchvision": (torchvision_names, build_torchvision),
    "timm": (timm_names, build_timm),
    "transformers": (transformers_names, build_transformers),
    "diffusers": (diffusers_names, build_diffusers),
}


# ---------------------------------------------------------------- what "left as it was" compares
def _digest(tensor: Any) -> str:
    import torch

    if tensor.is_meta:
        return "meta"
    data = tensor.detach()
    if data.layout != torch.strided or data.is_quantized:
        data = data.dequantize() if data.is_quantized else data.to_dense()
    data = data.contiguous().cpu().reshape(-1)
    if data.is_complex():
        data = torch.view_as_real(data).reshape(-1)
    raw = data.view(torch.uint8).numpy() if data.numel() else b""
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def _tensors_in(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    import torch

    if isinstance(value, torch.Tensor):
        yield path, value
    elif depth < 3 and isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors_in(item, f"{path}[{i}]", depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors_in(item, f"{path}[{key!r}]", depth + 1)


_STANDARD = {"_parameters", "_buffers", "_modules"}


def snapshot(model: Any) -> dict[str, Any]:
    """Everything that must be the same after a profile, as comparable strings."""
    import torch

    state: dict[str, Any] = {}
    for key, value in model.state_dict(keep_vars=True).items():
        if not isinstance(value, torch.Tensor):  # packed params' dtype entries, extra state
            state[f"state:{key}"] = repr(value)
            continue
        state[f"state:{key}"] = (
            str(value.device),
            str(value.dtype),
            tuple(value.shape),
            _digest(value),
            bool(value.requires_grad),
        )
    for name, module in model.named_modules(remove_duplicate=False):
        state[f"training:{name}"] = module.training
        for key, value in vars(module).items():
            if key in _STANDARD:
                continue
            if key.endswith("hooks") and isinstance(value, dict):
                state[f"hooks:{name}.{key}"] = sorted(map(str, value))
                continue
            for path, tensor in _tensors_in(value, f"attr:{name}.{key}"):
                state[path] = (str(tensor.device), tuple(tensor.shape), _digest(tensor))
        state[f"attrs:{name}"] = sorted(vars(module))
    state["global:rng"] = _digest(torch.get_rng_state())
    state["global:grad"] = torch.is_grad_enabled()
    state["global:dtype"] = str(torch.get_default_dtype())
    hooks = torch.nn.modules.module
    state["global:hooks"] = [
        len(getattr(hooks, n)) for n in dir(hooks) if n.startswith("_global_") and n.endswith("hooks")
    ]
    return state


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [f"{k}: {before.get(k)} -> {after.get(k)}" for k in keys if before.get(k) != after.get(k)]


def meta_attributes(model: Any) -> list[str]:
    return [
        path
        for name, module in model.named_modules()
        for key, value in vars(module).items()
        for path, tensor in _tensors_in(value, f"{name}.{key}")
        if tensor.is_meta
    ]


def flat_outputs(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):  # transformers' ModelOutput is an OrderedDict
        return [t for v in value.values() for t in flat_outputs(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in flat_outputs(v)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [t for f in dataclasses.fields(value) for t in flat_outputs(getattr(value, f.name))]
    return []


def same_outputs(a: list[Any], b: list[Any]) -> bool:
    import torch

    return len(a) == len(b) and all(
        x.shape == y.shape and x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b, strict=True)
    )


# ---------------------------------------------------------------- brute-force nonzeros
def brute_nonzeros(model: Any) -> dict[str, tuple[int, int]]:
    """Per module: (elements, nonzeros) of its own params with ndim >= 2, not ``bias``,
    each tensor at the first module that holds it (the compression view's weights)."""
    import torch

    seen: set[int] = set()
    counts: dict[str, tuple[int, int]] = {}
    for name, module in model.named_modules():
        if ".parametrizations." in f".{name}.":
            continue  # a parametrized weight is counted, as evaluated, at the module that uses it
        n = nz = 0
        for key, param in module._parameters.items():
            if param is None or key == "bias" or param.ndim < 2 or id(param) in seen:
                continue
            seen.add(id(param))
            n += param.numel()
            nz += int(torch.count_nonzero(param.detach()))
        parametrizations = module._modules.get("parametrizations")
        for key in parametrizations._modules if parametrizations is not None else ():
            with torch.no_grad():
                value = getattr(module, key)
            n += value.numel()
            nz += int(torch.count_nonzero(value))
        if n:
            counts[name] = (n, nz)
    return counts


def check_compression(report: Any, model: Any) -> list[str]:
    view = report.compression
    brute = brute_nonzeros(model)
    problems = []
    for name, (n, nz) in brute.items():
        layer = view.layers.get(name)
        if layer is None:
            problems.append(f"{name}: {n} weight elements, no compression row")
        elif (layer.weight_params, layer.weight_nonzero) != (n, nz):
            problems.append(f"{name}: view {layer.weight_params}/{layer.weight_nonzero} brute {n}/{nz}")
    extra = [k for k, v in view.layers.items() if v.weight_params and k not in brute]
    problems += [f"{k}: a view row with weights brute force does not find" for k in extra]
    total_nz = sum(nz for _, nz in brute.values())
    total_n = sum(n for n, _ in brute.values())
    expected = report.params - total_n + total_nz
    if view.nonzero_params != expected:
        problems.append(f"nonzero_params {view.nonzero_params} != params - N + nz = {expected}")
    return problems


# ---------------------------------------------------------------- one model
def run_model(name: str, build: Callable[[str], Built], max_forward: float) -> dict[str, Any]:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    import flopmeter

    result: dict[str, Any] = {"name": name}
    torch.manual_seed(0)
    model, args, kwargs, expected_batch = build(name)
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    result["params"] = params
    if params > MAX_PARAMS:
        result["skipped"] = f"{params / 1e6:.0f}M params > {MAX_PARAMS / 1e6:.0f}M"
        return result

    def forward(count: bool) -> tuple[list[Any], int, float]:
        counter = FlopCounterMode(display=False)
        flops = -1
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            if count:
                try:
                    with counter:
                        model(*args, **kwargs)
                    flops = counter.get_total_flops()
                except AssertionError:  # FCM's module tracker fails under no_grad (cait, pit)
                    counter = FlopCounterMode(display=False)
                    with torch.enable_grad(), counter:
                        model(*args, **kwargs)
                    flops = counter.get_total_flops()
            torch.manual_seed(0)
            start = time.process_time()
            out = model(*args, **kwargs)
        return [t.clone() for t in flat_outputs(out)], flops, time.process_time() - start

    before_out, fcm_flops, seconds = forward(True)
    result["forward_s"] = round(seconds, 3)
    if seconds > max_forward:
        result["skipped"] = f"forward {seconds:.1f} s > {max_forward} s"
        return result
    # a model that changes itself on its first forward (RWKV's rescale) is compared from here
    before = snapshot(model)
    problems: list[str] = []

    inputs: Any = (
        kwargs if kwargs else (args[0] if len(args) == 1 and isinstance(args[0], torch.Tensor) else args)
    )

    def call(**options: Any) -> Any:
        report = flopmeter.profile(model, inputs, **options)
        diff = differences(before, snapshot(model))
        if diff:
            problems.append(f"after profile({options}): " + "; ".join(diff[:4]) + f" ({len(diff)} in all)")
        return report

    start = time.process_time()
    try:
        report = call()
    except Exception as error:  # noqa: BLE001 - the sweep records every failure
        result["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        result["untouched"] = not problems and not meta_attributes(model)
        result["problems"] = problems + [f"meta: {p}" for p in meta_attributes(model)]
        return result
    result["profile_s"] = round(time.process_time() - start, 3)
    result["computed"] = report.options.get("computed")
    result["macs"] = report.macs
    result["fcm_macs"] = fcm_flops // 2 if fcm_flops >= 0 else None  # None: FCM itself failed
    result["unsupported"] = {k: v.count for k, v in report.unsupported_ops().items()}
    result["batch"] = report.batch_size
    result["batch_expected"] = expected_batch
    numbers: dict[str, Any] = {}
    counted = None  # a profile that counted the nonzeros (a default one leaves them unknown)
    for shapes in (True, False):
        try:
            r = call(shapes_only=shapes, compression=True)
            counted = counted or r
            numbers[str(shapes)] = [r.macs, r.flops, r.params, r.batch_size, r.bytes_read, r.bytes_written]
        except Exception as error:  # noqa: BLE001
            numbers[str(shapes)] = f"{type(error).__name__}: {str(error)[:200]}"
    result["either_way"] = numbers
    default = [
        report.macs,
        report.flops,
        report.params,
        report.batch_size,
        report.bytes_read,
        report.bytes_written,
    ]
    values = numbers["False"]
    if isinstance(numbers["True"], str):  # needs values: the default must have fallen back
        result["same_either_way"] = values == default and result["computed"] == "values"
    else:
        result["same_either_way"] = numbers["True"][:4] == values[:4] == default[:4]
        result["same_bytes"] = numbers["True"][4:] == values[4:]
    try:
        result["compression"] = (
            check_compression(counted, model) if counted else ["no profile with compression=True ran"]
        )
    except Exception as error:  # noqa: BLE001
        result["compression"] = [f"{type(error).__name__}: {error}"]
    after_out, fcm_after, _ = forward(True)
    if not same_outputs(before_out, after_out):
        again, _, _ = forward(False)
        if same_outputs(after_out, again):
            problems.append("output after profiling differs from before")
        else:
            result["nondeterministic"] = True
    if fcm_after != fcm_flops:
        problems.append(f"FlopCounterMode after profiling {fcm_after} != before {fcm_flops}")
    problems += [f"meta: {p}" for p in meta_attributes(model)]
    result["problems"] = problems
    result["untouched"] = not problems
    return result


# ---------------------------------------------------------------- worker and driver
def worker(
    suite: str, names: list[str], out: str, max_forward: float, memory_gb: float, timeout: float
) -> None:
    import resource
    import signal

    signal.signal(signal.SIGALRM, lambda *_: os._exit(3))  # the driver records the model as timed out

    resource.setrlimit(resource.RLIMIT_AS, (int(memory_gb * 2**30),) * 2)
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    build = SUITES[suite][1]
    for name in names:
        with open(out, "a") as f:
            f.write(json.dumps({"started": name}) + "\n")
        signal.alarm(int(timeout))
        try:
            result = run_model(name, build, max_forward)
        except Exception as error:  # noqa: BLE001 - a model that cannot be built or run
            result = {"name": name, "build_error": f"{type(error).__name__}: {str(error)[:300]}"}
            result["trace"] = traceback.format_exc()[-600:]
        signal.alarm(0)
        with open(out, "a") as f:
            f.write(json.dumps(result, default=str) + "\n")
        print(line(result), flush=True)


def line(r: dict[str, Any]) -> str:
    name = r["name"]
    if "skipped" in r:
        return f"{name:60} skipped: {r['skipped']}"
    if "build_error" in r or "crashed" in r:
        return f"{name:60} NOT RUN: {r.get('build_error') or r.get('crashed')}"
    if "error" in r:
        return f"{name:60} PROFILE FAILED: {r['error'][:120]}"
    flags = [
        "ok" if not r["unsupported"] else f"unsupported {r['unsupported']}",
        "macs=fcm" if r["macs"] == r["fcm_macs"] else f"macs {r['macs']:,} fcm {r['fcm_macs']}",
        "same" if r["same_either_way"] else f"DIFFER {r['either_way']}",
        "untouched" if r["untouched"] else f"CHANGED {r['problems'][:2]}",
        "" if r.get("same_bytes", True) else f"bytes differ {r['either_way']}",
        f"batch {r['batch']}"
        + ("" if r["batch"] == r["batch_expected"] else f" (expected {r['batch_expected']})"),
        "nz ok" if not r["compression"] else f"NZ {r['compression'][:2]}",
    ]
    return f"{name:60} {r['computed']:6} " + " | ".join(flag for flag in flags if flag)


def summary(results: list[dict[str, Any]]) -> str:
    rows = [
        "| suite | tried | profiled | zero unsupported | MACs = FCM/2 | same either way | left untouched "
        "| batch right | nonzeros right | same bytes | skipped |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r["name"].split(":")[0], []).append(r)
    for group, members in sorted(groups.items()):
        ran = [r for r in members if "skipped" not in r]
        ok = [r for r in ran if "macs" in r]
        rows.append(
            f"| {group} | {len(ran)} | {len(ok)} | {sum(not r['unsupported'] for r in ok)} "
            f"| {sum(r['macs'] == r['fcm_macs'] for r in ok)} | {sum(bool(r['same_either_way']) for r in ok)} "
            f"| {sum(bool(r.get('untouched')) for r in ran if 'untouched' in r)} "
            f"| {sum(r['batch'] == r['batch_expected'] for r in ok)} | {sum(not r['compression'] for r in ok)} "
            f"| {sum(r.get('same_bytes', True) for r in ok)} "
            f"| {len(members) - len(ran)} |"
        )
    return "\n".join(rows)


def read_results(out: str) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The finished results in ``out``, and the model a worker started last without finishing."""
    done: dict[str, dict[str, Any]] = {}
    started = None
    if os.path.exists(out):
        with open(out) as f:
            for text in f:
                record = json.loads(text)
                if "started" in record:
                    started = record["started"]
                else:
                    done[record["name"]] = record
                    started = None
    return done, started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="all", choices=[*SUITES, "all"])
    parser.add_argument("--limit", type=int, default=None, help="the first N models of each suite")
    parser.add_argument(
        "--only", default=None, help="comma-separated model names (tv:resnet18, timm:..., hf:bert)"
    )
    parser.add_argument("--out", default="zoo_sweep.jsonl")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per model")
    parser.add_argument(
        "--max-forward", type=float, default=5.0, help="skip models whose forward takes longer"
    )
    parser.add_argument("--memory-gb", type=float, default=7.0, help="address-space cap of the worker")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--names", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker(
            options.worker,
            options.names.split(","),
            options.out,
            options.max_forward,
            options.memory_gb,
            options.timeout,
        )
        return
    suites = list(SUITES) if options.suite == "all" else [options.suite]
    only = set(options.only.split(",")) if options.only else None
    for suite in suites:
        names = SUITES[suite][0]()
        if only is not None:
            names = [n for n in names if n in only]
        names = names[: options.limit] if options.limit else names
        while True:
            done, _ = read_results(options.out)
            todo = [n for n in names if n not in done]
            if not todo:
                break
            command = [
                sys.executable,
                __file__,
                "--worker",
                suite,
                "--names",
                ",".join(todo),
                "--out",
                options.out,
            ]
            command += ["--max-forward", str(options.max_forward), "--memory-gb", str(options.memory_gb)]
            subprocess.run([*command, "--timeout", str(options.timeout)], check=False)
            done, started = read_results(options.out)
            if started is not None and started not in done:  # killed, out of memory, or timed out
                record = {"name": started, "crashed": "the worker died or timed out on this model"}
                with open(options.out, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(line(record), flush=True)
    done, _ = read_results(options.out)
    wanted = [n for s in suites for n in SUITES[s][0]() if n in done]
    print(summary([done[n] for n in wanted]))


if __name__ == "__main__":
    main()
