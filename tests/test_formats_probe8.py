"""Probe 8: every output format tells the same numbers (findings in docs/probe-8/formats.md).

Models and their hand counts are in tests/fixtures/formats_probe8.py; the arithmetic of each
expected value sits beside it here. Each test failed before its fix (checked)."""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path

import pytest
import torch

import flopmeter
from flopmeter.cli import run
from flopmeter.render import formats, html, text
from flopmeter.render import units as u
from flopmeter.render.compression import view_summary_lines, view_table
from flopmeter.render.speed import seconds
from flopmeter.timing import Timing

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = str(FIXTURES / "formats_probe8.py")
sys.path.insert(0, str(FIXTURES))
import formats_probe8 as models  # noqa: E402

X = ["--input", "2x10"]


@pytest.fixture(scope="module")
def pruned_backward() -> flopmeter.Report:
    return flopmeter.profile(models.pruned(), torch.randn(2, 10), backward=True)


@pytest.fixture(scope="module")
def pruned_forward() -> flopmeter.Report:
    return flopmeter.profile(models.pruned(), torch.randn(2, 10))


# -- P8-1 (probe 7's S2): a backward profile's compression cells are the forward's, and say so --


def test_tree_of_a_backward_profile_labels_effective_macs_as_the_forwards(pruned_backward) -> None:
    """fc1's MACs in a backward profile: forward 2·20·10 = 400 + weight gradient 20·10·2 = 400
    (the input needs no gradient) = 800; its effective MACs are the forward's: 2 rows · 100
    kept weights = 200. Before: "800 MACs, ..., 200 MACs eff." with nothing on the line
    saying which pass the 200 is of."""
    tree = text.render_tree(pruned_backward, compression=pruned_backward.compression)
    line = next(line for line in tree.splitlines() if "(fc1)" in line)
    assert "800 MACs" in line and "200 MACs eff. (fwd)" in line
    forward = flopmeter.profile(models.pruned(), torch.randn(2, 10))
    line = next(
        line
        for line in text.render_tree(forward, compression=forward.compression).splitlines()
        if "(fc1)" in line
    )
    assert "400 MACs" in line and "200 MACs eff.," in line  # a forward profile: no label needed


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_tables_of_a_backward_profile_head_the_view_columns_as_the_forwards(pruned_backward, fmt) -> None:
    """The module table, Markdown and HTML put "MACs eff." and "BOPs" (forward: fc1
    200 MACs · 32 · 32 = 204,800 BOPs) beside "MACs" (forward + backward, 800): their headers
    say "(fwd)" in a backward profile."""
    view = pruned_backward.compression
    if fmt == "table":
        shown = text.render_table(pruned_backward, compression=view)
    elif fmt == "markdown":
        shown = formats.to_markdown(pruned_backward, compression=view)
    else:
        shown = html.to_html(pruned_backward, compression=view)
    assert "MACs eff. (fwd)" in shown and "BOPs (fwd)" in shown
    assert "204.80 K" in shown  # fc1's BOPs, unchanged
    plain = flopmeter.profile(models.pruned(), torch.randn(2, 10))
    assert "(fwd)" not in text.render_table(plain, compression=plain.compression)


