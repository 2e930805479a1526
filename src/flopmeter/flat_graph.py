"""Flat exported graphs (``torch.export.export(m, args).module()``, PT2E prepared or
converted graphs, ``torch.fx.symbolic_trace``): profiled one row per layer they were
made from.

Such a ``GraphModule`` runs every aten op at its root: profiled as it is, all the MACs
would be the root's. But each node records, in ``node.meta["nn_module_stack"]``, the
modules it ran in (key, qualified name and class, outermost first; a second call of a
module has its own key, ``fc@1``). ``regrouped(graph_module)`` builds a module tree from
those records, whose calls run the graph's nodes in order, each inside the modules its
stack names: calling the tree's ``block`` module runs the nodes that ran in ``block``,
calling ``block.conv`` within it those of the conv. So the profile sees the same module
calls as the eager model, and the report's rows are named by the classes recorded
(``exported.with_exported_classes``).

The tree holds the graph module's own parameters and buffers (the same tensors, under
the same names) and the modules its ``call_module`` nodes call (observers, fake
quantizers: the same objects, under their names, each a row of its own, as when the
graph is profiled as it is), except torch.export's ``_guards_fn``: its check of the
inputs' shapes is no layer of the model and runs no aten op, so it is called but has no
row, as in the eager model. A computing node with no
record (the quantize and dequantize nodes PT2E's convert inserts) runs at the root
between two calls of modules, and inside a module's call between two of its nodes (it
does not split the call in two); a node that computes nothing
(a placeholder, a constant, a ``call_module`` node) runs in the module running at that
point. The graph module is only read: nothing is added to it or changed.

``symbolic_trace`` records the stack too (classes as types, no root entry), of the ops it
inlines and of the leaf modules it calls by ``call_module``, which run inside the
modules their stack names. A graph whose nodes record nothing is profiled as it is.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, TypeGuard

import torch

from .exported import EMPTY_STACK, recorded_classes, whole

_GUARDS = "_guards_fn"
Stack = tuple[tuple[str, str], ...]  # (key, qualified name) of each module a node ran in, outermost first


def records_modules(model: Any) -> TypeGuard[torch.fx.GraphModule]:
    """Whether ``model`` is a flat ``GraphModule`` whose nodes record the modules they ran
    in (``nn_module_stack``) and whose code is its graph's: a graph changed without
    ``recompile()`` (``convert_fx`` leaves its input so) runs its old code, so it is
    profiled as it is, running what calling it runs."""
    if not isinstance(model, torch.fx.GraphModule):
        return False
    if not any(node.meta.get("nn_module_stack") for node in model.graph.nodes):
        return False
    return bool(model.graph.python_code(root_module="self").src == model.code)


def regrouped(graph_module: torch.fx.GraphModule) -> tuple[torch.nn.Module, dict[str, str]]:
    """The module tree ``graph_module``'s nodes record (module docstring) and, by qualified
    name, the class each module had when exported ("" is the root)."""
    classes = recorded_classes(graph_module.graph)
    classes.setdefault("", type(graph_module).__name__)  # symbolic_trace records no root: its class's name
    tree = _Regrouped(graph_module)
    for name, module in tree.named_modules():
        if isinstance(module, _Scope):  # one no node ran in (a container, a weight's holder)
            classes.setdefault(name, "Module")
    return tree, classes


def check_inputs_fit(graph_module: torch.fx.GraphModule, inputs: Any, input_shape: Any = None) -> None:
    """``profile(graph_module, inputs)`` (or ``input_shape=``): the inputs bind to the
    graph's ``forward`` (a tensor is one positional input, a tuple or list as many, a dict
    keyword inputs, a ``NAME:SHAPE`` spec a keyword input), else a ValueError naming its
    parameters, before anything runs."""
    args: tuple[Any, ...]
    if inputs is None and input_shape is None:
        return
    if inputs is None:
        from .inputs import as_specs

        specs = as_specs(input_shape)
        args, kwargs = (
            tuple(spec for spec in specs if not spec.name),
            {spec.name: spec for spec in specs if spec.name},
        )
    elif isinstance(inputs, Mapping):
        args, kwargs = (), dict(inputs)
    else:
        args, kwargs = (tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)), {}
    signature = inspect.signature(graph_module.forward)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        raise ValueError(
            f"this exported graph is called as forward{signature}, as it was exported; the inputs "
            f"given do not fit ({error})"
        ) from None


def regrouped_graph(model: Any) -> torch.fx.Graph | None:
    """The flat graph ``model`` runs when it is a regrouped graph module, else None."""
    return model.graph if isinstance(model, _Regrouped) else None


def running_module(model: torch.nn.Module, node: torch.fx.Node, default: str) -> str:
    """The qualified name of the module whose call runs ``node`` when ``model`` is a
    regrouped graph (the innermost module its stack names; "" for the root), else
    ``default``."""
    if not isinstance(model, _Regrouped):
        return default
    stack = model._stack_of.get(node, ())
    return stack[-1][1] if stack else ""


def _stack(node: torch.fx.Node) -> Stack:
    """The modules ``node`` ran in below the root (whose name is ""); torch's placeholder
    entry for a node made with no stack (``_empty_nn_module_stack_from_metadata_hook``, on
    the ``_guards_fn`` call of a program with dynamic shapes) is none."""
    stack = node.meta.get("nn_module_stack") or {}
    return tuple(
        (str(key), str(value[0]))
        for key, value in stack.items()
        if value[0] and not str(value[0]).startswith(EMPTY_STACK)
    )


class _Scope(torch.nn.Module):
    """A module of the exported model: calling it runs the graph's next nodes while they
    ran in this call of it (``_Run.within``)."""

    def forward(self, run: _Run, depth: int, key: str, inputs: list[Any]) -> list[Any]:
        """``inputs``: the values made outside this call that its nodes read; returns the
        values its nodes made that nodes after it read (so a backward pass can tell which
        autograd nodes are this call's, as for an eager module)."""
        return run.within(depth, key)


class _Regrouped(torch.nn.Module):
    """The root: called as the graph module is, it runs its graph through the scopes."""

    def __init__(self, graph_module: torch.fx.GraphModule) -> None:
        super().__init__()
        called = {str(node.target) for node in graph_module.graph.nodes if node.op == "call_module"}
        called.discard(_GUARDS)  # torch.export's input check: called by the graph, no row
        self._graph_module = [graph_module]  # in a list: not a submodule of the tree
        self._signature = inspect.signature(graph_module.forward)
        self.graph = graph_module.graph  # compression facts read the graph's constants (pt2e.py)
        self._stacks = [_stack(node) for node in graph_module.graph.nodes]
        for name, module in graph_module.named_modules():
            if name and _inside(name, {*called, _GUARDS}):
                continue  # a module the graph calls holds its own
            if name and not (module._parameters or module._buffers):
                continue  # holds nothing (a torch.cond branch's graph): made only if a node names it
            holder = self if not name else self._scope(name)
            for key, parameter in module._parameters.items():
                if parameter is not None:
                    holder.register_parameter(key, parameter)
            for key, buffer in module._buffers.items():
                if buffer is not None:
                    holder.register_buffer(
                        key, buffer, persistent=key not in module._non_persistent_buffers_set
                    )
        for name, module in graph_module.named_modules(
            remove_duplicate=False
        ):  # one called by two names: both
            if name not in called or _inside(name, called - {name}):
                continue  # not called, or inside another module the graph calls, which holds it
            parent, _, leaf = name.rpartition(".")
            (self._scope(parent) if parent else self).add_module(leaf, module)
        self._stacks = [tuple(entry for entry in stack if self._is_scope(entry[1])) for stack in self._stacks]
        for stack in self._stacks:
            for _, path in stack:
                self._scope(path)
        self._stack_of = dict(zip(graph_module.graph.nodes, self._stacks, strict=True))
        self._placed = [_placed_by_stack(node) for node in graph_module.graph.nodes]

    def _scope(self, path: str) -> torch.nn.Module:
        """The scope at ``path``, made (with the ones above it) when missing."""
        module: torch.nn.Module = self
        for part in path.split("."):
            child = module._modules.get(part)
            if child is None:
                child = _Scope()
                module.add_module(part, child)
            module = child
        return module

    def _is_scope(self, path: str) -> bool:
        """Whether ``path`` is not inside a module the graph calls (which runs as its own
        node, and is not changed)."""
        module: torch.nn.Module | None = self
        for part in path.split("."):
            module = module._modules.get(part) if module is not None else None
            if module is not None and not isinstance(module, _Scope):
                return False
        return True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        graph_module = self._graph_module[0]
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(
                f"this exported graph is called as forward{self._signature}; the inputs given do not fit ({error})"
            ) from None
        if bound.kwargs:
            raise TypeError(
                f"this exported graph is called as forward{self._signature}; pass its inputs by name or position"
            )
        run = _Run(self, graph_module, graph_module.graph.process_inputs(*bound.args))
        run.within(0, "")
        return graph_module.graph.process_outputs(run.output)


def _placed_by_stack(node: torch.fx.Node) -> bool:
    """Whether ``node`` runs in the modules its stack names: a node that computes (an
    empty stack is the root's), the output (the root's), a module of the model the graph
    calls (``symbolic_trace``'s leaf modules: their stack ends with themselves). Others
    (placeholders, constants, observers, torch.export's ``_guards_fn``) run where they
    come."""
    if node.op in ("call_function", "call_method", "output"):
        return True
    stack = _stack(node)
    return node.op == "call_module" and bool(stack) and stack[-1][1] == str(node.target)


def _inside(name: str, roots: set[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


class _Interpreter(torch.fx.Interpreter):
    """Runs the graph's nodes; attention is called as ``F.scaled_dot_product_attention``,
    counted whole by its formula as in the eager model (``exported.whole``)."""

    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        return super().call_function(whole(target), args, kwargs)


class _Run:
    """One run of the graph: its nodes in order, each in the scopes its stack names."""

    def __init__(self, root: _Regrouped, graph_module: torch.fx.GraphModule, inputs: list[Any]) -> None:
        self.root = root
        self.nodes = list(graph_module.graph.nodes)
        self.index = {node: at for at, node in enumerate(self.nodes)}
        self.stacks = root._stacks
        self.interpreter = _Interpreter(graph_module)
        self.interpreter.args_iter = iter(inputs)
        self.at = 0
        self.output: Any = None
        self.anchors = self._anchors()

    def _anchors(self) -> list[int]:
        """For each node, the node whose stack says where it runs: itself, or for a computing
        node that records no module (a quantize node ``convert_pt2e`` put between two ops of
        one layer), the next node that records one (or the output): so it runs inside the
        call it sits in, which it does not split in two, and at the root between calls."""
        anchors = list(range(len(self.nodes)))
        following = len(self.nodes) - 1
        for at in reversed(range(len(self.nodes))):
            node = self.nodes[at]
            unrecorded = node.op in ("call_function", "call_method") and not node.meta.get("nn_module_stack")
            if unrecorded and self.root._placed[at]:
                anchors[at] = following
            elif self.root._placed[at]:
                following = at
        return anchors

    def within(self, depth: int, key: str) -> list[Any]:
        """Run nodes from the current one while they ran in this call (``key``, ``depth``
        scopes below the root; the root's call takes every node): a node whose stack goes
        deeper calls the next scope, which runs its own. Returns the values made here
        that later nodes read."""
        start = self.at
        while self.at < len(self.nodes) and not self._outside(self.at, depth, key):
            stack = self.stacks[self.at]
            if self._recorded(self.at) and len(stack) > depth:  # it ran in a module inside this one
                child_key, path = stack[depth]
                end = self._end(depth + 1, child_key)
                self.root.get_submodule(path)(self, depth + 1, child_key, self._read_from_before(end))
                continue
            self._run(self.nodes[self.at])
        return self._read_after(start)

    def _recorded(self, at: int) -> bool:
        return self.root._placed[at]

    def _outside(self, at: int, depth: int, key: str) -> bool:
        at = self.anchors[at]
        stack = self.stacks[at]
        return bool(depth) and self._recorded(at) and (len(stack) < depth or stack[depth - 1][0] != key)

    def _end(self, depth: int, key: str) -> int:
        """Where the call of ``key`` starting at the current node ends."""
        end = self.at + 1
        while end < len(self.nodes) and not self._outside(end, depth, key):
            end += 1
        return end

    def _read_from_before(self, end: int) -> list[Any]:
        """The values made before the current node that the nodes up to ``end`` read."""
        env, start = self.interpreter.env, self.at
        read = {
            source: None
            for node in self.nodes[start:end]
            for source in node.all_input_nodes
            if self.index[source] < start and source in env
        }
        return [env[source] for source in read]

    def _read_after(self, start: int) -> list[Any]:
        """The values made from ``start`` on that nodes after the current one read."""
        env = self.interpreter.env
        return [
            env[node]
            for node in self.nodes[start : self.at]
            if node in env and any(self.index[user] >= self.at for user in node.users)
        ]

    def _run(self, node: torch.fx.Node) -> None:
        interpreter = self.interpreter
        interpreter.env[node] = value = interpreter.run_node(node)
        for done in interpreter.user_to_last_uses.get(node, []):
            del interpreter.env[done]
        if node.op == "output":
            self.output = value
        self.at += 1
