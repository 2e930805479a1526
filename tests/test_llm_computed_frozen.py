"""Probe-7 rows R7-8 and R7-9 (docs/probe-7/review.md): a weight computed from parameters
(weight norm's g counted as a matmul weight) and AdamW's FLOPs on frozen parameters. Each
test failed before its fix."""

import pytest
import torch
from torch.nn.utils import parametrizations
from torch.utils.flop_counter import FlopCounterMode

from flopmeter.llm import llm_cost
from flopmeter.llm.model import count_params, language_model
from flopmeter.llm.training import ADAMW_FLOPS_PER_PARAM, training_step
from flopmeter.render.llm import render_training

transformers = pytest.importorskip("transformers")

WEIGHTED = {
    "parametrizations.weight_norm": parametrizations.weight_norm,
    "nn.utils.weight_norm (hook)": torch.nn.utils.weight_norm,
    "parametrizations.orthogonal": parametrizations.orthogonal,
    "parametrizations.spectral_norm": parametrizations.spectral_norm,
    "nn.utils.spectral_norm (hook)": torch.nn.utils.spectral_norm,
}


def tiny_llama(layers: int = 1) -> torch.nn.Module:
    """d = 64 (4 heads of 16, no GQA), FFN 128, vocab 100, lm_head not tied, on the CPU."""
    config = transformers.LlamaConfig(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


@pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")
@pytest.mark.parametrize("name", list(WEIGHTED))
def test_a_computed_weight_counts_its_own_size_in_n_mm(name: str) -> None:
    """R7-8: weight norm's g (64 x 1, 2-D) was counted as a matmul weight: N_mm 4,160."""
    linear = WEIGHTED[name](torch.nn.Linear(64, 64))
    counts = count_params(torch.nn.Sequential(linear))
    assert counts.matmul == 4_096  # the weight multiplied: 64*64 (before, weight norm: + g's 64 = 4,160)
    # N_total: weight norm's g 64 + v 4,096 + bias 64 = 4,224; the others 4,096 + 64 = 4,160
    # (spectral norm's u and v are buffers, not parameters)
    assert counts.total == (4_224 if "weight_norm" in name else 4_160)


def test_weight_norm_in_a_language_model() -> None:
    """R7-8 in LLM mode: q_proj and the token embedding under weight norm."""
    model = tiny_llama()
    parametrizations.weight_norm(model.model.layers[0].self_attn.q_proj)  # g: 64 x 1
    parametrizations.weight_norm(model.model.embed_tokens, dim=0)  # g: 100 x 1
    n = language_model(model).params
    # N_mm: q, k, v, o 4*64*64 = 16,384 + gate, up, down 3*64*128 = 24,576 + lm_head 100*64 = 6,400
    #   = 47,360 (before: + q_proj's g 64 + the embedding's v 6,400 and g 100, taken for matmul
    #   weights: 53,924)
    assert (n.matmul, n.kaplan, n.lm_head) == (47_360, 40_960, 6_400)
    assert n.embedding == 6_400  # the table's v, 100*64 (before: 0)
    # N_total: 47,360 + embedding 6,400 + 3 RMSNorms 3*64 = 192 + the two g's 64 + 100 = 54,116
    assert n.total == 54_116


def test_counting_leaves_spectral_norms_power_iteration_alone() -> None:
    """Counting reads no computed weight: spectral norm's forward in training mode would
    update its u and v buffers (a power-iteration step on the user's model)."""
    model = tiny_llama().train()
    parametrizations.spectral_norm(model.model.layers[0].self_attn.q_proj)
    holder = model.model.layers[0].self_attn.q_proj.parametrizations.weight[0]
    before = (holder._u.clone(), holder._v.clone())
    assert language_model(model).params.matmul == 47_360  # as above
    assert torch.equal(holder._u, before[0]) and torch.equal(holder._v, before[1])
    assert model.training


def test_adamw_counts_only_parameters_with_a_gradient() -> None:
    """R7-9: AdamW's FLOPs counted the frozen layer's parameters too, which get no gradient."""
    model = tiny_llama(layers=2)
    for p in model.model.layers[0].parameters():
        p.requires_grad_(False)
    step = training_step(model, tokens=8, optimizer=True)
    n = step.lm.params
    # N_total: embedding 100*64 = 6,400 + per layer (attention 4*64*64 = 16,384 + MLP 3*64*128
    #   = 24,576 + 2 RMSNorms 128 = 41,088) x 2 + final norm 64 + lm_head 6,400 = 6,400 + 82,176 + 64 + 6,400 = 95,040
    assert n.total == 95_040
    assert ADAMW_FLOPS_PER_PARAM == 16  # 3 (m) + 4 (v) + 2 (bias corrections) + 7 (update)
    # 16 per parameter with a gradient: 95,040 - layer 0's 41,088 = 53,952
    assert step.optimizer_flops == 863_232  # 16*53,952 (before: 16*95,040 = 1,520,640)
    assert n.trainable == 53_952
    assert step.hardware_flops == step.model_flops + 863_232
    assert "+ AdamW on 53,952 trainable parameters" in render_training(step)
    assert not any(p.requires_grad for p in model.model.layers[0].parameters())  # left as it was
    assert all(p.requires_grad for p in model.model.layers[1].parameters())


class LoRA(torch.nn.Module):
    """A frozen base Linear plus a trainable rank-r adapter: base(x) + B(A(x))."""

    def __init__(self, base: torch.nn.Linear, rank: int = 4) -> None:
        super().__init__()
        self.base = base
        self.A = torch.nn.Linear(base.in_features, rank, bias=False)
        self.B = torch.nn.Linear(rank, base.out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.B(self.A(x))


def test_a_frozen_base_costs_input_gradients_only() -> None:
    """LoRA-style: the traced backward counts, through a frozen weight, the gradient of its
    input where one is needed and never its weight gradient (as FlopCounterMode); the report
    says that 6N and 6N+12LHQT assume every weight trained."""
    config = transformers.LlamaConfig(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
        attn_implementation="eager",  # plain matmuls: autograd skips the gradients nothing needs
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    model.requires_grad_(False)
    for layer in model.model.layers:
        layer.self_attn.q_proj = LoRA(layer.self_attn.q_proj)
        layer.self_attn.v_proj = LoRA(layer.self_attn.v_proj)
    step = training_step(model, tokens=16, optimizer=True)
    # 2 x MACs, T = 16, d = 64, r = 4, FFN 128, vocab 100. One d x d matmul 2*16*64*64 = 131,072;
    # one adapter matmul 2*16*64*4 = 8,192; one attention matmul (all heads) 2*16*16*64 = 32,768.
    # forward per layer: q, k, v, o 4*131,072 + MLP 3*2*16*64*128 = 786,432 + scores and weighted
    #   sum 2*32,768 + 2 adapters x 2 matmuls 4*8,192 = 1,409,024; x2 + lm_head 2*16*64*100 = 204,800
    assert step.forward_flops == 3_022_848  # 2*1,409,024 + 204,800
    # backward: lm_head's input gradient 204,800 (no weight gradient: frozen);
    # layer 1 (its input needs a gradient, for layer 0's adapters): MLP inputs 786,432 + o 131,072
    #   + q, k, v inputs 3*131,072 + attention dP, dV, dQ, dK 4*32,768 + 2 adapters x (2 weight
    #   + 2 input gradients) 8*8,192 = 1,507,328;
    # layer 0 (its input needs none): MLP 786,432 + o 131,072 + dP, dV, dQ 3*32,768 (no dK: k_proj
    #   of a frozen input) + 2 adapters x (B's weight and input gradients + A's weight gradient)
    #   6*8,192 = 1,064,960 (q_proj, k_proj, v_proj: no input gradient)
    assert step.backward_flops == 2_777_088  # 204,800 + 1,507,328 + 1,064,960
    ids = torch.zeros(1, 16, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        logits = model(input_ids=ids, use_cache=False).logits
        trained = [p for p in model.parameters() if p.requires_grad]
        torch.autograd.grad([logits], trained, grad_outputs=[torch.ones_like(logits)])
    assert counter.get_total_flops() == 3_022_848 + 2_777_088  # torch's count of the same step
    n = step.lm.params
    assert n.trainable == 2_048  # 2 layers x 2 adapters x (64*4 + 4*64)
    assert step.optimizer_flops == 32_768  # 16*2,048
    # the closed forms assume backward 4N: 6N+12LHQT per token 6*90,368 + 12*2*4*16*16 = 566,784
    # (N_mm 88,320 + the adapters 2,048) against the traced (3,022,848 + 2,777,088)/16 = 362,496
    assert step.conventions()["6N+12LHQT (N=N_mm)"] == 566_784
    assert step.conventions()["traced full"] == 362_496
    assert "NOTE: 2,048 of 97,088 parameters require grad" in render_training(step)
    assert "NOTE" not in render_training(training_step(tiny_llama(), tokens=16))


def test_json_names_the_trainable_parameters() -> None:
    """``params.trainable`` in ``to_dict()`` (docs/llm.md)."""
    model = tiny_llama()
    model.lm_head.requires_grad_(False)
    data = llm_cost(model, prompt=8, generate=1).to_dict()
    # N_total 53,952 (47,360 + embedding 6,400 + 3 norms 192) less the frozen lm_head 100*64 = 6,400
    assert (data["params"]["total"], data["params"]["trainable"]) == (53_952, 47_552)


class LowRank(torch.nn.Module):
    """W = U @ V with U (out, r) and V (r, in) stored (``right_inverse`` returns both)."""

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return u @ v

    def right_inverse(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return weight[:, :4].clone(), torch.eye(4, weight.shape[1])


def test_a_low_rank_parametrization_counts_both_factors() -> None:
    """R7b-5 (review B): with several originals, every one but the largest was taken for a
    factor like weight norm's g: a low-rank weight's U (48 x 4) was dropped from N_mm,
    leaving V alone (4 x 64 = 256), neither the parameters nor the weight's size."""
    from torch.nn.utils import parametrize

    linear = torch.nn.Linear(64, 48, bias=False)
    parametrize.register_parametrization(linear, "weight", LowRank())
    counts = count_params(torch.nn.Sequential(linear))
    # U 48*4 = 192 + V 4*64 = 256: 448 stored matmul parameters (before the parametrize
    # change: 448 too; after it, 256)
    assert (counts.matmul, counts.total) == (448, 448)
    # weight norm's g (48 x 1) broadcasts to v (48 x 64) and stays out: 48*64 = 3,072
    normed = parametrizations.weight_norm(torch.nn.Linear(64, 48, bias=False))
    assert count_params(torch.nn.Sequential(normed)).matmul == 3_072
