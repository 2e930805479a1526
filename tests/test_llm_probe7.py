"""Probe-7 findings in LLM mode (P7 ids in docs/probe-7/llm.md): each test failed before its fix."""

import pytest
import torch

from flopmeter.hardware import Hardware
from flopmeter.llm import llm_cost
from flopmeter.llm.training import training_step
from flopmeter.render.llm import render_llm, render_training

transformers = pytest.importorskip("transformers")

from test_llm_probe6 import tiny_gemma3n  # noqa: E402 - needs transformers, as that module does


def tiny_bart() -> object:
    """2 decoder layers of d = 64 (4 heads of 16), FFN 128, vocab 100, learned positions 128 (+2)."""
    return transformers.BartConfig(
        vocab_size=100, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=128,
    )  # fmt: skip


def test_a_decoder_run_alone_leaves_its_idle_cross_attention_out_of_n() -> None:
    """P7-1: BartForCausalLM runs its decoder without encoder states, so its cross-attention
    never runs, yet N_mm counted its weights: the 2N rows 1.46x the work done."""
    cost = llm_cost(tiny_bart(), prompt=16, generate=4, all_logits=True)
    n = cost.lm.params
    # per layer: self-attention q, k, v, o 4*64*64 = 16,384 + fc1 64*128 + fc2 128*64 = 16,384;
    # 2 layers 65,536 + lm_head (tied to the token embedding) 100*64 = 6,400: 71,936
    # (before: + cross-attention 2*16,384 = 104,704)
    assert (n.matmul, n.kaplan, n.lm_head) == (71_936, 65_536, 6_400)
    # left out: per layer cross-attention 4*(64*64 + 64) = 16,640 + its layer norm 128 = 16,768, x2
    assert (n.idle, n.idle_matmul) == (33_536, 32_768)
    # N_total: embeddings 6,400 (tied) + positions 130*64 = 8,320 + per layer (self-attention
    #   16,640 + LN 128 + fc1 8,320 + fc2 8,256 + LN 128 = 33,472) x 2 + layernorm_embedding 128
    #   = 6,400 + 8,320 + 66,944 + 128 = 81,792 (before: 115,328)
    assert n.total == 81_792
    # the prefill's slope is 2 N_mm: 2*71,936 = 143,872 per token (+ 4 L d T^2 = 512 T^2)
    assert cost.prefill_fit().polynomial.coefficients == (0, 143_872, 512)
    assert cost.lm.idle_modules == (
        "model.decoder.layers.*.encoder_attn",
        "model.decoder.layers.*.encoder_attn_layer_norm",
    )
    text = render_llm(cost)
    assert "N_mm 71,936" in text
    assert "2 N_mm = 143.87 KFLOPs" in text
    assert "33,536 parameters (32,768 of them matmul weights) that none read are left out" in text
    assert "model.decoder.layers.*.encoder_attn" in text
    data = cost.to_dict()
    assert (data["params"]["matmul"], data["params"]["idle"]) == (71_936, 33_536)
    assert data["idle_modules"][0] == "model.decoder.layers.*.encoder_attn"


def test_palms_form_of_a_decoder_run_alone_equals_its_traced_step() -> None:
    """P7-1 in training: 6N + 12LHQT took the idle cross-attention into N (MFU 1.43x)."""
    step = training_step(tiny_bart(), tokens=16)
    conventions = step.conventions()
    # 6*71,936 + 12*2*4*16*16 = 431,616 + 24,576 = 456,192 (before: 6*104,704 + 24,576 = 652,800)
    assert conventions["6N+12LHQT (N=N_mm)"] == 456_192
    assert conventions["traced full"] == 456_192  # forward 2N + 4 L d T per token, x3
    # 6 N_total = 6*81,792 = 490,752 (before: 6*115,328 = 691,968)
    assert conventions["6N (N=N_total)"] == 490_752
    assert "encoder_attn" in render_training(step)


