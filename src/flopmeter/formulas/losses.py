"""Loss functions and their backward ops. Pure functions of sizes.

Conventions (docs/formulas.md, "Losses"):
- A loss of n elements (or n samples for nll) costs its per-element definition,
  then the reduction: 'none' nothing, 'sum' n-1 adds, 'mean' n-1 adds + 1 divide.
- A backward's 'mean' adds 1 FLOP: the scalar 1/n (or g/n), computed once.
- An elementwise weight is one multiply per element.
- Branches chosen by values (smooth L1 / Huber regions) are counted in the quadratic
  region, the one that does the arithmetic.
- nll: ``ignore_index`` depends on values and is ignored: every sample is counted (the
  most the call can do). Without class weights the mean's denominator is a count of
  targets (integer work, 0 FLOPs); with them it is the sum of the picked weights.
"""

from __future__ import annotations

from ..cost import Cost
from . import contraction, elementwise

# torch's reduction codes (at::Reduction).
NONE, MEAN, SUM = 0, 1, 2


def reduce(elements: int, reduction: int) -> int:
    """FLOPs of reducing ``elements`` losses: 'sum' n-1 adds, 'mean' one divide more."""
    if reduction == NONE or elements == 0:
        return 0
    return elements - 1 + (1 if reduction == MEAN else 0)


# FLOPs per element of each loss, by its definition (z = x - y).
LOSS_PER_ELEMENT: dict[str, int] = {
    "mse_loss": 2,  # z = x - y, z*z
    "huber_loss": 5,  # z, |z|, |z| < delta, 0.5 * z * z (2)
    "smooth_l1_loss": 6,  # z, |z|, |z| < beta, 0.5 * z * z / beta (3)
    # (t - 1) * max(log(1 - x), -100) - t * max(log(x), -100):
    # t-1, 1-x, log, max, mul, log, max, mul, sub
    "binary_cross_entropy": 9,
    # (1 - t) * x - log_sigmoid(x): sub, mul, log_sigmoid 4, sub
    "binary_cross_entropy_with_logits": 7,
    # log(1 + exp(-t * x)): mul, negate, exp, add, log
    "soft_margin_loss": 5,
}
# smooth L1 with beta == 0 is L1: z, |z|.
SMOOTH_L1_BETA_ZERO = 2
# pos_weight: log_weight = (pos_weight - 1) * t + 1 (3), times log_sigmoid(x) (1).
POS_WEIGHT_PER_ELEMENT = 4

# FLOPs per input-gradient element of each loss's backward.
LOSS_BACKWARD_PER_ELEMENT: dict[str, int] = {
    "mse_loss_backward": 3,  # 2 * (x - y) * g: sub, mul, mul
    "huber_loss_backward": 5,  # z, two region compares, norm * z * g (2)
    "smooth_l1_loss_backward": 6,  # z, two region compares, norm * z * g / beta (3)
    # g * (x - t) / max((1 - x) * x, eps): sub, 1-x, mul, max, div, mul
    "binary_cross_entropy_backward": 6,
    # -t * sigmoid(-t * x) * g: -t*x (mul, negate), e / (1 + e) (exp, add, divide), *(-t), *g
    "soft_margin_loss_backward": 7,
}


def pointwise_loss(elements: int, per_element: int, reduction: int, *, weighted: bool = False) -> Cost:
    """A loss of ``per_element`` FLOPs on each of ``elements`` elements (+1 with a
    weight), then reduced."""
    per = per_element + (1 if weighted else 0)
    return Cost(flops=elements * per + reduce(elements, reduction))


def pointwise_loss_backward(
    elements: int, per_element: int, reduction: int, *, weighted: bool = False
) -> Cost:
    """The gradient of a pointwise loss: ``per_element`` (+1 with a weight) per input
    element, + 1 for 'mean' (the scalar 1/n)."""
    per = per_element + (1 if weighted else 0)
    return Cost(flops=elements * per + (1 if reduction == MEAN else 0))


