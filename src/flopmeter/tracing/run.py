"""Run the model once under the recorder and leave it exactly as it was."""

from __future__ import annotations

import warnings
from contextlib import nullcontext, suppress
from copy import deepcopy
from dataclasses import dataclass, field, fields, is_dataclass
from itertools import repeat
from operator import attrgetter, is_, methodcaller
from types import TracebackType
from typing import Any

import torch
from torch._ops import HigherOrderOperator
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_unflatten

from ..interrupts import GradMode, ModeOn, Undoing, arm, completes, finish, leave
from ..notices import ModelStateWarning
from ..random_state import kept_random_state
from .attention_watch import AttentionSeen, expects_attention, remember_attention
from .events import PLAIN_TYPES, OpEvent, call_arg
from .higher_order import run_watched
from .model_walk import ModelWalk
from .modules import ModuleStack, exclusive
from .no_compile import eager_compiled_code
from .recorder import UNMARKED_WRITE_OPS, FunctionRecorder, OpRecorder, meta_twin


@dataclass
class Trace:
    """What one run produced: the op events, module call counts, custom-module calls."""

    events: list[OpEvent]
    module_calls: dict[str, int]
    custom_calls: list[tuple[str, torch.nn.Module, Any, Any]] = field(default_factory=list)
    peak_activation_bytes: int = 0
    first_input_event: int | None = None  # index of the first event that read the first input
    rebuilds: bool = False  # the model stores a weight compressed: some tensors may be "rebuilt"


