"""``torch.export`` programs: profiled as the module tree they were exported from.

An ``ExportedProgram`` is a graph of aten ops, not a module whose submodules run: its
``module()`` runs every op at the root, so a per-layer report would show one row. torch's
``torch.export.unflatten`` rebuilds the module hierarchy (each submodule an
``InterpreterModule`` running its part of the graph), and each graph node records, in
``nn_module_stack``, the path and class of every module it ran in: the report takes the
tree from the first and the class names from the second. The program is not changed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .report import Report


def is_exported_program(value: Any) -> bool:
    export = getattr(torch, "export", None)
    kind = getattr(export, "ExportedProgram", None)
    return kind is not None and isinstance(value, kind)


def unflattened(program: Any) -> tuple[torch.nn.Module, dict[str, str]]:
    """The program's module tree (``torch.export.unflatten``) and, by qualified name, the
    class name each module had when it was exported ("" is the root)."""
    module = torch.export.unflatten(program)
    _attention_called_whole(module)
    return module, recorded_classes(program.graph)


EMPTY_STACK = "_empty_nn_module_stack"  # torch's entry for a node made with no module stack


def recorded_classes(graph: torch.fx.Graph) -> dict[str, str]:
    """By qualified name, the class name each module had when ``graph`` was recorded, from
    its nodes' ``nn_module_stack`` (a class's dotted path in a program, the class itself in
    a symbolic trace); torch's placeholder entry for a node made with no stack is none."""
    classes: dict[str, str] = {}
    for node in graph.nodes:
        for path, kind in (node.meta.get("nn_module_stack") or {}).values():
            if not str(path).startswith(EMPTY_STACK):
                name = kind.__name__ if isinstance(kind, type) else str(kind).rsplit(".", 1)[-1]
                classes.setdefault(str(path), name)
    return classes


def _attention_called_whole(module: torch.nn.Module) -> None:
    """Make each ``aten.scaled_dot_product_attention`` node of the unflattened graphs call
    ``F.scaled_dot_product_attention`` (same arguments), which the profile counts whole, by
    its one formula, as in the eager model; called as the aten op it would reach the
    profile as its math decomposition (bmm, softmax, a mask's ``where`` and add). Only the
    unflattened copy's graphs change, not the program's."""
    for submodule in module.modules():
        graph = getattr(submodule, "graph", None)
        if not isinstance(graph, torch.fx.Graph):
            continue
        nodes = [
            node
            for node in graph.nodes
            if node.op == "call_function" and whole(node.target) is not node.target
        ]
        for node in nodes:
            node.target = whole(node.target)
        finalize = getattr(submodule, "finalize", None)
        if nodes and callable(finalize):
            finalize()  # its generated code too, which torch runs instead of the graph under dynamo


def whole(target: Any) -> Any:
    """The function a graph node calls for ``target``: ``F.scaled_dot_product_attention``
    (counted whole) for ``aten.scaled_dot_product_attention``, else ``target``."""
    if target is torch.ops.aten.scaled_dot_product_attention.default:
        return torch.nn.functional.scaled_dot_product_attention
    return target


class _KeptErrors(logging.Handler):
    """Keeps the exceptions a logger logs, and shows none of its records."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


def load(path: str) -> Any:
    """``torch.export.load(path)``. When it fails, torch raises a RuntimeError that points
    to "the warnings above" and logs the real error (an output class the pytree does not
    know, a bad archive): that error is raised here, from torch's, and nothing is logged."""
    logger = logging.getLogger("torch.export")  # it has its own stderr handler
    kept = _KeptErrors()
    handlers, level, propagate = logger.handlers, logger.level, logger.propagate
    logger.handlers, logger.propagate = [kept], False
    logger.setLevel(logging.WARNING)
    try:
        return torch.export.load(path)
    except Exception as error:
        if kept.errors:
            raise kept.errors[-1] from error
        raise
    finally:
        logger.handlers, logger.propagate = handlers, propagate
        logger.setLevel(level)


def call_form(program: Any) -> tuple[int, tuple[str, ...]]:
    """How the program is called: its number of positional inputs and its keyword names."""
    positional, keywords = program.call_spec.in_spec.children()
    return positional.num_children, tuple(keywords.context or ())


