"""Numbers to strings: the only place counts get units."""

from __future__ import annotations

from collections.abc import Sequence

PREFIXES = {"T": 10**12, "G": 10**9, "M": 10**6, "K": 10**3, "": 1}

MAX_PRECISION = 12  # decimals beyond this print float noise


def check_precision(precision: object) -> None:
    """Refuse a ``precision`` that is not a whole number of decimals from 0 to
    ``MAX_PRECISION`` (Python's format spec gives no clear error for -1 or 2.5)."""
    if isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= MAX_PRECISION:
        raise ValueError(f"precision takes 0 to {MAX_PRECISION} decimals (a whole number), got {precision!r}")


def pick_prefix(value: float, precision: int | None = None) -> str:
    """The largest SI prefix that keeps ``value`` at or above 1; with ``precision``, one
    prefix up where the value would round to 1000 of the one below (999,999 at 2 decimals
    is "1.00 M", not "1000.00 K")."""
    return _pick(value, list(PREFIXES.items()), 1000, precision)


def _pick(value: float, scales: Sequence[tuple[str, float]], step: int, precision: int | None) -> str:
    """The unit of ``scales`` (largest first) that ``value`` is shown in: the largest it
    reaches, or the next larger one where rounding to ``precision`` decimals reaches ``step``."""
    for index, (unit, scale) in enumerate(scales):
        if abs(value) >= scale:
            return unit
        if index + 1 < len(scales) and precision is not None:
            below = scales[index + 1][1]  # the unit the value would be shown in
            if abs(value) >= below and round(abs(value) / below, precision) >= step:
                return unit
    return scales[-1][0]


def scaled(value: float, units: str = "auto", precision: int = 2) -> str:
    """``1_234_567`` -> ``"1.23 M"``; ``units`` is auto, T, G, M, K or "" (plain)."""
    prefix = pick_prefix(value, precision) if units == "auto" else units
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
    """Binary units for memory: B, KiB, MiB, GiB, TiB (1,048,575 B at 2 decimals is
    "1.00 MiB", not "1024.00 KiB")."""
    unit = _pick(value, BINARY, 1024, precision)
    if unit == "B":
        return f"{int(value)} B"
    return f"{value / dict(BINARY)[unit]:.{precision}f} {unit}"


BINARY = [("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10), ("B", 1)]