def test_a_multimodal_models_vision_tower_is_not_in_n_of_a_text_run() -> None:
    """P7-2: Gemma3Config builds Gemma3ForConditionalGeneration; with text alone its vision
    tower and projector never run, yet N_mm counted them (Gemma-3-4B: ~0.4 B of 4.3 B)."""
    text = dict(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=300, sliding_window=8,
    )  # fmt: skip
    vision = dict(
        num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=2, image_size=32,
        patch_size=8,
    )  # fmt: skip
    config = transformers.Gemma3Config(
        text_config=text, vision_config=vision, mm_tokens_per_image=4, image_token_index=299,
        boi_token_index=297, eoi_token_index=298,
    )  # fmt: skip
    cost = llm_cost(config, prompt=16)
    n = cost.lm.params
    # text: per layer q 64*64 + k 64*32 + v 64*32 + o 64*64 = 12,288 + MLP 3*64*128 = 24,576;
    #   2 layers 73,728 + lm_head (tied) 300*64 = 19,200: 92,928
    assert n.matmul == 92_928
    # left out (matmul weights): patch conv 32*3*8*8 = 6,144; layer q,k,v,o 4*32*32 = 4,096, fc1 + fc2
    #   2*32*64 = 4,096; head probe 32, in_proj 96*32 = 3,072, out_proj 1,024, MLP 4,096;
    #   projector 32*64 = 2,048: 24,608 (before: N_mm 92,928 + 24,608 = 117,536)
    assert n.idle_matmul == 24_608
    assert cost.lm.idle_modules == ("model.vision_tower", "model.multi_modal_projector")


def test_a_model_that_runs_all_its_weights_keeps_every_parameter() -> None:
    """The convention changes nothing where every weight runs (Qwen3-MoE: the experts count
    by top k, whichever the meta trace routed to)."""
    config = transformers.Qwen3MoeConfig(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=100, num_experts=4, num_experts_per_tok=2,
        moe_intermediate_size=32,
    )  # fmt: skip
    cost = llm_cost(config, prompt=8)
    n = cost.lm.params
    # 2*(attention 12,288 + router 4*64 = 256 + experts 4*3*64*32 = 24,576) + lm_head 6,400 = 80,640
    assert (n.matmul, n.idle, cost.lm.idle_modules) == (80_640, 0, ())
    assert "left out of every N" not in render_llm(cost)


def tiny_mistral(window: int = 8) -> object:
    """2 layers, d 64, 4 heads (2 KV) of 16, MLP 128, vocab 100, sliding window ``window``."""
    return transformers.MistralConfig(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=100, sliding_window=window,
        max_position_embeddings=256,
    )  # fmt: skip


def test_sliding_window_decode_steps_are_exact_at_the_windows_kink() -> None:
    """P7-3: decode FLOPs between traced contexts were interpolated; across the window's kink
    that was up to 0.25 % of a step low here (n = 7: 166,627 for 167,038)."""
    cost = llm_cost(tiny_mistral(), prompt=4, generate=20)
    pieces = cost.decode_pieces("flops_2mac")
    # 2 N_mm (N_mm = 2*(12,288 + 24,576) + 6,400 = 80,128) = 160,256, plus per layer QK^T and PV
    # over the keys a step attends, min(n + 1, 8): 2 layers * 2 * 2 * 4 heads * 16 = 512 per key
    assert int(pieces(6)) == 160_256 + 512 * 7 == 163_840
    assert int(pieces(7)) == 160_256 + 512 * 8 == 164_352  # the kink: 8 keys from here on
    assert int(pieces(8)) == 160_256 + 512 * 8 == 164_352
    assert int(pieces(20)) == 164_352
    assert pieces.exact
    # every context of the generation (n = 4 .. 22) equals a trace there, exact FLOPs included
    exact = cost.decode_pieces("flops")
    assert all(exact(n) == cost.decode(n).flops for n in range(4, 23))


