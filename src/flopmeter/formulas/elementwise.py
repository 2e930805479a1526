"""Elementwise functions, activations and reductions. Pure functions of sizes.

Per-element costs (FLOPs per output element), one entry per function, documented
in docs/formulas.md. The rule: every arithmetic operation, comparison and
elementary function (exp, log, sqrt, rsqrt, sin, cos, tanh, erf, pow) is 1 FLOP;
a composite activation costs the operations of its definition.
"""

from __future__ import annotations

from math import ceil, log2

from ..cost import Cost

# FLOPs per output element, with the definition that gives the count.
PER_ELEMENT: dict[str, int] = {
    # arithmetic and comparison: 1 each
    "add": 1,
    "sub": 1,
    "rsub": 1,
    "mul": 1,
    "div": 1,
    "neg": 1,
    "abs": 1,
    "sign": 1,
    "reciprocal": 1,
    "remainder": 1,
    "fmod": 1,
    "floor_divide": 1,
    "square": 1,
    "maximum": 1,
    "minimum": 1,
    "eq": 1,
    "ne": 1,
    "lt": 1,
    "le": 1,
    "gt": 1,
    "ge": 1,
    "logical_not": 1,
    "logical_and": 1,
    "logical_or": 1,
    "bitwise_not": 1,
    "bitwise_and": 1,
    "bitwise_or": 1,
    "where": 1,
    "masked_fill": 1,
    "floor": 1,
    "ceil": 1,
    "round": 1,
    "trunc": 1,
    "isnan": 1,
    "isinf": 1,
    "lerp": 3,  # a + w*(b - a): sub, mul, add
    "addcmul": 2,
    "addcdiv": 2,  # a + v*(b*c): mul, add (v == 1)
    # elementary functions: 1 each
    "exp": 1,
    "exp2": 1,
    "expm1": 1,
    "log": 1,
    "log2": 1,
    "log10": 1,
    "log1p": 1,
    "sqrt": 1,
    "rsqrt": 1,
    "sin": 1,
    "cos": 1,
    "tan": 1,
    "tanh": 1,
    "erf": 1,
    "erfc": 1,
    "erfinv": 1,
    "atan": 1,
    "atan2": 1,
    "asin": 1,
    "acos": 1,
    "sinh": 1,
    "cosh": 1,
    "pow": 1,
    "asinh": 1,
    "acosh": 1,
    "atanh": 1,
    "lgamma": 1,  # special functions (distributions' log-densities, windows): 1 each, as erf
    "digamma": 1,
    "polygamma": 1,
    "i0": 1,
    "special_i0e": 1,
    "special_i1": 1,
    "special_i1e": 1,
    "special_ndtri": 1,
    "special_log_ndtr": 1,
    "special_erfcx": 1,
    # probe 13: the rest of torch.special's functions of one argument (and the incomplete
    # gamma and zeta of two), 1 each like the above; entr -x*log(x) with its x > 0 test: 4
    "igamma": 1,
    "igammac": 1,
    "special_zeta": 1,
    "special_bessel_j0": 1,
    "special_bessel_j1": 1,
    "special_bessel_y0": 1,
    "special_bessel_y1": 1,
    "special_modified_bessel_i0": 1,
    "special_modified_bessel_i1": 1,
    "special_modified_bessel_k0": 1,
    "special_modified_bessel_k1": 1,
    "special_scaled_modified_bessel_k0": 1,
    "special_scaled_modified_bessel_k1": 1,
    "special_spherical_bessel_j0": 1,
    "special_airy_ai": 1,
    "special_entr": 4,
    # more comparisons and composites, by their definitions
    "fmax": 1,
    "fmin": 1,
    "copysign": 1,
    "signbit": 1,
    "xlogy": 2,  # x * log(y) (the x == 0 branch is a value's, not counted)
    "special_xlog1py": 2,  # x * log1p(y)
    "logaddexp": 7,  # max(a, b) + log1p(exp(-|a - b|)): sub, abs, neg, exp, log1p, max, add
    "logaddexp2": 8,  # the same in base 2: exp2, and log1p(.) / ln 2 one more multiply
    "hypot": 4,  # sqrt(a*a + b*b)
    "sinc": 3,  # sin(pi*x) / (pi*x): mul, sin, divide
    "frac": 2,  # x - trunc(x)
    "frexp": 1,  # x = m * 2^e: one elementary function, its two results from the float's fields
    "ldexp": 2,  # x * 2^other: pow(2, other), multiply (torch's own decomposition)
    "nan_to_num": 3,  # isnan, x == +inf, x == -inf: each a compare and select
    "heaviside": 1,  # x == 0 ? v : x > 0
    "deg2rad": 1,
    "rad2deg": 1,
    "angle": 1,  # atan2(imag, real) (a real input: a compare)
    "_conj_physical": 1,  # negate the imaginary part: 1 per complex element
    "conj_physical": 1,
    "polar": 4,  # r*cos(t), r*sin(t)
    "linalg_cross": 3,  # per output element a*b - c*d: 2 multiplies, 1 subtract
    # probe 14 (the OpInfo sweep listed them unsupported): one logical, test or step each
    "logical_xor": 1,
    "isposinf": 1,  # x == +inf
    "isneginf": 1,  # x == -inf
    "nextafter": 1,  # the next float from x towards y: a compare and a step of the bits
    # activations, by their definitions
    "relu": 1,  # max(x, 0)
    "threshold": 1,  # x > t ? x : v
    "hardtanh": 2,  # min(max(x, lo), hi); ReLU6 is hardtanh(0, 6)
    "clamp": 2,  # min and max (1 when one bound is None, see clamp_cost)
    "leaky_relu": 2,  # compare, multiply
    "prelu": 2,  # compare, multiply
    "_prelu_kernel": 2,
    "rrelu": 2,
    "elu": 4,  # x > 0 ? x : alpha*(exp(x) - 1): compare, exp, sub, mul (+1 per scale != 1: SELU)
    "celu": 5,  # elu with x/alpha: one more divide
    "selu": 5,  # scale * elu: one more multiply
    "sigmoid": 3,  # 1 / (1 + exp(-x)): exp, add, divide
    "log_sigmoid": 4,  # -log(1 + exp(-x)): exp, add, log, negate
    "log_sigmoid_forward": 4,
    "hardsigmoid": 4,  # min(max(x + 3, 0), 6) / 6: add, max, min, divide
    "hardswish": 5,  # x * hardsigmoid(x)
    "silu": 4,  # x * sigmoid(x)
    "mish": 5,  # x * tanh(log(1 + exp(x))): exp, add, log, tanh, mul
    "softplus": 4,  # beta*x > threshold ? x : log(1 + exp(x)): compare, exp, add, log; +2 (multiply, divide by beta) when beta != 1
    "softshrink": 2,
    "hardshrink": 2,
    "gelu": 5,  # 0.5 * x * (1 + erf(x / sqrt(2))): divide, erf, add, mul, mul
    "gelu_tanh": 9,  # 0.5x(1 + tanh(c(x + 0.044715 x^3))): 2 mul (x^3), mul, add, mul, tanh, add, mul, mul
    "glu": 4,  # a * sigmoid(b), per output element
    "dropout": 2,  # draw mask compare, multiply by mask * 1/(1-p)
    "native_dropout": 2,
}

