"""The command line's LLM mode (``--prompt``, ``--training``): its options, their checks,
and the call into ``flopmeter.llm``; rendering is in ``render/llm.py``."""

from __future__ import annotations

import argparse
import math
from typing import TextIO

from .cli_usage import UsageError, units_option
from .models import load_model, parse_override, source_kind


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of LLM mode (``--prompt``): prefill, decode, KV cache, tokens/s, training."""
    group = parser.add_argument_group(
        "LLM mode (a transformers causal LM config, built on meta, or a causal LM FILE.py:CALLABLE builds)",
        "e.g. flopmeter transformers:LlamaConfig --prompt 2048 --generate 256 --roofline h100-sxm,a100-sxm-80gb",
    )
    group.add_argument("--prompt", type=int, metavar="T", help="prompt tokens: prefill, decode and tokens/s")
    group.add_argument("--generate", type=int, metavar="G", help="tokens generated (default 1)")
    group.add_argument(
        "--source",
        type=int,
        metavar="S",
        help="encoder-decoder (BART, T5, Whisper): the encoder's input length, tokens or mel frames",
    )
    group.add_argument(
        "--all-logits",
        action="store_true",
        help="prefill computes logits at every position (default: last only)",
    )
    group.add_argument(
        "--kv-dtype", metavar="DTYPE", help="what-if KV-cache dtype: fp8, int8, int4, bf16 or bits"
    )
    group.add_argument(
        "--weight-bits", type=int, metavar="BITS", help="what-if weight bits for the roofline, e.g. 4"
    )
    group.add_argument(
        "--dtype", metavar="DTYPE", help="a config's build dtype: bfloat16 (default), float16, float32"
    )
    group.add_argument(
        "--training",
        action="store_true",
        help="count a training step of --prompt tokens per sequence (and MFU)",
    )
    group.add_argument(
        "--step-time", type=float, metavar="S", help="with --training: measured seconds per step"
    )
    group.add_argument(
        "--tokens-per-second", type=float, metavar="X", help="with --training: measured global tokens/s"
    )
    group.add_argument("--devices", type=int, default=1, metavar="N", help="with --training: devices for MFU")
    group.add_argument(
        "--recompute", action="store_true", help="with --training: full activation recompute (HFU)"
    )
    group.add_argument("--optimizer", action="store_true", help="with --training: add AdamW's FLOPs (HFU)")


def run_llm(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """LLM mode, its text to ``out`` or to the ``-o`` file."""
    if not args.output:
        return _run_llm(args, out, err)
    import io

    from .cli import _write_file

    text = io.StringIO()
    code = _run_llm(args, text, err)
    _write_file("--output", args.output, lambda handle: handle.write(text.getvalue()), err)
    return code


def _run_llm(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """LLM mode: build the config on meta (or the model a FILE.py builds), orchestrate the
    traces, render."""
    from . import hardware as hw
    from .llm import llm_cost
    from .llm.training import training_step
    from .render.llm import plot_cost_vs_length, render_llm, render_training

    kind = source_kind(args.model) if args.model else ""  # the name is checked when it is built
    model_file = kind == "file"
    if kind not in ("transformers", "file"):
        raise UsageError(
            "--prompt works on a transformers causal LM config (transformers:NAME, a config.json or a "
            "model folder), e.g. flopmeter transformers:LlamaConfig --prompt 2048 --generate 256, "
            "or on a causal LM built in a Python file (FILE.py:CALLABLE, a quantized or pruned one); "
            "other models go through Python: flopmeter.llm_cost(model, prompt=2048, generate=256) (docs/llm.md)"
        )
    if model_file and args.dtype is not None:
        raise UsageError(
            f"--dtype builds a config in that dtype; {args.model} builds a model, used as it is built: "
            "drop --dtype (or convert the model in the file, e.g. model.to(torch.bfloat16))"
        )
    if args.prompt is None or args.prompt < 1:
        raise UsageError("LLM mode needs --prompt T with T >= 1 tokens")
    if args.weight_bits is not None and not args.roofline:
        raise UsageError(
            "--weight-bits scales the roofline's weight bytes: add --roofline PRESET, e.g. h100-sxm"
        )
    if args.training and args.generate is not None:
        raise UsageError("--training counts one training step of --prompt tokens; --generate is for serving")
    if args.bench:
        raise UsageError(
            "--bench does not time LLM mode (--prompt): it estimates with --roofline; "
            "time a transformers model with flopmeter transformers:CONFIG --input ... --bench"
        )
    _refuse_options_llm_mode_does_not_take(args)
    _refuse_options_of_the_other_mode(args)
    _check_values(args)
    overrides = dict(parse_override(text) for text in args.set)
    where = "on meta" if not model_file or args.meta else "built by the file"
    print(f"flopmeter: LLM mode, {args.model} {where} ...", file=err, flush=True)
    # a config is built on meta; a model file builds its own model (a compressed one, say),
    # passed as it is: on meta only with --meta, as when counting one forward
    model_or_config = (
        _causal_lm_from_file(args, overrides)
        if model_file
        else load_model(args.model, overrides=overrides, meta=True).model.config
    )
    batch = args.batch_size or 1
    presets = [hw.get(name) for name in roofline_names(args)]
    if args.training:
        step = training_step(
            model_or_config,
            tokens=args.prompt,
            batch=batch,
            recompute=args.recompute,
            optimizer=args.optimizer,
            dtype=args.dtype,
        )
        measured = args.step_time is not None or args.tokens_per_second is not None
        mfu = (
            step.mfu(
                presets[0],
                devices=args.devices,
                step_time=args.step_time,
                tokens_per_second=args.tokens_per_second,
            )
            if measured
            else None
        )
        basis = (
            (
                presets[0],
                args.devices,
                step.rate(step_time=args.step_time, tokens_per_second=args.tokens_per_second),
            )
            if measured
            else None
        )
        out.write(render_training(step, mfu, units=units_option(args), precision=args.precision, basis=basis))
        return 0
    cost = llm_cost(
        model_or_config,
        prompt=args.prompt,
        generate=1 if args.generate is None else args.generate,
        batch=batch,
        all_logits=args.all_logits,
        causal=args.causal,
        dtype=args.dtype,
        kv_dtype=_bits_or_name(args.kv_dtype),
        source=args.source,
    )
    servings = [cost.serving(spec) for spec in presets]
    if args.weight_bits is not None or args.kv_dtype is not None:  # what-if rows
        servings += [
            cost.serving(spec, weight_bits=args.weight_bits, kv_bits=cost.kv_dtype) for spec in presets
        ]
    if args.format == "json":
        import json

        out.write(json.dumps(cost.to_dict(servings), indent=2) + "\n")
    elif args.format not in (None, "tree", "table"):
        raise UsageError(f"LLM mode writes text or --format json, not {args.format}")
    else:
        out.write(
            render_llm(cost, servings, depth=args.depth, units=units_option(args), precision=args.precision)
        )
    if args.plot:
        from .cli import _write_file

        _write_file("--plot", args.plot, lambda _: plot_cost_vs_length(cost, args.plot), err)
    return 0


def _causal_lm_from_file(args: argparse.Namespace, overrides: dict[str, object]) -> object:
    """The model FILE.py:CALLABLE builds (``--set`` values as its arguments, as when counting
    one forward), refused (exit 2) unless it is a transformers model, with a ``.config``: what
    ``llm_cost`` and ``training_step`` take. A model with one that is no causal LM (BERT, an
    encoder-decoder model without --source) is refused by them, a ValueError (exit 2)."""
    model = load_model(args.model, overrides=overrides, meta=args.meta, example_inputs=False).model
    if getattr(model, "config", None) is None:
        raise UsageError(
            f"LLM mode needs a causal language model (a transformers model with a .config, e.g. "
            f"AutoModelForCausalLM.from_config(config), quantized or pruned as you like); {args.model} "
            f"built a {type(model).__name__}, which has no config: drop --prompt / --training to count "
            "one forward of it"
        )
    return model


# Options of a forward count that LLM mode would ignore (--meta: it builds a config on meta anyway,
# and a FILE.py model on meta when given;
# --color: its text is plain), by dest and the name the user typed.
NOT_IN_LLM_MODE = {
    "input": "--input", "dim": "--dim", "backward": "--backward", "train": "--train",
    "convention": "--convention", "by": "--by", "sort": "--sort", "top": "--top", "html": "--html",
    "batch_sizes": "--batch-sizes", "warmup": "--warmup", "repeat": "--repeat", "threads": "--threads",
    "per_module": "--per-module", "fold": "--no-fold", "compression": "--compression",
    "assume_sparsity": "--assume-sparsity", "assume_bits": "--assume-bits",
    "count_overhead": "--count-overhead", "micronet": "--micronet", "quiet": "-q",
}  # fmt: skip


def _refuse_options_llm_mode_does_not_take(args: argparse.Namespace) -> None:
    """Every option of a forward count given in LLM mode was silently ignored (an ``--html``
    file never written, ``--input`` or ``--backward`` not applied): refused, exit 2."""
    from .cli import options_changed

    given = options_changed(args, NOT_IN_LLM_MODE)
    if given:
        raise UsageError(
            f"{', '.join(given)}: not taken in LLM mode (--prompt / --training), which prints its own "
            "prefill, decode and serving report; drop --prompt to count one forward with them"
        )


TRAINING_ONLY_OPTIONS = ("step_time", "tokens_per_second", "recompute", "optimizer")
SERVING_ONLY_OPTIONS = ("all_logits", "kv_dtype", "weight_bits", "plot", "source")


def _refuse_options_of_the_other_mode(args: argparse.Namespace) -> None:
    """A training-step option when serving, or a serving option with --training, would be
    silently ignored (P3-L5); so would --format json or --depth with --training."""
    if args.devices < 1:
        raise UsageError(f"--devices must be at least 1, got {args.devices}")
    if args.training:
        ignored = [name for name in SERVING_ONLY_OPTIONS if getattr(args, name) not in (None, False)]
        ignored += ["format " + args.format] if args.format not in (None, "tree", "table") else []
        ignored += ["depth"] if args.depth is not None else []
        if ignored:
            options = ", ".join("--" + name.replace("_", "-") for name in ignored)
            raise UsageError(
                f"{options}: not for --training, which prints its step's FLOPs and MFU as text; "
                "drop --training to serve (prefill, decode, KV cache, roofline)"
            )
        for name in ("step_time", "tokens_per_second"):  # before the trace, not after it
            value = getattr(args, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UsageError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
        if args.step_time is not None and args.tokens_per_second is not None:
            raise UsageError("give --step-time or --tokens-per-second, not both (one measured rate)")
        measured = args.step_time is not None or args.tokens_per_second is not None
        if args.devices != 1 and not measured:
            raise UsageError(
                "--devices counts the devices of a measured step: add --step-time or --tokens-per-second"
            )
        if measured and len(roofline_names(args)) != 1:
            raise UsageError(
                "MFU needs exactly one --roofline preset (the device), e.g. --roofline a100-sxm-80gb"
            )
        return
    ignored = [name for name in TRAINING_ONLY_OPTIONS if getattr(args, name) not in (None, False)]
    ignored += ["devices"] if args.devices != 1 else []
    if ignored:
        options = ", ".join("--" + name.replace("_", "-") for name in ignored)
        raise UsageError(
            f"{options}: options of a training step: add --training, e.g. flopmeter "
            "transformers:LlamaConfig --prompt 4096 --training --roofline a100-sxm-80gb --step-time 0.9"
        )


LLM_ONLY_OPTIONS = ("generate", "all_logits", "kv_dtype", "weight_bits", "dtype", "step_time",
                    "tokens_per_second", "recompute", "optimizer", "source")  # fmt: skip


def refuse_llm_options_alone(args: argparse.Namespace) -> None:
    """An LLM-mode option without --prompt / --training would be silently ignored."""
    given = [name for name in LLM_ONLY_OPTIONS if getattr(args, name) not in (None, False)]
    if args.devices != 1:
        given.append("devices")
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(
            f"{options} {'is an option' if len(given) == 1 else 'are options'} of LLM mode: add "
            "--prompt T (or --training), e.g. "
            "flopmeter transformers:LlamaConfig --prompt 2048 --generate 256"
        )


def roofline_names(args: argparse.Namespace) -> list[str]:
    """The --roofline preset: one name, or in LLM mode a comma list (h100-sxm,a100-sxm-80gb)."""
    if not args.roofline:
        return []
    if args.prompt is None and not args.training:
        return [args.roofline]
    return [name.strip() for name in args.roofline.split(",") if name.strip()]


def _check_values(args: argparse.Namespace) -> None:
    """Values the traces would refuse only after building and tracing the model (--weight-bits
    after the whole cost): checked first, exit 2 naming the option (README: option values are
    checked before anything is counted)."""
    from .llm.kv import MAX_BITS, bits_of
    from .llm.model import _torch_dtype

    for name in ("generate", "source", "weight_bits"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.weight_bits is not None and args.weight_bits > MAX_BITS:
        raise UsageError(
            f"--weight-bits must be at most {MAX_BITS} (float64's bits per weight), got {args.weight_bits}"
        )
    try:
        if args.kv_dtype is not None:
            bits_of(int(args.kv_dtype) if args.kv_dtype.isdigit() else args.kv_dtype)
    except ValueError as error:
        raise UsageError(f"--kv-dtype: {error}") from None
    try:
        if args.dtype is not None:
            _torch_dtype(args.dtype)
    except ValueError as error:
        raise UsageError(f"--dtype: {error}") from None


def _bits_or_name(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.isdigit() else value
