"""LLM mode for encoder-decoder models (BART, T5, Whisper; probe 10, P10 ids in
docs/probe-10/encdec.md): the encoder runs once in the prefill, the decoder's cross-attention
projects its output to K/V once and caches them, a decode step reads that cache. Every number
is worked out by hand beside its assertion; each test failed before its fix."""

import copy
import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import flopmeter
from flopmeter.cli import main
from flopmeter.llm import llm_cost
from flopmeter.llm.training import training_step
from flopmeter.render.llm import render_llm

transformers = pytest.importorskip("transformers")

# BART: d = 64, 4 heads of 16, FFN 128, vocab 100, 2 encoder and 2 decoder layers
D, H, HD, FFN, V = 64, 4, 16, 128, 100
S, T = 10, 4  # source tokens, target (prompt) tokens


def tiny_bart(**changes: int) -> object:
    sizes = dict(
        vocab_size=V, d_model=D, encoder_layers=2, decoder_layers=2, encoder_attention_heads=H,
        decoder_attention_heads=H, encoder_ffn_dim=FFN, decoder_ffn_dim=FFN, max_position_embeddings=128,
    )  # fmt: skip
    return transformers.BartConfig(**{**sizes, **changes})


def tiny_t5() -> object:
    """d = 32, 2 heads of d_kv 8 (inner 16 != d), FFN 64, vocab 100, 2 encoder layers, 1 decoder."""
    return transformers.T5Config(
        num_layers=2, num_decoder_layers=1, d_model=32, d_kv=8, num_heads=2, d_ff=64, vocab_size=100
    )


def tiny_whisper() -> object:
    """d = 64, 4 heads of 16, FFN 128, vocab 100, 8 mel bins, 16 encoder positions (32 frames)."""
    return transformers.WhisperConfig(
        vocab_size=V, d_model=D, encoder_layers=2, decoder_layers=2, encoder_attention_heads=H,
        decoder_attention_heads=H, encoder_ffn_dim=FFN, decoder_ffn_dim=FFN, num_mel_bins=8,
        max_source_positions=16, max_target_positions=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=3,
    )  # fmt: skip


# MACs of one BART encoder layer over S positions: q, k, v, o 4 S d^2 = 163,840; scores and
# weighted sum 2 H S S hd = 12,800; fc1 + fc2 2 S d FFN = 163,840: 340,480
BART_ENCODER_MACS = 2 * (4 * S * D * D + 2 * H * S * S * HD + 2 * S * D * FFN)  # 2 layers: 680,960


