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
from torch.utils._pytree import tree_flatten

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

    ``shapes_only``: ops that read a real floating-point parameter or buffer also run
    on meta, so a real model is counted without arithmetic. Results of common ops are
    built directly on meta (``_fast_meta``), laid out as the CPU kernels lay them out.
    Peak live activation memory is followed through tensor lifetimes.
    """

    def __init__(self, stack: ModuleStack, roles: dict[int, str], shapes_only: bool = False) -> None:
        super().__init__()
        self.shapes_only = shapes_only
        self.stack = stack
        self.events: list[OpEvent] = []
        self._roles = dict(roles)
        self._keep_alive: list[torch.Tensor] = []
        self.suppressed = 0  # > 0 while a whole-function event covers the ops below it
        self._meta_copies: dict[int, torch.Tensor] = {}  # id(parameter) -> its meta twin
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
        device_move_only = "device" in kwargs and _moves_to_meta_only(func, args, kwargs)
        if "device" in kwargs:
            kwargs = _real_integer_factories(args, kwargs, tensors)
        if self._needs_meta(tensors):
            args, kwargs = self._align_meta(args, kwargs)
            tensors = _tensors(args, kwargs)
        out = _fast_meta(func, args, tensors)
        if out is None:
            out = func(*args, **kwargs)
        if device_move_only:
            # x.to(meta_activation.device): a real run does nothing here, so neither do we
            role = self._roles.get(id(tensors[0]))
            if role is not None:
                self._roles[id(out)] = role
                self._keep_alive.append(out)
            return out
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

    def _needs_meta(self, tensors: list[torch.Tensor]) -> bool:
        """Whether this call must run on meta: it mixes meta and real tensors, or (in a
        shapes-only run) it reads a real floating-point parameter or buffer."""
        if not tensors:
            return False
        if any(t.is_meta for t in tensors):
            return not all(t.is_meta for t in tensors)
        return self.shapes_only and any(
            t.is_floating_point() and self._roles.get(id(t)) is not None for t in tensors
        )

    def _align_meta(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Move the real tensors of a call that mixes meta and real ones to meta (no
        data is copied); a moved parameter keeps its role for the traffic count."""

        def move(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                return value if value.is_meta else self._meta_copy(value)
            if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
                return type(value)(move(v) for v in value)
            return value

        return tuple(move(a) for a in args), {k: move(v) for k, v in kwargs.items()}

    def _meta_copy(self, tensor: torch.Tensor) -> torch.Tensor:
        """A meta tensor like ``tensor``; parameters and buffers get one copy per run."""
        role = self._roles.get(id(tensor))
        if role is None:
            return tensor.detach().to("meta")
        copy = self._meta_copies.get(id(tensor))
        if copy is None:
            copy = self._meta_copies[id(tensor)] = tensor.detach().to("meta")
            self._roles[id(copy)] = role
        return copy

    def release(self) -> None:
        """Drop the references kept to parameter views; stop counting memory."""
        self._tracking = False
        self._keep_alive.clear()
        self._meta_copies.clear()
        self._roles.clear()


# Functions counted whole, by one formula, whichever kernel (math, flash, efficient,
# cuDNN) or device (meta included) runs them underneath. multi_head_attention_forward
# is here because torch lifts a function mode while its handler runs, so the SDPA call
# inside it would otherwise reach us only as the kernel it picked.
WHOLE_FUNCTIONS = {
    torch.nn.functional.scaled_dot_product_attention: "aten.scaled_dot_product_attention",
    torch.nn.functional.multi_head_attention_forward: "nn.functional.multi_head_attention_forward",
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
            out = _sdpa_on_meta(func, args, kwargs)
            if out is None:
                out = func(*args, **kwargs)
        finally:
            self.ops.suppressed -= 1
        flat_out = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        self.ops.record(name, "default", *_recorded_call(func, args, kwargs), flat_out)
        return out


def _moves_to_meta_only(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """A copy of a real tensor to the meta device with nothing else changed."""
    if func.overloadpacket.__name__ != "_to_copy" or not args or not isinstance(args[0], torch.Tensor):
        return False
    device = kwargs.get("device")
    dtype = kwargs.get("dtype")
    return (
        not args[0].is_meta
        and device is not None
        and torch.device(device).type == "meta"
        and (dtype is None or dtype == args[0].dtype)
    )


def _sdpa_on_meta(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """SDPA's output on meta without running its math decomposition: (..., L, Ev), laid out
    in memory as the kernel torch would pick on the CPU writes it (fused kernels follow the
    query's layout; the math path writes contiguous), so later reshapes copy alike.

    When a gradient will flow (grad mode on, an input requiring grad), the result must
    carry the autograd history the CPU run has, or the backward of the attention and of
    everything before it is lost: the fused CPU kernel is called on meta (its backward
    is the same aten op a CPU run records), and the math path runs as it is (None)."""
    if func is not torch.nn.functional.scaled_dot_product_attention:
        return None
    call = dict(zip(_SDPA_ARGUMENTS, args, strict=False)) | kwargs
    q, k, v = call.get("query"), call.get("key"), call.get("value")
    if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and isinstance(v, torch.Tensor)):
        return None
    if not (q.is_meta and k.is_meta and v.is_meta):
        return None
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    fused = _cpu_would_fuse(args, kwargs)
    if needs_grad:
        return _cpu_flash_on_meta(args, kwargs) if fused else None
    shape = (*q.shape[:-1], v.shape[-1])
    if not fused:
        return torch.empty(shape, dtype=q.dtype, device="meta")
    # fused kernels lay the output out like the query
    strides = q.stride()
    order = sorted(range(q.ndim), key=lambda d: (-strides[d], d))
    physical = torch.empty([shape[d] for d in order], dtype=q.dtype, device="meta")
    return physical.permute([order.index(d) for d in range(q.ndim)])


_SDPA_ARGUMENTS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


def _cpu_flash_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The CPU flash kernel called on meta as F.scaled_dot_product_attention calls it
    (a boolean mask becomes an additive one first), with its autograd history."""
    call = dict(zip(_SDPA_ARGUMENTS, args, strict=False)) | kwargs
    q, mask = call["query"], call.get("attn_mask")
    if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool:
        mask = torch.zeros((), dtype=q.dtype, device="meta").expand(mask.shape)
    elif isinstance(mask, torch.Tensor) and not mask.is_meta:
        mask = mask.detach().to("meta")
    out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q,
        call["key"],
        call["value"],
        float(call.get("dropout_p", 0.0) or 0.0),
        bool(call.get("is_causal", False)),
        attn_mask=mask,
        scale=call.get("scale"),
    )
    return out[0]


_last_mask: list[Any] = [None, False]  # (weak reference to a mask, whether it is causal)


def _recorded_call(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments to record for a whole function. SDPA's are put in one order however
    it was called (``query=q, key=k, ...`` included): query, key, value, attn_mask,
    dropout_p, is_causal positionally, scale and enable_gqa by name, plus
    ``causal_mask="bottom_right"`` when its mask is that pattern (see below)."""
    if func is not torch.nn.functional.scaled_dot_product_attention:
        return args, kwargs
    call = dict(zip(_SDPA_ARGUMENTS, args, strict=False)) | kwargs
    defaults = {"attn_mask": None, "dropout_p": 0.0, "is_causal": False}
    positional = tuple(call.get(name, defaults.get(name)) for name in _SDPA_ARGUMENTS[:6])
    named = {name: call[name] for name in _SDPA_ARGUMENTS[6:] if name in call}
    return positional, _mark_causal_mask(call, named)


def _mark_causal_mask(call: dict[str, Any], named: dict[str, Any]) -> dict[str, Any]:
    """``named`` plus ``causal_mask="bottom_right"`` when SDPA's mask is a real boolean
    tensor equal to the bottom-right causal pattern (query i of L sees keys up to S-L+i:
    chunked prefill after a cache), so ``causal="needed"`` can count only the kept scores.
    One check per mask tensor (layers share it)."""
    mask, q, k = call.get("attn_mask"), call.get("query"), call.get("key")
    if not isinstance(mask, torch.Tensor) or mask.is_meta or mask.dtype != torch.bool or mask.ndim < 2:
        return named
    if not isinstance(q, torch.Tensor) or not isinstance(k, torch.Tensor):
        return named
    known = _last_mask[0]() if _last_mask[0] is not None else None
    if known is not mask:
        queries, keys = q.shape[-2], k.shape[-2]
        causal = tuple(mask.shape[-2:]) == (queries, keys) and _is_bottom_right_causal(mask)
        _last_mask[:] = [weakref.ref(mask), causal]
    return {**named, "causal_mask": "bottom_right"} if _last_mask[1] else named


def _is_bottom_right_causal(mask: torch.Tensor) -> bool:
    """Whether every (L, S) slice of ``mask`` keeps exactly keys 0 .. S-L+i in row i.
    Compared a block of rows at a time against the pattern, so a long prompt's mask
    costs no more than a block of memory."""
    queries, keys = mask.shape[-2], mask.shape[-1]
    rows = mask.reshape(-1, queries, keys)
    block = max(1, 2**22 // max(keys, 1))
    for start in range(0, queries, block):
        stop = min(start + block, queries)
        pattern = torch.ones(stop - start, keys, dtype=torch.bool).tril(keys - queries + start)
        if not bool((rows[:, start:stop] == pattern).all()):
            return False
    return True


def _cpu_would_fuse(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Ask torch's own backend choice on memory-free CPU stand-ins of the same shapes
    (and the same requires_grad: the choice may depend on it)."""
    call = dict(zip(_SDPA_ARGUMENTS, args, strict=False)) | kwargs

    def stand_in(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.ndim:
            base = torch.empty(value.shape[-1], dtype=value.dtype)
            if value.requires_grad and torch.is_grad_enabled():
                base.requires_grad_(True)
            return base.expand(value.shape)
        return value

    try:
        choice = torch._fused_sdp_choice(**{k: stand_in(v) for k, v in call.items()})
    except (RuntimeError, TypeError):
        return True
    return bool(choice != 0)  # 0 is the math path


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


# Shape-preserving floating-point ops whose meta kernels are slow Python decompositions
# (hardswish on meta costs ~2 ms a call): on meta their result is an empty tensor like
# the input, made here directly.
_UNARY_SAME_SHAPE = frozenset(
    "relu relu_ hardswish hardswish_ hardsigmoid hardsigmoid_ hardtanh hardtanh_ sigmoid sigmoid_ "
    "tanh tanh_ silu silu_ gelu gelu_ elu elu_ leaky_relu leaky_relu_ mish mish_ softplus "
    "log_sigmoid_forward".split()
)


_BINARY = frozenset("add add_ sub sub_ mul mul_ div div_".split())


def _fast_meta(func: Any, args: tuple[Any, ...], tensors: list[torch.Tensor]) -> Any:
    """The result of ``func`` on all-meta floating inputs, for common ops whose meta
    kernels are slow (Python decompositions: 0.3-2 ms a call); None to run the op's own
    kernel. Results are fresh meta tensors of exactly the shape and dtype the op returns."""
    if not tensors or not all(t.is_meta for t in tensors) or not tensors[0].is_floating_point():
        return None
    name = func.overloadpacket.__name__
    first = tensors[0]
    if name in _UNARY_SAME_SHAPE and len(tensors) == 1 and func._overloadname in ("default", ""):
        return first if name.endswith("_") else torch.empty_like(first)
    if name in _BINARY and len(args) >= 2 and isinstance(args[0], torch.Tensor):
        shape = torch.broadcast_shapes(*(t.shape for t in tensors))
        if name.endswith("_"):
            return args[0] if args[0].shape == shape else None
        dtype = torch.result_type(args[0], args[1])
        if dtype != first.dtype and not dtype.is_floating_point:
            return None
        return (
            torch.empty_like(first, dtype=dtype)
            if first.shape == shape
            else torch.empty(shape, dtype=dtype, device="meta")
        )
    if name in ("mm", "addmm") and len(tensors) in (2, 3):
        a, b = tensors[-2], tensors[-1]
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0]:
            return torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device="meta")
    if name == "bmm" and len(tensors) == 2:
        a, b = tensors
        if a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0] and a.shape[2] == b.shape[1]:
            return torch.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=a.dtype, device="meta")
    if name in ("_softmax", "_safe_softmax", "_log_softmax") and len(tensors) == 1:
        half_to_float = len(args) > 2 and bool(args[2])  # the CPU/CUDA kernels write contiguous results
        return torch.empty(first.shape, dtype=torch.float32 if half_to_float else first.dtype, device="meta")
    if name == "native_layer_norm":
        axis = first.ndim - len(args[1])
        stats = torch.empty((*first.shape[:axis], *([1] * len(args[1]))), dtype=first.dtype, device="meta")
        return torch.empty(first.shape, dtype=first.dtype, device="meta"), stats, torch.empty_like(stats)
    if name == "native_batch_norm" or name == "_native_batch_norm_legit_no_training":
        training = bool(args[5]) if name == "native_batch_norm" else False
        stat_shape = (first.shape[1],) if training and first.ndim > 1 else (0,)
        low = first.dtype in (torch.float16, torch.bfloat16)
        stat = torch.empty(stat_shape, dtype=torch.float32 if low else first.dtype, device="meta")
        return torch.empty_like(first), stat, torch.empty_like(stat)
    return None


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


def parameter_roles(model: torch.nn.Module) -> dict[int, str]:
    """``id`` -> "param"/"buffer" for every parameter and buffer of ``model``."""
    roles = {id(b): "buffer" for b in model.buffers()}
    roles.update({id(p): "param" for p in model.parameters()})
    return roles
