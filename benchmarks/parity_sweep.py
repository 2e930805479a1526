"""Parity sweep (probe 6): flopmeter against its peers and against its own ONNX count.

    PYTHONPATH=src python benchmarks/parity_sweep.py peers resnet18 [NAME ...]
    PYTHONPATH=src python benchmarks/parity_sweep.py onnx resnet18 [NAME ...]
    PYTHONPATH=src python benchmarks/parity_sweep.py list

One JSON line per model, random weights, one thread, nothing downloaded.

``peers``: our per-module MACs against FlopCounterMode's per-module counts (grad on, SDPA on
the math kernel, so nn.MultiheadAttention runs unfused), fvcore's ``by_module()`` against our
MACs plus fvcore's own additions (eval BatchNorm 2 per element, LayerNorm/GroupNorm 5,
InstanceNorm 4, adaptive average pooling 1 per input, nearest upsampling 1 and bilinear
upsampling and grid sampling 4 per output), and ptflops' totals (``count_functional`` on and
off) beside our ``ptflops`` view. A module listed under ``module_diffs`` differs; the reasons
found are in docs/probe-6/parity.md and docs/conventions.md.

``onnx``: the model exported by dynamo (opset 18) and the legacy exporter (opset 17), weights
and BatchNorm statistics randomised (identical untrained weights are deduplicated), counted
with ``flopmeter.profile_onnx``; ONNX minus PyTorch MACs, FLOPs and params, and the FLOPs by
operator on both sides. The differences are explained in docs/onnx.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import torch

import flopmeter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from isolated import randomize  # noqa: E402

Built = tuple[torch.nn.Module, Any]


def _torchvision(name: str, shape: tuple[int, ...] = (1, 3, 224, 224), **options: Any) -> Callable[[], Built]:
    def build() -> Built:
        import torchvision

        model = torchvision.models.get_model(name, weights=None, **options).eval()
        return model, (torch.randn(*shape),)

    return build


def _detector() -> Built:
    import torchvision

    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None
    )
    return model.eval(), ([torch.rand(3, 320, 320)],)


def _raft() -> Built:
    import torchvision

    model = torchvision.models.optical_flow.raft_small(weights=None).eval()
    return model, (torch.randn(1, 3, 128, 128), torch.randn(1, 3, 128, 128))


def _timm(name: str, size: int = 224) -> Callable[[], Built]:
    def build() -> Built:
        import timm

        return timm.create_model(name, pretrained=False).eval(), (torch.randn(1, 3, size, size),)

    return build


def _transformers(kind: str) -> Callable[[], Built]:
    def build() -> Built:
        import transformers as hf

        ids = torch.randint(0, 100, (1, 16))
        small = {"vocab_size": 100, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
        if kind == "bert":
            config: Any = hf.BertConfig(
                hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, **small
            )
            return hf.AutoModel.from_config(config).eval(), {"input_ids": ids}
        if kind == "gpt2":
            config = hf.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=64, **small)
            return hf.AutoModel.from_config(config).eval(), {"input_ids": ids}
        if kind == "t5":
            config = hf.T5Config(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, **small)
            return hf.AutoModel.from_config(config).eval(), {
                "input_ids": ids,
                "decoder_input_ids": ids[:, :8],
            }
        if kind == "whisper":
            config = hf.WhisperConfig(
                d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=16, max_source_positions=32,
                max_target_positions=32, decoder_start_token_id=1, **small,
            )  # fmt: skip
            features = torch.randn(1, 16, 64)
            return hf.AutoModel.from_config(config).eval(), {
                "input_features": features,
                "decoder_input_ids": ids[:, :8],
            }
        config = hf.LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=64, **small,
        )  # fmt: skip
        return hf.AutoModel.from_config(config).eval(), {"input_ids": ids}

    return build


MODELS: dict[str, Callable[[], Built]] = {
    **{
        name: _torchvision(name)
        for name in ("resnet18", "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny")
    },
    **{name: _torchvision(name) for name in ("swin_t", "vit_b_16", "regnet_y_400mf", "squeezenet1_0")},
    **{name: _torchvision(name) for name in ("densenet121", "shufflenet_v2_x1_0")},
    "googlenet": _torchvision("googlenet", init_weights=True, aux_logits=False),
    "inception_v3": _torchvision("inception_v3", (1, 3, 299, 299), init_weights=True, aux_logits=False),
    "deeplabv3_mobilenet_v3_large": _torchvision("deeplabv3_mobilenet_v3_large", weights_backbone=None),
    "r3d_18": _torchvision("r3d_18", (1, 3, 8, 112, 112)),
    "raft_small": _raft,
    "fasterrcnn_mobilenet_v3_large_320_fpn": _detector,
    **{
        name: _timm(name)
        for name in ("levit_128s", "coatnet_nano_rw_224", "efficientformer_l1", "poolformer_s12")
    },
    **{name: _timm(name) for name in ("pvt_v2_b0", "repvit_m1", "resmlp_12_224")},
    "mobilevit_xxs": _timm("mobilevit_xxs", 256),
    "edgenext_xx_small": _timm("edgenext_xx_small", 256),
    **{kind: _transformers(kind) for kind in ("bert", "gpt2", "t5", "whisper", "llama")},
}


def _call(model: torch.nn.Module, inputs: Any) -> Any:
    return model(**inputs) if isinstance(inputs, dict) else model(*inputs)


def _subtree(report: Any, module: str) -> list[Any]:
    return [
        r
        for r in report.ops
        if r.phase == "forward" and (not module or r.module == module or r.module.startswith(module + "."))
    ]


def _fvcore_extra(record: Any, module_type: str) -> int:
    """fvcore's additions to the MACs for one of our op records (its jit handles)."""
    n = math.prod(record.shapes[0]) if record.shapes else 0
    if record.op == "aten.native_batch_norm" and "InstanceNorm" in module_type:
        return 5 * n if len(record.shapes) > 1 else 4 * n
    if record.op in ("aten.native_batch_norm", "aten._native_batch_norm_legit_no_training"):
        return 2 * n if len(record.shapes) > 1 else n
    if record.op in ("aten.native_layer_norm", "aten.native_group_norm"):
        return 5 * n if len(record.shapes) > 1 else 4 * n
    if record.op == "aten.mean" and "AdaptiveAvgPool2d" in module_type:
        return n
    if record.op == "aten.upsample_nearest2d":
        return int(record.cost.ptflops_macs)
    if record.op == "aten.upsample_bilinear2d":
        return 4 * int(record.cost.ptflops_macs)
    if record.op == "aten.grid_sampler_2d":
        outputs = (record.cost.flops - 3 * math.prod(record.shapes[1])) // 9
        return 4 * int(outputs)
    return 0


