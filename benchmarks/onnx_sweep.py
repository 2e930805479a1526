"""Does ``flopmeter.profile_onnx`` of an exported file count what ``flopmeter.profile`` of
the PyTorch model counts? The files a deploying user holds, from this machine's libraries.

    PYTHONPATH=src python benchmarks/onnx_sweep.py [--only NAME,NAME] [--out onnx_sweep.jsonl]
        [--timeout 600] [--memory-gb 6] [--variants legacy17,dynamo18,...]
    PYTHONPATH=src python benchmarks/onnx_sweep.py --list

For each model (torchvision classification / detection / segmentation / video, timm convnets
and ViTs, transformers BERT / GPT-2 / Llama / T5 encoder / DistilBERT from small configs, an
LSTM and a GRU model; ``weights=None`` / ``from_config``, random weights and BatchNorm
statistics, nothing downloaded), the files written are:

- ``legacy17`` (``torch.onnx.export(..., dynamo=False, opset_version=17)``, with a dynamic
  batch, or a dynamic sequence length T for text and recurrent models), ``dynamo18`` and
  ``dynamo23`` (``dynamo=True``; a failing export is recorded with its reason);
- from the legacy file (the dynamo one where legacy fails): onnxruntime's optimized graph
  (``SessionOptions.optimized_model_filepath``) at the ``basic`` and ``extended`` levels,
  ``quantize_dynamic`` (``qdyn``), ``quantize_static`` in QDQ (``qdq``) and QOperator
  (``qop``) formats, calibrated on one random input.

Every file is counted with ``profile_onnx`` (dims bound to the PyTorch inputs' sizes) and set
against the PyTorch report: MACs, FLOPs, params; per module the MACs of the modules both
reports name; unsupported ops; the report's own ``differences``. A convnet's exported
BatchNorm is folded into the Conv, so the PyTorch model is also profiled after
``torch.fx.experimental.optimization.fuse`` (the same folding in PyTorch): ``d_*_fused`` are
the differences from that model, zero where the fold is the only difference. Optimized and
quantized files are also set against the file they were made from (``d_*_source``).
The CLI is run on each float file as a new user would: ``flopmeter FILE`` with no option
(exit 2 naming the dim when a dim is symbolic), then with ``--input`` (and ``--dim``).

Each model runs in its own process (one thread, address space capped) under ``timeout``;
one JSON line per model goes to ``--out``, then a summary of the residual differences.
The findings are in docs/probe-10/onnx.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from isolated import randomize, run_all, run_worker  # noqa: E402


@dataclass
class Case:
    """A model and how to export it: example inputs (positional), the input names, which
    axis of each input is dynamic and under what dim name."""

    model: torch.nn.Module
    inputs: tuple[torch.Tensor, ...]
    names: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)

    def dims(self) -> dict[str, int]:
        return {
            dim: int(self.inputs[self.names.index(name)].shape[axis])
            for name, axes in self.dynamic.items()
            for axis, dim in axes.items()
        }


def _image(model: torch.nn.Module, *shape: int) -> Case:
    return Case(randomize(model), (torch.randn(*shape),), ["x"], {"x": {0: "batch"}})


def _torchvision(name: str, size: int = 64, **options: Any) -> Callable[[], Case]:
    def build() -> Case:
        import torchvision

        return _image(torchvision.models.get_model(name, weights=None, **options), 1, 3, size, size)

    return build


def _segmentation(name: str) -> Callable[[], Case]:
    def build() -> Case:
        import torchvision

        class Out(torch.nn.Module):  # the "out" tensor of the result dict
            def __init__(self) -> None:
                super().__init__()
                self.model = torchvision.models.get_model(
                    name, weights=None, weights_backbone=None, aux_loss=False
                )

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.model(x)["out"]

        return _image(Out(), 1, 3, 96, 96)

    return build


def _detector() -> Case:
    import torchvision

    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)

    class Boxes(torch.nn.Module):  # image batch -> the first image's boxes
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(list(x))[0]["boxes"]

    return Case(randomize(Boxes()), (torch.rand(1, 3, 320, 320),), ["x"])


def _timm(name: str, size: int = 64, **options: Any) -> Callable[[], Case]:
    def build() -> Case:
        import timm

        return _image(timm.create_model(name, pretrained=False, **options), 1, 3, size, size)

    return build


class _Tokens(torch.nn.Module):
    """ids -> last hidden state (or logits): one tensor out, no cache."""

    def __init__(self, model: torch.nn.Module, logits: bool = False) -> None:
        super().__init__()
        self.model, self.logits = model, logits

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.logits:
            return self.model(input_ids=ids, use_cache=False).logits
        return self.model(input_ids=ids).last_hidden_state


def _transformers(kind: str) -> Callable[[], Case]:
    def build() -> Case:
        import transformers as hf

        small: dict[str, Any] = {"vocab_size": 1000}
        if kind == "bert":
            config: Any = hf.BertConfig(
                hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                max_position_embeddings=128, **small,
            )  # fmt: skip
            model: Any = _Tokens(hf.BertModel(config, add_pooling_layer=False))
        elif kind == "distilbert":
            config = hf.DistilBertConfig(dim=64, n_layers=2, n_heads=4, hidden_dim=128, **small)
            model = _Tokens(hf.DistilBertModel(config))
        elif kind == "gpt2":
            config = hf.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=128, **small)
            model = _Tokens(hf.GPT2LMHeadModel(config), logits=True)
        elif kind == "t5enc":
            config = hf.T5Config(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, **small)
            model = _Tokens(hf.T5EncoderModel(config))
        elif kind == "qwen2":
            config = hf.Qwen2Config(
                hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=128, **small,
            )  # fmt: skip
            model = _Tokens(hf.Qwen2ForCausalLM(config), logits=True)
        else:
            config = hf.LlamaConfig(
                hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=128, **small,
            )  # fmt: skip
            model = _Tokens(hf.LlamaForCausalLM(config), logits=True)
        ids = torch.randint(3, 1000, (1, 16), generator=torch.Generator().manual_seed(0))
        return Case(randomize(model), (ids,), ["ids"], {"ids": {1: "T"}})

    return build


class LSTMTagger(torch.nn.Module):
    """Embedding(1000, 32) -> LSTM(32, 48, 2 layers, bidirectional) -> Linear(96, 10)."""

    def __init__(self, cell: str = "LSTM") -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(1000, 32)
        self.rnn = getattr(torch.nn, cell)(32, 48, num_layers=2, bidirectional=True, batch_first=True)
        self.head = torch.nn.Linear(96, 10)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(ids))
        return self.head(out)


def _recurrent(cell: str) -> Callable[[], Case]:
    def build() -> Case:
        ids = torch.randint(0, 1000, (2, 12), generator=torch.Generator().manual_seed(0))
        return Case(randomize(LSTMTagger(cell)), (ids,), ["ids"], {"ids": {1: "T"}})

    return build


def _vit() -> Case:  # vit_b_16's architecture, small
    from torchvision.models import VisionTransformer

    model = VisionTransformer(
        image_size=64, patch_size=16, num_layers=2, num_heads=2, hidden_dim=64, mlp_dim=128
    )
    return _image(model, 1, 3, 64, 64)


MODELS: dict[str, Callable[[], Case]] = {
    **{
        f"tv:{name}": _torchvision(name)
        for name in (
            "resnet18",
            "resnet50",
            "mobilenet_v2",
            "mobilenet_v3_small",
            "efficientnet_b0",
            "convnext_tiny",
            "regnet_y_400mf",
            "densenet121",
            "shufflenet_v2_x0_5",
            "squeezenet1_1",
            "mnasnet0_5",
            "alexnet",
            "vgg11_bn",
            "efficientnet_v2_s",
            "resnext50_32x4d",
        )
    },  # fmt: skip
    "tv:googlenet": _torchvision("googlenet", init_weights=True, aux_logits=False),
    "tv:inception_v3": _torchvision("inception_v3", 96, init_weights=True, aux_logits=False),
    "tv:swin_t": _torchvision("swin_t", 112),
    "tv:maxvit_t": _torchvision("maxvit_t", 224),
    "tv:vit_small": _vit,
    "tv:r3d_18": lambda: _image(__import__("torchvision").models.video.r3d_18(weights=None), 1, 3, 4, 32, 32),
    "tv:deeplabv3_mobilenet_v3_large": _segmentation("deeplabv3_mobilenet_v3_large"),
    "tv:lraspp_mobilenet_v3_large": _segmentation("lraspp_mobilenet_v3_large"),
    "tv:ssdlite320_mobilenet_v3_large": _detector,
    "timm:resnet18d": _timm("resnet18d"),
    "timm:efficientnet_b0": _timm("efficientnet_b0"),
    "timm:mobilenetv3_small_050": _timm("mobilenetv3_small_050"),
    "timm:convnext_atto": _timm("convnext_atto"),
    "timm:regnetx_002": _timm("regnetx_002"),
    "timm:vit_tiny_patch16_224": _timm("vit_tiny_patch16_224", 64, img_size=64),
    "timm:deit_tiny_patch16_224": _timm("deit_tiny_patch16_224", 64, img_size=64),
    "timm:mixer_s16_224": _timm("mixer_s16_224", 64, img_size=64),
    "timm:levit_128s": _timm("levit_128s", 224),
    "hf:bert": _transformers("bert"),
    "hf:distilbert": _transformers("distilbert"),
    "hf:gpt2": _transformers("gpt2"),
    "hf:llama": _transformers("llama"),
    "hf:qwen2": _transformers("qwen2"),
    "hf:t5enc": _transformers("t5enc"),
    "rnn:lstm": _recurrent("LSTM"),
    "rnn:gru": _recurrent("GRU"),
}

FLOAT_VARIANTS = ("legacy17", "dynamo18", "dynamo23")
DERIVED_VARIANTS = ("basic", "extended", "qdyn", "qdq", "qop")


def _quiet() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def export(case: Case, variant: str, path: str) -> None:
    with _quiet(), torch.no_grad():
        if variant == "legacy17":
            torch.onnx.export(
                case.model, case.inputs, path, dynamo=False, opset_version=17,
                input_names=case.names, dynamic_axes=case.dynamic or None,
            )  # fmt: skip
            return
        shapes = None  # a batch of 1 would specialise: dynamo exports the sequence length only
        if "T" in case.dims():
            shapes = tuple(
                {
                    axis: torch.export.Dim(dim, min=2, max=4096)
                    for axis, dim in case.dynamic.get(n, {}).items()
                }
                for n in case.names
            )
        torch.onnx.export(
            case.model, case.inputs, path, dynamo=True, opset_version=int(variant[-2:]),
            input_names=case.names, dynamic_shapes=shapes,
        )  # fmt: skip


def derive(case: Case, source: str, variant: str, path: str) -> None:
    """onnxruntime's optimized or quantized file of ``source``."""
    import numpy as np
    import onnxruntime as ort
    from onnxruntime import quantization as q

    with _quiet():
        if variant in ("basic", "extended"):
            options = ort.SessionOptions()
            options.graph_optimization_level = (
                ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
                if variant == "basic"
                else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            )
            options.optimized_model_filepath = path
            ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
            return
        if variant == "qdyn":
            q.quantize_dynamic(source, path)
            return
        feeds = [{n: t.numpy() for n, t in zip(case.names, case.inputs, strict=True)}]

        class Reader(q.CalibrationDataReader):
            def __init__(self) -> None:
                self.items = iter(feeds)

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self.items, None)

        form = q.QuantFormat.QDQ if variant == "qdq" else q.QuantFormat.QOperator
        q.quantize_static(source, path, Reader(), quant_format=form)


