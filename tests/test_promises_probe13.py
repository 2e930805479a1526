"""Probe 13 promises audit: sentences the stop's docs added that no test pinned yet
(docs/probe-13/promises.md). Each expected value has its arithmetic beside it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter
from wrapped import Fn


def flops(fn, *inputs: torch.Tensor) -> int:  # type: ignore[no-untyped-def]
    report = flopmeter.profile(Fn(fn), inputs)
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    return report.flops


# ------------------------------------------------------------------------ docs/formulas.md
def test_eval_batch_norm_backward_reads_one_per_input_element() -> None:
    """ "eval BatchNorm's input 1 (the folded scale); each part only when needed"."""
    layer = nn.BatchNorm1d(4).eval()
    x = torch.randn(3, 4, requires_grad=True)
    report = flopmeter.profile(layer, (x,), backward=True, train=False)
    # 12 elements: input 1 (g * folded scale) + weight 2 + bias 1 = 4 each: 48
    assert report.by_operator()["aten.native_batch_norm_backward"].cost.flops == 12 * (1 + 2 + 1)
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)
    report = flopmeter.profile(layer, (x,), backward=True, train=False)
    # frozen affine: the input's gradient alone, 12 * 1 = 12
    assert report.by_operator()["aten.native_batch_norm_backward"].cost.flops == 12
    assert layer.weight.requires_grad is False  # left as it was


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.0, 3 * 12 - 1),  # 12 subtracts, 12 (d != 0), 11 adds, no root: 35
        (float("inf"), 3 * 12 - 1),  # 12 subtracts, 12 |d|, 11 compares: 35
        (-float("inf"), 3 * 12 - 1),
        (2.0, 3 * 12 - 1 + 1),  # + the square root: 36
    ],
)
def test_dist_has_a_root_only_where_p_needs_one(p: float, expected: int) -> None:
    """ "`torch.dist(a, b, p)` ... 3n − 1 + a root (none for p = 0, 1, ∞)"."""
    a, b = torch.randn(3, 4), torch.randn(4)  # b broadcast: n = 12
    assert flops(lambda x, y: torch.dist(x, y, p), a, b) == expected


def test_every_listed_bessel_function_is_one_per_element() -> None:
    """The Bessel functions the list names, each 1 per output element: 3 * 4 = 12."""
    x = torch.rand(3, 4) + 0.1
    for name in (
        "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1",
        "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
        "spherical_bessel_j0", "airy_ai",
    ):  # fmt: skip
        assert flops(getattr(torch.special, name), x) == 12, name


def test_every_decomposition_listed_without_a_formula_is_counted_since_probe_14() -> None:
    """Probe 13's "Still without a formula, reported as unsupported with their shapes: qr, svd,
    eigh, eig, matrix_exp, pinv, lstsq, `cholesky_inverse`, ldl": probe 14 counts each
    (docs/formulas.md; hand counts in tests/test_linalg_probe14.py)."""
    a = torch.randn(2, 4, 4)
    spd = a @ a.mT + 4 * torch.eye(4)
    cases = {
        "aten._linalg_svd": (lambda m: torch.linalg.svd(m)[0], a),
        "aten.linalg_eig": (lambda m: torch.linalg.eig(m)[0], a),
        "aten.linalg_matrix_exp": (torch.linalg.matrix_exp, a),
        "aten.linalg_pinv": (torch.linalg.pinv, a),
        "aten.linalg_lstsq": (lambda m: torch.linalg.lstsq(m, m[..., :2]).solution, a),
        "aten.cholesky_inverse": (torch.cholesky_inverse, spd),
        "aten.linalg_ldl_factor_ex": (lambda m: torch.linalg.ldl_factor(m)[0], spd),
    }
    for op, (fn, x) in cases.items():
        report = flopmeter.profile(Fn(fn), (x,))
        assert report.unsupported_ops() == {} and report.by_operator()[op].cost.flops > 0, op


# --------------------------------------------------------------------- docs/conventions.md
def test_fvcore_has_no_handle_for_linear_algebra() -> None:
    """ "fvcore has no handle for them either": 0, listing the op as unsupported."""
    fvcore = pytest.importorskip("fvcore.nn")
    a = torch.randn(2, 4, 4) + 4 * torch.eye(4)
    b = torch.randn(2, 4, 3)
    analysis = fvcore.FlopCountAnalysis(Fn(torch.linalg.solve), (a, b))
    analysis.unsupported_ops_warnings(False)
    assert analysis.total() == 0 and analysis.unsupported_ops()["aten::linalg_solve"] == 1
    # ours: 2 * (LU 14 + 3 right-hand sides * 12) = 100 MACs (docs/formulas.md)
    assert flopmeter.profile(Fn(torch.linalg.solve), (a, b)).macs == 100


# -------------------------------------------------------------------------- docs/speed.md
def test_intensities_of_the_depthwise_and_3x3_convolutions_on_h100() -> None:
    """ "mobilenet_v2's depthwise 3x3 convolutions have intensities of 0.8-2.1 FLOPs/byte ...
    resnet50's sixteen 3x3 convolutions have 23-166 ... the 7x7-pixel ones in layer4, whose
    9.0 MiB (512·512·9 float32 weights, 9.4 MB) dominate their traffic"."""
    torchvision = pytest.importorskip("torchvision")
    mobile = torchvision.models.mobilenet_v2()
    rows = flopmeter.profile(mobile, input_shape=(1, 3, 224, 224)).roofline("h100-sxm").rows
    depthwise = [
        rows[name].intensity
        for name, module in mobile.named_modules()
        if isinstance(module, nn.Conv2d) and module.groups > 1
    ]
    assert len(depthwise) == 17
    assert round(min(depthwise), 1) == 0.8 and round(max(depthwise), 1) == 2.1
    resnet = torchvision.models.resnet50()
    report = flopmeter.profile(resnet, input_shape=(1, 3, 224, 224))
    rows = report.roofline("h100-sxm").rows
    three = {
        name: rows[name]
        for name, module in resnet.named_modules()
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3)
    }
    assert len(three) == 16
    assert round(min(r.intensity for r in three.values())) == 23
    assert round(max(r.intensity for r in three.values())) == 166
    # layer4.1.conv2: 512*512*9 float32 = 9,437,184 B = 9.0 MiB of weights, most of its bytes
    weights = 512 * 512 * 9 * 4
    assert weights == 9 * 2**20 and weights / three["layer4.1.conv2"].bytes > 0.95


