"""Recurrent cells (RNN, LSTM, GRU), per token, per layer, per direction.

Shapes: input size I, hidden size H. Gates: G = 1 (RNN), 4 (LSTM), 3 (GRU).
Input and hidden projections are G*H dot products of length I and of length H:
MACs = G*H*(I + H). FLOPs of the projections: G*H*(2I-1) + G*H*(2H-1), and with
biases each bias is one more add (G*H*2I + G*H*2H). Then, per the cell's equations
(sigmoid 3, tanh 1, relu 1 FLOP per element, as in elementwise.py):

RNN:  h' = act(W x + b + U h + c)      sum of projections H, act H
LSTM: i,f,g,o = gates;  sum 4H, 3 sigmoids 9H, tanh(g) H, c' = f*c + i*g 3H,
      h' = o * tanh(c') 2H                                   -> 19H with biases
GRU:  r = sig(a_r + b_r) 4H; z = sig(a_z + b_z) 4H; n = tanh(a_n + r*b_n) 3H;
      h' = n + z*(h - n) 3H                                  -> 14H with biases
Without biases each projection loses G*H adds (2*G*H per token).
A projection (LSTM proj_size P) adds P dot products of length H.
These equal the sum of the aten ops torch's unfused cells run, so fused (mkldnn,
cuDNN) and unfused paths give the same numbers.
"""

from __future__ import annotations

from ..cost import Cost

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
CELL_POINTWISE = {"rnn_tanh": 2, "rnn_relu": 2, "lstm": 19, "gru": 14}
# ptflops' per-step extras beyond the projections and biases (its rnn_flops rule):
# RNN H; GRU H + 3H + 3H; LSTM 4H + 3H + 3H.
PTFLOPS_EXTRA = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 10, "gru": 7}


def recurrent_step(mode: str, input_size: int, hidden_size: int, *, bias: bool, proj_size: int = 0) -> Cost:
    """One token through one cell (one layer, one direction)."""
    gates = GATES[mode] * hidden_size
    macs = gates * (input_size + hidden_size)
    flops = 2 * macs + CELL_POINTWISE[mode] * hidden_size - (0 if bias else 2 * gates)
    ptflops = macs + PTFLOPS_EXTRA[mode] * hidden_size + (2 * gates if bias else 0)
    if proj_size:
        macs += proj_size * hidden_size
        flops += proj_size * (2 * hidden_size - 1)
        ptflops += proj_size * hidden_size
    return Cost(macs=macs, flops=flops, ptflops_macs=ptflops)


def fused_cell_pointwise(rows: int, mode: str, hidden_size: int, *, bias: bool) -> Cost:
    """The pointwise half of a fused LSTM/GRU cell (CUDA's _thnn_fused_*_cell), which
    receives the two bias-free projections: their sum, both biases (2*G*H adds when
    given) and the cell equations. Adds up with the two ``mm`` to recurrent_step."""
    gates = GATES[mode] * hidden_size
    flops = CELL_POINTWISE[mode] * hidden_size + (2 * gates if bias else 0)
    return Cost(flops=rows * flops)
