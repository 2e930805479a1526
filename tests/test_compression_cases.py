"""The compressed models of benchmarks/compression_cases.py, as a new user builds them:
every row of README's table (regenerated so the README cannot drift, on one thread),
issue 8's invariants on them, and the CLI on their FILE.py builders."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.nn.utils import prune

import flopmeter
from flopmeter.cli import main

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
ROOT = Path(__file__).parent.parent
CASES_FILE = ROOT / "benchmarks" / "compression_cases.py"
README = (ROOT / "README.md").read_text()
DOC = (ROOT / "docs" / "compression.md").read_text()


@pytest.fixture(scope="module")
def cases() -> Any:
    spec = importlib.util.spec_from_file_location("compression_cases", CASES_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["compression_cases"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 5x faster than 2 contended threads on a busy machine
    yield module
    torch.set_num_threads(threads)
    del sys.modules["compression_cases"]


def _case(cases: Any, name: str) -> Any:
    return next(c for c in cases.CASES if c.name == name)


@pytest.fixture(scope="module")
def row_of(cases: Any) -> Any:
    """The table row of a case by name, each built and profiled once per module."""
    rows: dict[str, dict[str, Any]] = {}

    def get(name: str) -> dict[str, Any]:
        if name not in rows:
            rows[name] = cases.row(_case(cases, name))
        return rows[name]

    return get


def _line_in_docs(cases: Any, row: dict[str, Any]) -> None:
    line = cases.markdown([row]).splitlines()[-1]
    assert line in README, f"README's table has drifted; regenerate it:\n{line}"
    assert line in DOC, f"docs/compression.md's table has drifted; regenerate it:\n{line}"


@pytest.mark.parametrize(
    "name",
    [
        "resnet18 l1_unstructured 50 % per layer",
        "resnet18 l1_unstructured 50 % global",
        "resnet18 ln_structured 30 % convs",
        "mobilenet_v2 int8 (torch.ao static)",
        "BERT-base quantize_dynamic int8",
        "4×Linear(1024) torchao int8 weight-only",
        "4×Linear(1024) torchao int8 dynamic",
    ],
)
def test_table_row(cases: Any, row_of: Any, name: str) -> None:
    row = row_of(name)
    assert row["unsupported"] == 0
    assert row["params"] == row["params_before"]  # masks and bits keep the logical params
    assert row["macs_dense"] == row["macs_dense_before"]  # int8: the fused float model's contractions
    _line_in_docs(cases, row)


def test_every_case_has_a_row_in_the_table(cases: Any) -> None:
    for case in cases.CASES:
        assert f"| {case.name} |" in README and f"| {case.name} |" in DOC


def test_per_layer_pruning_halves_every_layer(row_of: Any) -> None:
    row = row_of("resnet18 l1_unstructured 50 % per layer")
    assert row["macs_effective"] * 2 == row["macs_dense"] == 1_814_073_344  # each layer keeps N/2 (N even)
    assert (
        row["overhead_flops"] == 11_678_912
    )  # one mask multiply per weight element: 11,689,512 - 10,600 BN/bias
    assert row["speedup_estimate"] == 1.0  # unstructured: no sparse kernel


def test_int8_resnet18_row(cases: Any, row_of: Any) -> None:
    row = row_of("resnet18 int8 (torch.ao static)")
    assert row["params"] == row["params_before"] == 11_684_712  # the fused float model's
    assert row["macs_dense"] == row["macs_dense_before"] == 1_814_073_344  # the fused float contractions
    assert row["unsupported"] == 0
    assert row["overhead_flops"] == 604_112  # quantize 3*224*224 * 4 + dequantize 1000 * 2
    assert row["weight_bits"] == "8"
    _line_in_docs(cases, row)


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(args, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


STACK = f"{CASES_FILE}:linear_stack"
STACK_INT8 = f"{CASES_FILE}:torchao_int8_dynamic"


class TestMicroNetNeverDropped:
    """--micronet used to print only under the tree or table: -q, JSON, Markdown and CSV
    dropped it in silence."""

    def _expected(self) -> Any:
        torch.manual_seed(0)
        report = flopmeter.profile(_stack(), torch.randn(16, 1024), compression=True)
        return flopmeter.micronet(report.compression, "imagenet")

    def test_json(self) -> None:
        code, out, err = run([STACK, "--input", "16x1024", "--micronet", "imagenet", "-f", "json"])
        assert code == 0, err
        data = json.loads(out)["micronet"]
        assert data["task"] == "imagenet"
        assert data["score"] == pytest.approx(self._expected().score)

    def test_quiet_tree(self) -> None:
        code, out, err = run([STACK, "--input", "16x1024", "--micronet", "imagenet", "--compression", "-q"])
        assert code == 0, err
        assert "compression view totals" in out  # -q keeps the view's totals
        assert f"score {self._expected().score:.4f}" in out

    def test_markdown_and_csv(self) -> None:
        code, out, _ = run([STACK, "--input", "16x1024", "--micronet", "imagenet", "-f", "markdown"])
        assert code == 0 and "MicroNet (imagenet" in out
        code, out, err = run([STACK, "--input", "16x1024", "--micronet", "imagenet", "-f", "csv"])
        assert code == 0 and "MicroNet" not in out and "MicroNet (imagenet" in err  # rows stay rows


def _stack() -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    for _ in range(4):
        layers += [torch.nn.Linear(1024, 1024), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


def test_compare_takes_short_format_and_threads() -> None:
    threads = torch.get_num_threads()
    code, out, err = run(
        ["compare", STACK, STACK_INT8, "--input", "16x1024", "--compression", "-f", "json"]
        + ["--bench", "--threads", "1"]
    )
    assert code == 0, err
    total = json.loads(out)["rows"][-1]
    assert total["bops_ratio"] == pytest.approx(0.0625, abs=0.001)  # W8A8 / W32A32, ~0.4 % zeros
    assert total["measured_speedup"] is not None
    torch.set_num_threads(threads)


class TestWhatIfMatchesAPruner:
    """--assume-sparsity used to keep per_row - round(per_row * s) in every row: 2:4 on
    resnet18's conv1 (147 per row) kept 73, not the 74 a 2:4 pruner keeps, and 0.5 on
    it kept 4,672 weights where l1_unstructured keeps 4,704."""

    def test_n_m_tail_keeps_up_to_n(self) -> None:
        conv = torch.nn.Conv2d(3, 8, 7, bias=False)
        view = flopmeter.profile(conv, torch.randn(1, 3, 10, 10), compression=True).compression
        layer = view.assume(sparsity="2:4").layers[""]
        assert layer.weight_nonzero == 592  # 3*7*7 = 147 = 36*4 + 3 per row: 36*2 + 2 = 74, * 8 rows
        assert layer.macs_effective == 9_472  # 592 * 4*4 output positions

    def test_fraction_is_rounded_like_torch_prune(self) -> None:
        torch.manual_seed(0)
        layer = torch.nn.Linear(5, 3, bias=False)
        x = torch.randn(2, 5)
        assumed = flopmeter.profile(layer, x, compression=True).compression.assume(sparsity=0.5).layers[""]
        assert assumed.weight_nonzero == 7  # 15 - round(7.5) = 15 - 8, rows 3 + 2 + 2
        assert assumed.macs_effective == 14  # 7 * 2 rows of x
        assert assumed.flops_effective == 2 * (5 + 3 + 3)  # 2 rows of x * sum over rows (2*nz_o - 1)
        prune.l1_unstructured(layer, "weight", amount=0.5)
        pruned = flopmeter.profile(layer, x).compression.layers[""]
        assert pruned.weight_nonzero == assumed.weight_nonzero


def test_meta_totals_say_effective_is_as_if_dense() -> None:
    """On meta a pruned model's nonzeros are unknown: its effective MACs (= dense) used to
    print beside them unlabelled, reading as 'no saving'."""
    code, out, err = run([f"{CASES_FILE}:pruned_resnet18", "--meta", "--compression", "-q"])
    assert code == 0, err
    assert "nonzero unknown" in out
    assert "(as if dense: sparsity unknown)" in out
    code, out, _ = run([STACK, "--input", "16x1024", "--compression", "-q"])
    assert "as if dense" not in out  # real weights: nonzeros counted


def test_compare_a_model_with_its_plan() -> None:
    """`compare M M --assume-bits w4a16` applied the plan to both sides (all 'unchanged'),
    and without --compression ignored it: the plan is the second model's."""
    code, out, err = run(
        ["compare", STACK, STACK, "--input", "16x1024", "--assume-bits", "w8a8", "-f", "json"]
    )
    assert code == 0, err
    total = json.loads(out)["rows"][-1]
    assert total["change"] == "in place"
    assert total["bops_ratio"] == pytest.approx(0.0625)  # 8*8 / (32*32), every weight nonzero
