"""Probe 8, leave no trace under interruption and unusual models (docs/probe-8/trace.md).

Each test fails on the code before its fix (checked against main at d335ebc)."""

import gc
import os
import sys
import threading
import weakref

import pytest
import torch
import torch.nn.modules.module as module_globals
import torch.utils._python_dispatch as dispatch_globals
from torch import nn
from torch.nn.utils import parametrize

import flopmeter
import flopmeter.tracing.modules as tracing_modules

# --------------------------------------------------------------------------------------
# P8-1: an interrupt at any function start inside a profile leaves nothing behind


class Stepper(nn.Module):
    """Conv(3->4, 3x3) + BN + ReLU + Linear(64, 5); its forward bumps a buffer, caches its
    input in a list and sets a flag: all of it must be undone."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 5)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.cache: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.steps += 1
        self.cache.append(x)
        self.seen = True
        y = torch.relu(self.bn(self.conv(x)))
        return self.fc(y.flatten(1))


# batch 2, 6x6 input: conv 2*4*4*4*(3*3*3) = 3,456 MACs; fc 2*64*5 = 640 MACs
STEPPER_MACS = 3_456 + 640


def _lock_is_free(lock: object) -> bool:
    free: list[bool] = []

    def probe() -> None:
        took = lock.acquire(timeout=0.5)  # type: ignore[attr-defined]
        if took:
            lock.release()  # type: ignore[attr-defined]
        free.append(took)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return free[0]


def _state(model: nn.Module) -> tuple:
    """The model (each module's class, mode and __dict__ entries by identity, each tensor's
    values, device and weak references) and the global state a profile touches."""
    modules = tuple(
        (name, type(m), m.training, tuple((k, id(v)) for k, v in vars(m).items()))
        for name, m in model.named_modules()
    )
    tensors = tuple(
        (name, t.device.type, t.dtype, t.requires_grad, bytes(t.detach().view(-1).view(torch.uint8).numpy()))
        for name, t in model.state_dict(keep_vars=True).items()
    )
    contents = tuple(
        len(v) if isinstance(v, (list, dict)) else 0 for m in model.modules() for v in vars(m).values()
    )
    refs = tuple(weakref.getweakrefcount(p) for p in model.parameters())
    hooks = tuple(
        len(value)
        for name, value in sorted(vars(module_globals).items())
        if name.startswith("_global") and isinstance(value, dict)
    )
    flags = tuple(
        getattr(dispatch_globals, name, None)
        for name in ("_is_in_torch_dispatch_mode", "_is_in_non_infra_torch_dispatch_mode")
    )
    from torch._dynamo import eval_frame

    world = (
        hooks,
        torch._C._len_torch_function_stack(),
        torch._C._len_torch_dispatch_stack(),
        flags,
        torch.is_grad_enabled(),
        torch.get_default_dtype(),
        bytes(torch.get_rng_state().numpy()),
        sys.getrecursionlimit(),
        gc.isenabled(),
        str(getattr(eval_frame, "_stance", None)),
    )
    return modules, tensors, contents, refs, world


def _flopmeter_idle() -> list[str]:
    """flopmeter's own bookkeeping with no profile running: nothing held."""
    left = []
    in_use = getattr(tracing_modules, "_IN_USE", None)
    owners = in_use.owner if in_use is not None else tracing_modules.take_turns.__self__._owner
    if owners:
        left.append(f"modules still taken: {len(owners)}")
    if not _lock_is_free(tracing_modules._LOCKS_GUARD):
        left.append("the lock of the model locks is held")
    for model, lock in list(tracing_modules._LOCKS.items()):
        if not _lock_is_free(lock):
            left.append(f"{type(model).__name__}'s profile lock is held")
    return left


_OWN = os.sep + "flopmeter" + os.sep
_EDGES = {"__enter__", "__exit__", "leave", "finish", "enter", "exit", "release", "restore", "remove"}
_CLEANUP_FILES = (
    _OWN,
    "contextlib.py",
    "_python_dispatch.py",
    "overrides.py",
    "grad_mode.py",
    "random.py",
    "eval_frame.py",
    "hooks.py",
    "threading.py",
)


