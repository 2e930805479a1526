"""Backward sweep (probe 9): a training step's MACs against FlopCounterMode's, on real models.

    PYTHONPATH=src python benchmarks/backward_sweep.py [NAME ...]   # all when none named
    PYTHONPATH=src python benchmarks/backward_sweep.py list

One JSON line per model, random weights, one thread, nothing downloaded. Both sides run the
model in train mode (batch statistics, dropout), batch 2, and differentiate what
``profile(backward=True)`` differentiates: every output tensor that requires grad, with a
gradient of ones, reaching every parameter that requires grad and every input that does
(FlopCounterMode's side runs ``backward()``, as training does, and puts the grads back).

FlopCounterMode counts contractions only (mm, addmm, bmm, baddbmm, convolution and its
backward, SDPA and its backward), FLOPs = 2 x MACs; its backward is counted in a second
FlopCounterMode around the backward alone. Our side: ``report.forward.macs`` and
``report.backward_cost.macs``. ``bwd_diff`` = ours - FCM's / 2 for the backward; where it is
not 0 the ops that differ are listed (``bwd_ops``: op -> [ours, FCM's] MACs).

The model is checked untouched after the profile: requires_grad, training flags, ``.grad``,
hooks (module, parameter and global) as before (``changed``).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils import flop_counter
from torch.utils._pytree import tree_flatten
from torch.utils.checkpoint import checkpoint
from torch.utils.flop_counter import FlopCounterMode

import flopmeter
from flopmeter.tracing.run import _plain

Built = tuple[nn.Module, Any]
IMAGE = (2, 3, 64, 64)


def _torchvision(name: str, shape: tuple[int, ...] = IMAGE, **options: Any) -> Callable[[], Built]:
    def build() -> Built:
        import torchvision

        model = torchvision.models.get_model(name, weights=None, **options)
        return model, (torch.randn(*shape),)

    return build


def _timm(name: str, size: int = 64, **options: Any) -> Callable[[], Built]:
    def build() -> Built:
        import timm

        model = timm.create_model(name, pretrained=False, **options)
        return model, (torch.randn(2, 3, size, size),)

    return build


_SMALL = {"vocab_size": 100, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "use_cache": False}


def _transformers(kind: str) -> Callable[[], Built]:
    def build() -> Built:
        import transformers as hf

        ids = torch.randint(3, 100, (2, 16))
        layers = {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 128,
        }
        if kind == "bert":
            return hf.BertModel(hf.BertConfig(**layers, **_SMALL)), {"input_ids": ids}
        if kind == "gpt2":
            config: Any = hf.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=64, **_SMALL)
            return hf.GPT2LMHeadModel(config), {"input_ids": ids}
        if kind.startswith("llama"):
            config = hf.LlamaConfig(**layers, num_key_value_heads=2, max_position_embeddings=64, **_SMALL)
            model = hf.LlamaForCausalLM(config)
            if kind == "llama_checkpointed":  # transformers' default: use_reentrant=False
                model.gradient_checkpointing_enable()
            return model, {"input_ids": ids}
        if kind == "t5":
            config = hf.T5Config(
                d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, decoder_start_token_id=0, **_SMALL
            )
            return hf.T5ForConditionalGeneration(config), {
                "input_ids": ids,
                "labels": ids[:, :8].contiguous(),
            }
        if kind == "whisper":  # parity_sweep's (batch 1), read-only
            from parity_sweep import _transformers as parity_transformers

            return parity_transformers("whisper")()
        if kind == "wav2vec2":
            config = hf.Wav2Vec2Config(
                **layers, conv_dim=(32, 32), conv_stride=(5, 2), conv_kernel=(10, 3),
                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, **_SMALL,
            )  # fmt: skip
            return hf.Wav2Vec2Model(config), {"input_values": torch.randn(2, 400)}
        config = hf.ViTConfig(**layers, image_size=32, patch_size=8)
        return hf.ViTModel(config), {"pixel_values": torch.randn(2, 3, 32, 32)}

    return build


class _Recurrent(nn.Module):
    """Embedding, a 2-layer recurrent net, a linear head (the usual text classifier)."""

    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.rnn = cell(16, 32, num_layers=2, batch_first=True)
        self.head = nn.Linear(32, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.embed(ids))[0])


def _recurrent(cell: type[nn.Module]) -> Callable[[], Built]:
    return lambda: (_Recurrent(cell), (torch.randint(0, 50, (2, 7)),))


class _Reentrant(nn.Module):
    """A block recomputed in the backward by torch's legacy reentrant checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.block = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1)
        )
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checkpoint(self.block, self.stem(x), use_reentrant=True)
        return self.head(x.mean((2, 3)))


