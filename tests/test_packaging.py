"""pyproject's torch range admits the torch the tests run on, and the README names it."""

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_installed_torch_is_in_the_declared_range():
    specifiers = pytest.importorskip("packaging.specifiers")
    requirement = next(
        d
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        if d.startswith("torch")
    )
    allowed = specifiers.SpecifierSet(requirement.removeprefix("torch"))
    release = torch.__version__.split("+")[0]
    assert release in allowed, f"torch {release} is not admitted by {requirement!r}"


def test_readme_names_the_tested_torch():
    release = torch.__version__.split("+")[0]
    assert re.search(rf"Tested with torch {re.escape(release)}\b", (ROOT / "README.md").read_text())


def test_ci_fails_when_the_install_of_the_test_command_fails():
    """.ci/run runs the README's test command under ``set -e``; with a failing install
    (here ``false`` in pip's place) the script must stop with an error, not skip the tests
    and go on (a disk-full pip once made CI pass without running a test)."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    command = next(line for line in lines if "python -m pytest" in line and not line.startswith("#"))
    assert 'pip install -q -e ".[test]"' in command
    failing = command.replace('pip install -q -e ".[test]"', "false").replace("python -m pytest", "true")
    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{failing}\necho went-on"], capture_output=True, text=True
    )
    assert result.returncode != 0 and "went-on" not in result.stdout