class _Keywords(torch.nn.Module):
    """Positional tensors -> keyword arguments, for jit tracing and ONNX export; returns
    the last hidden state (the caches of transformers' outputs do not trace)."""

    def __init__(self, model: torch.nn.Module, keys: list[str]) -> None:
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, *values: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.keys, values, strict=True)), use_cache=False).last_hidden_state


def peers(name: str) -> dict[str, Any]:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model, inputs = MODELS[name]()
    report = flopmeter.profile(model, inputs, shapes_only=False)
    out: dict[str, Any] = {
        "model": name,
        "macs": report.macs,
        "flops": report.flops,
        "ptflops_view": report.flops_as("ptflops"),
    }
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter, torch.enable_grad():
        _call(model, inputs)
    diffs = []
    for scope, ops in counter.get_flop_counts().items():
        if scope == "Global":
            continue
        ours = scope.split(".", 1)[1] if "." in scope else ""
        theirs = sum(ops.values())
        if ours not in report.modules or 2 * report.modules[ours].total.macs != theirs:
            diffs.append(
                [scope, theirs, 2 * report.modules[ours].total.macs if ours in report.modules else None]
            )
    out["flop_counter"] = {"total": counter.get_total_flops(), "module_diffs": diffs}
    try:
        from fvcore.nn import FlopCountAnalysis

        traced, args, prefix = model, inputs, ""
        if isinstance(inputs, dict):
            traced, args, prefix = _Keywords(model, list(inputs)), tuple(inputs.values()), "model."
        with torch.no_grad():
            analysis = (
                FlopCountAnalysis(traced, args)
                .unsupported_ops_warnings(False)
                .uncalled_modules_warnings(False)
            )
            by_module = analysis.by_module()
        types = {n: s.type for n, s in report.modules.items()}
        fv_diffs = []
        for scope, theirs in by_module.items():
            ours = (
                scope[len(prefix) :]
                if scope.startswith(prefix)
                else ("" if scope == prefix.rstrip(".") else None)
            )
            if ours is None or ours not in report.modules:
                continue
            expected = sum(
                r.cost.macs + _fvcore_extra(r, types.get(r.module, "")) for r in _subtree(report, ours)
            )
            if expected != theirs:
                fv_diffs.append([scope, theirs, expected])
        out["fvcore"] = {
            "total": analysis.total(),
            "unsupported": dict(analysis.unsupported_ops()),
            "module_diffs": fv_diffs,
        }
    except Exception as error:  # noqa: BLE001 - a peer that cannot trace the model is recorded, not fatal
        out["fvcore"] = {"error": repr(error)[:300]}
    try:
        import ptflops

        single = isinstance(inputs, tuple) and len(inputs) == 1 and isinstance(inputs[0], torch.Tensor)
        totals = {}
        for functional in (True, False):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                macs, _ = ptflops.get_model_complexity_info(
                    model, (1,), as_strings=False, print_per_layer_stat=False,
                    input_constructor=(lambda _: inputs[0]) if single else (lambda _: dict(inputs)) if isinstance(inputs, dict) else None,
                    backend_specific_config={"count_functional": functional},
                )  # fmt: skip
            totals["default" if functional else "modules_only"] = macs
        out["ptflops"] = totals
        model.eval()
    except Exception as error:  # noqa: BLE001
        out["ptflops"] = {"error": repr(error)[:300]}
    return out