def test_sliding_window_roofline_sums_the_exact_decode_steps() -> None:
    """P7-3 as served: on a compute-bound device the decode time is the sum of each step's
    exact FLOPs over the peak (before: interpolated steps n = 7, 8 short by 411 and 206 FLOPs)."""
    cost = llm_cost(tiny_mistral(), prompt=4, generate=20)
    slow = Hardware(name="slow", peak_flops=1e6, bandwidth=1e18)  # compute-bound at every step
    served = cost.serving(slow)
    steps = sum(cost.decode(n).flops for n in range(4, 23))  # 19 steps: n = 4 .. 22, each traced
    assert served.decode_seconds == pytest.approx(steps / 1e6, rel=1e-12)
    assert "traced at n = 4, 5, 6, 7, 8, 9" in render_llm(cost, [served])


def test_a_span_whose_middle_is_off_the_line_is_split_until_the_kink_is_traced() -> None:
    """P7-3's safety net: a kink no window predicted (here at x = 13, between the traced ends 0
    and 40) is found by splitting every span whose middle is off the line."""
    from flopmeter.llm.fit import piecewise_linear

    calls: list[int] = []

    def traced(x: int) -> int:
        calls.append(x)
        return 10 + 3 * min(x, 13)  # linear to 13, flat from there: f(0) = 10, f(40) = 49

    pieces = piecewise_linear(traced, [0, 40], budget=32)
    # the middle 20: f = 49, the line from (0, 10) to (40, 49) gives 29.5: split into 0-20, 20-40;
    # 20-40 is flat (its middle 30 on the line); 0-20 bends: 10 (f = 40, line 29.5) splits again ...
    assert pieces.exact
    assert all(pieces(x) == 10 + 3 * min(x, 13) for x in range(41))
    assert 13 in pieces.breaks or (12 in pieces.breaks and 14 in pieces.breaks)
    assert len(calls) == len(set(calls)) <= 12  # each x traced once
    # with a budget of 3 traces the span 0-20 stays unchecked: interpolated, and said so
    short = piecewise_linear(traced, [0, 40], budget=3)
    assert not short.exact
    assert short(10) == 10 + (49 - 10) * 10 / 20  # on the line from (0, 10) to (20, 49): 29.5


def test_language_model_alone_counts_every_parameter() -> None:
    """docs/llm.md: "`flopmeter.llm.language_model(...)` alone, before any trace, counts every
    parameter": N is narrowed by the traced phases, not before."""
    from flopmeter.llm import language_model

    n = language_model(tiny_bart()).params
    # 71,936 that run + 2 layers x cross-attention 4*64*64 = 32,768: 104,704
    assert (n.matmul, n.idle) == (104_704, 0)


def test_the_report_says_when_decode_steps_were_interpolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/llm.md: "Past 32 traces ... a span left unchecked is interpolated and the report
    says so" (a budget of 0 leaves the spans 9-22 unchecked)."""
    import flopmeter.llm.cost as cost_module

    monkeypatch.setattr(cost_module, "DECODE_TRACE_BUDGET", 0)
    cost = llm_cost(tiny_mistral(), prompt=4, generate=20)
    assert not cost.decode_pieces("flops").exact
    text = render_llm(cost, [cost.serving("h100-sxm")])
    assert "interpolated where a span was left unchecked" in text


def tiny_falcon() -> object:
    """Falcon-7B's layout: multi-query (1 KV head), parallel attention, tied lm_head; its linear
    layers compute ``x @ self.weight.T`` (a getter, not a function call, hands over the weight)."""
    return transformers.FalconConfig(
        num_hidden_layers=2, hidden_size=64, num_attention_heads=4, vocab_size=100
    )


def test_weights_read_through_a_getter_count_as_run() -> None:
    """P7-4 (in this change, before its commit): the first watcher took every attribute getter
    for metadata, so Falcon's ``self.weight.T`` went unseen and N_mm read 6,400 (lm_head only)."""
    n = llm_cost(tiny_falcon(), prompt=8).lm.params
    # per layer: query_key_value 64*(64 + 2*16) = 6,144 + dense 64*64 = 4,096
    #   + dense_h_to_4h and dense_4h_to_h 2*64*256 = 32,768: 43,008; 2 layers + lm_head 6,400 = 92,416
    assert (n.matmul, n.idle) == (92_416, 0)


