"""Which module is running: a stack kept by global module hooks, removed on exit.

Nothing is written into the user's model: the hooks are torch's global ones
(``register_module_forward_pre_hook``), active only inside the ``with`` block, and the
backward bookkeeping lives on gradient hooks of activation tensors, also removed on exit.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.graph import register_multi_grad_hook
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.utils._pytree import tree_flatten
from torch.utils.hooks import RemovableHandle


class ModuleStack:
    """Tracks the innermost running module of ``root`` by qualified name.

    A module reachable under several names (shared) is known by the first name
    ``named_modules()`` gives it. Modules outside ``root`` are not tracked: their
    ops belong to the innermost tracked module around them.
    """

    def __init__(self, root: torch.nn.Module, track_backward: bool = False) -> None:
        self.names: dict[int, str] = {id(m): name for name, m in root.named_modules()}
        self._forward: list[str] = []
        self._backward: list[str] = []
        self._track_backward = track_backward
        self._handles: list[RemovableHandle] = []
        self.calls: dict[str, int] = {}
        self.last_entered: str | None = None  # where a failing forward most likely was
        # Modules whose cost a user formula gives: their calls are recorded whole and
        # the ops inside them are marked as replaced.
        self.custom_types: tuple[type, ...] = ()
        self.custom_calls: list[tuple[str, torch.nn.Module, Any, Any]] = []
        self.describe: Any = lambda value: value  # turns tensors into metadata
        self._custom_depth = 0

    # -- queries -----------------------------------------------------------------
    @property
    def in_backward(self) -> bool:
        return bool(torch._C._current_graph_task_id() != -1)

    def current(self) -> str:
        """Qualified name of the innermost running module ("" for the root)."""
        if self.in_backward:
            if not self._backward:
                return ""
            return max(self._backward, key=lambda name: name.count(".") + 1 if name else 0)
        return self._forward[-1] if self._forward else ""

    @property
    def inside_custom(self) -> bool:
        """True while a module with a user-given formula runs (its ops are replaced)."""
        return self._custom_depth > 0

    # -- hooks -------------------------------------------------------------------
    def _pre(self, module: torch.nn.Module, args: Any) -> None:
        name = self.names.get(id(module))
        if name is None:
            return
        self._forward.append(name)
        self.last_entered = name
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.custom_types and isinstance(module, self.custom_types):
            self._custom_depth += 1
        if self._track_backward:
            grads = [t for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
            if grads:
                self._handles.append(register_multi_grad_hook(grads, self._leave_backward(name), mode="any"))

    def _post(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        name = self.names.get(id(module))
        if name is None:
            return
        if self._forward and self._forward[-1] == name:
            self._forward.pop()
        if self.custom_types and isinstance(module, self.custom_types):
            self._custom_depth -= 1
            if self._custom_depth == 0:
                self.custom_calls.append((name, module, self.describe(args), self.describe(output)))
        if self._track_backward and output is not None:
            grads = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
            if grads:
                self._handles.append(register_multi_grad_hook(grads, self._enter_backward(name), mode="any"))

    def _enter_backward(self, name: str) -> Any:
        def hook(*_: Any) -> None:
            self._backward.append(name)

        return hook

    def _leave_backward(self, name: str) -> Any:
        def hook(*_: Any) -> None:
            if name in self._backward:
                self._backward.remove(name)

        return hook

    def __enter__(self) -> ModuleStack:
        self._handles.append(register_module_forward_pre_hook(self._pre))
        self._handles.append(register_module_forward_hook(self._post, always_call=True))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._forward.clear()
        self._backward.clear()
