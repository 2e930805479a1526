"""Torch-free records of what ran: one OpEvent per aten op call."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from math import prod
from typing import Any, NamedTuple

FORWARD = "forward"
BACKWARD = "backward"

# Values recorded as they are (numbers, flags, names): no tensor can hide in them.
PLAIN_TYPES = frozenset({int, float, bool, str, type(None)})


# roles whose bytes are not weight traffic (``Cost.weight_bytes``): a rebuilt weight is a
# temporary the model's ops wrote, its stored tensors are the weight traffic
NOT_WEIGHTS = frozenset({"activation", "rebuilt"})


class TensorMeta(NamedTuple):
    """Shape and storage facts of one tensor argument or result; no values.

    ``role`` is "param" for a model parameter, "buffer" for a model buffer, "stored" for
    what a compressed weight is stored as (torchao's ``qdata`` and scales, a prune mask, a
    parametrization's original: ``ModelWalk.roles``), "rebuilt" for a weight ops built from
    stored tensors alone (a dequantized or masked copy: traffic of an activation, which
    LLM mode's engine view leaves out), "activation" otherwise. ``nnz``: the stored values of a sparse tensor (COO, CSR, CSC:
    its nonzeros; BSR, BSC: its blocks' elements), None for a dense one. (A NamedTuple:
    millions are made, cheaply.)
    """

    shape: tuple[int, ...]
    dtype: str
    itemsize: int
    role: str = "activation"
    nnz: int | None = None

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Its elements' bytes; a sparse tensor's stored values' (its indices apart)."""
        return (self.numel if self.nnz is None else self.nnz) * self.itemsize

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_floating(self) -> bool:
        """float*, bfloat16 or complex: values whose arithmetic counts as FLOPs."""
        return self.dtype.startswith(("float", "bfloat", "complex"))


@dataclass(slots=True)
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

    _inputs: list[TensorMeta] | None = field(default=None, init=False, repr=False, compare=False)

    def tensor_inputs(self) -> list[TensorMeta]:
        """Every TensorMeta among the arguments, nested lists included, in order
        (worked out once: formulas and the traffic count all ask)."""
        inputs = self._inputs
        if inputs is None:
            inputs = self._inputs = []
            add_metas(self.args, inputs)
            if self.kwargs:
                add_metas(self.kwargs.values(), inputs)
        return inputs

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """Positional argument ``index``, else keyword ``name``, else ``default``."""
        return call_arg(self.args, self.kwargs, index, name, default)


def call_arg(
    args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any = None
) -> Any:
    """An op call's positional argument ``index``, else its keyword ``name``, else ``default``."""
    if index < len(args):
        return args[index]
    return kwargs.get(name, default)


def add_metas(values: Iterable[Any], found: list[TensorMeta]) -> None:
    """Append to ``found`` every TensorMeta among ``values`` (described arguments),
    nested lists, tuples and dicts included, in order."""
    for value in values:
        if type(value) is TensorMeta:
            found.append(value)
        elif isinstance(value, (list, tuple, dict)):
            found.extend(collect_metas(value))


def collect_metas(value: Any) -> list[TensorMeta]:
    """Every TensorMeta in ``value`` (nested lists, tuples and dicts), in order."""
    if isinstance(value, TensorMeta):
        return [value]
    if isinstance(value, dict):
        value = tuple(value.values())
    if isinstance(value, (list, tuple)):
        return [meta for item in value for meta in collect_metas(item)]
    return []
