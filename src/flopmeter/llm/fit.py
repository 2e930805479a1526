"""Exact polynomials in sequence length, found from traces.

Cost is a polynomial in the sequence length for dense and grouped-query attention:
prefill ``a*T^2 + b*T + c``, a decode step ``alpha + beta*n``. A polynomial of degree
d is fixed by d+1 traced points; it is accepted only if one more traced point agrees
exactly. Arithmetic is exact (``fractions.Fraction``): no floating point anywhere, so
"agrees" means equal integers. Where the check fails (sliding-window attention is
piecewise, routing-dependent mixtures of experts) there is no polynomial and callers
keep the traced points instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Polynomial:
    """``sum(coefficients[i] * x**i)``, exact rational coefficients (lowest power first)."""

    coefficients: tuple[Fraction, ...]

    def __call__(self, x: int) -> Fraction:
        value = Fraction(0)
        for coefficient in reversed(self.coefficients):
            value = value * x + coefficient
        return value

    @property
    def degree(self) -> int:
        return len(self.coefficients) - 1

    def is_integral(self) -> bool:
        return all(c.denominator == 1 for c in self.coefficients)


def interpolate(points: Sequence[tuple[int, int]]) -> Polynomial:
    """The polynomial of degree len(points)-1 through ``points`` (x, y), exactly
    (Newton's divided differences over Fractions)."""
    xs = [Fraction(x) for x, _ in points]
    if len(set(xs)) != len(xs):
        raise ValueError(f"interpolation needs distinct x values, got {[x for x, _ in points]}")
    table = [Fraction(y) for _, y in points]
    newton = [table[0]]
    for level in range(1, len(xs)):
        table = [(table[i + 1] - table[i]) / (xs[i + level] - xs[i]) for i in range(len(table) - 1)]
        newton.append(table[0])
    # expand the Newton form into powers of x
    coefficients = [Fraction(0)] * len(xs)
    basis = [Fraction(1)]  # prod (x - xs[j]) for j < level, lowest power first
    for level, factor in enumerate(newton):
        for power, value in enumerate(basis):
            coefficients[power] += factor * value
        if level < len(xs) - 1:
            shifted = [Fraction(0)] + basis
            for power, value in enumerate(basis):
                shifted[power] -= xs[level] * value
            basis = shifted
    while len(coefficients) > 1 and coefficients[-1] == 0:
        coefficients.pop()
    return Polynomial(tuple(coefficients))


@dataclass(frozen=True)
class Fit:
    """A polynomial found from ``points`` and checked at ``check`` (x, traced y).
    ``exact`` is True when the check agreed; otherwise ``polynomial`` is None."""

    points: tuple[tuple[int, int], ...]
    check: tuple[int, int]
    polynomial: Polynomial | None

    @property
    def exact(self) -> bool:
        return self.polynomial is not None


def fit(points: Sequence[tuple[int, int]], check: tuple[int, int]) -> Fit:
    """Interpolate ``points``; keep the polynomial only if it reproduces ``check`` exactly."""
    polynomial = interpolate(points)
    agrees = polynomial(check[0]) == check[1]
    return Fit(tuple(points), check, polynomial if agrees else None)


@dataclass(frozen=True)
class PiecewiseLinear:
    """A function of a whole number known exactly at traced ``points`` (x, y), sorted by x,
    and linear between consecutive ones. ``exact`` says each piece was checked: every span
    of 2 or more was traced at its middle too and the middle lay on the line. Between two
    points the value is y0 + (y1 - y0)(x - x0)/(x1 - x0), an exact rational; outside them the
    nearest point's (callers ask within ``points``)."""

    points: tuple[tuple[int, int], ...]
    exact: bool

    def __call__(self, x: int) -> Fraction:
        points = self.points
        if x <= points[0][0]:
            return Fraction(points[0][1])
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            if x <= x1:
                return y0 + Fraction((y1 - y0) * (x - x0), x1 - x0)
        return Fraction(points[-1][1])

    @property
    def breaks(self) -> tuple[int, ...]:
        """The traced x values: where one linear piece may end and the next begin."""
        return tuple(x for x, _ in self.points)


def piecewise_linear(trace: Callable[[int], int], xs: Iterable[int], budget: int) -> PiecewiseLinear:
    """The piecewise-linear function through ``trace`` at ``xs`` (every x where a piece may
    end: both ends of the range and the integers around each kink), each span of 2 or more
    checked at its middle. A middle off the line splits the span there and both halves are
    checked again, until ``budget`` traces in all; what is still unchecked then makes the
    result inexact (interpolated)."""
    known = {x: trace(x) for x in sorted(set(xs))}
    spans = sorted(known)
    todo = list(zip(spans, spans[1:], strict=False))
    exact = True
    while todo:
        x0, x1 = todo.pop()
        if x1 - x0 < 2:
            continue
        if len(known) >= budget:
            exact = False
            break
        middle = (x0 + x1) // 2
        known[middle] = trace(middle)
        y0, y1, ym = known[x0], known[x1], known[middle]
        if (ym - y0) * (x1 - x0) != (y1 - y0) * (middle - x0):
            todo += [(x0, middle), (middle, x1)]
    return PiecewiseLinear(tuple(sorted(known.items())), exact)