class _InterruptAt:
    """A trace function that raises KeyboardInterrupt as the ``at``-th function starts
    (the place where Python runs a signal handler: a call's first instruction) among
    flopmeter's own code and the torch and stdlib helpers it enters and leaves; with
    ``edges``, only as a context manager is entered or left, or a cleanup starts (a
    backward run enters thousands of autograd helpers)."""

    def __init__(self, at: int, edges: bool = False) -> None:
        self.at, self.seen, self.where, self.edges = at, 0, "", edges

    def _counts(self, code) -> bool:  # noqa: ANN001
        if self.edges and code.co_name not in _EDGES:
            return False
        return any(part in code.co_filename for part in _CLEANUP_FILES)

    def __call__(self, frame, event, arg):  # noqa: ANN001, ANN204
        if event == "call" and self._counts(frame.f_code):
            self.seen += 1
            if self.seen == self.at:
                self.where = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}"
                raise KeyboardInterrupt(f"injected at {self.where}")
        return None


def _measure(model: nn.Module, x: torch.Tensor, **options: object) -> int:
    """A profile's MACs, or with ``bench`` a benchmark's (which profiles, then times)."""
    if options.get("bench"):
        return flopmeter.benchmark(model, x, warmup=1, repeat=1)[0].flops  # one Timing per batch size
    return flopmeter.profile(model, x, **options).macs


def _profile_interrupted(model: nn.Module, x: torch.Tensor, at: int, **options: object) -> _InterruptAt:
    interrupt = _InterruptAt(at, edges=bool(options))
    sys.settrace(interrupt)
    try:
        _measure(model, x, **options)
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    return interrupt


@pytest.mark.parametrize(
    "options", [{}, {"backward": True}, {"bench": True}], ids=["shapes", "backward", "benchmark"]
)
def test_an_interrupt_at_any_function_start_of_a_profile_leaves_no_trace(options):
    """P8-1: before, a KeyboardInterrupt at the start of the guard's __exit__ left the model
    half put back (meta tensors in `cache`, train mode lost, `steps` written); at the start of
    ModuleStack's _DEEPER.exit, flopmeter's global hooks on for every later module call; in
    torch's no_grad().__enter__, grad mode off; after the dispatch mode's push, flopmeter's
    recorder on the dispatch stack for every later op."""
    torch.manual_seed(0)
    model, x = Stepper(), torch.randn(2, 3, 6, 6)
    expected = _measure(model, x, **options)
    # forward: 4,096 MACs; backward: conv weight 3,456 (no input grad), fc 2*640 = 1,280
    assert options.get("bench") or expected == (STEPPER_MACS if not options else STEPPER_MACS + 3_456 + 1_280)
    count = _InterruptAt(10**9, edges=bool(options))
    sys.settrace(count)
    try:
        _measure(model, x, **options)
    finally:
        sys.settrace(None)
    assert count.seen > (50 if options else 100)  # the points tried
    before = _state(model)
    failures = []
    for at in range(1, count.seen + 1):
        interrupt = _profile_interrupted(model, x, at, **options)
        now = _state(model)
        idle = _flopmeter_idle()
        if now != before or idle:
            what = [
                name
                for name, a, b in zip(
                    ("modules", "tensors", "contents", "weakrefs", "globals"), before, now, strict=True
                )
                if a != b
            ]
            failures.append(f"{interrupt.where}: {what + idle}")
            break  # the state is broken: later points would all differ
    assert failures == []
    assert _measure(model, x, **options) == expected  # the next one runs


# --------------------------------------------------------------------------------------
# P8-2: no weak reference left on the model's parameters


def test_a_profile_leaves_no_weak_reference_on_the_parameters():
    """P8-2: the shapes-only run cached each parameter's meta twin with a weak reference to
    the parameter, kept after the profile: torch.utils.swap_tensors refuses a tensor with a
    weak reference, so `model.half()` under swap-on-conversion raised "_apply(): Couldn't swap
    Linear.weight" after a profile (and worked without one)."""
    model = nn.Sequential(nn.Linear(4, 4))
    report = flopmeter.profile(model, torch.randn(2, 4))
    assert report.macs == 32  # 2*4*4
    assert [weakref.getweakrefcount(p) for p in model.parameters()] == [0, 0]
    swap = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        model.half()
    finally:
        torch.__future__.set_swap_module_params_on_conversion(swap)
    assert model[0].weight.dtype == torch.float16
    assert flopmeter.profile(model.float(), torch.randn(2, 4)).macs == 32  # and again after


# --------------------------------------------------------------------------------------
# P8-3: parametrizations registered or removed in the forward


