"""Probe 11, adversarial pass over the features since probe 8 (docs/probe-11/adversarial.md):
a saved program with --meta, compare's labels and argument types, torch.fx's trail in a
program's error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.api import ModelError
from flopmeter.cli import run


class _Net(nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _saved(path: Path, width: int = 3) -> str:
    torch.export.save(torch.export.export(_Net(width).eval(), (torch.randn(2, 4),)), str(path))
    return str(path)


def test_meta_on_a_saved_program_is_refused_naming_meta_not_the_file(tmp_path: Path) -> None:
    """P11-A1: --meta loaded the file under the meta device, and torch's failure was
    reported as "not a file torch.export.load can read" for a good file."""
    code, _, err = run([_saved(tmp_path / "net.pt2"), "--meta"])
    assert code == 2 and "drop --meta" in err
    assert "not a file torch.export.load can read" not in err and "Traceback" not in err


def test_compare_names_saved_programs_by_their_files(tmp_path: Path) -> None:
    """P11-A2: two programs of one class were both labelled "_Net" (columns alike)."""
    before, after = _saved(tmp_path / "before.pt2", 3), _saved(tmp_path / "after.pt2", 2)
    code, out, _ = run(["compare", before, after, "--format", "json"])
    assert code == 0
    data = json.loads(out)
    assert data["compared_to"] == before
    assert [row["model"] for row in data["rows"]] == [before, after]
    # before: 2*4*3 = 24 MACs; after: 2*4*2 = 16 MACs
    assert [row["macs"] for row in data["rows"]] == [24, 16]
    code, out, _ = run(["compare", before, after])
    assert code == 0 and f"compared to {before} (batch 2)" in out


@pytest.mark.parametrize("bad", [3, "torchvision:alexnet", {}])
def test_compare_refuses_what_is_neither_a_report_nor_a_model(bad: object) -> None:
    """P11-A3: the error named profile(), which the user did not call."""
    report = flopmeter.profile(_Net(), torch.randn(2, 4), compression=True)
    with pytest.raises(TypeError, match=r"^compare takes Reports .* after is "):
        flopmeter.compare(report, bad)
    with pytest.raises(TypeError, match=r"^compare takes Reports .* before is "):
        flopmeter.compare(bad, report)


def test_compare_bench_with_reports_is_refused_first() -> None:
    """P11-A3: bench=True with Reports was refused only after the comparison, so plain
    Reports got the nonzeros message instead of the bench one."""
    report = flopmeter.profile(_Net(), torch.randn(2, 4))
    with pytest.raises(ValueError, match="bench=True needs the two models, not Reports"):
        flopmeter.compare(report, report, bench=True)


def test_a_programs_error_has_no_fx_trail(tmp_path: Path) -> None:
    """P11-A4: an int64 input to a float program raised torch's dtype error followed by two
    "While executing %... Original traceback ... Use tlparse" blocks of torch.fx."""
    code, _, err = run([_saved(tmp_path / "net.pt2"), "--input", "2x4:int64"])
    assert code == 1
    assert "in module 'fc' (Linear)" in err and "must have the same dtype" in err
    assert "While executing" not in err and "tlparse" not in err and "Original traceback" not in err
    program = torch.export.export(_Net().eval(), (torch.randn(2, 4),))
    with pytest.raises(ModelError) as raised:
        flopmeter.profile(program, torch.ones(2, 4, dtype=torch.int64))
    assert "While executing" not in str(raised.value) and "same dtype" in str(raised.value)


class _Scan(nn.Module):
    """Scans a Linear(4, 4) over dim 0: per step 1*4*4 = 16 MACs, 2*16 = 32 FLOPs (addmm
    with its bias) + 4 FLOPs for the carry's add = 36."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from torch._higher_order_ops.scan import scan

        def step(carry: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = self.fc(x) + carry
            return y, y.clone()

        return scan(step, torch.zeros(1, 4), xs)


@pytest.mark.parametrize("shapes_only", [True, False])
def test_a_scan_over_an_empty_dim_counts_no_step(shapes_only: bool) -> None:
    """P11-A5: torch's scan kernel calls the step once to learn its results' shapes even for
    0 steps; that call was counted as a step (16 MACs, 36 FLOPs, fc called once)."""
    model = _Scan()
    assert model(torch.randn(0, 1, 4))[1].shape == (0, 1, 4)  # eagerly: no step's result
    empty = flopmeter.profile(model, torch.randn(0, 1, 4), batch_size=1, shapes_only=shapes_only)
    assert (empty.total.macs, empty.total.flops) == (0, 0)
    assert empty.by_module()["fc"].calls == 0
    three = flopmeter.profile(model, torch.randn(3, 1, 4), batch_size=1, shapes_only=shapes_only)
    assert (three.total.macs, three.total.flops) == (3 * 16, 3 * 36)  # 48, 108
    assert three.by_module()["fc"].calls == 3


def test_train_on_a_flat_graph_names_a_flat_graph_not_a_program() -> None:
    """P11-A6: profile(graph, train=True) said "a torch.export program runs in the mode"
    of a graph the user built with torch.fx or program.module()."""
    graph = torch.export.export(_Net().eval(), (torch.randn(2, 4),)).module()
    with pytest.raises(
        ValueError, match=r"^train=True: a flat graph \(program.module\(\), PT2E, torch.fx\) runs"
    ):
        flopmeter.profile(graph, torch.randn(2, 4), train=True)


class _CondCounts(nn.Module):
    """torch.cond whose taken branch adds 1 to a buffer in place (a step counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("seen", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def counted(x: torch.Tensor) -> torch.Tensor:
            self.seen.add_(1)
            return self.fc(x)

        return torch.cond(x.sum() > -1e9, counted, lambda x: self.fc(x) * 2, (x,))


def test_benchmark_runs_a_model_calling_higher_order_operators() -> None:
    """P11-A7: benchmark's untimed run (the model-state guard's mode) failed on torch.cond,
    while_loop and scan with torch's "no rule registered for HigherOrderOperator", reported
    as the model's error (CLI --bench: exit 1). A write in a branch is put back."""
    model = _CondCounts()
    timings = flopmeter.benchmark(model, torch.randn(2, 4), warmup=1, repeat=2)
    assert timings[0].batch_size == 2 and len(timings[0].times) == 2
    assert timings[0].flops == 2 * 2 * 4 * 4 + 1 + 7 + 1  # addmm 64, the add_ 1, sum 7, gt 1 = 73
    assert model.seen.item() == 0  # the branch's in-place add, put back
    scan_timings = flopmeter.benchmark(_Scan(), torch.randn(3, 1, 4), warmup=1, repeat=2)
    assert scan_timings[0].flops == 3 * 36  # 108, as counted above


