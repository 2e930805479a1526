"""The modules' ``__dict__`` entries, saved before a run and put back after it.

This runs for every module of every profile (a 200-module model holds about 4,400
entries, most of them torch's empty hook dicts), so it works in bulk. The run gets a
copy of each module's ``__dict__`` to work on (``swap_in``) and the module gets its
own dict back afterwards, untouched: nothing to compare entry by entry. The lists,
dicts and sets held there are the same objects in both, so their contents are saved,
and after the run a few passes over all of them at once (C loops: ``map``,
``itertools.chain``) find whether any changed; only those are put back.
"""

from __future__ import annotations

import types
from collections import OrderedDict
from itertools import chain, compress, repeat
from operator import eq, is_, methodcaller, not_
from typing import Any

import torch

from .events import PLAIN_TYPES

_VALUES = methodcaller("values")  # an OrderedDict's values in its own order
_SET_DICT = object.__setattr__  # binds a module's ``__dict__`` (``nn.Module.__setattr__`` would not)


class AttributeSnapshot:
    """Every module's class and ``__dict__`` and, for each list, dict and set held there directly,
    its contents (shallow: the same elements); likewise the ``__dict__`` of each plain
    object held there (``self.state``), and containers nested two levels in any of these.

    ``tensors``: each tensor held in a module's ``__dict__`` directly, in one of those
    containers (parameters and buffers live in ``_parameters`` / ``_buffers``) or in a
    tuple, once; the state of each ``torch.Generator`` held there is put back by
    ``restore``. ``holds_objects``: whether some module holds a tensor or a
    ``torch.ScriptObject`` (a packed weight) directly in a plain attribute.
    """

    def __init__(self, modules: list[torch.nn.Module]) -> None:
        self._modules = modules
        self._dicts = [module.__dict__ for module in modules]
        # a module's class is not in its ``__dict__``: torch's parametrizations change it
        # (``register_parametrization`` makes a Linear a ParametrizedLinear), as may a forward
        self._classes = list(map(type, modules))
        # and each parametrized module has a class of its own holding a property per
        # parametrized tensor: registering or removing one in a forward edits that class
        self._own_classes = [
            (kind, dict(vars(kind))) for kind in set(self._classes) if _parametrized_class(kind)
        ]
        # locals in the loop below (it runs for every entry of every module)
        empty: list[Any] = []  # containers empty before the run (mostly hook dicts)
        full: list[dict[Any, Any]] = []  # dicts that held something
        lists: list[tuple[Any, list[Any]]] = []  # lists and sets that held something
        direct: list[Any] = []  # entries of other types (objects, functions, tensors, ...)
        items: list[Any] = []  # tuple items
        for value in chain.from_iterable(map(dict.values, self._dicts)):
            kind = type(value)  # exact types: a dict subclass is an object like any other
            if kind is OrderedDict or kind is dict:
                if value:
                    full.append(value)
                else:
                    empty.append(value)
            elif kind in PLAIN_TYPES:  # most attributes: flags, sizes, names
                continue
            elif kind is tuple:
                items.extend(value)
            elif kind is list or kind is set:
                if value:
                    lists.append((value, list(value)))
                else:
                    empty.append(value)
            else:
                direct.append(value)
        for attributes in _object_dicts(direct):  # ``self.state.cache = ...`` in a forward
            (full if attributes else empty).append(attributes)
        _add_nested(empty, full, lists)
        self._empty, self._full, self._lists = empty, full, lists
        self._sizes = list(map(len, self._full))
        self._keys = list(chain.from_iterable(self._full))
        self._values = list(chain.from_iterable(map(_VALUES, self._full)))
        self.holds_objects = any(map(isinstance, direct, repeat((torch.Tensor, torch.ScriptObject))))
        if PLAIN_TYPES.issuperset(map(type, items)):  # tuples of sizes and flags (nearly all)
            items = []
        held = [*direct, *items, *self._values, *chain.from_iterable(saved for _, saved in self._lists)]
        tensors = list(compress(held, map(isinstance, held, repeat(torch.Tensor))))
        self.tensors: list[torch.Tensor] = list(dict(zip(map(id, tensors), tensors, strict=True)).values())
        # a module's own random generators (noise injection): a run's draws are undone
        self._generators = [(g, g.get_state()) for g in _generators(held)]

    def swap_in(self) -> None:
        """Give every module a copy of its ``__dict__`` to run with (the same entries),
        keeping its own dict as it is now (call before the run)."""
        if len(set(map(id, self._dicts))) == len(self._dicts):
            copies = list(map(dict.copy, self._dicts))
        else:  # modules sharing one dict share one copy
            by_id = {id(attributes): attributes.copy() for attributes in self._dicts}
            copies = [by_id[id(attributes)] for attributes in self._dicts]
        list(map(_SET_DICT, self._modules, repeat("__dict__"), copies))

    def restore(self) -> None:
        """Give every module its own ``__dict__`` back and put back the contents of the
        containers held there that changed (compared by identity: ``==`` on tensors
        would compare values), touching nothing else."""
        list(map(_SET_DICT, self._modules, repeat("__dict__"), self._dicts))
        if not all(map(is_, map(type, self._modules), self._classes)):
            for module, kind in zip(self._modules, self._classes, strict=True):
                if type(module) is not kind:
                    _SET_DICT(module, "__class__", kind)
        for kind, entries in self._own_classes:
            _restore_class(kind, entries)
        for generator, state in self._generators:
            generator.set_state(state)
        if any(self._empty):
            for container in self._empty:
                if container:
                    container.clear()
        if not self._containers_unchanged():
            start = 0
            for container, size in zip(self._full, self._sizes, strict=True):
                before = dict(
                    zip(self._keys[start : start + size], self._values[start : start + size], strict=True)
                )
                start += size
                if not _same_entries(container, before):
                    container.clear()
                    container.update(before)
        for container, items in self._lists:
            if type(container) is list:
                if len(container) != len(items) or not all(map(is_, container, items)):
                    container[:] = items
            elif container != set(items):
                container.clear()
                container.update(items)

    def _containers_unchanged(self) -> bool:
        """Whether every dict that held something holds the same entries, in the same order
        (keys by identity too: an equal key that is another string object only sends the
        dict to the exact comparison)."""
        full = self._full
        return (
            list(map(len, full)) == self._sizes
            and all(map(is_, chain.from_iterable(map(_VALUES, full)), self._values))
            and all(map(is_, chain.from_iterable(full), self._keys))
        )


