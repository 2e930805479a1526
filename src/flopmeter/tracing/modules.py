"""Which module is running: a stack kept by global module hooks, removed on exit.

Nothing is written into the user's model: the hooks are torch's global ones
(``register_module_forward_pre_hook``), active only inside the ``with`` block.

Backward: when a module's forward returns, the autograd nodes its forward created are
found by walking back from its outputs to its inputs, and remembered as its own; during
the backward pass, the node autograd is executing (``_current_autograd_node``) tells
whose backward an op belongs to.
"""

from __future__ import annotations

from typing import Any

import torch
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
        self._node_owner: dict[Any, str] = {}
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
            return self._node_owner.get(torch._C._current_autograd_node(), "")
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
        if self._track_backward and torch.is_grad_enabled():
            self._claim_nodes(name, args, output)

    def _claim_nodes(self, name: str, args: Any, output: Any) -> None:
        """Mark the autograd nodes between ``output`` and ``args`` as ``name``'s, except
        those a child already claimed (the walk passes through them) and those of
        modules outside this one (the walk stops there)."""
        boundary = {t.grad_fn for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor) and t.grad_fn}
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

    def __enter__(self) -> ModuleStack:
        self._handles.append(register_module_forward_pre_hook(self._pre))
        self._handles.append(register_module_forward_hook(self._post, always_call=True))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._forward.clear()
        self._node_owner.clear()
