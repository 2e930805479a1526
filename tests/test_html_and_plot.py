"""The HTML report in a real headless browser, and the PNG plot."""

import os
import shutil
import subprocess

import pytest

import flopmeter
from handmade import handmade_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("FLOPMETER_REQUIRE_BROWSER") != "1",
    reason="Debian's chromium is not installed (.ci/run installs it)",
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser(tmp_path, *args):
    assert CHROMIUM, "chromium is required here (FLOPMETER_REQUIRE_BROWSER=1)"
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@needs_browser
def test_html_opens_offline_runs_its_script_and_shows_the_totals(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(handmade_report().to_html())
    dom = browser(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    assert "ready: 4 modules" in dom.stdout  # the inline script ran without error
    assert (
        "38.40 K" in dom.stdout and "18.94 K" in dom.stdout and "5.35 K" in dom.stdout
    )  # FLOPs, MACs, params
    assert "mylib.fused has no formula" in dom.stdout
    assert "http://" not in page.read_text() and "https://" not in page.read_text()  # nothing fetched


@needs_browser
def test_html_screenshot_is_not_blank(tmp_path):
    from matplotlib import image

    page = tmp_path / "report.html"
    page.write_text(handmade_report().to_html())
    shot = tmp_path / "shot.png"
    result = browser(tmp_path, "--window-size=1000,700", f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0 and shot.exists(), result.stderr
    pixels = image.imread(shot)
    assert pixels.shape[0] == 700 and pixels.std() > 0.05  # text and bars, not an empty page


def test_plot_png(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib import image

    target = tmp_path / "layers.png"
    figure = handmade_report().plot(target)
    assert figure is not None and target.stat().st_size > 10_000
    assert image.imread(target).std() > 0.05


def test_cli_writes_html_and_plot(tmp_path):
    from flopmeter.cli import run

    html_file, png_file = tmp_path / "r.html", tmp_path / "r.png"
    code, out, err = run(["torchvision:alexnet", "--html", str(html_file), "--plot", str(png_file), "-q"])
    assert code == 0, err
    assert "61.10 M" in html_file.read_text() and png_file.stat().st_size > 10_000
    report = flopmeter.profile(__import__("torchvision").models.alexnet(), input_shape=(1, 3, 224, 224))
    assert f'"flops": {report.flops}' in html_file.read_text()
