"""Which module is running: a stack kept by global module hooks, removed on exit.

Nothing is written into the user's model: the hooks are torch's global ones
(``register_module_forward_pre_hook``), active only inside the ``with`` block.

Threads: torch's global hooks fire for every thread's module calls; a ModuleStack
follows only the thread that entered it, so a model run (or profiled) by another
thread at the same time does not enter its numbers. ``exclusive(model)`` makes
profiles of one model take turns (the profile sets its train/eval mode for the run).

Errors: the stack is popped when a module returns, normally or by an exception, and
the first module an exception leaves is remembered as the one it was raised in.

Backward: when a module's forward returns, the autograd nodes its forward created are
found by walking back from its outputs to its inputs, and remembered as its own; during
the backward pass, the node autograd is executing (``_current_autograd_node``) tells
whose backward an op belongs to, except while a module's forward runs inside the backward
(activation checkpointing's recompute): its ops are that module's.
"""

from __future__ import annotations

import sys
import threading
import types
import warnings
import weakref
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.utils._pytree import tree_flatten
from torch.utils.hooks import RemovableHandle

from ..interrupts import Undoing
from ..notices import CountWarning
from .events import BACKWARD, FORWARD
from .model_walk import ModelWalk

_LOCKS: weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def exclusive(model: torch.nn.Module) -> AbstractContextManager[Any]:
    """One profile of ``model`` at a time: other threads profiling the same model wait
    (the same thread may nest). Different models are profiled concurrently (unless they
    share a module: ``take_turns``). The model's lock itself: ``with`` takes and releases
    it in C, so no interrupt can come between (``interrupts.py``)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
    return lock


class _ModulesInUse:
    """The modules some profile is running, by thread. Two models that share a module
    (a backbone, an embedding) are different models to ``exclusive``, but a profile swaps
    and restores each module's state (``attributes.py``), so two profiles of them must
    not overlap: the second waits until the first has put the shared module back. A
    thread's nested profiles (of a submodule, say) do not wait for themselves."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # taken by ``with`` directly (Condition's __enter__ is Python)
        self.changed = threading.Condition(self.lock)
        self.owner: dict[int, int] = {}  # id(module) -> the thread profiling it

    def take_turns(self, modules: list[Any]) -> _Turn:
        return _Turn(self, modules)


class _Turn(Undoing):
    """One profile's turn with its modules (``take_turns``)."""

    def __init__(self, in_use: _ModulesInUse, modules: list[Any]) -> None:
        self._in_use = in_use
        self._keys = list(map(id, modules))
        self._mine: list[int] = []  # the modules this turn took (not already this thread's)

    def take(self) -> None:
        in_use, me = self._in_use, threading.get_ident()
        with in_use.lock:
            while not {in_use.owner.get(key, me) for key in self._keys} <= {me}:
                in_use.changed.wait()
            self._mine = [key for key in self._keys if key not in in_use.owner]
            in_use.owner.update(dict.fromkeys(self._mine, me))

    def leave(self) -> None:
        in_use = self._in_use
        with in_use.lock:
            for key in self._mine:
                in_use.owner.pop(key, None)
            in_use.changed.notify_all()


_IN_USE = _ModulesInUse()
take_turns = _IN_USE.take_turns


