"""The ``flopmeter`` command: load a model, build inputs, call the library, render.

A thin shell: no counting logic lives here. Exit codes: 0 success, 2 bad usage
(unknown model, bad shape spec, bad option value, a path that cannot be written),
1 the model itself failed (building or running it), 130 interrupted (Ctrl-C),
141 the reader of our output went away (a closed pipe), quietly.
Every option is checked before the model is built.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TextIO

from .api import ModelError, profile
from .cli_llm import add_llm_arguments, refuse_llm_options_alone, roofline_names, run_llm
from .cli_usage import UsageError, units_option
from .inputs import InputSpec, parse_spec
from .models import ModelBuildError, ModelSourceError, check_source, load_model, parse_override, source_files
from .notices import FlopmeterWarning
from .render.units import MAX_PRECISION, check_precision
from .report import CONVENTIONS, ONNX_TOOL, Report

EXAMPLES = """\
examples:
  flopmeter torchvision:alexnet                       the per-layer tree (the seed's example)
  flopmeter torchvision:resnet50 --input 8x3x224x224 --depth 2
  flopmeter timm:vit_base_patch16_224 --by op         cost per operator type
  flopmeter transformers:LlamaConfig --set num_hidden_layers=80 --set hidden_size=8192 \\
      --set intermediate_size=28672 --set num_attention_heads=64 --set num_key_value_heads=8 \\
      --input input_ids:1x2048:int64 --meta           a 70B-class model, no memory needed
  flopmeter path/to/my_model.py:build_model --input 1x3x32x32
  flopmeter torchvision:resnet50 --format json > cost.json
  flopmeter compare torchvision:resnet50 torchvision:mobilenet_v3_large
  flopmeter model.onnx --input x:1x3x224x224 --dim T=2048   an ONNX file (weights never read)
  flopmeter model.pt2                               a torch.export.save'd program, on its example inputs
"""


USAGE = """\
flopmeter [options] MODEL
       flopmeter compare [options] MODEL MODEL [MODEL ...]
       flopmeter --list-hardware | --version | --help"""


def build_parser(compare: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flopmeter compare" if compare else "flopmeter",
        usage=None if compare else USAGE,
        description=(
            "Compare the params, MACs and FLOPs of several models side by side."
            if compare
            else "Count the FLOPs, MACs, params and memory traffic of a model, per layer."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if compare:
        parser.add_argument("models", nargs="+", metavar="MODEL", help="two or more model sources")
    else:
        parser.add_argument(
            "model",
            nargs="?",
            metavar="MODEL",
            help="torchvision:NAME, timm:NAME, transformers:CONFIGCLASS, a config.json or model dir, "
            "or FILE.py:CALLABLE (a class or function returning an nn.Module); e.g. torchvision:alexnet",
        )
    parser.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="SPEC",
        help="an input shape, with optional name and dtype: 1x3x224x224, input_ids:1x128:int64; "
        "repeat for several arguments (default: the model's documented input)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model/config override, e.g. --set num_hidden_layers=2 (values read as JSON)",
    )
    parser.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="ONNX models: bind a symbolic dim, e.g. --dim T=2048, or a Loop node's trip count (repeat for several)",
    )
    parser.add_argument(
        "--meta",
        action="store_true",
        help="build the model on the meta device: no memory for weights (e.g. 70B configs)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="set the leading dimension of every input, e.g. --batch-size 8",
    )
    parser.add_argument("--backward", action="store_true", help="count forward + backward (a training step)")
    parser.add_argument("--train", action="store_true", help="run in train mode (dropout, batch statistics)")
    parser.add_argument(
        "--causal",
        choices=["full", "needed"],
        default="full",
        help="count causal attention dense (full, default) or only the kept half (needed)",
    )
    parser.add_argument(
        "--convention",
        choices=(*CONVENTIONS, ONNX_TOOL),
        default="exact",
        help="FLOPs column: exact (default, the seed's), 2mac, mac or ptflops; onnx-tool for an ONNX file",
    )
    parser.add_argument(
        "--units",
        choices=["auto", "T", "G", "M", "K", "plain"],
        default="auto",
        help="units of counts, e.g. --units G (default auto)",
    )
    parser.add_argument("--precision", type=int, default=2, metavar="N", help="decimals shown (default 2)")
    if not compare:
        parser.add_argument(
            "--depth", type=int, metavar="N", help="show modules down to depth N, e.g. --depth 2"
        )
        parser.add_argument(
            "--by",
            choices=["module", "op"],
            default="module",
            help="one row per module (default) or per aten operator (--by op)",
        )
        parser.add_argument(
            "--sort",
            choices=["flops", "macs", "params", "bytes", "name"],
            help="sort table rows, e.g. --sort flops (implies --format table)",
        )
        parser.add_argument(
            "--top",
            type=int,
            metavar="N",
            help="only the N most expensive leaf modules (containers repeat their children's cost) "
            "or operators (--by op), e.g. --top 10",
        )
        parser.add_argument(
            "--format",
            "-f",
            choices=["tree", "table", "json", "csv", "markdown"],
            help="output format (default tree; table with --by op, --sort or --top)",
        )
        parser.add_argument(
            "--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout"
        )
        parser.add_argument(
            "--html", metavar="FILE", help="also write a self-contained HTML report, e.g. report.html"
        )
        parser.add_argument(
            "--plot",
            metavar="FILE",
            help="also write charts of where the cost sits (PNG/SVG/PDF), e.g. layers.png",
        )
    if not compare:
        parser.add_argument(
            "--roofline",
            metavar="HARDWARE",
            help="per-layer roofline estimate on a preset (e.g. h100-sxm, a100-sxm-80gb; see "
            "--list-hardware) or 'local' (measures this machine)",
        )
        parser.add_argument("--list-hardware", action="store_true", help="list the hardware presets and exit")
        parser.add_argument(
            "--bench", action="store_true", help="measure real latency (warm-up, repeated runs)"
        )
        parser.add_argument(
            "--batch-sizes",
            metavar="N,N,...",
            help="with --bench and/or --roofline: sweep batch sizes, e.g. 1,8,32 (with --plot, also a "
            "chart of where the model turns overhead-, memory-, compute-bound)",
        )
        parser.add_argument(
            "--warmup", type=int, default=10, metavar="N", help="with --bench: warm-up runs (>= 1)"
        )
        parser.add_argument("--repeat", type=int, default=50, metavar="N", help="with --bench: timed runs")
        parser.add_argument(
            "--threads",
            type=int,
            metavar="N",
            help="torch CPU threads for --bench and --roofline local, e.g. --threads 1 (1 to 4 x the CPUs; default: torch's)",
        )
        parser.add_argument(
            "--per-module",
            action="store_true",
            help="with --bench: also time each module (hooks; overhead shown)",
        )
        parser.add_argument(
            "--fold",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="fold runs of identical blocks in the tree (default on; --no-fold shows every block)",
        )
        parser.add_argument(
            "--color",
            choices=["auto", "always", "never"],
            default="auto",
            help="colour the tree with rich: auto (when a terminal), always or never",
        )
    _add_compression_arguments(parser, compare)
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="the totals only (in any --format: JSON stays JSON)"
    )
    if not compare:
        from . import __version__

        parser.add_argument("--version", action="version", version=f"flopmeter {__version__}")
        add_llm_arguments(parser)
    return parser


def _add_compression_arguments(parser: argparse.ArgumentParser, compare: bool) -> None:
    """Options of the compression view (docs/compression.md)."""
    group = parser.add_argument_group("compression (pruned, sparse, quantized models)")
    group.add_argument(
        "--compression",
        action="store_true",
        help="print the compression view (nonzeros, bits, BOPs, bytes): reads every weight to count "
        "its zeros, which a plain count does not (JSON: nonzeros unknown) unless the model holds "
        "prune masks or quantized weights; with compare: the before/after table of two models",
    )
    group.add_argument(
        "--assume-sparsity",
        metavar="S",
        help="what-if: every weight this sparse, 0.5 or a pattern such as 2:4 (compare: of the second model)",
    )
    group.add_argument(
        "--assume-bits",
        metavar="WxAy",
        help="what-if: weight/activation bits, e.g. w4a16, w8a8 (compare: of the second model)",
    )
    group.add_argument(
        "--count-overhead",
        action="store_true",
        help="count mask multiplies and quantize/dequantize in the model's FLOPs (default: overhead bucket)",
    )
    group.add_argument(
        "--micronet",
        choices=["imagenet", "cifar100", "wikitext103"],
        help="print the MicroNet score (per sample)",
    )
    if compare:
        group.add_argument(
            "--format",
            "-f",
            choices=["text", "markdown", "json", "csv", "html"],
            default="text",
            help="output format (html only with --compression)",
        )
        group.add_argument(
            "--plot", metavar="PATH", help="with --compression: save bars of the ratios per module"
        )
        group.add_argument(
            "--hardware",
            metavar="NAME",
            help="preset for the speedup estimate (default a100-sxm-80gb; see --list-hardware), "
            "or 'local' (measures this machine)",
        )
        group.add_argument(
            "--baseline",
            choices=["auto", "float32", "tfloat32", "float16", "bfloat16"],
            help="with --compression: precision the float work of both models runs at in the speedup estimate "
            "(default auto: the hardware's 16-bit float where it is faster than float32)",
        )
        group.add_argument(
            "--bench", action="store_true", help="time every model, same run (median of 20 runs)"
        )
        group.add_argument(
            "--threads",
            type=int,
            metavar="N",
            help="with --bench: torch CPU threads, e.g. --threads 1 (steadier on a busy machine)",
        )


def _compression_options(args: argparse.Namespace) -> Any:
    from .compression import CompressionOptions

    return CompressionOptions(
        assume_sparsity=args.assume_sparsity,
        assume_bits=args.assume_bits,
        count_overhead=args.count_overhead,
        # reading every weight's values is for the view (and MicroNet's score) only
        count_nonzeros=_wants_view(args) or bool(getattr(args, "micronet", None)),
    )


def _compression_text(report: Report, args: argparse.Namespace) -> str:
    from .compression.micronet import micronet
    from .render.compression import micronet_line, view_table

    parts = []
    if _wants_view(args) and not _view_in_columns(args):
        parts.append(view_table(report.compression, precision=args.precision, units=units_option(args)))
    if args.micronet:
        parts.append(micronet_line(micronet(report.compression, args.micronet)))
    return "\n".join(parts) + "\n" if parts else ""


def _compression_elsewhere(report: Report, args: argparse.Namespace, text: str, err: TextIO) -> str:
    """The view's totals and the MicroNet score where ``_compression_text`` is not printed
    (``-q``, Markdown, CSV, JSON): never dropped in silence."""
    from .compression.micronet import micronet
    from .render.compression import micronet_extra, view_summary_lines

    fmt = _format(args)
    if args.quiet and fmt in ("tree", "table") and _wants_view(args):
        text += "\n".join(view_summary_lines(report.compression, args.precision, units_option(args))) + "\n"
    if args.by == "op" and _wants_view(args) and fmt in ("markdown", "csv"):  # no per-module rows to carry it
        from .render.compression import OPERATOR_CSV_NOTE, view_summary_markdown

        if fmt == "csv":
            err.write(OPERATOR_CSV_NOTE + "\n")
        else:
            text += (
                "\n".join(view_summary_markdown(report.compression, args.precision, units_option(args)))
                + "\n"
            )
    if not args.micronet:
        return text
    text, note = micronet_extra(micronet(report.compression, args.micronet), text, fmt)
    if note:
        err.write(note)
    return text


_VIEW_OPTIONS = ("compression", "assume_sparsity", "assume_bits")


def _wants_view(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) for name in _VIEW_OPTIONS)


def _view_in_columns(args: argparse.Namespace) -> bool:
    """Whether the module tree or table that ``render`` prints carries the view's
    columns (not the roofline / timing tables, nor --by op)."""
    speed = getattr(args, "roofline", None) or getattr(args, "bench", False)
    return args.by == "module" and not speed


def _compare_compression(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .compression.compare import compare

    if len(args.models) != 2:
        raise UsageError("compare --compression takes two models: the original and the compressed one")
    reports = []
    loaded = []
    for index, source in enumerate(args.models, start=1):
        print(f"flopmeter: [{index}/2] counting {source} ...", file=err, flush=True)
        # --assume-* is the plan: it applies to the second model, the first stays as it is
        as_is = argparse.Namespace(
            **{**vars(args), "assume_sparsity": None, "assume_bits": None, "compression": True}
        )
        report, model, inputs = _load_and_profile(source, args if index == 2 else as_is, err)
        reports.append(_named_by_file(report, source))
        loaded.append((model, inputs))
    result = compare(reports[0], reports[1], hardware=args.hardware, baseline=args.baseline or "auto")
    if args.bench:
        seconds = _median_seconds(loaded, args)
        result.measured = {"before": seconds[0], "after": seconds[1]}
        result.measured_speedup = seconds[0] / seconds[1] if seconds[1] else None
    shown = dataclasses.replace(result, totals_only=True) if args.quiet else result  # -q: the total row only
    text = {
        "markdown": shown.to_markdown,
        "json": shown.to_json,
        "csv": shown.to_csv,
        "html": shown.to_html,
        "text": lambda: str(shown) + "\n",
    }[args.format]()
    out.write(text if text.endswith("\n") else text + "\n")
    if args.plot:  # an OSError (a path access() let through) is a message, as for the single-model --plot
        _write_file("--plot", args.plot, lambda _: result.plot(args.plot), err)
    return 0


def _median_seconds(loaded: list[tuple[Any, Any]], args: argparse.Namespace) -> list[float]:
    """compare --bench: the median of 20 timed runs of each (model, inputs), one after another."""
    import torch

    from .timing import benchmark

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return [
        benchmark(model, inputs, repeat=20)[0].median
        if isinstance(inputs, tuple)  # arguments already built (image lists)
        else benchmark(model, input_shape=inputs, repeat=20)[0].median
        for model, inputs in loaded
    ]


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Entry point; returns the exit code (0 ok, 1 the model failed, 2 bad usage,
    130 interrupted, 141 output pipe closed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out, err = stdout or sys.stdout, stderr or sys.stderr
    compare = bool(argv) and argv[0] == "compare"
    parser = build_parser(compare)
    try:
        try:
            args = parser.parse_args(argv[1:] if compare else argv)
        except SystemExit as exit_:  # argparse already printed its message (or --help)
            return int(exit_.code or 0)
        try:
            # the report goes to ``out``; a model's own print() goes to stderr, not into it
            with contextlib.redirect_stdout(err), warnings.catch_warnings():
                warnings.showwarning = _warning_printer(err)
                validate(args, compare)
                if compare:
                    return _compare(args, out, err)
                return _single(args, out, err)
        except (UsageError, ModelSourceError, ValueError) as error:
            print(f"flopmeter: error: {error}", file=err)
            return 2
        except (ModelError, ModelBuildError) as error:
            print(f"flopmeter: the model failed: {error}", file=err)
            return 1
        except SystemExit as exit_:  # the model's own code called sys.exit()
            print(f"flopmeter: the model failed: it called sys.exit({exit_.code!r})", file=err)
            return 1
    except KeyboardInterrupt:
        print("\nflopmeter: interrupted", file=err)
        return 130
    except BrokenPipeError:
        _drop_stdout(out)
        return 141


def _warning_printer(err: TextIO) -> Callable[..., None]:
    """``warnings.showwarning`` for the command: flopmeter's own warnings as one line,
    ``flopmeter: warning: ...`` (Python's format named the torch file that fired the hook);
    every other warning as Python prints it, on the command's error stream.
    ``catch_warnings`` puts the original back."""
    shown = warnings.showwarning

    def show(
        message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        if issubclass(category, FlopmeterWarning):
            print(f"flopmeter: warning: {message}", file=err)
        else:
            shown(message, category, filename, lineno, err if file is None else file, line)

    return show


def _drop_stdout(out: TextIO) -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final
    flush does not raise a second BrokenPipeError."""

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests): nothing to flush
        pass


# checks made before the model is built ----------------------------------------------


def validate(args: argparse.Namespace, compare: bool = False) -> None:
    """Every option that can be checked without the model, so a mistake costs no
    counting time. Raises UsageError (exit 2)."""
    check_ranges(args)
    _compression_options(args)  # a bad --assume-sparsity / --assume-bits: exit 2 before counting
    _input_specs(args)  # parse errors now, not after the model is built
    for text in args.set:
        parse_override(text)
    if compare:
        for source in args.models:
            check_source(source)
        check_compare_options(args)
        if args.hardware and args.hardware not in ("local", "local-cpu", "local-cuda"):
            from . import hardware as hw

            hw.get(args.hardware)  # ValueError (exit 2) naming the presets, before counting
        return
    check_combinations(args)
    check_outputs(args)
    if args.roofline:
        from . import hardware as hw

        for name in roofline_names(args):  # LLM mode takes a comma list
            if name != "local":
                hw.get(name)  # ValueError (exit 2) naming the presets


def check_compare_options(args: argparse.Namespace) -> None:
    """compare's options that only --compression uses, refused without it (they would be
    silently ignored), and --bench's needs."""
    if args.micronet:
        raise UsageError("--micronet scores one model: run flopmeter MODEL --micronet TASK for each")
    if args.threads is not None and not args.bench:
        raise UsageError("--threads sets the threads --bench times with: add --bench")
    if args.dim and not _onnx_models(args):  # P5-D21
        raise UsageError("--dim binds the symbolic dims of an ONNX file, and no model compared is one")
    _check_onnx_in_compare(args)
    if args.bench:
        if args.meta:
            raise UsageError("--bench times real computation: drop --meta")
        _check_bench_mode(args)
        onnx = _onnx_models(args)
        if onnx:
            raise UsageError(
                f"compare --bench times PyTorch models; {onnx[0]} is an ONNX file "
                "(time it alone: flopmeter MODEL.onnx --bench)"
            )
    if _wants_view(args):
        onnx_files = _onnx_models(args)
        if onnx_files:  # refused before counting (it was refused after, in the Python API's words)
            asked = [f"--{name.replace('_', '-')}" for name in _VIEW_OPTIONS if getattr(args, name)]
            raise UsageError(
                f"{', '.join(asked)}: the compression view needs PyTorch models; {onnx_files[0]} is an "
                "ONNX file (its quantized contractions are listed with their bits in its report: docs/onnx.md)"
            )
        return
    given = [
        option
        for option, value in (
            ("--plot", args.plot),
            ("--hardware", args.hardware),
            ("--baseline", args.baseline),
            ("--format html", args.format == "html"),
        )
        if value
    ]
    if given:
        raise UsageError(
            f"compare {', '.join(given)} {'is' if len(given) == 1 else 'are'} for the before/after "
            "table of --compression: add --compression (plain compare writes text, markdown, csv or json)"
        )


def _onnx_models(args: argparse.Namespace) -> list[str]:
    """compare: the models given that are ONNX files, in order."""
    from .onnx.source import is_onnx_source

    return [source for source in args.models if is_onnx_source(source)]


def _check_onnx_in_compare(args: argparse.Namespace) -> None:
    """compare with an ONNX file, counted as exported (an inference forward): --backward or
    --train would set a training step's count against it (a speedup of about 3x for one model
    and its export); --set and --count-overhead, which only a PyTorch model takes, change
    nothing when every model is an ONNX file. Refused, as the single-model command does."""
    onnx_files = _onnx_models(args)
    if not onnx_files:
        return
    modes = _training_flags(args)
    if modes:
        raise UsageError(
            f"{' '.join(modes)}: {onnx_files[0]} is an ONNX file, counted as exported (an inference "
            "forward), and the table would compare a training step with it; compare PyTorch models "
            "for a training step"
        )
    unused = [
        option for option, value in (("--set", args.set), ("--count-overhead", args.count_overhead)) if value
    ]
    if unused and len(onnx_files) == len(args.models):
        raise UsageError(f"{', '.join(unused)}: every model compared is an ONNX file, which takes none of it")


def check_ranges(args: argparse.Namespace) -> None:
    try:
        check_precision(args.precision)  # the same rule as Report.to_html(precision=)
    except ValueError:
        raise UsageError(f"--precision takes 0 to {MAX_PRECISION} decimals, got {args.precision}") from None
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    for option in ("top", "warmup", "repeat", "threads"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise UsageError(f"--{option} must be at least 1, got {value}")
    if getattr(args, "depth", None) is not None and args.depth < 0:
        raise UsageError(f"--depth must be 0 (the model only) or more, got {args.depth}")
    threads = getattr(args, "threads", None)
    if threads is not None and threads > (limit := 4 * (os.cpu_count() or 1)):
        # more only oversubscribes; tens of thousands crash OpenMP (libgomp, then SIGSEGV)
        raise UsageError(f"--threads takes 1 to {limit} (4 x this machine's CPUs), got {threads}")


def options_changed(args: argparse.Namespace, options: Mapping[str, str]) -> list[str]:
    """The names (``options``: dest -> the name a user types) of the options whose value
    in ``args`` is not the parser's default: those the user gave."""
    parser = build_parser()
    return [name for dest, name in options.items() if getattr(args, dest) != parser.get_default(dest)]


def _check_bench_counts(args: argparse.Namespace) -> None:
    """--warmup / --repeat without --bench would be silently ignored (P5-D16)."""
    given = options_changed(args, {"warmup": "--warmup", "repeat": "--repeat"})
    if given and not args.bench:
        raise UsageError(
            f"{' and '.join(given)} {'counts' if len(given) == 1 else 'count'} the runs of --bench: add --bench"
        )


def check_combinations(args: argparse.Namespace) -> None:
    """Option pairs that would otherwise be silently ignored or contradict each other."""
    if args.prompt is not None or args.training:
        return  # LLM mode refuses each option of a forward count itself, naming the mode (cli_llm.py)
    model = getattr(args, "model", None) or ""
    if getattr(args, "convention", None) == ONNX_TOOL and not model.lower().endswith(".onnx"):
        raise UsageError("--convention onnx-tool is a view of ONNX reports only: give an .onnx file")
    if model:  # options one kind of source would silently ignore
        _check_source_options(args, model.lower().endswith(".onnx"))
    if args.by == "op" and args.format == "tree":
        raise UsageError("--by op prints a table of operators; use --format table, csv, json or markdown")
    if args.by == "op" and args.sort is not None:
        raise UsageError("--sort orders modules; --by op rows are always sorted by FLOPs")
    # P5-S17: the speed tables are per module; with --by op one of the two was dropped unsaid
    text_table = args.format in (None, "table")
    if args.by == "op" and getattr(args, "roofline", None) and (text_table or not args.batch_sizes):
        if args.format != "json":
            raise UsageError(
                "--roofline estimates per module and --by op lists operators: drop --by op, or use "
                "--format json (or csv/markdown with --batch-sizes, whose sweep rows they carry)"
            )
    if args.by == "op" and getattr(args, "bench", False) and text_table:
        raise UsageError(
            "--bench prints its timing tables in place of the operator table: use --format csv, markdown "
            "or json for both, or drop --by op"
        )
    if args.format == "tree" and (args.top or args.sort):
        raise UsageError("--top and --sort pick table rows; use --format table (or csv, markdown)")
    if args.per_module and not args.bench:
        raise UsageError("--per-module needs --bench (it changes how latency is measured)")
    _check_bench_counts(args)
    if args.batch_sizes and not (args.bench or args.roofline):
        raise UsageError("--batch-sizes needs --bench (measure) or --roofline HARDWARE (estimate)")
    if args.bench and args.meta:
        raise UsageError("--bench times real computation: drop --meta")
    _check_bench_mode(args)
    if args.batch_sizes is not None:  # "" is refused too, not ignored
        _batch_sizes(args.batch_sizes)


def _training_flags(args: argparse.Namespace) -> list[str]:
    """The options given that make the count a training step: --backward, --train."""
    return [f"--{name}" for name in ("backward", "train") if getattr(args, name, False)]


def _check_bench_mode(args: argparse.Namespace) -> None:
    """--bench times an inference forward (eval mode, no gradients): with --backward or
    --train it would time another run than the one counted, without a word."""
    given = _training_flags(args)
    if args.bench and given:
        joined = " ".join(given)
        raise UsageError(
            f"--bench times an inference forward (eval mode, no gradients), not the run {joined} "
            f"asks to count: run the two separately (flopmeter MODEL {joined}; flopmeter MODEL --bench)"
        )


def check_outputs(args: argparse.Namespace) -> None:
    """The files -o, --html and --plot will write can be written (checked before counting)."""
    sources = getattr(args, "models", None) or [getattr(args, "model", None) or ""]
    for option, path in (("--output", args.output), ("--html", args.html), ("--plot", args.plot)):
        if path:
            check_writable(option, path)
            check_not_a_source(option, path, sources)
    if args.plot:
        check_plot_format(args.plot)


def check_writable(option: str, path: str) -> None:

    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a directory; give a file name")
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        raise UsageError(f"{option} {path}: not writable")


def check_not_a_source(option: str, path: str, sources: list[str]) -> None:
    """An output file is not the file a model is read from (`-o model.py` overwrote it)."""
    if not os.path.isfile(path):
        return
    for source in sources:
        for read in source_files(source):
            if os.path.samefile(read, path):
                raise UsageError(
                    f"{option} {path}: that is the file the model {source} is read from; give another name"
                )


def check_plot_format(path: str) -> None:
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'flopmeter[plot]'") from None
    kinds = FigureCanvasBase.get_supported_filetypes()
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix not in kinds:
        raise UsageError(
            f"--plot {path}: unknown image type {suffix!r}; use one of {', '.join(sorted(kinds))}"
        )


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--batch-sizes takes numbers like 1,8,32, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise UsageError(f"--batch-sizes must all be at least 1, got {text!r}")
    return sizes


def _input_specs(args: argparse.Namespace) -> list[InputSpec]:
    """The --input specs, parsed (with a message naming an extra ':FIELD')."""
    specs = []
    for text in args.input:
        if text.count(":") > 2:
            raise UsageError(
                f"bad input spec {text!r}: too many ':' fields; expected SHAPE, NAME:SHAPE, "
                f"SHAPE:DTYPE or NAME:SHAPE:DTYPE (e.g. input_ids:1x128:int64)"
            )
        spec = parse_spec(text)
        if spec.shape and spec.shape[0] == 0:
            raise UsageError(f"bad input spec {text!r}: a batch of 0 has nothing to count")
        specs.append(spec)
    return specs


# building and counting ----------------------------------------------------------------


def _specs(args: argparse.Namespace, default: list[InputSpec], kind: str = "tensors") -> list[InputSpec]:
    """The --input specs (else the model's own), with --batch-size applied: the leading
    dimension of each tensor, or the number of images for a model taking a list of them."""
    specs = _input_specs(args) or list(default)
    if not specs:
        raise UsageError(
            "this model has no documented input: give one with --input, e.g. --input 1x3x224x224"
        )
    if args.batch_size is not None:
        if kind == "image_list":
            return (specs * args.batch_size)[: args.batch_size]
        specs = [replace(s, shape=(args.batch_size, *s.shape[1:])) if s.shape else s for s in specs]
    return specs


def _check_source_options(args: argparse.Namespace, onnx_file: bool) -> None:
    if onnx_file:
        given = [f"--{name}" for name in ("backward", "train") if getattr(args, name, False)]
        given += ["--set"] if getattr(args, "set", None) else []
        if given:
            raise UsageError(
                f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} a PyTorch model: an ONNX file is counted as exported "
                "(inference, its own settings)"
            )
        view = ("compression", "assume_sparsity", "assume_bits", "micronet", "count_overhead")
        asked = [f"--{name.replace('_', '-')}" for name in view if getattr(args, name, None)]
        if asked:  # an ONNX report has no compression view: these raised AttributeError (P5-D15)
            raise UsageError(
                f"{', '.join(asked)}: the compression view needs a PyTorch model; an ONNX file's "
                "quantized contractions are listed with their bits in its report (docs/onnx.md)"
            )
    elif getattr(args, "dim", None):
        raise UsageError(
            "--dim binds the symbolic dims of an ONNX file; for a PyTorch model give shapes with --input"
        )


def _load_and_profile(source: str, args: argparse.Namespace, err: TextIO) -> tuple[Report, Any, Any]:
    """(report, model, inputs) for one model source: ``inputs`` is an input spec (or
    a list of them) for ``profile(input_shape=...)``, or a tuple of built arguments."""
    from .onnx.source import is_onnx_source, profile_onnx_source

    if is_onnx_source(source):  # an ONNX file: no model object to run
        return profile_onnx_source(source, args.input, args.dim, args.batch_size, args.causal), None, None
    overrides = dict(parse_override(text) for text in args.set)
    # --input replaces the model file's EXAMPLE_INPUTS entirely: not even read then
    loaded = load_model(source, overrides=overrides, meta=args.meta, example_inputs=not args.input)
    for note in loaded.notes:
        print(f"flopmeter: {source}: {note}", file=err)
    specs = _specs(args, loaded.default_inputs, loaded.input_kind)
    if args.input:
        check_inputs_fit(loaded.model, specs, loaded.input_kind)
    common = dict(
        backward=args.backward,
        train=True if args.train else None,
        causal=args.causal,
        name=loaded.name,
        compression=_compression_options(args),
    )
    if loaded.input_kind == "image_list":  # torchvision detection: model([image, ...])
        from .inputs import build_inputs

        images, _ = build_inputs(specs, device=_device(loaded.model))
        arguments: Any = ([*images],)
        report = profile(loaded.model, arguments, batch_size=len(images), **common)
        return report, loaded.model, arguments
    shape: Any = specs if len(specs) > 1 or specs[0].name else specs[0]
    if not loaded.exported_classes:
        return profile(loaded.model, input_shape=shape, **common), loaded.model, shape
    from .exported import check_call_form, counted_as_exported, refuse_train

    refuse_train(True if args.train else None)  # --train: exit 2
    if args.input and loaded.exported_call is not None:  # the program's call, exit 2
        check_call_form(
            loaded.exported_call, sum(not s.name for s in specs), [s.name for s in specs if s.name]
        )
    report = counted_as_exported(
        lambda: profile(loaded.model, input_shape=shape, **common), loaded.exported_classes
    )
    return report, loaded.model, shape


def check_inputs_fit(model: Any, specs: list[InputSpec], kind: str) -> None:
    """The model's forward accepts the --input arguments (a usage error, not a model failure)."""
    import inspect

    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return
    positional = [None] if kind == "image_list" else [None for s in specs if not s.name]
    try:
        signature.bind(*positional, **{s.name: None for s in specs if s.name})
    except TypeError as error:
        raise UsageError(
            f"{type(model).__name__}.forward{signature} cannot take the {len(specs)} --input "
            f"argument(s) given: {error}"
        ) from None


def _device(model: Any) -> Any:
    import torch

    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _single(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from . import hardware as hw

    if args.list_hardware:
        from .render.speed import render_hardware

        out.write(render_hardware([hw.get(name) for name in hw.names()]) + "\n")
        return 0
    if not args.model:
        raise UsageError(
            "give a MODEL, e.g. flopmeter torchvision:alexnet (flopmeter --help lists the sources)"
        )
    if args.prompt is not None or args.training:
        return run_llm(args, out, err)
    refuse_llm_options_alone(args)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    print(f"flopmeter: counting {args.model} ...", file=err, flush=True)
    report, model, inputs = _load_and_profile(args.model, args, err)
    spec: hw.Hardware | None = hw.get(args.roofline) if args.roofline else None
    extras: dict[str, Any] = {}
    if spec is not None:
        extras["roofline"] = report.roofline(spec)
    if args.bench and model is None:  # an ONNX file: timed with onnxruntime
        extras["timings"] = _bench_onnx(args, spec, err)
        for timing in extras["timings"] if spec is not None else []:  # % of the peak of its dtypes
            timing.peak = extras["roofline"].peak_flops
    elif args.bench:
        extras["timings"] = _bench(model, inputs, args, spec, err)
    elif args.batch_sizes:
        if model is None:
            raise UsageError(
                "--batch-sizes needs a PyTorch model; for an ONNX file set the batch with --input"
            )
        extras["sweep"] = _sweep(model, inputs, args, spec)
    text = render(report, args, **extras)
    if _format(args) in ("tree", "table") and not args.quiet:
        text += _compression_text(report, args)
    else:
        text = _compression_elsewhere(report, args, text, err)
    from .render.text import unsupported_note

    note = unsupported_note(report) if _format(args) == "csv" else ""
    if _format(args) == "csv" and _wants_view(args) and args.by == "module":
        from .render.compression import csv_note

        note = "\n".join(filter(None, [note, csv_note(report.compression)]))
    if args.html:
        from .render.html import to_html

        view = report.compression if _wants_view(args) else None
        html = to_html(
            report,
            convention=args.convention,
            top=args.top or 15,  # its charts' layers, as --plot's
            roofline=extras.get("roofline"),
            compression=view,
            units=units_option(args),
            precision=args.precision,
        )
        _write_file("--html", args.html, lambda handle: handle.write(html), err)
    if args.plot:
        _write_file(
            "--plot",
            args.plot,
            lambda _: report.plot(
                args.plot,
                convention=args.convention,
                top=args.top or 15,
                hardware=spec,
                compression=_wants_view(args),
            ),
            err,
        )
        _plot_sweep(args.plot, report, extras, err)
    if args.output:
        _write_file("--output", args.output, lambda handle: handle.write(text), err)
    else:
        write_colored(out, text, args.color if _format(args) in ("tree", "table") else "never")
        out.flush()
    if note:
        print(note, file=err)
    return 0


def _write_file(option: str, path: str, write: Any, err: TextIO) -> None:
    """Write one output file; an OSError (disk full, permissions) is a short message."""
    try:
        if option == "--plot":
            write(None)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                write(handle)
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot write: {error.strerror or error}") from None
    print(f"flopmeter: wrote {path}", file=err)


def write_colored(out: TextIO, text: str, color: str) -> None:
    """Write ``text``; through rich's highlighter when ``color`` is "always", or "auto"
    and ``out`` is a terminal (and NO_COLOR is unset). Plain text when piped."""

    wanted = color == "always" or (
        color == "auto" and hasattr(out, "isatty") and out.isatty() and "NO_COLOR" not in os.environ
    )
    if not wanted:
        out.write(text)
        return
    try:
        from rich.console import Console
    except ImportError:  # rich is the optional `cli` extra: plain text without it
        out.write(text)
        return
    Console(file=out, force_terminal=True, soft_wrap=True, highlight=True).print(text, end="", markup=False)


def _sweep(model: Any, inputs: Any, args: argparse.Namespace, spec: Any) -> Any:
    """Latency-model estimates at each --batch-sizes (no timing)."""
    from .timing import predict_batches

    if spec is None:
        raise UsageError("--batch-sizes needs --bench (measure) or --roofline HARDWARE (estimate)")
    return predict_batches(
        model, input_shape=inputs, batch_sizes=_batch_sizes(args.batch_sizes), hardware=spec
    )


def _plot_sweep(path: str, report: Report, extras: dict[str, Any], err: TextIO) -> None:
    """With a batch sweep, also write its chart beside --plot's file."""
    from .render.roofline_plot import plot_batch_sweep, sweep_path

    timings = extras.get("timings") or []
    estimates = extras.get("sweep") or [t.estimate for t in timings if t.estimate]
    if len(estimates) < 2:
        return
    measured = [t.median for t in timings] if timings else None
    plot_batch_sweep(estimates, sweep_path(path), measured=measured, title=report.model_name)
    print(f"flopmeter: wrote {sweep_path(path)}", file=err)


def _bench(model: Any, inputs: Any, args: argparse.Namespace, spec: Any, err: TextIO) -> Any:
    from .inputs import build_inputs
    from .timing import benchmark

    sizes = _batch_sizes(args.batch_sizes) if args.batch_sizes else None
    live = hasattr(err, "isatty") and err.isatty()

    def progress(phase: str, index: int, total: int) -> None:
        if live:  # one updating line on a terminal
            print(f"\rflopmeter: timing, {phase} run {index}/{total}   ", end="", file=err, flush=True)
        elif index == total:
            print(f"flopmeter: timing, {total} {phase} runs done", file=err, flush=True)

    if isinstance(inputs, tuple):  # already built (a list of images)
        call_inputs: Any = inputs
    else:
        call_args, call_kwargs = build_inputs(inputs, device=_device(model))
        call_inputs = call_kwargs if call_kwargs and not call_args else call_args
    timings = benchmark(
        model,
        call_inputs,
        warmup=args.warmup,
        repeat=args.repeat,
        batch_sizes=sizes,
        per_module=args.per_module,
        hardware=spec,
        progress=progress,
    )
    print(file=err)
    return timings


def _bench_onnx(args: argparse.Namespace, spec: Any, err: TextIO) -> Any:
    from .onnx.source import bench_onnx_source

    if args.batch_sizes:
        raise UsageError("--batch-sizes needs a PyTorch model; for an ONNX file set the batch with --input")
    print(f"flopmeter: timing with onnxruntime, {args.warmup} warm-up + {args.repeat} timed runs", file=err)
    return bench_onnx_source(
        args.model, args.input, args.dim, args.batch_size, args.warmup, args.repeat, args.per_module, spec
    )


# rendering -----------------------------------------------------------------------------


def _format(args: argparse.Namespace) -> str:
    """The output format: --format, else a table for --by op / --sort / --top, else the tree."""
    if args.format:
        return str(args.format)
    return "table" if (args.by == "op" or args.sort or args.top) else "tree"


def render(
    report: Report, args: argparse.Namespace, roofline: Any = None, timings: Any = None, sweep: Any = None
) -> str:
    """The report in the format the options ask for (with roofline / timing / batch-sweep
    estimates when given).
    ``-q`` keeps the format and shows the totals only."""
    from .render import formats, speed, text

    units, precision, convention = units_option(args), args.precision, args.convention
    fmt = _format(args)
    view = report.compression if _wants_view(args) else None  # -q: the root's row keeps its columns
    if fmt == "json":
        return (
            formats.to_json(report, roofline=roofline, timings=timings, totals_only=args.quiet, sweep=sweep)
            + "\n"
        )
    if args.quiet and fmt in ("tree", "table"):
        totals = speed.render_speed_totals(report, roofline, timings, sweep, precision)  # -q kept none
        return (
            "\n".join(text.summary_lines(report, convention, units, precision))
            + "\n"
            + (totals and f"\n{totals}\n")
        )
    rows = dict(depth=0 if args.quiet else args.depth, top=None if args.quiet else args.top, sort=args.sort)
    measured = dict(timings=timings, sweep=sweep)  # csv and markdown carry them too (P4-S16)
    if fmt == "csv":
        if args.by == "op":
            return formats.operators_to_csv(report, top=rows["top"], convention=convention, **measured)
        return formats.to_csv(
            report, roofline=roofline, convention=convention, compression=view, **rows, **measured
        )
    if fmt == "markdown":
        if args.by == "op":
            return formats.operators_to_markdown(
                report, convention=convention, units=units, precision=precision, top=rows["top"], **measured
            )
        return formats.to_markdown(
            report,
            depth=rows["depth"] if rows["depth"] is not None or rows["top"] else 1,  # --top: all leaves
            top=rows["top"],
            sort=args.sort,
            roofline=roofline,
            convention=convention,
            units=units,
            precision=precision,
            compression=view,
            **measured,
        )
    if roofline is not None or timings is not None:
        parts = []
        if roofline is not None:
            parts.append(
                speed.render_roofline(
                    report, roofline, depth=args.depth, top=args.top, units=units, precision=precision
                )
            )
        if timings is not None:
            parts.append(speed.render_timings(report, timings, precision=precision, top=args.top))
        if sweep:
            parts.append(speed.render_sweep(report, sweep))
        return "\n\n".join(parts) + "\n"
    if args.by == "op":
        return (
            text.render_operators(
                report, convention=convention, units=units, precision=precision, top=args.top
            )
            + "\n"
        )
    if fmt == "table":
        return (
            text.render_table(
                report,
                depth=args.depth,
                convention=convention,
                units=units,
                precision=precision,
                sort=args.sort,
                top=args.top,
                compression=view,
            )
            + "\n"
        )
    return (
        text.render_tree(
            report,
            depth=args.depth,
            convention=convention,
            units=units,
            precision=precision,
            fold=args.fold,
            compression=view,
        )
        + "\n"
    )


def _compare(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .render.compare import comparison_csv, comparison_json, render_comparison

    if _wants_view(args):  # --compression, or a plan (--assume-*) to compare against
        return _compare_compression(args, out, err)
    if len(args.models) < 2:
        raise UsageError(
            "compare needs at least two models, e.g. compare torchvision:resnet50 torchvision:resnet18"
        )
    reports: list[Report] = []
    loaded = []
    onnx_dims = _onnx_dims(args)
    for index, source in enumerate(args.models, start=1):
        print(f"flopmeter: [{index}/{len(args.models)}] counting {source} ...", file=err, flush=True)
        own = argparse.Namespace(**{**vars(args), "dim": onnx_dims[source]}) if source in onnx_dims else args
        report, model, inputs = _load_and_profile(source, own, err)
        reports.append(_named_by_file(report, source))
        loaded.append((model, inputs))
    seconds = _median_seconds(loaded, args) if args.bench else None
    shown = dict(convention=args.convention, seconds=seconds)
    if args.format == "json":
        text = comparison_json(reports, totals_only=args.quiet, **shown)
    elif args.format == "csv":
        text = comparison_csv(reports, **shown)
    else:
        text = render_comparison(
            reports,
            units=units_option(args),
            precision=args.precision,
            totals_only=args.quiet,
            markdown=args.format == "markdown",
            **shown,
        )
    out.write(text if text.endswith("\n") else text + "\n")
    return 0


def _named_by_file(report: Report, source: str) -> Report:
    """In a comparison, a torch.export file is named by its file, as every other source is
    (alone, a program reads its class): two programs of one class were two columns alike (P11-A2)."""
    if check_source(source)[0] == "exported":
        report.model_name = source
    return report


def _onnx_dims(args: argparse.Namespace) -> dict[str, list[str]]:
    """compare: the ``--dim`` pairs of each ONNX file, those naming a dim it has (a static
    and a dynamic export compare); a dim no file has is refused."""
    from .onnx.source import dims_for_each, is_onnx_source

    files = [source for source in args.models if is_onnx_source(source)]
    return dims_for_each(files, args.dim) if files and args.dim else {}


def run(argv: Sequence[str]) -> tuple[int, str, str]:
    """Run the command in-process: (exit code, stdout, stderr). For tests and notebooks."""
    import io

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()
