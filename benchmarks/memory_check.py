"""Memory check (probe 11): ``report.peak_activation_bytes`` against what torch allocates.

    PYTHONPATH=src python benchmarks/memory_check.py [NAME ...]   # all when none named
    PYTHONPATH=src python benchmarks/memory_check.py list

One line per model, batch and mode: the measured peak, flopmeter's shapes-only and
values peaks, and measured / flopmeter. Random weights, one thread, nothing downloaded.

How the measured peak is taken: the model runs once under ``torch.profiler.profile(
profile_memory=True)``; every CPU allocation and free the c10 allocator reports to the
profiler carries the allocator's running total of requested bytes (``total_allocated``,
no rounding, no caching on the CPU). The peak is the largest running total minus the total
before the call's first allocation, plus the model's inputs (the docs count them
throughout). Parameters and the inputs exist before the call, so they are not among the
allocations. The same events are the profiler's memory timeline (``torch.profiler``'s
``_memory_profiler``), read here without its categories.

Modes: ``no_grad`` (a forward under ``torch.no_grad()``, model in eval: what
``profile(model, x)`` counts), ``grad`` (the same forward with autograd on: saved tensors
live until the output is dropped), ``train`` (model in train mode, forward + backward of
the sum of the output tensors, as ``profile(backward=True)`` runs it: measured against
that report's peak).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile

import flopmeter


class Allocation(NamedTuple):
    time_ns: int
    size: int  # bytes requested; negative for a free
    total: int  # the allocator's running total of requested bytes after this event
    temporary: bool  # allocated and freed inside one aten op call (a kernel's workspace)


ALLOCATING = ("aten::empty", "aten::new_empty", "aten::zeros", "aten::new_zeros")


def allocations(prof: Any) -> list[Allocation]:
    """Each CPU allocation and free the profiler recorded, in time order. An allocation
    freed before the innermost op that made it returns (not counting ``aten::empty`` and
    its kin: their caller made it) is marked ``temporary``, and
    so is its free: memory no op output ever holds (weight reorders, im2col buffers)."""
    raw: list[tuple[int, int, int, int, tuple[int, ...]]] = []
    stack = [(event, ()) for event in prof.profiler.kineto_results.experimental_event_tree()]
    while stack:
        event, ops = stack.pop()
        if event.tag == _EventType.Allocation and event.extra_fields.device.type == "cpu":
            fields = event.extra_fields
            raw.append((event.start_time_ns, fields.alloc_size, fields.total_allocated, fields.ptr, ops))
        allocator = event.name.startswith(ALLOCATING)  # the op a kernel's buffer is made in
        inner = (*ops, event.id) if event.tag == _EventType.TorchOp and not allocator else ops
        stack.extend((child, inner) for child in event.children)
    raw.sort(key=lambda item: item[0])
    made_in: dict[int, int] = {}  # ptr -> the innermost op that allocated it
    temporary: set[int] = set()  # indexes into raw
    opened: dict[int, int] = {}  # ptr -> index of its allocation
    for index, (_, size, _, ptr, ops) in enumerate(raw):
        if size > 0:
            opened[ptr] = index
            if ops:
                made_in[ptr] = ops[-1]
        else:
            op = made_in.pop(ptr, None)
            start = opened.pop(ptr, None)
            if op is not None and start is not None and op in ops:
                temporary.update((start, index))
    return [
        Allocation(time, size, total, index in temporary)
        for index, (time, size, total, _, _) in enumerate(raw)
    ]


def measured_peaks(call: Callable[[], Any], input_bytes: int) -> tuple[int, int]:
    """The peak of live bytes ``call()`` allocates, above what existed before, plus the
    inputs' bytes; and the same peak without the kernels' temporaries. The call's result
    is dropped inside the profile."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    events = allocations(prof)
    if not events:
        return input_bytes, input_bytes
    before = events[0].total - events[0].size
    peak = max(event.total for event in events) - before
    live = outputs_peak = 0
    for event in events:
        if not event.temporary:
            live += event.size
            outputs_peak = max(outputs_peak, live)
    return peak + input_bytes, outputs_peak + input_bytes


