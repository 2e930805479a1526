"""The compressed models of issue 8, built as a user would, each compared with its float
original: the table of README's "Compressed models" section and docs/compression.md.

Every builder here is a FILE.py:CALLABLE the CLI loads too (no arguments, random weights,
nothing downloaded), e.g.

    flopmeter compare benchmarks/compression_cases.py:resnet18 \\
        benchmarks/compression_cases.py:pruned_resnet18 --compression --format markdown
    flopmeter compare benchmarks/compression_cases.py:bert \\
        benchmarks/compression_cases.py:dynamic_int8_bert --input input_ids:1x128:int64 --compression

Run (about a minute, one thread):

    PYTHONPATH=src python benchmarks/compression_cases.py [--cases pruned_l1_global,...]
"""

from __future__ import annotations

import argparse
import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

import flopmeter

EXAMPLE_INPUTS = ["1x3x224x224"]  # the image models; BERT takes --input input_ids:1x128:int64
BERT_INPUT = {"input_ids": torch.zeros(1, 128, dtype=torch.int64)}


def _seeded(seed: int = 0) -> None:
    torch.manual_seed(seed)


# resnet18, pruned ------------------------------------------------------------------


def resnet18() -> nn.Module:
    """torchvision's resnet18, random weights: the float original of the pruned cases."""
    import torchvision

    _seeded()
    return torchvision.models.resnet18(weights=None).eval()