def _object_dicts(direct: list[Any]) -> list[dict[str, Any]]:
    """The ``__dict__`` of each plain object held directly in a module attribute (a
    config, a state or cache holder, an attention processor), once each: a forward that
    sets ``self.state.cache = mask`` on a shapes-only run would leave a meta tensor there.
    Saved and put back like the dicts held directly; modules, tensors, classes, functions
    and Python modules are not such objects (their state is saved elsewhere or is code)."""
    kinds = {kind: _plain_object_class(kind) for kind in set(map(type, direct))}
    if not any(kinds.values()):  # nearly always: torchvision models hold none
        return []
    found: dict[int, dict[str, Any]] = {}
    for value in direct:
        if kinds[type(value)]:
            try:  # past a class's own ``__getattr__`` / ``__getattribute__``
                attributes = object.__getattribute__(value, "__dict__")
            except AttributeError:  # no ``__dict__`` (slots, C types)
                continue
            if type(attributes) is dict:
                found[id(attributes)] = attributes
    return list(found.values())


def held_object_dicts(modules: list[torch.nn.Module]) -> list[dict[str, Any]]:
    """The ``__dict__``s of the plain objects ``modules`` hold directly, which a profile
    saves and puts back besides the modules' own (``_object_dicts``): two profiles of
    models holding one such object must take turns with it, as with a shared module,
    else the second saves what the first's run put there and puts it back after the first
    took it away (a meta tensor left on a shared object)."""
    values = list(chain.from_iterable(map(dict.values, map(vars, modules))))
    kinds = set(map(type, values)) - _NOT_OBJECTS
    if not any(map(_plain_object_class, kinds)):  # nearly always: no object to lock
        return []
    skipped = _NOT_OBJECTS.__contains__
    return _object_dicts(list(compress(values, map(not_, map(skipped, map(type, values))))))