def test_bart_phases_by_hand() -> None:
    """P10-1: a BartForConditionalGeneration in LLM mode ran its encoder on every decode token (over
    that one token) and its cross-attention over it; now the encoder runs once over S, the prefill
    computes the cross K/V once, and a decode step reads them."""
    cost = llm_cost(tiny_bart(), prompt=T, generate=3, source=S, dtype="float32")
    assert cost.lm.name == "BartForConditionalGeneration"
    assert cost.encoder.macs == BART_ENCODER_MACS == 680_960
    # N_mm: encoder 2 x (4 d^2 + 2 d FFN) = 65,536; decoder 2 x (self 4 d^2 + cross 4 d^2 + 2 d FFN) = 98,304;
    #   lm_head (tied) d V = 6,400: 170,240. The cross-attention runs now: nothing idle (P7-1's 32,768)
    assert (cost.params.matmul, cost.params.idle, cost.lm.encoder_matmul) == (170_240, 0, 65_536)
    # decoder prefill, per layer: self q, k, v, o 4 T d^2 = 65,536 + self scores 2 H T T hd = 2,048
    #   + cross q, o 2 T d^2 = 32,768 + cross K/V of the encoder output 2 S d^2 = 81,920
    #   + cross scores 2 H T S hd = 5,120 + FFN 2 T d FFN = 65,536: 252,928; 2 layers 505,856
    #   + lm_head of every position (Bart's forward takes no logits_to_keep) T d V = 25,600
    assert cost.prefill.macs == 680_960 + 2 * 252_928 + 4 * 64 * 100 == 1_212_416
    # a decode step after n = 6, per layer: self 4 d^2 = 16,384 + 2 H (n+1) hd = 896; cross q, o
    #   2 d^2 = 8,192 + 2 H S hd = 1,280 (the K/V of the S positions read, not projected again);
    #   FFN 2 d FFN = 16,384: 43,136; 2 layers 86,272 + lm_head 6,400 = 92,672 (no encoder)
    step = cost.decode(6)
    assert step.macs == 2 * 43_136 + 6_400 == 92_672
    modules = step.report.modules
    assert modules["model.encoder"].total.macs == 0
    assert modules["model.decoder.layers.0.encoder_attn.k_proj"].total.macs == 0
    assert modules["model.decoder.layers.0.encoder_attn.q_proj"].total.macs == 64 * 64
    # exact fits, 2 x MACs: prefill 2 (2 H hd L) T^2 = 512 T^2; slope 2 x (2 x (4 d^2 + 2 d^2 + 2 H S hd
    #   + 2 d FFN) + d V) = 2 x (2 x 42,240 + 6,400) = 181,760; constant 2 x (680,960 + 2 x 81,920) = 1,689,600
    assert cost.prefill_fit().polynomial.coefficients == (1_689_600, 181_760, 512)
    # decode: 2 x (2 x (4 d^2 + 2 H hd + 2 d^2 + 1,280 + 2 d FFN) + d V) = 182,272 and 2 x 2 x 2 H hd = 512 per n
    assert cost.decode_fit().polynomial.coefficients == (182_272, 512)
    # causal="needed" halves the decoder's self-attention only (the encoder's and the cross-attention's
    # scores are all kept): 2 layers x 2 (scores, sum) x H hd x (T^2 - T(T+1)/2 = 6) = 1,536 MACs fewer
    needed = llm_cost(tiny_bart(), prompt=T, source=S, dtype="float32", causal="needed")
    assert needed.prefill.macs == 1_212_416 - 1_536
    assert needed.encoder.macs == 680_960 and needed.decode(6).macs == 92_672


def test_bart_kv_cache_holds_the_cross_attention_cache() -> None:
    """P10-1: the KV cache is the self-attention cache and, per sequence, the cross-attention cache
    of the S encoder positions; the prefill writes it once and every decode step reads it whole."""
    cost = llm_cost(tiny_bart(), prompt=T, generate=3, source=S, dtype="float32")
    cache = cost.cache
    assert cache.bytes_per_token == 2 * 2 * H * HD * 4 == 1_024  # 2 (K, V) x 2 layers x 4 heads x 16 x 4 B
    assert cache.cross_bytes == 1_024 * S == 10_240  # the same per encoder position, S = 10 of them
    prefill, step = cost.prefill.bytes("paged"), cost.decode(6).bytes("paged")
    assert (prefill.kv_read, prefill.kv_write) == (0, 4 * 1_024 + 10_240)  # T = 4 tokens + the cross cache
    assert (step.kv_read, step.kv_write) == (7 * 1_024 + 10_240, 1_024)  # n + 1 = 7 tokens + the cross cache
    # the generation's most: prompt + generate - 1 = 6 tokens, and the cross cache: 6,144 + 10,240
    assert cache.bytes(6) == 16_384
    assert (
        llm_cost(tiny_bart(), prompt=T, source=S, kv_dtype="fp8").declared_cache.cross_bytes == 2_560
    )  # 2 x 2 x 4 x 16 x S x 1 B
    text = render_llm(cost)
    assert (
        "encoder-decoder: the prefill runs the encoder once over source S = 10 (10 encoder positions)" in text
    )
    assert "Encoder, S = 10 (once per sequence; inside the prefill below)" in text
    prefill_block = text.split("Prefill, T = 4 and the encoder over S = 10 (logits at every position")[1]
    assert "per token" not in prefill_block.split("Decode step")[0]  # T does not carry the encoder's work
    assert "cross-attention cache (10 encoder positions" in text and "10.00 KiB per sequence" in text
    assert "16.00 KiB for batch 1 at 6 tokens and the cross-attention cache" in text
    # N_mm's encoder part: 2 layers x (4 d^2 + 2 d FFN) = 2 x 32,768 = 65,536
    assert "N includes the encoder's 65,536 matmul weights" in text
    data = json.loads(json.dumps(cost.to_dict()))
    assert (data["source"], data["encoder_positions"], data["cross_kv_bytes"]) == (10, 10, 10_240)
    assert data["encoder"]["macs"] == 680_960
    assert data["encoder_matmul"] == 65_536


