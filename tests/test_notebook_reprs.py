"""Probe 11, the notebook / REPL user: short reprs of every object the public API
returns, Jupyter's HTML view of a Report, and warning classes to filter by."""

from __future__ import annotations

import inspect
import json
import re
import warnings
from collections.abc import Iterator

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.compression.compare import Comparison, Totals
from flopmeter.render.reprs import MAX_NAME

# A repr is one line a notebook cell shows whole; 250 characters is about three lines.
MAX_REPR = 250


def _conv_report() -> flopmeter.Report:
    # Conv2d(3, 8, 3, padding=1) on 1 x 3 x 32 x 32: 32*32 = 1,024 positions x 8 channels
    #   params 3*3*3*8 + 8 = 224
    #   MACs   27 * 8,192 = 221,184                           -> "221.18 KMACs"
    #   FLOPs  (2*27 - 1) * 8,192 + 8,192 (bias) = 442,368    -> "442.37 KFLOPs"
    return flopmeter.profile(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1)), torch.randn(1, 3, 32, 32))


def _linear_report() -> flopmeter.Report:
    # Linear(4, 3) on a batch of 2: params 4*3 + 3 = 15; MACs 2*3*4 = 24;
    # exact FLOPs (4 mults + 3 adds + 1 bias) * 2*3 outputs = 48
    return flopmeter.profile(nn.Sequential(nn.Linear(4, 3)), torch.randn(2, 4))


def _one_line(text: str) -> None:
    assert "\n" not in text and len(text) <= MAX_REPR, text
    assert text.startswith("<") and text.endswith(">"), text


def test_report_repr_is_one_line_with_the_totals() -> None:
    report = _linear_report()
    assert repr(report) == (
        "<Report Sequential: 15 params, 24 MACs, 48 FLOPs, batch 2; 2 modules; print(report) for the per-layer tree>"
    )
    _one_line(repr(report))
    assert str(report) != repr(report) and "Linear" in str(report)  # print() keeps the tree


def test_report_repr_uses_si_prefixes_and_says_the_run() -> None:
    report = _conv_report()
    text = repr(report)
    _one_line(text)
    assert "224 params, 221.18 KMACs, 442.37 KFLOPs, batch 1;" in text
    model = nn.Sequential(nn.Linear(4, 3))
    backward = flopmeter.profile(model, torch.randn(2, 4), backward=True)
    assert "batch 2 (forward + backward);" in repr(backward)


def test_a_long_model_name_is_cut() -> None:
    report = flopmeter.profile(nn.Sequential(nn.Linear(4, 3)), torch.randn(2, 4), name="x" * 500)
    _one_line(repr(report))
    assert "x" * (MAX_NAME - 3) + "..." in repr(report)


def test_module_operator_and_cost_reprs() -> None:
    report = _conv_report()
    assert (
        repr(report.modules["0"])
        == "<ModuleStats '0' Conv2d: 224 params, 221.18 KMACs, 442.37 KFLOPs, 1 call>"
    )
    assert repr(report.modules[""]).startswith("<ModuleStats (model) Sequential: 224 params,")
    conv = report.by_operator()["aten.convolution"]
    # bytes: input 3*32*32*4 = 12,288 + weight 216*4 = 864 + bias 8*4 = 32 read,
    # output 8*32*32*4 = 32,768 written: 45,952 B = 44.88 KiB
    assert repr(conv) == (
        "<OperatorStats aten.convolution (counted): 1 call, 221.18 KMACs, 442.37 KFLOPs, 44.88 KiB moved>"
    )
    listing = repr(report.by_operator())
    assert len(listing) < 400 and "<OperatorStats aten.convolution" in listing
    # Cost keeps the dataclass repr: a value whose fields are the numbers
    assert repr(report.total).startswith("Cost(macs=221184, flops=442368,")


