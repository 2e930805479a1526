"""Review of probe 13's changes (docs/probe-13/code-review.md): defects found, each with a
test that failed before its fix."""

from __future__ import annotations

import copy
import importlib

import pytest
import torch

import flopmeter
from flopmeter.registry import cost_of
from flopmeter.tracing.events import OpEvent, TensorMeta


def _stack() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(*[torch.nn.Linear(256, 256, bias=False) for _ in range(4)]).eval()


def test_rebuilt_weights_die_with_their_layer_in_the_peak_activation_memory() -> None:
    """A torchao int8 weight-only model rebuilds each Linear's float weight (256 x 256 float32
    = 262,144 B) just before its matmul, and the eager run frees it after: the peak holds one
    such copy, not all four. The "rebuilt" role kept every copy alive to the end of the trace
    (1,048,576 B more than the float model's peak instead of 262,144)."""
    quantization = pytest.importorskip("torchao.quantization")
    model = _stack()
    quantized = copy.deepcopy(model)
    quantization.quantize_(quantized, quantization.Int8WeightOnlyConfig())
    x = torch.randn(1, 256)
    dense, int8 = flopmeter.profile(model, x), flopmeter.profile(quantized, x)
    assert int8.peak_activation_bytes == dense.peak_activation_bytes + 256 * 256 * 4  # + 262,144
    # the rebuilt copies are still known as such: the 4 matmuls read 4 * 262,144 = 1,048,576 B
    assert int8.rebuilt_weight_bytes == 4 * 256 * 256 * 4


def _meta(*shape: int) -> TensorMeta:
    return TensorMeta(tuple(shape), "float32", 4, "activation")


def test_the_deprecated_lu_solve_reads_n_from_its_lu_argument() -> None:
    """aten.lu_solve(B, LU, pivots), B (3, 2), LU 3 x 3: 2 right-hand sides of n = 3, each
    n(n-1) = 6 multiply-subtracts and 3 divides: 12 MACs, 2 * (2*6 + 3) = 30 FLOPs (as
    linalg_lu_solve(LU, pivots, B)). Read as n = B's last dim (2) it gave rhs 3 of n 2:
    3 * 2 = 6 MACs, 3 * (2*2 + 2) = 18 FLOPs."""
    b, lu, pivots = _meta(3, 2), _meta(3, 3), TensorMeta((3,), "int32", 4, "activation")
    old = cost_of(OpEvent("aten.lu_solve", (b, lu, pivots), {}, (_meta(3, 2),)))
    new = cost_of(OpEvent("aten.linalg_lu_solve", (lu, pivots, b), {}, (_meta(3, 2),)))
    assert old is not None and new is not None
    assert (old.macs, old.flops) == (new.macs, new.flops) == (12, 30)


class _Histogram(torch.nn.Module):
    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.histogram(x, 10, range=(-1.0, 1.0), weight=w)[0]


def test_a_weighted_histogram_adds_each_weight_as_bincount_does() -> None:
    """torch.histogram(x, 10, range=(-1, 1), weight=w) of 20 values: binning 3 * 20 = 60, each
    weight added to its bin 20 (bincount's rule for ``weights``): 80 FLOPs (60 before)."""
    report = flopmeter.profile(_Histogram(), (torch.randn(20), torch.rand(20)))
    assert report.total.flops == 3 * 20 + 20  # 80


def test_a_roofline_reads_torchs_tf32_settings_once_per_op_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """roofline() asked torch.backends for every float32 op (1-2 us each, as much as the rest
    of an op's row); the settings cannot change during one call: once per op class. Three
    Linears (3 addmm, class "matmul") and two ReLUs ("pointwise"): 2 reads, not 5."""
    roofline_module = importlib.import_module("flopmeter.roofline")

    tf32_module = importlib.import_module("flopmeter.hardware.tf32")  # where peak_dtype_of asks
    calls: list[str] = []
    real = tf32_module.tf32_allowed

    def counted(kind: str) -> bool:
        calls.append(kind)
        return real(kind)

    monkeypatch.setattr(tf32_module, "tf32_allowed", counted)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8)
    )
    report = flopmeter.profile(model, torch.randn(2, 8))
    result = roofline_module.roofline(report, "h100-sxm")
    assert sorted(calls) == sorted(set(calls)) and len(calls) == 2
    monkeypatch.undo()  # the uncached answer, op by op, is the cached one
    spec = result.hardware
    uncached = {record.op: roofline_module.peak_dtype(record, spec) for record in report.ops}
    cached: dict[str, bool] = {}
    assert {
        record.op: roofline_module.peak_dtype(record, spec, allowed=cached) for record in report.ops
    } == uncached


def test_a_missing_package_while_building_from_set_values_is_the_models_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model whose build needs a package that is not installed fails with the preset's values
    too: exit 1 "the model failed", not exit 2 blaming the --set values the config took."""
    transformers = pytest.importorskip("transformers")
    from flopmeter.cli import run

    def missing(*args: object, **kwargs: object) -> None:
        raise ImportError("this model needs the package 'kernels_not_here'")

    monkeypatch.setattr(transformers.AutoModel, "from_config", missing)
    code, _, err = run(["transformers:LlamaConfig", "--set", "num_hidden_layers=1", "--meta"])
    assert code == 1, err
    assert "the model failed: building transformers:LlamaConfig raised ImportError" in err
    assert "Traceback" not in err
