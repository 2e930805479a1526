"""What every part of the command line shares: the usage error (exit 2) and the units option."""

from __future__ import annotations

import argparse


class UsageError(Exception):
    """Bad command line: reported with exit code 2."""


def units_option(args: argparse.Namespace) -> str:
    """The ``--units`` choice as the renderers take it ("" for plain numbers)."""
    return "" if args.units == "plain" else str(args.units)
