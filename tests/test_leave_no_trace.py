"""After profile returns or raises, the model is exactly as it was before the call.

The field reports' cases (shared/reports/zoo-1.md F1/D3, probe-1.md E4/E5/E10): the
shapes-only run executes the model's Python side effects for real while its tensor
side effects land on meta; both kinds are rolled back, in shapes-only and values runs.
"""

import copy
import warnings

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.tracing import run

MODES = [None, True, False]  # shapes_only: default (shapes, values if needed), shapes, values


def profile_quietly(model, inputs, shapes_only):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "could not restore" warning may appear
        return flopmeter.profile(model, inputs, shapes_only=shapes_only)


class CachedList(nn.Module):
    """zoo-1 F1: an attribute re-assigned in forward, like AnchorGenerator.cell_anchors."""

    def __init__(self, data_dependent: bool = False) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.cache = [torch.ones(4)]
        self.data_dependent = data_dependent

    def forward(self, x):
        self.cache = [c.to(x.device) for c in self.cache]
        y = self.lin(x) + self.cache[0]
        return y[y > 0] if self.data_dependent else y


@pytest.mark.parametrize("shapes_only", MODES)
def test_attribute_reassigned_in_forward_is_put_back(shapes_only):
    model = CachedList()
    cache, first = model.cache, model.cache[0]
    report = profile_quietly(model, torch.randn(2, 4), shapes_only)
    assert report.macs == 32  # 2 rows * 4 * 4
    assert model.cache is cache and model.cache[0] is first and first.device.type == "cpu"
    assert torch.equal(model(torch.ones(1, 4)), model.lin(torch.ones(1, 4)) + 1)  # usable afterwards


def test_meta_attribute_does_not_break_the_values_fallback():
    model = CachedList(data_dependent=True)  # boolean indexing has no meta result: falls back
    report = profile_quietly(model, torch.randn(2, 4), None)
    assert report.options["computed"] == "values"
    assert report.macs == 32  # 2 rows * 4 * 4
    assert model.cache[0].device.type == "cpu"
    model(torch.randn(2, 4))


class Rescales(nn.Module):
    """zoo-1 D3: like transformers' RWKV, rescales a weight in place on its first call."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))
        self.rescaled = False

    def forward(self, x):
        if not self.rescaled:
            with torch.no_grad():
                self.w.div_(2)
            self.rescaled = True
        return x * self.w


@pytest.mark.parametrize("shapes_only", MODES)
def test_in_place_parameter_update_and_its_flag_are_both_undone(shapes_only):
    model = Rescales()
    weight = model.w
    profile_quietly(model, torch.ones(4), shapes_only)
    assert model.rescaled is False and model.w is weight
    assert torch.equal(model.w.detach(), torch.ones(4))
    # the first plain call still does the one-off rescale, as on an unprofiled model
    assert torch.equal(model(torch.ones(4)).detach(), torch.full((4,), 0.5))
    assert model.rescaled is True


class Counter(nn.Module):
    """probe-1 E4: a buffer the forward re-assigns."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("steps", torch.zeros(()))

    def forward(self, x):
        self.steps = self.steps + 1
        return self.fc(x)


@pytest.mark.parametrize("shapes_only", MODES)
def test_reassigned_buffer_is_the_original_tensor_on_cpu(shapes_only):
    model = Counter()
    steps = model.steps
    profile_quietly(model, torch.randn(2, 4), shapes_only)
    assert model.steps is steps and model._buffers["steps"] is steps
    assert float(model.steps) == 0.0  # float() of a meta tensor would raise