_NOT_OBJECTS = frozenset({*PLAIN_TYPES, dict, OrderedDict, list, set, tuple})


_CODE = (type, types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType)


def _plain_object_class(kind: type) -> bool:
    return not issubclass(kind, (torch.nn.Module, torch.Tensor, torch.Generator, torch.ScriptObject, *_CODE))


_CONTAINERS = {dict, OrderedDict, list, set}
_NESTED_LEVELS = 2


def _add_nested(empty: list[Any], full: list[dict[Any, Any]], lists: list[tuple[Any, list[Any]]]) -> None:
    """Save the dicts, lists and sets held inside the saved ones too, two levels down
    (``self.caches = {"masks": {}}``): a shapes-only run that fills
    ``self.caches["masks"][shape]`` would leave a meta tensor there, and the model's next
    real call would fail on it (docs/probe-8/trace.md P8-5)."""
    inner = [*chain.from_iterable(map(_VALUES, full)), *chain.from_iterable(saved for _, saved in lists)]
    for _ in range(_NESTED_LEVELS):
        found = list(compress(inner, map(_CONTAINERS.__contains__, map(type, inner))))
        inner = []
        for value in found:
            if not value:
                empty.append(value)
            elif type(value) is list or type(value) is set:
                lists.append((value, list(value)))
                inner.extend(value)
            else:
                full.append(value)
                inner.extend(value.values())


def _parametrized_class(kind: type) -> bool:
    """Whether torch's ``parametrize`` made ``kind`` for one module (``ParametrizedLinear``)."""
    return kind.__module__ == "torch.nn.utils.parametrize" and kind.__name__.startswith("Parametrized")


def _restore_class(kind: type, entries: dict[str, Any]) -> None:
    """Give a class made for one parametrized module the entries it had (``vars``)."""
    now = vars(kind)
    if now.keys() == entries.keys() and all(now[name] is value for name, value in entries.items()):
        return
    for name in [name for name in now if name not in entries]:
        delattr(kind, name)
    for name, value in entries.items():
        if now.get(name) is not value:
            setattr(kind, name, value)


def _generators(held: list[Any]) -> list[torch.Generator]:
    """The ``torch.Generator``s among ``held``. ``isinstance(x, torch.Generator)`` is a
    Python call (torch's custom-class metaclass), about 0.3 us each: over the ~1,400
    objects a 200-module model holds (its tensors, child modules, sizes) that was 2 % of
    its profile. It is asked only for the objects of a class that may be one: tensors,
    modules and plain values are not, unless their class also derives from Generator."""
    kinds = {kind: _may_be_generator(kind) for kind in set(map(type, held))}
    if not any(kinds.values()):  # nearly always: no step per object
        return []
    return [g for g in held if kinds[type(g)] and isinstance(g, torch.Generator)]


def _may_be_generator(kind: type) -> bool:
    return issubclass(kind, torch.Generator) or not (
        kind in PLAIN_TYPES or issubclass(kind, (torch.Tensor, torch.nn.Module))
    )


def _same_entries(now: dict[Any, Any], before: dict[Any, Any]) -> bool:
    """The same keys in the same order, each holding the same object."""
    return (
        len(now) == len(before)
        and all(map(is_, now.values(), before.values()))
        and all(map(eq, now.keys(), before.keys()))
    )