# (config, source positions and the encoder's input for them, MACs of a decode step after T = 4 tokens)
# BART: 2 layers x (self 4 d^2 = 16,384 + 2 H (T+1) hd = 640 + cross q, o 8,192 + 2 H S hd = 1,280
#   + FFN 16,384) + lm_head 6,400 = 2 x 42,880 + 6,400 = 92,160
# T5: 1 layer x (self 2,048 + 2 H (T+1) 8 = 160 + cross 1,024 + 320 + FFN 4,096) + lm_head 3,200 = 10,848
# Whisper over 16 positions: 2 x (16,384 + 640 + 8,192 + 2 H 16 hd = 2,048 + 16,384) + 6,400 = 93,696
GENERATE_CALLS = [
    (tiny_bart, 10, "input_ids", 92_160),
    (tiny_t5, 10, "input_ids", 10_848),
    (tiny_whisper, 32, "input_features", 93_696),
]


@pytest.mark.parametrize(("make", "source", "feed", "step_macs"), GENERATE_CALLS)
def test_traced_numbers_equal_a_plain_profile_of_the_same_forward_calls(
    make: object, source: int, feed: str, step_macs: int
) -> None:
    """The phases against flopmeter.profile of what generate runs on a real (CPU) model: the first
    forward (encoder + decoder over T), the encoder alone, and a decode step given the encoder
    output and the cache that first forward left (an EncoderDecoderCache with the cross K/V)."""
    torch.manual_seed(0)
    config = make()
    auto = (
        transformers.AutoModelForSpeechSeq2Seq
        if feed == "input_features"
        else transformers.AutoModelForSeq2SeqLM
    )
    model = auto.from_config(config, attn_implementation="eager").eval()  # FlopCounterMode misses CPU SDPA
    encoder_input = (
        {"input_features": torch.zeros(1, config.num_mel_bins, source)}
        if feed == "input_features"
        else {"input_ids": torch.zeros(1, source, dtype=torch.long)}
    )
    target = torch.zeros(1, T, dtype=torch.long)
    with torch.no_grad():
        first = model(**encoder_input, decoder_input_ids=target, use_cache=True)
    cache = first["cache"] if "cache" in first else first.past_key_values
    assert isinstance(cache, transformers.EncoderDecoderCache)
    encoder_out = transformers.modeling_outputs.BaseModelOutput(
        last_hidden_state=first.encoder_last_hidden_state
    )
    plain_prefill = flopmeter.profile(
        model, {**encoder_input, "decoder_input_ids": target, "use_cache": True}
    )
    plain_encoder = flopmeter.profile(model.get_encoder(), encoder_input)
    step_inputs = {"decoder_input_ids": target[:, :1], "encoder_outputs": encoder_out, "use_cache": True}
    plain_step = flopmeter.profile(model, {**step_inputs, "cache": copy.deepcopy(cache)})
    cost = llm_cost(model, prompt=T, source=source)
    assert (cost.prefill.flops, cost.prefill.macs) == (plain_prefill.flops, plain_prefill.macs)
    assert (cost.encoder.flops, cost.encoder.macs) == (plain_encoder.flops, plain_encoder.macs)
    assert (cost.decode(T).flops, cost.decode(T).macs) == (plain_step.flops, plain_step.macs)
    assert plain_step.macs == step_macs
    with torch.no_grad(), FlopCounterMode(display=False) as counted:  # torch's own count, a real run
        model(**step_inputs, cache=copy.deepcopy(cache))
    assert counted.get_total_flops() == 2 * step_macs
    assert not any(p.is_meta for p in model.parameters())  # the model left as it was