class TraceFailure(Exception):
    """The model raised while traced; ``module`` is the module it was raised in."""

    def __init__(self, error: BaseException, module: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.module = module


_MODULE_TRAIN = torch.nn.Module.train


class ModelStateGuard:
    """Leaves the model exactly as it was before the run, also when the run raises.

    On exit it puts back, for every module: its train/eval mode and every
    entry of its ``__dict__`` (plain attributes, flags, the ``_parameters`` /
    ``_buffers`` / ``_modules`` / hook dicts) by identity, with the contents of
    lists, dicts, sets and tuples held there directly (shallow: the same elements);
    for every parameter: ``requires_grad`` and ``.grad``; for every parameter,
    buffer and tensor held in an attribute: the storage it is bound to (``.data =``
    is undone) and its values, if the run wrote them in place.

    The run works on a copy of each module's ``__dict__``, and the module gets its own
    dict back, untouched (``attributes.AttributeSnapshot``). What is saved is the state
    when the walk's ``attributes`` were first read: at ``__enter__``, or earlier in the
    same profile, which holds the model's lock and runs no model code before the trace.

    Values are saved lazily: ``writes`` is checked by the recorder for every in-place
    or ``out=`` op that really runs and copies a protected tensor just before its
    first write. Nothing is cloned for a run that writes nothing, so a 1 GiB buffer
    the forward only reads costs nothing. Not restored: the state of objects held
    in attributes beyond one level of containers (``self.config.flag``), and
    tensors that are neither parameters, buffers nor held in a module attribute.
    """

    def __init__(self, model: torch.nn.Module, walk: ModelWalk | None = None) -> None:
        self.model = model
        self.walk = walk  # the model's modules and parameters, if already walked (``profile``)
        self.writes = WriteGuard()
        self._unseen: int | None = None  # writes the dispatcher did not see (``leave``)

    def __enter__(self) -> ModelStateGuard:
        walk = self.walk if self.walk is not None else ModelWalk(self.model)
        self._modules = walk.modules
        # a scripted module keeps its mode in C++, not in ``__dict__``
        scripted = [m for m in walk.modules if isinstance(m, torch.jit.ScriptModule)] if walk.scripted else []
        self._script_modes = [(module, module.training) for module in scripted]
        self._attributes = walk.attributes  # taken now, or when profile() walked the model
        tensors = list(self._attributes.tensors)
        if walk.scripted:  # scripted modules keep parameters and buffers outside ``__dict__``
            found = {id(tensor) for tensor in tensors}
            for tensor in [*walk.buffers, *walk.parameters]:
                if id(tensor) not in found:
                    found.add(id(tensor))
                    tensors.append(tensor)
        self._params = walk.parameters
        self._requires_grad = list(map(_REQUIRES_GRAD, self._params))
        self._grads = list(map(_GRAD, self._params))
        self._tensors = tensors
        try:
            self._aliases = list(map(_DETACH, tensors))
        except RuntimeError:  # a subclass's own detach under torch.inference_mode (torchao's)
            self._aliases = [_detached(tensor) for tensor in tensors]
        self.writes.protect(self._aliases)
        arm(self)  # all is saved: from here ``leave`` puts it back
        try:
            self._attributes.swap_in()  # last: ``__exit__`` undoes it
        except BaseException:  # an interrupt just after the swap: nothing else ran yet
            leave(self)
            raise
        return self

    def all_in_mode(self, train: bool) -> bool:
        """Whether every module already has ``training == train`` and torch's own
        ``train()`` (so ``model.train(train)`` would change nothing: skip its walk)."""
        return all(map(is_, map(_TRAINING, self._modules), repeat(train))) and all(
            kind.train is _MODULE_TRAIN for kind in {type(module) for module in self._modules}
        )

    def __exit__(self, *exc: object) -> None:
        leave(self)  # to its end, also if an interrupt arrives meanwhile
        if self._unseen:  # after all is put back: under ``-W error`` this raises
            warnings.warn(
                f"the forward wrote {self._unseen} parameter(s) or buffer(s) in a way flopmeter "
                "could not see, so their values may have changed; please report it",
                ModelStateWarning,
                stacklevel=2,
            )

    def leave(self) -> None:
        """Everything saved, put back (safe to run again: ``interrupts.finish``)."""
        if self._unseen is None:  # counted before the saved copies are written back
            self._unseen = self.writes.unseen_writes()
        self._attributes.restore()
        for module, training in self._script_modes:
            module.training = training
        with GradMode(False):
            if not self._bindings_unchanged():
                for tensor, alias in zip(self._tensors, self._aliases, strict=True):
                    if (  # the alias keeps the original binding (its storage may have moved too)
                        _data_address(tensor) != _data_address(alias)
                        or tensor.shape != alias.shape
                        or tensor.dtype != alias.dtype
                    ):
                        tensor.data = alias  # ``.data =`` in forward: bind the original storage again
            self.writes.restore()
        if list(map(_REQUIRES_GRAD, self._params)) != self._requires_grad:
            for param, requires_grad in zip(self._params, self._requires_grad, strict=True):
                if param.requires_grad != requires_grad:
                    param.requires_grad_(requires_grad)
        if not all(map(is_, map(_GRAD, self._params), self._grads)):
            for param, grad in zip(self._params, self._grads, strict=True):
                if param.grad is not grad:
                    param.grad = grad

    def _bindings_unchanged(self) -> bool:
        """Whether every guarded tensor is still bound as its alias is: the same storage,
        offset, sizes and strides (``is_set_to``: one C call each), and dtype."""
        tensors, aliases = self._tensors, self._aliases
        try:
            bound = all(map(torch.Tensor.is_set_to, tensors, aliases))
        except (RuntimeError, NotImplementedError):  # meta and sparse tensors: compare by parts
            bound = _data_addresses(tensors) == _data_addresses(aliases) and list(
                map(_SHAPE, tensors)
            ) == list(map(_SHAPE, aliases))
        return bound and list(map(_DTYPE, tensors)) == list(map(_DTYPE, aliases))


class ModelSettings(Undoing):
    """torch's default dtype, default device and grad mode as the model's run starts. A
    forward that sets one and leaves it set (``torch.set_default_dtype(torch.float64)``,
    ``torch.set_default_device("cpu")``, ``torch.set_grad_enabled(True)``) would leave the
    process changed, as a plain call does; the profile warns, so the model's behaviour is
    not hidden, and puts them back (the grad mode is ``GradMode``'s), so the caller's
    process is as it was and a run made again with values starts as the first did.

    The grad mode is the run's own (off unless ``backward``), not the caller's
    (``callers_grad``): it is said to be left changed only if the forward changed it and
    left it unlike the caller's (``torch.set_grad_enabled(True)`` called with grad on
    changes nothing for a plain call; docs/probe-8/review-b.md R8b-2)."""

    def __init__(self, callers_grad: bool) -> None:  # read here: ``leave`` may run before ``take``
        self.dtype, self.grad, self.device = torch.get_default_dtype(), torch.is_grad_enabled(), _device_set()
        self.callers_grad = callers_grad

    def warn_if_left_changed(self) -> None:
        dtype, grad, device = torch.get_default_dtype(), torch.is_grad_enabled(), _device_set()
        changed = [f"default dtype ({self.dtype} -> {dtype})"] if dtype != self.dtype else []
        if device is not self.device:
            changed.append(f"default device ({_device_name(self.device)} -> {_device_name(device)})")
        if grad != self.grad and grad != self.callers_grad:
            changed.append(f"grad mode ({_ON_OFF[self.callers_grad]} -> {_ON_OFF[grad]})")
        if changed:
            warnings.warn(
                f"the model's forward changed torch's {' and '.join(changed)} and left it so: "
                "flopmeter puts it back after the run (a plain call of the model leaves it changed)",
                ModelStateWarning,
                stacklevel=2,
            )

    def leave(self) -> None:
        if torch.get_default_dtype() != self.dtype:
            torch.set_default_dtype(self.dtype)
        if _device_set() is not self.device:
            torch.set_default_device(None if self.device is None else self.device.device)


_ON_OFF = {True: "on", False: "off"}


def _device_set() -> Any:
    """What ``torch.set_default_device`` set on this thread (torch keeps it in a private
    thread-local, ``torch._GLOBAL_DEVICE_CONTEXT``): its DeviceContext, or None."""
    return getattr(getattr(torch, "_GLOBAL_DEVICE_CONTEXT", None), "device_context", None)


def _device_name(context: Any) -> str:
    return "none set" if context is None else str(context.device)


def set_mode(model: torch.nn.Module, train: bool) -> torch.nn.Module:
    """``model.train(train)``; a ``torch.export``ed module refuses ``train()`` and ``eval()``
    (NotImplementedError): its graph fixes the mode, and it runs in that one."""
    with suppress(NotImplementedError):
        model.train(train)
    return model


_TRAINING = attrgetter("training")
_REQUIRES_GRAD = attrgetter("requires_grad")
_GRAD = attrgetter("grad")
_SHAPE = attrgetter("shape")
_DTYPE = attrgetter("dtype")
_DETACH = methodcaller("detach")  # a subclass's own ``detach`` too


def _detached(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor.detach()``; for a tensor subclass whose ``detach`` sets a version counter
    (torchao's), which torch refuses under ``torch.inference_mode()``, made outside it:
    the alias then has the counter the guard compares."""
    try:
        return tensor.detach()
    except RuntimeError:
        if not torch.is_inference_mode_enabled():
            raise
        with torch.inference_mode(False):
            return tensor.detach()


class WriteGuard:
    """Copies a protected tensor just before an op first writes it (in place or as
    ``out=``), and writes the copies back on ``restore``.

    The recorder calls ``before`` first thing for every op it dispatches that may write
    (``recorder._may_write``: the schema says so; a batch norm only in training), so it
    sees each op as the model called it,
    before a shapes-only run moves the op to meta: a write the recorder then sends to
    a meta copy is saved too (needlessly, but rarely: RWKV's one-off rescale), and in
    exchange every in-place op on a protected tensor passes here, which lets
    ``unseen_writes`` check the version counters for writes that did not."""

    def __init__(self) -> None:
        self._protected: dict[int, list[torch.Tensor]] | None = None  # storage address -> tensors
        self._saved: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._written_args: dict[Any, tuple[tuple[int, str], ...]] = {}
        self._tensors: list[torch.Tensor] = []
        self._versions: list[tuple[torch.Tensor, int]] = []
        self.saved_bytes = 0  # what the copies cost, for tests and curious users

    def protect(self, tensors: list[torch.Tensor]) -> None:
        """Guard these tensors (their storage addresses are looked up at the first write).
        Pass detached aliases: they keep the original storage even if the model rebinds
        a parameter's ``.data``, and share its version counter."""
        self._tensors = [t for t in tensors if not t.is_meta]
        # inference tensors (made under torch.inference_mode()) have no version counter
        self._versions = [(t, t._version) for t in self._tensors if not t.is_inference()]

    @property
    def guards_anything(self) -> bool:
        """Whether any protected tensor holds values (not all on meta)."""
        return bool(self._tensors)

    def unseen_writes(self) -> int:
        """How many protected tensors changed (their version counter moved) without the
        write passing through this mode, so that no copy was saved (a copy is found by
        the tensor too: ``resize_`` moves the storage an observer saved, P5-C6)."""
        moved = [t for t, v in self._versions if t._version != v and _storage_address(t) not in self._saved]
        saved = {id(t) for copies in self._saved.values() for t, _ in copies} if moved else set()
        return sum(1 for tensor in moved if id(tensor) not in saved)

    def before(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> None:
        """Save a copy of each protected tensor ``func`` is about to write."""
        written = self._written_args.get(func)
        if written is None:
            written = self._written_args[func] = _written_arguments(func)
        if not written or not self._tensors:
            return
        kwargs = kwargs or {}
        for index, name in written:
            value = call_arg(args, kwargs, index, name)
            for tensor in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
                    self._save(tensor)

    def _save(self, tensor: torch.Tensor) -> None:
        if self._protected is None:
            self._protected = {}
            for protected in self._tensors:
                self._protected.setdefault(_storage_address(protected), []).append(protected)
        address = _storage_address(tensor)
        if address in self._saved or address not in self._protected:
            return
        with _disable_current_modes():  # a real copy, unseen by the recorder
            self._saved[address] = [(t, t.detach().clone()) for t in self._protected[address]]
        self.saved_bytes += sum(copy.numel() * copy.element_size() for _, copy in self._saved[address])

    def restore(self) -> None:
        """Write every saved copy back (call under ``torch.no_grad()``)."""
        for saved in self._saved.values():
            for tensor, copy in saved:
                tensor.copy_(copy)
        self._saved.clear()
        self._protected = None
        self._tensors = []
        self._versions = []


class undone:  # noqa: N801 - used as a function, ``with undone(module):``
    """Run code outside a trace that may change ``module`` (evaluating a parametrized
    weight runs spectral_norm's power iteration, which writes ``_u`` and ``_v`` in
    train mode), then put the module back as it was: the model-state guard, with a
    dispatch mode that saves each guarded tensor before its first write; random draws
    (a parametrization that samples a mask) are undone too. A class, so that an
    interrupt cannot skip the undoing (``interrupts.py``)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self._random = kept_random_state()
        self._guard = ModelStateGuard(module)
        self._saving: ModeOn | None = None

    def __enter__(self) -> None:
        self._random.__enter__()
        try:
            self._guard.__enter__()
            try:
                self._saving = ModeOn(SaveBeforeWrites(self._guard.writes))
                self._saving.__enter__()
            except BaseException:
                self._guard.__exit__(None, None, None)
                raise
        except BaseException:
            self._random.__exit__(None, None, None)
            raise

    def __exit__(self, kind: Any, error: Any, traceback: TracebackType | None) -> None:
        try:
            if self._saving is not None:
                self._saving.__exit__(kind, error, traceback)
        finally:
            try:
                self._guard.__exit__(kind, error, traceback)
            finally:
                self._random.__exit__(kind, error, traceback)


class SaveBeforeWrites(TorchDispatchMode):
    """Passes every op to ``writes.before`` (the WriteGuard's copy), then runs it; a
    higher-order operator's functions run with it on (``run_watched``)."""

    supports_higher_order_operators = True

    def __init__(self, writes: WriteGuard) -> None:
        super().__init__()
        self.writes = writes

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        if isinstance(func, HigherOrderOperator):  # torch.cond, while_loop, scan, ...
            return run_watched(self, func, args, kwargs or {})
        self.writes.before(func, args, kwargs)
        return func(*args, **(kwargs or {}))


# Ops that write arguments their schema does not mark as written: the batch norms
# update running_mean and running_var (arguments 3 and 4) when ``training`` (5) is set.
_BATCH_NORM_WRITES = ((3, "running_mean"), (4, "running_var"))
_UNMARKED_WRITES = dict.fromkeys(UNMARKED_WRITE_OPS, _BATCH_NORM_WRITES)


def _written_arguments(func: Any) -> tuple[tuple[int, str], ...]:
    """(position, name) of the arguments an op writes (``Tensor(a!)`` in its schema)."""
    schema = getattr(func, "_schema", None)
    unmarked = _UNMARKED_WRITES.get(getattr(getattr(func, "overloadpacket", None), "__name__", ""))
    if unmarked is not None:
        return unmarked
    if schema is None or not schema.is_mutable:
        return ()
    return tuple(
        (index, arg.name)
        for index, arg in enumerate(schema.arguments)
        if arg.alias_info is not None and arg.alias_info.is_write
    )


def _storage_address(tensor: torch.Tensor) -> int:
    """Where the tensor's storage starts; for a tensor without one (sparse), its ``id``,
    which no storage address shares (sparse writes are left to the version check)."""
    try:
        return int(tensor.untyped_storage().data_ptr())
    except (RuntimeError, NotImplementedError):
        return -id(tensor)


def _data_address(tensor: torch.Tensor) -> int:
    """``tensor.data_ptr()``; for a tensor without storage (sparse), its ``id``."""
    try:
        return int(tensor.data_ptr())
    except (RuntimeError, NotImplementedError):
        return -id(tensor)


def _data_addresses(tensors: list[torch.Tensor]) -> list[int]:
    """``_data_address`` of each tensor (in one C loop unless one has no storage)."""
    try:
        return list(map(_DATA_PTR, tensors))
    except (RuntimeError, NotImplementedError):
        return list(map(_data_address, tensors))


_DATA_PTR = methodcaller("data_ptr")


@completes
def trace_model(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    backward: bool = False,
    train: bool | None = None,
    custom_types: tuple[type, ...] = (),
    shapes_only: bool = False,
    walk: ModelWalk | None = None,
) -> Trace:
    """Run ``model(*args, **kwargs)`` once (and its backward if asked); record every op.

    ``shapes_only`` runs the floating-point inputs as meta tensors: every op computes
    shapes, not values (parameters join meta per op, integer inputs stay real), so the
    run costs almost nothing. ``train`` sets train/eval mode (None keeps the model's own); the
    guard restores every module's mode afterwards. Runs under ``torch.no_grad()``
    unless ``backward``. With ``backward`` the
    gradients are taken with ``torch.autograd.grad`` so no ``.grad`` is written (a reentrant
    checkpoint refuses it: then ``backward()``, and every ``.grad`` is put back).
    ``walk``: the model's ``ModelWalk``, if the caller took it with the model's lock held
    (``modules.exclusive``); else it is taken here.

    A model not expected to call attention runs without the function recorder; if it
    calls attention after all, that run is thrown away and made again with it
    (``attention_watch.py``).
    """
    _import_dynamo()
    with exclusive(model), eager_compiled_code():  # the walk and the run see one state of the model
        walk = walk if walk is not None else ModelWalk(model)
        options = _RunOptions(backward, train, custom_types, shapes_only)
        objects = holds_objects((args, kwargs))
        if objects:  # a KV cache: the run updates its own copy
            args, kwargs = own_copy(args, kwargs, (*walk.modules, *walk.parameters, *walk.buffers))
        if not shapes_only or objects or expects_attention(walk.kinds):
            # a run with values runs once; inputs a first run could change (a cache object)
            # are not given to one that may be thrown away (attention_watch.py)
            return _run_once(model, args, kwargs, walk, options, whole_functions=True)
        try:
            return _run_once(model, args, kwargs, walk, options, whole_functions=False)
        except AttentionSeen as seen:
            remember_attention(type(seen.module))
        return _run_once(model, args, kwargs, walk, options, whole_functions=True)


def holds_objects(inputs: Any) -> bool:
    """Whether the inputs hold something other than tensors, numbers, strings and None in
    lists, tuples and dicts (which a shapes-only run rebuilds, so a run cannot change the
    caller's)."""
    return any(
        not isinstance(leaf, torch.Tensor) and type(leaf) not in PLAIN_TYPES
        for leaf in tree_flatten(inputs)[0]
    )


def own_copy(args: tuple[Any, ...], kwargs: dict[str, Any], shared: tuple[Any, ...]) -> tuple[Any, Any]:
    """A deep copy of inputs that hold objects, for one run: a decode step extends the
    caller's KV cache, and a shapes-only run would leave meta tensors in it. ``shared``
    (the model's modules, parameters and buffers) is not copied; inputs that cannot be
    copied run as they are; a non-leaf tensor is copied detached."""
    memo: dict[int, Any] = {id(item): item for item in shared}
    try:
        with ModeOn(_CopyNonLeaves()):
            return deepcopy((args, kwargs), memo)
    except Exception:  # noqa: BLE001 - any object's own __deepcopy__ may refuse
        return args, kwargs


class _CopyNonLeaves(torch.overrides.TorchFunctionMode):
    """``deepcopy`` of a tensor autograd made (a cache filled with grad on), which torch
    refuses: a detached copy of its values (the run's graph stays off the caller's)."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is torch.Tensor.__deepcopy__ and not args[0].is_leaf:
            return args[0].detach().clone().requires_grad_(args[0].requires_grad)
        return func(*args, **(kwargs or {}))


@dataclass
class _RunOptions:
    backward: bool
    train: bool | None
    custom_types: tuple[type, ...]
    shapes_only: bool


def _run_once(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    walk: ModelWalk,
    options: _RunOptions,
    *,
    whole_functions: bool,
) -> Trace:
    """One run under the op recorder (and the function recorder if ``whole_functions``);
    without it, raises ``AttentionSeen`` (with the module that called it) after a run that
    met attention, whether the model returned or raised."""
    backward = options.backward
    stack = ModuleStack(model, track_backward=backward, walk=walk)
    stack.custom_types = options.custom_types
    recorder = OpRecorder(stack, walk.roles, shapes_only=options.shapes_only)
    recorder.whole_functions = whole_functions
    if options.shapes_only:
        args, kwargs = _floats_to_meta(args, walk.roles), _floats_to_meta(kwargs, walk.roles)
    inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
    recorder.hold(inputs)
    recorder.probe = next((t for t in inputs if t.ndim), None)
    callers_grad, grad_mode = torch.is_grad_enabled(), GradMode(backward)
    functions = ModeOn(FunctionRecorder(recorder)) if whole_functions else nullcontext()
    if torch._C._is_any_autocast_enabled():
        # a fresh cast cache, as the first forward in an autocast region sees: casts a run
        # (or an earlier profile) left there would hide the weights' casts from this one
        torch.clear_autocast_cache()
    try:
        with (
            kept_random_state((args, kwargs)),
            ModelStateGuard(model, walk) as guard,
            grad_mode,
            stack,
            ModelSettings(callers_grad) as settings,
        ):
            if options.train is not None and not guard.all_in_mode(options.train):
                set_mode(model, options.train)
            # a meta model has no values to guard: no check per op
            recorder.writes = guard.writes if guard.writes.guards_anything else None
            returned = False
            with ModeOn(recorder), functions:
                try:
                    output = model(*args, **kwargs)
                    returned = True
                    if backward:
                        _run_backward(model, args, kwargs, output, walk.parameters, recorder)
                except AttentionSeen:
                    pass  # the run stopped at an attention call: made again below
                except BackwardUnavailable:
                    raise  # flopmeter's own finding, not the model's error
                except Exception as error:
                    if recorder.unseen_attention_in is None:
                        raise TraceFailure(error, stack.raised_in(error)) from error
            if returned:  # flopmeter's warning (an error under ``-W error``), not the model's
                settings.warn_if_left_changed()
    finally:
        finish(recorder.release)
    if recorder.unseen_attention_in is not None:
        raise AttentionSeen(walk.module(recorder.unseen_attention_in))
    if recorder.failed_on_meta is not None:  # the model caught it (``try: x.item()``) and went on
        raise TraceFailure(recorder.failed_on_meta, stack.raised_in(recorder.failed_on_meta))
    return Trace(
        events=recorder.events,
        module_calls=dict(stack.calls),
        custom_calls=stack.custom_calls,
        peak_activation_bytes=recorder.peak_bytes,
        first_input_event=recorder.probe_event,
        rebuilds=recorder.rebuilds,
    )


def _import_dynamo() -> None:
    """Import ``torch._dynamo`` before the run, not in it. torch imports it (about 1 s,
    once per process) the first time one of its Python meta kernels runs, which every
    model profiled so far does. Inside the run, that import leaves reference cycles
    holding the frames of the forward, and the tensors in them, until the garbage
    collector runs; it is paused during a profile, so the first profile in a process
    counted those tensors as live: a higher peak_activation_bytes than every later one."""
    import torch._dynamo  # noqa: F401


def _floats_to_meta(value: Any, roles: dict[int, str]) -> Any:
    """Floating-point inputs as meta tensors; the model's own parameters and buffers passed
    as inputs stay as they are (the recorder moves them to meta per op, as a weight). A twin
    keeps its input's ``requires_grad``: a forward that turns grad on may branch on it (the
    chunked ``F.linear_cross_entropy`` then computes the input's gradient)."""
    flat, spec = tree_flatten(value)
    moved = [
        meta_twin(t).requires_grad_(t.requires_grad)
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) and id(t) not in roles
        else t
        for t in flat
    ]
    return tree_unflatten(moved, spec)


class BackwardUnavailable(ValueError):
    """``backward=True`` has nothing to differentiate (raised by flopmeter, not the model)."""


def _run_backward(
    model: torch.nn.Module,
    args: Any,
    kwargs: Any,
    output: Any,
    before: list[torch.nn.Parameter],
    recorder: OpRecorder,
) -> None:
    """The backward of ``output``'s sum (of its ``loss`` alone when it is a dict or
    ``ModelOutput`` holding one that requires grad, as ``out.loss.backward()`` trains it:
    summing the logits in would add a gradient to theirs), with respect to every parameter that requires grad:
    the model's parameters as the forward began (``before``: a forward may delete a
    submodule whose weights its output still depends on) and as it ended (a submodule it
    made), every input that requires grad, and every other leaf of the graph that does (a
    tensor the forward made and set ``requires_grad``, as wav2vec2's feature encoder does), as
    ``loss.backward()`` would reach them. ``higher_order``: the higher-order operators the
    forward ran (an output without grad is then theirs to explain)."""
    plain = _plain(output)
    tensors = [t for t in tree_flatten(plain)[0] if isinstance(t, torch.Tensor)]
    loss = plain.get("loss") if isinstance(plain, dict) else None
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        tensors = [loss]
    outputs = [t for t in tensors if t.requires_grad]
    params = {id(p): p for p in [*before, *model.parameters()]}
    wrt: list[torch.Tensor] = [p for p in params.values() if p.requires_grad]
    wrt += [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.requires_grad]
    if not outputs:
        raise BackwardUnavailable(_why_no_backward(output, tensors, wrt, model))
    # the seed gradients are flopmeter's, not a step of the model's: live memory (a
    # training step holds its outputs' gradients), but no op (it wrote the output's bytes
    # again into the forward's traffic, and listed an ``aten.ones_like`` the model never ran)
    recorder.suppressed += 1
    try:
        ones = [torch.ones_like(t) for t in outputs]
    finally:
        recorder.suppressed -= 1
    leaves, reentrant = _graph_leaves(outputs)
    wrt = list({id(t): t for t in [*wrt, *leaves]}.values())
    if not reentrant:
        torch.autograd.grad(outputs, wrt, grad_outputs=ones, allow_unused=True)
        return
    # ``checkpoint(use_reentrant=True)`` refuses ``autograd.grad``: run ``backward()`` as
    # training does, from grads of None (no accumulating add), and put every grad back:
    # of the graph's leaves (a non-leaf's ``.grad`` is not written unless it retains it)
    # and of those only the recompute reaches (``_GradsTaken``).
    taken = _GradsTaken()
    taken.take([t for t in wrt if t.is_leaf or t.retains_grad])
    try:
        with taken:
            torch.autograd.backward(outputs, grad_tensors=ones)
    finally:
        taken.put_back()


class _GradsTaken(TorchDispatchMode):
    """Each tensor that ``backward()`` may write a ``.grad`` to, with the grad it had (set
    to None meanwhile); as a mode around a reentrant checkpoint's backward, also each leaf
    that requires grad an op of its recompute reads (a tensor held in a plain attribute or
    a closure: the outer graph has no edge to it, yet the recompute's own backward writes
    its ``.grad``). The recompute's forward runs before its backward, so a grad is taken
    before it can be written. (A dispatch mode: a function mode would take
    ``torch.autograd.backward`` itself as one call and be off while it runs.) Each one's
    post-accumulate-grad hooks are taken too: ``autograd.grad`` runs none, ``backward()``
    would (an optimizer step fused into the backward)."""

    def __init__(self) -> None:
        super().__init__()
        self._saved: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._hooks: list[tuple[dict[Any, Any], dict[Any, Any]]] = []  # (the tensor's, its entries)

    def take(self, tensors: list[torch.Tensor]) -> None:
        for tensor in tensors:
            if id(tensor) not in self._saved:
                self._saved[id(tensor)] = (tensor, tensor.grad)
                tensor.grad = None
                hooks = getattr(tensor, "_post_accumulate_grad_hooks", None)  # autograd calls this dict
                if hooks:
                    self._hooks.append((hooks, dict(hooks)))
                    hooks.clear()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        self.take(
            [
                t
                for t in tree_flatten((args, kwargs))[0]
                if isinstance(t, torch.Tensor) and t.requires_grad and t.is_leaf and id(t) not in self._saved
            ]
        )
        return func(*args, **kwargs)

    def put_back(self) -> None:
        for tensor, grad in self._saved.values():
            tensor.grad = grad
        for hooks, entries in self._hooks:
            hooks.update(entries)


def _graph_leaves(outputs: list[torch.Tensor]) -> tuple[list[torch.Tensor], bool]:
    """The leaves ``backward()`` from ``outputs`` writes a ``.grad`` to (the tensors of its
    AccumulateGrad nodes), and whether the graph holds a reentrant checkpoint
    (``CheckpointFunctionBackward``, whose own leaves are reached only when it runs)."""
    seen: set[int] = set()
    todo = [t.grad_fn for t in outputs if t.grad_fn is not None]
    leaves: list[torch.Tensor] = []
    reentrant = False
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        reentrant = reentrant or type(node).__name__ == "CheckpointFunctionBackward"
        variable = getattr(node, "variable", None)  # an AccumulateGrad node's leaf
        if isinstance(variable, torch.Tensor):
            leaves.append(variable)
        todo.extend(next_node for next_node, _ in node.next_functions if next_node is not None)
    return leaves, reentrant


def _why_no_backward(
    output: Any,
    tensors: list[torch.Tensor],
    wrt: list[torch.Tensor],
    model: torch.nn.Module,
) -> str:
    if not tensors:
        return (
            f"backward=True needs a tensor output to differentiate, but the model returned "
            f"{type(output).__name__} with no tensor in it"
        )
    if not wrt:
        return (
            "backward=True needs something to differentiate: no parameter of the model requires "
            "grad and no input does"
        )
    if not any(t.is_floating_point() or t.is_complex() for t in tensors):
        dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in tensors})
        return (
            f"backward=True: the model's output has no gradient: its tensors are {', '.join(dtypes)} "
            "(an argmax, a comparison or a cast to integers has none); return the floating-point "
            "values a loss is computed from (the logits, not their argmax)"
        )
    quantized = [
        f"{name} ({type(m).__name__})"
        for name, m in model.named_modules()
        if type(m).__module__.startswith(_QUANTIZED) and hasattr(m, "weight")
    ]
    if quantized:
        return (
            f"backward=True: the model's output does not require grad; its quantized layers "
            f"({', '.join(quantized[:3])}{', ...' if len(quantized) > 3 else ''}) have no gradient "
            "in torch. Count the training step on the float model (or a QAT-prepared one, whose "
            "fake-quantized layers do have a backward)"
        )
    return (
        f"backward=True: the model's output does not require grad although {len(wrt)} "
        "parameter(s) or input(s) do; does its forward run under torch.no_grad() or detach "
        "its result?"
    )


_QUANTIZED = ("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")  # converted int8 layers


def _plain(output: Any) -> Any:
    """Model outputs such as transformers' ModelOutput are dicts, and a dataclass holds its
    tensors in fields; make pytree see them."""
    if isinstance(output, dict):
        return dict(output)
    if is_dataclass(output) and not isinstance(output, type):
        return {f.name: _plain(getattr(output, f.name)) for f in fields(output)}
    return output