def _module_macs(report: Any) -> dict[str, int]:
    return {name: stats.total.macs for name, stats in report.modules.items()}


def _totals(report: Any) -> dict[str, int]:
    return {"macs": report.macs, "flops": report.flops, "params": report.params}


def _deltas(ours: dict[str, int], theirs: dict[str, int], suffix: str) -> dict[str, int]:
    return {f"d_{key}{suffix}": ours[key] - theirs[key] for key in ("macs", "flops", "params")}


def compare_modules(torch_report: Any, onnx_report: Any) -> dict[str, Any]:
    """MACs of the modules both reports name (the root excluded)."""
    mine, theirs = _module_macs(torch_report), _module_macs(onnx_report)
    shared = [n for n in mine if n and n in theirs]
    differ = {n: (mine[n], theirs[n]) for n in shared if mine[n] != theirs[n]}
    return {
        "shared": len(shared),
        "torch_only": len([n for n in mine if n and n not in theirs]),
        "differ": differ,
    }


def run_cli(arguments: list[str]) -> dict[str, Any]:
    from flopmeter.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _quiet():
        code = main([*arguments, "--format", "json"], stdout=out, stderr=err)
    result: dict[str, Any] = {"code": code}
    if code == 0:
        result["macs"] = json.loads(out.getvalue())["totals"]["macs"]
    else:
        result["error"] = err.getvalue().strip()[-300:]
    return result


