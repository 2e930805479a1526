"""Read an ONNX model without its weights, and check that it is whole.

``onnx.load(..., load_external_data=False)``: initializers stored in external files
keep only their metadata (name, dims, dtype, location), which is all counting needs.
Weights embedded in the .onnx file itself are parsed with the protobuf (that cannot
be skipped) but never looked at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KNOWN_DOMAINS = ("", "ai.onnx", "com.microsoft", "ai.onnx.ml", "ai.onnx.preview.training")


class OnnxModelError(ValueError):
    """The ONNX file or its inputs cannot be counted: malformed or truncated file,
    unknown opset, external data outside the model's folder, an unbound dim."""


@dataclass
class LoadedOnnx:
    """A parsed model and the folder its external data must stay inside."""

    model: Any  # onnx.ModelProto
    name: str
    folder: Path | None


def require_onnx() -> Any:
    """The ``onnx`` package, or a clear error naming the extra to install."""
    try:
        import onnx
    except ImportError as error:
        raise OnnxModelError(
            "counting ONNX models needs the onnx package: pip install 'flopmeter[onnx]'"
        ) from error
    return onnx


def load_onnx(source: Any) -> LoadedOnnx:
    """Parse ``source`` (a path or a ``ModelProto``) without external data; check it."""
    onnx = require_onnx()
    if isinstance(source, onnx.ModelProto):
        loaded = LoadedOnnx(source, source.graph.name or "onnx model", None)
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(
                f"expected a path to an .onnx file or an onnx.ModelProto, got {type(source).__name__}"
            )
        path = Path(os.fspath(source))
        if path.is_dir():
            raise OnnxModelError(
                f"{path} is a folder, not an ONNX file: give the path of the .onnx file in it"
            )
        if not path.is_file():
            raise OnnxModelError(f"no such ONNX file: {path}")
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as error:  # protobuf's DecodeError and friends
            raise OnnxModelError(
                f"{path} is not a readable ONNX model (malformed or truncated file): {error}"
            ) from error
        loaded = LoadedOnnx(model, path.name, path.resolve().parent)
    loaded.model = topologically_sorted(loaded.model, own=loaded.folder is not None)
    check_model(loaded.model, loaded.name)
    check_external_data(loaded.model, loaded.folder)
    if loaded.folder is not None:  # our own parse of a file (a user's ModelProto is left as it is)
        read_external_shape_tensors(loaded.model, loaded.folder)
    return loaded


def read_external_shape_tensors(model: Any, folder: Path) -> None:
    """Read the few integer initializers that an export with a low size threshold
    (``onnx.save(..., size_threshold=0)``) wrote to its data file: shape tensors, axes
    and indices, which Reshape and friends need as values. Float weights stay unread."""
    from onnx.external_data_helper import load_external_data_for_tensor

    from .shapes import INTEGER_TYPES, MAX_FOLDED_ELEMENTS

    for tensor in model.graph.initializer:
        numel = 1
        for d in tensor.dims:
            numel *= d
        if tensor.data_location != 1 or tensor.data_type not in INTEGER_TYPES or numel > MAX_FOLDED_ELEMENTS:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if not (folder / location).is_file():
            continue  # the data file is absent: the value stays unknown (and says so if needed)
        try:
            load_external_data_for_tensor(tensor, str(folder))
        except (OSError, ValueError):
            continue
        tensor.data_location = 0  # TensorProto.DEFAULT: the value is now inline
        del tensor.external_data[:]


