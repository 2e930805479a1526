"""``flopmeter.profile``: run a model once and return its Report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from itertools import chain
from typing import Any, TypeVar, cast

import torch
from torch.utils._pytree import tree_flatten, tree_map

from . import __version__
from .aggregate import ModuleFormula, OpFormula, build_report, safe_extra_repr
from .batch import batch_after_the_run, batch_before_the_run
from .compression import classifier as overhead_classifier
from .compression import finish as finish_compression
from .compression import prepare as prepare_compression
from .exported import check_inputs_fit as check_program_inputs
from .exported import counted_as_exported, example_inputs, is_exported_program, refuse_train, unflattened
from .flat_graph import check_inputs_fit as check_graph_inputs
from .flat_graph import records_modules, regrouped
from .formula_checks import checked_module_formula, checked_op_formula
from .inputs import build_inputs, describe_inputs, resolve_dtype
from .notices import FlopmeterWarning
from .registry import CountOptions
from .report import Report
from .tracing.attributes import held_object_dicts
from .tracing.fast_path import warn_padded_fast_path
from .tracing.model_walk import ModelWalk
from .tracing.modules import exclusive, take_turns, uncompiled
from .tracing.recorder import gc_paused, is_meta_limitation
from .tracing.run import Trace, TraceFailure, trace_model
from .tracing.shared_names import first_names
from .tracing.sparse_layouts import has_sparse_tensor, held_sparse_tensors

Inputs = torch.Tensor | tuple[Any, ...] | list[Any] | Mapping[str, Any]

_OP_FORMULAS: dict[str, OpFormula] = {}
_MODULE_FORMULAS: dict[type, ModuleFormula] = {}


class ModelError(RuntimeError):
    """The model's own forward (or backward) raised while being profiled.

    The message names the module that was running and the input shapes; the
    original exception is chained as ``__cause__``.
    """


def register_formula(target: Any, formula: Callable[..., Any]) -> None:
    """Give flopmeter a formula for a custom op or module; it takes precedence.

    ``target`` is an op name (``"mylib.fused_gelu"``, ``"aten.addmm"``), a torch op
    (``torch.ops.mylib.fused_gelu``), or an ``nn.Module`` subclass.
    An op formula receives the ``OpEvent`` (shapes of inputs and outputs); a module
    formula receives ``(module, inputs, output)`` with tensors replaced by
    ``TensorMeta``. Either returns a ``flopmeter.Cost`` or an int (exact FLOPs), never
    negative. A non-callable, a formula that cannot take those arguments, or an aten
    op name that does not exist is refused here (an unknown op of another namespace
    warns); a bad result, or an exception, raises ``FormulaError`` naming the op.
    The ops inside a module with a formula are not counted separately.
    """
    if isinstance(target, type) and issubclass(target, torch.nn.Module):
        _MODULE_FORMULAS[target] = checked_module_formula(target, formula)
    else:
        _OP_FORMULAS[op_name(target)] = checked_op_formula(op_name(target), formula)


def unregister_formula(target: Any) -> None:
    """Remove a formula given with ``register_formula``."""
    if isinstance(target, type):
        _MODULE_FORMULAS.pop(target, None)
    else:
        _OP_FORMULAS.pop(op_name(target), None)


def op_name(target: Any) -> str:
    """``"namespace.name"`` of a torch op, op overload or op name string."""
    if isinstance(target, str):
        return target if "." in target else "aten." + target
    packet = getattr(target, "overloadpacket", target)
    namespace = getattr(packet, "_qualified_op_name", "").split("::")[0] or getattr(target, "namespace", "")
    name = getattr(packet, "__name__", None)
    if not namespace or not name:
        raise TypeError(f"expected an op name, a torch op or an nn.Module subclass; got {target!r}")
    return f"{namespace}.{name}"


_Function = TypeVar("_Function", bound=Callable[..., Any])


def _one_profile_per_model(profile: _Function) -> _Function:
    """Profiles of one model take turns from start to end (``exclusive``), so the walk of
    the model a profile takes first stays true until its runs end."""

    @wraps(profile)
    def locked(model: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(model, torch.nn.Module):
            return profile(model, *args, **kwargs)  # which refuses it
        with exclusive(uncompiled(model)):
            return profile(model, *args, **kwargs)

    return cast(_Function, locked)


def _exported_programs_as_modules(profile: _Function) -> _Function:
    """A ``torch.export.ExportedProgram`` is profiled as its unflattened module tree, with
    the class names it was exported with, on its example inputs unless given others
    (``exported.py``)."""

    @wraps(profile)
    def unexported(model: Any, inputs: Any = None, **kwargs: Any) -> Any:
        graph = uncompiled(model) if isinstance(model, torch.nn.Module) else model
        if records_modules(graph):  # a flat exported graph (compiled or not): a row per layer it records
            refuse_train(kwargs.get("train"), "a flat graph (program.module(), PT2E, torch.fx)")
            check_graph_inputs(graph, inputs, kwargs.get("input_shape"))
            module, classes = regrouped(graph)
            kwargs["name"] = kwargs.get("name") or classes.get("", type(graph).__name__)
            return counted_as_exported(lambda: profile(module, inputs, **kwargs), classes)
        if not is_exported_program(model):
            return profile(model, inputs, **kwargs)
        refuse_train(kwargs.get("train"))
        check_program_inputs(model, inputs, kwargs.get("input_shape"))
        module, classes = unflattened(model)
        if inputs is None and kwargs.get("input_shape") is None:
            inputs = example_inputs(model)
        if kwargs.get("name") is None:
            kwargs["name"] = classes.get("", "ExportedProgram")
        return counted_as_exported(lambda: profile(module, inputs, **kwargs), classes)

    return cast(_Function, unexported)


@_exported_programs_as_modules
@gc_paused()  # the trace's many small objects are freed before the collector runs
@_one_profile_per_model
def profile(
    model: torch.nn.Module | torch.export.ExportedProgram,
    inputs: Inputs | None = None,
    *,
    input_shape: Any = None,
    input_dtype: str | torch.dtype | None = None,
    batch_size: int | None = None,
    backward: bool = False,
    train: bool | None = None,
    causal: str = "full",
    shapes_only: bool | None = None,
    custom_formulas: Mapping[Any, Callable[..., Any]] | None = None,
    name: str | None = None,
    compression: Any = None,
) -> Report:
    """Count the FLOPs, MACs, params and bytes of one call of ``model`` (an ``nn.Module``,
    or a ``torch.export.ExportedProgram``: counted as its unflattened module tree, on the
    inputs it was exported with unless ``inputs`` / ``input_shape`` say otherwise).

    ``inputs``: a tensor (``model(x)``), a tuple/list (``model(*inputs)``) or a dict
    (``model(**inputs)``). Or ``input_shape``: a shape such as ``(1, 3, 224, 224)``,
    a spec string ``"input_ids:1x128:int64"``, or a list of them; the tensors are
    built on the model's device (meta models get meta float inputs and real integer
    and mask inputs). Float inputs take ``input_dtype`` (a name such as "float16" or a
    torch.dtype), by default the model's floating dtype; for a shapes-only count they are
    built on meta, never allocated. ``batch_size`` (positive) defaults to the first
    input's leading dimension.
    ``backward=True`` also runs and counts the backward pass: of the output's ``loss``
    when it holds one that requires grad, else of the sum of its outputs. ``train``: run in train
    mode (dropout, batch statistics) or eval mode; default eval for a forward-only
    profile (inference cost), train with ``backward``. ``causal``: "full" or "needed"
    (see CountOptions). ``shapes_only``: run the ops on meta tensors (shapes, no
    arithmetic: a fraction of a large model's forward; docs/meta.md); default: do so for forward-only
    profiles and, if the model needs values (``if x.max() > 0``), run it again for real
    (only failures of counting on meta are retried: ``needs_values``). The numbers are
    the same either way. The model runs under ``torch.no_grad()`` unless ``backward``;
    afterwards it is exactly as it was: attributes, parameters, buffers and their values,
    modes, grads, hooks (``tracing.run.ModelStateGuard``; docs/meta.md).
    ``compression``: a ``CompressionOptions`` (or dict of its fields): assumed sparsity
    or bits for the compression view, and whether overhead ops count (docs/compression.md).
    Given (``True`` for the defaults), the profile counts every weight's nonzeros for the
    view; not given, only a model holding a recognised compression (prune masks,
    quantized weights, ...) has them counted, and the view's nonzeros are otherwise unknown.

    Returns a ``Report``: ``report.params``, ``.macs``, ``.flops`` (exact FLOPs: n
    multiplications and n-1 additions per dot product, plus bias adds and elementwise
    work; ``report.flops_as("2mac")`` and others for the other conventions,
    docs/conventions.md); ``print(report)`` shows the per-layer tree. Raises ``ModelError``
    when the model's own forward (or backward) raises (the original is its ``__cause__``),
    ``ValueError`` / ``TypeError`` for arguments it cannot use; warnings are
    ``FlopmeterWarning``s.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"profile() expects a torch.nn.Module or a torch.export.ExportedProgram, got {type(model).__name__}"
        )
    model = uncompiled(model)  # a torch.compile'd module is counted as its original
    walk = ModelWalk(model)  # read once; true until the runs end (``_one_profile_per_model``)
    # with profiles of other models sharing a module, or a plain object held in one
    with take_turns([*walk.modules, *held_object_dicts(walk.modules)]):
        _refuse_lazy(walk)
        if causal not in ("full", "needed"):
            raise ValueError(f"causal must be 'full' or 'needed', got {causal!r}")
        _check_flags(backward=backward, train=train, shapes_only=shapes_only, name=name)
        if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        # weight facts, before the trace
        facts, compression_options = prepare_compression(model, compression, walk)
        op_formulas = dict(_OP_FORMULAS)
        module_formulas = dict(_MODULE_FORMULAS)
        for target, formula in (custom_formulas or {}).items():
            if isinstance(target, type) and issubclass(target, torch.nn.Module):
                module_formulas[target] = checked_module_formula(target, formula)
            else:
                op_formulas[op_name(target)] = checked_op_formula(op_name(target), formula)
        training = backward if train is None else train
        if shapes_only and backward:
            raise ValueError(
                "shapes_only=True counts a forward pass; a backward=True profile runs with values"
            )
        first_try = (not backward) if shapes_only is None else shapes_only
        if _sparse_needs_values(inputs, walk, shapes_only):
            first_try = False
        args, kwargs = _resolve_inputs(model, inputs, input_shape, input_dtype, floats_on_meta=first_try)
        _refuse_nested(args, kwargs)
        if backward:
            args, kwargs = _outside_inference_mode(args, kwargs)
        batch = batch_size if batch_size is not None else batch_before_the_run(walk, args, kwargs)

        def run(shapes: bool) -> Trace:
            return trace_model(
                model,
                args,
                kwargs,
                backward=backward,
                train=training,
                custom_types=tuple(module_formulas),
                shapes_only=shapes,
                walk=walk,
            )

        if backward:
            _check_differentiable(model, args, kwargs)
        try:
            trace, computed = run(first_try), "shapes" if first_try else "values"
        except TraceFailure as failure:
            if isinstance(failure.error, FlopmeterWarning):  # ours, raised under -W error (P11-A9)
                raise failure.error from None
            if not (first_try and shapes_only is None and needs_values(failure.error)):
                raise ModelError(
                    _failure_message(model, failure, args, kwargs, shapes_run=first_try)
                ) from failure.error
            if input_shape is not None:  # built on meta for the shapes-only attempt
                args, kwargs = _resolve_inputs(model, None, input_shape, input_dtype)
            try:  # the model needs values (it branched on a float tensor): run it for real
                trace, computed = run(False), "values"
            except TraceFailure as second:
                if isinstance(second.error, FlopmeterWarning):
                    raise second.error from None
                raise ModelError(_failure_message(model, second, args, kwargs)) from second.error
        warn_padded_fast_path(trace.events, walk.kinds, backward=backward)
        if batch_size is None:
            batch = batch_after_the_run(batch, trace, args, kwargs, walk)
        report = build_report(
            model,
            trace,
            model_name=name or type(model).__name__,
            batch_size=batch,
            inputs=_described_inputs(model, args, kwargs, built=input_shape is not None),
            options=CountOptions(causal=causal, packed=facts.packed),
            op_formulas=op_formulas,
            module_formulas=module_formulas,
            did_backward=backward,
            training=training,
            versions={"flopmeter": __version__, "torch": torch.__version__},
            overhead=overhead_classifier(facts, first_names(walk)),
            count_overhead=compression_options.count_overhead,
            walk=walk,
        )
        finish_compression(report, facts, compression_options)
        report.options["computed"] = computed  # "shapes" (meta run) or "values" (real run)
        return report