def cli_checks(case: Case, path: str) -> dict[str, Any]:
    """``flopmeter FILE`` bare, then with --input (and --dim for the dynamic dims)."""
    bare = run_cli([path])
    spec = [f"{n}:{'x'.join(map(str, t.shape))}" for n, t in zip(case.names, case.inputs, strict=True)]
    given = run_cli([path, *[a for s in spec for a in ("--input", s)]])
    dims = _file_dims(path, case.dims())
    bound = run_cli([path, *[a for d, v in dims.items() for a in ("--dim", f"{d}={v}")]])
    return {"bare": bare, "input": given, "dim": bound}


_PLAIN_BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


def fold_batch_norms(model: torch.nn.Module) -> torch.nn.Module | None:
    """A copy of ``model`` with each BatchNorm that follows a convolution (its only reader)
    folded into it (``torch.nn.utils.fusion.fuse_conv_bn_eval``), as both exporters do;
    None when torch.fx cannot trace the model or it has no such pair. Subclasses count
    (torchvision's Conv3DSimple), unlike ``torch.fx.experimental.optimization.fuse``."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    class ConvLeaves(torch.fx.Tracer):  # torchvision's Conv3DSimple stays one call_module
        def is_leaf_module(self, module: torch.nn.Module, name: str) -> bool:
            return isinstance(module, torch.nn.modules.conv._ConvNd) or super().is_leaf_module(module, name)

    try:
        root = copy.deepcopy(model)
        traced = torch.fx.GraphModule(root, ConvLeaves().trace(root))
    except Exception:  # noqa: BLE001 - a model fx cannot trace has no folded reference
        return None
    modules = dict(traced.named_modules())
    folded = 0
    for node in list(traced.graph.nodes):
        source = node.args[0] if node.op == "call_module" and node.args else None
        bn = modules.get(node.target) if node.op == "call_module" else None
        if type(bn) not in _PLAIN_BATCH_NORMS or not isinstance(source, torch.fx.Node):  # not timm's BN + act
            continue
        conv = modules.get(source.target) if source.op == "call_module" else None
        if not isinstance(conv, torch.nn.modules.conv._ConvNd) or len(source.users) != 1:
            continue
        parent, _, name = str(source.target).rpartition(".")
        setattr(traced.get_submodule(parent) if parent else traced, name, fuse_conv_bn_eval(conv, bn))
        node.replace_all_uses_with(source)
        traced.graph.erase_node(node)
        traced.delete_submodule(str(node.target))
        folded += 1
    traced.recompile()
    return traced if folded else None


def fused_report(case: Case) -> Any:
    """The PyTorch model with every Conv + BatchNorm folded, profiled; None when the
    model does not trace symbolically or has no such pair."""
    import flopmeter

    folded = fold_batch_norms(case.model)
    return None if folded is None else flopmeter.profile(folded, case.inputs)


def _file_dims(path: str, dims: dict[str, int]) -> dict[str, int]:
    """The dims of ``dims`` that the file's inputs name (a dynamo export may be static)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    named = {d.dim_param for i in graph.input for d in i.type.tensor_type.shape.dim if d.dim_param}
    return {k: v for k, v in dims.items() if k in named}


