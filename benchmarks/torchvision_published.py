"""flopmeter's MACs and params beside the figures torchvision publishes for its weights.

    python benchmarks/torchvision_published.py [--only resnet18,vit_b_16]

torchvision's weight metadata (``weights.meta``, read offline: no weights are downloaded)
gives each classification model's ``_ops``, which its documentation heads "GFLOPS" but
which counts multiply-accumulates (a conv's C_i/groups·K²·H_o·W_o·C_o), rounded to three
decimals, at the crop size of its weights' transforms; and ``num_params``. This script
profiles each model built with ``weights=None`` at that crop and prints both, with the
difference. A difference within the rounding of three decimals (0.0005 G) is agreement;
googlenet's params differ by design: ``weights=None`` builds its two auxiliary classifiers
(6,379,984 params, never run in eval), which the published model, loaded with
``aux_logits=False``, does not hold.
"""

from __future__ import annotations

import argparse
import warnings

import torch

import flopmeter

# too large for a small machine's memory or minutes (each profile is on shapes; building
# the model allocates its weights)
SKIPPED = ("vit_h_14", "vit_l_16", "vit_l_32", "regnet_y_128gf")


def published(name: str) -> tuple[float, int, int] | None:
    """(GMACs, params, crop) torchvision publishes for the first weights of ``name``."""
    from torchvision.models import get_model_weights

    try:
        weights = next(iter(get_model_weights(name)))
    except (ValueError, StopIteration):
        return None
    ops = weights.meta.get("_ops")
    if ops is None:
        return None
    crop = getattr(weights.transforms(), "crop_size", [224])[0]
    return ops, weights.meta["num_params"], crop


def row(name: str) -> tuple[str, bool] | None:
    """One table line for model ``name`` and whether its MACs agree within the rounding."""
    import torchvision

    facts = published(name)
    if facts is None:
        return None
    ops, params, crop = facts
    model = torchvision.models.get_model(name, weights=None).eval()
    report = flopmeter.profile(model, torch.randn(1, 3, crop, crop))
    agrees = abs(report.macs / 1e9 - ops) <= 0.0005
    line = (
        f"{name:22} {crop:4d} {ops:9.3f} {report.macs / 1e9:10.4f} {'yes' if agrees else 'NO':>6} "
        f"{params:12,d} {report.params:12,d}"
    )
    return line, agrees


def main() -> None:
    import torchvision

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated model names")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    names = args.only.split(",") if args.only else torchvision.models.list_models(module=torchvision.models)
    print(
        f"{'model':22} {'crop':>4} {'published':>9} {'flopmeter':>10} {'agree':>6} {'params pub.':>12} {'flopmeter':>12}"
    )
    disagree = []
    for name in names:
        if name in SKIPPED:
            continue
        found = row(name)
        if found is not None:
            print(found[0], flush=True)
            if not found[1]:
                disagree.append(name)
    print("MACs agree on every model" if not disagree else "MACs differ: " + ", ".join(disagree))


if __name__ == "__main__":
    main()
