"""Arithmetic on complex values, in real FLOPs. Pure functions of counts.

Convention (docs/conventions.md "Complex numbers", docs/formulas.md "Complex values"):
every count is real arithmetic on the real and imaginary parts, by the textbook
definitions, with z = a + bi, w = c + di:

- complex add: 2 real adds; complex multiply: 4 real multiplies + 2 real adds = 6;
  a complex MAC is therefore 4 real MACs (8 real FLOPs): ``MACs`` are real MACs.
- a real operand is not promoted: (a + bi)·c is 2 real multiplies, (a + bi) + c is 1
  real add (the imaginary part is copied), as a hand count writes them.
- an FFT is already counted in real FLOPs (formulas/spectral.py), and so is every op
  whose formula was written for complex values (``polar``, ``angle``, ``conj_physical``).
"""

from __future__ import annotations

from ..cost import Cost

# A complex MAC in real MACs: (a + bi)(c + di) = (ac - bd) + (ad + bc)i, 4 real products.
REAL_MACS_PER_COMPLEX_MAC = 4
# Real FLOPs of the complex operations of two complex operands.
ADD = 2  # (a + c) + (b + d)i
MUL = 6  # ac - bd, ad + bc: 4 multiplies, 2 adds
DIV = 11  # ((ac + bd) + (bc - ad)i) / (c² + d²): 6 multiplies, 3 adds, 2 divides

# FLOPs per output element of elementwise ops of two operands on complex values:
# (one operand complex and the other real, both complex).
BINARY: dict[str, tuple[int, int]] = {
    "add": (1, ADD),  # z + c: a + c only; z + w: 2
    "sub": (1, ADD),
    "rsub": (1, ADD),
    "mul": (2, MUL),  # z·c: ac, bc; z·w: 6
    "div": (2, DIV),  # z / c: a/c, b/c (c / w: REAL_OVER_COMPLEX_DIV); z / w: 11
    "eq": (3, 3),  # a == c and b == d: 2 compares, and
    "ne": (3, 3),
}
# FLOPs per output element of elementwise functions of one complex value z = a + bi.
UNARY: dict[str, int] = {
    "neg": 2,  # -a, -b
    "abs": 4,  # sqrt(a² + b²): 2 multiplies, 1 add, 1 sqrt
    "sign": 6,  # sgn(z) = z / |z|: abs (4), 2 divides (z = 0 a branch, not counted)
    "exp": 5,  # e^a·(cos b + i sin b): exp, cos, sin, 2 multiplies
    "log": 6,  # log(a² + b²)/2 + i·atan2(b, a): 2 multiplies, add, log, multiply, atan2
    # sqrt((|z| + a)/2) + i·sign(b)·sqrt((|z| - a)/2): abs (4), add, sub, 2 mul, 2 sqrt, copysign
    "sqrt": 11,
    "reciprocal": 6,  # (a - bi) / (a² + b²): 2 multiplies, add, 2 divides, negate
    "square": MUL,  # z·z, as torch computes it
    "isnan": 3,  # a or b NaN: 2 tests, or
    "isinf": 3,
    "expm1": 6,  # exp (5), subtract the real 1 (1)
    "log1p": 7,  # add the real 1 (1), log (6)
    "log2": 8,  # log (6), times the real 1/ln 2 (2)
    "log10": 8,
    "rsqrt": 17,  # sqrt (11), reciprocal (6)
    "sin": 6,  # sin a·cosh b + i·cos a·sinh b: 4 functions, 2 multiplies
    "cos": 7,  # cos a·cosh b - i·sin a·sinh b: 4 functions, 2 multiplies, negate
    "sinh": 6,  # sinh a·cos b + i·cosh a·sin b
    "cosh": 6,  # cosh a·cos b + i·sinh a·sin b
    "tanh": 9,  # (sinh 2a + i·sin 2b) / (cosh 2a + cos 2b): 2 multiplies, 4 functions, add, 2 divides
    "sigmoid": 14,  # 1 / (1 + exp(-z)): negate (2), exp (5), add the real 1 (1), reciprocal (6)
}
# pow(base, exponent) = exp(exponent·log(base)), by which of the two are complex:
POW_COMPLEX_BASE = 13  # a real exponent p: log (6), p times it (2), exp (5)
POW_BOTH_COMPLEX = 17  # log (6), complex multiply (6), exp (5)
POW_COMPLEX_EXPONENT = 8  # a real base x > 0: ln x (1), times the exponent (2), exp (5)
# A complex base to these real exponents: torch's pow kernel does not take exp(p·log z) but
# copies (1), fills (0), or multiplies and divides (ATen's PowKernel: z·z, z·z·z, 1/z,
# 1/(z·z), sqrt, rsqrt), and so is counted (review 14: z.square(), z ** 2, was 13).
POW_SPECIAL_EXPONENTS: dict[float, int] = {
    0.0: 0,  # fill with 1
    1.0: 0,  # a copy
    2.0: UNARY["square"],  # z·z: 6
    3.0: 2 * MUL,  # z·z·z: 12
    -1.0: UNARY["reciprocal"],  # 6
    -2.0: MUL + UNARY["reciprocal"],  # 1/(z·z): 12
    0.5: UNARY["sqrt"],  # 11
    -0.5: UNARY["rsqrt"],  # 17
}
# A real numerator over a complex denominator: c / (c' + d'i) = c·(c' - d'i) / (c'² + d'²):
# 2 squares, add, 2 multiplies, 2 divides, negate.
REAL_OVER_COMPLEX_DIV = 8