def test_roofline_repr_names_the_hardware_and_the_estimate() -> None:
    """speed.md: `r` in a REPL: <Roofline on a100-sxm-80gb: est. latency ...>."""
    report = flopmeter.profile(nn.Sequential(nn.Linear(8, 4)), torch.randn(2, 8))
    assert repr(report.roofline("a100-sxm-80gb")).startswith("<Roofline on a100-sxm-80gb: est. latency ")


# ---------------------------------------------------------------------------- docs/llm.md
def test_the_padded_mamba2_scan_is_9_08_m_per_token_against_palms_822_528() -> None:
    """ "a 2-layer d = 64 Falcon-H1 at T = 16: 9.08 M FLOPs per token traced against PaLM's
    822,528"; the traced step pads the 16 tokens to the chunk of 256, so it is far above."""
    pytest.importorskip("transformers")
    from flopmeter.llm.training import training_step
    from flopmeter.render.llm import render_training
    from test_llm_probe13 import tiny_falcon_h1

    text = render_training(training_step(tiny_falcon_h1(), tokens=16))
    traced = next(line for line in text.splitlines() if line.startswith("traced full"))
    palm = next(line for line in text.splitlines() if line.startswith("6N+12LHQT"))
    assert "9.08 M" in traced  # 145.35 M per step / 16 tokens
    assert "822.53 K" in palm  # 6 * 132,992 + 12 * 2 * 4 * 16 * 16 = 822,528