# Results that cost nothing to compute: new tensors filled with constants or copies.
FILL_OPS = frozenset(
    {
        "zeros",
        "ones",
        "empty",
        "full",
        "zeros_like",
        "ones_like",
        "empty_like",
        "full_like",
        "fill",
        "zero",
        "new_zeros",
        "new_ones",
        "new_empty",
        "new_full",
        "scalar_tensor",
        "arange",
        "linspace",
        "eye",
        "empty_strided",
        "new_empty_strided",
        "empty_permuted",
    }
)


def pointwise(elements: int, per_element: int) -> Cost:
    """``elements`` outputs at ``per_element`` FLOPs each. No MACs.

    ptflops counts activations (ReLU family, GELU, SiLU) as one MAC per element and
    ignores other elementwise tensor ops; callers set ``ptflops_macs`` when it applies.
    """
    return Cost(flops=elements * per_element)


def reduction(outputs: int, length: int, *, per_output: int = 0) -> Cost:
    """``outputs`` reductions of ``length`` terms each: length-1 ops per output.

    ``per_output`` adds work done once per result (the divide of a mean: 1).
    sum / amax / prod / all: outputs*(length-1); mean: outputs*length.
    """
    if length == 0:
        return Cost()
    return Cost(flops=outputs * (length - 1 + per_output))