def topologically_sorted(model: Any, *, own: bool) -> Any:
    """The model with its graph's nodes in an order where each node follows the nodes it
    reads from. onnxruntime's fp16 converter (``keep_io_types=True``) appends the input
    Casts after the nodes that read them, and onnxruntime sorts before running, so such a
    file is valid to its users. A model already sorted, or one that no order fixes (a
    truncated graph: an input nothing defines), is returned as it is; a user's
    ModelProto (``own=False``) is copied rather than changed. Kahn's algorithm, by hand."""
    graph = model.graph
    produced = {name: position for position, node in enumerate(graph.node) for name in node.output if name}
    needs = [
        sorted({produced[n] for n in _reads(node) if n in produced} - {p})
        for p, node in enumerate(graph.node)
    ]
    if all(all(d < position for d in deps) for position, deps in enumerate(needs)):
        return model
    order: list[int] = []
    placed: set[int] = set()
    pending = list(range(len(graph.node)))
    while pending:
        ready = [p for p in pending if all(d in placed for d in needs[p])]
        if not ready:
            return model  # a cycle: check_model names the first node that reads an undefined value
        order += ready
        placed.update(ready)
        pending = [p for p in pending if p not in placed]
    if not own:
        copy = type(model)()
        copy.CopyFrom(model)
        model = copy
    nodes = [type(graph.node[0])() for _ in order]
    for target, position in zip(nodes, order, strict=True):
        target.CopyFrom(model.graph.node[position])
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _reads(node: Any) -> set[str]:
    """The values a node reads: its inputs and those its subgraphs read from outside."""
    names = {name for name in node.input if name}
    for attribute in node.attribute:
        for body in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
            inner = {name for inner_node in body.node for name in inner_node.output}
            inner |= {i.name for i in body.input} | {t.name for t in body.initializer}
            names |= {name for inner_node in body.node for name in _reads(inner_node)} - inner
    return names


def opset_versions(model: Any) -> dict[str, int]:
    """Domain -> opset version ("" is the default ONNX domain)."""
    return {("" if o.domain == "ai.onnx" else o.domain): int(o.version) for o in model.opset_import}


def check_model(model: Any, name: str) -> None:
    """A model whose protobuf parsed may still be cut short at a field boundary: it
    must have a graph with nodes and outputs, opset imports covering every node's
    domain, a known default opset, and every node input defined before use."""
    onnx = require_onnx()
    graph = model.graph
    if not model.HasField("graph") or not graph.node:
        raise OnnxModelError(f"{name} has no graph nodes: the file is empty, truncated or not an ONNX model")
    if not graph.output:
        raise OnnxModelError(f"{name}'s graph declares no outputs: the file is truncated or malformed")
    versions = opset_versions(model)
    if not versions:
        raise OnnxModelError(f"{name} has no opset_import: the file is truncated or malformed")
    default = versions.get("")
    newest = onnx.defs.onnx_opset_version()
    if default is not None and not 1 <= default <= newest:
        raise OnnxModelError(
            f"{name} uses ONNX opset {default}; this onnx package knows opsets 1 to {newest} "
            "(upgrade onnx, or re-export with a supported opset_version)"
        )
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    for node in graph.node:
        domain = "" if node.domain == "ai.onnx" else node.domain
        if domain not in versions:
            raise OnnxModelError(
                f"node {node.name or node.op_type!r} ({node.op_type}) is in domain {domain or 'ai.onnx'!r}, "
                f"which the model does not import: the file is truncated or malformed"
            )
        missing = [i for i in node.input if i not in defined]
        if missing:
            raise OnnxModelError(
                f"node {node.name or node.op_type!r} ({node.op_type}) reads {missing[0]!r}, which nothing "
                "defines before it: the graph is truncated, malformed or not topologically sorted"
            )
        defined.update(node.output)
    undefined = [o.name for o in graph.output if o.name not in defined]
    if undefined:
        raise OnnxModelError(
            f"graph output {undefined[0]!r} is produced by no node: the file is truncated or malformed"
        )


def check_external_data(model: Any, folder: Path | None) -> None:
    """External-data locations must be relative paths inside the model's folder
    (never read here; refused so that no later tool is sent outside it)."""
    for tensor in model.graph.initializer:
        if tensor.data_location != 1:  # TensorProto.EXTERNAL
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if not location or os.path.isabs(location) or Path(location).drive:
            raise OnnxModelError(
                f"initializer {tensor.name!r} has external data at {location!r}: only paths relative "
                "to the model's folder are allowed"
            )
        base = folder or Path.cwd().resolve()
        target = (base / location).resolve()
        if not target.is_relative_to(base):
            raise OnnxModelError(
                f"initializer {tensor.name!r} has external data at {location!r}, outside the model's "
                f"folder {base}: refused"
            )
