"""Pairwise p-norm distances (torch.cdist, F.pdist) and their gradients. Pure functions
of sizes.

Every arithmetic operation, comparison and elementary function (|x|, sign, pow, root)
is 1 FLOP (docs/formulas.md). d = a coordinate's difference x_i - y_i, D = the distance.
"""

from __future__ import annotations

from ..cost import Cost
from . import contraction

INF = float("inf")


def distances(pairs: int, m: int, p: float) -> Cost:
    """``pairs`` distances between M-vectors: per pair M subtracts, M |d|^p (1 each), M-1
    adds, and the p-th root (none for p = 0, 1, inf): 3M - 1 + root."""
    if m == 0:
        return Cost()
    root = 0 if p in (0.0, 1.0, INF) else 1
    return Cost(flops=pairs * (3 * m - 1 + root))


def euclidean_by_matmul(batch: int, rows: int, others: int, m: int) -> Cost:
    """torch's ``_euclidean_dist`` (cdist's p = 2 path for more than 25 rows or columns,
    or ``compute_mode="use_mm_for_euclid_dist"``): ||x||² + ||y||² - 2x·y as one matmul of
    [-2x, ||x||², 1] by [y, 1, ||y||²]: the squared norms P(2M - 1) + R(2M - 1), -2x PM,
    the matmul P·R dot products of M + 2 (MACs), then clamp at 0 and sqrt, 2 per output.
    Per batch: P(3M - 1) + R(2M - 1) + P·R·(2M + 5) FLOPs, P·R·(M + 2) MACs."""
    if m == 0:
        return Cost()
    products = contraction.dot_products(batch * rows * others, m + 2)
    flops = batch * (rows * (3 * m - 1) + others * (2 * m - 1) + rows * others * 2)
    return products + Cost(flops=flops)


def gradient_terms(p: float) -> tuple[int, int]:
    """(FLOPs per term, per pair) of dD/dx_i times the pair's gradient g: the
    arithmetic of the formula torch's kernels evaluate, a pair's scalar computed once:
    p = 1: sign(d)·g: sub, sign, mul = 3 per term;
    p = 2: d·s, s = g/D per pair: sub, mul = 2 per term, 1 per pair;
    p = inf: g·sign(d)·[|d| = D]: sub, abs, compare, sign, 2 multiplies = 6 per term;
    other p: d·|d|^(p-2)·s, s = g/D^(p-1) per pair: sub, abs, pow, 2 multiplies = 5 per
    term, pow and divide = 2 per pair;
    p = 0: the gradient is zero (torch returns zeros): 0.
    (The zero-distance guard, a branch, is not counted.)"""
    if p == 0.0:
        return 0, 0
    if p == 1.0:
        return 3, 0
    if p == 2.0:
        return 2, 1
    if p == INF:
        return 6, 0
    return 5, 2


def cdist_backward(batch: int, rows: int, others: int, m: int, p: float) -> Cost:
    """The gradient of cdist(x1 (batch, rows, M), x2 (batch, others, M)) for x1 (torch
    calls the same op with x1, x2 swapped for x2's): per pair (batch·rows·others) its
    scalar, per term (pair × coordinate) the term, then each of the batch·rows·M gradient
    elements sums its ``others`` terms (others - 1 adds)."""
    per_term, per_pair = gradient_terms(p)
    if per_term == 0:
        return Cost()
    pairs = batch * rows * others
    return Cost(flops=pairs * per_pair + pairs * m * per_term + batch * rows * m * max(others - 1, 0))


def pdist_backward(n: int, m: int, p: float) -> Cost:
    """The gradient of pdist(x (N, M)): the N(N-1)/2 pairs' scalars and terms as cdist's,
    then each of the N·M gradient elements sums the N - 1 signed terms of the pairs it
    is in (+ as the first vector, - as the second): N - 2 adds or subtracts."""
    per_term, per_pair = gradient_terms(p)
    if per_term == 0 or n < 2:
        return Cost()
    pairs = n * (n - 1) // 2
    return Cost(flops=pairs * per_pair + pairs * m * per_term + n * m * (n - 2))
