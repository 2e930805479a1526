"""Build model inputs from shape specs, and describe the inputs a user passed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._pytree import tree_flatten

from .random_state import kept_random_state

DTYPES = {
    "float32": torch.float32,
    "float": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "half": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float64": torch.float64,
    "double": torch.float64,
    "int64": torch.int64,
    "long": torch.int64,
    "int32": torch.int32,
    "int": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
# a complex model's dtype, taken for its inputs built from a shape (not a spec name)
_COMPLEX = (torch.complex64, torch.complex128)


@dataclass(frozen=True)
class InputSpec:
    """One input to build: a shape, a dtype name and, for keyword inputs, a name.

    Float inputs are standard normal; integer inputs (token ids) are zeros, a valid
    index for any embedding; inputs whose name contains "mask" are ones. ``dtype``
    None: the default of whoever builds it (``profile``: the model's floating dtype).
    """

    shape: tuple[int, ...]
    dtype: str | None = None
    name: str | None = None


def resolve_dtype(value: str | torch.dtype) -> torch.dtype:
    """A dtype given by name (``"float16"``, ``"bf16"``, ``"int64"``) or as a torch.dtype."""
    if isinstance(value, torch.dtype):
        if value not in DTYPES.values() and value not in _COMPLEX:
            raise ValueError(f"input dtype {value} is not supported; expected one of {', '.join(DTYPES)}")
        return value
    if isinstance(value, str) and value in DTYPES:
        return DTYPES[value]
    raise ValueError(f"unknown input dtype {value!r}; expected a torch.dtype or one of {', '.join(DTYPES)}")


def parse_spec(text: str) -> InputSpec:
    """Parse ``"1x3x224x224"``, ``"input_ids:1x128:int64"`` or ``"1x128:int64"``."""
    parts = text.strip().split(":")
    name: str | None = None
    dtype: str | None = None
    if parts and not re.fullmatch(r"\d+(x\d+)*", parts[0]):
        name = parts.pop(0)
    if not parts or not re.fullmatch(r"\d+(x\d+)*", parts[0]):
        raise ValueError(
            f"bad input spec {text!r}: expected a shape like 1x3x224x224, optionally "
            f"NAME:SHAPE and :DTYPE (e.g. input_ids:1x128:int64)"
        )
    shape = tuple(int(s) for s in parts.pop(0).split("x"))
    check_numel(shape, f"bad input spec {text!r}:")
    if parts:
        dtype = parts.pop(0)
    if parts:
        raise ValueError(
            f"bad input spec {text!r}: {':'.join(parts)!r} after the dtype; expected at most "
            f"NAME:SHAPE:DTYPE (e.g. input_ids:1x128:int64)"
        )
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(
            f"bad input spec {text!r}: unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}"
        )
    if name is not None and not name.isidentifier():
        raise ValueError(f"bad input spec {text!r}: {name!r} is not a valid argument name")
    return InputSpec(shape=shape, dtype=dtype, name=name)


def as_spec(value: Any, what: str = "input_shape") -> InputSpec:
    """An InputSpec, a spec string or a shape (a tuple or list of ints) as an InputSpec;
    ``what`` names the value in the errors."""
    if isinstance(value, InputSpec):
        check_numel(value.shape, f"{what} {value.shape}:")  # --batch-size may have grown it
        return value
    if isinstance(value, str):
        return parse_spec(value)
    if isinstance(value, (tuple, list)) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in value
    ):
        if any(s < 0 for s in value):
            raise ValueError(f"{what} {tuple(value)} has a negative size")
        check_numel(tuple(value), f"{what} {tuple(value)}:")
        return InputSpec(shape=tuple(value))
    if isinstance(value, (tuple, list)) and any(isinstance(s, float) for s in value):
        raise TypeError(f"{what} {tuple(value)}: sizes must be ints, got {value!r}")
    raise TypeError(
        f"input_shape entries must be a tuple of ints, an InputSpec or a spec string like "
        f"'input_ids:1x128:int64'; got {value!r}"
    )


def as_specs(input_shape: Any) -> list[InputSpec]:
    """The InputSpecs of ``input_shape``: one shape ``(1, 3, 224, 224)`` (or ``[1, 3, 224,
    224]``: numbers are sizes, never specs), an InputSpec or spec string, or a list of them."""
    if isinstance(input_shape, (InputSpec, str)) or (
        isinstance(input_shape, (tuple, list))
        and input_shape
        and all(isinstance(s, (int, float)) for s in input_shape)
    ):
        return [as_spec(input_shape)]
    if isinstance(input_shape, (list, tuple)) and input_shape:
        return [as_spec(v) for v in input_shape]
    raise TypeError(f"input_shape must be a shape tuple, a spec or a list of them; got {input_shape!r}")


_NUMEL_LIMIT = 2**60  # torch counts a tensor's bytes in int64: 8 bytes an element at most


def check_numel(shape: tuple[int, ...], what: str) -> None:
    """A tensor of ``shape`` can exist, even on meta: torch refuses one whose size in bytes
    overflows int64, with an error from deep in its C++. Fewer than 2**60 elements are taken;
    ``what`` starts the error."""
    numel = 1
    for size in shape:
        numel *= size
    if numel >= _NUMEL_LIMIT:
        raise ValueError(f"{what} {numel:.3g} elements, more than a tensor can hold (fewer than 2**60)")


def build_inputs(
    input_shape: Any,
    *,
    device: torch.device | str = "cpu",
    dtype: str | torch.dtype | None = None,
    floats_on_meta: bool = False,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword inputs for ``input_shape``.

    ``input_shape`` is one shape ``(1, 3, 224, 224)``, an InputSpec or spec string,
    or a list of them (several arguments; named ones become keyword arguments).
    ``dtype`` is for specs that name none (default float32). ``floats_on_meta`` builds
    the floating-point inputs on the meta device (no memory, for a shapes-only count);
    integer and mask inputs stay real either way.
    """
    default = resolve_dtype(dtype) if dtype is not None else torch.float32
    args: list[torch.Tensor] = []
    kwargs: dict[str, torch.Tensor] = {}
    with kept_random_state():  # random inputs leave the caller's stream as it was
        made = [(spec, _make_tensor(spec, device, default, floats_on_meta)) for spec in as_specs(input_shape)]
    for spec, tensor in made:
        if spec.name:
            kwargs[spec.name] = tensor
        else:
            args.append(tensor)
    return tuple(args), kwargs


def _make_tensor(
    spec: InputSpec, device: torch.device | str, default: torch.dtype, floats_on_meta: bool
) -> torch.Tensor:
    dtype = DTYPES[spec.dtype] if spec.dtype is not None else default
    mask = spec.name is not None and "mask" in spec.name
    real = dtype.is_floating_point or dtype.is_complex  # values drawn, not ids or flags
    if str(device) == "meta" and (mask or not real):
        device = "cpu"  # values a model inspects (ids, masks) stay real; see docs/meta.md
    elif floats_on_meta and not mask and real:
        device = "meta"
    if mask:
        return torch.ones(spec.shape, dtype=dtype, device=device)
    if real:
        return torch.randn(spec.shape, dtype=dtype, device=device)
    return torch.zeros(spec.shape, dtype=dtype, device=device)


def describe_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """Name, shape, dtype and device of every tensor input (for reports). Several tensors
    in one argument (a list of images) are told apart by their place: ``arg0[1]``."""
    described = []
    named = [(f"arg{index}", value) for index, value in enumerate(args)] + list(kwargs.items())
    for name, value in named:
        tensors = [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]
        for place, tensor in enumerate(tensors):
            described.append(_describe(f"{name}[{place}]" if len(tensors) > 1 else name, tensor))
    return described


def _describe(name: str, tensor: torch.Tensor) -> dict[str, Any]:
    return {
        "name": name,
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype).removeprefix("torch."),
        "device": tensor.device.type,
    }
