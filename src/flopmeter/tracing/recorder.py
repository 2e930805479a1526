"""Record every aten op a model runs, with shapes and the module that ran it.

A ``TorchDispatchMode`` sees each op below autograd: functional calls, tensor
methods and operators (``@``, ``einsum``, ``F.scaled_dot_product_attention``) all
arrive here as the aten ops they really dispatch to. Nothing in torch is patched.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from .events import BACKWARD, FORWARD, OpEvent, TensorMeta
from .modules import ModuleStack


class OpRecorder(TorchDispatchMode):
    """Appends one OpEvent per aten op call to ``self.events``.

    ``roles`` maps ``id(tensor)`` of the model's parameters and buffers to
    "param" / "buffer"; views of them inherit the role, so a transposed weight
    still counts as weight traffic.

    Meta mixing: when an op receives meta tensors together with real ones (a real
    attention mask next to meta activations), the real ones are moved to meta for
    that op only. Ops whose inputs are all real run for real, so a model can still
    inspect values (``mask.all()``, ``ids.max()``) while weights stay on meta.
    """

    def __init__(self, stack: ModuleStack, roles: dict[int, str]) -> None:
        super().__init__()
        self.stack = stack
        self.events: list[OpEvent] = []
        self._roles = dict(roles)
        self._keep_alive: list[torch.Tensor] = []
        self.suppressed = 0  # > 0 while a whole-function event covers the ops below it
        self.live_bytes = 0  # activation memory alive now (tensors made by ops, not views)
        self.peak_bytes = 0
        self._tracking = True
        stack.describe = self.describe

    def hold(self, tensors: list[torch.Tensor]) -> None:
        """Count tensors alive for the whole run (the model's inputs) as live memory."""
        self.live_bytes += sum(t.numel() * t.element_size() for t in tensors)
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)

    def _allocated(self, tensor: torch.Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        self.live_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        weakref.finalize(tensor, self._freed, size)

    def _freed(self, size: int) -> None:
        if self._tracking:
            self.live_bytes -= size

    def describe(self, value: Any) -> Any:
        """Replace every tensor in ``value`` by its TensorMeta, keeping the structure."""
        if isinstance(value, torch.Tensor):
            return TensorMeta(
                tuple(value.shape),
                _DTYPE_NAMES.get(value.dtype) or str(value.dtype).removeprefix("torch."),
                value.element_size(),
                self._roles.get(id(value), "activation"),
            )
        if value is None or isinstance(value, (int, float, bool, str)):
            return value
        if isinstance(value, (list, tuple)):
            if not any(isinstance(v, (torch.Tensor, list, tuple, dict)) for v in value):
                return value  # sizes, strides, flags: kept as they are
            described = [self.describe(v) for v in value]
            return described if isinstance(value, list) else tuple(described)
        if isinstance(value, dict):
            return {k: self.describe(v) for k, v in value.items()}
        if isinstance(value, (torch.dtype, torch.device, torch.memory_format, torch.layout)):
            return str(value).removeprefix("torch.")
        return value
        if isinstance(value, list):
            return [self.describe(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.describe(v) for v in value)
        if isinstance(value, dict):
            return {k: self.describe(v) for k, v in value.items()}
        if isinstance(value, (torch.dtype, torch.device, torch.memory_format, torch.layout)):
            return str(value).removeprefix("torch.")
        return value

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        tensors = _tensors(args, kwargs)
        if "device" in kwargs:
            kwargs = _real_integer_factories(args, kwargs, tensors)
        if len(tensors) > 1 and any(t.is_meta for t in tensors):
            args, kwargs = _align_meta(args, kwargs)
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor):
            flat_out = [out]
        else:
            flat_out = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not getattr(func, "is_view", False):
            for t in flat_out:
                if not any(t is source for source in tensors):  # in-place results are their input
                    self._allocated(t)
        if self.stack.inside_custom or self.suppressed:
            return out
        if getattr(func, "is_view", False) and args and isinstance(args[0], torch.Tensor):
            role = self._roles.get(id(args[0]))
            if role is not None:
                for t in flat_out:
                    self._roles[id(t)] = role
                    self._keep_alive.append(t)  # ids stay unique while we map them
        self.record(
            f"{func.namespace}.{func.overloadpacket.__name__}", func._overloadname, args, kwargs, flat_out
        )
        return out

    def record(
        self,
        op: str,
        overload: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        outputs: list[torch.Tensor],
    ) -> None:
        self.events.append(
            OpEvent(
                op=op,
                overload=overload,
                args=self.describe(tuple(args)),
                kwargs=self.describe(dict(kwargs)),
                outputs=tuple(self.describe(t) for t in outputs),
                module=self.stack.current(),
                phase=BACKWARD if self.stack.in_backward else FORWARD,
            )
        )

    def release(self) -> None:
        """Drop the references kept to parameter views; stop counting memory."""
        self._tracking = False
        self._keep_alive.clear()
        self._roles.clear()


# Functions counted whole, by one formula, whichever kernel (math, flash, efficient,
# cuDNN) or device (meta included) runs them underneath.
WHOLE_FUNCTIONS = {
    torch.nn.functional.scaled_dot_product_attention: "aten.scaled_dot_product_attention",
}


class FunctionRecorder(TorchFunctionMode):
    """Records WHOLE_FUNCTIONS as one event and silences the aten ops they run."""

    def __init__(self, ops: OpRecorder) -> None:
        super().__init__()
        self.ops = ops

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        name = WHOLE_FUNCTIONS.get(func)
        if name is None or self.ops.suppressed or self.ops.stack.inside_custom:
            return func(*args, **kwargs)
        self.ops.suppressed += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self.ops.suppressed -= 1
        flat_out = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        self.ops.record(name, "default", args, kwargs, flat_out)
        return out


_DTYPE_NAMES = {
    dtype: str(dtype).removeprefix("torch.")
    for dtype in (
        torch.float32,
        torch.float16,
        torch.bfloat16,
        torch.float64,
        torch.int64,
        torch.int32,
        torch.bool,
    )
}


def _tensors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """Tensor arguments, also inside lists (aten arguments nest at most one level)."""
    found = []
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, torch.Tensor))
    return found