_QUANTIZE = ("onnx.QuantizeLinear", "onnx.DequantizeLinear", "onnx.DynamicQuantizeLinear")


def one(name: str, variants: list[str]) -> dict[str, Any]:
    import flopmeter

    torch.set_num_threads(1)
    torch.manual_seed(0)
    case = MODELS[name]()
    reference = flopmeter.profile(case.model, case.inputs)
    fused = fused_report(case)
    result: dict[str, Any] = {"name": name, "torch": _totals(reference), "files": {}}
    if fused is not None:
        result["torch_fused"] = _totals(fused)
    dims = case.dims()
    counted: dict[str, dict[str, int]] = {}
    flops_by_op: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        paths: dict[str, str] = {}
        for variant in [v for v in variants if v in FLOAT_VARIANTS]:
            path = os.path.join(folder, f"{variant}.onnx")
            try:
                export(case, variant, path)
                paths[variant] = path
            except Exception as error:  # noqa: BLE001 - an export failing in torch is a result
                result["files"][variant] = {"export_error": f"{type(error).__name__}: {str(error)[:200]}"}
        source = next((v for v in ("legacy17", "dynamo18") if v in paths), None)
        for variant in [v for v in variants if v in DERIVED_VARIANTS]:
            if source is None:
                break
            path = os.path.join(folder, f"{variant}.onnx")
            try:
                derive(case, paths[source], variant, path)
                paths[variant] = path
            except Exception as error:  # noqa: BLE001
                result["files"][variant] = {"derive_error": f"{type(error).__name__}: {str(error)[:200]}"}
        for variant, path in paths.items():
            row: dict[str, Any] = {}
            if variant in DERIVED_VARIANTS:
                row["source"] = source
            try:
                with _quiet():
                    report = flopmeter.profile_onnx(path, dims=_file_dims(path, dims))
            except Exception as error:  # noqa: BLE001 - a count that fails is the finding
                row["count_error"] = f"{type(error).__name__}: {str(error)[:300]}"
                result["files"][variant] = row
                continue
            counted[variant] = _totals(report)
            row.update(_totals(report))
            row.update(_deltas(counted[variant], result["torch"], ""))
            if fused is not None:
                row.update(_deltas(counted[variant], result["torch_fused"], "_fused"))
            flops_by_op[variant] = {op: stats.cost.flops for op, stats in report.operators.items()}
            if variant in DERIVED_VARIANTS and source in counted:
                row.update(_deltas(counted[variant], counted[source], "_source"))
                mine, theirs = flops_by_op[variant], flops_by_op[source]
                row["flops_by_op_source"] = {
                    op: mine.get(op, 0) - theirs.get(op, 0)
                    for op in sorted(mine.keys() | theirs.keys())
                    if mine.get(op, 0) != theirs.get(op, 0)
                }
            row["modules"] = compare_modules(reference, report)
            row["unsupported"] = {op: u.calls for op, u in report.unsupported.items()}
            row["differences"] = {k: v for k, v in report.options["onnx"]["differences"].items() if v}
            row["quantized"] = len(report.options["onnx"].get("quantized", []))
            row["quantize_flops"] = sum(s.cost.flops for op, s in report.operators.items() if op in _QUANTIZE)
            if variant in FLOAT_VARIANTS:
                row["cli"] = cli_checks(case, path)
            result["files"][variant] = row
    return result