def test_t5_whose_heads_do_not_span_d() -> None:
    """T5 (no causal LM class: refused before) with source: d_kv x heads = 16 != d = 32."""
    cost = llm_cost(tiny_t5(), prompt=T, generate=3, source=S, dtype="float32")
    assert (cost.lm.layers, cost.lm.heads, cost.lm.head_dim) == (1, 2, 8)  # the decoder's, d_kv
    # encoder layer over S = 10: q, k, v 3 S d 16 = 15,360 + o 5,120 + scores 2 H S S 8 = 3,200 + FFN
    #   2 S d 64 = 40,960: 64,640; 2 layers 129,280
    assert cost.encoder.macs == 129_280
    # decode step at n: self q, k, v 3 x 512 + o 512 + cross q, o 1,024 + cross scores 2 H S 8 = 320
    #   + FFN 4,096 + lm_head d V = 3,200: 10,688 + self scores 2 H (n+1) 8 = 32 (n+1); 2 x MACs
    assert cost.decode_fit().polynomial.coefficients == (2 * (10_688 + 32), 64)
    # prefill: 2 x (32 T^2 + 10,688 T (lm_head of every position) + cross K/V 2 S d 16 = 10,240 + 129,280)
    assert cost.prefill_fit().polynomial.coefficients == (279_040, 21_376, 64)
    # caches: 1 layer x 2 heads x (8 + 8) x 4 B = 128 B per token; x S = 1,280 B of cross K/V
    assert (cost.cache.bytes_per_token, cost.cache.cross_bytes) == (128, 1_280)


def test_whisper_encodes_its_frames_once() -> None:
    """Whisper: source is the mel frames (2 x max_source_positions = 32 here), 16 encoder positions."""
    cost = llm_cost(tiny_whisper(), prompt=T, generate=3, source=32, dtype="float32")
    assert cost.lm.name == "WhisperForConditionalGeneration" and cost.lm.encoder_positions == 16
    # conv1 (8 -> 64, k 3) over 32 frames 32 x 64 x 8 x 3 = 49,152; conv2 (64 -> 64, k 3, stride 2) 16 x
    #   64 x 64 x 3 = 196,608; 2 layers over 16 positions x (4 x 16 d^2 + 2 H 16 16 hd + 2 x 16 d FFN
    #   = 557,056): 1,114,112
    assert cost.encoder.macs == 49_152 + 196_608 + 1_114_112 == 1_359_872
    # decode step after 6: 2 layers x (16,384 + 896 + 8,192 + cross 2 H 16 hd = 2,048 + 16,384)
    #   + proj_out 6,400 = 94,208
    assert cost.decode(6).macs == 94_208
    assert cost.cache.cross_bytes == 2 * 2 * H * HD * 16 * 4 == 16_384  # 16 positions, 4 B
    with pytest.raises(flopmeter.ModelError, match="length 32, but found 30"):
        llm_cost(tiny_whisper(), prompt=T, source=30)


