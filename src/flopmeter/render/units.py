"""Numbers to strings: the only place counts get units."""

from __future__ import annotations

PREFIXES = {"T": 10**12, "G": 10**9, "M": 10**6, "K": 10**3, "": 1}


def pick_prefix(value: float) -> str:
    """The largest SI prefix that keeps ``value`` at or above 1."""
    for prefix, scale in PREFIXES.items():
        if abs(value) >= scale:
            return prefix
    return ""


def scaled(value: float, units: str = "auto", precision: int = 2) -> str:
    """``1_234_567`` -> ``"1.23 M"``; ``units`` is auto, T, G, M, K or "" (plain)."""
    prefix = pick_prefix(value) if units == "auto" else units
    if prefix not in PREFIXES:
        raise ValueError(f"unknown units {units!r}; expected auto, T, G, M, K or an empty string")
    if prefix == "" and float(value).is_integer():
        return f"{int(value):,} "
    return f"{value / PREFIXES[prefix]:.{precision}f} {prefix}"


def count(value: float, unit: str, units: str = "auto", precision: int = 2) -> str:
    """``count(716e6, "MACs")`` -> ``"716.00 MMACs"``; ``count(61e6, "params")`` -> ``"61.00 M params"``."""
    text = scaled(value, units, precision)
    return text.rstrip() + " " + unit if unit[:1].islower() else text + unit


def percent(part: float, whole: float, precision: int = 2) -> str:
    return f"{(100.0 * part / whole) if whole else 0.0:.{precision}f}%"


def nbytes(value: float, precision: int = 2) -> str:
    """Binary units for memory: B, KiB, MiB, GiB, TiB."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= scale:
            return f"{value / scale:.{precision}f} {unit}"
    return f"{int(value)} B"
