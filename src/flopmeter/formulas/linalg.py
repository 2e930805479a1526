"""Dense linear algebra done by factorization (LU, Cholesky) and triangular solves:
``torch.linalg`` det, slogdet, inv, solve, lu_factor, lu, lu_solve, cholesky,
cholesky_solve, solve_triangular. Pure functions of sizes.

The unblocked algorithms LAPACK's blocked ones reorder (the same operations), counted by
the rule of docs/formulas.md (every arithmetic operation and comparison 1 FLOP):

- LU with partial pivoting of an m x n matrix (getrf), step i = 1..min(m, n), r = m - i
  rows below the pivot, c = n - i columns right of it: the pivot search r + 1 magnitudes
  and r comparisons (none when r = 0), r divides (the multipliers), r*c multiply-subtracts
  (the trailing update). Square n: n(n-1)/2 + 2*S2 + n^2 - 1, S2 = (n-1)n(2n-1)/6,
  i.e. 2n^3/3 + n^2/2 - n/6 - 1 (LAPACK Working Note 41's 2n^3/3 - n^2/2 - n/6 plus the
  pivot search). Row swaps are data.
- A triangular solve of n unknowns per right-hand side: n(n-1)/2 multiply-subtracts and n
  divides (none with a unit diagonal): n^2 FLOPs (n^2 - n unit).
- Cholesky (potrf) of n x n: n square roots, n(n-1)/2 divides, (n^3 - n)/6
  multiply-subtracts: n^3/3 + n^2/2 + n/6.

MACs: the multiply-subtract pairs (the trailing updates and substitutions, which LAPACK's
blocked codes run as matrix products); the divides, roots and the pivot search are FLOPs
only. ptflops and FlopCounterMode count nothing for these ops (ptflops MACs 0).
"""

from __future__ import annotations

from ..cost import Cost


def lu(rows: int, cols: int, batch: int = 1, *, pivot: bool = True) -> Cost:
    """getrf of ``batch`` rows x cols matrices, with partial pivoting (or without: no pivot
    search, CUDA's ``pivot=False``)."""
    macs = flops = 0
    for step in range(1, min(rows, cols) + 1):
        below, right = rows - step, cols - step
        search = 2 * below + 1 if below and pivot else 0  # |a| of below + 1 candidates, below compares
        macs += below * right
        flops += search + below + 2 * below * right
    return Cost(macs=batch * macs, flops=batch * flops)


def lu_solve(n: int, rhs: int) -> Cost:
    """getrs: ``rhs`` right-hand sides (over the whole batch) through L (unit diagonal)
    and U: per right-hand side n(n-1) multiply-subtracts and n divides, n(2n - 1) FLOPs."""
    pairs = n * (n - 1)
    return Cost(macs=rhs * pairs, flops=rhs * (2 * pairs + n))


def triangular_solve(n: int, rhs: int, *, unit: bool = False) -> Cost:
    """trsm: ``rhs`` right-hand sides through one n x n triangle: per right-hand side
    n(n-1)/2 multiply-subtracts + n divides (0 with a unit diagonal)."""
    pairs = n * (n - 1) // 2
    return Cost(macs=rhs * pairs, flops=rhs * (2 * pairs + (0 if unit else n)))


def det(n: int, batch: int = 1) -> Cost:
    """``_linalg_det``: LU, then the product of U's diagonal (n - 1 multiplies) times the
    permutation's sign (1; the sign itself is integer work): LU + n."""
    return lu(n, n, batch) + Cost(flops=batch * n if n else 0)


def slogdet(n: int, batch: int = 1) -> Cost:
    """``_linalg_slogdet``: LU; sign = prod(sgn(diag U)) * the permutation's sign
    (n + n - 1 + 1); logabsdet = sum(log|diag U|) (n + n + n - 1): LU + 5n - 1."""
    return lu(n, n, batch) + Cost(flops=batch * (5 * n - 1) if n else 0)


def solve(n: int, rhs: int, batch: int = 1) -> Cost:
    """``_linalg_solve_ex`` / ``linalg_inv_ex``: LU of ``batch`` n x n matrices, then
    getrs for ``rhs`` right-hand sides (inv: n per matrix, the identity's columns; torch
    solves against the identity, zeros included)."""
    return lu(n, n, batch) + lu_solve(n, rhs)


def cholesky(n: int, batch: int = 1) -> Cost:
    """potrf of ``batch`` n x n matrices: n roots, n(n-1)/2 divides, (n^3 - n)/6
    multiply-subtracts."""
    pairs = (n**3 - n) // 6
    return Cost(macs=batch * pairs, flops=batch * (n + n * (n - 1) // 2 + 2 * pairs))


def cholesky_solve(n: int, rhs: int) -> Cost:
    """potrs: two triangular solves (L, then its transpose) per right-hand side: 2n^2."""
    return triangular_solve(n, rhs) + triangular_solve(n, rhs)
