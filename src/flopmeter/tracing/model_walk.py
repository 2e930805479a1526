"""One walk of a model's module tree, shared by every step of a profile that needs it.

Before its run, a profile asks the model the same questions many times: its modules
and their names (the module stack, the compression facts, the state guard), its
parameters (the lazy-parameter check, the guard) and buffers (the roles the recorder
gives tensors). Each ``named_modules()`` walk costs about 0.1 ms on a 200-module
model, a fifth of a small model's forward; ``ModelWalk`` reads the tree once and
keeps the answers.

A walk is true while the model is unchanged: ``profile`` takes it with the model's
lock held (``modules.exclusive``) and runs no model code before the trace, and the
state guard puts everything it saved back after each run (so a second run, with
values after a shapes-only one failed, starts from the same state).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from itertools import chain
from operator import attrgetter

import torch
from torch.nn.utils.parametrize import ParametrizationList
from torch.utils._python_dispatch import is_traceable_wrapper_subclass

from .attributes import AttributeSnapshot
from .shared_names import further_names
from .sparse_layouts import held_sparse_tensors

_PARAMETERS = attrgetter("_parameters")
_BUFFERS = attrgetter("_buffers")
_PLAIN = frozenset({torch.nn.Parameter, torch.Tensor})  # no subclass: nothing stored inside


class ModelWalk:
    """The modules of ``model`` in ``named_modules()`` order (each once, by its first
    name), their parameters and buffers in ``parameters()`` / ``buffers()`` order."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.names: list[str] = []
        self.modules: list[torch.nn.Module] = []
        _add_modules(model, "", self.names, self.modules, set())
        kinds = {type(module) for module in self.modules}
        self.kinds: set[type[torch.nn.Module]] = kinds  # the classes of its modules
        # a class may walk its children its own way, and TorchScript keeps its
        # parameters outside ``_parameters``: torch's own walks answer for them
        self.scripted = any(issubclass(kind, torch.jit.ScriptModule) for kind in kinds)
        if self.scripted or any(kind.named_modules is not torch.nn.Module.named_modules for kind in kinds):
            named = list(model.named_modules())
            self.names = [name for name, _ in named]
            self.modules = [module for _, module in named]
            self.kinds = {type(module) for module in self.modules}

    @cached_property
    def parameters(self) -> list[torch.nn.Parameter]:
        """What ``model.parameters()`` yields: each parameter once, by its first module."""
        if self.scripted:
            return list(self.model.parameters())
        return _unique(chain.from_iterable(map(dict.values, map(_PARAMETERS, self.modules))))  # type: ignore[return-value]

    @cached_property
    def buffers(self) -> list[torch.Tensor]:
        """What ``model.buffers()`` yields."""
        if self.scripted:
            return list(self.model.buffers())
        return _unique(chain.from_iterable(map(dict.values, map(_BUFFERS, self.modules))))

    @cached_property
    def roles(self) -> dict[int, str]:
        """``id`` -> "param"/"buffer" for every parameter and buffer (a tensor that is
        both is a param); a sparse tensor held in a plain attribute is a buffer. "stored"
        for what a compressed weight is stored as (``stored_tensors``): the recorder then
        marks what ops build from them alone as "rebuilt" (``TensorMeta.role``)."""
        roles = dict.fromkeys(map(id, held_sparse_tensors(self.attributes.tensors)), "buffer")
        roles.update(dict.fromkeys(map(id, self.buffers), "buffer"))
        roles.update(dict.fromkeys(map(id, self.parameters), "param"))
        roles.update(dict.fromkeys(map(id, stored_tensors(self.modules)), "stored"))
        return roles

    @cached_property
    def attributes(self) -> AttributeSnapshot:
        """Every module's ``__dict__`` as it is now (what the state guard puts back; the
        compression facts ask it whether any module holds a tensor in a plain attribute)."""
        return AttributeSnapshot(self.modules)

    @cached_property
    def further_names(self) -> dict[str, tuple[torch.nn.Module, str]]:
        """A shared module's further names (``b.0`` for a module first named ``a``) ->
        (the module, its first name): ``shared_names.further_names``, found once for the
        module stack, the module tree and the overhead classifier."""
        return further_names(self)

    def module(self, name: str) -> torch.nn.Module | None:
        """The module of this qualified name ("" for the model), None if there is none.
        A shared module's further name (``b.0``, first named ``a``) is its path too."""
        names = self.names
        if name in names:
            return self.modules[names.index(name)]
        try:
            return self.model.get_submodule(name)
        except AttributeError:
            return None

    def module_ids(self) -> dict[int, str]:
        """``id`` of each module -> its name."""
        return dict(zip(map(id, self.modules), self.names, strict=True))


