"""flopmeter's own cost: profile time / plain forward time, beside its peers.

    python benchmarks/overhead.py [--repeat 5] [--models resnet50,mobilenet_v3_small,bert-base]

For each model: the median wall time of a plain ``torch.no_grad()`` forward, of
``flopmeter.profile`` (the default, which counts on shapes: meta tensors, no
arithmetic; and ``shapes_only=False``, a run with values), and of the peers that are
installed (torch.utils.flop_counter always; ptflops and fvcore when importable),
printed as ratios to the forward. Target: flopmeter <= 1.5x and below
FlopCounterMode on each model.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

import flopmeter


def build(name: str) -> tuple[Callable[[], torch.nn.Module], dict]:
    if name == "bert-base":
        import transformers

        config = transformers.BertConfig()  # bert-base: 12 layers, hidden 768, 12 heads

        return (lambda: transformers.BertModel(config).eval()), {
            "input_ids": torch.zeros(1, 128, dtype=torch.long),
            "attention_mask": torch.ones(1, 128, dtype=torch.long),
        }
    import torchvision

    size = 224
    return (lambda: getattr(torchvision.models, name)().eval()), {"x": torch.randn(1, 3, size, size)}


def median_time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def call(model: torch.nn.Module, inputs: dict) -> object:
    return model(**inputs) if "x" not in inputs else model(inputs["x"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", default="resnet50,mobilenet_v3_small,vit_b_16,bert-base")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeat} runs")
    print(
        f"{'model':22} {'forward':>9} {'flopmeter':>10} {'fm values':>9} {'FlopCounterMode':>16} {'ptflops':>8} {'fvcore':>7}"
    )
    for name in args.models.split(","):
        print(measure(name, args.repeat))


def measure(name: str, repeat: int) -> str:
    """One table row: the forward time and every tool's time as a ratio to it."""
    make, inputs = build(name)
    model = make()
    prof_inputs = inputs["x"] if "x" in inputs else inputs
    with torch.no_grad():
        forward = median_time(lambda: call(model, inputs), repeat)
    ours = median_time(lambda: flopmeter.profile(model, prof_inputs), repeat)
    values = median_time(lambda: flopmeter.profile(model, prof_inputs, shapes_only=False), repeat)

    def flop_counter() -> None:
        with FlopCounterMode(display=False), torch.no_grad():
            call(model, inputs)

    peer = median_time(flop_counter, repeat)
    cells = [f"{ours / forward:9.2f}x", f"{values / forward:8.2f}x", f"{peer / forward:15.2f}x"]
    cells.append(_ptflops(model, name, forward, repeat))
    cells.append(_fvcore(model, inputs, forward, repeat))
    return f"{name:22} {forward * 1000:7.1f}ms " + " ".join(cells)


def _ptflops(model: torch.nn.Module, name: str, forward: float, repeat: int) -> str:
    try:
        import ptflops
    except ImportError:
        return f"{'n/a':>8}"
    if name == "bert-base":

        def run() -> None:
            ptflops.get_model_complexity_info(
                model,
                (1, 128),
                as_strings=False,
                print_per_layer_stat=False,
                input_constructor=lambda _: {"input_ids": torch.zeros(1, 128, dtype=torch.long)},
            )
    else:

        def run() -> None:
            ptflops.get_model_complexity_info(
                model, (3, 224, 224), as_strings=False, print_per_layer_stat=False
            )

    return f"{median_time(run, repeat) / forward:7.2f}x"


def _fvcore(model: torch.nn.Module, inputs: dict, forward: float, repeat: int) -> str:
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        return f"{'n/a':>7}"
    args = (inputs["x"],) if "x" in inputs else (inputs["input_ids"],)

    def run() -> None:
        analysis = FlopCountAnalysis(model, args)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.total()

    try:
        return f"{median_time(run, repeat) / forward:6.2f}x"
    except Exception:  # fvcore's jit trace fails on some models; say so in the table
        return f"{'failed':>7}"


if __name__ == "__main__":
    main()