def nll_loss(samples: int, reduction: int, *, weighted: bool) -> Cost:
    """loss_i = -w[t_i] * x[i, t_i] over ``samples`` targets: negate 1 (+ weight 1) per
    sample; 'sum' n-1 adds; 'mean' n-1 adds + 1 divide, and with weights the divisor
    sum of the picked weights (n-1 adds). Picking x[i, t_i] is a gather (0 FLOPs)."""
    flops = samples * (2 if weighted else 1) + reduce(samples, reduction)
    if reduction == MEAN and weighted and samples:
        flops += samples - 1
    return Cost(flops=flops)


def nll_loss_backward(samples: int, reduction: int, *, weighted: bool) -> Cost:
    """grad[i, t_i] = -g * w[t_i] (/ total_weight): reduced, -g (and /total_weight for
    'mean') once, then one multiply per sample with weights; 'none', a negate per sample
    (+ a multiply with weights). The zeros elsewhere are a fill (0 FLOPs)."""
    per_sample = 1 if weighted else 0
    if reduction == NONE:
        return Cost(flops=samples * (1 + per_sample))
    return Cost(flops=samples * per_sample + (2 if reduction == MEAN else 1))


# CTC (speech recognition): one state of the alpha (or beta) recursion in log space, as
# torch's kernel computes it from the three states it can come from: 2 compares for their
# max, 3 subtracts, 3 exps, 2 adds, a log, + the max, + the log-probability of the state's
# label. The final log-likelihood: a logsumexp of the last two states and a negate, 9.
CTC_FLOPS_PER_STATE_STEP = 13
CTC_FLOPS_FINAL = 9
# Backward: alpha*beta of each state (1 add) folded into its label's sum (a logaddexp, 7);
# each (time, class) gradient exp(lp) - exp(lcab + nll - lp), times the loss's gradient: 6.
CTC_FLOPS_PER_STATE_PRODUCT = 8
CTC_FLOPS_PER_CLASS_GRADIENT = 6


def ctc_loss(batch: int, time: int, states: int) -> Cost:
    """``_ctc_loss`` for ``batch`` sequences of ``time`` steps and ``states`` = 2S + 1 states
    (S the longest target): the alpha recursion over steps 1..T-1 and the final
    log-likelihood. Input and target lengths are values: the padded sizes give the most
    the call does. Which states can skip one (a label repeated) also depends on values:
    every state is counted with three predecessors."""
    return Cost(flops=batch * (max(time - 1, 0) * states * CTC_FLOPS_PER_STATE_STEP + CTC_FLOPS_FINAL))


def ctc_loss_backward(batch: int, time: int, states: int, classes: int) -> Cost:
    """``_ctc_loss_backward``: the beta recursion (as the alpha one), alpha*beta of every
    state summed per label, and the gradient of every (time, class) log-probability."""
    per_sequence = (
        max(time - 1, 0) * states * CTC_FLOPS_PER_STATE_STEP
        + time * states * CTC_FLOPS_PER_STATE_PRODUCT
        + time * classes * CTC_FLOPS_PER_CLASS_GRADIENT
    )
    return Cost(flops=batch * per_sequence)


def multi_margin_loss(samples: int, classes: int, p: int, reduction: int, *, weighted: bool) -> Cost:
    """``multi_margin_loss`` (nn.MultiMarginLoss), per sample with target y over C classes:
    the C - 1 terms max(0, margin - x[y] + x[i])^p (z 2, the compare 1, z*z 1 with p = 2,
    * w[y] 1 with a weight), their sum (C - 2 adds) and / C (1); then the reduction over
    the samples. Which terms are positive depends on values: all are counted, the most
    the call does (a term at or under 0 skips only its power and weight)."""
    terms = max(classes - 1, 0)
    per_term = 3 + (1 if p == 2 else 0) + (1 if weighted else 0)
    per_sample = terms * per_term + max(terms - 1, 0) + 1 if classes else 0
    return Cost(flops=samples * per_sample + reduce(samples, reduction))