def onnx(name: str) -> dict[str, Any]:
    model, inputs = MODELS[name]()
    model = randomize(model)
    if isinstance(inputs, dict):
        model, inputs = _Keywords(model, list(inputs)).eval(), tuple(inputs.values())
    report = flopmeter.profile(model, inputs)

    def by_op(rep: Any) -> dict[str, int]:
        return {op: stats.cost.flops for op, stats in rep.operators.items() if stats.cost.flops}

    out: dict[str, Any] = {
        "model": name,
        "torch": {
            "macs": report.macs,
            "flops": report.flops,
            "params": report.params,
            "by_op": by_op(report),
        },
    }
    with tempfile.TemporaryDirectory() as folder:
        for exporter in ("dynamo18", "legacy"):
            path = os.path.join(folder, f"{name}_{exporter}.onnx")
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    if exporter == "legacy":
                        torch.onnx.export(model, inputs, path, dynamo=False, opset_version=17)
                    else:
                        torch.onnx.export(model, inputs, path, dynamo=True, opset_version=18)
                counted = flopmeter.profile_onnx(path)
            except Exception as error:  # noqa: BLE001 - an export that fails inside torch is recorded
                out[exporter] = {"error": repr(error)[-300:]}
                continue
            out[exporter] = {
                "d_macs": counted.macs - report.macs,
                "d_flops": counted.flops - report.flops,
                "d_params": counted.params - report.params,
                "unsupported": {op: u.calls for op, u in counted.unsupported.items()},
                "by_op": by_op(counted),
            }
    return out


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("peers", "onnx", "list"):
        print(__doc__)
        return 2
    if argv[0] == "list":
        print("\n".join(MODELS))
        return 0
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    for name in argv[1:] or list(MODELS):
        torch.manual_seed(0)
        result = peers(name) if argv[0] == "peers" else onnx(name)
        print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
