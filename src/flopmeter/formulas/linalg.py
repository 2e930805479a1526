"""Dense linear algebra done by factorization (LU, Cholesky) and triangular solves:
``torch.linalg`` det, slogdet, inv, solve, lu_factor, lu, lu_solve, cholesky,
cholesky_solve, solve_triangular; since probe 14 also Householder QR (qr, geqrf,
householder_product, ormqr), LDL^T (ldl_factor, ldl_solve), cholesky_inverse, lstsq,
matrix_exp, and the iterative decompositions (svd, eigh, eig, pinv), whose counts are
textbook estimates (below). Pure functions of sizes.

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

from fractions import Fraction
from math import floor

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


# ------------------------------------------------------------------ orthogonal factorizations
# Householder QR and the routines around it are direct (not iterative): LAPACK Working
# Note 41's operation counts (those of LAPACK's timing routine dopla.f), multiplications
# (divides and square roots among them) plus additions, lower-order terms included. MACs:
# the additions, each paired with a multiplication in the reflectors' dot products and
# updates (LU's MACs above are LAWN 41's getrf additions too). Complex values: LAWN 41's
# complex count, 6 real FLOPs a multiplication and 2 an addition (complex_values.lawn41).


def _whole(value: Fraction) -> int:
    """A count given by a polynomial with fractions, rounded to the nearest integer."""
    return floor(value + Fraction(1, 2))


def _lawn41(mults: Fraction, adds: Fraction, batch: int) -> Cost:
    """Cost of ``batch`` calls counted by LAWN 41: FLOPs = mults + adds, MACs = adds."""
    macs = _whole(adds)
    return Cost(macs=batch * macs, flops=batch * (_whole(mults) + macs))


def geqrf(rows: int, cols: int, batch: int = 1) -> Cost:
    """Householder QR (geqrf) of ``batch`` m x n matrices, LAWN 41. m >= n: mults
    mn^2 - n^3/3 + mn + n^2/2 + 23n/6, adds mn^2 - n^3/3 + n^2/2 + 5n/6 (2mn^2 - 2n^3/3 to
    leading order); m < n: mults nm^2 - m^3/3 + 2nm - m^2/2 + 23m/6, adds
    nm^2 - m^3/3 + nm - m^2/2 + 5m/6."""
    if rows <= 0 or cols <= 0:
        return Cost()
    m, n = Fraction(rows), Fraction(cols)
    if rows >= cols:
        mults = m * n * n - n**3 / 3 + m * n + n * n / 2 + Fraction(23, 6) * n
        adds = m * n * n - n**3 / 3 + n * n / 2 + Fraction(5, 6) * n
    else:
        mults = n * m * m - m**3 / 3 + 2 * n * m - m * m / 2 + Fraction(23, 6) * m
        adds = n * m * m - m**3 / 3 + n * m - m * m / 2 + Fraction(5, 6) * m
    return _lawn41(mults, adds, batch)


def orgqr(rows: int, cols: int, reflectors: int, batch: int = 1) -> Cost:
    """Forming the m x n matrix Q of ``reflectors`` = k Householder reflectors (orgqr,
    ``householder_product``), LAWN 41: mults 2mnk - (m + n)k^2 + 2k^3/3 + 2nk - k^2 - 5k/3,
    adds 2mnk - (m + n)k^2 + 2k^3/3 + nk - mk + k/3 (square n = k: 4n^3/3)."""
    if rows <= 0 or cols <= 0 or reflectors <= 0:
        return Cost()
    m, n, k = Fraction(rows), Fraction(cols), Fraction(reflectors)
    common = 2 * m * n * k - (m + n) * k * k + 2 * k**3 / 3
    mults = common + 2 * n * k - k * k - Fraction(5, 3) * k
    adds = common + n * k - m * k + k / 3
    return _lawn41(mults, adds, batch)


def ormqr(rows: int, cols: int, reflectors: int, batch: int = 1, *, left: bool = True) -> Cost:
    """Applying k = ``reflectors`` Householder reflectors to an m x n matrix C (ormqr),
    LAWN 41. From the left: mults kn(2m + 2 - k), adds kn(2m + 1 - k); from the right:
    mults k(m(2n - k) + m + n + (1 - k)/2), adds km(2n + 1 - k)."""
    if rows <= 0 or cols <= 0 or reflectors <= 0:
        return Cost()
    m, n, k = Fraction(rows), Fraction(cols), Fraction(reflectors)
    if left:
        mults, adds = k * n * (2 * m + 2 - k), k * n * (2 * m + 1 - k)
    else:
        mults, adds = k * (m * (2 * n - k) + m + n + (1 - k) / 2), k * m * (2 * n + 1 - k)
    return _lawn41(mults, adds, batch)


def qr(rows: int, cols: int, batch: int = 1, *, mode: str = "reduced") -> Cost:
    """``linalg_qr``: geqrf of A, then (unless ``mode='r'``) orgqr for Q from its
    k = min(m, n) reflectors: m x k for 'reduced', m x m for 'complete'."""
    work = geqrf(rows, cols, batch)
    if mode == "r":
        return work
    k = min(rows, cols)
    return work + orgqr(rows, rows if mode == "complete" else k, k, batch)


def sytrf(n: int, batch: int = 1) -> Cost:
    """LDL^T with Bunch-Kaufman pivoting (sytrf, ``ldl_factor``), LAWN 41: mults
    n^3/6 + n^2/2 + 10n/3, adds (n^3 - n)/6. Which pivots are 2 x 2 depends on the values;
    LAWN 41's count is that of 1 x 1 pivots."""
    if n <= 0:
        return Cost()
    size = Fraction(n)
    return _lawn41(size**3 / 6 + size * size / 2 + Fraction(10, 3) * size, (size**3 - size) / 6, batch)