def multi_margin_loss_backward(samples: int, classes: int, p: int, *, weighted: bool) -> Cost:
    """``multi_margin_loss_backward``: g = 1/(N·C) or 1/C once (1); per term z 2, the
    compare 1, h = 2·g·z with p = 2 (2), * w[y] (1), the target's gradient -= h (1); then
    every input-gradient element times the loss's gradient (N·C). All terms counted."""
    terms = max(classes - 1, 0)
    per_term = 4 + (2 if p == 2 else 0) + (1 if weighted else 0)
    if samples * classes == 0:
        return Cost()
    return Cost(flops=1 + samples * terms * per_term + samples * classes)


def cross_entropy_probabilities(samples: int, classes: int, reduction: int, *, weighted: bool) -> Cost:
    """Cross entropy against class probabilities, on log-probabilities already taken:
    -sum(w * t * logp) [/ N]. t * logp per element (+ * w with class weights), their sum
    (N·C - 1 adds), the negate (1), and for 'mean' the divide by N (1): what the reference
    path's ``mul``, ``sum``, ``neg``, ``div`` cost op by op."""
    elements = samples * classes
    if not elements:
        return Cost()
    per = 2 if weighted else 1
    return Cost(flops=elements * per + elements - 1 + 1 + (1 if reduction == MEAN else 0))


def cross_entropy_probabilities_backward(
    samples: int, classes: int, reduction: int, *, weighted: bool
) -> Cost:
    """Its gradient with respect to the log-probabilities: -g [/ N] once (1, + 1 for
    'mean'), then one multiply per element by t (+ one by w with class weights)."""
    elements = samples * classes
    if not elements:
        return Cost()
    per = 2 if weighted else 1
    return Cost(flops=elements * per + 1 + (1 if reduction == MEAN else 0))


def linear_cross_entropy(
    rows: int,
    hidden: int,
    classes: int,
    reduction: int,
    *,
    bias: bool,
    weighted: bool,
    probabilities: bool = False,
    grad_input: bool = False,
    grad_weight: bool = False,
    grad_bias: bool = False,
) -> Cost:
    """``F.linear_cross_entropy`` of N = ``rows`` inputs of H = ``hidden`` features over
    V = ``classes``, counted as its reference path counts op by op: the logits
    x @ W.T (+ b) (N·H·V MACs, ``addmm``/``mm``), log_softmax over V, then nll (class
    indices) or the probability-target sum.

    The chunked op (torch 2.14, reduction 'mean'/'sum') also computes the gradients in its
    forward when grad is on; they are charged here, on the forward op, where they run, as
    the reference path's backward counts them: the loss's and log_softmax's gradients,
    dlogits @ W for the input (N·V·H MACs), dlogits.T @ x for the weight (V·N·H MACs) and
    dlogits summed over the rows for the bias ((N-1)·V adds). Its autograd backward only
    scales these by the upstream gradient (counted op by op as ``mul``), so nothing is
    counted twice."""
    cost = contraction.matmul(1, rows, hidden, classes, bias_adds=rows * classes if bias else 0)
    cost += elementwise.softmax(rows, classes, log=True)
    if probabilities:
        cost += cross_entropy_probabilities(rows, classes, reduction, weighted=weighted)
    else:
        cost += nll_loss(rows, reduction, weighted=weighted)
    if not (grad_input or grad_weight or grad_bias):
        return cost
    if probabilities:
        cost += cross_entropy_probabilities_backward(rows, classes, reduction, weighted=weighted)
    else:
        cost += nll_loss_backward(rows, reduction, weighted=weighted)
    cost += elementwise.softmax_backward(rows, classes)
    if grad_input:
        cost += contraction.matmul(1, rows, classes, hidden)
    if grad_weight:
        cost += contraction.matmul(1, classes, rows, hidden)
    if grad_bias:
        cost += elementwise.reduction(classes, rows)
    return cost