class _Decoder(nn.Module):
    """Transposed convolutions (strided, grouped, output_padding), as in a segmentation head."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(8, 16, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 16, 4, stride=2, padding=1, groups=4),
            nn.ConvTranspose2d(16, 3, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


def _frozen_backbone() -> Built:
    """resnet18 with only its classifier trainable (fine-tuning the head)."""
    model, inputs = _torchvision("resnet18")()
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("fc."))
    return model, inputs


def _frozen_stem() -> Built:
    """resnet18 with conv1/bn1/layer1 frozen (their grad_weight is not needed; layer1's
    grad_input is, for nothing: no trainable layer lies before it)."""
    model, inputs = _torchvision("resnet18")()
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(("conv1.", "bn1.", "layer1.")))
    return model, inputs


def _input_grad() -> Built:
    """resnet18 whose input requires grad (saliency, adversarial examples): conv1's
    grad_input is computed."""
    model, (x,) = _torchvision("resnet18")()
    return model, (x.requires_grad_(True),)


def _input_grad_frozen() -> Built:
    """A frozen mobilenet_v3_small whose input requires grad (every grad_input, no grad_weight)."""
    model, (x,) = _torchvision("mobilenet_v3_small")()
    model.requires_grad_(False)
    return model, (x.requires_grad_(True),)


MODELS: dict[str, Callable[[], Built]] = {
    **{
        name: _torchvision(name)
        for name in (
            "resnet18",
            "resnet50",
            "mobilenet_v2",
            "mobilenet_v3_small",
            "efficientnet_b0",
            "convnext_tiny",
            "regnet_y_400mf",
            "regnet_x_400mf",
            "densenet121",
            "shufflenet_v2_x0_5",
            "squeezenet1_0",
            "mnasnet0_5",
            "alexnet",
            "vgg11_bn",
            "efficientnet_v2_s",
            "resnext50_32x4d",
        )
    },  # fmt: skip
    "vit_b_16": _torchvision("vit_b_16", image_size=64),
    "swin_t": _torchvision("swin_t", (2, 3, 112, 112)),
    "maxvit_t": _torchvision("maxvit_t", (2, 3, 224, 224)),
    "googlenet_aux": _torchvision("googlenet", (2, 3, 224, 224), init_weights=True, aux_logits=True),
    "inception_v3_aux": _torchvision("inception_v3", (2, 3, 299, 299), init_weights=True, aux_logits=True),
    "deit_tiny": _timm("deit_tiny_patch16_224", img_size=64),
    "timm_resnet18": _timm("resnet18"),
    "timm_efficientnet_b0": _timm("efficientnet_b0"),
    "convnext_atto": _timm("convnext_atto"),
    "levit_128s": _timm("levit_128s", 224),
    "mixer_s16": _timm("mixer_s16_224", 64, img_size=64),
    "poolformer_s12": _timm("poolformer_s12"),
    "mobilevit_xxs": _timm("mobilevit_xxs", 64),
    "regnetx_002": _timm("regnetx_002"),
    **{
        kind: _transformers(kind) for kind in ("bert", "gpt2", "llama", "t5", "whisper", "wav2vec2", "vit_hf")
    },
    "llama_checkpointed": _transformers("llama_checkpointed"),
    "reentrant_checkpoint": lambda: (_Reentrant(), (torch.randn(2, 3, 16, 16),)),
    "conv_transpose_decoder": lambda: (_Decoder(), (torch.randn(2, 8, 8, 8),)),
    "bilinear": lambda: (nn.Bilinear(8, 6, 5), (torch.randn(3, 8, requires_grad=True), torch.randn(3, 6))),
    "lstm": _recurrent(nn.LSTM),
    "gru": _recurrent(nn.GRU),
    "resnet18_frozen_backbone": _frozen_backbone,
    "resnet18_frozen_stem": _frozen_stem,
    "resnet18_input_grad": _input_grad,
    "mobilenet_v3_small_frozen_input_grad": _input_grad_frozen,
}


def _call(model: nn.Module, inputs: Any) -> Any:
    return model(**inputs) if isinstance(inputs, dict) else model(*inputs)


def _grouped_conv_backward(*args: Any, out_shape: Any, **kwargs: Any) -> int:
    """FlopCounterMode's convolution_backward with its grad_weight divided by ``groups``:
    torch 2.14's counts grad_weight as one ungrouped conv (C_in·C_out·k·N·out, g times the
    (C_in/g)·C_out·k·N·out it is: pytorch/pytorch#183405 fixes it upstream)."""
    groups, output_mask = args[9], args[10]
    count = flop_counter.conv_backward_flop  # registered shape-wrapped: the output goes as out_val
    grad_input = count(*args[:10], [output_mask[0], False, False], out_val=out_shape)
    grad_weight = count(*args[:10], [False, output_mask[1], False], out_val=out_shape)
    return grad_input + grad_weight // groups