def residual(variant: str, row: dict[str, Any]) -> dict[str, int]:
    """What is left to explain in one file's numbers. A float export: its differences from
    the PyTorch model (BatchNorm folded in PyTorch too, where fx traces the model). An
    optimized file: from its source file. A quantized file: MACs and params from its
    source; FLOPs are the source's minus its integer work, which only a QDQ file keeps
    whole: there the difference must be the Quantize / Dequantize work alone."""
    if "source" not in row:
        suffix = "_fused" if "d_macs_fused" in row else ""
        return {k: row[f"d_{k}{suffix}"] for k in ("macs", "flops", "params") if row[f"d_{k}{suffix}"]}
    keys = ("macs", "flops", "params") if variant in ("basic", "extended") else ("macs", "params")
    left = {k: row[f"d_{k}_source"] for k in keys if row.get(f"d_{k}_source")}
    if variant == "qdq":
        beyond = {  # onnxruntime's quantizer drops a Relu / Clip after a Conv: its output range clips
            op: d
            for op, d in row["flops_by_op_source"].items()
            if op not in _QUANTIZE and not (op in ("onnx.Relu", "onnx.Clip") and d < 0)
        }
        if sum(beyond.values()):  # a MatMul + Add split by Q/DQ pairs moves FLOPs between ops, no more
            left.update({f"flops {op}": d for op, d in beyond.items()})
    return left


