"""Does ``flopmeter.profile(exported_program)`` count what the eager model counts?

    PYTHONPATH=src python benchmarks/export_sweep.py [--only NAME,NAME] [--out export.jsonl]
        [--timeout 300] [--memory-gb 6]

For ~30 torchvision classification models (``weights=None``, 1x3x224x224, eval), 8 small
timm models and 8 transformers models from small configs (builders of ``zoo_sweep.py``),
each model is exported with ``torch.export.export(model, args, kwargs, strict=False)``
(skipped, with the reason, when export itself fails), then profiled as the program and as
the eager model on the same inputs, and the two compared: total MACs, FLOPs, params, bytes
read and written, and per module (by qualified name) its type, MACs, params and calls.
One program is also saved with ``torch.export.save`` and read back by the CLI.

Each model runs in its own process (one thread, address space capped at 6 GB: about 3 GB resident) under ``timeout``;
one JSON line per model goes to ``--out``, then a summary.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from isolated import run_all, run_worker  # noqa: E402

TORCHVISION = [
    "resnet18",
    "resnet50",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "convnext_tiny",
    "vit_b_16",
    "swin_t",
    "swin_v2_t",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "densenet121",
    "shufflenet_v2_x1_0",
    "squeezenet1_0",
    "squeezenet1_1",
    "googlenet",
    "inception_v3",
    "mnasnet0_5",
    "alexnet",
    "vgg11_bn",
    "maxvit_t",
    "resnet34",
    "mobilenet_v3_large",
    "efficientnet_b1",
    "regnet_y_800mf",
    "densenet161",
]
TIMM = [
    "resnet18d",
    "efficientnet_b0",
    "mobilenetv3_small_050",
    "vit_tiny_patch16_224",
    "deit_tiny_patch16_224",
    "convnext_atto",
    "levit_128s",
    "regnetx_002",
]
TRANSFORMERS = ["bert", "gpt2", "llama", "t5", "vit", "whisper", "distilbert", "qwen2"]
# probe 10: tasks probe 9 did not cover (torchvision builders, weights off, eval)
DETECTION = [
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "retinanet_resnet50_fpn",
    "ssdlite320_mobilenet_v3_large",
]
SEGMENTATION = ["fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]
VIDEO = ["r3d_18", "r2plus1d_18", "s3d", "mvit_v2_s"]
# and two export modes: ``@strict`` (torch.export's strict=True, TorchDynamo) and
# ``@dynamic`` (the batch dimension a ``torch.export.Dim``, exported at 2, counted at 3)
MODES = [
    "tv:resnet18",
    "tv:mobilenet_v3_small",
    "tv:vit_b_16",
    "tv:efficientnet_b0",
    "timm:convnext_atto",
    "hf:bert",
]


def names() -> list[str]:
    seen = dict.fromkeys(
        [f"tv:{n}" for n in TORCHVISION]
        + [f"timm:{n}" for n in TIMM]
        + [f"hf:{n}" for n in TRANSFORMERS]
        + [f"det:{n}" for n in DETECTION]
        + [f"seg:{n}" for n in SEGMENTATION]
        + [f"video:{n}" for n in VIDEO]
        + [f"{n}@strict" for n in MODES]
        + [f"{n}@dynamic" for n in MODES]
    )
    return list(seen)


def build(name: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """The model (eval), its positional and keyword inputs."""
    import torch

    kind, model_name = name.split(":", 1)
    if kind in ("det", "seg", "video"):
        import torchvision.models as tvm

        off = {"weights": None, "weights_backbone": None} if kind != "video" else {"weights": None}
        if kind == "seg" or model_name.startswith(("fasterrcnn", "retinanet", "ssd")):
            off["num_classes"] = 91 if kind == "det" else 21
        model = tvm.get_model(model_name, **off).eval()
        if kind == "det":  # a list of images
            return model, ([torch.randn(3, 320, 320)],), {}
        if kind == "video":
            size = 224 if model_name.startswith(("mvit", "s3d")) else 112  # s3d: 7x7 kernels on 1/32
            return model, (torch.randn(1, 3, 16, size, size),), {}
        return model, (torch.randn(1, 3, 224, 224),), {}
    if kind == "tv":
        import torchvision.models as tvm

        model = tvm.get_model(model_name, weights=None)
        size = 299 if model_name == "inception_v3" else 224
        return model.eval(), (torch.randn(1, 3, size, size),), {}
    if kind == "timm":
        import timm

        model = timm.create_model(model_name, pretrained=False)
        size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
        return model.eval(), (torch.randn(1, *size),), {}
    from zoo_sweep import build_transformers

    if model_name == "t5":  # the encoder alone: T5EncoderModel
        import transformers

        config = transformers.T5Config(
            d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, vocab_size=1000
        )
        ids = torch.randint(3, 1000, (1, 16), generator=torch.Generator().manual_seed(0))
        return transformers.T5EncoderModel(config).eval(), (), {"input_ids": ids}
    model, args, kwargs, _ = build_transformers(f"hf:{model_name}")
    if getattr(model.config, "use_cache", None):  # a DynamicCache output does not export
        model.config.use_cache = False
    if model_name == "whisper":  # the encoder alone: WhisperEncoder
        return model.get_encoder().eval(), (), {"input_features": kwargs["input_features"]}
    return model.eval(), tuple(args), dict(kwargs)


def _module_rows(report: Any) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "type": m.type,
            "macs": m.total.macs,
            "flops": m.total.flops,
            "params": m.params,
            "calls": m.calls,
        }
        for name, m in report.modules.items()
    }


_TOTALS = ("macs", "flops", "params", "bytes_read", "bytes_written")


def compare(eager: Any, exported: Any) -> dict[str, Any]:
    totals = {
        key: (getattr(eager, key), getattr(exported, key))
        for key in _TOTALS
        if getattr(eager, key) != getattr(exported, key)
    }
    mine, theirs = _module_rows(eager), _module_rows(exported)
    modules: dict[str, Any] = {}
    for name in mine.keys() & theirs.keys():
        diff = {k: (mine[name][k], theirs[name][k]) for k in mine[name] if mine[name][k] != theirs[name][k]}
        if diff:
            modules[name] = diff
    return {
        "totals": totals,
        "modules": modules,
        "only_eager": sorted(mine.keys() - theirs.keys()),
        "only_exported": sorted(theirs.keys() - mine.keys()),
        "unsupported": sorted(set(exported.unsupported) - set(eager.unsupported)),
        "module_count": len(mine),
    }


def one(name: str, save: bool) -> dict[str, Any]:
    import torch

    import flopmeter

    torch.set_num_threads(1)
    torch.manual_seed(0)
    base, _, mode = name.partition("@")
    model, args, kwargs = build(base)
    shapes = None
    if mode == "dynamic":  # exported at batch 2, counted at batch 3
        args, kwargs = _batched(args, 2), _batched(kwargs, 2)
        shapes = _batch_dims(args, kwargs)
    try:
        with torch.no_grad():
            program = torch.export.export(
                model, args, kwargs or None, strict=mode == "strict", dynamic_shapes=shapes
            )
    except Exception as error:  # noqa: BLE001 - the reason is the result
        return {
            "name": name,
            "status": "export failed",
            "reason": f"{type(error).__name__}: {str(error)[:200]}",
        }
    if mode == "dynamic":
        args, kwargs = _batched(args, 3), _batched(kwargs, 3)
    inputs: Any = kwargs if kwargs else args
    eager = flopmeter.profile(model, inputs)
    exported = flopmeter.profile(program, inputs)
    default = flopmeter.profile(program)  # the program's own example inputs
    result = {"name": name, "status": "ok", **compare(eager, exported)}
    try:  # the flat graph, as most users profile it (docs/exported.md, flat graphs)
        result["flat"] = compare(eager, flopmeter.profile(program.module(), inputs))
    except Exception as error:  # noqa: BLE001 - a failure is a finding
        result["flat"] = {"failed": f"{type(error).__name__}: {str(error)[:300]}"}
    if default.macs != exported.macs and mode != "dynamic":
        result["default_inputs"] = (exported.macs, default.macs)
    if save:
        from flopmeter.cli import main

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.pt2")
            torch.export.save(program, path)
            out, err = io.StringIO(), io.StringIO()
            code = main([path, "--format", "json"], stdout=out, stderr=err)
            cli = json.loads(out.getvalue()) if code == 0 else {}
            result["cli"] = {
                "code": code,
                "macs": cli.get("totals", {}).get("macs"),
                "model": cli.get("model"),
                "same_macs": cli.get("totals", {}).get("macs") == default.macs,  # its example inputs
                "err": err.getvalue()[-300:],
            }
    return result


def _batched(value: Any, batch: int) -> Any:
    """The inputs with their tensors' leading dimension ``batch`` (the first sample's
    values repeated)."""
    import torch
    from torch.utils._pytree import tree_map

    def one(t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or t.ndim == 0:
            return t
        return t[:1].expand(batch, *t.shape[1:]).clone()

    return tree_map(one, value)


def _batch_dims(args: Any, kwargs: Any) -> Any:
    """``dynamic_shapes`` making every input tensor's dim 0 one ``Dim("batch")``."""
    import torch
    from torch.utils._pytree import tree_map

    batch = torch.export.Dim("batch", min=1, max=64)

    def one(t: Any) -> Any:
        return {0: batch} if isinstance(t, torch.Tensor) and t.ndim else None

    return {key: tree_map(one, value) for key, value in kwargs.items()} if kwargs else tree_map(one, args)