def _fcm_step(model: nn.Module, inputs: Any, corrected: bool = False) -> tuple[int, int, dict[str, int]]:
    """FlopCounterMode's forward and backward MACs, and its backward MACs per op (with
    ``corrected``, its grouped convolutions' grad_weight fixed)."""
    mapping = {torch.ops.aten.convolution_backward: _grouped_conv_backward} if corrected else {}
    model.train()
    with torch.enable_grad():
        with FlopCounterMode(display=False) as forward:
            output = _call(model, inputs)
        tensors = [
            t for t in tree_flatten(_plain(output))[0] if isinstance(t, torch.Tensor) and t.requires_grad
        ]
        wrt = [p for p in model.parameters() if p.requires_grad]
        wrt += [t for t in tree_flatten(inputs)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
        grads = [(t, t.grad) for t in wrt]
        for t in wrt:
            t.grad = None
        with FlopCounterMode(display=False, custom_mapping=mapping) as backward:  # as training does
            torch.autograd.backward(tensors, [torch.ones_like(t) for t in tensors])
        for t, grad in grads:
            t.grad = grad
    per_op = {str(op): flops // 2 for op, flops in backward.get_flop_counts().get("Global", {}).items()}
    return forward.get_total_flops() // 2, backward.get_total_flops() // 2, per_op


def _state(model: nn.Module) -> dict[str, Any]:
    """What a profile must leave as it was."""
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    from torch.nn.modules import module as nn_module

    return {
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "training": [m.training for m in model.modules()],
        "grad": [p.grad is None for p in model.parameters()],
        "param_hooks": [len(p._backward_hooks or {}) for p in model.parameters()],
        "module_hooks": sum(len(getattr(m, h, None) or {}) for m in model.modules() for h in hooks),
        "global_hooks": sum(
            len(value)
            for name, value in vars(nn_module).items()
            if name.startswith("_global_") and isinstance(value, dict)
        ),
        "params": [(n, p.data_ptr()) for n, p in model.named_parameters()],
    }


def _backward_by_op(report: Any) -> dict[str, int]:
    per_op: dict[str, int] = {}
    for record in report.ops:
        if record.phase == "backward" and record.cost.macs:
            per_op[record.op] = per_op.get(record.op, 0) + record.cost.macs
    return per_op


def _ours_op(name: str) -> str:
    """FCM names an op ``aten.mm``; ours ``mm`` or ``aten.mm`` (either way, the same key)."""
    return name.removeprefix("aten.").split(".default")[0]


def run_model(name: str) -> dict[str, Any]:
    torch.manual_seed(0)
    model, inputs = MODELS[name]()
    model.train()
    before = _state(model)
    start = time.process_time()
    report = flopmeter.profile(model, inputs, backward=True)
    seconds = time.process_time() - start
    after = _state(model)
    changed = [key for key in before if before[key] != after[key]]
    refused = ""
    try:
        flopmeter.profile(model, inputs, backward=True, shapes_only=True)
    except ValueError as error:
        refused = str(error)[:60]
    fcm_fwd, fcm_bwd, fcm_ops = _fcm_step(model, inputs)
    fcm_fixed = _fcm_step(model, inputs, corrected=True)[1]
    ours_ops = {_ours_op(op): macs for op, macs in _backward_by_op(report).items()}
    theirs = {_ours_op(op): macs for op, macs in fcm_ops.items()}
    differing = {
        op: [ours_ops.get(op, 0), theirs.get(op, 0)]
        for op in sorted({*ours_ops, *theirs})
        if ours_ops.get(op, 0) != theirs.get(op, 0)
    }
    return {
        "model": name,
        "training": report.training,
        "fwd": report.forward.macs,
        "fcm_fwd": fcm_fwd,
        "bwd": report.backward_cost.macs,
        "fcm_bwd": fcm_bwd,
        "fwd_diff": report.forward.macs - fcm_fwd,
        "bwd_diff": report.backward_cost.macs - fcm_bwd,
        "fcm_bwd_grouped_fixed": fcm_fixed,
        "bwd_diff_grouped_fixed": report.backward_cost.macs - fcm_fixed,
        "bwd_over_fwd": round(report.backward_cost.macs / max(report.forward.macs, 1), 3),
        "bwd_ops": differing,
        "unsupported": sorted(report.unsupported),
        "changed": changed,
        "shapes_only_backward": refused,
        "cpu_s": round(seconds, 1),
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["list"]:
        print("\n".join(MODELS))
        return 0
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    for name in argv or list(MODELS):
        try:
            result = run_model(name)
        except Exception as error:  # one model's failure is a finding, not the sweep's end
            result = {"model": name, "error": f"{type(error).__name__}: {str(error)[:300]}"}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
