"""compare's totals table: each model's absolute numbers beside the ratios, as a paper's
table prints them (probe 14, N14-6: compare gave ratios only). The masked model is the
reference case R1 of shared/reference/compression-metrics.md."""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn.utils import prune

import flopmeter
from flopmeter.render.speed import seconds


def _dense_and_masked() -> tuple[nn.Linear, nn.Linear]:
    torch.manual_seed(0)
    dense = nn.Linear(100, 50)
    masked = nn.Linear(100, 50)
    masked.load_state_dict(dense.state_dict())
    mask = torch.zeros(50, 100)
    mask[:, :25] = 1  # keep the first 25 inputs of every row
    prune.custom_from_mask(masked, "weight", mask)
    return dense, masked


def test_the_totals_are_each_models_absolute_numbers() -> None:
    dense, masked = _dense_and_masked()
    result = flopmeter.compare(dense, masked, torch.randn(1, 100))
    totals = result.to_dict()["totals"]
    assert totals["before"] == {
        "params": 5_050,  # 50*100 + 50
        "nonzero_params": 5_050,  # random weights: no zero
        "bytes_actual": 20_200,  # 5,050 * 4 B
        "bytes_ideal": 20_200,
        "macs_dense": 5_000,  # 1 * 100 * 50
        "macs_effective": 5_000,
        "bops": 5_120_000,  # 5,000 * 32 * 32
    }
    assert totals["after"] == {
        "params": 5_050,  # logical params do not change under a mask
        "nonzero_params": 1_300,  # 50*25 + 50 bias
        "bytes_actual": 40_200,  # weight_orig 20,000 + mask 20,000 + bias 200
        "bytes_ideal": 5_825,  # 1,250*4 values + 5,000/8 bitmask + 50*4 bias
        "macs_dense": 5_000,
        "macs_effective": 1_250,  # nz * R = 1,250 * 1
        "bops": 1_280_000,  # 1,250 * 32 * 32
    }


def test_the_text_and_markdown_print_the_totals_table() -> None:
    dense, masked = _dense_and_masked()
    result = flopmeter.compare(dense, masked, torch.randn(1, 100))
    text = str(result)
    rows = text.split("totals:\n", 1)[1].splitlines()
    assert re.split(r"\s{2,}", rows[0].strip())[:3] == ["model", "params", "nonzero params"]
    after = re.split(r"\s{2,}", rows[3].strip())
    # params 5.05 K, nonzero 1.30 K, MACs 5.00 K dense and 1.25 K effective, BOPs 1.28 M,
    # size 40,200 B = 39.26 KiB actual and 5,825 B = 5.69 KiB ideal, the estimated latency
    assert after[0] == result.after_name
    estimate = seconds(result.basis.numbers["after"])
    assert after[1:] == ["5.05 K", "1.30 K", "5.00 K", "1.25 K", "1.28 M", "39.26 KiB", "5.69 KiB", estimate]
    markdown = result.to_markdown()
    assert "Totals:" in markdown
    assert "| 5.05 K | 1.30 K | 5.00 K | 1.25 K | 1.28 M | 39.26 KiB | 5.69 KiB |" in markdown


def test_the_html_page_has_the_totals_table() -> None:
    dense, masked = _dense_and_masked()
    page = flopmeter.compare(dense, masked, torch.randn(1, 100)).to_html()
    totals = page.split("<p>Totals:</p>", 1)[1]
    assert "<td>1.30 K</td><td>5.00 K</td><td>1.25 K</td><td>1.28 M</td>" in totals  # R1, as above