class _DeeperRecursion:
    """Raises Python's recursion limit while any profile runs, in any thread, and puts
    it back when the last one ends. With a global hook set, torch calls each forward
    through one more frame (``_call_impl``'s ``inner()``), and meta kernels written in
    Python run deeper than the CPU ones: this allows as deep a model as a plain call.
    Each profile is a user (a set, so that ending one twice is harmless: ``finish``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: set[int] = set()
        self._saved = self._raised = 0

    def enter(self, user: object) -> None:
        with self._lock:
            first = not self._users
            if first:
                self._saved = sys.getrecursionlimit()
                self._raised = self._saved * 5 // 4 + 200
            self._users.add(id(user))  # before the limit moves: ``exit`` puts back what moved
            if first:
                sys.setrecursionlimit(self._raised)

    def exit(self, user: object) -> None:
        with self._lock:
            self._users.discard(id(user))
            if not self._users and self._raised and sys.getrecursionlimit() == self._raised:
                sys.setrecursionlimit(self._saved)
                self._raised = 0


_DEEPER = _DeeperRecursion()


def uncompiled(model: torch.nn.Module) -> torch.nn.Module:
    """The module ``torch.compile`` wrapped, else ``model``: a compiled module is counted
    as its original (same ops, same module names), and profiling compiles nothing."""
    original = getattr(model, "_orig_mod", None)
    if isinstance(original, torch.nn.Module) and type(model).__name__ == "OptimizedModule":
        return original
    return model


class ModuleStack(Undoing):
    """Tracks the innermost running module of ``root`` by qualified name.

    A module reachable under several names (shared) is known by the first name
    ``named_modules()`` gives it, except when it is called by a parent that holds it
    under a further name (``b.0`` for ``self.b = nn.Sequential(shared)``, ``shared``
    first known as ``a``): that call is charged to the name it was called through.
    A module called in a loop by the same parent keeps one name. Modules outside
    ``root`` are not tracked: their ops belong to the innermost tracked module around them.
    """

    def __init__(
        self, root: torch.nn.Module, track_backward: bool = False, walk: ModelWalk | None = None
    ) -> None:
        walk = walk if walk is not None else ModelWalk(root)
        self.names: dict[int, str] = walk.module_ids()
        further = walk.further_names
        # (the caller's name, id of the module it calls) -> the name the module has there
        self._via: dict[tuple[str, int], str] = {}
        self._further_ids: dict[str, int] = {}  # a further name -> id of its module
        for name, (module, _) in further.items():
            self._via[(name.rpartition(".")[0], id(module))] = name
            self._further_ids[name] = id(module)
        if walk.scripted:
            warnings.warn(
                "the model contains TorchScript modules (torch.jit.script/trace): their submodules "
                "run inside the TorchScript interpreter, which calls no module hooks, so their ops "
                "are counted in the totals but charged to the nearest Python module around them",
                CountWarning,
                stacklevel=3,
            )
        self._root_id = id(root)
        self._forward: list[str] = []
        self._run_in_backward: list[bool] = []  # per ``_forward`` entry: called during a backward
        # per ``_forward`` entry: its inputs' autograd nodes as the call began (an in-place
        # layer, ReLU(inplace=True), rebases its input onto its own node: read after the
        # call, that node would bound the layer's graph and go to the parent)
        self._entry_nodes: list[AbstractSet[Any]] = []
        self._node_owner: dict[Any, str] = {}
        self.track_backward = track_backward
        self._handles: list[RemovableHandle] = []
        self._thread = threading.get_ident()
        self._raised_in: dict[int, tuple[BaseException, str]] = {}  # id(error) -> (error, module)
        self.calls: dict[str, int] = {}
        # Modules whose cost a user formula gives: their calls are recorded whole and
        # the ops inside them are marked as replaced.
        self.custom_types: tuple[type, ...] = ()
        self.custom_calls: list[tuple[str, torch.nn.Module, Any, Any]] = []
        self.describe: Any = lambda value: value  # turns tensors into metadata
        self._custom_depth = 0
        self.other_thread_calls = 0  # the model's modules called by other threads meanwhile

    # -- queries -----------------------------------------------------------------
    @property
    def in_backward(self) -> bool:
        return bool(torch._C._current_graph_task_id() != -1)

    def current(self) -> str:
        """Qualified name of the innermost running module ("" for the root)."""
        if self.track_backward and self.in_backward:
            if self._run_in_backward and self._run_in_backward[-1]:
                return self._forward[-1]  # a forward recomputed by activation checkpointing
            return self._node_owner.get(torch._C._current_autograd_node(), "")
        return self._forward[-1] if self._forward else ""

    def phase(self) -> str:
        """ "backward" while autograd runs a backward pass, else "forward"."""
        return BACKWARD if self.in_backward else FORWARD

    def raised_in(self, error: BaseException) -> str | None:
        """The module whose forward was running when ``error`` was raised (the first
        one it left); None if it was raised outside every module of the model."""
        entry = self._raised_in.get(id(error))
        return entry[1] if entry is not None and entry[0] is error else None

    @property
    def inside_custom(self) -> bool:
        """True while a module with a user-given formula runs (its ops are replaced)."""
        return self._custom_depth > 0

    # -- hooks -------------------------------------------------------------------
    def _pre(self, module: torch.nn.Module, args: Any) -> None:
        name = self.names.get(id(module))
        if name is None or threading.get_ident() != self._thread:
            if name is not None:  # their ops run where this profile's recorder cannot see
                self.other_thread_calls += 1
            return
        if self._via and self._forward:  # a shared module called through a parent holding it
            name = self._via.get((self._forward[-1], id(module)), name)
        self._forward.append(name)
        self._run_in_backward.append(self.track_backward and self.in_backward)
        self._entry_nodes.append(
            _grad_fns(args) if self.track_backward and torch.is_grad_enabled() else _NO_NODES
        )
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.custom_types and isinstance(module, self.custom_types):
            self._custom_depth += 1

    def _post(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        name = self.names.get(id(module))
        if name is None or threading.get_ident() != self._thread:
            return
        if self._further_ids and self._forward and self._further_ids.get(self._forward[-1]) == id(module):
            name = self._forward[-1]  # the name it was called by (``_pre``)
        entry_nodes = None
        if self._forward and self._forward[-1] == name:
            self._forward.pop()
            self._run_in_backward.pop()
            entry_nodes = self._entry_nodes.pop()
        custom = self.custom_types and isinstance(module, self.custom_types)
        if custom:
            self._custom_depth -= 1
        if output is None:
            error = sys.exc_info()[1]
            if error is not None:  # torch calls always_call hooks as an exception leaves
                self._raised_in.setdefault(id(error), (error, name))
                return
        if custom and self._custom_depth == 0:
            self.custom_calls.append((name, module, self.describe(args), self.describe(output)))
        if id(module) == self._root_id and isinstance(output, types.GeneratorType):
            warnings.warn(
                "the model's forward returned a generator: its ops run only when it is iterated, "
                "so they were not counted. Profile a module that returns tensors.",
                CountWarning,
                stacklevel=2,
            )
        if self.track_backward and torch.is_grad_enabled():
            self._claim_nodes(name, _grad_fns(args) if entry_nodes is None else entry_nodes, output)

    def _claim_nodes(self, name: str, boundary: AbstractSet[Any], output: Any) -> None:
        """Mark the autograd nodes between ``output`` and ``boundary`` (the nodes of the
        call's inputs as it began) as ``name``'s, except those a child already claimed
        (the walk passes through them) and those of modules outside this one (the walk
        stops there)."""
        todo: list[Any] = [
            t.grad_fn for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor) and t.grad_fn
        ]
        inside = name + "." if name else ""
        seen: set[Any] = set()
        while todo:
            node = todo.pop()
            if node is None or node in seen or node in boundary:
                continue
            seen.add(node)
            owner = self._node_owner.get(node)
            if owner is None:
                self._node_owner[node] = name
            elif owner != name and not owner.startswith(inside):
                continue  # an earlier module's node: this module's graph ends here
            todo.extend(next_node for next_node, _ in node.next_functions)

    def take(self) -> None:
        self._thread = threading.get_ident()
        _DEEPER.enter(self)
        self._handles.append(register_module_forward_pre_hook(self._pre))
        self._handles.append(register_module_forward_hook(self._post, always_call=True))

    def __exit__(self, *exc: object) -> None:
        super().__exit__()
        if self.other_thread_calls:
            warnings.warn(
                f"{self.other_thread_calls} call(s) of the model's modules ran on other threads during "
                "the profile (a forward that hands work to a thread pool, or another thread using the "
                "model): their ops are not counted, since op recording follows one thread",
                CountWarning,
                stacklevel=2,
            )
        self._forward.clear()
        self._run_in_backward.clear()
        self._entry_nodes.clear()
        self._node_owner.clear()
        self._raised_in.clear()

    def leave(self) -> None:
        """Take the global hooks off and the recursion limit back (safe to run twice)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        _DEEPER.exit(self)


_NO_NODES: frozenset[Any] = frozenset()  # a call's entry nodes when backward is not tracked


def _grad_fns(args: Any) -> set[Any]:
    """The autograd nodes that made the tensors in ``args``."""
    return {t.grad_fn for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor) and t.grad_fn}
