"""Which parameters a traced phase reads: N counts those, not every parameter the model holds.

A model may hold weights a language-model run never touches: BART-style decoders run alone
(``BartForCausalLM``, Whisper's, Marian's, ... ``ForCausalLM``) hold a cross-attention per
layer that runs only with encoder states; a multimodal ``...ForConditionalGeneration`` (Gemma 3)
holds a vision tower that runs only with an image. 2N, 6N and 6N + 12LHQT with those weights
in N count work that is never done. What ran is decided from the trace, not from class or
parameter names: ``ParametersRead`` watches the torch functions the model calls during a
``profile()`` and notes every parameter passed to one (``F.linear(x, self.weight)``,
``self.gate_up_proj[expert]``, a tied ``lm_head``), whichever module reads it, and
``parameters_run`` adds the parameters of every module the trace called.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from ..report import Report

# Tensor methods that read a tensor's metadata, not its values (``profile()`` itself asks
# them of every parameter: sizes, bytes, whether it is real), and autograd's entry points
# (a backward profile asks ``torch.autograd.grad`` for every parameter's gradient); attribute
# getters (``weight.dtype``, ``weight.shape``) are left out as well, except those that give
# the values to compute with (Falcon's linear layers compute ``x @ self.weight.T``)
METADATA = frozenset(
    [
        *(
            getattr(torch.Tensor, name)
            for name in (
                "numel", "nelement", "element_size", "is_floating_point", "is_complex", "data_ptr",
                "dim", "size", "stride", "storage_offset", "is_contiguous", "untyped_storage",
                "detach", "is_set_to", "__len__", "__hash__", "__repr__", "__format__",
            )
        ),
        torch.autograd.grad,
        torch.autograd.backward,
    ]
)  # fmt: skip
VALUE_GETTERS = frozenset({"T", "mT", "H", "mH", "real", "imag", "data"})
# modules whose submodules' weights run where neither signal of ``parameters_run`` sees them:
# a TorchScript module (``torch.jit.script`` / ``trace``) runs its submodules and functions
# inside TorchScript; ``nn.MultiheadAttention`` passes ``out_proj``'s weights to one function
# without calling ``out_proj``, a call profile() replays on meta for a repeat of its shapes
OPAQUE = (torch.jit.ScriptModule, torch.nn.MultiheadAttention)


class ParametersRead(TorchFunctionMode):
    """Inside the ``with`` block, ``seen`` collects the names of ``model``'s parameters that
    some torch function received as an argument (directly, or in a list or tuple argument:
    ``torch.cat([w1, w2])``), leaving out metadata reads (``METADATA``, attribute getters)
    and calls made by flopmeter's own code.
    It changes nothing the model computes: every call goes on as it was made. The mode is a
    ``TorchFunctionMode``, pushed on entry and popped on exit."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self._names = {id(p): name for name, p in model.named_parameters(remove_duplicate=True)}
        self.seen: set[str] = set()

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if (
            func in METADATA
            or (
                getattr(func, "__name__", "") == "__get__"
                and getattr(getattr(func, "__self__", None), "__name__", "") not in VALUE_GETTERS
            )
            or _caller_module().startswith("flopmeter.")
        ):  # profile()'s own bookkeeping (a parameter's size, its meta twin) is no read
            return func(*args, **kwargs)
        for value in (*args, *kwargs.values()):
            if isinstance(value, (list, tuple)):
                for item in value:
                    self._note(item)
            else:
                self._note(value)
        return func(*args, **kwargs)

    def _note(self, value: Any) -> None:
        """Note ``value`` if it is a parameter, or a view of one made before (``_base``: a
        ``weight.view(...)`` or ``weight.t()`` kept as a plain attribute and read in place of it)."""
        name = self._names.get(id(value))
        if name is None and isinstance(value, torch.Tensor):
            name = self._names.get(id(value._base))
        if name is not None:
            self.seen.add(name)


def _caller_module() -> str:
    """The module of the code that called the torch function ``ParametersRead`` sees, past the
    torch-function modes it went through on its way (profile()'s ``FunctionRecorder`` hands
    the model's every call on from its own ``__torch_function__``)."""
    frame: FrameType | None = sys._getframe(2)  # 0: this function, 1: ParametersRead.__torch_function__
    while frame is not None and frame.f_code.co_name == "__torch_function__":
        frame = frame.f_back
    return "" if frame is None else str(frame.f_globals.get("__name__", ""))


def parameters_run(model: torch.nn.Module, report: Report, seen: set[str]) -> set[str]:
    """The parameters a traced phase ran: those ``ParametersRead`` saw passed to a torch
    function, and every parameter of a module the trace called (``report.modules``' calls),
    whichever of the modules holding a shared tensor that is. Two signals, so that a parameter
    counts as idle only when neither saw it: its module never ran and no function received it.
    Where a called module runs its submodules' weights out of sight of both (``OPAQUE``), all
    its parameters ran."""
    called = {name for name, stats in report.modules.items() if stats.calls}
    opaque = tuple(  # "" (every name) for the model itself
        f"{name}." if name else ""
        for name, module in model.named_modules()
        if name in called and isinstance(module, OPAQUE)
    )
    first_names = {id(p): name for name, p in model.named_parameters()}
    run = set(seen)
    for name, p in model.named_parameters(remove_duplicate=False):
        if name.rpartition(".")[0] in called or name.startswith(opaque):
            run.add(first_names[id(p)])
    return run