def sytrs(n: int, rhs: int) -> Cost:
    """sytrs (``ldl_solve``), LAWN 41: per right-hand side n^2 mults, n(n - 1) adds."""
    return Cost(macs=rhs * n * (n - 1), flops=rhs * (2 * n * n - n))


def potri(n: int, batch: int = 1) -> Cost:
    """The inverse from a Cholesky factor (potri, ``cholesky_inverse``), LAWN 41: mults
    n^3/3 + n^2 + 2n/3, adds n^3/3 - n^2/2 + n/6."""
    if n <= 0:
        return Cost()
    size = Fraction(n)
    mults = size**3 / 3 + size * size + Fraction(2, 3) * size
    adds = size**3 / 3 - size * size / 2 + size / 6
    return _lawn41(mults, adds, batch)


# ---------------------------------------------------------------- iterative decompositions
# The SVD and the eigendecompositions iterate until the values converge, so no count is
# exact: these are the textbook leading-order estimates of Golub & Van Loan, "Matrix
# Computations", 4th ed. (Fig. 8.6.1 for the SVD, Sec. 8.3 for the symmetric QR algorithm,
# Sec. 7.5.6 for the general one), per matrix, rounded to an integer. MACs: half of them
# (their leading work is Householder and Givens updates, multiply-add pairs).


