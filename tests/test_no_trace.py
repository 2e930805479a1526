"""Profiling leaves the model exactly as it was, also when its forward raises."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopmeter


class Net(nn.Module):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.frozen = nn.Linear(4, 2)
        self.frozen.weight.requires_grad_(False)
        self.fail = fail

    def forward(self, x):
        x = self.bn(self.conv(x)).mean((2, 3))
        if self.fail:
            raise ValueError("boom inside forward")
        return self.frozen(x)


def snapshot(model: nn.Module) -> dict:
    return {
        "modes": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
        "params": [p.detach().clone() for p in model.parameters()],
        "buffers": [b.clone() for b in model.buffers()],
        "dicts": [sorted(vars(m)) for m in model.modules()],
        "hooks": [
            (
                len(m._forward_hooks),
                len(m._forward_pre_hooks),
                len(m._backward_hooks),
                len(m._state_dict_hooks),
            )
            for m in model.modules()
        ],
    }


def assert_same(before: dict, after: dict) -> None:
    assert before["modes"] == after["modes"]
    assert before["requires_grad"] == after["requires_grad"]
    assert all(a is b for a, b in zip(before["grads"], after["grads"], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(before["params"], after["params"], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(before["buffers"], after["buffers"], strict=True))
    assert before["dicts"] == after["dicts"]
    assert before["hooks"] == after["hooks"]


def global_hook_counts() -> tuple[int, int]:
    from torch.nn.modules import module as module_mod

    return len(module_mod._global_forward_hooks), len(module_mod._global_forward_pre_hooks)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("backward", [False, True])
def test_model_untouched(train, backward):
    model = Net().train(train)
    before, hooks, relu, matmul = snapshot(model), global_hook_counts(), F.relu, torch.matmul
    report = flopmeter.profile(model, torch.randn(2, 3, 6, 6), train=train, backward=backward)
    assert report.flops > 0
    assert_same(before, snapshot(model))
    assert global_hook_counts() == hooks
    assert F.relu is relu and torch.matmul is matmul


def test_train_mode_batch_norm_statistics_restored():
    model = Net().train()
    running_mean = model.bn.running_mean.clone()
    flopmeter.profile(model, torch.randn(2, 3, 6, 6) + 5.0, train=True)
    assert torch.equal(model.bn.running_mean, running_mean)
    assert int(model.bn.num_batches_tracked) == 0


def test_model_untouched_when_forward_raises():
    model = Net(fail=True).train()
    before, hooks = snapshot(model), global_hook_counts()
    with pytest.raises(flopmeter.ModelError, match="boom inside forward") as info:
        flopmeter.profile(model, torch.randn(2, 3, 6, 6))
    assert isinstance(info.value.__cause__, ValueError)  # the original error is kept
    assert_same(before, snapshot(model))
    assert global_hook_counts() == hooks
    # and a later profile is not disturbed by the failed one
    model.fail = False
    assert flopmeter.profile(model, torch.randn(2, 3, 6, 6)).macs > 0
