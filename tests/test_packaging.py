"""pyproject's torch range admits the torch the tests run on, and the README names it."""

import re
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
