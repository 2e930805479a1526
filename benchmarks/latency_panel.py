"""How well the calibrated latency model predicts measured time: a 28-model panel.

    python benchmarks/latency_panel.py [--threads 1] [--hardware local] [--models resnet18,lstm]
                                       [--budget 0.6] [--clock wall|cpu] [--device cpu|cuda]

On a GPU: ``--device cuda --hardware h100-sxm`` (the matching preset) or ``--hardware
local-cuda``; forwards are then timed with CUDA events (untested so far: no GPU was
available when this was written).

Calibrates ``local`` once (same process), then for each model: profile it (exact FLOPs,
bytes, ops), estimate with the calibrated model and the plain roofline bound, measure the
median of timed forwards (eval, ``torch.no_grad()``, after warm-up) and print measured /
predicted. The last lines give the distribution and the summary the issue asks for:
the fraction of models within 0.75-1.33 and within 0.5-2.0. No weights are downloaded
(torchvision/timm ``weights=None``, transformers from configs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import flopmeter
from flopmeter.timing import time_calls

Inputs = tuple[Any, ...] | dict[str, Any]


def _vision(name: str, size: int = 224) -> Callable[[], tuple[nn.Module, Inputs]]:
    def build() -> tuple[nn.Module, Inputs]:
        import torchvision

        return getattr(torchvision.models, name)(weights=None), (torch.randn(1, 3, size, size),)

    return build


def _timm(name: str, size: int = 224) -> Callable[[], tuple[nn.Module, Inputs]]:
    def build() -> tuple[nn.Module, Inputs]:
        import timm

        return timm.create_model(name, pretrained=False), (torch.randn(1, 3, size, size),)

    return build


def _bert() -> tuple[nn.Module, Inputs]:
    import transformers

    config = transformers.BertConfig(num_hidden_layers=4)  # bert-base width, 4 layers
    ids = torch.randint(0, config.vocab_size, (1, 128))
    return transformers.BertModel(config), {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _gpt2() -> tuple[nn.Module, Inputs]:
    import transformers

    config = transformers.GPT2Config(n_layer=4)  # gpt2 width, 4 layers
    return transformers.GPT2Model(config), {"input_ids": torch.randint(0, config.vocab_size, (1, 128))}


class _LSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(256, 512, num_layers=2, batch_first=True)
        self.head = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1])


def _lstm() -> tuple[nn.Module, Inputs]:
    return _LSTM(), (torch.randn(1, 64, 256),)


class _MHA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(512, 8, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, need_weights=False)[0]


def _mha() -> tuple[nn.Module, Inputs]:
    return _MHA(), (torch.randn(1, 256, 512),)


def _encoder() -> tuple[nn.Module, Inputs]:
    layer = nn.TransformerEncoderLayer(256, 4, 1024, batch_first=True)
    return nn.TransformerEncoder(layer, 4, enable_nested_tensor=False), (torch.randn(1, 128, 256),)


PANEL: dict[str, Callable[[], tuple[nn.Module, Inputs]]] = {
    "resnet18": _vision("resnet18"),
    "resnet50": _vision("resnet50"),
    "resnext50_32x4d": _vision("resnext50_32x4d"),
    "wide_resnet50_2": _vision("wide_resnet50_2", 160),
    "mobilenet_v2": _vision("mobilenet_v2"),
    "mobilenet_v3_small": _vision("mobilenet_v3_small"),
    "mobilenet_v3_large": _vision("mobilenet_v3_large"),
    "efficientnet_b0": _vision("efficientnet_b0"),
    "squeezenet1_1": _vision("squeezenet1_1"),
    "shufflenet_v2_x1_0": _vision("shufflenet_v2_x1_0"),
    "mnasnet1_0": _vision("mnasnet1_0"),
    "regnet_x_400mf": _vision("regnet_x_400mf"),
    "regnet_y_400mf": _vision("regnet_y_400mf"),
    "densenet121": _vision("densenet121"),
    "googlenet": _vision("googlenet"),
    "alexnet": _vision("alexnet"),
    "vgg11": _vision("vgg11", 160),
    "convnext_tiny": _vision("convnext_tiny"),
    "vit_b_16": _vision("vit_b_16"),
    "swin_t": _vision("swin_t"),
    "timm:deit_tiny_patch16_224": _timm("deit_tiny_patch16_224"),
    "timm:mobilevit_xs": _timm("mobilevit_xs", 256),
    "timm:convnext_atto": _timm("convnext_atto"),
    "bert-4-layers": _bert,
    "gpt2-4-layers": _gpt2,
    "lstm": _lstm,
    "mha": _mha,
    "transformer-encoder": _encoder,
}


def measure(
    model: nn.Module, inputs: Inputs, budget: float, clock: Callable[[], float], device: torch.device
) -> float:
    """Median seconds of one forward: timed runs filling about ``budget`` seconds."""
    args, kwargs = ((), inputs) if isinstance(inputs, dict) else (inputs, {})
    with torch.no_grad():
        start = time.perf_counter()
        model(*args, **kwargs)  # warm-up, also sizes the loop
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        once = time.perf_counter() - start
        repeat = max(5, min(60, int(budget / max(once, 1e-6))))
        times = time_calls(lambda: model(*args, **kwargs), device, 2, repeat, clock=clock)
    return statistics.median(times)


def _to(inputs: Inputs, device: torch.device) -> Inputs:
    if isinstance(inputs, dict):
        return {k: v.to(device) for k, v in inputs.items()}
    return tuple(v.to(device) for v in inputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--hardware", default="local", help="hardware spec to predict with (default local)")
    parser.add_argument("--models", help="comma-separated subset of the panel, e.g. resnet18,lstm")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="time forwards by wall clock (default) or by this thread's CPU time (one thread only: "
        "steadier on a busy machine)",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the models run")
    parser.add_argument("--budget", type=float, default=0.6, help="seconds of timed runs per model")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    names = args.models.split(",") if args.models else list(PANEL)
    unknown = [n for n in names if n not in PANEL]
    if unknown:
        parser.error(f"unknown panel models {unknown}; known: {', '.join(PANEL)}")
    if args.clock == "cpu" and (args.threads != 1 or args.device != "cpu"):
        parser.error("--clock cpu needs --threads 1 on the CPU (CPU time adds up over threads)")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU here")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    torch.manual_seed(0)

    begin = time.perf_counter()
    hardware = flopmeter.hardware.get(args.hardware)
    print(f"timing by {args.clock} clock on {args.device}, {args.threads} CPU thread(s)")
    print(f"calibrated {hardware.name} in {time.perf_counter() - begin:.1f} s: {_describe(hardware)}")
    print(f"{'model':28} {'ops':>5} {'bound':>10} {'predicted':>10} {'measured':>10} {'meas/pred':>9}")
    ratios: dict[str, float] = {}
    for name in names:
        try:
            model, inputs = PANEL[name]()
        except ImportError as error:
            print(f"{name:28} skipped: {error}")
            continue
        model, inputs = model.to(device).eval(), _to(inputs, device)
        report = flopmeter.profile(model, inputs)
        estimate = report.roofline(hardware)
        measured = measure(model, inputs, args.budget, clock, device)
        ratios[name] = measured / estimate.latency
        print(
            f"{name:28} {len(report.ops):5d} {estimate.bound_latency * 1e3:8.2f}ms {estimate.latency * 1e3:8.2f}ms"
            f" {measured * 1e3:8.2f}ms {ratios[name]:9.2f}",
            flush=True,
        )
    _summary(ratios, time.perf_counter() - begin)
    return 0


def _describe(hardware: flopmeter.Hardware) -> str:
    from flopmeter.render.speed import render_calibration

    return (
        f"peak {hardware.peak() / 1e9:.0f} GFLOP/s float32, {hardware.bandwidth / 1e9:.0f} GB/s\n"
        + render_calibration(hardware)
    )


def _summary(ratios: dict[str, float], seconds: float) -> None:
    if not ratios:
        print("no model ran")
        return
    values = sorted(ratios.values())
    close = sum(0.75 <= r <= 1.33 for r in values) / len(values)
    wide = sum(0.5 <= r <= 2.0 for r in values) / len(values)
    quartiles = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    print(
        f"\nmeasured / predicted over {len(values)} models: min {values[0]:.2f}, quartiles "
        + ", ".join(f"{q:.2f}" for q in quartiles)
        + f", max {values[-1]:.2f}; geometric mean {statistics.geometric_mean(values):.2f}"
    )
    print(
        f"SUMMARY: {100 * close:.0f}% of models within 0.75-1.33 (target >= 80%), "
        f"{100 * wide:.0f}% within 0.5-2.0 (target 100%); {seconds:.0f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
