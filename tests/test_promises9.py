"""Stop 21's doc promises that no test held yet (promises9.md): the compressions that make a
profile count nonzeros without being asked, the report's own numbers not depending on the
count, the uncounted view's wording, compare of counted Reports and on the command line,
state two levels down a plain object, and the template factories not listed in
tests/test_probe9_diffusers.py."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopmeter
from flopmeter.cli import main
from flopmeter.render.compression import view_summary_lines
from test_nonzeros_on_demand import BUILDER, X, _half_zero  # Linear(8, 4): 16 of 32 nonzero


class _SparseBeside(nn.Module):
    """A COO weight (a sparse layout on a module attribute) beside a dense layer with zeros."""

    def __init__(self) -> None:
        super().__init__()
        self.sparse = _half_zero().weight.detach().to_sparse()
        self.f = _half_zero()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(self.sparse, x.t()).t() + self.f(x)


class _FakeQuantizeOp(nn.Module):
    """Fake-quantizes its weight in the forward (QAT without a marker on the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.f = _half_zero()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch.fake_quantize_per_tensor_affine(self.f.weight, 0.1, 0, -128, 127)
        return F.linear(x, weight)


def _fake_quantizer() -> nn.Module:
    """A torch.ao FakeQuantize module (QAT) on the input of a dense layer with zeros."""
    return nn.Sequential(torch.ao.quantization.FakeQuantize(), _half_zero())


def _observed() -> nn.Module:
    """A torch.ao observer (calibration) on the input of a dense layer with zeros."""
    return nn.Sequential(torch.ao.quantization.MinMaxObserver(), _half_zero())


def _dynamically_quantized() -> nn.Module:
    """A torch.ao dynamically quantized Linear(8, 8) (a packed int8 weight) before a dense
    float layer with zeros."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's migration notice
        quantized = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(8, 8)), {nn.Linear})
    return nn.Sequential(quantized[0], _half_zero())


@pytest.mark.parametrize(
    ("build", "layer"),
    [
        (_SparseBeside, "f"),
        (_FakeQuantizeOp, "f"),
        (_fake_quantizer, "1"),
        (_observed, "1"),
        (_dynamically_quantized, "1"),
    ],
    ids=["sparse layout", "fake-quantize op", "fake quantizer", "observer", "packed quantized"],
)
def test_each_compression_named_in_the_docs_is_counted_without_asking(build: object, layer: str) -> None:
    """docs/compression.md: a sparse layout, a quantized/packed weight, an observer or fake
    quantizer, a fake-quantize op in the forward: every weight counted, the dense layer's
    in-place zeros too (4 rows x 4 kept of 8 = 16)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantize_per_tensor's deprecation in torch.ao's packing
        view = flopmeter.profile(build(), X).compression  # type: ignore[operator]
    assert view.nonzeros_counted
    assert view.layers[layer].weight_nonzero == 16


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_the_reports_own_numbers_never_depend_on_the_count(backward: bool) -> None:
    """docs/compression.md: "The FLOPs, MACs, params and bytes of the report never depend
    on it." Forward: MACs 2 rows x 8 x 4 = 64 whether 16 or 32 weights are nonzero."""
    model = nn.Sequential(_half_zero(), nn.ReLU(), nn.Linear(4, 2))
    if backward:
        plain = flopmeter.profile(model, X, backward=True).to_dict()
    else:
        with torch.inference_mode():  # a user's usual context for a forward count
            plain = flopmeter.profile(model, X).to_dict()
    counted = flopmeter.profile(model, X, backward=backward, compression=True).to_dict()
    assert plain["compression"]["nonzeros_counted"] is False
    assert counted["compression"]["nonzeros_counted"] is True
    # forward 2*8*4 + 2*4*2 = 80; backward adds Linear(4, 2)'s grad_input 16 + grad_weight 16
    # and Linear(8, 4)'s grad_weight 64 (x needs no grad): 176. Params 32 + 4*2 + 2 = 42
    assert (plain["totals"]["macs"], plain["totals"]["params"]) == (176 if backward else 80, 42)
    for key in [key for key in plain if key != "compression"]:
        assert plain[key] == counted[key], key


def test_an_uncounted_views_totals_say_so_and_name_what_counts_them() -> None:
    """ "the totals say 'as if dense: sparsity unknown' and 'nonzeros not counted' with what
    counts them": effective MACs 2 rows x 32 = 64, the dense model's."""
    lines = "\n".join(view_summary_lines(flopmeter.profile(_half_zero(), X).compression))
    assert "MACs dense 64, effective 64" in lines
    assert "(as if dense: sparsity unknown)" in lines
    assert "nonzeros not counted" in lines and "compression=True" in lines and "--compression" in lines
    counted = "\n".join(view_summary_lines(flopmeter.profile(_half_zero(), X, compression=True).compression))
    assert "effective 32" in counted and "as if dense" not in counted  # 2 rows x 16 nonzero


def test_compare_of_reports_that_counted() -> None:
    """docs/compression.md's block: compare takes "models, or Reports of compression=True".
    Nonzero ratio 16 / 32 = 0.5; effective MAC speedup 64 / 32 = 2."""
    before = flopmeter.profile(nn.Linear(8, 4, bias=False), X, compression=True)
    after = flopmeter.profile(_half_zero(), X, compression=True)
    total = flopmeter.compare(before, after).to_dict()["rows"][-1]
    assert (total["nonzero_ratio"], total["mac_speedup_effective"]) == (0.5, 2.0)


# the half_zero builder above, beside a dense Linear(8, 4) without bias
MODELS = BUILDER + "\n\ndef dense():\n    return torch.nn.Linear(8, 4, bias=False)\n"


def _cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    out, err = io.StringIO(), io.StringIO()
    argv = [arg.replace("MODELS", str(path)) for arg in args]
    code = main([*argv, "--input", "2x8"], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_compression_json_counts_them(tmp_path: Path) -> None:
    """docs/json-schema.md: "--compression counts them": 16 of 32 nonzero, sparsity 0.5."""
    code, out, err = _cli(tmp_path, "MODELS:half_zero", "--compression", "--format", "json")
    assert code == 0, err
    view = json.loads(out)["compression"]
    assert view["nonzeros_counted"] is True
    assert (view["totals"]["nonzero_params"], view["totals"]["sparsity"]) == (16, 0.5)


def test_cli_compare_with_a_sparsity_plan_counts_the_first_model_too(tmp_path: Path) -> None:
    """`compare A B --assume-sparsity 0.5` without --compression: the first model is profiled
    as it is, counted (else its Report is refused). B keeps 16, then round(16 x 0.5) = 8 of
    A's 32: nonzero ratio 8 / 32 = 0.25."""
    code, out, err = _cli(
        tmp_path,
        "compare",
        "MODELS:dense",
        "MODELS:half_zero",
        "--assume-sparsity",
        "0.5",
        "--format",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["rows"][-1]["nonzero_ratio"] == 0.25


class _Processor:
    """A plain object a module holds (an attention processor's fields)."""

    def __init__(self) -> None:
        self.flag = False
        self.seen: set[tuple[int, ...]] = set()
        self.caches: dict[str, dict[tuple[int, ...], torch.Tensor]] = {"masks": {}}


class _UsesProcessor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.processor = _Processor()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        processor = self.processor
        processor.flag = True
        processor.seen.add(tuple(x.shape))
        mask = processor.caches["masks"].setdefault(tuple(x.shape), torch.ones_like(x))
        return self.linear(x * mask)


@pytest.mark.parametrize("shapes_only", [True, False])
def test_an_objects_flag_set_and_nested_dict_are_put_back(shapes_only: bool) -> None:
    """docs/meta.md: the attributes of a plain object held in a module attribute
    (``self.config.flag = True``), and the lists, dicts and sets they hold, two levels down
    (``caches["masks"][shape]``): a shapes-only run would leave a meta mask there."""
    model = _UsesProcessor()
    processor, masks = model.processor, model.processor.caches["masks"]
    with torch.inference_mode():
        report = flopmeter.profile(model, torch.randn(2, 4), shapes_only=shapes_only)
    assert report.macs == 2 * 4 * 4  # rows 2 x in 4 x out 4 = 32
    assert (processor.flag, processor.seen, processor.caches) == (False, set(), {"masks": {}})
    assert processor.caches["masks"] is masks
    assert model(torch.ones(2, 4)).device.type == "cpu"


class _MoreFactories(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (
            torch.rand_like(x),
            torch.randint_like(x, 5),
            x.new_ones(3, 5),
            torch.zeros_like(x, dtype=torch.float64),
            x.new_empty_strided((2, 3), (1, 2)),
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_more_template_factories_read_nothing_and_allocation_writes_nothing(dtype: torch.dtype) -> None:
    """docs/formulas.md: a factory from a template reads none of x, only writes its output;
    an op that only allocates reads and writes nothing. x 4 x 6 = 24 elements."""
    size = torch.tensor([], dtype=dtype).element_size()  # 4 or 2 bytes
    report = flopmeter.profile(_MoreFactories(), torch.randn(4, 6, dtype=dtype))
    written = [op.cost.bytes_written for op in report.ops]
    # rand_like, randint_like 24 x size each; new_ones 15 x size; zeros_like float64 24 x 8 = 192;
    # new_empty_strided allocates only: 0
    assert written == [24 * size, 24 * size, 15 * size, 192, 0]
    assert [op.cost.bytes_read for op in report.ops] == [0] * 5


def test_a_tensor_subclass_weight_is_counted_without_asking() -> None:
    """docs/compression.md: "a quantized, packed or tensor-subclass weight": torchao's
    int8 weight-only Linear(8, 8) (an Int8Tensor weight) before a dense layer with zeros:
    4 rows x 4 kept of 8 = 16 counted."""
    quantization = pytest.importorskip("torchao.quantization")
    model = nn.Sequential(nn.Linear(8, 8), _half_zero())
    quantization.quantize_(model, quantization.Int8WeightOnlyConfig(), filter_fn=lambda _, name: name == "0")
    view = flopmeter.profile(model, X).compression
    assert view.nonzeros_counted
    assert view.layers["1"].weight_nonzero == 16
