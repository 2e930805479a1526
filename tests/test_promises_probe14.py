"""Probe 14's promises audit: the sentences of this stop's doc changes that no test checked
(docs/probe-14/promises.md). Every expected value has its arithmetic beside it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import flopmeter
from wrapped import Fn

ROOT = Path(__file__).resolve().parent.parent


def c(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))


def both(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> flopmeter.Report:
    """The values run, after checking the shapes-only run gives the same numbers."""
    report = flopmeter.profile(model, inputs, shapes_only=False)
    meta = flopmeter.profile(model, inputs, shapes_only=True)
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    assert (meta.macs, meta.flops) == (report.macs, report.flops)
    return report


# ------------------------------------------------- docs/formulas.md, linear algebra, complex
def test_complex_decompositions_are_real_arithmetic_of_their_real_counts() -> None:
    """docs/formulas.md, "Linear-algebra decompositions": complex inputs in real arithmetic,
    a LAWN 41 count as LAWN 41 counts complex arithmetic (6 real FLOPs per multiplication,
    2 per addition, 4 real MACs per MAC), the other counts by the contraction rule (4·M real
    MACs, 4·M + 2·F real FLOPs). It said "the same counts, one FLOP per complex operation"
    until this audit."""
    real = both(Fn(torch.linalg.qr), (torch.randn(5, 3),))
    # geqrf 5x3 110 FLOPs (43 MACs) + Q 5x3 from 3 reflectors 71 (31): 181 FLOPs, 74 MACs:
    # 74 additions (LAWN 41's MACs) and 181 - 74 = 107 multiplications
    assert (real.flops, real.macs) == (181, 74)
    cplx = both(Fn(torch.linalg.qr), (c(5, 3),))
    assert (cplx.macs, cplx.flops) == (4 * 74, 6 * 107 + 2 * 74)  # (296, 790)
    # Cholesky n = 4: n roots 4, n(n-1)/2 divides 6, (n^3 - n)/6 = 10 multiply-subtracts
    # (20 FLOPs): 30 FLOPs, 10 MACs; complex: 4*10 = 40 MACs, 40 + 60 = 100 FLOPs
    spd = torch.eye(4) * 4 + 0.1
    assert both(Fn(torch.linalg.cholesky), (spd,)).flops == 30
    hpd = spd.to(torch.complex64)
    cholesky = both(Fn(torch.linalg.cholesky), (hpd,))
    assert (cholesky.macs, cholesky.flops) == (40, 100)


# ----------------------------------------------- docs/formulas.md, Complex values (the rest)
ELEMENTWISE = [
    # (name, function, inputs, real FLOPs per element as docs/formulas.md lists them)
    ("log2", torch.log2, (c(10),), 8),  # log 6, times the real 1/ln 2: 2
    ("log10", torch.log10, (c(10),), 8),
    ("log1p", torch.log1p, (c(10),), 7),  # + the real 1: 1, log 6
    ("expm1", torch.expm1, (c(10),), 6),  # exp 5, - the real 1: 1
    ("rsqrt", torch.rsqrt, (c(10),), 17),  # sqrt 11 + reciprocal 6
    ("square", torch.square, (c(10),), 6),  # runs as pow(z, 2), which torch computes as z·z
    ("pow 2", lambda z: z**2, (c(10),), 6),  # z·z
    ("pow 3", lambda z: torch.pow(z, 3), (c(10),), 12),  # z·z·z: 2 complex multiplies
    ("pow -2", lambda z: torch.pow(z, -2.0), (c(10),), 12),  # 1/(z·z): multiply 6 + reciprocal 6
    ("pow 0.5", lambda z: torch.pow(z, 0.5), (c(10),), 11),  # torch's sqrt kernel
    ("pow -0.5", lambda z: torch.pow(z, -0.5), (c(10),), 17),  # rsqrt
    ("pow -1", lambda z: torch.pow(z, -1), (c(10),), 6),  # reciprocal
    ("pow 2.5", lambda z: torch.pow(z, 2.5), (c(10),), 13),  # exp(2.5·log z): 6 + 2 + 5
    ("sin", torch.sin, (c(10),), 6),
    ("cos", torch.cos, (c(10),), 7),
    ("sinh", torch.sinh, (c(10),), 6),
    ("cosh", torch.cosh, (c(10),), 6),
    ("isnan", torch.isnan, (c(10),), 3),  # a test of each part, and an or
    ("isinf", torch.isinf, (c(10),), 3),
    ("ne", torch.ne, (c(10), c(10)), 3),  # two compares and an or
    ("pow of a real base", lambda z: torch.pow(2.0, z), (c(10),), 8),  # exp(z·ln 2): 2 + ... = 8
    ("masked_fill", lambda z, m: z.masked_fill(m, 0), (c(10), torch.arange(10) % 2 == 0), 1),
    ("polar", torch.polar, (torch.rand(10), torch.rand(10)), 4),  # r·cos θ, r·sin θ
]


@pytest.mark.parametrize(("name", "fn", "inputs", "per"), ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_the_listed_complex_elementwise_counts(name, fn, inputs, per):  # type: ignore[no-untyped-def]
    report = both(Fn(fn), inputs)
    assert report.flops == 10 * per
    assert report.macs == 0


def test_the_listed_complex_reductions() -> None:
    x = (c(3, 10),)
    # cumprod: 9 complex multiplies a row, 6 each: 3*54 = 162
    assert both(Fn(lambda z: z.cumprod(-1)), x).flops == 162
    # trace of 4x4: 3 complex adds, 6
    assert both(Fn(torch.trace), (c(4, 4),)).flops == 6
    # vector_norm per row of 10: p = 0 3 per term + 9 adds, no root: 39;
    # p = inf |z| 4 per term + 9 compares: 49; p = 3: 5 per term + 9 adds + the root: 60
    assert both(Fn(lambda z: torch.linalg.vector_norm(z, 0, dim=-1)), x).flops == 3 * 39
    assert both(Fn(lambda z: torch.linalg.vector_norm(z, float("inf"), dim=-1)), x).flops == 3 * 49
    assert both(Fn(lambda z: torch.linalg.vector_norm(z, 3, dim=-1)), x).flops == 3 * 60


def test_a_complex_activations_backward_is_listed_unsupported() -> None:
    """docs/formulas.md: "an activation's backward" on complex values has no complex formula:
    listed with its complex dtype, not counted as if it were real."""
    x = c(6).requires_grad_()
    report = flopmeter.profile(Fn(torch.tanh), (x,), backward=True)
    unsupported = report.unsupported_ops()
    assert "aten.tanh_backward" in unsupported
    assert all("complex64" in shape for shape in unsupported["aten.tanh_backward"].shapes)


# ------------------------------------------------------ docs/formulas.md, Backward, checkpoint
class _Checkpointed(nn.Module):
    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 4)
        self.reentrant = reentrant

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))  # the relu is in no module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return checkpoint(self._body, x, use_reentrant=self.reentrant)


@pytest.mark.parametrize(("reentrant", "module"), [(False, "b"), (True, "")])
def test_a_recomputed_op_outside_every_module_goes_to_the_asking_node_or_the_root(
    reentrant: bool, module: str
) -> None:
    """docs/formulas.md: the recomputed torch.relu between two layers (4*16 = 64 elements, 1
    each) goes to b, whose backward node asks for the recompute, when non-reentrant; to the
    root when reentrant. The forward charged it to the root."""
    x = torch.randn(4, 8, requires_grad=reentrant)  # a reentrant checkpoint needs a grad input
    report = flopmeter.profile(_Checkpointed(reentrant), (x,), backward=True)
    relus = [(r.phase, r.module, r.cost.flops) for r in report.ops if r.op == "aten.relu"]
    assert relus == [("forward", "", 64), ("backward", module, 64)]


# ------------------------------------------------------------------ docs/modes.md, hooks
def test_a_training_step_runs_no_post_accumulate_grad_hook() -> None:
    """docs/modes.md: post-accumulate-grad hooks do not run, as no ``.grad`` is written (a
    plain model; tests/test_backward_probe9.py checks a reentrant checkpoint's)."""
    model = nn.Linear(8, 4)
    stepped: list[torch.Tensor] = []
    for parameter in model.parameters():
        parameter.register_post_accumulate_grad_hook(stepped.append)
    report = flopmeter.profile(model, torch.randn(2, 8), backward=True)
    assert report.backward_cost.macs == 4 * 8 * 2  # grad_weight only (x has no grad): 64
    assert stepped == [] and model.weight.grad is None
    model(torch.randn(2, 8)).sum().backward()
    assert len(stepped) == 2  # the hooks are still there: weight, bias


# ------------------------------------------------------------------ docs/modes.md, .to()
def _numbers(report: flopmeter.Report) -> tuple[int, int, int, int]:
    return report.flops, report.macs, report.total.bytes_read, report.total.bytes_written


def test_a_move_with_another_dtype_is_a_copy_in_both_modes() -> None:
    """docs/modes.md: a move that also asks for another dtype is the copy it is with values:
    2*3*4*5 = 120 float32 read (480 B), 120 float64 written (960 B)."""
    model = Fn(lambda t: t.to("cpu", torch.float64))
    x = torch.randn(2, 3, 4, 5)
    shapes = flopmeter.profile(model, (x,), shapes_only=True)
    values = flopmeter.profile(model, (x,), shapes_only=False)
    assert _numbers(shapes) == _numbers(values) == (0, 0, 480, 960)


def test_a_copy_true_move_is_counted_with_values_only() -> None:
    """docs/modes.md's stated limit: ``x.to(device, copy=True)`` onto the device x is on reads
    and writes 120 float32 (480 B each way) with values; on shapes it is taken for a move (0).
    This test fails when the limit is lifted: then the doc sentence goes."""
    model = Fn(lambda t: t.to("cpu", copy=True))
    x = torch.randn(2, 3, 4, 5)
    values = flopmeter.profile(model, (x,), shapes_only=False)
    shapes = flopmeter.profile(model, (x,), shapes_only=True)
    assert _numbers(values) == (0, 0, 480, 480)
    assert _numbers(shapes) == (0, 0, 0, 0)


# --------------------------------------------------------------------- README, Extras
def test_the_readme_extras_list_pyprojects_packages() -> None:
    """README: each extra's packages in parentheses are pyproject's, and `test` holds all of
    them (test_newuser_probe14.py checks only that every extra is named)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0] for r in requirements}

    paragraph = (ROOT / "README.md").read_text().split("Extras:", 1)[1].split("\n\n", 1)[0]
    paragraph = " ".join(paragraph.split())
    listed = dict(re.findall(r"`([a-z]+)` \(([^;)]+)", paragraph))
    for extra, packages in listed.items():
        if extra == "test":
            continue
        assert {p.strip() for p in packages.split(",")} == names(extras[extra]), extra
    assert listed["test"].strip() == "all of them"
    others = set().union(*(names(r) for extra, r in extras.items() if extra != "test"))
    assert others <= names(extras["test"])
    assert "onnxscript" not in names(extras["onnx"])  # hence "also needs pip install onnxscript"


# ------------------------------------------------- docs/compression.md, compare's totals
def test_compare_totals_show_the_measured_latency_with_bench() -> None:
    """docs/compression.md: the totals table has the estimated latency, and the measured one
    with ``--bench``: a column "latency (measured)" with each model's median seconds."""
    torch.manual_seed(0)
    dense = nn.Linear(16, 8)
    result = flopmeter.compare(dense, nn.Linear(16, 8), torch.randn(2, 16), bench=True, repeat=3)
    assert set(result.measured) == {"before", "after"}
    assert all(seconds > 0 for seconds in result.measured.values())
    assert "latency (measured)" in result.to_markdown().split("Totals:", 1)[1]
    plain = flopmeter.compare(dense, nn.Linear(16, 8), torch.randn(2, 16))
    assert "latency (measured)" not in plain.to_markdown()


# ------------------------------------------------------ docs/onnx.md, the dynamo optimizer
def _export_dynamo(model: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path) -> Path:
    import contextlib
    import io
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, str(path), dynamo=True)
    return path


