"""--compression in the module tree and tables: the view's columns per module,
inclusive of children, with counts by hand (R1's masked Linear + a dense Linear)."""

from __future__ import annotations

import csv
import io
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.cli import run

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

BUILDER = textwrap.dedent(
    """
    import torch
    from torch import nn
    from torch.nn.utils import prune

    def masked():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 10))
        mask = torch.zeros(50, 100)
        mask[:, :25] = 1  # keep the first 25 inputs of every row (R1)
        prune.custom_from_mask(model[0], "weight", mask)
        return model
    """
)
# Hand counts (fp32, x 1x100):
# layer 0: N 5,000, nz 50*25 = 1,250; nonzero params 1,250 + 50 bias = 1,300; sparsity 0.75
#          MACs eff. 1,250 (R = 1); BOPs 1,250*32*32 = 1,280,000
#          bytes ideal: bitmask 1,250*4 + 5,000/8 + bias 50*4 = 5,000 + 625 + 200 = 5,825 (R1)
# layer 2: N 500, all nonzero; nonzero params 510; MACs eff. 500; BOPs 500*1,024 = 512,000
#          bytes ideal 500*4 + 10*4 = 2,040
# root:    params 5,050 + 510 = 5,560; nonzero 1,300 + 510 = 1,810;
#          sparsity 1 - 1,750/5,500 = 0.6818...; MACs eff. 1,750; BOPs 1,792,000;
#          bytes ideal 5,825 + 2,040 = 7,865


@pytest.fixture
def builder(tmp_path: Path) -> str:
    path = tmp_path / "models.py"
    path.write_text(BUILDER)
    return f"{path}:masked"


def masked() -> nn.Module:
    namespace: dict = {}
    exec(BUILDER, namespace)
    return namespace["masked"]()


class TestByModule:
    def test_inclusive_sums_by_hand(self) -> None:
        report = flopmeter.profile(masked(), torch.randn(1, 100))
        rows = report.compression.by_module()
        first, relu, last, root = rows["0"], rows["1"], rows["2"], rows[""]
        assert (first.params, first.nonzero_params, first.sparsity) == (5_050, 1_300, 0.75)
        assert (first.macs_effective, first.bops, first.bytes_ideal) == (1_250, 1_280_000, 5_825)
        assert (first.weight_bits, first.act_bits) == (32, 32)
        assert (last.nonzero_params, last.macs_effective, last.bops, last.bytes_ideal) == (
            510,
            500,
            512_000,
            2_040,
        )
        assert last.structure == "dense"
        assert relu.weight_params == 0 and relu.sparsity is None and relu.structure is None
        assert (root.params, root.nonzero_params, root.macs_effective) == (5_560, 1_810, 1_750)
        assert root.sparsity == pytest.approx(1 - 1_750 / 5_500)
        assert (root.bops, root.bytes_ideal) == (1_792_000, 7_865)
        assert root.structure == "mixed"  # layer 0 pruned, layer 2 dense
        assert root.weight_bits == 32  # both layers fp32

    def test_root_equals_the_view_totals(self) -> None:
        report = flopmeter.profile(masked(), torch.randn(1, 100))
        view, root = report.compression, report.compression.by_module()[""]
        assert (root.nonzero_params, root.macs_effective) == (view.nonzero_params, view.macs_effective)
        assert (root.bops, root.bytes_ideal) == (view.bops, view.bytes_ideal)

    def test_meta_device_sparsity_is_unknown(self) -> None:
        with torch.device("meta"):
            model = nn.Sequential(nn.Linear(4, 3))
        rows = flopmeter.profile(model, input_shape=(1, 4)).compression.by_module()
        assert rows["0"].nonzero_params is None and rows["0"].sparsity is None