class AddsToWeight(nn.Module):
    """probe-1 E5: a parameter updated in place."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.fail = fail

    def forward(self, x):
        with torch.no_grad():
            self.fc.weight.add_(1.0)
            self.fc.bias.data.mul_(3.0)  # through .data: the same storage
        self.calls += 1  # an integer buffer runs for real even in a shapes-only run
        self.extra = "set in forward"
        y = self.fc(x)
        if self.fail:
            raise ValueError("boom after writing")
        return y


@pytest.mark.parametrize("shapes_only", MODES)
@pytest.mark.parametrize("fail", [False, True])
def test_in_place_writes_are_undone_even_when_forward_raises(shapes_only, fail):
    model = AddsToWeight(fail)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    if fail:
        with pytest.raises(flopmeter.ModelError, match="boom after writing"):
            profile_quietly(model, torch.randn(2, 4), shapes_only)
    else:
        profile_quietly(model, torch.randn(2, 4), shapes_only)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert "extra" not in vars(model)


class RebindsData(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        self.fc.weight.data = torch.zeros(4, 4)  # rebinds the storage under the same Parameter
        self.register_forward_hook(lambda *a: None)
        self.fc.new_param = nn.Parameter(torch.ones(2))
        return self.fc(x)


@pytest.mark.parametrize("shapes_only", MODES)
def test_rebound_data_new_parameters_and_hooks_are_undone(shapes_only):
    model = RebindsData()
    weight, values = model.fc.weight, model.fc.weight.detach().clone()
    profile_quietly(model, torch.randn(2, 4), shapes_only)
    assert model.fc.weight is weight and torch.equal(weight.detach(), values)
    assert not model._forward_hooks
    assert [name for name, _ in model.named_parameters()] == ["fc.weight", "fc.bias"]


def test_train_mode_batch_norm_is_restored_by_values_runs():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    mean, var = model[1].running_mean, model[1].running_var.clone()
    flopmeter.profile(model, torch.randn(2, 3, 6, 6) + 5.0, train=True, backward=True)
    assert model[1].running_mean is mean and torch.equal(mean, torch.zeros(4))
    assert torch.equal(model[1].running_var, var) and int(model[1].num_batches_tracked) == 0


class BigBuffer(nn.Module):
    """probe-1 E10: a large buffer the forward only reads, and a small one it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("table", torch.zeros(16, 1024, 1024), persistent=False)  # 64 MiB
        self.register_buffer("count", torch.zeros(8))

    def forward(self, x):
        self.count.add_(1)
        return self.fc(x) + self.table[0, 0, :4]


@pytest.mark.parametrize("shapes_only", [True, False])
def test_only_written_tensors_are_copied(shapes_only, monkeypatch):
    copied = []

    class Spy(run.WriteGuard):
        def restore(self) -> None:
            copied.append(self.saved_bytes)
            super().restore()

    monkeypatch.setattr(run, "WriteGuard", Spy)
    model = BigBuffer()
    flopmeter.profile(model, torch.randn(2, 4), shapes_only=shapes_only)
    assert copied == [8 * 4]  # only `count` (8 float32 values), never the 64 MiB `table`
    assert torch.equal(model.count, torch.zeros(8))


def test_meta_models_are_left_on_meta():
    with torch.device("meta"):
        model = Counter()
    flopmeter.profile(model, input_shape=(2, 4))
    assert model.steps.is_meta and model.fc.weight.is_meta