def _real_integer_factories(
    args: tuple[Any, ...], kwargs: dict[str, Any], sources: list[torch.Tensor]
) -> dict[str, Any]:
    """Integer and bool tensors asked for on meta (positions, masks: created there, or a
    real one moved there) are made on the CPU instead, so the values a model inspects
    exist; float tensors stay on meta."""
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    if device is None or torch.device(device).type != "meta":
        return kwargs
    if any(t.is_meta for t in sources):
        return kwargs
    if dtype is None and sources:
        dtype = sources[0].dtype
    if isinstance(dtype, torch.dtype):
        is_float = dtype.is_floating_point or dtype.is_complex
    else:
        is_float = any(isinstance(a, float) for a in args)
    if is_float:
        return kwargs
    return {**kwargs, "device": torch.device("cpu")}


def _align_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    flat, spec = tree_flatten((args, kwargs))
    if all(t.is_meta for t in flat if isinstance(t, torch.Tensor)):
        return args, kwargs
    moved = [t.to("meta") if isinstance(t, torch.Tensor) and t.device.type != "meta" else t for t in flat]
    new_args, new_kwargs = tree_unflatten(moved, spec)
    return tuple(new_args), dict(new_kwargs)


def parameter_roles(model: torch.nn.Module) -> dict[int, str]:
    """``id`` -> "param"/"buffer" for every parameter and buffer of ``model``."""
    roles = {id(b): "buffer" for b in model.buffers()}
    roles.update({id(p): "param" for p in model.parameters()})
    return roles