def test_mobilenet_v3_smalls_dropped_zero_biases_as_docs_onnx_md_gives(tmp_path: Path) -> None:
    """docs/onnx.md's row: mobilenet_v3_small built with ``weights=None``, dynamo: 54 zero
    biases removed, -1,417,680 FLOPs (one add per output element of each) and -10,968
    params beyond the BatchNorm NOTE's; the NOTE states both sums."""
    pytest.importorskip("onnxscript")
    torchvision = pytest.importorskip("torchvision")
    from flopmeter.render.onnx_notes import onnx_lines

    model = torchvision.models.mobilenet_v3_small(weights=None).eval()
    path = _export_dynamo(model, (torch.randn(1, 3, 224, 224),), tmp_path / "m.onnx")
    report = flopmeter.profile_onnx(path)
    diff = report.options["onnx"]["differences"]
    assert (diff["dropped_bias"], diff["dropped_bias_adds"], diff["dropped_bias_params"]) == (
        54,
        1_417_680,
        10_968,
    )
    notes = "\n".join(onnx_lines(report))
    assert "FLOPs lower by their 1,417,680 adds" in notes and "params by their 10,968 elements" in notes


def test_a_berts_merged_initializers_count_once_with_no_note(tmp_path: Path) -> None:
    """docs/onnx.md: a 2-layer d = 128 BERT built from its config (FFN 512): dynamo merges its
    equal zero biases and all-ones LayerNorm weights, -2,816 params (= 18·128 + 512), beside
    the dropped all-zero pooler bias (-128, stated): 607,104 - 128 - 2,816 = 604,160. The
    merge has no NOTE."""
    pytest.importorskip("onnxscript")
    transformers = pytest.importorskip("transformers")
    from flopmeter.render.onnx_notes import onnx_lines

    config = transformers.BertConfig(
        hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512, vocab_size=1000
    )
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    ids = torch.randint(0, 1000, (1, 16))
    assert flopmeter.profile(model, (ids,)).params == 607_104
    report = flopmeter.profile_onnx(_export_dynamo(model, (ids,), tmp_path / "bert.onnx"))
    assert report.options["onnx"]["differences"]["dropped_bias_params"] == 128
    assert report.params == 607_104 - 128 - 2_816  # 604,160
    assert not any("merge" in line.lower() for line in onnx_lines(report))


