"""The further names of a module held by more than one parent (a shared module).

``named_modules()`` gives each module once, under its first name. A module held by
two parents (``self.a = shared; self.b = nn.Sequential(shared, ...)``) is also reachable
as ``b.0``: that is a further name, and so is every path below it (``b.0.x`` when the
shared module has children). The module stack charges a call made through a parent
to the name it has there, so the profile needs these names; a model without shared
modules has none, found by one count of its tree's edges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .model_walk import ModelWalk

MAX_FURTHER_NAMES = 10_000  # a model whose shared modules make more paths keeps the rest under first names


def further_names(walk: ModelWalk) -> dict[str, tuple[torch.nn.Module, str]]:
    """Each further name of a module -> (the module, its first name), in the order a
    depth-first walk of every path meets them (a name after its parent's). Empty when
    no module is held twice, or when the model walks its children its own way. A
    parent holding one module under two keys (``self.head = self.fc``) gives it no
    further name: its calls cannot tell the keys apart, so they go to the first. A
    profile asks ``ModelWalk.further_names``, which finds them once."""
    modules = walk.modules
    if walk.scripted or any(kind.named_modules is not torch.nn.Module.named_modules for kind in walk.kinds):
        return {}
    edges = sum(child is not None for module in modules for child in module._modules.values())
    if edges == len(modules) - 1:  # a tree: every module has one parent
        return {}
    first = dict(zip(map(id, modules), walk.names, strict=True))
    found: dict[str, tuple[torch.nn.Module, str]] = {}
    # (module, name, the modules on its path): iterative, so a deep model needs no deep recursion
    todo: list[tuple[torch.nn.Module, str, frozenset[int]]] = [(walk.model, "", frozenset({id(walk.model)}))]
    while todo and len(found) < MAX_FURTHER_NAMES:
        module, name, path = todo.pop()
        prefix = name + "." if name else ""
        below: list[tuple[torch.nn.Module, str, frozenset[int]]] = []
        held: set[int] = set()  # a parent holding a module under two keys calls it by the first
        for key, child in module._modules.items():
            first_name = first.get(id(child)) if child is not None else None
            if child is None or first_name is None or id(child) in path or id(child) in held:
                continue  # (a module holding its ancestor makes no new path)
            held.add(id(child))
            child_name = prefix + key
            if first_name != child_name:
                found[child_name] = (child, first_name)
            below.append((child, child_name, path | {id(child)}))
        todo.extend(reversed(below))  # depth first, in the order the children are held
    return found


def first_names(walk: ModelWalk) -> dict[str, str]:
    """Each further name of a shared module -> its first name (what facts read from the
    model's ``named_modules()`` know it by)."""
    return {name: first for name, (_, first) in walk.further_names.items()}
