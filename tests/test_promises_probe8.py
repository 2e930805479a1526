"""Probe 8: the promises stop 20's doc changes made that no test held (docs/probe-8/promises.md).

Each test names the doc and the sentence it holds; the arithmetic sits beside each number."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.cli import run
from flopmeter.render import formats
from flopmeter.render.speed import render_timings
from flopmeter.timing import Timing
from test_coverage_layers import Fn  # a module calling a function

F = nn.functional
MODELS = str(Path(__file__).parent / "fixtures" / "formats_probe8.py")


# -- docs/formulas.md: "Also 1: asinh, acosh, atanh, ... polygamma, i0 (i0e, i1, i1e), ndtri,
# log_ndtr, erfcx" (asinh, lgamma, digamma, i0, i0e were tested; these were not) -----------------


@pytest.mark.parametrize(
    "fn",
    [
        torch.acosh,
        torch.atanh,
        lambda t: torch.polygamma(1, t),
        torch.special.i1,
        torch.special.i1e,
        torch.special.ndtri,
        torch.special.log_ndtr,
        torch.special.erfcx,
    ],
    ids=["acosh", "atanh", "polygamma", "i1", "i1e", "ndtri", "log_ndtr", "erfcx"],
)
def test_special_functions_count_1_per_element(fn) -> None:  # type: ignore[no-untyped-def]
    x = torch.rand(3, 5) * 0.8 + 0.1  # in (0, 1): valid for atanh, ndtri; acosh gets 1 + x
    arg = x + 1 if fn is torch.acosh else x
    report = flopmeter.profile(Fn(fn), arg)
    assert report.unsupported_ops() == {}
    assert report.flops == 15  # 3 * 5 outputs * 1


# -- docs/formulas.md: LSTM proj_size: "MACs 4H(I+P) + PH, FLOPs 8H(I+P) + 19H + P(2H-1) per
# token (what the unfused CPU path runs)" (only CUDA's fused event was tested) ------------------


def test_projected_lstm_forward_on_the_cpu_per_token() -> None:
    torch.manual_seed(0)
    report = flopmeter.profile(nn.LSTM(4, 6, proj_size=3), torch.randn(5, 1, 4))
    assert report.unsupported_ops() == {}
    # I 4, H 6, P 3; 5 tokens. MACs 4*6*(4 + 3) + 3*6 = 168 + 18 = 186 per token -> 930
    # FLOPs 8*6*(4 + 3) + 19*6 + 3*(2*6 - 1) = 336 + 114 + 33 = 483 per token -> 2,415
    assert (report.macs, report.flops) == (5 * 186, 5 * 483)


# -- docs/formulas.md: "Still without a formula (reported as unsupported): roi_pool,
# ps_roi_pool and their backward" ------------------------------------------------------------


@pytest.mark.parametrize("name", ["roi_pool", "ps_roi_pool"])
def test_roi_pooling_is_reported_unsupported_with_its_shapes(name: str) -> None:
    ops = pytest.importorskip("torchvision.ops")
    pool = getattr(ops, name)
    x = torch.randn(1, 8, 10, 10, requires_grad=True)
    boxes = torch.tensor([[0, 1.0, 1.0, 6.0, 6.0], [0, 0.0, 2.0, 9.0, 8.0]])
    report = flopmeter.profile(Fn(lambda t, b: pool(t, b, (2, 2))), (x, boxes), backward=True)
    unsupported = report.unsupported_ops()
    assert set(unsupported) == {f"torchvision.{name}", f"torchvision._{name}_backward"}
    forward = unsupported[f"torchvision.{name}"]
    assert forward.calls == 1 and forward.shapes == ["(1x8x10x10:float32, 2x5:float32)"]
    assert report.flops == 0  # nothing else in the model: no number made up for them


# -- README: compare's "CSV's `flops` column is `flops_2mac`, `flops_mac` or `ptflops_macs` under
# another --convention" (only `mac` was tested) ----------------------------------------------


@pytest.mark.parametrize(
    ("convention", "column", "value"),
    [
        ("2mac", "flops_2mac", "1200"),  # 2 * 600 MACs (fc1 10*20*2 = 400, fc2 20*5*2 = 200)
        ("ptflops", "ptflops_macs", "690"),  # 600 MACs + bias adds 2*(20 + 5) 50 + ReLU 2*20 40
    ],
)
def test_compare_csv_names_the_flops_column_by_each_convention(
    convention: str, column: str, value: str
) -> None:
    code, out, err = run(
        [
            "compare",
            f"{MODELS}:Toy",
            f"{MODELS}:pruned",
            "--input",
            "2x10",
            "-f",
            "csv",
            "--convention",
            convention,
        ]
    )
    assert code == 0, err
    row = next(csv.DictReader(io.StringIO(out)))
    assert row[column] == value and "flops" not in row


# -- docs/onnx.md: "A CSV of an ONNX file ... has an `onnx_tool_macs` column after
# `ptflops_macs`" (presence was tested, the place was not) -------------------------------------


def test_onnx_csv_column_comes_right_after_ptflops_macs(tmp_path: Path) -> None:
    pytest.importorskip("onnx")

    class SoftmaxLinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.softmax(-1))

    path = tmp_path / "sl.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(SoftmaxLinear(), (torch.randn(1, 4),), str(path), dynamo=False)
    report = flopmeter.profile_onnx(str(path))
    for table in (formats.to_csv(report), formats.operators_to_csv(report)):
        header = table.splitlines()[0].split(",")
        assert header[header.index("ptflops_macs") + 1] == "onnx_tool_macs"


# -- docs/speed.md: "The per-module table lists the `--top N` slowest modules (containers
# included, the root first: it holds them all), 15 without `--top`, in text and Markdown
# alike; CSV and JSON keep every timed module." (the 15 was never reached by a test) ----------


def _twenty_modules() -> Timing:
    # the root 1 s (inclusive), m0 .. m19 at 20, 19, ..., 1 ms: the 14 slowest are m0 .. m13
    per_module = {"": 1.0, **{f"m{i}": (20 - i) / 1000 for i in range(20)}}
    return Timing(batch_size=1, times=[1.0, 1.1, 1.2], warmup=1, device="cpu", per_module=per_module)


def _timed_rows(shown: str) -> list[str]:
    table = shown.split("per-module time in one call")[1]
    return [
        line.strip("| ").split()[0]
        for line in table.splitlines()
        if line.strip("| ").startswith(("(root)", "m")) and not line.strip("| ").startswith("module")
    ]


def test_module_timing_table_holds_15_without_top_and_files_hold_all() -> None:
    report = flopmeter.profile(nn.Linear(2, 2), torch.randn(1, 2))
    expected = ["(root)", *(f"m{i}" for i in range(14))]  # 15 rows: the root, then m0 .. m13
    assert _timed_rows(render_timings(report, [_twenty_modules()])) == expected
    assert _timed_rows(formats.to_markdown(report, timings=[_twenty_modules()])) == expected
    assert _timed_rows(formats.to_markdown(report, top=3, timings=[_twenty_modules()])) == expected[:3]
    rows = csv.DictReader(io.StringIO(formats.to_csv(report, timings=[_twenty_modules()])))
    assert len([r for r in rows if r["type"] == "module timing"]) == 21  # the root + 20
    data = json.loads(formats.to_json(report, timings=[_twenty_modules()]))
    assert len(data["timings"][0]["per_module_median_seconds"]) == 21


# -- docs/onnx.md: "The integer elementwise ops of a QOperator graph (QLinearAdd, QLinearMul,
# QLinearSigmoid, ...) cost no FLOPs, like any integer arithmetic" ------------------------------


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu"])
def test_qoperator_integer_elementwise_ops_cost_no_flops(op: str) -> None:
    pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from flopmeter.onnx import profile_onnx

    scale_zp = ["s", "zp"]
    operands = ["xq", *scale_zp, "xq", *scale_zp] if op in ("QLinearAdd", "QLinearMul") else ["xq", *scale_zp]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
        helper.make_node(op, [*operands, *scale_zp], ["q"], domain="com.microsoft"),
        helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 2, 3, 3))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(np.array(0.1, np.float32), "s"),
            numpy_helper.from_array(np.array(0, np.uint8), "zp"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    report = profile_onnx(model)
    assert not report.unsupported  # known, not left out
    assert report.operators[f"com.microsoft.{op}"].cost.flops == 0
    assert report.flops == 18 * 4 + 18 * 2  # Quantize 1x2x3x3 = 18 at 4 + Dequantize 18 at 2: 108


# -- docs/conventions.md: FlopCounterMode "has no entry for the CPU's SDPA kernel ..., nor for
# addbmm, mv, addmv, dot, addr, _grouped_mm: on the CPU it counts 0 for SDPA (unless the math
# path runs: dropout, a forced math backend; a GQA call runs the flash kernel too)". The doc said
# a GQA call runs the math path: on torch 2.14 it runs the CPU flash kernel and counts 0. ------


def test_flop_counter_counts_0_for_the_contractions_conventions_md_names() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    calls = {
        "addmv": (torch.addmv, (torch.randn(3), torch.randn(3, 5), torch.randn(5)), 2 * 15),  # 3 dots of 5
        "addr": (torch.addr, (torch.randn(3, 4), torch.randn(3), torch.randn(4)), 2 * 12),  # 3*4 of 1
        # 8 rows in 2 groups (3, 5) of K 16 by N 4: 8*16*4 = 512 MACs
        "_grouped_mm": (
            torch._grouped_mm,
            (torch.randn(8, 16), torch.randn(2, 16, 4), torch.tensor([3, 8], dtype=torch.int32)),
            2 * 512,
        ),
    }
    for name, (fn, args, ours) in calls.items():
        with FlopCounterMode(display=False) as counter:
            fn(*args)
        assert counter.get_total_flops() == 0, name
        assert flopmeter.profile(Fn(fn), args).flops_as("2mac") == ours, name


def _kernels_run(**options) -> tuple[int, set[str]]:  # type: ignore[no-untyped-def]
    from torch.utils.flop_counter import FlopCounterMode

    q, kv = torch.randn(1, 4, 6, 4), torch.randn(1, 2, 10, 4)  # 4 query heads share 2 KV heads
    seen: set[str] = set()

    class Log(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            seen.add(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    with FlopCounterMode(display=False) as counter, Log():
        F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True, **options)
    return counter.get_total_flops(), seen


def test_a_gqa_call_runs_the_cpu_flash_kernel_and_dropout_the_math_path() -> None:
    flops, seen = _kernels_run()
    assert "_scaled_dot_product_flash_attention_for_cpu" in seen and "bmm" not in seen
    assert flops == 0  # FlopCounterMode: no entry for the CPU flash kernel
    flops, seen = _kernels_run(dropout_p=0.5)
    assert "bmm" in seen and "_scaled_dot_product_flash_attention_for_cpu" not in seen
    # the math path's two bmm: 4 heads * 6*10*(4 + 4) = 1,920 MACs, 2 FLOPs each
    assert flops == 2 * 1_920


def test_fvcore_reports_addbmm_unsupported_and_counts_0() -> None:
    fvcore = pytest.importorskip("fvcore.nn")
    import logging

    args = (torch.randn(3, 4), torch.randn(2, 3, 5), torch.randn(2, 5, 4))
    logging.disable(logging.WARNING)
    try:
        analysis = fvcore.FlopCountAnalysis(Fn(torch.addbmm), args)
        analysis.unsupported_ops_warnings(False)
        assert analysis.total() == 0 and dict(analysis.unsupported_ops()) == {"aten::addbmm": 1}
    finally:
        logging.disable(logging.NOTSET)
    assert flopmeter.profile(Fn(torch.addbmm), args).flops_as("mac") == 120  # 2 * 3*4 of 5


# -- docs/formulas.md: qr, svd and eigh were "still without a formula, reported as unsupported
# with their shapes" until probe 14, which counts them (tests/test_linalg_probe14.py has the hand
# counts); "cuDNN's CTC has no formula" --


@pytest.mark.parametrize(
    ("fn", "op"),
    [
        (lambda a: torch.linalg.qr(a)[0], "aten.linalg_qr"),
        (lambda a: torch.linalg.svd(a)[0], "aten._linalg_svd"),
        (lambda a: torch.linalg.eigh(a)[0], "aten._linalg_eigh"),
    ],
    ids=["qr", "svd", "eigh"],  # inv, cholesky, det, slogdet: counted since probe 13
)
def test_dense_linear_algebra_is_counted_since_probe_14(fn, op: str) -> None:  # type: ignore[no-untyped-def]
    a = torch.randn(4, 4)
    report = flopmeter.profile(Fn(fn), a @ a.T + 4 * torch.eye(4))  # positive definite
    assert report.unsupported_ops() == {}
    # the decomposition is the only op doing arithmetic: qr 4x4 (LAWN 41: geqrf 136 + Q 96),
    # svd 4x4 with vectors 21 * 4^3, eigh with vectors 9 * 4^3 (Golub & Van Loan estimates)
    expected = {"aten.linalg_qr": 232, "aten._linalg_svd": 1344, "aten._linalg_eigh": 576}[op]
    assert report.flops == report.by_operator()[op].cost.flops == expected


def test_cudnn_ctc_loss_has_no_formula() -> None:
    from flopmeter import registry
    from flopmeter.tracing.events import OpEvent, TensorMeta

    frames = TensorMeta((50, 2, 20), "float32", 4)  # T 50, batch 2, 20 classes
    event = OpEvent(
        "aten._cudnn_ctc_loss",
        (frames, torch.tensor([1]), [50, 50], [5, 5], 0, True, False),
        {},
        (TensorMeta((2,), "float32", 4), frames),
    )
    assert registry.cost_of(event) is None  # so reported unsupported, never a silent 0


# -- docs/meta.md: "Also put back: a module's class ..." (a forward that swaps its own class) --


def test_a_module_class_swapped_in_its_forward_is_put_back() -> None:
    class Fast(nn.Linear):
        pass

    class Swapping(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = super().forward(x)
            self.__class__ = Fast  # type: ignore[assignment]
            return y

    model = Swapping(3, 2)
    report = flopmeter.profile(model, torch.randn(1, 3))
    assert type(model) is Swapping
    assert report.flops == 12  # 2 outputs * (2*3 - 1) + 2 bias adds
