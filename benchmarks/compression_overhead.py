"""How much the compression view adds to a profile: resnet50 with real weights.

Times (CPU process time, steadier than wall time on a shared machine) a full
``flopmeter.profile`` and the compression step inside it: reading the weight facts
before the trace (``compression.collect``: representations, shapes, bits, packed
layouts). Counting nonzeros reads every weight (about 100 MB for resnet50), which costs
more than the shapes-only trace itself, so it waits until ``report.compression`` is
first read; that cost is printed too. Not a test: run

    PYTHONPATH=src python benchmarks/compression_overhead.py [--repeat 5]
"""

from __future__ import annotations

import argparse

import torch
import torchvision
from overhead import median_time  # benchmarks/overhead.py: one CPU-time median for both

import flopmeter
from flopmeter.compression import build_view, collect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier CPU times)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()  # real (random) weights
    x = torch.randn(1, 3, 224, 224)
    flopmeter.profile(model, x)  # warm-up
    total = median_time(lambda: flopmeter.profile(model, x), args.repeat)
    facts_time = median_time(lambda: collect(model), args.repeat)
    report = flopmeter.profile(model, x)

    def read_view() -> None:
        build_view(report, collect(model))  # counts every weight's nonzeros

    view_time = median_time(read_view, args.repeat)
    rest = total - facts_time
    print(
        f"resnet50, 1x3x224x224, real weights, median of {args.repeat} (CPU process time, {args.threads} thread)"
    )
    print(f"  profile (shapes-only trace), all of it:   {total * 1e3:8.1f} ms")
    print(f"  of which reading weight facts:            {facts_time * 1e3:8.1f} ms")
    print(f"  compression adds {100 * facts_time / rest:.1f} % to the profile (target < 10 %)")
    print(
        f"  reading report.compression the first time: {view_time * 1e3:8.1f} ms (counts nonzeros of every weight)"
    )


if __name__ == "__main__":
    main()