def test_csv_of_a_backward_compression_view_says_on_stderr_which_columns_are_the_forwards() -> None:
    """CSV has no room for a heading: the note goes to stderr, as the unsupported-op note does."""
    code, out, err = run([f"{MODELS}:pruned", *X, "--backward", "--compression", "-f", "csv"])
    assert code == 0, err
    rows = {r["module"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["fc1"]["macs"] == "800" and rows["fc1"]["macs_effective"] == "200"
    assert "macs_effective" in err and "forward pass" in err
    code, _, err = run([f"{MODELS}:pruned", *X, "--compression", "-f", "csv"])
    assert code == 0 and "forward pass" not in err


def test_work_by_dtype_of_a_backward_profile_says_it_holds_both_passes(pruned_backward) -> None:
    """Under the heading "(of the forward pass ...)" the work-by-dtype line held both passes
    without a word: MACs 600 forward + 400 (fc1 weight gradient) + 200 + 200 (fc2 input
    and weight gradients) = 1,400; FLOPs 1,240 + 620 + 40 + 665 = 2,565 (fc1 weight
    gradient 200·(2·2 − 1) + bias 20 = 620; ReLU 40; fc2 40·9 + 100·3 + 5 = 665)."""
    lines = view_summary_lines(pruned_backward.compression)
    dtype_line = next(line for line in lines if "work by dtype" in line)
    assert dtype_line.strip() == "work by dtype (forward + backward): float32 1.40 K MACs / 2.56 K FLOPs"
    assert pruned_backward.macs == 1_400 and pruned_backward.flops == 2_565


# -- P8-2: the compression view's bytes in binary units, as every other bytes cell --------------


def test_compression_view_bytes_use_binary_units(pruned_forward) -> None:
    """bytes actual = 325 params · 4 + fc1's mask 200 · 4 = 2,100 B = 2.05 KiB (2,100 / 1,024 =
    2.0508); ideal: fc1 100 kept · 4 + bitmask 200 / 8 + bias 20 · 4 = 505, fc2 105 · 4 = 420,
    total 925 B. Before: "bytes actual 2.10 K, ideal 925" (decimal, no unit) beside the
    table's "925 B" and "2.01 KiB" columns; the HTML page's totals showed the same."""
    view = pruned_forward.compression
    assert (view.bytes_actual, view.bytes_ideal) == (2_100, 925)
    summary = "\n".join(view_summary_lines(view))
    assert "bytes actual 2.05 KiB, ideal 925 B" in summary
    assert "bytes actual 2.05 KiB, ideal 925 B" in html.to_html(pruned_forward, compression=view)
    table = view_table(view)
    fc1 = next(line for line in table.splitlines() if line.startswith("fc1 "))
    # fc1: actual 220 · 4 + mask 800 = 1,680 B = 1.64 KiB; ideal 505 B
    assert "1.64 KiB" in fc1 and "505 B" in fc1


# -- P8-3: the Markdown per-module timing table keeps to --top, as the text one does -------------


def _timing() -> Timing:
    per_module = {"": 0.004, "fc1": 0.002, "act": 0.0005, "fc2": 0.001}
    return Timing(batch_size=2, times=[0.003, 0.004, 0.005], warmup=1, device="cpu", per_module=per_module)


def test_markdown_module_timing_table_keeps_to_top() -> None:
    """--top 2: the two slowest timed modules, (root) 4 ms and fc1 2 ms; before, the Markdown
    table listed up to 15 (here all 4) whatever --top said."""
    report = flopmeter.profile(models.Toy(), torch.randn(2, 10))
    shown = formats.to_markdown(report, top=2, timings=[_timing()])
    table = shown.split("per-module time in one call")[1].split("\n\n", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| module")]
    assert rows == ["| (root) | 4.000 ms |", "| fc1 | 2.000 ms |"]
    full = formats.to_markdown(report, timings=[_timing()])
    assert "| act | 500.000 us |" in full  # no --top: every timed module (up to 15)


def test_cli_markdown_module_timing_table_keeps_to_top() -> None:
    args = [
        f"{MODELS}:Toy",
        *X,
        "--bench",
        "--warmup",
        "1",
        "--repeat",
        "2",
        "--per-module",
        "-f",
        "markdown",
    ]
    code, out, err = run([*args, "--top", "1"])
    assert code == 0, err
    table = out.split("per-module time in one call")[1].split("\n\n", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| module")]
    assert len(rows) == 1 and rows[0].startswith("| (root) |")  # the root holds every module's time


# -- P8-4: a value that rounds to 1000 of a prefix is shown in the next one --------------------


@pytest.mark.parametrize(
    ("value", "precision", "shown"),
    [
        (999_999, 2, "1.00 M"),  # 999.999 K rounds to 1000.00 K: 0.999999 M -> 1.00 M
        (999_994, 2, "999.99 K"),  # 999.994 K stays
        (999_999, 3, "999.999 K"),  # enough decimals to stay
        (999_950, 1, "1.0 M"),  # 999.95 K -> 1000.0 K at one decimal
        (999_999_999_999_999, 2, "1000.00 T"),  # no prefix above T: stays T
        (999, 2, "999 "),
    ],
)
def test_scaled_moves_to_the_next_prefix_when_rounding_reaches_1000(value, precision, shown) -> None:
    assert u.scaled(value, precision=precision) == shown


def test_count_nbytes_and_seconds_round_into_the_next_unit() -> None:
    assert u.count(999_999, "MACs") == "1.00 MMACs"  # was "1000.00 KMACs"
    assert u.nbytes(1_048_575) == "1.00 MiB"  # 1,048,575 / 1,024 = 1023.999 KiB
    assert u.nbytes(1_048_570) == "1023.99 KiB"  # 1,048,570 / 1,024 = 1023.994 KiB
    assert seconds(0.9999996) == "1.000 s"  # 999.9996 ms
    assert seconds(0.0009999996) == "1.000 ms"  # 999.9996 us
    assert seconds(0.0009994) == "999.400 us"


# -- P8-5: -q keeps the compression view in Markdown and CSV, as in the tree and JSON ----------


def test_quiet_markdown_and_csv_keep_the_compression_view() -> None:
    """`-q --compression` printed the view's totals under the tree and kept them in JSON, but
    dropped them from Markdown and CSV without a word. Root row: 225 nonzero (100 kept
    of fc1's 200 weights + 20 biases + fc2's 105), 400 effective MACs (200 + 200)."""
    code, out, err = run([f"{MODELS}:pruned", *X, "--compression", "-q", "-f", "markdown"])
    assert code == 0, err
    assert "| (total) | Toy | 325 | 600 | 1.24 K | 100.00% | 225 |" in out
    assert "> MACs dense 600, effective 400" in out
    code, out, err = run([f"{MODELS}:pruned", *X, "--compression", "-q", "-f", "csv"])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1 and rows[0]["nonzero_params"] == "225" and rows[0]["macs_effective"] == "400"


# -- P8-6: Markdown and HTML say when the counts hold forward + backward ------------------------


def test_markdown_and_html_say_forward_plus_backward(pruned_backward) -> None:
    """The tree says "for batch 2 (forward + backward)"; the Markdown title and the HTML
    totals gave 1.40 KMACs (600 forward + 800 backward) with no word of the backward."""
    assert "(forward + backward)" in text.summary_lines(pruned_backward)[0]
    title = formats.to_markdown(pruned_backward).splitlines()[0]
    assert title.endswith("1.40 KMACs, 2.56 KFLOPs (forward + backward)")
    page = html.to_html(pruned_backward)
    totals = page.split('id="totals"')[1].split("\n", 1)[0]  # the totals boxes, one line
    assert "forward + backward" in totals
    assert "forward + backward" not in formats.to_markdown(
        flopmeter.profile(models.Toy(), torch.randn(2, 10))
    )


# -- P8-7: `--by op --top N -f csv` ranks by the --convention, as the table and Markdown do ------


def test_operator_csv_top_ranks_by_the_convention() -> None:
    """--convention mac: addmm 4,000 MACs ranks above softmax (0 MACs, 19,998 exact FLOPs
    = 5·4000 − 2); the table and Markdown said addmm, the CSV softmax (it ranked by exact
    FLOPs whatever the convention)."""
    args = [
        f"{MODELS}:SoftmaxThenLinear",
        "--input",
        "1x4000",
        "--by",
        "op",
        "--top",
        "1",
        "--convention",
        "mac",
    ]
    code, table, err = run([*args, "-f", "table"])
    assert code == 0, err
    assert re.search(r"^aten\.addmm\s", table, re.M) and "aten._softmax" not in table
    code, out, err = run([*args, "-f", "csv"])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["operator"], r["flops_mac"]) for r in rows] == [("aten.addmm", "4000")]
    code, out, err = run([*args[:-2], "-f", "csv"])  # exact (default): softmax 19,998 > 8,000
    assert [r["operator"] for r in csv.DictReader(io.StringIO(out))] == ["aten._softmax"]


# -- P8-8: --by op with --compression in Markdown and CSV: the view was dropped in silence ----


def test_operator_markdown_and_csv_do_not_drop_the_compression_view() -> None:
    """The table prints the view as its own table after the operators; Markdown printed the
    operators only and CSV too, without a word. Now Markdown quotes the view's totals
    (effective MACs 200 + 200 = 400 of 600 dense) and CSV says on stderr where the view is."""
    args = [f"{MODELS}:pruned", *X, "--by", "op", "--compression"]
    code, out, err = run([*args, "-f", "markdown"])
    assert code == 0, err
    assert "| `aten.addmm` | 2 | 600 |" in out and "> MACs dense 600, effective 400" in out
    code, out, err = run([*args, "-f", "csv"])
    assert code == 0, err
    assert out.startswith("operator,") and "no compression columns" in err and "--format json" in err


# -- P8-9: the roofline CSV's est_time_s unrounded (9 decimals wrote a 0.3 ns layer as 0) ------


def test_roofline_csv_seconds_are_unrounded() -> None:
    """A plain roofline (no calibration) at 1e12 FLOP/s and 1e12 B/s: act (ReLU) moves
    160 + 160 = 320 B, 40 FLOPs: max(40 / 1e12, 320 / 1e12) = 3.2e-10 s; the whole model
    2,060 B: 2.06e-9 s. Before: "0.000000000" and "0.000000002" (the JSON held the values)."""
    from flopmeter.hardware import Hardware

    report = flopmeter.profile(models.Toy(), torch.randn(2, 10))
    estimate = report.roofline(Hardware(name="plain", peak_flops=1e12, bandwidth=1e12))
    rows = {r["module"]: r for r in csv.DictReader(io.StringIO(formats.to_csv(report, roofline=estimate)))}
    assert float(rows["act"]["est_time_s"]) == pytest.approx(320 / 1e12)
    assert float(rows["(root)"]["est_time_s"]) == pytest.approx(2_060 / 1e12)


# -- P8-10 (cosmetic): numbers right-aligned in compare's totals and LLM mode's tables ----------


def test_compare_totals_right_align_the_params_column() -> None:
    """grid() left-aligned its first two columns (name, type): in compare's totals the second
    is params, so 325 and 0 stood flush left beside right-aligned MACs."""
    from flopmeter.render.compare import render_comparison

    x = torch.randn(2, 10)
    toy, half = flopmeter.profile(models.Toy(), x), flopmeter.profile(models.Toy().fc2, torch.randn(2, 20))
    lines = render_comparison([toy, half]).splitlines()
    header = lines[2]
    params_end = header.index("params") + len("params")
    rows = lines[4:6]
    # Toy 325 params; fc2 alone 105 (20·5 + 5): both end where the header "params" ends
    assert [row[:params_end].rstrip()[-3:] for row in rows] == ["325", "105"]
    assert all(row[params_end - 3 : params_end] in ("325", "105") for row in rows)


def test_llm_module_table_numbers_end_under_their_header() -> None:
    """u.scaled gives "800 " (a space where a prefix would go); LLM mode's tables put it in
    right-aligned cells, so a count under 1,000 ended one column left of its header."""
    from flopmeter.render.llm import module_table

    class Row:
        name, type, depth, flops, macs = "", "M", 0, 800, 400
        weights = kv_read = kv_write = activations = 0

    class Phase:
        def modules(self) -> list[Row]:
            return [Row()]

    header, _, row = module_table(Phase())  # type: ignore[arg-type]
    assert row.index("800") + 3 == header.index("FLOPs (exact)") + len("FLOPs (exact)")
    assert row.index("400") + 3 == header.index("MACs") + len("MACs")


# -- P8-11: --html's charts keep to --top, as --plot's do ---------------------------------------


def test_html_charts_keep_to_top(tmp_path: Path) -> None:
    """Toy's layers by FLOPs: fc1 800, fc2 400, act 40. --top 2 keeps fc1 and fc2 and folds
    act into "other (1 modules)" with its 40; before, the page charted the top 15 whatever
    --top said (--plot took it)."""
    page = tmp_path / "toy.html"
    code, _, err = run([f"{MODELS}:Toy", *X, "--top", "2", "--html", str(page)])
    assert code == 0, err
    shown = page.read_text()
    assert "FLOPs per layer (top 2)" in shown
    chart = shown.split("FLOPs per layer (top 2)")[1].split('<div class="chart">')[0]
    assert "other (1 modules)" in chart and "&nbsp;40</div>" in chart


def test_units_as_conventions_md_says(pruned_forward) -> None:
    """docs/conventions.md "Units in the printed output": counts SI, bytes binary, rates decimal."""
    from flopmeter.hardware import get
    from flopmeter.render.speed import render_hardware

    assert u.count(1_240, "FLOPs") == "1.24 KFLOPs"  # 1,240 / 10³
    assert u.nbytes(2_100) == "2.05 KiB"  # 2,100 / 1,024 = 2.0508
    report = pruned_forward
    table = text.render_table(report)
    # traffic: read 1,700 (fc1 x 80 + W 800 + b 80; ReLU 160; fc2 160 + 400 + 20) + written
    # 360 (160 + 160 + 40) = 2,060 B = 2.01 KiB (2,060 / 1,024 = 2.0117)
    assert re.search(r"^\(root\).*\s2\.01 KiB$", table, re.M)
    assert "3,350 GB/s" in render_hardware([get("h100-sxm")])  # 3.35e12 B/s, decimal
    assert "bytes actual 2.05 KiB" in "\n".join(view_summary_lines(report.compression))


# -- P8-12: an ONNX report's CSV carries the onnx-tool column the table shows -------------------


def test_onnx_csv_has_the_onnx_tool_column(tmp_path: Path) -> None:
    """`model.onnx --convention onnx-tool` prints "MAC(onnx-tool)" per module; the CSV, "every
    convention a column", had no such column. SoftmaxThenLinear on (1, 4000): Softmax 36
    per element (onnx-tool's weights: exp 32 + divide 4) · 4,000 = 144,000; Gemm 4,000 MACs +
    1 bias add = 4,001; total 148,001."""
    pytest.importorskip("onnx")
    import warnings

    path = tmp_path / "softmax.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(models.SoftmaxThenLinear(), (torch.randn(1, 4000),), str(path), dynamo=False)
    report = flopmeter.profile_onnx(str(path))
    assert report.flops_as("onnx-tool") == 148_001
    rows = {r["module"]: r for r in csv.DictReader(io.StringIO(formats.to_csv(report)))}
    assert rows["(root)"]["onnx_tool_macs"] == "148001"
    ops = {r["operator"]: r for r in csv.DictReader(io.StringIO(formats.operators_to_csv(report)))}
    assert ops["onnx.Softmax"]["onnx_tool_macs"] == "144000" and ops["onnx.Gemm"]["onnx_tool_macs"] == "4001"
    pytorch = flopmeter.profile(models.SoftmaxThenLinear(), torch.randn(1, 4000))
    assert "onnx_tool_macs" not in formats.to_csv(pytorch)  # a PyTorch report has no such view


# -- P8-13: compare's CSV names the convention of its FLOPs column ------------------------------


def test_compare_csv_names_its_flops_column_by_the_convention() -> None:
    """`compare A B --convention mac -f csv` wrote Toy's 600 MACs under "flops" (the exact
    count is 1,240), with nothing in the file saying which convention; the text and Markdown
    head it "FLOPs(MAC)", the JSON has "convention". Now "flops_mac", as the single-model CSV
    names it; the default keeps "flops"."""
    args = ["compare", f"{MODELS}:Toy", f"{MODELS}:pruned", *X, "-f", "csv"]
    code, out, err = run([*args, "--convention", "mac"])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["flops_mac"] == "600" and "flops" not in rows[0]
    code, out, err = run(args)
    assert code == 0, err
    assert next(csv.DictReader(io.StringIO(out)))["flops"] == "1240"  # 800 + 40 + 400


def test_markdown_stops_at_depth_1_unless_told_as_readme_says() -> None:
    """README: Markdown stops at depth 1 unless --depth or --top is given (the table and CSV
    list every module). `nested` holds block (depth 1) > block.fc (depth 2)."""
    code, out, err = run([f"{MODELS}:Toy", *X, "-f", "markdown", "--depth", "0"])
    assert code == 0 and [line.split(" | ")[0] for line in out.splitlines() if line.startswith("| (")] == [
        "| (total)"
    ]
    code, out, err = run([f"{MODELS}:nested", *X, "-f", "markdown"])
    assert code == 0, err
    names = [line.split(" | ")[0][2:] for line in out.splitlines()[4:] if line.startswith("| ")]
    assert names == ["(total)", "block"]  # block.fc at depth 2 left out
    code, out, err = run([f"{MODELS}:nested", *X, "-f", "markdown", "--depth", "2"])
    assert "| block.fc |" in out
    code, out, err = run([f"{MODELS}:nested", *X, "-f", "csv"])
    assert [r["module"] for r in csv.DictReader(io.StringIO(out))] == ["(root)", "block", "block.fc"]


# -- P8-14: LLM mode's JSON carries the roofline table's numbers --------------------------------

LLM_SMALL = ["transformers:LlamaConfig", "--prompt", "16", "--generate", "4", "--roofline", "h100-sxm"] + [
    item
    for setting in ("num_hidden_layers=2", "hidden_size=64", "intermediate_size=128")
    + ("num_attention_heads=4", "num_key_value_heads=2", "vocab_size=100")
    for item in ("--set", setting)
]


def test_llm_json_carries_the_roofline_tables_numbers() -> None:
    """The text's roofline row gives TTFT (bound), TPOT first (bound), TPOT last and the
    latency model's TTFT / TPOT; the JSON gave only the TTFT and the mean TPOT. TTFT by hand:
    the prefill's paged bytes, weights 162,976 + KV write 4,096 (16 tokens · 256 B) +
    activations 412,104 = 579,176 B at 3.35e12 B/s = 172.9 ns, memory-bound."""
    import json

    from flopmeter.render.speed import seconds as shown

    code, out, err = run(LLM_SMALL)
    assert code == 0, err
    code, data, err = run([*LLM_SMALL, "-f", "json"])
    assert code == 0, err
    row = json.loads(data)["roofline"][0]
    assert row["ttft_s"] == pytest.approx(579_176 / 3.35e12) and row["prefill_bound"] == "memory"
    line = next(line for line in out.splitlines() if line.startswith("h100-sxm"))
    assert f"{shown(row['ttft_s'])} ({row['prefill_bound']})" in line
    assert f"{shown(row['tpot_first_s'])} ({row['tpot_first_bound']})" in line
    assert shown(row["tpot_last_s"]) in line
    assert (
        f"{shown(row['executed_ttft_s'])} ({row['executed_ttft_regime']}) / "
        f"{shown(row['executed_first_tpot_s'])} ({row['executed_first_tpot_regime']})"
    ) in line
    # the mean TPOT of 3 decode steps lies between the first and the last
    assert row["tpot_first_s"] <= row["tpot_s"] <= row["tpot_last_s"]


def test_a_train_mode_forward_says_so_in_text_markdown_and_html() -> None:
    """train=True counts a forward in train mode (here no batch norm or dropout, so the
    same 600 MACs); the JSON says "training": true, the printed formats said nothing."""
    report = flopmeter.profile(models.Toy(), torch.randn(2, 10), train=True)
    assert report.training and not report.did_backward and report.macs == 600
    assert text.summary_lines(report)[0].endswith("for batch 2 (train mode)")
    assert formats.to_markdown(report).splitlines()[0].endswith(" (train mode)")
    totals = html.to_html(report).split('id="totals"')[1].split("\n", 1)[0]
    assert "train mode" in totals
    eval_report = flopmeter.profile(models.Toy(), torch.randn(2, 10))
    assert text.summary_lines(eval_report)[0].endswith("for batch 2")


# -- P8-16: --top ranks leaves: a container whose children sit in a ModuleList is not one -------


def _top_rows(shown: str) -> list[str]:
    lines = shown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("module "))
    return [line.split()[0] for line in lines[start + 2 :] if line.strip()]


def test_top_does_not_rank_a_container_whose_children_sit_in_a_module_list() -> None:
    """Stacked on (2, 10): encoder.layers.0 and .1 400 FLOPs each (45.45 % of 880), head 80
    (9.09 %). `encoder` holds its layers through an nn.ModuleList, which is never called;
    the leaf test looked at called children only, so `encoder` (800 FLOPs, 90.91 %) was
    ranked first beside its own layers: --top 3 summed to 181.82 % (every transformers
    model: BERT's `encoder` 99.97 % at the top of --top 5)."""
    report = flopmeter.profile(models.Stacked(), torch.randn(2, 10))
    shown = text.render_table(report, top=3)
    assert _top_rows(shown) == ["encoder.layers.0", "encoder.layers.1", "head"]
    assert "45.45%" in shown and "9.09%" in shown and "90.91%" not in shown
    # --depth 2: encoder.layers (the ModuleList, 800) is the deepest shown: it is the leaf
    assert _top_rows(text.render_table(report, depth=2, top=3)) == ["encoder.layers", "head"]
    rows = list(csv.DictReader(io.StringIO(formats.to_csv(report, top=3))))
    assert [r["module"] for r in rows] == ["encoder.layers.0", "encoder.layers.1", "head"]


def test_roofline_top_does_not_rank_a_container_whose_children_sit_in_a_module_list() -> None:
    """The roofline's --top had the same leaf test: h100-sxm's calibrated model gives each
    Linear one op (6 us) + one module call (1.5 us) = 7.5 us, `encoder` 2 · 7.5 + 1.5 = 16.5 us
    and it came first."""
    from flopmeter.render.speed import render_roofline

    report = flopmeter.profile(models.Stacked(), torch.randn(2, 10))
    estimate = report.roofline("h100-sxm")
    assert estimate.rows["encoder"].time == pytest.approx(16.5e-6)
    shown = render_roofline(report, estimate, top=2).split("\n\n")[-1]
    assert [line.split()[0] for line in shown.splitlines()[2:]] == ["encoder.layers.0", "encoder.layers.1"]


def test_top_says_what_containers_do_in_their_own_forward() -> None:
    """--top ranks leaves; work a container does itself (attention's score matmuls beside its
    q/k/v Linears: 10 % of a 2-layer BERT at 512 tokens) was in no row and no line. OwnWork:
    q 400 FLOPs (84.03 % of 476), the root's own matmul 76 FLOPs (76 / 476 = 15.97 %)."""
    report = flopmeter.profile(models.OwnWork(), torch.randn(2, 10))
    assert report.flops == 476 and report.modules[""].own.flops == 76
    note = (
        "not ranked: 76 FLOPs (15.97%) done by container modules in their own forward, the most in '(root)'"
    )
    shown = text.render_table(report, top=1)
    assert _top_rows(shown) == ["q", note.split()[0]] and note in shown
    assert f"> {note}" in formats.to_markdown(report, top=1)
    assert "not ranked" not in text.render_table(report)  # no --top: every row is there
    stacked = flopmeter.profile(models.Stacked(), torch.randn(2, 10))
    assert "not ranked" not in text.render_table(stacked, top=3)  # no container does own work


def test_compare_of_two_backward_profiles_says_its_ratios_are_the_forwards() -> None:
    """compare(Toy, pruned) both with backward=True: "MAC speedup (effective)" 600 / 400 =
    1.50x is the views' forward (the steps' MACs are 1,400 each: pruning does not thin the
    weight gradients' dense counts); nothing in the table said so."""
    x = torch.randn(2, 10)
    before = flopmeter.profile(models.Toy(), x, backward=True, compression=True)
    after = flopmeter.profile(models.pruned(), x, backward=True, compression=True)
    result = flopmeter.compare(before, after)
    total = result.rows()[-1]
    assert total["mac_speedup_effective"] == pytest.approx(600 / 400)
    assert before.macs == after.macs == 1_400
    assert any("of the forward pass" in w for w in result.warnings)
    assert "of the forward pass" in result.to_markdown()
    forward = flopmeter.compare(
        flopmeter.profile(models.Toy(), x, compression=True),
        flopmeter.profile(models.pruned(), x, compression=True),
    )
    assert not forward.warnings


# -- P8-19: a model with no weights and no MACs: no 0 % made of 0 / 0 ---------------------------


def test_compression_totals_of_a_model_without_weights_or_macs() -> None:
    """x.view(-1): no weight, no MAC. Before: "sparsity 0.0%" (0 of 0 weights), "BOPs 0
    (0.00% of fp32 dense)" (0 / 0), "work by dtype: " with nothing after it."""
    report = flopmeter.profile(models.Flatten(), torch.randn(2, 10))
    lines = "\n".join(view_summary_lines(report.compression))
    assert "sparsity - (no weights)" in lines and "BOPs 0 (no MACs); bytes actual 0 B, ideal 0 B" in lines
    assert "work by dtype: none" in lines
    pruned = flopmeter.profile(models.pruned(), torch.randn(2, 10))
    # 100 of 300 weights zero: 33.3 %; BOPs 400 · 1,024 of 600 · 1,024 dense: 66.67 %
    shown = "\n".join(view_summary_lines(pruned.compression))
    assert (
        "sparsity 33.3% (weights; biases apart)" in shown and "BOPs 409.60 K (66.67% of fp32 dense)" in shown
    )


def test_compare_title_says_the_counts_are_of_forward_plus_backward() -> None:
    """`compare A B --backward`: Toy 1,400 MACs (600 forward + 800 backward); the title said
    "(batch 2)" only, as for two forwards of 600."""
    code, out, err = run(["compare", f"{MODELS}:Toy", f"{MODELS}:Toy", *X, "--backward"])
    assert code == 0, err
    assert out.startswith(f"compared to {MODELS}:Toy (batch 2, forward + backward);")
    assert re.search(r"\s1\.40 K\s+2\.56 K\s", out)  # MACs 1,400, FLOPs 2,565
    code, out, err = run(["compare", f"{MODELS}:Toy", f"{MODELS}:Toy", *X])
    assert out.startswith(f"compared to {MODELS}:Toy (batch 2);")