def test_a_module_that_ran_keeps_its_weights_even_where_the_watcher_misses_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second signal: with value getters taken for metadata again (the watcher blind to
    ``weight.T``), the modules the trace called still count, so N_mm stays 92,416."""
    import flopmeter.llm.ran as ran

    monkeypatch.setattr(ran, "VALUE_GETTERS", frozenset())
    assert llm_cost(tiny_falcon(), prompt=8).lm.params.matmul == 92_416


def test_profiles_own_look_at_a_parameter_is_no_read() -> None:
    """P7-5: profile() itself asks each parameter ``is_set_to`` (and its size, dtype, ...); the
    watcher took that for a read, so GOT-OCR2's vision position table (1 x 4 x 4 x 32 = 512)
    stayed in N_mm of a text run: calls from flopmeter's own code are no reads."""
    text = dict(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100,
    )  # fmt: skip
    vision = dict(
        num_hidden_layers=1, hidden_size=32, output_channels=16, num_attention_heads=2, image_size=64,
        patch_size=16, mlp_dim=64, global_attn_indexes=[0], window_size=2,
    )  # fmt: skip
    cost = llm_cost(
        transformers.GotOcr2Config(text_config=text, vision_config=vision, image_token_index=99), prompt=8
    )
    # text only: 2 x (attention 4,096 + 2,048 + 2,048 + 4,096 + MLP 3*64*128 = 24,576) + lm_head 6,400
    #   = 80,128 (before: 80,640, the vision tower's pos_embed 512 in it)
    assert cost.lm.params.matmul == 80_128
    assert cost.lm.idle_modules == ("model.vision_tower", "model.multi_modal_projector")


def test_arias_experts_are_recognised_by_their_config_names() -> None:
    """P7-6: Aria (and DBRX's ffn_config, LongCat) name their experts moe_num_experts / moe_topk;
    LLM mode saw no mixture, so 2N and 6N+12LHQT took every expert (here 1.30x; Aria's 64
    experts top 6: ~3x) and the paged bytes read every expert at batch 1."""
    config = transformers.AriaTextConfig(
        num_hidden_layers=2, hidden_size=64, intermediate_size=32, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=100, moe_num_experts=4, moe_topk=2, pad_token_id=0,
    )  # fmt: skip
    cost = llm_cost(config, prompt=16, all_logits=True)
    n = cost.lm.params
    assert (cost.lm.num_experts, cost.lm.experts_per_token) == (4, 2)
    # per layer: attention 12,288 + router 4*64 = 256 + experts gate_up 4*64*64 + down 4*32*64 = 24,576
    #   + shared expert 3*64*64 = 12,288: 49,408; 2 layers + lm_head 6,400 = 105,216
    assert n.matmul == 105_216
    # active: experts 2 of 4, 12,288 per layer: 2*(12,288 + 256 + 12,288 + 12,288) + 6,400 = 80,640
    assert n.active_matmul == 80_640
    assert cost.prefill_fit().polynomial.coefficients[1] == 2 * 80_640  # the traced slope: 161,280


