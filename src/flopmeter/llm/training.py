"""Training steps and MFU, under every convention side by side.

A step's FLOPs are traced (forward + backward, on meta, all logits). MFU = model FLOPs
per second achieved / peak; HFU also counts the FLOPs of activation recompute. Which
FLOPs count as "model FLOPs" is a convention, so each is printed with its name:

- traced full: the traced step, attention's score matrix dense (2 x MACs);
- traced causal: the same with causal attention counted as needed (about half);
- 6N + 12LHQT (PaLM, appendix B): 6 N per token for the matmuls, 12 L H Q T for
  attention; N = N_mm here (matmul weights with lm_head, no embeddings); L the layers
  with attention (a hybrid's Mamba layers have none); with MLA, whose values and keys
  differ in size, 6 L H (Q_qk + Q_v) T;
- 6N: N named (N_total, the usual quote; leaves out attention entirely).

For a mixture of experts both use the active N (top-k of the experts, uniform load).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch

from ..api import profile
from ..hardware import Hardware, get
from ..report import Report
from ..roofline import flops_by_dtype
from .cost import experts_run
from .kv import kv_cache
from .model import LanguageModel, language_model, warn_if_compressed
from .ran import ParametersRead, parameters_run
from .traces import stored_layout

# AdamW per trainable parameter, given the gradient: m = b1 m + (1-b1) g (3),
# v = b2 v + (1-b2) g^2 (4), bias corrections m/(1-b1^t), v/(1-b2^t) (2),
# p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p) (sqrt, add, divide, multiply,
# add, multiply, subtract: 7). A hand count, written here: 16 FLOPs per parameter.
ADAMW_FLOPS_PER_PARAM = 3 + 4 + 2 + 7


def palm_flops_per_token(
    params: float, layers: int, heads: int, head_dim: int, seq: int, value_dim: int | None = None
) -> float:
    """6 N + 12 L H Q T: PaLM's model FLOPs per token (forward + backward), L the layers with
    attention. Its 12 L H Q T is 6 L H (Q + Q) T: the scores (Q T per head) and the weighted
    sum of the values (Q T); with values of another dim (MLA: ``value_dim``) that is
    6 L H (Q + Q_v) T."""
    values = head_dim if value_dim is None else value_dim
    return palm_from_width(params, layers * heads * (head_dim + values), seq)


def palm_from_width(params: float, width: int, seq: int) -> float:
    """6 N + 6 W T, W = the sum over the attention layers of H (Q_qk + Q_v): PaLM's form where
    layers differ (Gemma 4's full-attention layers have their own head_dim); 12 L H Q T when
    they do not."""
    return 6 * params + 6 * width * seq


def six_n(params: float) -> float:
    """6 N FLOPs per token (forward 2N + backward 4N; attention left out)."""
    return 6 * params


def utilization(
    flops_per_token: float, tokens_per_second: float, peak_flops_per_s: float, devices: int = 1
) -> float:
    """Achieved FLOP/s over the peak of all devices: flops_per_token * tokens/s / (devices * peak)."""
    if tokens_per_second <= 0 or peak_flops_per_s <= 0 or devices < 1:
        raise ValueError("tokens/s, peak FLOP/s and the device count must be positive")
    return flops_per_token * tokens_per_second / (devices * peak_flops_per_s)


@dataclass
class TrainingStep:
    """One optimizer step's FLOPs for ``batch`` sequences of ``tokens`` tokens."""

    lm: LanguageModel
    tokens: int
    batch: int
    full: Report  # forward + backward, dense attention
    causal: Report  # forward + backward, causal attention counted as needed
    recompute: bool
    optimizer: bool

    def __repr__(self) -> str:
        from ..render.reprs import training_repr

        return training_repr(self)

    def __str__(self) -> str:
        """Every convention side by side, as ``flopmeter ... --training`` prints it."""
        from ..render.llm import render_training

        return render_training(self)

    @property
    def attention_layers(self) -> int:
        """Layers that run attention: those that hand a KV cache their keys and values (a
        hybrid's Mamba or recurrent layers have no attention) and those that attend another
        layer's cache (Gemma 3n's KV sharing)."""
        return len(self.attention_layer_indices)

    @property
    def attention_layer_indices(self) -> tuple[int, ...]:
        """The layers of ``attention_layers``: those that cache, then the last
        ``len(cache.sharing)`` (which attend an earlier layer's cache)."""
        cache = kv_cache(self.lm)
        caching = sorted(layer for layer in stored_layout(self.lm) if layer < self.lm.layers)
        caching = caching or list(range(cache.layers))
        sharing = range(self.lm.layers - len(cache.sharing), self.lm.layers)
        return tuple(caching[: cache.layers]) + tuple(sharing)

    @property
    def attention_width(self) -> int:
        """PaLM's H Q summed over the attention layers: sum of H (Q_qk + Q_v), each layer's own
        heads and dims (they differ in Gemma 4); L H (Q_qk + Q_v) where the layers agree."""
        by_layer = self.lm.attention_by_layer
        return sum(by_layer[i][0] * (by_layer[i][2] + by_layer[i][3]) for i in self.attention_layer_indices)

    @property
    def experts_run(self) -> Fraction | None:
        """Experts whose weights the traced step's forward multiplies per token (see
        ``LLMCost.experts_run``); None without a mixture of experts."""
        return experts_run(self.full, self.lm, self.step_tokens)

    @property
    def step_tokens(self) -> int:
        return self.tokens * self.batch

    @property
    def forward_flops(self) -> int:
        """2 x MACs of the forward (dense attention)."""
        return 2 * self.full.forward.macs

    @property
    def backward_flops(self) -> int:
        return 2 * self.full.backward_cost.macs

    @property
    def model_flops(self) -> int:
        """Forward + backward, 2 x MACs, dense attention: the traced-full model FLOPs."""
        return self.forward_flops + self.backward_flops

    @property
    def optimizer_flops(self) -> int:
        """AdamW's FLOPs (0 unless asked for): 16 per parameter that gets a gradient, those
        of N_total (read by the step) that require grad. AdamW skips a parameter left without
        a gradient: one the step did not read, or a frozen one (requires_grad=False)."""
        return ADAMW_FLOPS_PER_PARAM * self.lm.params.trainable if self.optimizer else 0

    @property
    def hardware_flops(self) -> int:
        """What the hardware runs: model FLOPs, plus one more forward with full activation
        recompute, plus the optimizer's when asked."""
        return self.model_flops + (self.forward_flops if self.recompute else 0) + self.optimizer_flops

    def named_n(self) -> dict[str, int]:
        """The N of each closed-form convention, by its label. A mixture of experts runs
        top-k of its experts per token, so its N is the active one (the traced FLOPs agree):
        all experts would inflate MFU by total / active (3.6x for Mixtral 8x7B)."""
        n = self.lm.params
        if self.lm.is_moe:
            return {"6N+12LHQT (N=active N_mm)": n.active_matmul, "6N (N=active N_total)": n.active_total}
        return {"6N+12LHQT (N=N_mm)": n.matmul, "6N (N=N_total)": n.total}

    def conventions(self) -> dict[str, float]:
        """Model FLOPs per token under each convention (see the module docstring)."""
        (palm, palm_n), (six, six_n_value) = self.named_n().items()
        return {
            "traced full": self.model_flops / self.step_tokens,
            "traced causal": 2
            * (self.causal.forward.macs + self.causal.backward_cost.macs)
            / self.step_tokens,
            palm: palm_from_width(palm_n, self.attention_width, self.tokens),
            six: six_n(six_n_value),
        }

    def rate(self, *, step_time: float | None = None, tokens_per_second: float | None = None) -> float:
        """Global tokens per second: ``tokens_per_second``, or ``batch`` x ``tokens`` / ``step_time``."""
        if (step_time is None) == (tokens_per_second is None):
            raise ValueError("give exactly one of step_time (seconds) or tokens_per_second")
        if step_time is not None:
            if not (math.isfinite(step_time) and step_time > 0):  # nan passed ``<= 0``: MFU nan
                raise ValueError(f"step_time must be positive seconds, got {step_time}")
            return self.step_tokens / step_time
        assert tokens_per_second is not None
        if not (math.isfinite(tokens_per_second) and tokens_per_second > 0):
            raise ValueError(f"tokens_per_second must be a positive number, got {tokens_per_second}")
        return tokens_per_second

    def peak(self, hardware: Hardware | str) -> float:
        """The peak FLOP/s MFU divides by, per device: the preset's dense peak for the model's dtype."""
        spec = get(hardware) if isinstance(hardware, str) else hardware
        return spec.peak(self.dtype)

    @property
    def dtype(self) -> str:
        """The dtype whose peak MFU uses: the one the traced step did most of its FLOPs in
        (a float32 model traced under bfloat16 autocast: "bfloat16"); the model's own dtype
        when the step did none."""
        by_dtype = flops_by_dtype(self.full)
        if by_dtype:
            return max(by_dtype, key=lambda d: by_dtype[d])
        return str(self.lm.dtype).removeprefix("torch.")

    def mfu(
        self,
        hardware: Hardware | str,
        *,
        devices: int = 1,
        step_time: float | None = None,
        tokens_per_second: float | None = None,
    ) -> dict[str, float]:
        """MFU under each convention from a measured ``step_time`` (seconds per step of
        ``batch`` x ``tokens`` tokens, all devices together) or ``tokens_per_second``
        (global), on ``devices`` x the preset's peak for the model's dtype. With recompute
        or the optimizer, "HFU" is added: the hardware FLOPs over the same peak."""
        tokens_per_second = self.rate(step_time=step_time, tokens_per_second=tokens_per_second)
        peak = self.peak(hardware)
        result = {
            name: utilization(f, tokens_per_second, peak, devices) for name, f in self.conventions().items()
        }
        if self.recompute or self.optimizer:
            result["HFU (traced full + recompute/optimizer)"] = utilization(
                self.hardware_flops / self.step_tokens, tokens_per_second, peak, devices
            )
        return result


def training_step(
    model_or_config: Any,
    *,
    tokens: int,
    batch: int = 1,
    recompute: bool = False,
    optimizer: bool = False,
    dtype: str | None = None,
) -> TrainingStep:
    """Trace one training step (forward + backward over all logits) on ``batch`` x
    ``tokens`` tokens, twice: attention dense and causal-as-needed. A config is built on
    the meta device (shapes only; the same numbers as a real run)."""
    for name, value in (("tokens", tokens), ("batch", batch)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    lm = language_model(model_or_config, dtype)
    stored_layout(lm)  # a model with no attention (Mamba-2) is refused here, not at the first convention
    inputs = {"input_ids": torch.zeros(batch, tokens, dtype=torch.long), "use_cache": False}
    with ParametersRead(lm.model) as watch:  # N counts the parameters the step reads
        full = profile(lm.model, inputs, backward=True, name=f"{lm.name} training step T={tokens}")
    lm.note_read(parameters_run(lm.model, full, watch.seen))
    causal = profile(
        lm.model, inputs, backward=True, causal="needed", name=f"{lm.name} training step T={tokens}"
    )
    warn_if_compressed(model_or_config)  # last: a model refused above gets the error alone
    return TrainingStep(lm, tokens, batch, full, causal, recompute, optimizer)