def check_call_form(
    form: tuple[int, tuple[str, ...]],
    positional: int,
    keywords: list[str],
    hint: str = "name a keyword input as NAME:SHAPE",
) -> None:
    """The inputs given fit the program's call: as many positional ones, the same keyword
    names (a program takes exactly what it was exported with); ValueError naming both."""
    count, names = form
    if positional == count and sorted(keywords) == sorted(names):
        return
    raise ValueError(
        f"this torch.export program takes {_described(count, names)} input(s), as it was exported, "
        f"not {_described(positional, keywords)} ({hint})"
    )


def _described(count: int, names: Any) -> str:
    parts = [f"{count} positional"] if count or not names else []
    parts += [f"keyword {', '.join(names)}"] if names else []
    return " and ".join(parts)


def check_inputs_fit(program: Any, inputs: Any, input_shape: Any) -> None:
    """``profile(program, inputs)`` (or ``input_shape=``): the inputs fit the program's call
    (``check_call_form``), else a ValueError naming what it takes, before anything runs
    (torch's own error, from inside the run, names tree specs). A tensor is one positional
    input, a tuple or list as many, a dict keyword inputs; a spec named ``NAME:SHAPE`` is
    a keyword input."""
    if inputs is None and input_shape is None:
        return
    if inputs is not None:
        if isinstance(inputs, Mapping):
            positional, keywords = 0, [str(key) for key in inputs]
        else:
            positional, keywords = (len(inputs) if isinstance(inputs, (tuple, list)) else 1), []
    else:
        from .inputs import as_specs

        specs = as_specs(input_shape)
        positional, keywords = (
            sum(not spec.name for spec in specs),
            [spec.name for spec in specs if spec.name],
        )
    form = call_form(program)
    _refuse_mixed_call(form)
    check_call_form(form, positional, keywords, "give positional inputs as a tuple, keyword ones as a dict")


def _refuse_mixed_call(form: tuple[int, tuple[str, ...]]) -> None:
    """``profile`` passes a tuple (positional inputs) or a dict (keyword ones), never both."""
    count, names = form
    if count and names:
        raise ValueError(
            f"this torch.export program takes {_described(count, names)} input(s), as it was exported, "
            "and profile() passes a tuple (positional inputs) or a dict (keyword inputs), not both: "
            "export the model with its inputs all positional or all by keyword"
        )


def example_inputs(program: Any) -> Any:
    """The inputs the program was exported with, as ``profile`` takes them: a tuple of
    positional arguments, or a dict of keyword arguments (None when there are none)."""
    stored = getattr(program, "example_inputs", None)
    if not stored:
        return None
    args, kwargs = stored
    if args and kwargs:
        _refuse_mixed_call(call_form(program))
    return dict(kwargs) if kwargs else tuple(args)


def refuse_train(train: bool | None, what: str = "a torch.export program") -> None:
    """A program runs the graph it was exported with (a batch norm's batch statistics or
    running ones, dropout or none): ``train=`` cannot change it, so asking for a mode is
    refused rather than reported as the mode while another graph is counted. ``what``:
    the model, as the message names it."""
    if train is not None:
        raise ValueError(
            f"train={train!r}: {what} runs in the mode it was exported in, and "
            "train= cannot change it; export the model in the mode to count (model.train() or "
            ".eval() before torch.export.export)"
        )


def counted_as_exported(count: Callable[[], Report], classes: dict[str, str]) -> Report:
    """``count()`` (a profile of the unflattened tree) with its rows, or the module its
    error names, called by their exported classes."""
    from .api import ModelError

    try:
        report = count()
    except ModelError as error:
        raise ModelError(with_exported_class_names(str(error), classes)) from error.__cause__
    return with_exported_classes(report, classes)


def with_exported_classes(report: Report, classes: dict[str, str]) -> Report:
    """Give each module of ``report`` the class name it had when exported (the
    unflattened tree's modules are all ``InterpreterModule``)."""
    for name, stats in report.modules.items():
        kind = classes.get(name)
        if kind is not None:
            stats.type = kind
    return report


# the classes of torch's unflattened tree and of a regrouped flat graph (flat_graph.py)
_UNFLATTENED = re.compile(r"in module '([^']*)' \((?:UnflattenedModule|InterpreterModule|_Regrouped|_Scope)")


def with_exported_class_names(message: str, classes: dict[str, str]) -> str:
    """An error message naming a module of the unflattened tree by its exported class."""

    def named(match: re.Match[str]) -> str:
        label = match.group(1)
        kind = classes.get("" if label == "(root)" else label, "InterpreterModule")
        return f"in module '{label}' ({kind}"

    return _UNFLATTENED.sub(named, message)