class _Double(nn.Module):
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * 2


class _Registers(nn.Module):
    """Parametrizes its Linear's weight (x2) at its first call."""

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not parametrize.is_parametrized(self.l):
            parametrize.register_parametrization(self.l, "weight", _Double())
        return self.l(x)


class _Removes(nn.Module):
    """Bakes its parametrized weight in at its first call (remove_parametrizations)."""

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)
        parametrize.register_parametrization(self.l, "weight", _Double())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if parametrize.is_parametrized(self.l):
            parametrize.remove_parametrizations(self.l, "weight")
        return self.l(x)


class _AddsBias(nn.Module):
    """Parametrizes its (already parametrized) Linear's bias too, at its first call."""

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)
        parametrize.register_parametrization(self.l, "weight", _Double())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not parametrize.is_parametrized(self.l, "bias"):
            parametrize.register_parametrization(self.l, "bias", _Double())
        return self.l(x)


@pytest.mark.parametrize("kind", [_Registers, _Removes, _AddsBias])
@pytest.mark.parametrize(
    "options", [{}, {"shapes_only": False}, {"backward": True}], ids=["shapes", "values", "backward"]
)
def test_parametrizations_changed_in_the_forward_are_undone(kind, options):
    """P8-3: a module's class is not in its __dict__. Registering a parametrization makes a
    Linear a ParametrizedLinear; the guard put the __dict__ back but not the class, so after
    a profile of _Registers the plain call raised KeyError 'weight'. Removing one deletes the
    property from the module's own class: _Removes' profile raised "'Linear' object has no
    attribute 'weight'" and left the model broken; _AddsBias left a 'bias' property with no
    parametrization behind it (KeyError 'bias' on the next call)."""
    torch.manual_seed(0)
    model = kind()
    kind_before = type(model.l)
    entries = dict(vars(kind_before))
    weight = model.l.weight.detach().clone()  # as the model sees it now (x2 if parametrized)
    raw = (
        model.l.parametrizations.weight.original.detach().clone()
        if parametrize.is_parametrized(model.l)
        else weight
    )
    bias = model.l.bias.detach().clone()
    x = torch.randn(2, 4)
    report = flopmeter.profile(model, x, **options)
    # forward: 2*4*4 = 32 MACs (the parametrization's x2 is elementwise, no MAC)
    assert report.macs == (32 if not options.get("backward") else 64)  # backward: weight grad 2*4*4
    assert type(model.l) is kind_before and dict(vars(type(model.l))) == entries
    assert parametrize.is_parametrized(model.l) == (kind is not _Registers)
    out = model(x)  # the model's own first call, as if never profiled
    if kind is _Registers:
        expected = x @ (2 * raw).T + bias
    elif kind is _Removes:
        expected = x @ weight.T + bias  # the baked weight: 2 * original
    else:
        expected = x @ weight.T + 2 * bias
    assert torch.allclose(out, expected)


# --------------------------------------------------------------------------------------
# P8-4: torch settings a forward changes and leaves changed


class _LeavesSettings(nn.Module):
    """A buggy forward that sets a torch setting and does not set it back."""

    def __init__(self, setting: str) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)
        self.setting = setting

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.setting == "dtype":
            torch.set_default_dtype(torch.float64)
        elif self.setting == "device":
            torch.set_default_device("cpu")
        else:
            torch.set_grad_enabled(not torch.is_grad_enabled())
        return self.l(x)


@pytest.fixture
def settings_put_back():
    """If the test fails, the rest of the suite still runs with torch's usual settings."""
    yield
    torch.set_default_dtype(torch.float32)
    torch.set_default_device(None)
    torch.set_grad_enabled(True)


