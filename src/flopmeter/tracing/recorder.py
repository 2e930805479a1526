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
import re
import weakref
from collections.abc import Callable
from contextlib import ContextDecorator
from typing import Any, TypeVar

import torch
from torch._ops import HigherOrderOperator
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten

from ..interrupts import Undoing, completes
from . import replay
from .attention import recorded_call, sdpa_on_meta
from .attention_watch import AttentionSeen, is_attention_op
from .bag_sizes import BAG_OPS, BAGS_ON_META, bag_sizes
from .events import FORWARD, PLAIN_TYPES, OpEvent, TensorMeta, add_metas
from .fast_meta import CPU_LAYOUT_OPS, FAST_META_OPS, as_on_cpu, fast_meta
from .higher_order import run_higher_order
from .index_checks import CHECKED_OPS, check_indices
from .library_calls import LibraryCalls
from .modules import ModuleStack
from .sparse_layouts import stored_values

_STRIDED = torch.strided  # every dense tensor's layout, looked up once


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
    built directly on meta (``fast_meta.fast_meta``), laid out as the CPU kernels lay them out.
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
        # id -> weakref of the tensors marked "rebuilt" and their views: temporaries a real run
        # frees (a dequantized copy per layer), so their role goes when they die (``_mark``)
        self._rebuilt: dict[int, weakref.ref[Any]] = {}
        self.suppressed = 0  # > 0 while a whole-function event covers the ops below it
        self.library = LibraryCalls.watching()  # torchao's quantize primitives, counted whole
        self._meta_copies: dict[int, torch.Tensor] = {}  # id(parameter) -> its meta twin
        # whether the model stores a weight compressed ("stored" roles: ModelWalk.roles); an
        # op that reads only those and other weights then writes a "rebuilt" weight
        self.rebuilds = "stored" in roles.values()
        self.live_bytes = 0  # activation memory alive now (tensors made by ops, not views)
        self.peak_bytes = 0
        # id of a tensor's storage (or of the tensor, where it has none) -> (its weakref, bytes)
        self._sizes: dict[int, tuple[weakref.ref[Any], int]] = {}
        self._phase = stack.phase if stack.track_backward else _forward_phase
        self._module = stack.current
        self.writes: Any = None  # run.WriteGuard of the model-state guard, if it guards values
        # whether a FunctionRecorder runs beside this one; if not, the module in which an
        # attention op was seen (the run must be made again with one: attention_watch.py)
        self.whole_functions = True
        self.unseen_attention_in: str | None = None
        # the model's first input tensor (``probe``), until an op reads it; then the
        # index in ``events`` of the first op that read it (the batch-size rule's question)
        self.probe: torch.Tensor | None = None
        self.probe_event: int | None = None
        # an op that failed in a shapes-only run: if the model caught it and went on, it may
        # have taken another path than a real run would (run.py then retries with values)
        self.failed_on_meta: Exception | None = None
        # the higher-order operators that ran the model's functions (torch.cond, while_loop,
        # scan, ...): eagerly, torch gives them no autograd (a backward's error says so)
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
        size = tensor.numel() * tensor.element_size()
        if not size:
            return  # nothing to follow (the batch norms' empty reserve tensors)
        owner = _memory_owner(tensor, size)
        key = id(owner)
        if key in self._sizes:
            return  # a live tensor returned again is counted once
        self._sizes[key] = (weakref.ref(owner, lambda _ref: self._freed(key)), size)
        self.live_bytes += size
        if self.live_bytes > self.peak_bytes:
            self.peak_bytes = self.live_bytes

    def _mark(self, tensor: torch.Tensor, role: str) -> None:
        """Give ``tensor`` (a view, a device move or a rebuilt weight) ``role`` while its id
        is its own: a weight's view is kept alive to the end of the run (ids stay unique
        while we map them); a "rebuilt" weight is a temporary the real run frees after its
        layer, so it is not kept (that would hold every layer's dequantized copy at once and
        count them all in the peak activation memory): its role goes when it dies."""
        key = id(tensor)
        self._roles[key] = role
        if role == "rebuilt":
            self._rebuilt[key] = weakref.ref(tensor, lambda _ref: self._forget(key))
        else:
            self._keep_alive.append(tensor)

    def _forget(self, key: int) -> None:
        """A rebuilt weight died: its id may be a new tensor's from now on, so what is keyed
        by it goes (its role, and its meta twin with the twin's role)."""
        if self._rebuilt.pop(key, None) is not None:
            self._roles.pop(key, None)
            twin = self._meta_copies.pop(key, None)
            if twin is not None:
                self._roles.pop(id(twin), None)

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
        nnz = None if tensor.layout is _STRIDED else stored_values(tensor)
        return _new_tuple(
            TensorMeta,
            (tuple(tensor.shape), info[0], info[1], self._roles.get(id(tensor), "activation"), nnz),
        )

    def describe(self, value: Any) -> Any:
        """Replace every tensor in ``value`` by its TensorMeta, keeping the structure."""
        kind = type(value)
        if kind in PLAIN_TYPES:
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

    supports_higher_order_operators = True  # they come to __torch_dispatch__ (higher_order.py)

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
        op = _OPS.get(func)
        if op is None:
            if isinstance(func, HigherOrderOperator):  # torch.cond, scan, flex_attention, ...
                try:
                    return run_higher_order(self, func, args, kwargs or {})
                except Exception as error:  # its kernel on meta (``if pred:``), as for any op below
                    if self.shapes_only and self.failed_on_meta is None and is_meta_limitation(error):
                        self.failed_on_meta = error
                    raise
            op = _op_facts(func)
        if self.probe is not None:
            self._look_for_probe(args)
        if op.attention and not self.whole_functions:
            self._attention_unseen()
        if op.writes and self.writes is not None and _may_write(op, args, kwargs):
            self.writes.before(func, args, kwargs)  # the model-state guard's copy before a write
        if op.composite:  # only under inference_mode: decompose as autograd would have
            with self:  # the C++ kernel autograd runs (decompose() may prefer a Python one)
                return func._op_dk(_COMPOSITE, *args, **(kwargs or {}))
        if self._refusal is not None:
            self.failed_on_meta = ShapesOnlyUnavailable(self._refusal)
            raise self.failed_on_meta
        # With a function mode active, every tensor attribute read (.shape, .dtype) would
        # go through Python; below the dispatcher no function mode has anything to see.
        with torch._C.DisableTorchFunction():
            try:
                return self._dispatch(func, op, args, kwargs or {})
            except Exception as error:
                if self.shapes_only and self.failed_on_meta is None and is_meta_limitation(error):
                    self.failed_on_meta = error  # an error a real run raises too is the model's to catch
                raise

    def _look_for_probe(self, args: tuple[Any, ...]) -> None:
        """If this op reads the model's first input, remember where its event goes."""
        probe = self.probe
        for value in args:
            if value is probe or (type(value) is list and any(item is probe for item in value)):
                self.probe, self.probe_event = None, len(self.events)
                return

    @property
    def covered(self) -> bool:
        """Whether the ops running now are covered by an event of a whole call above them
        (a whole function, a module with a custom formula): not recorded one by one."""
        return bool(self.suppressed) or self.stack.inside_custom

    def _attention_unseen(self) -> None:
        """An attention op came without a FunctionRecorder to count its call whole."""
        if self.unseen_attention_in is None and not self.covered:
            self.unseen_attention_in = self.stack.current()
            raise AttentionSeen  # stop the run here: it is made again with a FunctionRecorder

    def _dispatch(self, func: Any, op: _OpFacts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        device_move_only = False
        sizes = bag_sizes(args, kwargs) if op.bags else None  # read before a move to meta
        if sizes is None and op.bags and self.shapes_only:  # offsets computed on meta
            self.failed_on_meta = ShapesOnlyUnavailable(BAGS_ON_META)
            raise self.failed_on_meta  # a run with values reads the bags' sizes
        if kwargs and "device" in kwargs:
            tensors = _tensors(args, kwargs)
            if tensors and self.shapes_only and _leaves_meta(op, args, kwargs):
                # x.to(weight.device): the meta activation stands for a tensor already there;
                # not when the call also asks for another dtype or layout (probe 14: a real copy)
                if kwargs.get("dtype") in (None, args[0].dtype) and kwargs.get("memory_format") in (
                    None,
                    torch.preserve_format,
                ):
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
                if op.indexes:  # real indices into what runs on meta: the real kernel's check
                    check_indices(op.short, args)
                if placement is _WEIGHTS_REAL and op.fast and not _may_write(op, args, kwargs):
                    # weights are only read for their shapes: no meta twins needed
                    if op.same_dtype is not None:
                        _check_same_dtype(op, tensors)
                    out = fast_meta(op, args, tensors, checked=True)
                if out is None:
                    args, kwargs, tensors = self._align_meta(args, kwargs)
            if out is None and tensors[0].is_meta:  # every tensor is meta
                if op.same_dtype is not None:
                    _check_same_dtype(op, tensors)
                if op.fast:
                    out = fast_meta(op, args, tensors, checked=True)
        if out is None:
            out = func(*args, **kwargs)
            if op.cpu_layout and tensors and tensors[0].is_meta:
                out = as_on_cpu(op, args, out)
        if device_move_only:
            # x.to(meta_activation.device): a real run does nothing here, so neither do we
            role = self._roles.get(id(tensors[0]))
            if role is not None:
                self._mark(out, role)
            return out
        flat_out = [out] if isinstance(out, torch.Tensor) else _output_tensors(out)
        quiet = self.covered or (  # ops a whole-call event covers; a torchao primitive's too
            self.library is not None and self.library.covers(self._record_call, self.meta_of, flat_out)
        )
        if op.is_view:
            if quiet:
                return out
            role = self._roles.get(id(args[0])) if args and isinstance(args[0], torch.Tensor) else None
            if role is not None:
                for t in flat_out:
                    self._mark(t, role)
        else:
            for t in flat_out:
                for source in tensors:
                    if t is source:
                        break  # in-place results are their input
                else:
                    self._allocated(t)
            if self.rebuilds and tensors and self._rebuilt_from(tensors):
                for t in flat_out:
                    if not any(t is source for source in tensors):
                        self._mark(t, "rebuilt")
            if quiet:
                return out
        self.record(op.name, op.overload, args, {**kwargs, **sizes} if sizes else kwargs, flat_out)
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
            add_metas(event.kwargs.values(), inputs)
        event._inputs = inputs  # what event.tensor_inputs() would work out again
        self.events.append(event)

    def _record_call(self, name: str, value: Any, *more: torch.Tensor) -> OpEvent:
        """Record a library function's call (``library_calls``) with its first argument and
        its further tensor arguments (read too: a dequantize's scale and zero point)."""
        self.record(name, "default", (value, *more), {}, [])
        return self.events[-1]

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
            elif kind in PLAIN_TYPES or ((kind is list or kind is tuple) and _plain_numbers(value)):
                described.append(value)
            else:
                other = self.describe(value)
                described.append(other)
                add_metas((other,), inputs)
        return tuple(described), inputs

    def _rebuilt_from(self, tensors: list[torch.Tensor]) -> bool:
        """Whether an op reading ``tensors`` rebuilds a compressed weight: it reads weights
        only (parameters, buffers, stored or rebuilt tensors and their views) and at least
        one stored or rebuilt tensor (a dequantize copy of torchao's ``qdata``, a scale
        multiply of that copy, ``weight_orig * weight_mask``, a parametrization's
        arithmetic). A float model's ops never do: it holds no stored tensor."""
        roles = self._roles
        found = [roles.get(id(t)) for t in tensors]
        return None not in found and ("stored" in found or "rebuilt" in found)

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
        if kind in PLAIN_TYPES:
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
        """Drop the references kept to parameter views; stop counting memory.

        Also takes this recorder's ``describe`` back from the module stack: held there, it
        made a reference cycle (recorder <-> stack), which kept the recorder and
        every event it made alive after the profile returned, until the garbage collector
        found them; a small model's profile then spent a fifth of a millisecond or more in
        the collector's walk over those thousands of objects."""
        self._sizes.clear()  # the weak references go, and with them their callbacks
        self._keep_alive.clear()
        self._rebuilt.clear()  # their callbacks go with them
        self._meta_copies.clear()
        self._roles.clear()
        self.stack.describe = _as_it_is
        if self.library is not None:
            self.library.release()


_Function = TypeVar("_Function", bound=Callable[..., Any])


class gc_paused(Undoing, ContextDecorator):  # noqa: N801 - used as a function, ``@gc_paused()``
    """Pause Python's cyclic garbage collector (as a ``with`` block or a decorator).

    A profile allocates thousands of small objects (events, shapes) that live until it
    returns; each collection they trigger walks them all again, about a fifth of a small
    model's profile. Around the whole profile call, most of them are freed before the
    collector runs again. Nothing is lost: the collector is switched back on after (if
    it was on), and collects then. A class, so that an interrupt cannot leave the
    collector off (``interrupts.py``).
    """

    def __init__(self) -> None:
        self._enabled = False

    def _recreate_cm(self) -> gc_paused:
        return gc_paused()  # each decorated call (nested profiles too) has its own

    def __call__(self, function: _Function) -> _Function:
        """The decorator: also completes the undoing of what an interrupt kept an
        ``__exit__`` from undoing (``interrupts.completes``; the profile's outermost call)."""
        return completes(super().__call__(function))

    def take(self) -> None:
        self._enabled = gc.isenabled()
        gc.disable()

    def leave(self) -> None:
        if self._enabled:
            gc.enable()


def _to_meta(tensor: torch.Tensor) -> torch.Tensor:
    """A meta twin of ``tensor``. Under inference_mode the twin of a normal tensor is made
    normal too: a view of it replaces a view of ``tensor``, and torch gives a view the
    version counter of its base, which an inference tensor cannot take."""
    if torch.is_inference_mode_enabled() and not tensor.is_inference():
        with torch.inference_mode(False):
            return meta_twin(tensor)
    return meta_twin(tensor)


def meta_twin(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor.detach().to("meta")`` with ``tensor``'s strides. ``.to`` packs a strided view
    with gaps (``x[:, ::2]``) densely, so a ``reshape``, ``contiguous`` or ``inner`` of it
    would run as a view on meta and as a copy (or another kernel) with values: the same
    numbers either way need the same layout (probe 14, ``benchmarks/opinfo_sweep.py``)."""
    twin = tensor.detach().to("meta")
    if type(twin) is torch.Tensor and tensor.layout == torch.strided and twin.stride() != tensor.stride():
        twin = torch.empty_strided(tensor.shape, tensor.stride(), dtype=twin.dtype, device="meta")
    # ``.to`` resolves a lazy conjugate or negative (``z.conj()``, ``z.conj().imag``): the ops
    # that resolve it with values (a clone before a reshape, a view_as_real) would run on
    # meta as views (review 14)
    if tensor.is_conj() and not twin.is_conj():
        twin = twin.conj()
    if tensor.is_neg() and not twin.is_neg():
        twin = torch._neg_view(twin)
    return twin


_TWINS: dict[int, tuple[type, torch.Tensor]] = {}  # id -> (the tensor's class, its twin)
_TWINS_KEPT = 20_000  # meta twins kept between profiles (a few hundred bytes each)


def _twin(tensor: torch.Tensor) -> torch.Tensor:
    """The meta twin of a model's parameter or buffer, kept from one profile to the next
    while the tensor keeps its class, shape, strides and dtype (a meta tensor holds no memory).

    Kept by ``id``, with no weak reference to the tensor: a weak reference left on a user's
    parameter makes ``torch.utils.swap_tensors`` refuse it, and with it ``model.half()``
    under ``torch.__future__.set_swap_module_params_on_conversion(True)``. A later tensor
    with the same ``id``, class, dtype, shape and strides gets a twin that is the same as
    its own would be: ``_to_meta`` copies nothing else (a subclass's twin keeps its class;
    conjugate and negative bits are resolved, the storage offset is 0)."""
    key = id(tensor)
    entry = _TWINS.get(key)
    if entry is not None:
        kind, twin = entry
        if (
            kind is type(tensor)
            and twin.dtype == tensor.dtype
            and twin.shape == tensor.shape
            and twin.stride() == tensor.stride()
            and twin.is_inference() == tensor.is_inference()
        ):
            return twin
    if len(_TWINS) >= _TWINS_KEPT:
        _TWINS.clear()
    twin = _to_meta(tensor)
    _TWINS[key] = (type(tensor), twin)
    return twin


# What a shapes-only run raises where a real run would not: no meta kernel, a value
# asked of a meta tensor (.item(), bool(), .tolist(), .numpy()), a data-dependent output
# size (nonzero, boolean masks), a meta tensor meeting a real one on another device.
_META_LIMITATION = re.compile(
    r"meta|data.dependent|same device|no data|unallocated storage|no fake impl", re.IGNORECASE
)


def is_meta_limitation(error: BaseException) -> bool:
    """Whether ``error`` is one a shapes-only run raises where a run with values may not."""
    return isinstance(error, NotImplementedError) or bool(
        _META_LIMITATION.search(f"{type(error).__name__} {error}")
    )


def _as_it_is(value: Any) -> Any:
    """A module stack's ``describe`` after its run: values stay as they are."""
    return value


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
        if name is None or self.ops.covered:
            return func(*args, **kwargs)
        self.ops.suppressed += 1
        try:
            out = sdpa_on_meta(func, args, kwargs, self._fuse_choices)
            if out is None:
                out = self._call_whole(func, args, kwargs)
        finally:
            self.ops.suppressed -= 1
        with torch._C.DisableTorchFunction():
            with _disable_current_modes():  # a mask's values are read by us, not by the model
                call_args, call_kwargs = recorded_call(func, args, kwargs)
            self.ops.record(name, "default", call_args, call_kwargs, _output_tensors(out))
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


def _memory_owner(tensor: torch.Tensor, size: int) -> Any:
    """What keeps ``tensor``'s memory alive: its storage, which outlives the tensor object
    where autograd saved the tensor (a saved output is kept as another tensor on the same
    storage) or a view of it lives on; the tensor itself where it has no storage of its
    own (a wrapper subclass, a sparse tensor)."""
    try:
        storage = tensor.untyped_storage()
    except (RuntimeError, NotImplementedError, TypeError):
        return tensor
    return storage if storage.nbytes() >= size else tensor


class _OpFacts:
    """What the recorder needs to know of one aten overload, worked out once."""

    __slots__ = (
        "name",
        "short",
        "overload",
        "is_view",
        "writes",
        "composite",
        "same_dtype",
        "fast",
        "attention",
        "indexes",
        "cpu_layout",
        "bags",
    )

    def __init__(self, func: Any) -> None:
        self.short: str = func.overloadpacket.__name__
        self.name = f"{func.namespace}.{self.short}"
        self.overload: str = func._overloadname
        self.is_view = bool(getattr(func, "is_view", False))
        # whether it may write an argument: only these pass the model-state guard's check
        self.writes = bool(func._schema.is_mutable) or self.short in UNMARKED_WRITE_OPS
        # decomposed here as autograd would (only under inference_mode do such ops reach the
        # mode), but not where the op has its own CPU and Meta kernels, which then run as they
        # do in a plain call (silu_backward: its decomposition held five more tensors alive)
        has_kernel = torch._C._dispatch_has_kernel_for_dispatch_key
        self.composite = has_kernel(func.name(), _COMPOSITE) and not (
            has_kernel(func.name(), _CPU_KERNEL) and has_kernel(func.name(), _META_KERNEL)
        )
        self.same_dtype: int | None = _SAME_DTYPE.get(self.name)
        self.fast = self.short in FAST_META_OPS
        self.attention = is_attention_op(self.short)  # only an attention call runs it
        self.indexes = self.short in CHECKED_OPS  # reads or writes at integer indices
        self.cpu_layout = self.short in CPU_LAYOUT_OPS  # its meta kernel may lay out as CUDA
        self.bags = self.short in BAG_OPS  # its bags' sizes are read from its real offsets


_OPS: dict[Any, _OpFacts] = {}
_AS_IS, _WEIGHTS_REAL, _MOVE = object(), object(), object()  # OpRecorder._placement
# Ops that write arguments their schema does not mark as written (``Tensor(a!)``): the
# batch norms update running_mean and running_var when ``training`` is set.
UNMARKED_WRITE_OPS = frozenset({"native_batch_norm", "cudnn_batch_norm", "miopen_batch_norm"})
_COMPOSITE = torch._C.DispatchKey.CompositeImplicitAutograd
_CPU_KERNEL = torch._C.DispatchKey.CPU
_META_KERNEL = torch._C.DispatchKey.Meta


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


def _may_write(op: _OpFacts, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> bool:
    """Whether the call may write one of its arguments: what its schema says, except
    that a batch norm writes its running statistics only in training (argument 5)."""
    if op.writes and op.short in UNMARKED_WRITE_OPS:
        return bool(args[5] if len(args) > 5 else (kwargs or {}).get("training", True))
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


_DTYPES: dict[torch.dtype, tuple[str, int]] = {}  # dtype -> (name without "torch.", item size)
_NAMED_KINDS = (torch.dtype, torch.device, torch.memory_format, torch.layout)
_NAMES: dict[Any, str] = {}  # dtype, device, ... -> its name without "torch."
_new_tuple = tuple.__new__
_NUMBERS = frozenset({int, float, bool})


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
        if kind in PLAIN_TYPES:
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