# ------------------------------------------ docs/compression.md, compare after fusion
def test_resnet18_fx_int8_against_unfused_and_fused_floats_as_docs_compression_md_gives() -> None:
    """docs/compression.md: resnet18, FX int8, a100: 2.13x against torchvision's unfused model
    (the warning names its 20 batch norms), 1.58x against ``fuse_fx`` of it (no warning)."""
    torchvision = pytest.importorskip("torchvision")
    import copy
    import warnings

    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, fuse_fx, prepare_fx

    torch.manual_seed(0)
    model, x = torchvision.models.resnet18(weights=None).eval(), torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("fbgemm"), (x,))
        with torch.no_grad():
            prepared(x)
        int8 = convert_fx(prepared)
    unfused = flopmeter.compare(model, int8, x)
    assert f"{unfused.speedup_estimate:.2f}" == "2.13"
    assert any(
        "ResNet runs 20 more batch norm(s) than GraphModule, which folded them" in w for w in unfused.warnings
    )
    fused = flopmeter.compare(fuse_fx(model), int8, x)
    assert f"{fused.speedup_estimate:.2f}" == "1.58"
    assert not any("batch norm" in w for w in fused.warnings)


# ------------------------------------------- docs/formulas.md, decompositions and the peers
DECOMPOSITIONS = [
    torch.linalg.qr,
    torch.linalg.svd,
    torch.linalg.eigh,
    torch.linalg.eig,
    torch.linalg.pinv,
    torch.linalg.matrix_exp,
    torch.cholesky_inverse,
]


