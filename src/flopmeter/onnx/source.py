"""The CLI's ONNX model source: ``flopmeter model.onnx --input x:1x3x224x224 --dim T=2048``.

Parses ``--input`` specs (ONNX input names may hold dots and colons: ``input.1``,
``input:0``) and ``--dim NAME=VALUE`` pairs, then calls ``profile_onnx``.
"""

from __future__ import annotations

import re
from typing import Any

from ..report import Report
from .api import profile_onnx
from .control import control_keys
from .load import OnnxModelError, load_onnx
from .shapes import symbolic_dims

_SPEC = re.compile(r"^(?:(?P<name>.+):)?(?P<shape>\d+(?:x\d+)*)(?::(?P<dtype>[a-z0-9]+))?$")


def is_onnx_source(source: str) -> bool:
    return source.lower().endswith(".onnx")


def parse_input_specs(specs: list[str]) -> dict[str, tuple[int, ...]] | list[tuple[int, ...]] | None:
    """``["x:1x3x224x224"]`` -> ``{"x": (1, 3, 224, 224)}``; unnamed specs -> a list in
    the graph's input order; no specs -> None (the model's declared shapes)."""
    if not specs:
        return None
    named: dict[str, tuple[int, ...]] = {}
    positional: list[tuple[int, ...]] = []
    for text in specs:
        match = _SPEC.match(text.strip())
        if not match:
            raise OnnxModelError(f"bad input spec {text!r}: expected SHAPE or NAME:SHAPE, e.g. x:1x3x224x224")
        shape = tuple(int(d) for d in match["shape"].split("x"))
        if match["name"]:
            named[match["name"]] = shape
        else:
            positional.append(shape)
    if named and positional:
        raise OnnxModelError("give every --input with a name (x:1x3x224x224) or none with a name, not a mix")
    return named or positional


def parse_dims(pairs: list[str]) -> dict[str, int]:
    """``["T=2048", "batch=8"]`` -> ``{"T": 2048, "batch": 8}``. A name given twice with two
    values is an error (compare binds one value in every file that has the dim)."""
    dims: dict[str, int] = {}
    for text in pairs:
        name, sep, value = text.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise OnnxModelError(f"bad --dim {text!r}: expected NAME=VALUE with a whole number, e.g. T=2048")
        name = name.strip()
        if dims.get(name, int(value)) != int(value):
            raise OnnxModelError(
                f"--dim {name} is given twice ({dims[name]} and {int(value)}); give each dim once "
                "(in compare, one value binds it in every ONNX file that has it)"
            )
        dims[name] = int(value)
    return dims


def dims_for_each(sources: list[str], pairs: list[str]) -> dict[str, list[str]]:
    """``compare``: each ONNX file's share of the ``--dim`` pairs, those naming one of its
    symbolic dims or Loop trip counts (a static export has none). A dim that no file has
    is an error naming the files' dims."""
    bindable = {}
    for source in sources:
        graph = load_onnx(source).model.graph
        bindable[source] = set(symbolic_dims(graph)) | control_keys(graph)
    parse_dims(pairs)  # well formed, no dim given two values
    names = {pair: next(iter(parse_dims([pair]))) for pair in pairs}
    known = set().union(*bindable.values())
    for name in names.values():
        if name not in known:
            raise OnnxModelError(
                f"dim {name!r} is not a symbolic dim or Loop of any ONNX file compared; their dims "
                f"are: {', '.join(sorted(known)) or 'none'}"
            )
    return {source: [pair for pair in pairs if names[pair] in bindable[source]] for source in sources}


def profile_onnx_source(
    source: str, specs: list[str], dim_pairs: list[str], batch_size: int | None, causal: str
) -> Report:
    """Count the ONNX file ``source`` as the CLI asks (``--batch-size`` sets the leading
    dim of every input given)."""
    report = profile_onnx(source, _inputs(specs, batch_size), dims=parse_dims(dim_pairs), causal=causal)
    _check_dtypes(specs, report.inputs)
    return report


def _check_dtypes(specs: list[str], declared: list[dict[str, Any]]) -> None:
    """An ONNX graph fixes its input dtypes: a ``:DTYPE`` in ``--input`` that differs
    from the model's is an error (it would otherwise be ignored: bytes of another dtype)."""
    from ..inputs import DTYPES

    for position, text in enumerate(specs):
        match = _SPEC.match(text.strip())
        if not match or not match["dtype"]:
            continue
        name = match["name"]
        model_input = next((i for i in declared if i["name"] == name), None) if name else None
        if model_input is None and not name and position < len(declared):
            model_input = declared[position]
        wanted = DTYPES.get(match["dtype"])
        if model_input is None or wanted is None:
            continue
        if str(wanted).removeprefix("torch.") != model_input["dtype"]:
            raise OnnxModelError(
                f"--input {text!r}: the ONNX model's input {model_input['name']!r} is {model_input['dtype']}; "
                "an ONNX graph fixes its input dtypes (export the model in the dtype you want to count)"
            )


def bench_onnx_source(
    source: str,
    specs: list[str],
    dim_pairs: list[str],
    batch_size: int | None,
    warmup: int,
    repeat: int,
    per_module: bool,
    hardware: Any,
) -> Any:
    """Time the ONNX file ``source`` with onnxruntime, inputs as ``profile_onnx_source``."""
    from .bench import benchmark_onnx

    return benchmark_onnx(
        source,
        _inputs(specs, batch_size),
        dims=parse_dims(dim_pairs),
        warmup=warmup,
        repeat=repeat,
        per_module=per_module,
        hardware=hardware,
    )


def _inputs(specs: list[str], batch_size: int | None) -> Any:
    inputs: Any = parse_input_specs(specs)
    if batch_size is not None:
        if inputs is None:
            raise OnnxModelError(
                "--batch-size with an ONNX model needs --input shapes (or bind the batch with --dim)"
            )
        if isinstance(inputs, dict):
            inputs = {k: (batch_size, *v[1:]) for k, v in inputs.items()}
        else:
            inputs = [(batch_size, *v[1:]) for v in inputs]
    return inputs
