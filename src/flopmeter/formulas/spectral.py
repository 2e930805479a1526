"""Fourier transforms (torch.fft, torch.stft, ONNX DFT/STFT). Pure functions of sizes.

Conventions (docs/formulas.md, "Fourier transforms"):
- A complex transform of length n costs 5·n·log2(n) real FLOPs: radix-2 Cooley-Tukey's
  n/2·log2(n) butterflies, each a complex multiply (6) and two complex adds (4): the
  "mflops" figure of FFTW's benchFFT (fftw.org/speed/method.html). A real-input
  (r2c) or real-output (c2r) transform costs half: 2.5·n·log2(n).
- Lengths that are not powers of 2 use the same formula with the real-valued log2 (the
  benchFFT convention; the true count depends on the factorization: mixed radix,
  Rader, Bluestein). A call's total is rounded to the nearest integer once.
- A multi-dimensional transform is the row-column algorithm (pocketfft, torch's CPU
  backend, runs it; the ONNX exporter writes it out): each transformed dim's 1-d
  transforms, times the other elements. For a complex transform this equals 5·N·log2(N), N = ∏ n_d. A
  real transform does the last dim as a real transform (2.5·n·log2 n per row), and the
  other dims as complex transforms of the half spectrum (n_last//2 + 1 columns).
- Normalization (``norm="ortho"``, ``"forward"``, or an inverse's default 1/n): one real
  multiply per real number of the signal (the time-domain side): N for a real transform,
  2·N for a complex one. The scale itself is computed once (not counted).
- Outputs filled by conjugate symmetry (``torch.fft.fft`` of a real input returns the
  full spectrum of a one-sided transform) are copies: 0 FLOPs, their bytes counted.
- MACs: 0. An FFT is not a contraction: its butterflies are twiddle multiplies and adds
  that do not pair into multiply-accumulates (a radix-2 butterfly is 4 real multiplies
  and 6 real adds), so, like every non-contraction op, its work is FLOPs only. (The
  dense DFT it replaces, an n×n complex matmul, would be n² complex MACs.)
"""

from __future__ import annotations

from collections.abc import Sequence
from math import floor, log2, prod

from ..cost import Cost

# Real FLOPs per n·log2(n) of one complex 1-d transform of length n (radix-2 count).
COMPLEX_PER_N_LOG2_N = 5.0
# A real-input or real-output transform: half of the complex one.
REAL_PER_N_LOG2_N = 2.5


def one_dim(n: int, *, real: bool) -> float:
    """Real FLOPs of one 1-d transform of length ``n``: 5·n·log2(n), half when real."""
    if n <= 1:
        return 0.0
    return (REAL_PER_N_LOG2_N if real else COMPLEX_PER_N_LOG2_N) * n * log2(n)


def fft(lengths: Sequence[int], batch: int, *, real: bool, normalized: bool) -> Cost:
    """A transform over the dims of ``lengths`` (the signal's sizes, time-domain side; for
    a real transform the last one is the real dim), ``batch`` = the product of the other
    dims. Complex: Σ_d 5·n_d·log2(n_d)·(N/n_d)·batch, N = ∏ n_d. Real: the last dim
    2.5·n_L·log2(n_L)·(N/n_L)·batch, then every other dim d a complex transform on the
    half spectrum, 5·n_d·log2(n_d)·(N/n_d/n_L·(n_L//2 + 1))·batch. Normalized: + N·batch
    (real) or 2·N·batch (complex) multiplies. The total is rounded once."""
    if not lengths or batch <= 0:
        return Cost()
    signal = prod(lengths)
    if signal == 0:
        return Cost()
    if real:
        last = lengths[-1]
        half = signal // last * (last // 2 + 1)  # the complex half spectrum's elements
        flops = one_dim(last, real=True) * (signal // last)
        flops += sum(one_dim(n, real=False) * (half // n) for n in lengths[:-1])
    else:
        flops = sum(one_dim(n, real=False) * (signal // n) for n in lengths)
    scaling = signal * (1 if real else 2) if normalized else 0
    return Cost(flops=floor(flops * batch + 0.5) + scaling * batch)


def stft(frames: int, n_fft: int, *, real: bool, windowed: bool) -> Cost:
    """``frames`` frames (batch included) of ``n_fft`` samples: the window's multiply per
    sample (1, an elementwise op; 2 for a complex sample, a + bi times a real w, as
    ``aten.mul`` counts it), then one 1-d transform per frame (real for a real signal).
    torch.stft runs this as a ``mul`` and an ``_fft_r2c``/``_fft_c2c``; ONNX as one STFT node."""
    window = frames * n_fft * (1 if real else 2) if windowed else 0
    return fft((n_fft,), frames, real=real, normalized=False) + Cost(flops=window)


# FLOPs per element of torch's window functions (w[k], k = 0..N-1, t = 2πk/(N-1) or /N
# when periodic, its constant computed once):
WINDOW_PER_ELEMENT = {
    "hann_window": 4,  # 0.5 - 0.5·cos(t): mul, cos, mul, sub
    "hamming_window": 4,  # α - β·cos(t): mul, cos, mul, sub
    "bartlett_window": 4,  # 1 - |2k/(N-1) - 1|: mul, sub, abs, sub
    "blackman_window": 8,  # 0.42 - 0.5·cos(t) + 0.08·cos(2t): 2 angles, 2 cos, 2 mul, sub, add
    "kaiser_window": 8,  # i0(β·sqrt(1 - ((k - a)/a)²)) / i0(β): sub, div, square, sub, sqrt, mul, i0, div
}


def overlap_add(rows: int, frames: int, size: int, step: int) -> Cost:
    """Summing ``frames`` windows of ``size`` placed ``step`` apart back into one signal
    per row (istft's overlap-add, the backward of ``Tensor.unfold``): each covered
    position sums the windows over it, (contributions - positions covered) adds per row:
    frames·size - ((frames-1)·step + size) when the windows overlap (step < size), else 0."""
    if frames <= 0 or size <= 0 or step >= size:
        return Cost()
    covered = (frames - 1) * step + size
    return Cost(flops=rows * (frames * size - covered))