def _check_flags(*, backward: Any, train: Any, shapes_only: Any, name: Any) -> None:
    """``backward`` a bool, ``train`` and ``shapes_only`` a bool or None, ``name`` a str or
    None: a string such as ``train="yes"`` would reach torch's ``Module.train`` (a raw error
    there) or be taken as true."""
    if not isinstance(backward, bool):
        raise TypeError(f"backward must be True or False, got {backward!r}")
    for flag, value in (("train", train), ("shapes_only", shapes_only)):
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{flag} must be True, False or None, got {value!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str (the model's name in the report), got {name!r}")
    if backward and torch.is_inference_mode_enabled():
        raise ValueError(
            "backward=True cannot run under torch.inference_mode(), which turns autograd off for "
            "every tensor made in it: call profile() outside the inference_mode block"
        )


def _refuse_nested(args: Any, kwargs: Any) -> None:
    """Nested (jagged) tensors have no shape to count from, and torch cannot move them to
    meta or give their sizes: refused here, not with torch's internal errors mid-run."""
    if any(isinstance(t, torch.Tensor) and t.is_nested for t in tree_flatten((args, kwargs))[0]):
        raise ValueError(
            "nested (jagged) tensor inputs are not supported: pad them into one dense batch "
            "(torch.nested.to_padded_tensor) to count the padded work, or profile each sequence"
        )


def _sparse_needs_values(inputs: Any, walk: ModelWalk, shapes_only: bool | None) -> bool:
    """Whether an input is a sparse tensor (a GNN's adjacency: its product costs its
    nonzeros, which meta cannot know) or the model holds one (a pruned weight stored sparse,
    a fixed graph: torch runs no sparse product on meta). Such a profile runs with values;
    ``shapes_only=True`` is refused by name, not with torch's dispatch-key dump (R11b-5)."""
    if has_sparse_tensor(tree_flatten(inputs)[0]):
        what = "sparse tensor inputs: the work of a sparse product depends on the nonzeros they hold"
    elif held_sparse_tensors(walk.attributes.tensors):
        what = "a model holding sparse tensors: torch runs no sparse product on the meta device"
    else:
        return False
    if shapes_only:
        raise ValueError(f"shapes_only=True cannot count {what}; use shapes_only=False (or leave it unset)")
    return True


def _outside_inference_mode(args: Any, kwargs: Any) -> tuple[Any, Any]:
    """Inputs made under ``torch.inference_mode()`` (a data pipeline's batch) cannot be saved
    for a backward: a backward profile runs on normal copies of them (the same values; the
    caller's tensors are not touched)."""
    if not any(isinstance(t, torch.Tensor) and t.is_inference() for t in tree_flatten((args, kwargs))[0]):
        return args, kwargs

    def normal(value: Any) -> Any:
        return value.clone() if isinstance(value, torch.Tensor) and value.is_inference() else value

    return cast("tuple[Any, Any]", tree_map(normal, (args, kwargs)))


def _refuse_lazy(walk: ModelWalk) -> None:
    """Lazy modules (``nn.LazyLinear``) create their parameters in their first call;
    profiling would have to keep or undo that, so ask for one real call first."""
    lazy_class = torch.nn.parameter.UninitializedParameter  # (its isinstance is Python: asked per class)
    if not any(issubclass(kind, lazy_class) for kind in set(map(type, walk.parameters))):
        return
    lazy = [
        n
        for n, p in walk.model.named_parameters()
        if isinstance(p, torch.nn.parameter.UninitializedParameter)
    ]
    if lazy:
        raise ValueError(
            f"the model has uninitialized lazy parameters ({', '.join(repr(n) for n in lazy[:3])}"
            f"{', ...' if len(lazy) > 3 else ''}): call it once on a real input to create them, "
            "then profile it"
        )


def _resolve_inputs(
    model: torch.nn.Module,
    inputs: Inputs | None,
    input_shape: Any,
    input_dtype: str | torch.dtype | None,
    *,
    floats_on_meta: bool = False,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if inputs is not None and input_shape is not None:
        raise ValueError("give either inputs or input_shape, not both")
    if inputs is None and input_shape is None:
        raise ValueError("profile() needs inputs (a tensor, tuple or dict) or input_shape=(1, 3, 224, 224)")
    if input_dtype is not None and input_shape is None:
        raise ValueError(
            "input_dtype is for inputs built from input_shape; tensors you pass keep their own dtype"
        )
    if input_shape is not None:
        dtype = resolve_dtype(input_dtype) if input_dtype is not None else _model_float_dtype(model)
        return build_inputs(
            input_shape, device=_model_device(model), dtype=dtype, floats_on_meta=floats_on_meta
        )
    if isinstance(inputs, torch.Tensor):
        return (inputs,), {}
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    if isinstance(inputs, Mapping):  # a dict, or a tokenizer's BatchEncoding (a UserDict)
        if not all(isinstance(k, str) for k in inputs):
            raise TypeError("a dict of inputs must map argument names (str) to values")
        return (), dict(inputs)
    raise TypeError(
        f"inputs must be a tensor, a tuple/list of positional arguments or a dict of keyword "
        f"arguments; got {type(inputs).__name__}"
    )


def _described_inputs(model: torch.nn.Module, args: Any, kwargs: Any, *, built: bool) -> list[dict[str, Any]]:
    """The inputs for the report. Inputs built from input_shape for a shapes-only run
    live on meta only to save memory: they are described on the model's device."""
    described = describe_inputs(args, kwargs)
    if built:
        device = _model_device(model).type
        for entry in described:
            if entry["device"] == "meta":
                entry["device"] = device
    return described


def _model_float_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (else buffer), else of its
    first complex one (a model all complex takes complex inputs), else float32: what its
    float inputs must be for the real call to work (a half model takes half). A complex
    filter beside real layers (an FFT model) takes real inputs."""
    for kind in (torch.Tensor.is_floating_point, torch.Tensor.is_complex):
        for tensor in chain(model.parameters(), model.buffers()):  # stops at the first
            if kind(tensor):
                return tensor.dtype
    return torch.float32


def _model_device(model: torch.nn.Module, inputs: Any = None) -> torch.device:
    """The device of the model's first parameter or buffer, else of its first input
    tensor, else the CPU."""
    for tensor in chain(model.parameters(), model.buffers(), tree_flatten(inputs)[0]):  # stops at the first
        if isinstance(tensor, torch.Tensor):
            return tensor.device
    return torch.device("cpu")


# Where an error raised inside the op machinery comes from (the innermost frame): torch's
# dispatcher and checks, its meta kernels and decompositions, flopmeter's recorder. A meta
# kernel words its checks differently from the real one ("Invalid channel dimensions"
# where the CPU kernel names both shapes), and may fail where the real one would not.
_OP_MACHINERY = (
    "torch/_ops.py",
    "torch/__init__.py",
    "torch/_meta_registrations.py",
    "torch/_decomp/",
    "torch/_refs/",
    "torch/_prims",
    "torch/_subclasses/",
    "torch/utils/_python_dispatch.py",
    "torchvision/_meta_registrations.py",
    "flopmeter/tracing/",
)


def needs_values(error: BaseException) -> bool:
    """Whether a shapes-only run's error should be retried with values: a limitation of
    counting on meta (a run with values may succeed), or an error raised inside the op
    machinery, where the real kernel's message is the one to report. An error raised by
    Python code of the model (its own checks, also those of torchvision's or transformers'
    models) is reported at once: a second run would only raise it again."""
    if is_meta_limitation(error):
        return True
    frame = error.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    filename = frame.tb_frame.f_code.co_filename.replace("\\", "/")
    return any(place in filename for place in _OP_MACHINERY)


def _check_differentiable(model: torch.nn.Module, args: Any, kwargs: Any) -> None:
    if any(p.requires_grad for p in model.parameters()):
        return
    if any(isinstance(t, torch.Tensor) and t.requires_grad for t in tree_flatten((args, kwargs))[0]):
        return
    frozen = sum(1 for _ in model.parameters())
    if not frozen:  # "none of the model's 0 parameters requires grad ... unfreeze some"
        raise ValueError(
            "backward=True needs something to differentiate, but the model has no parameters "
            "and no input requires grad: pass inputs with requires_grad=True"
        )
    raise ValueError(
        f"backward=True needs something to differentiate, but none of the model's {frozen} "
        "parameters requires grad and no input does: unfreeze some parameters "
        "(p.requires_grad_(True)) or pass inputs with requires_grad=True"
    )


def _failure_message(
    model: torch.nn.Module, failure: TraceFailure, args: Any, kwargs: Any, *, shapes_run: bool = False
) -> str:
    shapes = ", ".join(f"{d['name']}={tuple(d['shape'])}:{d['dtype']}" for d in describe_inputs(args, kwargs))
    where = ""
    module = model
    if failure.module is not None:
        module = model.get_submodule(failure.module) if failure.module else model
        label = failure.module or "(root)"
        detail = safe_extra_repr(module)
        where = f" in module '{label}' ({type(module).__name__}{': ' + detail if detail else ''})"
    if isinstance(module, torch.jit.ScriptModule):  # raised inside the TorchScript interpreter
        hint = _SCRIPTED_HINT
    elif shapes_run and is_meta_limitation(failure.error):
        hint = _NEEDS_VALUES_HINT
    else:
        hint = "Check that the inputs match what the model expects."
    return (
        f"the model raised {type(failure.error).__name__}{where} when called with inputs "
        f"[{shapes or 'none'}]: {_without_fx_trail(str(failure.error))}. {hint}"
        + (_SHAPES_ONLY_HINT if shapes_run else "")
        + (_META_MODEL_HINT if not shapes_run and _meta_model_needs_values(model, failure.error) else "")
        + (_HIGHER_ORDER_GRAD_HINT if _in_higher_order_grad(failure.error) else "")
    )


def _without_fx_trail(message: str) -> str:
    """The error's own words, without what torch.fx appends to an error raised in a graph
    (a torch.export program, a traced graph): "While executing %node ... Original traceback
    ... Use tlparse", once per graph module it passed through (P11-A4); the module that
    raised is named beside it. Its closing full stop too: ". Check ..." follows (not "..")."""
    return message.split("\n\nWhile executing %", 1)[0].rstrip().removesuffix(".")


def _in_higher_order_grad(error: BaseException) -> bool:
    """Raised while torch traced a higher-order operator's branches for autograd (torch.cond
    or while_loop on inputs that require grad): eagerly, torch does that only through its
    compiler, which a profile turns off."""
    frame = error.__traceback__
    while frame is not None:
        code = frame.tb_frame.f_code
        if code.co_name == "materialize_as_graph" and "_higher_order_ops" in code.co_filename:
            return True
        frame = frame.tb_next
    return False


_SCRIPTED_HINT = (
    "It was raised in a TorchScript module: if a plain call with these inputs works, the graph "
    "cannot run under a TorchDispatchMode, which every op counter needs (a torch.jit.trace'd "
    "graph that compares tensor sizes fails so under torch's own FlopCounterMode too); "
    "profile the original nn.Module instead."
)


_HIGHER_ORDER_GRAD_HINT = (
    " (This was raised where torch prepares a higher-order operator (torch.cond, while_loop, "
    "scan) for autograd: with inputs or weights that require grad, torch runs it only through "
    "its compiler, which a profile turns off. Count the forward without gradients: "
    "backward=False, or the model's parameters frozen.)"
)


def _meta_model_needs_values(model: torch.nn.Module, error: BaseException) -> bool:
    """A model built on meta whose forward asked a value of a meta tensor."""
    held = (*model.parameters(), *model.buffers())
    return is_meta_limitation(error) and any(t.is_meta for t in held)


_META_MODEL_HINT = (
    " (The model is on the meta device, which holds no values: a forward that reads them "
    "(`if x.mean() > 0:`, `.item()`, a loop until a value is small enough) can only take the "
    "branch a real run takes with real weights: build the model on the CPU.)"
)


# A shapes-only run's meta limitation is no fault of the inputs (probe 14: nonzero,
# masked_select, unique, .item() with shapes_only=True were told to check them).
_NEEDS_VALUES_HINT = (
    "A shapes-only run has no values, and this call needs them: an output size that depends on "
    "them (nonzero, masked_select, unique), a value read (.item(), bool()) or an op without a "
    "meta kernel. A torch setting that makes such an op guess on meta (nonzero's "
    "meta_nonzero_assume_all_nonzero) would give a count for its guess, not for these inputs."
)
_SHAPES_ONLY_HINT = (
    " (This was raised in the shapes-only run, where floating-point tensors are on the meta "
    "device; if the model needs real tensors there, profile it with shapes_only=False.)"
)