@pytest.mark.parametrize("fn", DECOMPOSITIONS, ids=[f.__name__ for f in DECOMPOSITIONS])
def test_the_peers_count_no_decomposition(fn) -> None:  # type: ignore[no-untyped-def]
    """docs/formulas.md: "ptflops and FlopCounterMode count 0 for all of them"; flopmeter
    counts each (its own tests give the numbers)."""
    from torch.utils.flop_counter import FlopCounterMode

    ptflops = pytest.importorskip("ptflops")
    a = torch.randn(4, 4)
    a = a @ a.mT + 4 * torch.eye(4)  # symmetric positive definite: every one runs
    counter = FlopCounterMode(display=False)
    with counter:
        fn(a)
    assert counter.get_total_flops() == 0
    macs, _ = ptflops.get_model_complexity_info(
        Fn(fn), (4, 4), input_constructor=lambda shape: a, as_strings=False, print_per_layer_stat=False
    )
    assert macs == 0  # ran (None would mean ptflops failed), counted nothing
    assert flopmeter.profile(Fn(fn), (a,)).flops > 0


# ------------------------------------------------ docs/llm.md, int8 experts as executed
def test_int8_experts_picked_by_the_eager_loop_count_as_activations_as_executed() -> None:
    """docs/llm.md's stated limit ("Left: ..."): as executed, the int8 experts the eager loop
    indexes by the router's choice are not known as stored, so their reads count as
    activations: the executed weights are the other weights alone, 127,520 B
    (4 B * (2 layers * (4,096 + 2,048 + 2,048 + 4,096 + 256 + 128) + 64 + 6,400 + 64 + 8)),
    where the paged accounting reads the routed half of the 209,408 stored: 232,224. This
    test fails when the limit is lifted: then the doc's sentence goes."""
    leftovers = pytest.importorskip("test_leftovers_probe14")
    step = flopmeter.llm_cost(
        leftovers._int8_experts(leftovers._mixtral("eager")), prompt=16, generate=2
    ).decode(16)
    assert leftovers.OTHER_WEIGHTS == 127_520
    assert step.bytes("paged").weights == 127_520 + 209_408 // 2  # 232,224
    executed = step.bytes("as executed")
    assert executed.weights == 127_520
    float_step = flopmeter.llm_cost(leftovers._mixtral("eager"), prompt=16, generate=2).decode(16)
    assert executed.activations > float_step.bytes("as executed").activations + 209_408 // 2