def test_mllamas_cross_attention_layers_skipped_without_an_image_leave_n() -> None:
    """P7-7: MllamaConfig builds MllamaForCausalLM; without cross-attention states transformers
    skips its cross-attention decoder layers whole (Llama-3.2-11B-Vision: 8 of 40), yet N counted
    them: 6N+12LHQT 1.81x the traced step here. The NOTE names the skipped layer, not all."""
    text = dict(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100, cross_attention_layers=[1], pad_token_id=0,
    )  # fmt: skip
    vision = dict(
        num_hidden_layers=1, num_global_layers=1, hidden_size=32, intermediate_size=64, attention_heads=2,
        image_size=32, patch_size=8, vision_output_dim=64, intermediate_layers_indices=[0],
    )  # fmt: skip
    step = training_step(transformers.MllamaConfig(text_config=text, vision_config=vision), tokens=16)
    n = step.lm.params
    # layer 0 runs: attention 12,288 + MLP 24,576 = 36,864; + lm_head 6,400 = 43,264
    # (before: + layer 1's cross-attention 12,288 and MLP 24,576 = 80,128)
    assert (n.matmul, n.idle_matmul) == (43_264, 36_864)
    assert step.lm.idle_modules == ("model.layers.1",)
    # 6*43,264 + 12*1*4*16*16 = 259,584 + 12,288 = 271,872 (before: 6*80,128 + 12,288 = 493,056)
    assert step.conventions()["6N+12LHQT (N=N_mm)"] == 271_872 == step.conventions()["traced full"]


