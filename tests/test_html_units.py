"""The HTML page shows counts in the units and precision asked for (--units, --precision;
Report.to_html(units=, precision=)), as the tree does; its sortable cells keep exact values."""

from __future__ import annotations

import io
from pathlib import Path

import torch

import flopmeter
from flopmeter.cli import main


def test_to_html_takes_units_and_precision() -> None:
    report = flopmeter.profile(torch.nn.Linear(100, 50), torch.randn(2, 100))
    page = report.to_html(units="K", precision=3)
    assert "<b>5.050 K</b>" in page  # params 100*50 + 50 = 5,050
    assert "<b>10.000 K</b>" in page  # MACs 2*100*50 = 10,000
    assert 'data-value="10000">10.000 K</td>' in page  # the module row keeps the exact value to sort by
    assert "<b>5.05 K</b>" in report.to_html()  # the default: auto, 2 decimals


def test_cli_html_follows_units_and_precision(tmp_path: Path) -> None:
    builder = tmp_path / "small.py"
    builder.write_text("import torch\n\ndef build():\n    return torch.nn.Linear(100, 50)\n")
    page = tmp_path / "page.html"
    out, err = io.StringIO(), io.StringIO()
    args = [
        f"{builder}:build",
        "--input",
        "2x100",
        "--html",
        str(page),
        "--units",
        "plain",
        "--precision",
        "1",
    ]
    assert main(args, stdout=out, stderr=err) == 0
    text = page.read_text()
    assert "<b>5,050</b>" in text and "<b>10,000</b>" in text  # plain: exact integers
    # memory traffic: read weight 5,000*4 + bias 50*4 + input 200*4 = 21,000 B, written 100*4 = 400 B;
    # 21,400 / 1,024 = 20.898 KiB, at one decimal
    assert "<b>20.9 KiB</b>" in text


def test_to_html_refuses_a_precision_it_cannot_print() -> None:
    """The CLI's --precision takes 0 to 12; Report.to_html(precision=-1) raised Python's
    "Format specifier missing precision" from deep in the renderer."""
    import pytest

    report = flopmeter.profile(torch.nn.Linear(4, 2), torch.randn(1, 4))
    for bad in (-1, 13, 2.5, True, "2"):
        with pytest.raises(ValueError, match=r"precision takes 0 to 12 decimals .*got"):
            report.to_html(precision=bad)  # type: ignore[arg-type]
    assert "<b>10</b>" in report.to_html(units="", precision=0)  # params 4*2 + 2 = 10