def variance(outputs: int, length: int, *, sqrt: bool = False) -> Cost:
    """Variance of ``length`` terms: mean (length), subtract (length), square (length),
    sum (length-1), divide (1) = 4*length per output; std adds one sqrt."""
    return Cost(flops=outputs * (4 * length + (1 if sqrt else 0)))


def weight_norm(numel: int, groups: int) -> Cost:
    """``w = g * v / ||v||`` with the norm taken over each of ``groups`` slices of ``v``
    (``numel`` elements in all): per slice of L elements, the norm is L squares, L-1 adds
    and a square root (2L), and ``g / norm`` one divide; then one multiply per element.
    Total 2*numel + groups + numel = 3*numel + groups."""
    return Cost(flops=3 * numel + groups)


def softmax_backward(rows: int, length: int) -> Cost:
    """The gradient of softmax over rows of ``length``: g*y - y*sum(g*y); of log_softmax:
    g - exp(y)*sum(g). 4n - 1 per row either way."""
    return Cost(flops=rows * (4 * length - 1))


def sort_comparisons(rows: int, length: int) -> Cost:
    """A comparison sort of ``rows`` rows of ``length``: n*ceil(log2 n) per row (an estimate)."""
    return Cost(flops=rows * length * ceil(log2(length)) if length > 1 else 0)


def binary_search(queries: int, length: int) -> Cost:
    """``bucketize`` / ``searchsorted``: each query's binary search among ``length`` sorted
    boundaries, ceil(log2(length + 1)) comparisons (the most it takes)."""
    return Cost(flops=queries * ceil(log2(length + 1)) if length > 0 else 0)


def unique(elements: int, *, consecutive: bool) -> Cost:
    """``torch.unique`` sorts (sort_comparisons) then compares neighbours (n - 1);
    ``unique_consecutive`` only compares neighbours."""
    neighbours = Cost(flops=max(elements - 1, 0))
    return neighbours if consecutive else sort_comparisons(1, elements) + neighbours


def renorm(slices: int, length: int) -> Cost:
    """``torch.renorm(x, p, dim, maxnorm)``: each of ``slices`` sub-tensors of ``length``
    elements has its p-norm (2L), a compare with maxnorm (1), a factor
    maxnorm / (norm + 1e-7) (2) and L multiplies: 3L + 3 each (every slice: which exceed
    maxnorm depends on values)."""
    return Cost(flops=slices * (3 * length + 3))


def weight_norm_backward(numel: int, groups: int) -> Cost:
    """The gradients of ``w = g * v / n`` (n = ||v|| per slice) from the weight's gradient dw,
    as torch's kernel computes them: per slice s = sum(dw * v) (L multiplies, L-1 adds),
    dg = s / n, c = dg / n, a = g / n (3); per element dv = a * (dw - v * c) (3).
    Total 5*numel + 2*groups."""
    return Cost(flops=5 * numel + 2 * groups)


def softmax(rows: int, length: int, *, log: bool = False) -> Cost:
    """Numerically stable softmax over rows of ``length``.

    softmax: max (n-1), subtract (n), exp (n), sum (n-1), divide (n) = 5n-2 per row.
    log_softmax: max (n-1), subtract (n), exp (n), sum (n-1), log (1), subtract (n) = 4n-1.
    ptflops counts one MAC per element for softmax.
    """
    per_row = 4 * length - 1 if log else 5 * length - 2
    return Cost(flops=rows * per_row, ptflops_macs=rows * length)


# One step of logcumsumexp, logaddexp(a, b) = max(a, b) + log1p(exp(-|a - b|)):
# max, sub, abs, negate, exp, log1p, add.
LOGADDEXP = 7


def cumulative(rows: int, length: int, *, per_step: int = 1) -> Cost:
    """cumsum / cumprod / cummax along rows of ``length``: length-1 steps per row of
    ``per_step`` FLOPs each (1; logcumsumexp LOGADDEXP)."""
    return Cost(flops=rows * max(length - 1, 0) * per_step)