def output_tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if hasattr(out, "to_tuple"):
        out = out.to_tuple()
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in output_tensors(item)]
    return []


def forward(model: nn.Module, x: Any) -> Callable[[], None]:
    def call() -> None:
        model(*x) if isinstance(x, tuple) else model(x)

    return call


def training_step(model: nn.Module, x: Any) -> Callable[[], None]:
    params = [p for p in model.parameters() if p.requires_grad]

    def call() -> None:
        out = model(*x) if isinstance(x, tuple) else model(x)
        outs = [t for t in output_tensors(out) if t.requires_grad]
        torch.autograd.grad(outs, params, [torch.ones_like(t) for t in outs], allow_unused=True)

    return call


def input_bytes(x: Any) -> int:
    items = x if isinstance(x, tuple) else (x,)
    return sum(t.numel() * t.element_size() for t in items if isinstance(t, torch.Tensor))


def vit_2_layers() -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(224, 16, num_layers=2, num_heads=12, hidden_dim=768, mlp_dim=3072)


def torchvision_model(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None)

    return build


def bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig(num_hidden_layers=2))


def gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2Model

    return GPT2Model(GPT2Config(n_layer=2))


class LSTMOut(nn.Module):
    """nn.LSTM(256, 512, 2 layers) returning its output sequence only."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(256, 512, num_layers=2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]


def image(batch: int) -> torch.Tensor:
    return torch.randn(batch, 3, 224, 224)


def tokens(batch: int) -> torch.Tensor:
    return torch.randint(0, 1000, (batch, 128))


PANEL: dict[str, tuple[Callable[[], nn.Module], Callable[[int], Any]]] = {
    "resnet18": (torchvision_model("resnet18"), image),
    "mobilenet_v3_small": (torchvision_model("mobilenet_v3_small"), image),
    "efficientnet_b0": (torchvision_model("efficientnet_b0"), image),
    "vit_b_16_2layers": (vit_2_layers, image),
    "bert_2layers": (bert, tokens),
    "gpt2_2layers": (gpt2, tokens),
    "lstm_2x512": (LSTMOut, lambda batch: torch.randn(batch, 64, 256)),
}


def check(name: str, batch: int) -> None:
    build, make_input = PANEL[name]
    torch.manual_seed(0)
    model = build().eval()
    x = make_input(batch)
    size = input_bytes(x)
    shapes = flopmeter.profile(model, x).peak_activation_bytes
    values = flopmeter.profile(model, x, shapes_only=False).peak_activation_bytes
    with torch.no_grad():
        show(name, batch, "no_grad", measured_peaks(forward(model, x), size), shapes, values)
    with torch.enable_grad():
        show(name, batch, "grad", measured_peaks(forward(model, x), size), shapes, values)
    shapes = flopmeter.profile(model, x, backward=True).peak_activation_bytes
    values = flopmeter.profile(model, x, backward=True, shapes_only=False).peak_activation_bytes
    model.train()
    show(name, batch, "train", measured_peaks(training_step(model, x), size), shapes, values)
    model.eval()


def show(name: str, batch: int, mode: str, measured: tuple[int, int], shapes: int, values: int) -> None:
    """measured peak, the same without kernel temporaries, flopmeter's shapes-only and
    values peaks, measured / values and (without temporaries) / values."""
    peak, outputs = measured
    print(
        f"{name:18} b{batch:<2} {mode:7} measured {peak:>12,} no-temps {outputs:>12,} "
        f"flopmeter shapes {shapes:>12,} values {values:>12,} "
        f"ratio {peak / values:6.3f} no-temps {outputs / values:6.3f}",
        flush=True,
    )


def main(argv: list[str]) -> None:
    if argv == ["list"]:
        print("\n".join(PANEL))
        return
    torch.set_num_threads(1)
    for name in argv or list(PANEL):
        for batch in (1, 8):
            check(name, batch)


if __name__ == "__main__":
    main(sys.argv[1:])