def test_unsupported_op_repr_names_calls_shapes_and_modules() -> None:
    op = flopmeter.UnsupportedOp("aten.foo", 3, ["(2, 3)", "(4,)"], ["a", "b.c", "", "d"])
    assert repr(op) == (
        "<UnsupportedOp aten.foo: 3 calls, not counted; inputs (2, 3) and 1 more; in 'a', 'b.c', (model) and 1 more>"
    )
    assert repr(flopmeter.UnsupportedOp("aten.bar", 1)) == "<UnsupportedOp aten.bar: 1 call, not counted>"


def test_dataclass_equality_and_to_dict_are_kept() -> None:
    a, b = _linear_report(), _linear_report()
    assert a.modules["0"] == b.modules["0"]
    assert a.by_operator()["aten.addmm"] == b.by_operator()["aten.addmm"]
    data = json.loads(a.to_json())
    assert data["totals"]["macs"] == 24 and data["totals"]["flops"] == 48


def test_roofline_and_hardware_reprs() -> None:
    report = _conv_report()
    hw = flopmeter.Hardware("toy", {"float32": 1e12}, 1e11, description="a toy chip")
    assert repr(hw) == "<Hardware toy: 1.00 TFLOP/s float32, 100.00 GB/s; a toy chip>"
    estimate = report.roofline(hw)
    # roofline-bound (no calibration): conv 442,368 FLOPs / 1e12 = 0.442 us; bytes
    # 45,952 / 1e11 = 0.460 us -> memory-bound; latency = bound = 0.460 us = 459.5 ns
    assert repr(estimate) == (
        "<Roofline on toy: est. latency 459.5 ns (roofline-bound), bound 459.5 ns (memory-bound), "
        "batch 1; 2 modules in .rows>"
    )
    assert repr(estimate.rows["0"]) == (
        # intensity 442,368 / 45,952 = 9.63 FLOP/B
        "<RooflineRow '0' Conv2d: 442.37 KFLOPs, 44.88 KiB, 9.6 FLOP/B, memory-bound, est. 459.5 ns>"
    )
    _one_line(repr(flopmeter.hardware.get("a100-sxm-80gb")))


def test_timing_repr() -> None:
    timing = flopmeter.Timing(batch_size=4, times=[0.001, 0.003, 0.002], warmup=1, device="cpu")
    assert repr(timing) == "<Timing batch 4 on cpu: median 2.000 ms over 3 runs (1 warmup)>"


def test_comparison_repr() -> None:
    before = Totals(1_000_000, 1_000_000, 4_000_000, 4_000_000, 2_000_000_000, 2_000_000_000, 0)
    after = Totals(1_000_000, 500_000, 4_000_000, 2_000_000, 2_000_000_000, 1_000_000_000, 0)
    comparison = Comparison("net", "net pruned", [], before, after, "a100-sxm-80gb", 1.5)
    assert repr(comparison) == (
        "<Comparison 'net' -> 'net pruned': params 1.00 M -> 1.00 M, MACs effective 2.00 G -> 1.00 G, "
        "est. speedup 1.50x on a100-sxm-80gb; 0 layers; print() for the per-layer table>"
    )