def _estimate(flops: Fraction, batch: int) -> Cost:
    whole = _whole(flops)
    return Cost(macs=batch * (whole // 2), flops=batch * whole)


def svd(rows: int, cols: int, batch: int = 1, *, vectors: bool = True, full: bool = False) -> Cost:
    """SVD of ``batch`` m x n matrices, with M = max(m, n) >= N = min(m, n) (a wide matrix
    is decomposed as its transpose): the cheaper of Golub-Reinsch and R-SVD (QR first;
    LAPACK's drivers switch to it at M of about 1.6N to 1.8N), Golub & Van Loan Fig. 8.6.1.
    Values only: min(4MN^2 - 4N^3/3, 2MN^2 + 2N^3). With the thin vectors (M x N and
    N x N): min(14MN^2 + 8N^3, 6MN^2 + 20N^3). With the full ones (``full_matrices``, M x M;
    or M = N): min(4M^2N + 8MN^2 + 9N^3, 4M^2N + 22N^3)."""
    big, small = Fraction(max(rows, cols)), Fraction(min(rows, cols))
    if small == 0:
        return Cost()
    if not vectors:
        flops = min(4 * big * small**2 - 4 * small**3 / 3, 2 * big * small**2 + 2 * small**3)
    elif full or big == small:
        flops = min(
            4 * big**2 * small + 8 * big * small**2 + 9 * small**3, 4 * big**2 * small + 22 * small**3
        )
    else:
        flops = min(14 * big * small**2 + 8 * small**3, 6 * big * small**2 + 20 * small**3)
    return _estimate(flops, batch)


def eigh(n: int, batch: int = 1, *, vectors: bool = True) -> Cost:
    """Symmetric (Hermitian) eigendecomposition, tridiagonalization + symmetric QR
    (Golub & Van Loan Sec. 8.3): eigenvalues only 4n^3/3, with eigenvectors 9n^3."""
    size = Fraction(n)
    return _estimate(9 * size**3 if vectors else 4 * size**3 / 3, batch) if n > 0 else Cost()


def eig(n: int, batch: int = 1, *, vectors: bool = True) -> Cost:
    """General eigendecomposition, Hessenberg reduction + Francis QR (Golub & Van Loan
    Sec. 7.5.6): eigenvalues only 10n^3, with the Schur vectors (geev's eigenvectors come
    from them) 25n^3."""
    return _estimate(Fraction((25 if vectors else 10) * n**3), batch) if n > 0 else Cost()


def matrix_exp(n: int, batch: int = 1) -> Cost:
    """``linalg_matrix_exp`` as torch computes it (Bader, Blanes & Casas's degree-18 Taylor
    polynomial with scaling and squaring), per n x n matrix: the 1-norm |A|_1 (|a| n^2,
    column sums n(n - 1), their max n - 1: 2n^2 - 1),
    s = ceil(log2(|A|_1 / theta_18)) and 2^s (5), A / 2^s (n^2), then T18: 5 matrix products
    (A^2, A^3, A^6 and two more, each n^2(2n - 1)), 5 linear combinations of
    I, A, A^2, A^3, A^6 (9 per element each, 45n^2) and 3 matrix adds (3n^2):
    10n^3 + 46n^2 + 4, 5n^3 MACs. An estimate: the degree and the squarings depend on the
    values: the path taken for theta_12 < |A|_1 <= theta_18 (float32 1.46..3.01, float64
    0.30..1.09; the few compares per matrix that pick it are not counted);
    a smaller norm takes a lower degree (fewer products), a larger one s squarings more
    (n^2(2n - 1) each). n = 1: one exp."""
    if n <= 0:
        return Cost()
    if n == 1:
        return Cost(flops=batch)
    return Cost(macs=batch * 5 * n**3, flops=batch * (10 * n**3 + 46 * n * n + 4))


def pinv(rows: int, cols: int, batch: int = 1, *, hermitian: bool = False) -> Cost:
    """``linalg_pinv`` as torch computes it, per m x n matrix, k = min(m, n): the thin SVD
    (estimate above), the tolerance max(atol, rtol * s_max) (2), s > tol, 1/s and the where
    (3k), V * diag(1/s) (nk) and that times U^H (n x k @ k x m: nm(2k - 1), nmk MACs).
    ``hermitian``: eigh with vectors instead, |w| (n), its max (n - 1), the tolerance (2),
    the 3n above, U * diag(1/w) (n^2) and that times U^H (n^2(2n - 1), n^3 MACs)."""
    if rows <= 0 or cols <= 0:
        return Cost()
    if hermitian:
        n = cols
        tail = n + (n - 1) + 2 + 3 * n + n * n + n * n * (2 * n - 1)
        return eigh(n, batch) + Cost(macs=batch * n**3, flops=batch * tail)
    k = min(rows, cols)
    tail = 2 + 3 * k + cols * k + cols * rows * (2 * k - 1)
    return svd(rows, cols, batch) + Cost(macs=batch * cols * rows * k, flops=batch * tail)


def lstsq(rows: int, cols: int, rhs: int, batch: int = 1, *, driver: str | None = None) -> Cost:
    """``linalg_lstsq`` of ``batch`` m x n systems with ``rhs`` right-hand sides each,
    M = max(m, n), K = min(m, n). 'gels', 'gelsy' (the CPU default) and None: Householder QR
    of A (of A^T when m < n), Q^T applied to B, a triangular solve: geqrf(M, K) +
    ormqr(M, rhs, K) + K^2 per right-hand side (gelsy's column pivoting and a rank-deficient
    A's extra factorization are not counted). 'gelsd', 'gelss': the thin SVD (estimate
    above), U^T B (K rhs (2m - 1)), the divides by the singular values (K rhs) and V times
    that (n rhs (2K - 1))."""
    if rows <= 0 or cols <= 0:
        return Cost()
    big, small = max(rows, cols), min(rows, cols)
    if driver in ("gelsd", "gelss"):
        flops = small * rhs * (2 * rows - 1) + small * rhs + cols * rhs * (2 * small - 1)
        macs = small * rhs * rows + cols * rhs * small
        return svd(rows, cols, batch) + Cost(macs=batch * macs, flops=batch * flops)
    return geqrf(big, small, batch) + ormqr(big, rhs, small, batch) + triangular_solve(small, batch * rhs)