def test_torchvision_detector_profiles_and_stays_usable():
    """zoo-1 F1: every torchvision detector failed and was broken afterwards."""
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = tv.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)
    model.eval()
    reference = copy.deepcopy(model)
    images = [torch.rand(3, 160, 160)]
    default = profile_quietly(model, (images,), None)
    values = flopmeter.profile(model, (images,), shapes_only=False)
    assert default.macs == values.macs > 0
    assert default.flops == values.flops
    with torch.no_grad():
        got, want = model(images)[0], reference(images)[0]
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_rwkv_is_not_silently_changed():
    """zoo-1 D3: an 8-layer RWKV rescales blocks 6-7 on its first eval call."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.RwkvConfig(
        num_hidden_layers=8,
        hidden_size=32,
        attention_hidden_size=32,
        intermediate_size=64,
        vocab_size=50,
        context_length=16,
    )
    model = transformers.RwkvModel(config).eval()
    reference = copy.deepcopy(model)
    ids = torch.randint(0, 50, (1, 8))
    profile_quietly(model, {"input_ids": ids}, None)
    assert model.layers_are_rescaled is False
    with torch.no_grad():
        want = reference(input_ids=ids).last_hidden_state
        got = model(input_ids=ids).last_hidden_state
    assert torch.equal(got, want)


class BumpsVersionUnseen(nn.Module):
    """A write flopmeter cannot see (as a C++ extension writing a buffer's memory would),
    imitated by moving the buffer's version counter directly."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("state", torch.zeros(3))

    def forward(self, x):
        torch._C._autograd._unsafe_set_version_counter((self.state,), (self.state._version + 1,))
        return x * 2


@pytest.mark.skipif(
    not hasattr(torch._C._autograd, "_unsafe_set_version_counter"), reason="this torch cannot imitate it"
)
def test_a_write_that_could_not_be_undone_is_not_silent():
    with pytest.warns(RuntimeWarning, match="could not see"):
        flopmeter.profile(BumpsVersionUnseen(), torch.randn(2, 3))


def test_lazy_modules_are_refused_clearly():
    model = nn.Sequential(nn.LazyLinear(3))
    with pytest.raises(ValueError, match="uninitialized lazy parameters.*'0.weight'"):
        flopmeter.profile(model, torch.randn(2, 5))
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("shapes_only", [None, False])
def test_scripted_model_statistics_and_modes_are_restored(shapes_only):
    model = torch.jit.script(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flopmeter.profile(model, torch.randn(3, 4), train=True, shapes_only=shapes_only)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats, num_batches_tracked
    assert [m.training for m in model.modules()] == [False] * 4


@pytest.mark.parametrize("shapes_only", [None, False])
def test_a_model_built_under_inference_mode_can_be_profiled(shapes_only):
    with torch.inference_mode():  # its tensors have no version counter and refuse requires_grad_
        model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    report = profile_quietly(model, torch.randn(2, 4), shapes_only)
    assert report.macs == 32  # 2 rows * 4 * 4


class SparseBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.register_buffer("pattern", torch.eye(4).to_sparse())

    def forward(self, x):
        return self.lin(x)


def test_a_model_with_a_sparse_buffer_can_be_profiled():
    model = SparseBuffer()
    pattern = model.pattern
    assert profile_quietly(model, torch.randn(2, 4), None).macs == 32  # 2 rows * 4 * 4
    assert model.pattern is pattern


@pytest.mark.parametrize("shapes_only", [None, False])
def test_spectral_norm_attribute_and_power_iteration_are_restored(shapes_only):
    # spectral_norm's pre-hook sets the plain attribute `weight` and, in train mode,
    # updates its `weight_u` buffer in place on every call
    model = nn.utils.spectral_norm(nn.Linear(4, 4)).train()
    weight, u = model.weight, model.weight_u.clone()
    profile_quietly(model, torch.randn(2, 4), shapes_only)
    assert model.weight is weight and model.weight.device.type == "cpu"
    assert torch.equal(model.weight_u, u)


@pytest.mark.parametrize("shapes_only", [None, False])
def test_parametrized_spectral_norm_state_is_restored_after_counting_nonzeros(shapes_only):
    # torch.nn.utils.parametrizations.spectral_norm runs its power iteration (writing _u and
    # _v in place) each time the weight is computed in train mode; the profile computes it
    # once more to count its nonzeros (compression/facts.py), which must be undone too
    model = nn.Sequential(nn.utils.parametrizations.spectral_norm(nn.Linear(8, 4))).train()
    norm = model[0].parametrizations.weight[0]
    u, v = norm._u.clone(), norm._v.clone()
    report = profile_quietly(model, torch.randn(3, 8), shapes_only)
    assert torch.equal(norm._u, u) and torch.equal(norm._v, v)
    assert report.compression.layers["0"].weight_nonzero == 32  # 4*8 weight, no zeros


class DrawsRandomNumbers(nn.Module):
    """Dropout in train mode and a reparameterization draw, as a VAE's forward makes."""

    def __init__(self) -> None:
        super().__init__()
        self.mu = nn.Linear(4, 2)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        mu = self.mu(self.drop(x))
        return mu + torch.randn_like(mu)


@pytest.mark.parametrize("shapes_only", MODES)
def test_the_random_stream_is_where_it_was(shapes_only):
    model, x = DrawsRandomNumbers().train(), torch.randn(3, 4)
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    profile_quietly(model, x, shapes_only)
    assert torch.equal(torch.rand(4), expected)  # a values run drew 12 + 6 numbers before the fix
    torch.manual_seed(0)
    flopmeter.benchmark(model, x, warmup=1, repeat=2)
    assert torch.equal(torch.rand(4), expected)


class EditsItsContainers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.history = [1]
        self.seen = {"calls": 0}
        self.flag = True

    def forward(self, x):
        self.history.append(x.shape)
        self.seen["calls"] += 1
        self.seen["last"] = x
        del self.flag
        return self.lin(x)


@pytest.mark.parametrize("shapes_only", MODES)
def test_lists_and_dicts_edited_in_place_and_deleted_attributes_are_put_back(shapes_only):
    model = EditsItsContainers()
    history, seen = model.history, model.seen
    profile_quietly(model, torch.randn(2, 4), shapes_only)
    assert model.history is history and history == [1]
    assert model.seen is seen and seen == {"calls": 0}
    assert model.flag is True