def line(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return f"{r['name']:<32} {r['status']}: {r.get('reason', '')[:150]}"
    flags = []
    if r["totals"]:
        flags.append(f"totals {r['totals']}")
    if r["modules"]:
        first = list(r["modules"].items())[:3]
        flags.append(f"{len(r['modules'])} modules differ, e.g. {first}")
    if r["only_eager"] or r["only_exported"]:
        flags.append(f"only eager {r['only_eager'][:4]} only exported {r['only_exported'][:4]}")
    if r["unsupported"]:
        flags.append(f"unsupported {r['unsupported']}")
    if "default_inputs" in r:
        flags.append(f"default inputs {r['default_inputs']}")
    if "cli" in r:
        flags.append(f"cli {r['cli']}")
    flat = r.get("flat", {})
    if flat.get("failed"):
        flags.append(f"flat graph failed: {flat['failed'][:200]}")
    elif (
        flat.get("totals")
        or flat.get("modules")
        or set(flat.get("only_eager", []))
        or flat.get("only_exported")
    ):
        flags.append(
            f"flat: totals {flat['totals']} {len(flat['modules'])} modules differ "
            f"e.g. {list(flat['modules'].items())[:2]} only eager {flat['only_eager'][:4]} "
            f"only flat {flat['only_exported'][:4]}"
        )
    return f"{r['name']:<32} {'identical' if not flags else '; '.join(flags)}"


def causes(r: dict[str, Any]) -> set[str]:
    """The kinds of difference one model shows (docs/exported.md explains each)."""
    found: set[str] = set()
    for diff in r["modules"].values():
        kind = diff.get("type", (None, None))[1]
        if kind == "Module":
            found.add("no node: a module that ran no op reads Module, 0 calls")
        elif kind == "InterpreterModule":
            found.add("a container without forward reads InterpreterModule")
        elif set(diff) - {"type", "calls"} and kind is None:
            found.add("a module's numbers differ")
    if {"macs", "flops", "params"} & set(r["totals"]):
        found.add("total MACs/FLOPs/params differ")
    elif r["totals"]:
        found.add("only bytes read/written differ")
    if r["only_eager"] or r["only_exported"]:
        found.add("module names differ")
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    parser.add_argument("--out", default="export_sweep.jsonl")
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("--memory-gb", type=float, default=6.0)  # address space, not RSS
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)
    parser.add_argument("--save", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:
        run_worker(options.one, options.memory_gb, lambda: one(options.one, options.save))
        return
    todo = options.only.split(",") if options.only else names()

    def command_for(index: int, name: str) -> list[str]:
        command = [sys.executable, __file__, "--one", name, "--memory-gb", str(options.memory_gb)]
        return command + ["--save"] if index == 0 else command

    rows = run_all(todo, options.out, options.timeout, command_for, line)
    ok = [r for r in rows if r["status"] == "ok"]
    same = [r for r in ok if not (r["totals"] or r["modules"] or r["only_eager"] or r["only_exported"])]
    print(f"\n{len(ok)}/{len(rows)} exported and profiled; {len(same)} identical per module and in total")
    grouped: dict[str, list[str]] = {}
    for r in ok:
        for cause in causes(r):
            grouped.setdefault(cause, []).append(r["name"])
    for cause, models in sorted(grouped.items()):
        print(f"  {len(models):>2} {cause}: {', '.join(models)}")
    for r in rows:
        if r["status"] != "ok":
            print(f"  skipped {r['name']}: {r['status']}: {r.get('reason', '')[:160]}")


if __name__ == "__main__":
    main()