def test_an_encoder_decoder_model_without_source_is_refused() -> None:
    """P10-1: without source a seq2seq model's numbers were wrong (encoder re-run per decode token);
    training_step ran it the same way. Both refuse it, naming source."""
    model = transformers.AutoModelForSeq2SeqLM.from_config(tiny_bart()).eval()
    with pytest.raises(ValueError, match="is an encoder-decoder model: LLM mode needs source=S"):
        llm_cost(model, prompt=T)
    with pytest.raises(ValueError, match="training_step does not model encoder-decoder training"):
        training_step(model, tokens=T)
    with pytest.raises(
        ValueError, match="T5Config is an encoder-decoder config: llm_cost counts it with source=S"
    ):
        llm_cost(tiny_t5(), prompt=T)
    with pytest.raises(ValueError, match="source must be a positive whole number"):
        llm_cost(model, prompt=T, source=0)
    llama = transformers.LlamaConfig(
        num_hidden_layers=1, hidden_size=64, intermediate_size=64, num_attention_heads=4, vocab_size=100
    )
    with pytest.raises(ValueError, match="LlamaConfig is not one"):
        llm_cost(llama, prompt=T, source=S)
    # Marian's default pad_token_id (58,100) outside a vocabulary of 100: transformers' assertion, named
    with pytest.raises(ValueError, match="could not build MarianConfig's model .*Padding_idx must be within"):
        llm_cost(transformers.MarianConfig(vocab_size=100, d_model=64), prompt=T, source=S)
    with pytest.raises(ValueError, match=r"could not build MarianConfig's model \(AutoModelForCausalLM\)"):
        llm_cost(transformers.MarianConfig(vocab_size=100, d_model=64), prompt=T)  # its decoder alone
    with pytest.raises(flopmeter.ModelError, match="Its source reaches 200 positions"):
        llm_cost(tiny_bart(), prompt=T, source=200)  # BART's learned positions: 128


def test_a_decoder_alone_takes_the_decoders_layers_and_heads() -> None:
    """P10-2: BartConfig's num_hidden_layers and num_attention_heads are the encoder's; the header and
    JSON of BartForCausalLM (the decoder alone) gave 6 layers of 8 heads of 8 for 2 of 4 of 16."""
    cost = llm_cost(tiny_bart(encoder_layers=6, encoder_attention_heads=8), prompt=8)
    assert (cost.lm.layers, cost.lm.heads, cost.lm.kv_heads, cost.lm.head_dim) == (2, 4, 4, 16)
    text = render_llm(cost)
    assert text.startswith("BartForCausalLM: 2 layers, hidden 64, 4 heads (4 KV), head dim 16")
    # P10-4: a BartConfig without source builds the decoder alone; the report now says so and how to ask
    assert (
        "NOTE: BartConfig is an encoder-decoder config; without a source length this is its decoder alone"
        in text
    )
    assert "Count the encoder-decoder with --source S" in text


BART_CLI = [
    "transformers:BartConfig", "--set", "vocab_size=100", "--set", "d_model=64", "--set", "encoder_layers=2",
    "--set", "decoder_layers=2", "--set", "encoder_attention_heads=4", "--set", "decoder_attention_heads=4",
    "--set", "encoder_ffn_dim=128", "--set", "decoder_ffn_dim=128", "--set", "max_position_embeddings=128",
    "--dtype", "float32",
]  # fmt: skip


def test_cli_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BART_CLI, "--prompt", "4", "--generate", "3", "--source", "10", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["model"], data["encoder"]["macs"], data["cross_kv_bytes"]) == (
        "BartForConditionalGeneration", 680_960, 10_240,
    )  # fmt: skip
    assert data["prefill"]["macs"] == 1_212_416
    for extra, said in (
        (["--source", "10"], "add --prompt T"),
        (["--prompt", "4", "--training", "--source", "10"], "--source: not for --training"),
    ):
        assert main([*BART_CLI, *extra]) == 2
        assert said in capsys.readouterr().err


