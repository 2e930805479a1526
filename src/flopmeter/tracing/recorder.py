"""Record every aten op a model runs, with shapes and the module that ran it.

A ``TorchDispatchMode`` sees each op below autograd: functional calls, tensor
methods and operators (``@``, ``einsum``, ``F.scaled_dot_product_attention``) all
arrive here as the aten ops they really dispatch to. Nothing in torch is patched.

Under ``torch.inference_mode()`` autograd is skipped, so composite ops (``aten.linear``,
``matmul``, ``einsum``, ``lstm``, ``group_norm``) reach the mode whole; they are
decomposed here exactly as autograd would decompose them, so every calling mode
records the same ops.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from . import replay
from .events import FORWARD, OpEvent, TensorMeta, collect_metas
from .modules import ModuleStack


class ShapesOnlyUnavailable(RuntimeError):
    """A shapes-only run cannot follow what the real call would do (autocast's casts)."""


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
    A meta activation moved to a real device (``x.to(weight.device)``) stays meta: it
    stands for a tensor already there. Contractions check that their operands share a
    dtype, as the real kernels do (most meta kernels do not), so a call the real model
    rejects is rejected here too. Under ``torch.autocast`` a shapes-only run refuses to
    start (autocast does not cast meta tensors), raising ShapesOnlyUnavailable.
    Peak live activation memory is followed through tensor lifetimes.
    """

    def __init__(self, stack: ModuleStack, roles: dict[int, str], shapes_only: bool = False) -> None:
        super().__init__()
        self.shapes_only = shapes_only
        self.stack = stack
        self.events: list[OpEvent] = []
        self._roles = dict(roles)
        self._owned = roles  # the model's own parameters and buffers
        self._keep_alive: list[torch.Tensor] = []
        self.suppressed = 0  # > 0 while a whole-function event covers the ops below it
        self._meta_copies: dict[int, torch.Tensor] = {}  # id(parameter) -> its meta twin
        self.live_bytes = 0  # activation memory alive now (tensors made by ops, not views)
        self.peak_bytes = 0
        self._sizes: dict[int, tuple[weakref.ref[torch.Tensor], int]] = {}  # id -> (live tensor, bytes)
        self._phase = stack.phase if stack.track_backward else _forward_phase
        self._module = stack.current
        self.writes: Any = None  # run.WriteGuard of the model-state guard, if it guards values
        self._refusal = (
            "counting on shapes cannot follow torch.autocast's casts (autocast does not cast "
            "meta tensors); profile with shapes_only=False"
            if shapes_only and torch._C._is_any_autocast_enabled()
            else None
        )
        stack.describe = self.describe

    def hold(self, tensors: list[torch.Tensor]) -> None:
        """Count tensors alive for the whole run (the model's inputs) as live memory."""
        self.live_bytes += sum(t.numel() * t.element_size() for t in tensors)
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)

    def _allocated(self, tensor: torch.Tensor) -> None:
        key = id(tensor)
        if key in self._sizes:
            return  # a live tensor returned again is counted once
        size = tensor.numel() * tensor.element_size()
        if not size:
            return  # nothing to follow (the batch norms' empty reserve tensors)
        self._sizes[key] = (weakref.ref(tensor, lambda _ref: self._freed(key)), size)
        self.live_bytes += size
        if self.live_bytes > self.peak_bytes:
            self.peak_bytes = self.live_bytes

    def _freed(self, key: int) -> None:
        entry = self._sizes.pop(key, None)
        if entry is not None:
            self.live_bytes -= entry[1]

    def meta_of(self, tensor: torch.Tensor) -> TensorMeta:
        """The TensorMeta of one tensor: shape, dtype, item size and role."""
        dtype = tensor.dtype
        info = _DTYPES.get(dtype)
        if info is None:
            info = _DTYPES[dtype] = (str(dtype).removeprefix("torch."), dtype.itemsize)
        # tuple.__new__ is what the NamedTuple's own __new__ calls, minus one Python frame
        return _new_tuple(
            TensorMeta, (tuple(tensor.shape), info[0], info[1], self._roles.get(id(tensor), "activation"))
        )

    def describe(self, value: Any) -> Any:
        """Replace every tensor in ``value`` by its TensorMeta, keeping the structure."""
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind in _NAMED_KINDS:  # dtype, device, layout, memory_format: by name
            name = _NAMES.get(value)
            if name is None:
                name = _NAMES[value] = str(value).removeprefix("torch.")
            return name
        if kind is torch.Tensor or kind is torch.nn.Parameter:
            return self.meta_of(value)
        if kind is tuple or kind is list or (kind is not torch.Size and isinstance(value, (list, tuple))):
            if _plain_numbers(value):
                return value  # sizes, strides, flags: kept as they are
            described = [self.describe(v) for v in value]
            return described if kind is list else tuple(described)
        if isinstance(value, torch.Tensor):
            return self.meta_of(value)
        if isinstance(value, dict):
            return {k: self.describe(v) for k, v in value.items()}
        if isinstance(value, _NAMED_KINDS):
            return str(value).removeprefix("torch.")
        return value

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing here is ever compiled: spare every op torch's dynamo guard

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        op = _OPS.get(func) or _op_facts(func)
        if op.writes and self.writes is not None:
            self.writes.before(func, args, kwargs)  # the model-state guard's copy before a write
        if op.composite:  # only under inference_mode: decompose as autograd would have
            with self:  # the C++ kernel autograd runs (decompose() may prefer a Python one)
                return func._op_dk(_COMPOSITE, *args, **(kwargs or {}))
        if self._refusal is not None:
            raise ShapesOnlyUnavailable(self._refusal)
        # With a function mode active, every tensor attribute read (.shape, .dtype) would
        # go through Python; below the dispatcher no function mode has anything to see.
        with torch._C.DisableTorchFunction():
            return self._dispatch(func, op, args, kwargs or {})

    def _dispatch(self, func: Any, op: _OpFacts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        device_move_only = False
        if kwargs and "device" in kwargs:
            tensors = _tensors(args, kwargs)
            if tensors and self.shapes_only and _leaves_meta(op, args, kwargs):
                # x.to(weight.device): the meta activation stands for a tensor already there
                if kwargs.get("dtype") in (None, args[0].dtype):
                    return args[0]
                kwargs = {**kwargs, "device": torch.device("meta")}
            device_move_only = _moves_to_meta_only(op, args, kwargs)
            kwargs = _real_integer_factories(args, kwargs, tensors)
        else:
            tensors = _tensors(args, kwargs)
        out = None
        if tensors:
            placement = self._placement(tensors)
            if placement is not _AS_IS:
                if placement is _WEIGHTS_REAL and op.fast and not _may_write(op, args):
                    # weights are only read for their shapes: no meta twins needed
                    if op.same_dtype is not None:
                        _check_same_dtype(op, tensors)
                    out = _fast_meta(op, args, tensors, checked=True)
                if out is None:
                    args, kwargs, tensors = self._align_meta(args, kwargs)
            if out is None and tensors[0].is_meta:  # every tensor is meta
                if op.same_dtype is not None:
                    _check_same_dtype(op, tensors)
                if op.fast:
                    out = _fast_meta(op, args, tensors, checked=True)
        if out is None:
            out = func(*args, **kwargs)
        if device_move_only:
            # x.to(meta_activation.device): a real run does nothing here, so neither do we
            role = self._roles.get(id(tensors[0]))
            if role is not None:
                self._roles[id(out)] = role
                self._keep_alive.append(out)
            return out
        flat_out = [out] if isinstance(out, torch.Tensor) else _output_tensors(out)
        quiet = self.suppressed or self.stack.inside_custom  # ops a whole-call event covers
        if op.is_view:
            if quiet:
                return out
            role = self._roles.get(id(args[0])) if args and isinstance(args[0], torch.Tensor) else None
            if role is not None:
                for t in flat_out:
                    self._roles[id(t)] = role
                    self._keep_alive.append(t)  # ids stay unique while we map them
        else:
            for t in flat_out:
                for source in tensors:
                    if t is source:
                        break  # in-place results are their input
                else:
                    self._allocated(t)
            if quiet:
                return out
        self.record(op.name, op.overload, args, kwargs, flat_out)
        return out

    def record(
        self,
        op: str,
        overload: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        outputs: list[torch.Tensor],
    ) -> None:
        meta_of = self.meta_of
        described, inputs = self._describe_args(args)
        event = OpEvent(
            op,
            described,
            self.describe(kwargs) if kwargs else {},
            tuple([meta_of(t) for t in outputs]),
            self._module(),
            self._phase(),
            overload,
        )
        if event.kwargs:
            for value in event.kwargs.values():
                if type(value) is TensorMeta:
                    inputs.append(value)
                elif isinstance(value, (list, tuple, dict)):
                    inputs.extend(collect_metas(value))
        event._inputs = inputs  # what event.tensor_inputs() would work out again
        self.events.append(event)

    def _describe_args(self, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[TensorMeta]]:
        """``describe(args)`` for an aten call's positional arguments, with the common
        kinds (tensors, numbers, int lists) handled in line: this runs for every op.
        Also returns the TensorMetas among them, in order (nested lists included)."""
        described = []
        inputs: list[TensorMeta] = []
        meta_of = self.meta_of
        for value in args:
            kind = type(value)
            if kind is torch.Tensor or kind is torch.nn.Parameter:
                meta = meta_of(value)
                described.append(meta)
                inputs.append(meta)
            elif kind in _SCALARS or ((kind is list or kind is tuple) and _plain_numbers(value)):
                described.append(value)
            else:
                other = self.describe(value)
                described.append(other)
                if type(other) is TensorMeta:
                    inputs.append(other)
                elif isinstance(other, (list, tuple, dict)):
                    inputs.extend(collect_metas(other))
        return tuple(described), inputs

    def _placement(self, tensors: list[torch.Tensor]) -> object:
        """Where this call can run: ``_AS_IS`` (all meta; or all real in a values run or
        reading no real floating-point weight), ``_WEIGHTS_REAL`` (meta activations, or
        none, with real floating-point weights of the model: the weights are only read
        for their shapes), else ``_MOVE`` (real tensors must join meta first). One pass."""
        metas = 0
        weights_only = True  # every real tensor is a floating-point weight of the model
        reads_weight = False  # some real tensor is a floating-point weight (or a view of one)
        owned, roles = self._owned, self._roles
        for t in tensors:
            if t.is_meta:
                metas += 1
            elif id(t) in roles and t.is_floating_point():
                reads_weight = True
                weights_only = weights_only and id(t) in owned
            else:
                weights_only = False
        if metas == len(tensors) or not (metas or (self.shapes_only and reads_weight)):
            return _AS_IS
        return _WEIGHTS_REAL if weights_only else _MOVE

    def _align_meta(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], list[torch.Tensor]]:
        """Move the real tensors of a call that mixes meta and real ones to meta (no
        data is copied); a moved parameter keeps its role for the traffic count.
        Returns the new arguments and their tensors (aten arguments nest one level)."""
        tensors: list[torch.Tensor] = []  # no closure here: one would keep them alive
        args = tuple([self._moved(value, tensors) for value in args])
        if kwargs:
            kwargs = {key: self._moved(value, tensors) for key, value in kwargs.items()}
        return args, kwargs, tensors

    def _moved(self, value: Any, tensors: list[torch.Tensor]) -> Any:
        """``value`` with its real tensors replaced by meta ones, appended to ``tensors``."""
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is list or kind is tuple:
            if _plain_numbers(value):
                return value
            return kind([self._moved(item, tensors) for item in value])
        if isinstance(value, torch.Tensor):
            if not value.is_meta:
                value = self._meta_copy(value)
            tensors.append(value)
        return value

    def _meta_copy(self, tensor: torch.Tensor) -> torch.Tensor:
        """A meta tensor like ``tensor``; parameters and buffers get one copy per run."""
        copy = self._meta_copies.get(id(tensor))
        if copy is not None:
            return copy
        role = self._roles.get(id(tensor))
        if role is None:
            return _to_meta(tensor)
        copy = _twin(tensor) if id(tensor) in self._owned else _to_meta(tensor)
        self._meta_copies[id(tensor)] = copy
        self._roles[id(copy)] = role
        return copy

    @property
    def weight_roles(self) -> dict[int, str]:
        """``id`` -> "param"/"buffer" of the model's own parameters and buffers."""
        return self._owned

    def replayed(self, known: replay.Replay) -> Any:
        """Fresh outputs of a replayed whole call, with the memory its first call used:
        live memory rises by ``known.peak_rise`` at most, and the outputs stay alive."""
        self.peak_bytes = max(self.peak_bytes, self.live_bytes + known.peak_rise)
        out = replay.rebuild(known.outputs)
        for tensor in _output_tensors(out):
            self._allocated(tensor)
        return out

    def release(self) -> None:
        """Drop the references kept to parameter views; stop counting memory."""
        self._sizes.clear()  # the weak references go, and with them their callbacks
        self._keep_alive.clear()
        self._meta_copies.clear()
        self._roles.clear()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (as a ``with`` block or a decorator).

    A profile allocates thousands of small objects (events, shapes) that live until it
    returns; each collection they trigger walks them all again, about a fifth of a small
    model's profile. Around the whole profile call, most of them are freed before the
    collector runs again. Nothing is lost: the collector is switched back on after (if
    it was on), and collects then.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _to_meta(tensor: torch.Tensor) -> torch.Tensor:
    """A meta twin of ``tensor``. Under inference_mode the twin of a normal tensor is made
    normal too: a view of it replaces a view of ``tensor``, and torch gives a view the
    version counter of its base, which an inference tensor cannot take."""
    if torch.is_inference_mode_enabled() and not tensor.is_inference():
        with torch.inference_mode(False):
            return tensor.detach().to("meta")
    return tensor.detach().to("meta")


_TWINS: dict[int, tuple[weakref.ref[torch.Tensor], torch.Tensor]] = {}


def _twin(tensor: torch.Tensor) -> torch.Tensor:
    """The meta twin of a model's parameter or buffer, kept from one profile to the next
    while the tensor lives and keeps its shape, strides and dtype (a meta tensor holds
    no memory; only a weak reference to the tensor is kept)."""
    key = id(tensor)
    entry = _TWINS.get(key)
    if entry is not None:
        ref, twin = entry
        if (
            ref() is tensor
            and twin.dtype == tensor.dtype
            and twin.shape == tensor.shape
            and twin.stride() == tensor.stride()
        ):
            return twin
    twin = _to_meta(tensor)

    def forget(_ref: weakref.ref[torch.Tensor]) -> None:
        _TWINS.pop(key, None)

    _TWINS[key] = (weakref.ref(tensor, forget), twin)
    return twin


def _forward_phase() -> str:
    return FORWARD


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
        self._fuse_choices: dict[Any, bool] = {}  # SDPA's CPU backend choice, by call signature
        self._replays: dict[tuple[Any, ...], replay.Replay] = {}  # whole calls on meta, by signature

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        name = WHOLE_FUNCTIONS.get(func)
        if name is None or self.ops.suppressed or self.ops.stack.inside_custom:
            return func(*args, **kwargs)
        self.ops.suppressed += 1
        try:
            out = _sdpa_on_meta(func, args, kwargs, self._fuse_choices)
            if out is None:
                out = self._call_whole(func, args, kwargs)
        finally:
            self.ops.suppressed -= 1
        with torch._C.DisableTorchFunction():
            self.ops.record(name, "default", *_recorded_call(func, args, kwargs), _output_tensors(out))
        return out

    def _call_whole(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``func(*args, **kwargs)``, or, for a repeat of a replayable call on meta, its
        outputs and memory accounting as the first such call left them (tracing/replay.py)."""
        ops = self.ops
        key = None
        if ops.shapes_only and func in replay.REPLAYABLE:
            with torch._C.DisableTorchFunction():
                key = replay.signature(args, kwargs, ops.weight_roles)
        if key is None:
            return func(*args, **kwargs)
        known = self._replays.get(key)
        if known is not None:
            return ops.replayed(known)
        level, peak = ops.live_bytes, ops.peak_bytes
        ops.peak_bytes = level  # to see how far the body alone raises live memory
        try:
            out = func(*args, **kwargs)
        finally:
            rise = ops.peak_bytes - level
            ops.peak_bytes = max(peak, ops.peak_bytes)
        with torch._C.DisableTorchFunction():
            layouts = replay.layouts(out)
            kept = ops.live_bytes - level
            if layouts is not None and kept == sum(
                t.numel() * t.element_size() for t in _output_tensors(out)
            ):
                self._replays[key] = replay.Replay(layouts, rise)
        return out


class _OpFacts:
    """What the recorder needs to know of one aten overload, worked out once."""

    __slots__ = ("name", "short", "overload", "is_view", "writes", "composite", "same_dtype", "fast")

    def __init__(self, func: Any) -> None:
        self.short: str = func.overloadpacket.__name__
        self.name = f"{func.namespace}.{self.short}"
        self.overload: str = func._overloadname
        self.is_view = bool(getattr(func, "is_view", False))
        # whether it may write an argument: only these pass the model-state guard's check
        self.writes = bool(func._schema.is_mutable) or self.short in UNMARKED_WRITE_OPS
        self.composite = bool(torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), _COMPOSITE))
        self.same_dtype: int | None = _SAME_DTYPE.get(self.name)
        self.fast = self.short in _FAST_META_OPS


_OPS: dict[Any, _OpFacts] = {}
_AS_IS, _WEIGHTS_REAL, _MOVE = object(), object(), object()  # OpRecorder._placement
# Ops that write arguments their schema does not mark as written (``Tensor(a!)``): the
# batch norms update running_mean and running_var when ``training`` is set.
UNMARKED_WRITE_OPS = frozenset({"native_batch_norm", "cudnn_batch_norm", "miopen_batch_norm"})
_COMPOSITE = torch._C.DispatchKey.CompositeImplicitAutograd


def _op_facts(func: Any) -> _OpFacts:
    facts = _OPS[func] = _OpFacts(func)
    return facts


# Contractions whose real kernels require one dtype for their operands (how many of the
# tensor arguments: 0 = all; convolution's bias may differ) but whose meta kernels do
# not all check it.
_SAME_DTYPE: dict[str, int] = {
    **dict.fromkeys(("aten." + name for name in "mm addmm bmm baddbmm addbmm mv addmv dot vdot".split()), 0),
    "aten.convolution": 2,
    "aten._convolution": 2,
}


def _may_write(op: _OpFacts, args: tuple[Any, ...]) -> bool:
    """Whether the call may write one of its arguments; a batch norm writes its running
    statistics only in training (argument 5)."""
    if op.writes and op.short in UNMARKED_WRITE_OPS:
        return len(args) < 6 or bool(args[5])
    return op.writes


def _check_same_dtype(op: _OpFacts, tensors: list[torch.Tensor]) -> None:
    checked = tensors[: op.same_dtype] if op.same_dtype else tensors
    dtype = checked[0].dtype
    if any(t.dtype != dtype for t in checked):
        names = ", ".join(str(t.dtype).removeprefix("torch.") for t in checked)
        raise RuntimeError(
            f"{op.name} needs operands of one dtype, but got {names} "
            "(the real kernel raises for this call too)"
        )


def _moves_to_meta_only(op: _OpFacts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """A copy of a real tensor to the meta device with nothing else changed."""
    if op.short != "_to_copy" or not args or not isinstance(args[0], torch.Tensor):
        return False
    device = kwargs.get("device")
    dtype = kwargs.get("dtype")
    return (
        not args[0].is_meta
        and device is not None
        and torch.device(device).type == "meta"
        and (dtype is None or dtype == args[0].dtype)
    )


def _leaves_meta(op: _OpFacts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """A copy of a meta tensor to a real device."""
    if op.short != "_to_copy" or not args or not isinstance(args[0], torch.Tensor):
        return False
    device = kwargs.get("device")
    return args[0].is_meta and device is not None and torch.device(device).type != "meta"


def _sdpa_on_meta(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], choices: dict[Any, bool]) -> Any:
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
    fused = _cpu_would_fuse(args, kwargs, choices)
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


def _cpu_would_fuse(args: tuple[Any, ...], kwargs: dict[str, Any], choices: dict[Any, bool]) -> bool:
    """Ask torch's own backend choice on memory-free CPU stand-ins of the same shapes
    (and the same requires_grad: the choice may depend on it). The answer is kept in
    ``choices`` (one run's): every layer of a model asks the same question."""
    call = dict(zip(_SDPA_ARGUMENTS, args, strict=False)) | kwargs
    key = _choice_key(call)
    known = choices.get(key) if key is not None else None
    if known is None:
        known = _ask_cpu_would_fuse(call)
        if key is not None:
            choices[key] = known
    return known


def _choice_key(call: dict[str, Any]) -> tuple[Any, ...] | None:
    """What the backend choice depends on: each argument's shape, dtype and
    requires_grad (tensors) or value; None if some value cannot be a key."""
    grad = torch.is_grad_enabled()
    key: list[Any] = [grad]
    for name, value in sorted(call.items()):
        if isinstance(value, torch.Tensor):
            key.append((name, tuple(value.shape), value.dtype, value.requires_grad))
        elif type(value) in _SCALARS:
            key.append((name, value))
        else:
            return None
    return tuple(key)


def _ask_cpu_would_fuse(call: dict[str, Any]) -> bool:

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


_DTYPES: dict[torch.dtype, tuple[str, int]] = {}  # dtype -> (name without "torch.", item size)
_NAMED_KINDS = (torch.dtype, torch.device, torch.memory_format, torch.layout)
_NAMES: dict[Any, str] = {}  # dtype, device, ... -> its name without "torch."
_new_tuple = tuple.__new__
_SCALARS = frozenset({int, float, bool, str, type(None)})
_NUMBERS = frozenset({int, float, bool})


# Shape-preserving floating-point ops whose meta kernels are slow Python decompositions
# (hardswish on meta costs ~2 ms a call): on meta their result is an empty tensor like
# the input, made here directly.
_UNARY_SAME_SHAPE = frozenset(
    "relu relu_ hardswish hardswish_ hardsigmoid hardsigmoid_ hardtanh hardtanh_ sigmoid sigmoid_ "
    "tanh tanh_ silu silu_ gelu gelu_ elu elu_ leaky_relu leaky_relu_ mish mish_ softplus "
    "log_sigmoid_forward".split()
)


_BINARY = frozenset("add add_ sub sub_ mul mul_ div div_".split())

_FAST_META_OPS = (
    _UNARY_SAME_SHAPE
    | _BINARY
    | {
        "mm",
        "addmm",
        "bmm",
        "_softmax",
        "_safe_softmax",
        "_log_softmax",
        "native_layer_norm",
        "native_batch_norm",
        "_native_batch_norm_legit_no_training",
        "mean",
        "convolution",
        "cat",
        "max_pool2d_with_indices",
    }
)


def _empty_like(tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.empty_like`` on meta without its Python reference implementation: a dense
    tensor's strides are kept as they are, which is what ``empty_like`` does."""
    if (
        tensor.is_contiguous()
        or tensor.is_contiguous(memory_format=torch.channels_last)
        or _non_overlapping_and_dense(tensor.shape, tensor.stride())
    ):
        return torch.empty_strided(tensor.shape, tensor.stride(), dtype=dtype or tensor.dtype, device="meta")
    return torch.empty_like(tensor, dtype=dtype, device="meta")


def _non_overlapping_and_dense(shape: torch.Size, stride: tuple[int, ...]) -> bool:
    """Whether the elements fill their memory exactly once in some order of the dims
    (a transposed or permuted contiguous tensor): then the CPU ``empty_like`` keeps the
    strides as they are. The dims sorted by stride, size-1 dims last, must have strides
    1, size0, size0*size1, ... (c10's check; torch exposes it to Python only as slow
    reference code)."""
    if len(shape) == 1:
        return shape[0] < 2 or stride[0] == 1
    required = 1
    for dim in sorted(range(len(shape)), key=lambda d: (shape[d] < 2, stride[d])):
        if shape[dim] < 2:
            return True
        if stride[dim] != required:
            return False
        required *= shape[dim]
    return True


def _fast_meta(
    op: _OpFacts, args: tuple[Any, ...], tensors: list[torch.Tensor], checked: bool = False
) -> Any:
    """The result of the op on all-meta floating inputs, for common ops whose meta
    kernels are slow (Python decompositions: 0.03-2 ms a call); None to run the op's own
    kernel. Results are fresh meta tensors of exactly the shape, dtype and layout the op
    returns; anything unusual (odd layouts, invalid shapes) is left to the op's kernel.
    ``checked``: the caller made sure every input is meta or a model weight read here
    only for its shape (the op then writes nothing)."""
    if not (checked or all(t.is_meta for t in tensors)) or not tensors[0].is_floating_point():
        return None
    name = op.short
    first = tensors[0]
    if name in _UNARY_SAME_SHAPE and len(tensors) == 1 and op.overload in ("default", ""):
        return first if name.endswith("_") else _empty_like(first)
    if name in _BINARY and len(args) >= 2 and isinstance(args[0], torch.Tensor):
        shape = _broadcast_shape(tensors)
        if shape is None:
            return None  # shapes that do not broadcast: the op's kernel raises
        if name.endswith("_"):
            return args[0] if args[0].shape == shape else None
        dtype = torch.result_type(args[0], args[1])
        if dtype != first.dtype and not dtype.is_floating_point:
            return None
        if first.shape == shape and (len(tensors) == 1 or all(t.is_contiguous() for t in tensors)):
            return _empty_like(first, dtype)
        if first.shape == shape:
            return torch.empty_like(first, dtype=dtype, device="meta")
        return torch.empty(shape, dtype=dtype, device="meta")
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
        return torch.empty(first.shape, dtype=first.dtype, device="meta"), stats, _empty_like(stats)
    if name == "native_batch_norm" or name == "_native_batch_norm_legit_no_training":
        training = bool(args[5]) if name == "native_batch_norm" else False
        stat_shape = (first.shape[1],) if training and first.ndim > 1 else (0,)
        low = first.dtype in (torch.float16, torch.bfloat16)
        stat = torch.empty(stat_shape, dtype=torch.float32 if low else first.dtype, device="meta")
        return _empty_like(first), stat, torch.empty(stat_shape, dtype=stat.dtype, device="meta")
    if name == "mean" and op.overload == "dim" and len(tensors) == 1:
        return _mean_on_meta(first, args)
    if name == "convolution" and len(tensors) in (2, 3):
        return _convolution_on_meta(args, tensors)
    if name == "cat" and op.overload == "default":
        return _cat_on_meta(args, tensors)
    if name == "max_pool2d_with_indices" and len(tensors) == 1:
        return _max_pool2d_on_meta(first, args)
    return None


def _plainly_contiguous(tensor: torch.Tensor) -> bool:
    """Contiguous, and not also laid out channels-last (then the kernels' choice of
    layout for the result is theirs to make)."""
    if not tensor.is_contiguous():
        return False
    if tensor.ndim == 4:
        return not tensor.is_contiguous(memory_format=torch.channels_last)
    if tensor.ndim == 5:
        return not tensor.is_contiguous(memory_format=torch.channels_last_3d)
    return True


def _cat_on_meta(args: tuple[Any, ...], tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """``cat(tensors, dim)`` of contiguous tensors of one dtype and rank that agree off
    ``dim``: a contiguous result whose ``dim`` is the sum of theirs."""
    parts = args[0]
    if not isinstance(parts, (list, tuple)) or len(parts) != len(tensors) or not tensors:
        return None
    first = tensors[0]
    ndim = first.ndim
    dim = args[1] if len(args) > 1 else 0
    if ndim == 0 or not isinstance(dim, int) or not -ndim <= dim < ndim:
        return None
    dim %= ndim
    before, after = first.shape[:dim], first.shape[dim + 1 :]
    total = 0
    for t in tensors:
        if t.ndim != ndim or t.dtype != first.dtype or not _plainly_contiguous(t):
            return None
        if t.shape[:dim] != before or t.shape[dim + 1 :] != after:
            return None
        total += t.shape[dim]
    return torch.empty((*before, total, *after), dtype=first.dtype, device="meta")


def _max_pool2d_on_meta(x: torch.Tensor, args: tuple[Any, ...]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``max_pool2d_with_indices`` of a contiguous (N, C, H, W) or (C, H, W) input:
    contiguous values and int64 indices of size
    out = floor_or_ceil((in + 2p - d(k-1) - 1) / s) + 1, less one if ceil mode would
    start the last window past the padded input."""
    if x.ndim not in (3, 4) or not _plainly_contiguous(x):
        return None
    kernel = args[1] if len(args) > 1 else None
    stride = args[2] if len(args) > 2 else []  # empty: the kernel size
    padding = args[3] if len(args) > 3 else [0]
    dilation = args[4] if len(args) > 4 else [1]
    ceil_mode = bool(args[5]) if len(args) > 5 else False
    pairs = []
    for value in (kernel, stride or kernel, padding, dilation):
        if not isinstance(value, (list, tuple)) or len(value) not in (1, 2):
            return None
        pairs.append((value[0], value[-1]))
    sizes = []
    for axis in range(2):
        size = x.shape[x.ndim - 2 + axis]
        k, s, p, d = (pair[axis] for pair in pairs)
        if k <= 0 or s <= 0 or d <= 0 or p < 0 or p > k // 2:
            return None
        out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (out - 1) * s >= size + p:
            out -= 1
        if out < 1:
            return None
        sizes.append(out)
    shape = (*x.shape[:-2], *sizes)
    return torch.empty(shape, dtype=x.dtype, device="meta"), torch.empty(
        shape, dtype=torch.int64, device="meta"
    )


def _broadcast_shape(tensors: list[torch.Tensor]) -> tuple[int, ...] | torch.Size | None:
    """The broadcast shape of the tensors (sizes aligned from the right; a size-1
    dimension stretches), or None if they do not broadcast. ``torch.broadcast_shapes``
    gives the same in Python reference code at ~30 us a call; most calls here have one
    shape."""
    shape = tensors[0].shape
    if all(t.shape == shape for t in tensors):
        return shape
    ndim = max(t.ndim for t in tensors)
    sizes = [1] * ndim
    for t in tensors:
        for axis, size in enumerate(t.shape, start=ndim - t.ndim):
            if size != 1:
                if sizes[axis] not in (1, size):
                    return None
                sizes[axis] = size
    return tuple(sizes)


def _mean_on_meta(x: torch.Tensor, args: tuple[Any, ...]) -> torch.Tensor | None:
    """``mean.dim(x, dims, keepdim)`` of a contiguous tensor: a contiguous result."""
    dims = args[1] if len(args) > 1 else None
    keepdim = bool(args[2]) if len(args) > 2 else False
    if not x.is_contiguous() or not isinstance(dims, (list, tuple)) or not dims or x.ndim == 0:
        return None
    reduced = {d % x.ndim for d in dims}
    shape = [1 if d in reduced else size for d, size in enumerate(x.shape) if keepdim or d not in reduced]
    return torch.empty(shape, dtype=x.dtype, device="meta")


def _convolution_on_meta(args: tuple[Any, ...], tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """A plain (not transposed) convolution of contiguous input and weight writes a
    contiguous (N, C_out, *spatial) result; out = (in + 2p - d(k-1) - 1) // s + 1."""
    x, weight = tensors[0], tensors[1]
    if len(args) < 9 or args[6] or x is not args[0] or weight is not args[1]:
        return None
    stride, padding, dilation, groups = args[3], args[4], args[5], args[8]
    x_shape, w_shape = x.shape, weight.shape
    spatial = len(w_shape) - 2
    if spatial < 1 or len(x_shape) != len(w_shape) or not (x.is_contiguous() and weight.is_contiguous()):
        return None  # aten.convolution takes batched input only; its kernel raises
    if not (len(stride) == len(padding) == len(dilation) == spatial):
        return None
    if x_shape[1] != w_shape[1] * groups or w_shape[0] % groups:
        return None
    sizes = [
        (size + 2 * pad - dil * (k - 1) - 1) // st + 1
        for size, pad, dil, k, st in zip(x_shape[2:], padding, dilation, w_shape[2:], stride, strict=True)
    ]
    if min(sizes) <= 0:
        return None
    shape = [x_shape[0], w_shape[0], *sizes]
    return torch.empty(shape, dtype=x.dtype, device="meta")


def _plain_numbers(values: list[Any] | tuple[Any, ...]) -> bool:
    """An aten int/float list (sizes, strides, dims): empty, or starting with a number
    (aten lists hold one kind: numbers, or tensors possibly with None among them)."""
    return not values or type(values[0]) in _NUMBERS


def _output_tensors(out: Any) -> list[torch.Tensor]:
    """The tensors an aten op or a whole function returned: one, or a tuple or list of
    them (one level of nesting)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if type(out) is not tuple and type(out) is not list:
        return [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    found: list[torch.Tensor] = []
    for value in out:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif type(value) is tuple or type(value) is list:
            found.extend(v for v in value if isinstance(v, torch.Tensor))
    return found


def _tensors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """Tensor arguments, also inside lists (aten arguments nest at most one level)."""
    found: list[torch.Tensor] = []
    for value in (*args, *kwargs.values()) if kwargs else args:
        kind = type(value)
        if kind in _SCALARS:
            continue
        if kind is list or kind is tuple:
            if not _plain_numbers(value):
                found.extend(v for v in value if isinstance(v, torch.Tensor))
        elif isinstance(value, torch.Tensor):
            found.append(value)
    return found


def _real_integer_factories(
    args: tuple[Any, ...], kwargs: dict[str, Any], sources: list[torch.Tensor]
) -> dict[str, Any]:
    """Integer and bool tensors asked for on meta (positions, masks: created there, or a
    real one moved there) are made on the CPU instead, so the values a model inspects
    exist; float tensors stay on meta."""
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    if (
        device is None
        or (device if isinstance(device, torch.device) else torch.device(device)).type != "meta"
    ):
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
    return {**kwargs, "device": _CPU}


_CPU = torch.device("cpu")