def test_compression_view_repr() -> None:
    model = nn.Sequential(nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight[:, :2] = 0  # 6 of 12 weights zero
    report = flopmeter.profile(model, torch.randn(2, 4), compression=True)
    text = repr(report.compression)
    _one_line(text)
    # params 15, nonzero 6 + 3 (bias) = 9; sparsity of the weights 6 / 12 = 50 %
    assert text.startswith("<CompressionView: 15 params, nonzero 9 (sparsity 50.00%), MACs dense 24,")


def test_repr_html_is_a_fragment_with_the_numbers() -> None:
    report = _conv_report()
    fragment = report._repr_html_()
    for tag in ("<html", "<head", "<body", "<script", "<style", "<!DOCTYPE"):
        assert tag.lower() not in fragment.lower()
    assert fragment.startswith("<div") and fragment.endswith("</div>")
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", fragment)
    # the Conv2d row: name, type, params, MACs, FLOPs, % FLOPs, bytes
    assert cells[7:14] == [
        "&nbsp;&nbsp;&nbsp;&nbsp;0",
        "Conv2d",
        "224",
        "221.18 K",
        "442.37 K",
        "100.00%",
        "44.88 KiB",
    ]
    assert "224 params (224 trainable), 221.18 KMACs, 442.37 KFLOPs for batch 1" in fragment
    assert report.to_html().startswith("<!DOCTYPE html>")  # the page stays a page


def test_repr_html_escapes_and_bounds_rows() -> None:
    model = nn.Sequential(*[nn.ReLU() for _ in range(50)])
    report = flopmeter.profile(model, torch.randn(1, 4), name="<b>net</b>")
    fragment = report._repr_html_()
    assert "<b>net</b>" not in fragment and "&lt;b&gt;net&lt;/b&gt;" in fragment
    assert fragment.count("<tr>") == 1 + 40  # header + HTML_ROWS rows; root + 50 children = 51
    assert "11 more module(s) not shown" in fragment


class _Generator(nn.Module):
    def forward(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        return (x + 1 for _ in range(2))


def test_flopmeter_warnings_have_a_category_to_filter() -> None:
    # the count's warnings are UserWarnings, the model state's RuntimeWarnings, as before they had
    # classes; FlopmeterWarning itself is neither (R11-3: ignore::UserWarning hid the model state's)
    assert issubclass(flopmeter.notices.CountWarning, flopmeter.FlopmeterWarning)
    assert issubclass(flopmeter.notices.CountWarning, UserWarning)
    assert not issubclass(flopmeter.ModelStateWarning, UserWarning)
    assert issubclass(flopmeter.ModelStateWarning, flopmeter.FlopmeterWarning)
    assert issubclass(flopmeter.ModelStateWarning, RuntimeWarning)
    with pytest.warns(flopmeter.FlopmeterWarning, match="returned a generator"):
        flopmeter.profile(_Generator(), torch.randn(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=flopmeter.FlopmeterWarning)
        flopmeter.profile(_Generator(), torch.randn(2))
    assert not [w for w in caught if "generator" in str(w.message)]


def test_model_errors_are_caught_by_the_exported_class() -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise KeyError("boom")

    with pytest.raises(flopmeter.ModelError, match="boom") as info:
        flopmeter.profile(Broken(), torch.randn(2))
    assert isinstance(info.value.__cause__, KeyError)


def test_llm_mode_reprs_are_short_and_show_their_numbers(one_layer_llama_config: object) -> None:
    from flopmeter.render import units as u
    from flopmeter.render.llm import render_training

    config = one_layer_llama_config
    cost = flopmeter.llm_cost(config, prompt=8, generate=2)
    # params: embed 64*32 = 2,048; q,o 32*32 each = 2,048; k,v 32*16 each = 1,024;
    # MLP 3*32*64 = 6,144; two layer norms + final norm 3*32 = 96; lm_head 64*32 = 2,048
    # total 2,048 + 2,048 + 1,024 + 6,144 + 96 + 2,048 = 13,408
    assert repr(cost) == (
        "<LLMCost LlamaForCausalLM: prompt 8, generate 2, batch 1, 13.41 K params; print(cost) for the report>"
    )
    prefill = cost.prefill
    assert repr(prefill) == (
        f"<Phase prefill: 8 token(s) after 0 cached, batch 1: {u.count(prefill.macs, 'MACs')}, "
        f"{u.count(prefill.flops_2mac, 'FLOPs(2MAC)')}; .report for the per-layer tree>"
    )
    assert repr(cost.decode(8)).startswith("<Phase decode: 1 token(s) after 8 cached, batch 1:")
    serving = cost.serving("h100-sxm")
    _one_line(repr(serving))
    assert repr(serving).startswith("<Serving on h100-sxm: batch 1, prompt 8, generate 2: TTFT ")
    step = flopmeter.training_step(config, tokens=8)
    _one_line(repr(step))
    assert f"model {u.count(step.model_flops, 'FLOPs')}" in repr(step)
    assert str(step).startswith(render_training(step))  # print(step): what the CLI prints
    assert "prefill" in str(cost) and len(str(cost).splitlines()) > 5
    for text in (repr(cost), repr(prefill)):
        _one_line(text)


def test_help_says_what_profile_returns_and_raises() -> None:
    doc = flopmeter.profile.__doc__ or ""
    assert "Returns a ``Report``" in doc and "``ModelError``" in doc and "FlopmeterWarning" in doc
    assert "print(report)" in (flopmeter.Report.__doc__ or "")


def test_report_roofline_is_typed_for_mypy() -> None:
    # was ``(hardware: Any) -> Any``: mypy --strict let ``report.roofline(hw).latncy`` pass
    signature = inspect.signature(flopmeter.Report.roofline)
    assert signature.return_annotation == "Roofline"
    assert signature.parameters["hardware"].annotation == "Hardware | str"


def test_every_warning_flopmeter_gives_is_a_flopmeter_warning() -> None:
    # README: "Every warning flopmeter gives is a flopmeter.FlopmeterWarning"
    import ast
    from pathlib import Path

    ours = {"CountWarning", "ModelStateWarning"}
    calls = []
    for path in Path(flopmeter.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("warnings.warn", "warn"):
                category = node.args[1] if len(node.args) > 1 else None
                category = category or next((k.value for k in node.keywords if k.arg == "category"), None)
                calls.append((path.name, node.lineno, ast.unparse(category) if category else "UserWarning"))
    assert len(calls) >= 6  # tracing/modules.py 3, tracing/run.py 2, formula_checks.py 1
    assert [c for c in calls if c[2] not in ours] == []


def test_readme_repr_line() -> None:
    torchvision = pytest.importorskip("torchvision")
    report = flopmeter.profile(torchvision.models.alexnet(), torch.randn(1, 3, 224, 224))
    # README: params 61,100,840 -> "61.10 M"; MACs 714,188,480 -> "714.19 M"
    assert repr(report).startswith("<Report AlexNet: 61.10 M params, 714.19 MMACs, ")


def test_a_serving_with_no_time_has_a_repr() -> None:
    # a repr must never raise: tokens/s is batch * generate / 0 for a phase with no work
    from fractions import Fraction

    from flopmeter.llm.serving import PhaseTime, Serving

    idle = PhaseTime(0, Fraction(0), 0.0, 0.0)
    hw = flopmeter.Hardware("toy", 1e12, 1e11)
    serving = Serving(hw, 1, 8, 2, idle, idle, idle, 0.0, None, 16, 16)
    assert repr(serving) == (
        "<Serving on toy: batch 1, prompt 8, generate 2: TTFT 0.0 ns, TPOT 0.0 ns, no time>"
    )


def test_repr_html_goes_deeper_under_a_wrapper() -> None:
    # Wrapper(body=Sequential(Linear, ReLU, Linear, ReLU, Linear)): depth 1 is root + body
    # (2 rows, fewer than 8), depth 2 adds the 5 layers (7, still fewer), and the model
    # goes no deeper: the table shows all 7
    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    fragment = flopmeter.profile(Wrapper(), torch.randn(1, 4))._repr_html_()
    assert fragment.count("<tr>") == 1 + 7 and "body.4" in fragment
    # a ResNet-like model keeps depth 1: the conv model's root + 1 child is its whole tree
    assert _conv_report()._repr_html_().count("<tr>") == 1 + 2


def _half_zero_linear() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight[:, :2] = 0  # 6 of 12 weights zero
    return model


def test_a_compression_view_prints_its_table_and_shows_it_in_a_notebook() -> None:
    view = flopmeter.profile(_half_zero_linear(), torch.randn(2, 4), compression=True).compression
    text = str(view)
    assert text != repr(view) and text.splitlines()[0] == "compression view"
    row = next(line for line in text.splitlines() if line.startswith("0 "))
    assert row.split()[:5] == ["0", "Linear", "dense", "15", "9"]  # 4*3 + 3 params, 6 + 3 nonzero
    assert "50.0%" in row  # 6 of the 12 weights zero
    assert "compression view totals:" in text
    fragment = view._repr_html_()
    assert fragment.startswith("<pre") and fragment.endswith("</pre>")
    assert "<html" not in fragment and "50.0%" in fragment


def test_a_comparison_shows_its_table_in_a_notebook_as_a_fragment() -> None:
    before = flopmeter.profile(nn.Sequential(nn.Linear(4, 3)), torch.randn(2, 4), compression=True)
    after = flopmeter.profile(_half_zero_linear(), torch.randn(2, 4), compression=True)
    comparison = flopmeter.compare(before, after)
    fragment = comparison._repr_html_()
    for absent in ("<html", "<style", "<script", "<!DOCTYPE"):
        assert absent not in fragment  # a notebook output shows it as it is
    # header + every row of the table, then the totals table: header, before, after
    assert fragment.count("<tr>") == 1 + len(comparison.rows()) + 3
    # nonzero ratio (weights + bias): (6 + 3) / (12 + 3) = 0.600
    assert "<td>0.600</td>" in fragment
    page = comparison.to_html()
    assert page.count("<table>") == 1 and page.count('<table class="totals">') == 1
    assert "<!DOCTYPE html>" in page


def test_the_comparison_page_names_the_models_once() -> None:
    before = flopmeter.profile(nn.Sequential(nn.Linear(4, 3)), torch.randn(2, 4), compression=True)
    after = flopmeter.profile(_half_zero_linear(), torch.randn(2, 4), compression=True)
    page = flopmeter.compare(before, after).to_html()
    assert page.count("Sequential (after) vs Sequential (before)") == 2  # <title> and <h1>, not the text too
    assert "<p>Ratios are after / before" in page


def test_a_roofline_shows_its_table_in_a_notebook_as_a_fragment() -> None:
    # Report, CompressionView and Comparison have a Jupyter view; a Roofline has the same kind
    report = _conv_report()
    hw = flopmeter.Hardware("toy", {"float32": 1e12}, 1e11, description="a <toy> chip")
    fragment = report.roofline(hw)._repr_html_()
    for tag in ("<html", "<head", "<body", "<script", "<style", "<!DOCTYPE"):
        assert tag.lower() not in fragment.lower()
    assert fragment.startswith("<div") and fragment.endswith("</div>")
    assert "<toy>" not in fragment and "a &lt;toy&gt; chip" in fragment
    # ridge 1e12 FLOP/s / 1e11 B/s = 10.0 FLOPs/byte
    assert "peak 1.0 TFLOP/s (float32), bandwidth 100 GB/s, ridge 10.0 FLOPs/byte" in fragment
    # bound: compute 442,368 FLOPs / 1e12 = 0.442 us < memory 45,952 B / 1e11 = 0.4595 us
    assert "estimated latency 459.5 ns (roofline-bound model, memory-limited)" in fragment
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", fragment)
    # the Conv2d row: name, type, FLOPs, bytes, intensity 442,368 / 45,952 = 9.6, bound,
    # roofline time, estimate (= the bound: no calibration), limit, share of the call
    assert cells[10:20] == [
        "&nbsp;&nbsp;&nbsp;&nbsp;0",
        "Conv2d",
        "442.37 K",
        "44.88 KiB",
        "9.6",
        "memory",
        "459.5 ns",
        "459.5 ns",
        "memory",
        "100.0%",
    ]


def test_a_roofline_fragment_bounds_its_rows() -> None:
    model = nn.Sequential(*[nn.ReLU() for _ in range(50)])
    fragment = flopmeter.profile(model, torch.randn(1, 4)).roofline("h100-sxm")._repr_html_()
    assert fragment.count("<tr>") == 1 + 40  # header + HTML_ROWS rows; root + 50 children = 51
    assert "11 more module(s) not shown" in fragment