@pytest.mark.parametrize("name", ["MarianConfig", "MBartConfig", "PegasusConfig"])
def test_the_bart_family_counts_as_bart(name: str) -> None:
    """Marian, mBART and Pegasus run BART's layers (their norms and positions cost no MACs)."""
    config = getattr(transformers, name)(
        vocab_size=V, d_model=D, encoder_layers=2, decoder_layers=2, encoder_attention_heads=H,
        decoder_attention_heads=H, encoder_ffn_dim=FFN, decoder_ffn_dim=FFN, max_position_embeddings=128,
        pad_token_id=0, decoder_start_token_id=0,
    )  # fmt: skip
    cost = llm_cost(config, prompt=T, source=16, dtype="float32")
    assert cost.encoder.macs == 2 * (4 * 16 * D * D + 2 * H * 16 * 16 * HD + 2 * 16 * D * FFN)  # 1,114,112
    # after 6 tokens, S = 16: 2 layers x (16,384 + 2 H 7 hd = 896 + 8,192 + 2 H 16 hd = 2,048 + 16,384)
    #   + lm_head 6,400 = 94,208
    assert cost.decode(6).macs == 94_208
    assert cost.cache.cross_bytes == 2 * 2 * H * HD * 16 * 4 == 16_384


def test_a_generation_past_whispers_target_positions_says_so() -> None:
    """Whisper's decoder table is max_target_positions (64 here): the last decode step of 4 + 100 - 1
    tokens indexes 102, and the error names the table (it named nothing)."""
    cost = llm_cost(tiny_whisper(), prompt=T, generate=100, source=32, dtype="float32")
    with pytest.raises(
        flopmeter.ModelError, match=r"reaches 103 positions, beyond the config's max_target_positions \(64\)"
    ):
        cost.last_decode  # noqa: B018 - traced on first use


def test_nllb_moe_decodes_with_the_encoder_output_it_reads() -> None:
    """NLLB-MoE's forward reads the encoder output's router_logits (a BaseModelOutput has none: the
    decode step failed). d = 32, 2 heads of 16, FFN 64, S = 8; dense (the default sparse step 4 makes
    every 4th layer sparse, and there are 2: sparse layers read routing values, which meta cannot give)."""
    config = transformers.NllbMoeConfig(
        vocab_size=100, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_experts=4,
        max_position_embeddings=64, pad_token_id=0,
    )  # fmt: skip
    cost = llm_cost(config, prompt=T, source=8, dtype="float32")
    # after 6 tokens, per layer: self 4 d^2 = 4,096 + 2 H 7 16 = 448; cross 2 d^2 = 2,048 + 2 H 8 16 = 512;
    #   FFN 2 d 64 = 4,096: 11,200; 2 layers 22,400 + lm_head d V = 3,200
    assert cost.decode(6).macs == 25_600
    assert (
        cost.cache.cross_bytes == 2 * 2 * 2 * 16 * 8 * 4 == 4_096
    )  # 2 layers x K, V x 2 heads x 16 x S x 4 B


def test_what_llm_mode_cannot_run_as_an_encoder_decoder_is_refused() -> None:
    """source= for a decoder-only model, and an encoder of images (VisionEncoderDecoder)."""
    decoder = transformers.BartForCausalLM(tiny_bart()).eval()
    with pytest.raises(ValueError, match="BartForCausalLM is a decoder-only model: drop source"):
        llm_cost(decoder, prompt=T, source=S)
    vit = transformers.ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=16,
    )
    gpt = transformers.GPT2Config(
        n_embd=32, n_layer=1, n_head=2, vocab_size=100, n_positions=64, add_cross_attention=True
    )
    images = transformers.VisionEncoderDecoderModel(
        transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(vit, gpt)
    )
    with pytest.raises(
        ValueError, match="encoder takes pixel_values: LLM mode makes token ids or audio features"
    ):
        llm_cost(images, prompt=T, source=4)


