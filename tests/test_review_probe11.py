"""Probe 11 code review (docs/probe-11/code-review.md): the fixes of R11-*, each pinned by
hand on a toy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import flopmeter


# ------------------------------------------------ R11-1: a mixture of experts is no supernet slice
class StackedExperts(nn.Module):
    """4 experts Linear(2 -> 3, no bias) held in one [4, 3, 2] parameter, as transformers'
    MoE layers hold theirs; every token routed to expert 1 (a one-token decode step hits
    top-k experts only)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4, 3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[1])


class MoE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.experts = StackedExperts()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.experts(x)


def test_a_stack_of_experts_read_one_expert_at_a_time_keeps_its_nonzeros():
    model = MoE()
    with torch.no_grad():
        model.experts.weight[:, :, 0] = 0  # every expert's first input column pruned: 12 of 24 nonzero
    view = flopmeter.profile(model, torch.randn(1, 2), compression=True).compression
    layer = view.layers["experts"]
    # expert 1 only: 1 token x 3 outputs x 2 inputs = 6 MACs dense
    assert layer.macs_dense == 6
    # the stack's nonzeros stand for the expert read (as before the slice check):
    # 6 * 12 / 24 = 3 effective MACs; was: named a supernet slice, nonzeros unknown, 6
    assert view.sliced == []
    assert layer.weight_nonzero == 12 and layer.macs_effective == 3
    assert view.nonzero_params == 12 and view.sparsity == 0.5  # 1 - 12/24


def test_mixtral_eager_experts_on_two_tokens_are_not_a_slice():
    transformers = __import__("pytest").importorskip("transformers")
    config = transformers.MixtralConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=64,
        num_local_experts=8,
        num_experts_per_tok=2,
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, experts_implementation="eager").eval()
    view = flopmeter.profile(model, {"input_ids": torch.tensor([[3, 5]])}, compression=True).compression
    experts = view.layers["model.layers.0.mlp.experts"]
    # 2 tokens x top-2 reach at most 4 of the 8 experts; each expert read whole:
    # gate_up_proj 8 x 128 x 32 = 32,768 + down_proj 8 x 32 x 64 = 16,384 = 49,152 weights,
    # all nonzero (random normal init); was: sliced, nonzeros unknown, the model's sparsity unknown
    assert view.sliced == []
    assert experts.weight_params == 49_152 and experts.weight_nonzero == 49_152
    assert view.sparsity is not None


# ------------------------------- R11-2: a forward's own threads are not a busy machine
class PooledLinear(nn.Module):
    """Linear(256 -> 256) run 4 times on a thread pool of 2: the calling thread only waits."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(256, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            parts = [pool.submit(F.linear, x, self.layer.weight) for _ in range(4)]
            return sum(part.result() for part in parts)


def test_work_on_the_forwards_own_threads_gives_no_busy_machine_note():
    from flopmeter.render.speed import timing_notes

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, x = PooledLinear().eval(), torch.randn(64, 256)
        timings = flopmeter.benchmark(model, x, warmup=1, repeat=3)
    finally:
        torch.set_num_threads(threads)
    # the calling thread ran ~3% of the wall time (the pool's threads did the matmuls):
    # was cpu_share 0.03 and "note: busy machine ... other processes the rest"
    assert timings[0].cpu_times == [] and timings[0].cpu_share is None
    notes = timing_notes(flopmeter.profile(model, x), timings)
    assert not any("busy machine" in line for line in notes)


# ------------------------- R11-3: ignore::UserWarning does not hide a model-state warning
class LeavesDoubleDefault(nn.Module):
    """Linear(2 -> 2) whose forward sets torch's default dtype to float64 and leaves it."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.set_default_dtype(torch.float64)
        return self.layer(x)


def test_a_user_warning_filter_acts_on_the_count_warnings_only():
    import warnings

    before = torch.get_default_dtype()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=UserWarning)  # a notebook's usual filter
            flopmeter.profile(LeavesDoubleDefault(), torch.randn(1, 2))
        # was: hidden (ModelStateWarning was a UserWarning through FlopmeterWarning);
        # it was a plain RuntimeWarning before it had a class, shown under this filter
        assert [w.category for w in caught if "default dtype" in str(w.message)] == [
            flopmeter.ModelStateWarning
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # was: profile raised ModelStateWarning
            warnings.simplefilter("ignore", RuntimeWarning)
            assert flopmeter.profile(LeavesDoubleDefault(), torch.randn(1, 2)).macs == 4  # 1 x 2 x 2
    finally:
        torch.set_default_dtype(before)


# ------------------------------- R11-4: the training repr's "(2 x MACs)" is the model FLOPs'
def test_the_training_repr_does_not_call_adamw_flops_two_times_macs(one_layer_llama_config):
    step = flopmeter.training_step(one_layer_llama_config, tokens=8, optimizer=True)
    # hardware = model + AdamW's 16 FLOPs per trainable parameter (elementwise, no MACs)
    assert step.hardware_flops == step.model_flops + 16 * step.lm.params.trainable
    text = repr(step)
    # was: "model ..., hardware ... (2 x MACs)", the AdamW part included
    assert " (2 x MACs), hardware " in text
    assert "(2 x MACs)" not in text.split("hardware ")[1]