class TestCLIColumns:
    def test_tree_lines_carry_the_view(self, builder: str) -> None:
        code, out, err = run([builder, "--input", "1x100", "--compression", "--units", "plain"])
        assert code == 0, err
        line = next(x for x in out.splitlines() if x.strip().startswith("(0): Linear("))
        assert "1,300 nonzero, 75.0% sparse, channel, w32a32, 1,250 MACs eff." in line
        relu = next(x for x in out.splitlines() if x.strip().startswith("(1): ReLU("))
        assert "nonzero" not in relu and "MACs eff." not in relu  # no weights, no MACs
        assert "compression view totals:" in out
        assert "| nonzero" not in out and "bits/weight  " not in out  # no separate per-layer table

    def test_table_has_the_full_set(self, builder: str) -> None:
        code, out, err = run(
            [builder, "--input", "1x100", "--compression", "-f", "table", "--units", "plain"]
        )
        assert code == 0, err
        lines = out.splitlines()
        header = next(x for x in lines if x.startswith("module"))
        for column in (
            "nonzero",
            "sparsity",
            "structure",
            "W bits",
            "A bits",
            "MACs eff.",
            "BOPs",
            "bytes ideal",
        ):
            assert column in header
        row = next(x for x in lines if x.strip().startswith("0 ")).split()
        # 0 Linear 1 5,050 5,000 10,000 90.50% 20.31 KiB, then the view's columns
        assert row[9:] == ["1,300", "75.0%", "channel", "32", "32", "1,250", "1,280,000", "5.69", "KiB"]
        # 5.69 KiB = 5,825 bytes ideal / 1,024

    def test_csv_raw_numbers(self, builder: str) -> None:
        code, out, err = run([builder, "--input", "1x100", "--compression", "-f", "csv"])
        assert code == 0, err
        rows = {r["module"]: r for r in csv.DictReader(io.StringIO(out))}
        first = rows["0"]
        assert (first["nonzero_params"], first["sparsity"], first["structure"]) == ("1300", "0.75", "channel")
        assert (first["weight_bits"], first["act_bits"], first["macs_effective"]) == ("32", "32", "1250")
        assert (first["bops"], first["bytes_ideal"]) == ("1280000", "5825")
        assert rows["1"]["sparsity"] == "" and rows["1"]["structure"] == ""  # ReLU: no weights
        assert (rows["(root)"]["nonzero_params"], rows["(root)"]["bytes_ideal"]) == ("1810", "7865")

    def test_csv_without_compression_keeps_its_columns(self, builder: str) -> None:
        _, out, _ = run([builder, "--input", "1x100", "-f", "csv"])
        assert "nonzero_params" not in out.splitlines()[0]

    def test_markdown_columns_and_totals(self, builder: str) -> None:
        code, out, err = run(
            [builder, "--input", "1x100", "--compression", "-f", "markdown", "--units", "plain"]
        )
        assert code == 0, err
        assert "| nonzero | sparsity | structure | W bits | A bits | MACs eff. | BOPs | bytes ideal |" in out
        assert (
            "| 0 | Linear | 5,050 | 5,000 | 10,000 | 90.50% | 1,300 | 75.0% | channel | 32 | 32 | 1,250 | 1,280,000 | 5.69 KiB |"
            in out
        )
        assert "> compression view totals:" in out

    def test_html_and_plot_show_the_view(self, builder: str, tmp_path: Path) -> None:
        page, image = tmp_path / "r.html", tmp_path / "r.png"
        code, _, err = run(
            [builder, "--input", "1x100", "--compression", "--html", str(page), "--plot", str(image)]
        )
        assert code == 0, err
        text = page.read_text()
        assert "<th>nonzero</th><th>sparsity</th>" in text
        assert '<td data-value="1300">1.30 K</td><td data-value="0.75">75.0%</td>' in text
        assert '<div id="compression">' in text
        assert image.stat().st_size > 0

    def test_without_compression_html_has_no_view(self, builder: str, tmp_path: Path) -> None:
        page = tmp_path / "r.html"
        run([builder, "--input", "1x100", "--html", str(page)])
        assert "<th>nonzero</th>" not in page.read_text()


def test_plot_panel() -> None:
    report = flopmeter.profile(masked(), torch.randn(1, 100))
    figure = report.plot(compression=True)
    axes = figure.get_axes()
    assert len(axes) == 4  # FLOPs, params, operators + dense vs effective MACs
    labels = [tick.get_text() for tick in axes[3].get_yticklabels()]
    assert labels == ["2", "0"]  # the two layers, most dense MACs at the top
    widths = sorted(round(bar.get_width()) for bar in axes[3].patches)
    assert widths == [500, 500, 1_250, 5_000]  # dense 5,000 / 500, effective 1,250 / 500
    import matplotlib.pyplot as plt

    plt.close(figure)


def test_report_methods_take_compression() -> None:
    report = flopmeter.profile(masked(), torch.randn(1, 100))
    assert "nonzero_params" in report.to_csv(compression=True).splitlines()[0]
    assert "| MACs eff. |" in report.to_markdown(compression=True)
    assert "<th>bytes ideal</th>" in report.to_html(compression=True)
    assert "nonzero_params" not in report.to_csv().splitlines()[0]


def test_roofline_output_keeps_the_view_as_its_own_table(builder: str) -> None:
    code, out, err = run([builder, "--input", "1x100", "--compression", "--roofline", "a100-sxm-80gb"])
    assert code == 0, err
    assert "bits/weight" in out  # the per-layer view table, under the roofline table
    assert "compression view totals:" in out