def test_a_model_error_ending_in_a_full_stop_gets_one() -> None:
    """P11-A4: torch's messages end in "."; ". Check that ..." followed, giving "0.. Check"."""

    class _Raises(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("Leading dimensions of mapped xs cannot be 0.")

    with pytest.raises(ModelError) as raised:
        flopmeter.profile(_Raises(), torch.randn(2, 4))
    assert "cannot be 0. Check that the inputs match" in str(raised.value)


class _Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, n: int = 2) -> torch.Tensor:
        return self.fc(x) * n


def test_a_saved_program_with_a_non_tensor_input_says_how_to_profile_it(tmp_path: Path) -> None:
    """P11-A8: a program exported with (x, 3) said "this model has no documented input: give
    one with --input", and --input, which gives tensors only, could never fit its call."""
    program = torch.export.export(_Scaled().eval(), (torch.randn(2, 4), 3))
    path = tmp_path / "scaled.pt2"
    torch.export.save(program, str(path))
    code, _, err = run([str(path)])
    assert code == 2 and "exported with an input that is not a tensor (int 3)" in err
    assert "flopmeter.profile(torch.export.load(" in err and "no documented input" not in err
    report = flopmeter.profile(torch.export.load(str(path)))  # as the message says
    # fc 2*4*4 = 32 MACs, 64 FLOPs; * 3 on 2x4: 8 FLOPs
    assert (report.total.macs, report.total.flops) == (32, 72)


class _Generates(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> object:
        y = self.fc(x)
        return (t for t in [y])


def test_flopmeters_warning_under_w_error_is_not_blamed_on_the_model() -> None:
    """P11-A9: with FlopmeterWarning made an error, the generator warning came back as
    "ModelError: the model raised FlopmeterWarning ... Check that the inputs match"; it
    propagates as itself, as ModelStateWarning does."""
    import warnings

    model = _Generates()
    with warnings.catch_warnings():
        warnings.simplefilter("error", flopmeter.FlopmeterWarning)
        with pytest.raises(flopmeter.FlopmeterWarning, match="returned a generator") as raised:
            flopmeter.profile(model, torch.randn(2, 4))
    assert not isinstance(raised.value, ModelError)
    assert model.training and not model._forward_hooks  # left as it was


def test_compare_compression_names_saved_programs_by_their_files(tmp_path: Path) -> None:
    """P11-A2, with --compression: "_Net (after) vs _Net (before)" (the labels a comparison
    of two models of one name gets); now the files."""
    before, after = _saved(tmp_path / "before.pt2", 3), _saved(tmp_path / "after.pt2", 2)
    code, out, _ = run(["compare", before, after, "--compression", "-q"])
    assert code == 0 and f"{after} vs {before}: ratios are after / before" in out