def test_the_watcher_sees_a_weight_read_by_a_method_not_a_call() -> None:
    """P7-8 (in this change): profile()'s FunctionRecorder hands every torch call on from its own
    ``__torch_function__``, so the check "called from flopmeter's code" (P7-5) took the model's
    every read for bookkeeping; only the module-call signal was left, and a parameter read in a
    method called directly (Gemma 3n's ``altup.scale_corrected_output`` -> ``self.forward``)
    came out idle."""
    import torch
    from torch import nn

    from flopmeter import profile
    from flopmeter.llm.ran import ParametersRead, parameters_run

    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(4))

        def apply_to(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.weight

    class Toy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.scale, self.unused = nn.Linear(4, 4), Scale(), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.lin(x)[None]  # attention makes profile() run its FunctionRecorder
            y = nn.functional.scaled_dot_product_attention(y, y, y)[0]
            return self.scale.apply_to(y)  # Scale is never called: its method is

    model = Toy()
    with ParametersRead(model) as watch:
        report = profile(model, torch.ones(1, 4))
    assert watch.seen == {"lin.weight", "lin.bias", "scale.weight"}
    assert parameters_run(model, report, watch.seen) == {"lin.weight", "lin.bias", "scale.weight"}


def test_gemma3n_leaves_no_parameter_out() -> None:
    """P7-8 on a real model: every Gemma 3n parameter runs in a text prefill and decode (the
    altup output scale, 64 per layer, read through a direct ``forward`` call, was left out)."""
    from flopmeter.llm import language_model

    config = tiny_gemma3n()  # probe 6's 4-layer Gemma 3n with KV sharing
    cost = llm_cost(config, prompt=16)
    every = language_model(config).params  # before any trace: every parameter
    assert (cost.lm.params.idle, cost.lm.params.total) == (0, every.total)


def test_a_long_generations_runs_split_at_the_kink() -> None:
    """docs/llm.md: a generation of more than 4,096 steps is summed in runs, linear within each;
    a run across a window's kink was summed off the line. With the kink's contexts as breaks
    it is exact: c(n) = n up to 1,000, then 1,000 (seconds, memory time 0)."""
    from fractions import Fraction

    from flopmeter.llm.serving import PhaseTime, decode_steps_seconds

    def step(n: int) -> PhaseTime:
        return PhaseTime(0, Fraction(0), float(min(n, 1000)), 0.0)

    steps = 3 * 4096 + 3  # runs of 3 contexts: one of them, 999 .. 1001, crosses the kink
    # sum of min(n, 1000), n = 0 .. 12,290: 1000*1001/2 + 1000*(12,290 - 1,000) = 500,500 + 11,290,000
    exact = 500_500 + 11_290_000
    assert decode_steps_seconds(step, 0, steps, breaks=(999, 1000, 1001)) == exact
    assert decode_steps_seconds(step, 0, steps) != exact  # the run across the kink: off the line


def test_json_gives_a_sliding_window_models_traced_decode_steps() -> None:
    """`--format json` / `to_dict(servings)`: the exact decode steps behind the roofline's sum
    (traced contexts and their exact FLOPs), null for a model polynomial in n."""
    cost = llm_cost(tiny_mistral(), prompt=4, generate=20)
    data = cost.to_dict([cost.serving("h100-sxm")])
    traced = dict(data["decode_steps"]["traced"])
    assert sorted(traced) == [4, 5, 6, 7, 8, 9, 15, 22] and data["decode_steps"]["exact"]
    assert traced[7] == cost.decode(7).flops  # the kink: 8 keys from here on
    assert llm_cost(tiny_bart(), prompt=8).to_dict([])["decode_steps"] is None


def test_the_documented_cross_attention_formula_matches_a_run_with_encoder_states() -> None:
    """docs/llm.md ("Not covered yet"): LLM mode passes no encoder states; the cross-attention a
    real encoder-decoder generation adds is given by hand: per layer, once, 2 S d^2 MACs for the
    encoder output's K/V; per decode step 2 d^2 + 2 H head_dim S MACs (the cross K/V are read
    from the cache, not recomputed). Checked with torch's FlopCounterMode on a real BART run."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = transformers.BartForCausalLM._from_config(tiny_bart(), attn_implementation="eager").eval()
    tokens, positions, d = 8, 10, 64  # T prompt tokens, S encoder positions
    ids, encoder = torch.zeros(1, tokens, dtype=torch.long), torch.zeros(1, positions, d)

    def flops(**extra: torch.Tensor) -> tuple[int, int]:
        with torch.no_grad():
            with FlopCounterMode(display=False) as prefill:
                out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **extra)
            with FlopCounterMode(display=False) as step:
                model(
                    input_ids=ids[:, :1], cache=out.past_key_values, use_cache=True, logits_to_keep=1, **extra
                )
        return prefill.get_total_flops(), step.get_total_flops()

    (alone_prefill, alone_step), (with_prefill, with_step) = flops(), flops(encoder_hidden_states=encoder)
    # prefill, 2 layers x 2 (FLOPs per MAC): q and out of T tokens 2 T d^2 = 65,536 + K/V of S
    #   positions 2 S d^2 = 81,920 + scores and weighted sum 2 H head_dim T S = 10,240: 630,784
    assert with_prefill - alone_prefill == 2 * 2 * (2 * 8 * 64 * 64 + 2 * 10 * 64 * 64 + 2 * 4 * 16 * 8 * 10)
    # a decode step: 2 x 2 x (2 d^2 = 8,192 + 2 H head_dim S = 1,280) = 37,888
    assert with_step - alone_step == 2 * 2 * (2 * 64 * 64 + 2 * 4 * 16 * 10) == 37_888


def tiny_llama_model() -> torch.nn.Module:
    """2 layers of d = 64, 4 heads of 16 (2 KV), MLP 128, vocab 100 (untied): real CPU weights."""
    config = transformers.LlamaConfig(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16,
    )  # fmt: skip
    return transformers.AutoModelForCausalLM.from_config(config)


class ScriptableMLP(torch.nn.Module):
    """Llama's MLP of d = 64, 128 without transformers' activation table (TorchScript takes it)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate_proj = torch.nn.Linear(64, 128, bias=False)
        self.up_proj = torch.nn.Linear(64, 128, bias=False)
        self.down_proj = torch.nn.Linear(128, 64, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


@pytest.mark.parametrize("compile_with", ["script", "trace"])
def test_a_torchscript_submodules_weights_count_as_run(compile_with: str) -> None:
    """R7-1: inside a TorchScript module neither the watcher nor module calls see anything, so
    its weights were taken for idle while its FLOPs were traced: N_mm 55,552 for 80,128."""
    model = tiny_llama_model()
    mlp = ScriptableMLP()
    model.model.layers[0].mlp = (
        torch.jit.script(mlp) if compile_with == "script" else torch.jit.trace(mlp, torch.zeros(1, 64))
    )
    cost = llm_cost(model, prompt=8)
    # per layer: q 64*64 + k, v 2*64*32 + o 64*64 = 12,288 + MLP 3*64*128 = 24,576: 36,864;
    #   2 layers + lm_head 100*64 = 6,400: 80,128 (before: 80,128 - 24,576 = 55,552)
    assert (cost.lm.params.matmul, cost.lm.params.idle) == (80_128, 0)
    # the prefill's slope, traced: 2 x (2 layers 73,728) = 147,456 (the lm_head runs on the last token)
    assert cost.prefill_fit().polynomial.coefficients[1] == 147_456


def test_multihead_attentions_out_proj_counts_as_run_in_every_layer() -> None:
    """R7-2: nn.MultiheadAttention passes out_proj's weights to one function without calling
    out_proj, and profile() replays that call for a repeat of its shapes (the watcher never sees
    it): out_proj of layers 1 and 2 (32*32 + 32 = 1,056 each) were taken for idle."""
    from flopmeter import profile
    from flopmeter.llm.ran import ParametersRead, parameters_run

    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, 3, enable_nested_tensor=False).eval()
    with ParametersRead(model) as watch:
        report = profile(model, torch.zeros(1, 8, 32))
    run = parameters_run(model, report, watch.seen)
    names = [name for name, _ in model.named_parameters()]
    assert [name for name in names if name not in run] == []  # before: layers.{1,2}.self_attn.out_proj.*
    # per layer: in_proj 3*32*32 + 96 = 3,168, out_proj 1,056, linear1 32*64 + 64 = 2,112,
    #   linear2 64*32 + 32 = 2,080, 2 norms 2*64 = 128: 8,544; 3 layers 25,632
    assert sum(p.numel() for name, p in model.named_parameters() if name in run) == 25_632


def test_a_scripted_model_runs_all_its_parameters() -> None:
    """R7-2: a whole TorchScript model (its name is "") runs every parameter it holds."""
    from flopmeter import profile
    from flopmeter.llm.ran import ParametersRead, parameters_run

    model = torch.jit.script(ScriptableMLP())
    with ParametersRead(model) as watch:
        report = profile(model, torch.zeros(1, 64))
    # gate_proj, up_proj and down_proj: 3 weights of 64*128 = 8,192 each
    assert parameters_run(model, report, watch.seen) == {
        "gate_proj.weight",
        "up_proj.weight",
        "down_proj.weight",
    }


def test_the_idle_note_names_one_idle_entry_of_a_parameter_list() -> None:
    """R7-3: the NOTE counted a list's layers with ``children()``, which a ParameterList has none
    of, so one idle entry of two was named ``model.gates.*`` (every entry idle)."""
    from flopmeter.llm.model import language_model

    model = tiny_llama_model()
    model.model.gates = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(64)) for _ in range(2)])
    lm = language_model(model)
    lm.note_read({name for name, _ in model.named_parameters() if name != "model.gates.0"})
    assert lm.idle_modules == ("model.gates.0",)  # before: ("model.gates.*",)
    assert (lm.params.idle, lm.params.idle_matmul) == (64, 0)  # one vector of 64, no matmul weight
    lm.note_read({"model.gates.0"})
    assert (lm.idle_modules, lm.params.idle) == ((), 0)


