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
A projection (LSTM proj_size P) feeds h of size P back: the hidden projection is G*H dot
products of length P (not H), and P dot products of length H make h from the cell output.
These equal the sum of the aten ops torch's unfused cells run, so fused (mkldnn,
cuDNN) and unfused paths give the same numbers.
"""

from __future__ import annotations

from ..cost import Cost
from .contraction import dot_products

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
CELL_POINTWISE = {"rnn_tanh": 2, "rnn_relu": 2, "lstm": 19, "gru": 14}
# ptflops' per-step extras beyond the projections and biases (its rnn_flops rule):
# RNN H; GRU H + 3H + 3H; LSTM 4H + 3H + 3H.
PTFLOPS_EXTRA = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 10, "gru": 7}


def recurrent_step(mode: str, input_size: int, hidden_size: int, *, bias: bool, proj_size: int = 0) -> Cost:
    """One token through one cell (one layer, one direction)."""
    gates = GATES[mode] * hidden_size
    state = proj_size or hidden_size  # the size of h fed back to the hidden projection
    macs = gates * (input_size + state)
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


# The pointwise part of one cell's gradient, per hidden unit, as autograd computes it through
# torch's unfused cells (sigmoid_backward and tanh_backward g*(1 - y*y) 3 each, relu's 1):
# LSTM: dh*tanh(c') 1, dh*o 1, tanh' 3, dc*c, dc*f, dc*g, dc*i 4, 3 sigmoid' 9,
#       tanh'(g) 3                                                            -> 21
# GRU:  dh*z 1, dh*(h - n) 1, dn = dh - dh*z 2, tanh' 3, da_n*hn 1, da_n*r 1,
#       2 sigmoid' 6                                                          -> 15
# RNN:  tanh' 3 (relu 1)
# A step that receives the state's gradient from the next step adds it to its own: 1 per unit
# of h (P with a projection), and of c for an LSTM. Every step but a sequence's last does;
# the last does when the caller passes a gradient for the final state (grad_hy, grad_cy).
CELL_POINTWISE_BACKWARD = {"rnn_tanh": 3, "rnn_relu": 1, "lstm": 21, "gru": 15}


def recurrent_backward(
    mode: str,
    input_size: int,
    hidden_size: int,
    tokens: int,
    *,
    bias: bool,
    proj_size: int = 0,
    weights: bool = True,
    sequences: int = 0,
    final_h_grad: bool = False,
    final_c_grad: bool = False,
) -> Cost:
    """The gradient of one layer in one direction over ``tokens`` tokens (sequence x batch),
    as the fused kernels (mkldnn_rnn_layer_backward, _cudnn_rnn_backward) compute it.

    Data gradients, per token: dx = dG·W_ih (I dot products of G*H), dh = dG·W_hh (S dot
    products of G*H, S = P or H), with a projection dh_cell = dh·W_hr (H dots of P); the cell's
    pointwise gradient (CELL_POINTWISE_BACKWARD); the adds of the state's gradient carried from
    the next step (S, and H for c), at all but the last step of each of the ``sequences``,
    and at the last too with ``final_h_grad`` / ``final_c_grad``.
    Weight gradients (``weights``): each weight a dot product over the tokens (2n - 1) and each
    bias vector (b_ih and b_hh) a sum over them (n - 1 adds per element).
    MACs: twice the forward's (data and weights each as many as the forward)."""
    gates = GATES[mode] * hidden_size
    state = proj_size or hidden_size
    cost = dot_products(tokens * (input_size + state), gates)
    if proj_size:
        cost += dot_products(tokens * hidden_size, proj_size)
    carried_h = tokens - sequences + (sequences if final_h_grad else 0)
    carried_c = tokens - sequences + (sequences if final_c_grad else 0) if mode == "lstm" else 0
    pointwise = tokens * CELL_POINTWISE_BACKWARD[mode] * hidden_size
    cost += Cost(flops=pointwise + carried_h * state + carried_c * hidden_size)
    if weights and tokens:
        cost += dot_products(gates * (input_size + state) + proj_size * hidden_size, tokens)
        if bias:
            cost += Cost(flops=2 * gates * (tokens - 1))
    return cost


def fused_cell_backward(rows: int, mode: str, hidden_size: int, *, bias: bool, next_c_grad: bool) -> Cost:
    """The pointwise half of a fused LSTM/GRU cell's gradient (CUDA's
    _thnn_fused_lstm_cell_backward_impl, _thnn_fused_gru_cell_backward): the gates' gradients
    from h's (CELL_POINTWISE_BACKWARD per unit; an LSTM adds the next step's gradient of c,
    1, when given) and the biases' sums over the rows (LSTM one, as b_ih and b_hh get the
    same; GRU two, its n gate's differ). The projections' gradients are separate mm ops."""
    per_unit = CELL_POINTWISE_BACKWARD[mode] + (1 if mode == "lstm" and next_c_grad else 0)
    gates = GATES[mode] * hidden_size
    sums = (1 if mode == "lstm" else 2) * gates * (rows - 1) if bias and rows else 0
    return Cost(flops=rows * hidden_size * per_unit + sums)
