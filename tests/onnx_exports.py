"""Models exported to ONNX once per test session (slow: torch.onnx.export), with the
PyTorch Report of the same model for comparison."""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import flopmeter

TEXT_LENGTH = 16


@dataclass
class Exported:
    path: Path
    torch_report: Any
    dims: dict[str, int]


def randomize(model: torch.nn.Module) -> torch.nn.Module:
    """Random weights and BatchNorm statistics: an untrained model's identical weights
    (all-ones norms, zero biases) are deduplicated or dropped by the exporters."""
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.05)
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
    return model.eval()


class TokensToTensor(torch.nn.Module):
    """ids -> last hidden state (BERT) or logits (Llama, use_cache=False)."""

    def __init__(self, model: torch.nn.Module, logits: bool) -> None:
        super().__init__()
        self.model, self.logits = model, logits

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.logits:
            return self.model(input_ids=ids, use_cache=False).logits
        return self.model(input_ids=ids).last_hidden_state


def build(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    if name in ("resnet18", "mobilenet_v2"):
        import torchvision

        return randomize(getattr(torchvision.models, name)(weights=None)), torch.randn(1, 3, 64, 64)
    if name == "vit":  # vit_b_16's architecture, small: 2 layers, 32x32 images, 4 patches
        from torchvision.models import VisionTransformer

        vit = VisionTransformer(
            image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64
        )
        return randomize(vit), torch.randn(1, 3, 32, 32)
    import transformers

    ids = torch.zeros(1, TEXT_LENGTH, dtype=torch.long)
    if name == "bert":
        config = transformers.BertConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
            vocab_size=1000, max_position_embeddings=128,
        )  # fmt: skip
        return TokensToTensor(
            randomize(transformers.BertModel(config, add_pooling_layer=False)), False
        ).eval(), ids
    config = transformers.LlamaConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, vocab_size=1000, max_position_embeddings=128,
    )  # fmt: skip
    return TokensToTensor(randomize(transformers.LlamaForCausalLM(config)), True).eval(), ids


def export(name: str, exporter: str, folder: Path) -> Exported:
    """``exporter``: "dynamo18", "dynamo23" or "legacy". Text models get a dynamic
    sequence length T (bound to 16 when counted)."""
    model, example = build(name)
    report = flopmeter.profile(model, example)
    path = folder / f"{name}_{exporter}.onnx"
    text = example.dtype == torch.long
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            axes = {"ids": {1: "T"}} if text else None
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=17,
                input_names=["ids"],
                dynamic_axes=axes,
            )
        else:
            shapes = {"ids": {1: torch.export.Dim("T", max=128)}} if text else None
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                opset_version=int(exporter[-2:]),
                dynamic_shapes=shapes,
            )
    return Exported(path, report, {"T": TEXT_LENGTH} if text else {})
