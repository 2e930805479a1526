"""Scaled dot-product attention. Pure function of shapes.

softmax(Q K^T * scale + mask) V for each of ``batch*heads`` heads, L queries,
S keys, head size E (queries/keys) and Ev (values). With grouped-query attention
the key/value heads are shared, which changes memory traffic, not arithmetic.

Dense (the default, and what the math and most fused kernels compute):
  Q K^T: L*S dot products of length E      -> L*S*(2E-1) FLOPs, L*S*E MACs
  scale: L*S multiplies;  mask: L*S adds (when a mask tensor is given)
  softmax: L rows of S                        -> L*(5S-2) FLOPs
  dropout (p > 0): 2 per score (mask draw, multiply)
  A V: L*Ev dot products of length S          -> L*Ev*(2S-1) FLOPs, L*S*Ev MACs
Causal, counted as needed (``causal="needed"``): query i sees keys 0..i (top-left
aligned, as torch's ``is_causal``); every term above uses the row lengths
min(i+1, S) instead of S.
"""

from __future__ import annotations

from ..cost import Cost


def _dot(length: int) -> int:
    """FLOPs of one dot product of ``length`` terms: 2n - 1, none for an empty one."""
    return 2 * length - 1 if length > 0 else 0


def causal_row_lengths_sum(queries: int, keys: int) -> int:
    """Sum over queries i < L of min(i+1, S): the scores a causal mask keeps."""
    full = min(queries, keys)
    return full * (full + 1) // 2 + max(queries - keys, 0) * keys


def causal_bottom_right_row_lengths_sum(queries: int, keys: int, window: int | None = None) -> int:
    """Sum over queries i < L of the keys a bottom-right causal mask keeps, min(S, S-L+i+1)
    clipped at 0: the last query sees all S keys (decode, chunked prefill after a cache of
    S-L tokens: L*(S-L) + L(L+1)/2 when L <= S). With a sliding ``window`` w a row keeps at
    most w keys: the sum of min(j, w) over j = S-L+1 .. S (prefill of T: w(w+1)/2 + (T-w) w)."""

    def up_to(m: int) -> int:  # sum of min(j, w) for j = 1 .. m
        if m <= 0:
            return 0
        if window is None or m <= window:
            return m * (m + 1) // 2
        return window * (window + 1) // 2 + (m - window) * window

    return up_to(keys) - up_to(keys - queries)


def attention(
    heads: int,
    queries: int,
    keys: int,
    head_dim: int,
    value_dim: int,
    *,
    masked: bool = False,
    dropout: bool = False,
    causal_needed: bool = False,
    bottom_right: bool = False,
    window: int | None = None,
) -> Cost:
    """Cost of softmax(Q K^T / sqrt(E) + mask) V over ``heads`` = batch*num_heads heads.
    ``bottom_right``: with ``causal_needed``, the causal mask is aligned to the last key
    (as serving engines and chunked prefill use it) instead of the first; ``window``: it
    also keeps at most that many keys per query (sliding-window attention)."""
    rows = queries
    if causal_needed and bottom_right:
        scores = causal_bottom_right_row_lengths_sum(queries, keys, window)
    else:
        scores = causal_row_lengths_sum(queries, keys) if causal_needed else queries * keys
    # Rows that see no key (S = 0; a bottom-right mask's first L - S rows when L > S) have
    # no softmax and no A V dot product: their -2 and -Ev terms would make a count negative.
    if keys == 0:
        rows = 0
    elif causal_needed and bottom_right:
        rows = min(queries, keys)
    qk_flops = scores * _dot(head_dim)
    pointwise = scores * (1 + int(masked) + 2 * int(dropout))
    softmax_flops = 5 * scores - 2 * rows
    av_flops = value_dim * (2 * scores - rows) if value_dim else 0
    macs = scores * (head_dim + value_dim)
    per_head = Cost(
        macs=macs,
        flops=qk_flops + pointwise + softmax_flops + av_flops,
        ptflops_macs=macs,
    )
    return per_head.scaled(heads)


def attention_backward(
    heads: int, queries: int, keys: int, head_dim: int, value_dim: int, *, causal_needed: bool = False
) -> Cost:
    """Gradients of softmax(Q K^T * scale) V from dO, per head (no recomputation counted):
    dV = P^T dO: S*Ev dots of length L;  dP = dO V^T: L*S dots of length Ev;
    D = rowsum(dO * O): L dots of length Ev;  dS = P * (dP - D) * scale: 3 per score;
    dQ = dS K: L*E dots of length S;  dK = dS^T Q: S*E dots of length L.
    Causal (``causal_needed``, top-left): the lengths are the kept scores per row and per
    column; key j is seen by L - j queries, so the S - L keys past the last query (L < S)
    have empty dV and dK dots (no FLOPs, not -1 each).
    MACs = 2*L*S*(E + Ev): the four contractions, twice the forward's. D is a reduction of
    an elementwise product (the math path computes the same sums as rowsum(dP * P) over the
    scores), so it is in the exact FLOPs but not in MACs: 2 x MACs of a training step is
    then exactly 3 x the forward's, as FlopCounterMode and PaLM's 6N + 12LHQT count it."""
    scores = causal_row_lengths_sum(queries, keys) if causal_needed else queries * keys
    if scores == 0:  # no key or no query: every gradient is a fill, no arithmetic
        return Cost()
    rows = queries  # every row keeps a key (S >= 1)
    cols = min(queries, keys) if causal_needed else keys  # the keys some query sees
    macs = 2 * scores * (head_dim + value_dim)
    flops = (
        value_dim * (2 * scores - cols)  # dV
        + scores * _dot(value_dim)  # dP
        + rows * _dot(value_dim)  # D
        + 3 * scores  # dS
        + head_dim * (2 * scores - rows)  # dQ
        + head_dim * (2 * scores - cols)  # dK
    )
    return Cost(macs=macs, flops=flops, ptflops_macs=macs).scaled(heads)
