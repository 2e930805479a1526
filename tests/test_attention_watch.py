"""A run goes without the function recorder unless the model is expected to call
attention; a model that calls it anyway is run again with it (tracing/attention_watch.py).
The report is the same either way, and the first profile of such a class is the only one
that runs twice."""

import functools

import pytest
import torch
import torch.nn.functional as F

import flopmeter
from flopmeter.tracing import attention_watch, run


def _attend(q: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, q, q)


def _attention_class():
    """A new class each time, so no earlier test has taught the watch about it; its
    forward calls attention through a helper, so its code does not name it."""

    class Attention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)
            self.forwards = 0

        def forward(self, q: torch.Tensor) -> torch.Tensor:
            self.forwards += 1  # put back after each run; counted through the trace below
            return self.proj(_attend(q))

    return Attention


@pytest.fixture
def runs(monkeypatch):
    """Counts the runs each profile makes, and with or without the function recorder."""
    made: list[bool] = []
    original = run._run_once

    def counting(*args, whole_functions, **kwargs):
        made.append(whole_functions)
        return original(*args, whole_functions=whole_functions, **kwargs)

    monkeypatch.setattr(run, "_run_once", counting)
    return made


def test_a_model_without_attention_runs_once_without_the_function_recorder(runs):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()).eval()
    flopmeter.profile(model, torch.randn(1, 3, 8, 8))
    assert runs == [False]


def test_attention_in_an_unknown_class_is_counted_whole_after_a_second_run(runs):
    model, q = _attention_class()().eval(), torch.randn(1, 2, 8, 4)
    first = flopmeter.profile(model, q)
    assert runs == [False, True]  # the kernel was seen without the recorder: run again
    sdpa = first.operators["aten.scaled_dot_product_attention"]
    # QK^T and AV: 2 * B*H*L*S*E = 2 * 1*2*8*8*4 = 1,024 MACs
    assert (sdpa.calls, sdpa.cost.macs) == (1, 1024)
    assert "aten._safe_softmax" not in first.operators and "aten.bmm" not in first.operators
    runs.clear()
    second = flopmeter.profile(model, q)
    assert runs == [True]  # the class is remembered: one run, with the recorder
    assert first.to_dict() == second.to_dict()
    assert str(first) == str(second)
    assert model.forwards == 0  # both runs of the first profile were undone


def test_the_math_path_and_inference_mode_are_seen_too(runs):
    q = torch.randn(1, 2, 8, 4)
    for label, context in (
        ("math", lambda: torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH)),
        ("inference_mode", torch.inference_mode),
    ):
        for shapes_only in (True, False):
            runs.clear()
            with context():
                report = flopmeter.profile(_attention_class()().eval(), q, shapes_only=shapes_only)
            # a run with values always has the function recorder: it runs the forward once
            assert runs == ([False, True] if shapes_only else [True]), (label, shapes_only)
            assert report.operators["aten.scaled_dot_product_attention"].cost.macs == 1024


def test_an_error_after_attention_is_the_error_of_the_run_with_the_recorder(runs):
    class Failing(_attention_class()):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            super().forward(q)
            raise ValueError("the model's own error")

    model = Failing().eval()
    with pytest.raises(flopmeter.ModelError, match="the model's own error"):
        flopmeter.profile(model, torch.randn(1, 2, 8, 4))
    assert runs == [False, True]
    assert model.forwards == 0


def test_attention_inside_a_module_with_its_own_formula_needs_no_second_run(runs):
    model = torch.nn.Sequential(_attention_class()()).eval()
    kind = type(model[0])
    report = flopmeter.profile(model, torch.randn(1, 2, 8, 4), custom_formulas={kind: lambda m, i, o: 7})
    assert runs == [False]  # its ops are replaced by the formula: nothing to count whole
    assert report.total.flops == 7  # a plain number from a module formula is its FLOPs
    assert not attention_watch.expects_attention([kind])


def test_expected_attention_by_class_and_by_code():
    class CallsMHA(torch.nn.Module):
        def forward(self, x):
            return F.multi_head_attention_forward(
                x, x, x, 4, 1, None, None, None, None, False, 0.0, None, None
            )

    class Plain(torch.nn.Module):
        def forward(self, x):
            return x

    class CallsSDPA(torch.nn.Module):
        def forward(self, q):
            return torch.nn.functional.scaled_dot_product_attention(q, q, q)

    def decorated(forward):
        @functools.wraps(forward)
        def wrapper(*args, **kwargs):
            return forward(*args, **kwargs)

        return wrapper

    class Decorated(torch.nn.Module):  # transformers wraps its attention forwards so
        @decorated
        def forward(self, q):
            return torch.nn.functional.scaled_dot_product_attention(q, q, q)

    assert attention_watch.expects_attention([torch.nn.MultiheadAttention])
    for kind in (CallsMHA, CallsSDPA, Decorated):  # its forward names the function
        assert attention_watch.expects_attention([Plain, kind]), kind
    assert not attention_watch.expects_attention([Plain, torch.nn.Linear, torch.nn.Conv2d])