def test_a_weight_read_only_by_decode_steps_is_in_the_reports_n() -> None:
    """R7-4: N counts the phases traced so far: after llm_cost() the prefill's, in the report and
    to_dict() the decode step's too (they trace it before they give N)."""
    from flopmeter.llm.model import language_model

    model = tiny_llama_model()
    mlp = model.model.layers[1].mlp
    mlp.decode_only = torch.nn.Linear(64, 64, bias=False)
    prefill_forward = mlp.forward

    def forward(x: torch.Tensor) -> torch.Tensor:  # the extra linear on one-token steps only
        y = prefill_forward(x)
        return mlp.decode_only(y) if x.shape[1] == 1 else y

    mlp.forward = forward
    cost = llm_cost(model, prompt=8, generate=4)
    # the prefill read 80,128 (tiny_llama_model's hand count); decode_only 64*64 = 4,096 unread yet
    assert (cost.lm.params.matmul, cost.lm.params.idle) == (80_128, 4_096)
    assert cost.lm.idle_modules == ("model.layers.1.mlp.decode_only",)
    # 80,128 + 4,096 = 84,224 once a decode step is traced
    assert "N_mm 84,224" in render_llm(cost)
    assert cost.to_dict()["params"]["matmul"] == 84_224
    assert language_model(model).params.matmul == 84_224  # before any trace: every parameter