def _convs_and_linears(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def pruned_resnet18() -> nn.Module:
    """l1_unstructured 50 % on every conv and linear, layer by layer."""
    model = resnet18()
    for module, name in _convs_and_linears(model):
        prune.l1_unstructured(module, name, amount=0.5)
    return model


def global_pruned_resnet18() -> nn.Module:
    """l1_unstructured 50 % over all convs and linears together (global_unstructured)."""
    model = resnet18()
    prune.global_unstructured(_convs_and_linears(model), pruning_method=prune.L1Unstructured, amount=0.5)
    return model


def channel_pruned_resnet18() -> nn.Module:
    """ln_structured (L2, dim 0: whole output filters) 30 % on every conv."""
    model = resnet18()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            prune.ln_structured(module, "weight", amount=0.3, n=2, dim=0)
    return model


# torchvision quantized: fuse -> prepare -> calibrate -> convert ----------------------


def _quantizable(name: str) -> nn.Module:
    import torchvision.models.quantization as q

    _seeded()
    model = getattr(q, name)(weights=None, quantize=False).eval()
    model.fuse_model()
    return model


def _convert(model: nn.Module) -> nn.Module:
    model = copy.deepcopy(model)
    model.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.ao.quantization.prepare(model, inplace=True)
        _seeded(1)
        with torch.no_grad():
            for _ in range(2):  # calibrate on random data
                model(torch.randn(2, 3, 224, 224))
        torch.ao.quantization.convert(model, inplace=True)
    return model


def fused_resnet18() -> nn.Module:
    """torchvision's quantizable resnet18, fused (conv+bn+relu), still float."""
    return _quantizable("resnet18")


def int8_resnet18() -> nn.Module:
    """fused_resnet18 quantized by torch.ao eager: fbgemm per-channel, calibrated, converted."""
    return _convert(fused_resnet18())


def fused_mobilenet_v2() -> nn.Module:
    """torchvision's quantizable mobilenet_v2, fused, still float."""
    return _quantizable("mobilenet_v2")


def int8_mobilenet_v2() -> nn.Module:
    """fused_mobilenet_v2 quantized by torch.ao eager, as int8_resnet18."""
    return _convert(fused_mobilenet_v2())


# BERT, dynamic int8 ----------------------------------------------------------------


def bert() -> nn.Module:
    """BERT-base from its config (transformers), random weights."""
    from transformers import BertConfig, BertModel

    _seeded()
    return BertModel(BertConfig()).eval()


def dynamic_int8_bert() -> nn.Module:
    """bert() with every nn.Linear quantized by torch.ao quantize_dynamic (qint8)."""
    return torch.ao.quantization.quantize_dynamic(bert(), {nn.Linear}, dtype=torch.qint8)


# torchao int8 linear stack ---------------------------------------------------------


def linear_stack() -> nn.Module:
    """Four Linear(1024, 1024) + ReLU, the float original of the torchao cases."""
    _seeded()
    layers: list[nn.Module] = []
    for _ in range(4):
        layers += [nn.Linear(1024, 1024), nn.ReLU()]
    return nn.Sequential(*layers).eval()


def _torchao(config_name: str) -> nn.Module:
    import torchao.quantization as tq

    model = linear_stack()
    tq.quantize_(model, getattr(tq, config_name)())
    return model


def torchao_int8_weight_only() -> nn.Module:
    """linear_stack with torchao's Int8WeightOnlyConfig."""
    return _torchao("Int8WeightOnlyConfig")


def torchao_int8_dynamic() -> nn.Module:
    """linear_stack with torchao's Int8DynamicActivationInt8WeightConfig."""
    return _torchao("Int8DynamicActivationInt8WeightConfig")


LINEAR_INPUT = torch.randn(16, 1024)
IMAGE_INPUT = torch.randn(1, 3, 224, 224)


# the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    before: Callable[[], nn.Module]
    after: Callable[[], nn.Module]
    inputs: Any


CASES = [
    Case("resnet18 l1_unstructured 50 % per layer", resnet18, pruned_resnet18, IMAGE_INPUT),
    Case("resnet18 l1_unstructured 50 % global", resnet18, global_pruned_resnet18, IMAGE_INPUT),
    Case("resnet18 ln_structured 30 % convs", resnet18, channel_pruned_resnet18, IMAGE_INPUT),
    Case("resnet18 int8 (torch.ao static)", fused_resnet18, int8_resnet18, IMAGE_INPUT),
    Case("mobilenet_v2 int8 (torch.ao static)", fused_mobilenet_v2, int8_mobilenet_v2, IMAGE_INPUT),
    Case("BERT-base quantize_dynamic int8", bert, dynamic_int8_bert, BERT_INPUT),
    Case("4×Linear(1024) torchao int8 weight-only", linear_stack, torchao_int8_weight_only, LINEAR_INPUT),
    Case("4×Linear(1024) torchao int8 dynamic", linear_stack, torchao_int8_dynamic, LINEAR_INPUT),
]

HEADER = [
    "case",
    "params",
    "nonzero",
    "MACs eff.",
    "MAC speedup (eff.)",
    "size ratio actual / ideal",
    "BOPs ratio",
    "weight bits",
    "overhead FLOPs",
    "unsupported ops",
    "speedup (estimate)",
]


def row(case: Case) -> dict[str, Any]:
    """The numbers of one case: the compressed model's view and its comparison with the
    float original (both profiled on ``case.inputs``)."""
    before = flopmeter.profile(case.before(), case.inputs, name="float", compression=True)
    after = flopmeter.profile(case.after(), case.inputs, name="compressed", compression=True)
    result = flopmeter.compare(before, after)
    total = result.rows()[-1]
    view = after.compression
    bits = sorted({layer.weight_bits for layer in view.layers.values() if layer.weight_bits})
    return {
        "case": case.name,
        "params": after.params,
        "params_before": before.params,
        "nonzero": view.nonzero_params,
        "macs_dense": view.macs_dense,
        "macs_dense_before": before.compression.macs_dense,
        "macs_effective": view.macs_effective,
        "mac_speedup_effective": total["mac_speedup_effective"],
        "size_ratio_actual": total["size_ratio_actual"],
        "size_ratio_ideal": total["size_ratio_ideal"],
        "bops_ratio": total["bops_ratio"],
        "weight_bits": "/".join(str(b) for b in bits),
        "overhead_flops": view.overhead_total.flops,
        "unsupported": sum(op.calls for op in after.unsupported_ops().values()),
        "speedup_estimate": result.speedup_estimate,
    }


def _human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        cells = [
            r["case"],
            _human(r["params"]),
            _human(r["nonzero"]) if r["nonzero"] is not None else "unknown",
            _human(r["macs_effective"]),
            f"{r['mac_speedup_effective']:.2f}x",
            f"{r['size_ratio_actual']:.3f} / {r['size_ratio_ideal']:.3f}",
            f"{r['bops_ratio']:.3f}",
            r["weight_bits"],
            _human(r["overhead_flops"]),
            str(r["unsupported"]),
            f"{r['speedup_estimate']:.2f}x",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case numbers (1-based) to run; default all")
    args = parser.parse_args()
    torch.set_num_threads(1)
    chosen = [CASES[int(i) - 1] for i in args.cases.split(",")] if args.cases else CASES
    print(markdown([row(case) for case in chosen]))


if __name__ == "__main__":
    main()
