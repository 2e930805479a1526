"""Which module each ONNX node belongs to, and the module tree.

- Dynamo exports tag nodes with ``pkg.torch.onnx.name_scopes`` (the module path,
  then the fx node) and ``pkg.torch.onnx.class_hierarchy`` (the classes along it):
  the PyTorch qualified names and types, by construction.
- Legacy (TorchScript) exports name nodes ``/layer1/layer1.0/conv1/Conv``: the path
  is the slash-separated scopes; a scope that starts with its parent's path plus a
  dot is already qualified (``layer1`` then ``layer1.0``), and one that starts with its
  parent's scope plus a dot is qualified from its grandparent
  (``/stages/stages.0/blocks/blocks.0/attn`` is ``stages.0.blocks.0.attn``). A repeated call of one
  module gets a ``_1`` suffix; it is mapped back to the module when that exists.
- Otherwise every node belongs to the root.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

_SUFFIX = re.compile(r"^(.*)_(\d+)$")


@dataclass
class NodeScope:
    """The module path of one node and the class names along it (dynamo only)."""

    module: str
    classes: dict[str, str] = field(default_factory=dict)


def metadata(node: Any) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


def _literal_list(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def dynamo_scope(meta: dict[str, str]) -> NodeScope | None:
    scopes = _literal_list(meta.get("pkg.torch.onnx.name_scopes"))
    if not scopes:
        return None
    classes = _literal_list(meta.get("pkg.torch.onnx.class_hierarchy"))
    modules = [s for s in scopes[:-1] if not s.startswith("_empty_nn_module_stack")]
    path = modules[-1] if modules else ""
    names: dict[str, str] = {}
    for scope, cls in zip(scopes[:-1], classes, strict=False):
        if not scope.startswith("_empty_nn_module_stack"):
            names[scope] = cls.rsplit(".", 1)[-1]
    return NodeScope(path, names)


def legacy_path(name: str) -> str | None:
    """``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``; None if not scoped."""
    if not name.startswith("/"):
        return None
    parts = [p for p in name.split("/")[1:-1] if p]
    path = previous = ""
    for part in parts:
        if not path or part.startswith(path + "."):
            path = part
        elif previous and part.startswith(previous + "."):  # blocks then blocks.0, deeper down
            path += part[len(previous) :]
        else:
            path = f"{path}.{part}"
        previous = part
    return path


def unsuffix(paths: set[str]) -> dict[str, str]:
    """Map ``a.relu_1`` to ``a.relu`` where ``a.relu`` is itself a module path."""
    mapping = {}
    for path in paths:
        head, _, last = path.rpartition(".")
        match = _SUFFIX.match(last)
        if match:
            base = f"{head}.{match.group(1)}" if head else match.group(1)
            if base in paths:
                mapping[path] = base
    return mapping
