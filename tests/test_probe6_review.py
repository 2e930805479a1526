"""Probe-6 review (docs/probe-6/review.md): defects found reviewing the session's change."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter


class CatchesAnErrorEveryRunRaises(nn.Module):
    """Tries a view that fails for any (2, 4) input, on meta and with values alike, and
    goes on with the input: a real call takes the except path too."""

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            x = x.view(3, -1)  # 8 elements: not a multiple of 3, wherever x lives
        except RuntimeError:
            pass
        return self.l(x)


@pytest.mark.parametrize("shapes_only", [None, True])
def test_an_error_the_model_catches_in_every_run_keeps_the_shapes_only_count(shapes_only):
    """P6-R1: since P6-A18 any op failure in a shapes-only run was taken for a meta
    limitation: shapes_only=True raised ModelError "the model raised RuntimeError" (it did
    not: it caught it), and the default rerun everything with values. 2*4*4 = 32 MACs."""
    report = flopmeter.profile(CatchesAnErrorEveryRunRaises(), torch.randn(2, 4), shapes_only=shapes_only)
    assert (report.macs, report.options["computed"]) == (32, "shapes")


class ComplexFilterFirst(nn.Module):
    """A complex filter (its first parameter) on the rfft of a real signal, then a real Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, dtype=torch.cfloat))
        self.out = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out((torch.fft.rfft(x) * self.w).abs())  # rfft refuses a complex x


def test_a_model_with_a_complex_first_parameter_and_real_layers_gets_real_inputs():
    """P6-R2: since P6-A10 the first complex parameter gave the built inputs their dtype, so
    this model (working from input_shape at 2af1c3d) got complex64 inputs and rfft raised.
    A float parameter comes first; complex only for a model with no float one."""
    model = ComplexFilterFirst()
    report = flopmeter.profile(model, input_shape=(2, 8))
    assert report.inputs[0]["dtype"] == "float32"
    assert report.macs == 30  # the Linear: 2*5*3 (the rfft and the filter count FLOPs only)
    assert report.flops == flopmeter.profile(model, torch.randn(2, 8)).flops
    # an all-complex model still takes complex inputs (P6-A10): 2*4*3 = 24 complex MACs,
    # 4 real MACs each (probe 14): 96
    assert flopmeter.profile(nn.Linear(4, 3).to(torch.complex64), input_shape=(2, 4)).macs == 4 * 24


class WrittenOutLinear(nn.Module):
    """A linear layer written out: ``x @ w + b``, w (8, 4), b (4,)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 4))
        self.b = nn.Parameter(torch.randn(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w + self.b


def test_ptflops_view_counts_the_bias_of_a_linear_written_out():
    """P6-R3 (docs/conventions.md's promise, untested): the ptflops view counts the add of
    a 1-D parameter as long as the last dim as a Linear's bias, for ``x @ w + b`` too.
    3 rows: matmul 3*8*4 = 96 + bias 3*4 = 12 -> 108. ptflops itself says 0 here (its
    pytorch backend sees no module and no patched function), which the docs say."""
    model, x = WrittenOutLinear(), torch.randn(3, 8)
    assert flopmeter.profile(model, x).flops_as("ptflops") == 108
    macs, _ = flopmeter.get_model_complexity_info(model, (3, 8), as_strings=False, print_per_layer_stat=False)
    assert macs == 108
    ptflops = pytest.importorskip("ptflops")
    theirs, _ = ptflops.get_model_complexity_info(
        model, (3, 8), as_strings=False, print_per_layer_stat=False, backend="pytorch"
    )
    assert theirs == 0


@pytest.mark.parametrize("prompt", [2**60, 10**15])
def test_an_llm_prompt_whose_token_ids_cannot_be_allocated_is_one_clear_error(prompt, capsys):
    """P6-R4: P6-A14 refused batch x prompt > 2**60, but 2**60 itself passed and torch.zeros
    raised "Storage size calculation overflowed" (2**60 * 8 bytes > int64), and a prompt of
    10**15 (8e15 bytes of int64 ids, past any address space) "DefaultCPUAllocator: can't
    allocate memory": both a traceback, exit 1. Now one line, exit 2."""
    pytest.importorskip("transformers")
    from flopmeter.cli import main

    sets = ["num_hidden_layers=1", "hidden_size=32", "intermediate_size=64", "num_attention_heads=4"]
    sets += ["num_key_value_heads=2", "vocab_size=100"]
    argv = ["transformers:LlamaConfig", *(a for s in sets for a in ("--set", s))]
    assert main([*argv, "--prompt", str(prompt), "--generate", "2"]) == 2
    err = capsys.readouterr().err
    assert "more than a tensor can hold" in err or "cannot be allocated here" in err
    assert "Traceback" not in err


def test_benchmark_blames_the_model_only_for_the_models_own_runs(monkeypatch):
    """P6-R5: P6-A17 wrapped all of benchmark()'s timing block, so an error of flopmeter's
    own (here its roofline estimate, made to fail) read "the model raised ZeroDivisionError
    in a run benchmark() timed", sending the user to their model."""
    from flopmeter import timing
    from flopmeter.hardware import get

    def broken(*args, **kwargs):
        raise ZeroDivisionError("flopmeter's own")

    monkeypatch.setattr(timing, "roofline", broken)
    with pytest.raises(ZeroDivisionError, match="flopmeter's own"):
        timing.benchmark(nn.Linear(4, 3), torch.randn(2, 4), warmup=1, repeat=1, hardware=get("h100-sxm"))
