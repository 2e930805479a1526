"""Torch-free records of what ran: one OpEvent per aten op call."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any, NamedTuple

FORWARD = "forward"
BACKWARD = "backward"


class TensorMeta(NamedTuple):
    """Shape and storage facts of one tensor argument or result; no values.

    ``role`` is "param" for a model parameter, "buffer" for a model buffer,
    "activation" otherwise. (A NamedTuple: millions are made, cheaply.)
    """

    shape: tuple[int, ...]
    dtype: str
    itemsize: int
    role: str = "activation"

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass
class OpEvent:
    """One call of one aten op.

    ``op`` is the overload packet name, e.g. ``"aten.convolution"``; ``args`` and
    ``kwargs`` are the call's arguments with every tensor replaced by a TensorMeta
    (lists and scalars kept as they are); ``outputs`` are the result tensors.
    ``module`` is the qualified name of the innermost module running ("" = the root).
    """

    op: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    outputs: tuple[TensorMeta, ...]
    module: str = ""
    phase: str = FORWARD
    overload: str = "default"
    extra: dict[str, Any] = field(default_factory=dict)

    def tensor_inputs(self) -> list[TensorMeta]:
        """Every TensorMeta among the arguments, nested lists included, in order."""
        found: list[TensorMeta] = []
        _collect(self.args, found)
        _collect(tuple(self.kwargs.values()), found)
        return found

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """Positional argument ``index``, else keyword ``name``, else ``default``."""
        if index < len(self.args):
            return self.args[index]
        return self.kwargs.get(name, default)


def _collect(values: Any, found: list[TensorMeta]) -> None:
    for value in values:
        if isinstance(value, TensorMeta):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            _collect(value, found)