def _failure(row: dict[str, Any]) -> str:
    return next((v for k, v in row.items() if k.endswith("error")), "")


def line(r: dict[str, Any]) -> str:
    if "status" in r:
        return f"{r['name']:<36} {r['status']}: {r.get('reason', '')[-200:]}"
    parts = []
    for variant, row in r["files"].items():
        if _failure(row):
            parts.append(f"{variant}: {_failure(row)[:160]}")
            continue
        flags = []
        left = residual(variant, row)
        if left:
            flags.append(str(left))
        if row["unsupported"]:
            flags.append(f"unsupported {row['unsupported']}")
        if row["modules"]["differ"]:
            flags.append(f"{len(row['modules']['differ'])} modules' MACs differ")
        cli = row.get("cli")
        if cli and (cli["input"]["code"] != 0 or cli["dim"]["code"] != 0):
            flags.append(f"cli {cli}")
        parts.append(f"{variant}: {'same' if not flags else ' '.join(flags)}")
    return f"{r['name']:<36} " + "\n    ".join(["", *parts])


def summary(rows: list[dict[str, Any]]) -> str:
    """Per variant: files counted, exactly explained (nothing left), failed to export or count."""
    lines = []
    for variant in FLOAT_VARIANTS + DERIVED_VARIANTS:
        made = [r["files"][variant] for r in rows if variant in r.get("files", {})]
        failed_export = [r for r in made if "export_error" in r or "derive_error" in r]
        failed_count = [r for r in made if "count_error" in r]
        counted = [r for r in made if not _failure(r)]
        clean = [r for r in counted if not residual(variant, r) and not r["unsupported"]]
        lines.append(
            f"{variant:<9} {len(counted):>3} counted, {len(clean):>3} with nothing left to explain, "
            f"{len(failed_export):>2} not made, {len(failed_count):>2} not counted"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    parser.add_argument("--out", default="onnx_sweep.jsonl")
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--memory-gb", type=float, default=6.0)  # address space, not RSS
    parser.add_argument("--variants", default=",".join(FLOAT_VARIANTS + DERIVED_VARIANTS))
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.list:
        print("\n".join(MODELS))
        return
    variants = options.variants.split(",")
    if options.one:
        run_worker(options.one, options.memory_gb, lambda: one(options.one, variants))
        return
    todo = options.only.split(",") if options.only else list(MODELS)

    def command_for(index: int, name: str) -> list[str]:
        command = [sys.executable, __file__, "--one", name, "--memory-gb", str(options.memory_gb)]
        return command + ["--variants", options.variants]

    print("\n" + summary(run_all(todo, options.out, options.timeout, command_for, line)))


if __name__ == "__main__":
    main()