# Reductions: each real add or multiply of the real formula becomes a complex one.
ADD_REDUCTIONS = frozenset({"sum", "nansum", "mean", "nanmean", "cumsum", "trace"})
MUL_REDUCTIONS = frozenset({"prod", "cumprod"})

# Ops whose formula already counts complex values in real FLOPs (or that do no arithmetic
# on them: a select, a fill, a copy): left as they are.
ALREADY_REAL = frozenset(
    {
        "_fft_r2c",
        "_fft_c2r",
        "_fft_c2c",
        "polar",
        "angle",  # atan2(b, a): 1
        "_conj_physical",  # -b: 1 per complex element
        "conj_physical",
        "where",  # a select per element, of one value, complex or not
        "masked_fill",
    }
)
# Ops whose output is complex for a real input, computed in real arithmetic (a real
# matrix's eigenvalues come out complex from LAPACK's real geev): complex only when an
# input is.
COMPLEX_BY_INPUT = frozenset({"linalg_eig"})
# Ops counted by LAPACK Working Note 41 (formulas/linalg.py: MACs its additions): ``lawn41``.
LAWN41 = frozenset(
    {
        "linalg_qr",
        "geqrf",
        "linalg_householder_product",
        "ormqr",
        "linalg_ldl_factor_ex",
        "linalg_ldl_solve",
        "cholesky_inverse",
    }
)


def contraction(cost: Cost) -> Cost:
    """A contraction (matmul, einsum's bmm, linear, dot) of complex operands, from its real
    count: each complex MAC is 4 real MACs (4 multiplies, 2 adds of the product, 2 of the
    accumulate: 8 real FLOPs); every other FLOP of the real count (a dot product's adds,
    a bias add) is a complex add, 2 real. With the real count's M MACs and F FLOPs
    (M multiplies, F - M adds): MACs 4·M, FLOPs 6·M + 2·(F - M) = 4·M + 2·F; the ptflops
    view (M + bias adds) 4·M + 2·(P - M)."""
    macs = REAL_MACS_PER_COMPLEX_MAC * cost.macs
    return Cost(macs=macs, flops=6 * cost.macs + 2 * (cost.flops - cost.macs), ptflops_macs=_ptflops(cost))


def _ptflops(cost: Cost) -> int:
    """The ptflops view of a complex contraction from the real one's P: 4 real MACs per
    complex MAC it counts, 2 per complex bias add (P - M beyond the M MACs); P below M (0
    for the linear-algebra ops, which ptflops does not count) stays 4 per counted MAC, not
    a negative number of bias adds (review 14: a complex qr's ptflops view was 2·M, not 0)."""
    counted = min(cost.ptflops_macs, cost.macs)
    return REAL_MACS_PER_COMPLEX_MAC * counted + 2 * (cost.ptflops_macs - counted)


def lawn41(cost: Cost) -> Cost:
    """An op counted by LAPACK Working Note 41 (``LAWN41``: its MACs are LAWN 41's additions,
    its other FLOPs the multiplications, divides and roots among them) on complex values:
    LAWN 41's complex count, 6 real FLOPs a multiplication and 2 an addition; MACs 4 real
    MACs per complex multiply-add pair. (``contraction`` would weigh them the other way
    round: 6 per addition, 2 per multiplication.)"""
    adds, mults = cost.macs, cost.flops - cost.macs
    return Cost(
        macs=REAL_MACS_PER_COMPLEX_MAC * adds, flops=MUL * mults + ADD * adds, ptflops_macs=_ptflops(cost)
    )


def pointwise(
    elements: int, name: str, complex_operands: int = 1, *, real_over_complex: bool = False
) -> Cost:
    """``elements`` outputs of elementwise op ``name`` (a UNARY or BINARY key) with
    ``complex_operands`` (1 or 2) complex operands; a real numerator over a complex
    denominator (``real_over_complex``) costs REAL_OVER_COMPLEX_DIV."""
    if real_over_complex:
        per = REAL_OVER_COMPLEX_DIV
    elif name in BINARY:
        per = BINARY[name][min(complex_operands, 2) - 1]
    else:
        per = UNARY[name]
    return Cost(flops=elements * per)


def reduction(cost: Cost, name: str) -> Cost:
    """A sum / mean / cumsum (prod / cumprod) of complex values, from its real count: each
    add is a complex add (2), each multiply a complex multiply (6); a mean's divide by its
    (real) length is 2 real divides."""
    return Cost(flops=cost.flops * (MUL if name in MUL_REDUCTIONS else ADD))


def variance(outputs: int, length: int, *, sqrt: bool) -> Cost:
    """var / std of ``length`` complex terms (a real result, the mean of |z - mean|²): the
    complex mean (2·length), subtract (2·length), |.|² (a² + b²: 3·length), the real sum
    (length - 1) and divide (1): 8·length per output; std one sqrt more."""
    return Cost(flops=outputs * (8 * length + (1 if sqrt else 0)))


def vector_norm(outputs: int, length: int, order: float | None) -> Cost:
    """||z||_p of ``length`` complex terms per output: each term's |z|^p from its parts
    (p = 2: a² + b², 3; p = 0: z != 0, 3; p = 1 or inf: |z|, 4; other p: |z| then the
    power, 5), then as for real values the sum (or max) of the terms (length - 1) and the
    p-th root (1; none for p = 0, 1, inf)."""
    if not length:
        return Cost()
    p = 2.0 if order is None else abs(float(order))
    per_term = 3 if p in (0.0, 2.0) else 4 if p in (1.0, float("inf")) else 5
    root = 0 if p in (0.0, 1.0, float("inf")) else 1
    return Cost(flops=outputs * (per_term * length + length - 1 + root))
