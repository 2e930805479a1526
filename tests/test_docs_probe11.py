"""Examples of README.md and docs/*.md run as a new user copies them (probe 11, area E:
docs/probe-11/docs.md)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
from pathlib import Path

from flopmeter.cli import run

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of the ```language blocks of a Markdown text ("" for plain ``` blocks)."""
    blocks: list[str] = []
    body: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("```"):
            if body is not None:
                body.append(line)
        elif body is None:
            body, opened = [], line[3:].strip()
        else:
            if opened == language:
                blocks.append("\n".join(body) + "\n")
            body = None
    return blocks


def test_readme_compare_block_runs_as_written_and_prints_its_table() -> None:
    """P11-E1: README's `flopmeter.compare(dense, pruned, ...)` block used `copy`, `nn`,
    `prune` and `torch` without importing them: copied alone it stopped at a NameError.
    Run in a fresh namespace, it prints the table the README shows under it."""
    (block,) = [b for b in fenced_blocks(README, "python") if "flopmeter.compare(dense, pruned" in b]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    table = [line for line in printed.getvalue().splitlines() if line.startswith("|")]
    # Linear(512, 512) at amount=0.75 keeps 65,536 of 262,144 weights: nonzero ratio
    # (65,536 + 512 bias) / 262,656 = 0.251, effective MAC speedup 262,144 / 65,536 = 4.00x.
    assert "| 0 | Linear | in place | 262.66 K | 262.66 K | 1.000 | 0.251 |" in table[2]
    assert "| 4.00x |" in table[2]
    for line in table:
        assert line in README, f"README's table lacks the printed row {line!r}"


def test_readme_python_blocks_use_only_names_they_or_the_first_block_define() -> None:
    """P11-E2: README's speed block called `flopmeter.benchmark(model, x, ...)`, and no
    README block defines `x` (the 30-second block passes its input inline)."""
    blocks = fenced_blocks(README, "python")
    for block in blocks:
        assert not re.search(r"\(model, x\b", block), block


def write_builders(folder: Path) -> Path:
    """A FILE.py as a new user writes one: builders, no EXAMPLE_INPUTS."""
    path = folder / "builders.py"
    path.write_text(
        "import torch.nn as nn\n"
        "from torch.nn.utils import prune\n\n"
        "def dense():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=8), nn.AdaptiveAvgPool2d(1),"
        " nn.Flatten(), nn.Linear(4, 2))\n\n"
        "def pruned():\n"
        "    model = dense()\n"
        "    prune.l1_unstructured(model[0], 'weight', amount=0.5)\n"
        "    return model\n\n"
        "build = pruned\n"
    )
    return path


def test_compression_md_file_commands_run_with_a_file_that_gives_no_inputs(tmp_path: Path) -> None:
    """P11-E3: docs/compression.md's `flopmeter FILE.py:build --micronet imagenet` exited 2
    ("this model has no documented input") for a FILE.py without EXAMPLE_INPUTS, the kind
    the page's other FILE.py lines (`--input 1x3x224x224`) assume. Every FILE.py line of
    the page's CLI block runs, as written, on such a file."""
    text = (ROOT / "docs" / "compression.md").read_text()
    (block,) = [b for b in fenced_blocks(text, "") if "--micronet imagenet" in b]
    builders = write_builders(tmp_path)
    lines = [line.split("#")[0].strip() for line in block.splitlines() if "FILE.py" in line]
    assert len(lines) == 3
    for line in lines:
        line = line.replace("[--bench]", "").replace("FILE.py", str(builders))
        args = shlex.split(line)[1:]  # without "flopmeter"
        code, out, err = run(args)
        assert code == 0, f"{line}: exit {code}: {err}"
        assert out


def test_latency_panel_docstring_counts_the_models_of_its_panel() -> None:
    """P11-E6: benchmarks/latency_panel.py called itself "a 27-model panel"; its PANEL
    holds 28 (20 torchvision, 3 timm, BERT, GPT-2, LSTM, MHA, TransformerEncoder), as
    README.md and docs/speed.md say."""
    spec = importlib.util.spec_from_file_location("latency_panel", ROOT / "benchmarks" / "latency_panel.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    count = len(module.PANEL)
    assert count == 20 + 3 + 1 + 1 + 1 + 1 + 1  # = 28
    assert f"a {count}-model panel" in (module.__doc__ or "")
    assert f"runs a {count}-model\npanel" in README or f"runs a {count}-model panel" in README
    assert f"the panel: {count} models" in (ROOT / "docs" / "speed.md").read_text()


def test_architecture_md_names_every_module_of_the_package() -> None:
    """P11-E7: docs/architecture.md ("the code layout") had no row for five modules later
    probes added (interrupts.py, flat_graph.py, tracing/higher_order.py,
    tracing/library_calls.py, tracing/shared_names.py). A module counts as named when its
    path is, or its package has a row of its own (`llm/`, `formulas/*.py`, `hardware/`)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "src" / "flopmeter"
    unnamed = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if path.name in ("__init__.py", "__main__.py"):
            continue
        folder = relative.rsplit("/", 1)[0] + "/" if "/" in relative else None
        named = f"`{relative}`" in text or (
            folder is not None
            and folder != "tracing/"
            and (f"`{folder}`" in text or f"`{folder}*.py`" in text or f"`{folder}`," in text)
        )
        if not named:
            unnamed.append(relative)
    assert unnamed == []