def test_a_parameter_held_by_a_module_that_ran_counts_even_unread() -> None:
    """The rule errs towards counting (docs/llm.md): a parameter held directly by a called module
    counts though nothing read it; one held by a submodule never called is idle."""
    model = tiny_llama_model()
    model.model.layers[0].mlp.unread = torch.nn.Parameter(torch.zeros(64, 64))
    model.model.layers[0].mlp.never_called = torch.nn.Linear(64, 32, bias=False)
    n = llm_cost(model, prompt=8).lm.params
    # 80,128 + unread 64*64 = 4,096: 84,224; never_called 64*32 = 2,048 idle
    assert (n.matmul, n.idle) == (84_224, 2_048)


def test_a_long_chunked_generation_keeps_to_the_trace_budget() -> None:
    """R7-5: decode_pieces traced 4 contexts around every chunk start of the generation whatever
    the budget docs/llm.md names ("past 32 traces ... interpolated"): 199 traces for 800 steps of
    chunks of 16 (the real Llama 4's 8,192 over --generate 100000000: ~49,000 traces, hours)."""
    config = transformers.Llama4TextConfig(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, intermediate_size_mlp=128,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=100, attention_chunk_size=16,
        num_local_experts=1, num_experts_per_tok=1, max_position_embeddings=4096, no_rope_layers=[1, 1],
    )  # fmt: skip
    cost = llm_cost(config, prompt=16, generate=800)
    pieces = cost.decode_pieces("flops")
    # the ends 16 and 814, then the first 30 contexts around the chunk starts 16, 32, 48, ...:
    # 17 (of start 16: 14 .. 16 are not past the prompt), 30 .. 33, 46 .. 49, ..., 126 .. 129
    # (7 starts, 28), 142: 2 + 1 + 28 + 1 = 32 (before: 2 + 1 + 4 x 49 starts 32 .. 800 = 199)
    assert [x for x, _ in pieces.points][:7] + [x for x, _ in pieces.points][-3:] == [
        16, 17, 30, 31, 32, 33, 46, 129, 142, 814
    ]  # fmt: skip
    assert len(pieces.points) == 32
    assert not pieces.exact  # the rest is interpolated, and the report says so
    # traced as run, a chunked step attends a cache of C = 16 slots: the same FLOPs at every n
    assert all(pieces(n) == cost.decode(n).flops for n in (16, 40, 129, 500, 814))
    assert "interpolated where a span was left unchecked" in render_llm(cost, [cost.serving("h100-sxm")])


def test_a_weight_read_through_a_view_made_before_the_trace_counts_as_run() -> None:
    """R7-6: a view of a weight kept as a plain tensor (``w = weight.view(...)``) and read in its
    place by a module that does not hold the weight: the watcher matched only the parameter
    itself, so down_proj's 128*64 = 8,192 weights were idle (N_mm 71,936)."""
    model = tiny_llama_model()
    mlp = model.model.layers[0].mlp
    alias = mlp.down_proj.weight.view(64, 128)  # made before the trace; down_proj is never called

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x), alias)

    mlp.forward = forward
    n = llm_cost(model, prompt=8).lm.params
    assert (n.matmul, n.idle) == (80_128, 0)  # tiny_llama_model's hand count (before: 71,936, 8,192)