def test_the_cross_cache_read_is_kv_traffic_counted_once() -> None:
    """P10-3: the as-executed baseline (an empty cache) held the cross K/V, so their read by the
    cross-attention stayed in the activations, and the paged view counted it twice: as its KV read
    and in its activations (36,099 B of activations at S = 10, 46,339 at S = 20). The baseline now
    has an empty cross cache too: the paged activations do not grow with S."""
    short, long = (llm_cost(tiny_bart(), prompt=T, source=s, dtype="float32") for s in (10, 20))
    paged = [c.decode(6).bytes("paged") for c in (short, long)]
    assert paged[0].activations == paged[1].activations == 25_859
    # paged KV read: 7 x 1,024 + the cross cache S x 1,024
    assert [p.kv_read for p in paged] == [17_408, 27_648]
    # as executed at n = 0, the KV read is the cross cache's, read once by SDPA: S x 1,024
    assert [c.decode(0).bytes("as executed").kv_read for c in (short, long)] == [10_240, 20_480]


def test_switch_transformers_whose_forward_hands_use_cache_to_its_encoder() -> None:
    """Switch Transformers' forward passes its keyword arguments to its encoder, which refuses
    use_cache=True (every phase failed); the phases hand it the cache without the flag. Dense layers
    (sparse step 0: its experts read routing values, which the meta device cannot give)."""
    config = transformers.SwitchTransformersConfig(
        num_layers=2, num_decoder_layers=2, d_model=32, d_kv=8, num_heads=2, d_ff=64, vocab_size=100,
        encoder_sparse_step=0, decoder_sparse_step=0,
    )  # fmt: skip
    cost = llm_cost(config, prompt=T, source=8, dtype="float32")
    # T5's layers (inner 16), S = 8, after 6 tokens: self 4 x 512 + 2 H 7 8 = 224; cross 2 x 512 + 2 H 8 8
    #   = 256; FFN 2 d 64 = 4,096: 7,648; 2 layers 15,296 + lm_head 3,200
    assert cost.decode(6).macs == 18_496
    assert cost.cache.cross_bytes == 2 * 2 * 2 * 8 * 8 * 4 == 2_048  # 2 layers x K, V x 2 heads x 8 x S x 4 B


def test_fits_of_whisper_stay_within_its_target_positions() -> None:
    """The fits' lengths shrink to a position table shorter than 64 + 1 (GPT-2's n_positions); Whisper's
    is max_target_positions (64 here), which they did not read: a prompt of 16 (one of the decode
    fit's points) put its check at n = 64, a trace of 65 positions that failed. Now n = 15, 30,
    checked at 16 (step (64 - 1) // 4 = 15)."""
    found = llm_cost(tiny_whisper(), prompt=16, source=32, dtype="float32").decode_fit()
    assert ([x for x, _ in found.points], found.check[0], found.exact) == ([15, 30], 16, True)
    # 2 x (2 layers x (16,384 + 2 H hd + 8,192 + 2,048 + 16,384) + 6,400) + 2 x 2 x 2 H hd n
    assert found.polynomial.coefficients == (2 * (2 * (16_384 + 128 + 8_192 + 2_048 + 16_384) + 6_400), 512)


@pytest.mark.parametrize("family", ["switch", "nllb"])
def test_sparse_expert_layers_are_the_models_error(family: str) -> None:
    """docs/llm.md's limits: the sparse layers of Switch Transformers and NLLB-MoE route by the
    router's values, which the meta device cannot give: the model's error, naming the experts."""
    if family == "switch":
        config = transformers.SwitchTransformersConfig(
            num_layers=2, num_decoder_layers=2, d_model=32, d_kv=8, num_heads=2, d_ff=64, vocab_size=100,
            num_experts=2, encoder_sparse_step=1, decoder_sparse_step=1,
        )  # fmt: skip
    else:
        config = transformers.NllbMoeConfig(
            vocab_size=100, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_experts=2,
            encoder_sparse_step=1, decoder_sparse_step=1, max_position_embeddings=64, pad_token_id=0,
        )  # fmt: skip
    with pytest.raises(
        flopmeter.ModelError, match=r"the model raised .* in module '(model\.)?encoder\.[^']*experts'"
    ):
        llm_cost(config, prompt=T, source=8, dtype="float32")