@pytest.mark.parametrize("setting", ["dtype", "device", "grad"])
@pytest.mark.parametrize("shapes_only", [None, False])
def test_settings_a_forward_leaves_changed_are_put_back_with_a_warning(
    setting, shapes_only, settings_put_back
):
    """P8-4: a forward calling torch.set_default_dtype(torch.float64) left the whole process
    in float64 after the profile (and a values run made after a failed shapes-only one would
    start from it); torch.set_default_device left a DeviceContext on every later call. A grad
    mode the forward left changed was put back without a word. Decision: put back, and say
    so (a plain call would leave them changed; the warning keeps that visible)."""
    model = _LeavesSettings(setting)
    # grad: called with grad off, as the run's own mode (with grad on, a forward that leaves
    # it on is taken as setting it, which a plain call would not change: docs/probe-8/review-b.md R8b-2)
    callers_grad = setting != "grad"
    with (
        torch.set_grad_enabled(callers_grad),
        pytest.warns(
            RuntimeWarning,
            match=f"the model's forward changed torch's {'grad mode' if setting == 'grad' else 'default ' + setting}",
        ),
    ):
        report = flopmeter.profile(model, torch.randn(2, 4), shapes_only=shapes_only)
        assert torch.is_grad_enabled() is callers_grad
    assert report.macs == 32  # 2*4*4
    assert torch.get_default_dtype() == torch.float32
    assert torch._C._len_torch_function_stack() == 0  # no DeviceContext left
    assert torch.is_grad_enabled()


# --------------------------------------------------------------------------------------
# P8-5: a cache one level deeper than the module's own attributes


class _ShapeCache(nn.Module):
    """Caches a mask per input shape in a dict inside a dict attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)
        self.caches: dict[str, dict] = {"masks": {}, "seen": []}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        masks = self.caches["masks"]
        if x.shape not in masks:
            masks[x.shape] = torch.ones_like(x)
            self.caches["seen"].append(x.shape)
        return self.l(x * masks[x.shape])


@pytest.mark.parametrize("shapes_only", [None, False])
def test_a_cache_nested_in_a_dict_attribute_is_put_back(shapes_only):
    """P8-5: the guard put back the dicts held in module attributes, not the dicts inside
    them: after a shapes-only profile `caches["masks"]` held a meta tensor, and the model's
    next real call failed ("Tensor on device meta is not on the expected device cpu!")."""
    model, x = _ShapeCache(), torch.randn(2, 4)
    report = flopmeter.profile(model, x, shapes_only=shapes_only)
    assert report.macs == 32  # 2*4*4; the mask multiply is 8 FLOPs, no MAC
    assert model.caches == {"masks": {}, "seen": []}
    assert torch.allclose(model(x), model.l(x))  # the mask is ones


def test_an_interrupt_in_llm_mode_leaves_no_trace():
    """P8-1c: llm_cost enters its own function mode (ParametersRead) around each profile and
    deep-copies the KV cache under another (own_copy's _CopyNonLeaves); before, an interrupt
    as a context manager was left kept the model's modules taken (a profile of a model
    sharing them from another thread waited for good), and one at the end of the
    deep copy's `with torch.no_grad()` (in torch's Tensor.__deepcopy__) left grad mode off."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        num_hidden_layers=1,
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=100,
    )
    model = transformers.AutoModelForCausalLM.from_config(config)
    expected = flopmeter.llm_cost(model, prompt=4, generate=2).to_dict()
    count = _InterruptAt(10**9, edges=True)
    sys.settrace(count)
    try:
        flopmeter.llm_cost(model, prompt=4, generate=2)
    finally:
        sys.settrace(None)
    assert count.seen > 100
    before = _state(model)
    for at in range(1, count.seen + 1):
        interrupt = _InterruptAt(at, edges=True)
        sys.settrace(interrupt)
        try:
            flopmeter.llm_cost(model, prompt=4, generate=2)
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)
        assert (_state(model) == before, _flopmeter_idle()) == (True, []), interrupt.where
    assert flopmeter.llm_cost(model, prompt=4, generate=2).to_dict() == expected


# --------------------------------------------------------------------------------------
# P8-6: a forward that deletes a submodule, profiled with backward=True


class _DeletesItsFirstLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(self.a(x))
        del self.a  # the output still depends on a's weights
        return y


def test_a_backward_reaches_the_weights_of_a_submodule_the_forward_deleted():
    """P8-6: the backward was taken with respect to model.parameters() read after the forward,
    which had deleted `a`: a's weight gradient (and b's input gradient it needs) went
    uncounted, 96 MACs instead of 160; loss.backward() computes them."""
    report = flopmeter.profile(_DeletesItsFirstLayer(), torch.randn(2, 4), backward=True)
    # forward 2 * (2*4*4) = 64; backward: b.weight 32, b's input 32, a.weight 32 (x needs none)
    assert report.macs == 64 + 96
    assert (
        hasattr(report, "macs")
        and report.macs
        == flopmeter.profile(
            nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)), torch.randn(2, 4), backward=True
        ).macs
    )