def stored_tensors(modules: Iterable[torch.nn.Module]) -> list[torch.Tensor]:
    """The tensors a compressed weight is stored as, which its module's forward rebuilds
    the weight from: the inner tensors of a tensor-subclass parameter (torchao's ``qdata``,
    ``scale``, ``zero_point``; nested subclasses unwrapped), a ``torch.nn.utils.prune`` mask
    (the ``NAME_mask`` buffer beside a ``NAME_orig`` parameter) and a parametrization's
    originals (``parametrizations.NAME.original``, ``original0``, ...; a buffer's
    parametrization keeps them as buffers). A float model holds none (one pass over the
    modules' parameter dicts)."""
    found: list[torch.Tensor] = []
    for module in modules:
        if type(module) is ParametrizationList:
            originals = (*module._parameters.values(), *module._buffers.values())
            found.extend(t for t in originals if t is not None)
            continue
        params = module._parameters
        if not params:
            continue
        for name, param in params.items():
            if type(param) in _PLAIN or param is None:
                if name.endswith("_orig"):
                    mask = module._buffers.get(name[: -len("_orig")] + "_mask")
                    if mask is not None:
                        found.append(mask)
            elif is_traceable_wrapper_subclass(param):
                found.extend(_inner(param))
    return found


def stored_bytes(tensor: torch.Tensor) -> int:
    """The bytes ``tensor`` is stored in: a wrapper subclass's inner tensors (``_inner``),
    else its elements x its itemsize."""
    if type(tensor) not in _PLAIN and is_traceable_wrapper_subclass(tensor):
        return sum(inner.numel() * inner.element_size() for inner in _inner(tensor))
    return tensor.numel() * tensor.element_size()


def _inner(tensor: torch.Tensor) -> list[torch.Tensor]:
    """The plain tensors a wrapper subclass holds (``__tensor_flatten__``), nested ones unwrapped."""
    names, _ = tensor.__tensor_flatten__()  # type: ignore[attr-defined]
    found: list[torch.Tensor] = []
    for name in names:
        inner = getattr(tensor, name, None)
        if isinstance(inner, torch.Tensor):
            found.extend(_inner(inner) if is_traceable_wrapper_subclass(inner) else [inner])
    return found


def _add_modules(
    module: torch.nn.Module,
    name: str,
    names: list[str],
    modules: list[torch.nn.Module],
    seen: set[torch.nn.Module],
) -> None:
    """``named_modules()``'s walk (depth first, a module once, ``None`` children
    skipped), as a plain recursion: about twice as fast as its nested generators."""
    seen.add(module)
    names.append(name)
    modules.append(module)
    prefix = name + "." if name else ""
    for key, child in module._modules.items():
        if child is not None and child not in seen:
            _add_modules(child, prefix + key, names, modules, seen)


def _unique(tensors: Iterable[torch.Tensor | None]) -> list[torch.Tensor]:
    """The tensors once each, in first-seen order, without ``None``s (by ``id``: a
    tensor's own hash is a Python call)."""
    found = list(tensors)
    unique = dict(zip(map(id, found), found, strict=True))
    unique.pop(id(None), None)
    return list(unique.values())  # type: ignore[arg-type]
