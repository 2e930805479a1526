"""Every text format of a hand-made Report against golden files.

Regenerate after an intended change with:  FLOPMETER_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

import json
import os
from pathlib import Path

import pytest

from flopmeter.render import formats, text
from handmade import handmade_report

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("FLOPMETER_UPDATE_GOLDEN") == "1"

RENDERINGS = {
    "tree.txt": lambda r: text.render_tree(r),
    "tree_ptflops.txt": lambda r: text.render_tree(r, convention="ptflops", units="K"),
    "table.txt": lambda r: text.render_table(r, sort="flops"),
    "operators.txt": lambda r: text.render_operators(r),
    "report.json": lambda r: formats.to_json(r),
    "report.csv": lambda r: formats.to_csv(r),
    "report.md": lambda r: formats.to_markdown(r),
}


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_golden(name):
    rendered = RENDERINGS[name](handmade_report())
    path = GOLDEN / name
    if UPDATE:
        path.write_text(rendered)
    assert path.exists(), f"missing golden file {path}; run with FLOPMETER_UPDATE_GOLDEN=1"
    assert rendered == path.read_text()


def test_json_holds_the_totals():
    data = json.loads(formats.to_json(handmade_report()))
    assert data["schema_version"] == 1
    assert data["totals"]["flops"] == 38_400  # 27,648 + 512 + 10,240
    assert data["totals"]["macs"] == 18_944  # 13,824 + 5,120
    assert data["totals"]["flops_by_convention"]["2mac"] == 37_888  # 2*18,944
    assert data["unsupported"][0]["op"] == "mylib.fused"
    assert [m["name"] for m in data["modules"]] == ["", "conv", "act", "fc"]
