"""How much the compression view adds to a profile: resnet50 with real weights.

Times (CPU process time, steadier than wall time on a shared machine) a full
``flopmeter.profile(..., compression=True)`` and the compression step inside it: reading
the weight facts (``compression.collect``: representations, shapes, bits, packed layouts)
and counting every weight's nonzeros (about 100 MB for resnet50), which such a profile
does (a default one of a dense model does not) so that a model pruned in place afterwards
leaves its report as it was. Building the view's tables
waits until ``report.compression`` is first read; that cost is printed too. Not a test:
run

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
    flopmeter.profile(model, x, compression=True)  # warm-up
    total = median_time(lambda: flopmeter.profile(model, x, compression=True), args.repeat)

    def weight_facts() -> None:
        collect(model).count()  # what profile() reads of the weights

    facts_time = median_time(weight_facts, args.repeat)
    report = flopmeter.profile(model, x, compression=True)
    facts = collect(model)
    facts.count()  # done once, as profile() does; build_view then only builds tables
    view_time = median_time(lambda: build_view(report, facts), args.repeat)
    rest = total - facts_time
    print(
        f"resnet50, 1x3x224x224, real weights, median of {args.repeat} (CPU process time, {args.threads} thread)"
    )
    print(f"  profile (shapes-only trace), all of it:    {total * 1e3:8.1f} ms")
    print(f"  of which weight facts and nonzeros:        {facts_time * 1e3:8.1f} ms")
    print(f"  compression adds {100 * facts_time / rest:.1f} % to the rest of the profile")
    print(f"  building the view's tables at first read:  {view_time * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