def test_timm_and_transformers_attention_classes_are_expected():
    timm = pytest.importorskip("timm")
    pytest.importorskip("transformers")
    from transformers.models.bert import modeling_bert

    assert attention_watch.expects_attention([timm.models.vision_transformer.Attention])
    assert attention_watch.expects_attention([modeling_bert.BertSelfAttention])


@pytest.mark.parametrize(
    "name, seen",
    [
        ("_scaled_dot_product_flash_attention_for_cpu", True),
        ("_scaled_dot_product_efficient_attention", True),
        ("_safe_softmax", True),
        ("scaled_dot_product_attention", True),
        ("_softmax", False),
        ("bmm", False),
    ],
)
def test_attention_ops(name, seen):
    assert attention_watch.is_attention_op(name) is seen


def test_the_thrown_away_run_stops_at_the_attention_call(runs):
    """What the forward does after its attention call happens once: the first run stops
    at the attention op (AttentionSeen), before the model appends to this outside list."""
    after_attention: list[int] = []

    class Appends(_attention_class()):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            out = super().forward(q)
            after_attention.append(1)
            return out

    flopmeter.profile(Appends().eval(), torch.randn(1, 2, 8, 4))
    assert runs == [False, True]
    assert after_attention == [1]


def test_a_model_catching_every_exception_is_still_run_again(runs):
    """A forward that catches BaseException around its attention call swallows the stop;
    the recorder's flag still throws the run away."""

    class Swallows(_attention_class()):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            try:
                return super().forward(q)
            except BaseException:  # noqa: BLE001 - what the test is about
                return q

    report = flopmeter.profile(Swallows().eval(), torch.randn(1, 2, 8, 4))
    assert runs == [False, True]
    assert report.operators["aten.scaled_dot_product_attention"].cost.macs == 1024


def test_every_run_under_autocast_starts_from_an_empty_cast_cache():
    """probe-2: a weight cast cached by an earlier run (a thrown-away one, or an earlier
    profile in the same autocast region) had hidden the weight's read: weight_bytes 0."""
    model, x = torch.nn.Linear(16, 48), torch.randn(2, 5, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        first = flopmeter.profile(model, x, shapes_only=False).total
        second = flopmeter.profile(model, x, shapes_only=False).total
    assert first == second
    assert first.weight_bytes == (48 * 16 + 48) * 4  # the float32 weight and bias read for their casts: 3,264


def test_modules_left_by_the_stop_run_their_always_call_hooks(runs):
    """The stop is an Exception, so torch calls the always_call forward hooks of the modules
    it leaves: a depth counter kept by a user's hooks is back at 0 (review of probe-2)."""
    depth = [0]
    model = torch.nn.Sequential(_attention_class()()).eval()
    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(lambda m, a: depth.__setitem__(0, depth[0] + 1)))
        handles.append(
            module.register_forward_hook(lambda m, a, o: depth.__setitem__(0, depth[0] - 1), always_call=True)
        )
    flopmeter.profile(model, torch.randn(1, 2, 8, 4))
    assert runs == [False, True]
    assert depth == [0]
    for handle in handles:
        handle.remove()


def test_inputs_holding_objects_are_never_given_to_a_run_that_may_be_thrown_away(runs):
    """A cache object the forward updates before its attention call: a thrown-away run
    would update it once more, and the counted run would attend to one position too many."""

    class Cache:
        def __init__(self) -> None:
            self.keys: list[torch.Tensor] = []

        def update(self, k: torch.Tensor) -> torch.Tensor:
            self.keys.append(k)
            return torch.cat(self.keys, dim=-2)

    class Cached(torch.nn.Module):
        def forward(self, q: torch.Tensor, cache: Cache) -> torch.Tensor:
            k = cache.update(q)
            return _attend_to(q, k)  # through a helper: not expected

    cache = Cache()
    report = flopmeter.profile(Cached(), (torch.randn(1, 2, 1, 4), cache))
    assert runs == [True]  # the function recorder from the start: one run
    assert len(cache.keys) == 0  # each run updates its own copy: the caller's cache is as it was
    # one query, one key: QK^T and AV, 2 * 1*2*1*1*4 = 16 MACs
    assert report.operators["aten.scaled_dot_product_attention"].cost.macs == 16


def _attend_to(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, k)