# Backward of activations: FLOPs per input-gradient element, from the derivative.
PER_ELEMENT_BACKWARD: dict[str, int] = {
    "threshold_backward": 1,  # relu: g if x > 0 else 0
    "hardtanh_backward": 2,  # g if lo < x < hi: two compares
    "leaky_relu_backward": 2,  # compare, multiply
    "elu_backward": 3,  # compare, (y + alpha) * g
    "sigmoid_backward": 3,  # g * y * (1 - y)
    "tanh_backward": 3,  # g * (1 - y^2)
    "silu_backward": 8,  # s = sigmoid(x) (3); g * s * (1 + x * (1 - s)) (5)
    "gelu_backward": 11,  # cdf (4) + pdf exp(-x^2/2)/sqrt(2 pi) (4) + g * (cdf + x * pdf) (3)
    "hardswish_backward": 4,  # range compares, (2x + 3) / 6 * g
    "hardsigmoid_backward": 2,  # range compare, g / 6
    "softplus_backward": 4,  # g * sigmoid(beta * x)
    "log_sigmoid_backward": 4,
    "mish_backward": 12,  # tanh(softplus(x)) (4) and its derivative through sigmoid (8)
    "native_dropout_backward": 1,  # g * mask * scale (mask already scaled)
    "hardshrink_backward": 2,  # g unless -lambda <= x <= lambda: two compares
    "softshrink_backward": 2,  # the same test
    "rrelu_with_noise_backward": 1,  # training: g * noise (the slope drawn, or 1); eval: leaky_relu's 2
}


# torch.isclose's float ops per element, its ATen decomposition (what ``profile`` counts for
# torch.isclose itself): |a - b| (sub, abs), rtol*|b| + atol (mul, abs, add, over b's elements),
# isfinite(|a - b|) (x == x, |x|, != inf) and <= : 6 per element and 3 per element of b.
ISCLOSE_TOLERANCE = 6
ISCLOSE_TOLERANCE_OF_B = 3


def isclose(elements: int, a: int, b: int, floating: bool, tolerance: bool, equal_nan: bool) -> Cost:
    """torch.isclose over ``elements`` (the broadcast of ``a`` and ``b`` elements), the ops
    its decomposition runs: a == b (1 per element on floats; integers and bools: 0), with
    ``equal_nan`` isnan of each (a + b, floats only), and unless rtol = atol = 0 the
    tolerance test in float (ints and bools converted): 6 per element + 3 per element of b.
    ``allclose`` is this and an ``all`` over bools (0)."""
    flops = elements + (a + b if equal_nan else 0) if floating else 0
    if tolerance:
        flops += ISCLOSE_TOLERANCE * elements + ISCLOSE_TOLERANCE_OF_B * b
    return Cost(flops=flops)


def mvlgamma(elements: int, p: int) -> Cost:
    """``torch.mvlgamma(x, p)``, the log of the multivariate gamma function, as torch computes
    it: p arguments x - j/2 (j = 0..p-1, p adds), their lgamma (p), their sum (p - 1) and the
    constant p(p-1)/4 log(pi) (1): 3p per element."""
    return Cost(flops=elements * 3 * p)


def isin(elements: int, tests: int, *, assume_unique: bool) -> Cost:
    """``torch.isin(elements, test_elements)`` on the CPU, which picks its algorithm from the
    sizes (numpy's rule): with few tests (tests < int(10 * elements^0.145)) each element is
    compared with every test, elements * tests compares (the most: a match stops early);
    otherwise it sorts: unless ``assume_unique``, a ``torch.unique`` of each (sort +
    neighbour compares, ``unique``), then a sort of the n = elements + tests values
    concatenated and n - 1 neighbour compares."""
    if elements == 0:
        return Cost()
    if tests < int(10.0 * elements**0.145):
        return Cost(flops=elements * tests)
    both = elements + tests
    cost = sort_comparisons(1, both) + Cost(flops=both - 1)
    if not assume_unique:
        cost = cost + unique(elements, consecutive=False) + unique(tests, consecutive=False)
    return cost
