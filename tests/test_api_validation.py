"""Bad arguments get a clear error naming what was wrong and what was expected (probe-1
D4, D11-D13, A12, A16, A19, H3, H5, H6, H9, H11, I3-I5, I13)."""

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.hardware import Hardware
from flopmeter.inputs import parse_spec


# ---------------------------------------------------------------- inputs
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shapes_only", [None, False])
def test_input_shape_builds_inputs_in_the_models_dtype(dtype, shapes_only):
    model = nn.Linear(4, 4).to(dtype)
    report = flopmeter.profile(model, input_shape=(2, 4), shapes_only=shapes_only)
    assert report.to_dict()["inputs"] == [
        {"name": "arg0", "shape": [2, 4], "dtype": str(dtype)[6:], "device": "cpu"}
    ]
    assert report.macs == 32  # 2 rows * 4 * 4


def test_input_dtype_overrides_and_accepts_a_torch_dtype():
    model = nn.Linear(4, 4).half()
    report = flopmeter.profile(model, input_shape=(2, 4), input_dtype=torch.float16)
    assert report.to_dict()["inputs"][0]["dtype"] == "float16"
    report = flopmeter.profile(nn.Linear(4, 4).double(), input_shape=(2, 4), input_dtype="float64")
    assert report.to_dict()["inputs"][0]["dtype"] == "float64"


def test_a_spec_with_its_own_dtype_keeps_it():
    model = nn.Embedding(10, 4).half()
    report = flopmeter.profile(model, input_shape="2x3:int64")
    assert report.to_dict()["inputs"][0]["dtype"] == "int64"


@pytest.mark.parametrize("bad", ["float99", "", torch.complex32, 3])
def test_a_bad_input_dtype_lists_the_valid_names(bad):
    with pytest.raises(ValueError, match="expected .*float32, float, fp32, float16"):
        flopmeter.profile(nn.Linear(4, 4), input_shape=(2, 4), input_dtype=bad)


def test_input_dtype_without_input_shape_is_refused():
    with pytest.raises(ValueError, match="input_dtype is for inputs built from input_shape"):
        flopmeter.profile(nn.Linear(4, 4), torch.randn(2, 4), input_dtype="float16")


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "8"])
def test_batch_size_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match=f"batch_size must be a positive int, got {bad!r}"):
        flopmeter.profile(nn.Linear(4, 4), torch.randn(2, 4), batch_size=bad)


@pytest.mark.parametrize("how", ["input_shape", "tensor"])
def test_an_empty_batch_is_refused(how):
    kwargs = {"input_shape": (0, 3, 8, 8)} if how == "input_shape" else {"inputs": torch.randn(0, 3, 8, 8)}
    with pytest.raises(ValueError, match=r"the batch is empty: the first input has shape \(0, 3, 8, 8\)"):
        flopmeter.profile(nn.Conv2d(3, 2, 3), **kwargs)


def test_a_huge_input_shape_is_counted_not_allocated():
    # 1x3x100000x100000 float32 would be 120 GB; a shapes-only count builds it on meta
    model = nn.Conv2d(3, 2, kernel_size=1, bias=False)
    report = flopmeter.profile(model, input_shape=(1, 3, 100_000, 100_000))
    assert report.options["computed"] == "shapes"
    assert report.macs == 60_000_000_000  # outputs 2*10^10 * C_in 3 * K 1
    assert report.flops == 100_000_000_000  # outputs 2*10^10 * (2*3*1 - 1)
    assert report.to_dict()["inputs"][0]["device"] == "cpu"  # the model's device


def test_the_values_fallback_builds_real_inputs_from_input_shape():
    class NeedsValues(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(x) if x.sum() > -1e9 else x

    report = flopmeter.profile(NeedsValues(), input_shape=(2, 4))
    assert report.options["computed"] == "values" and report.macs == 32  # 2*4*4


def test_a_spec_with_an_extra_field_says_so():
    with pytest.raises(ValueError, match="'extra' after the dtype"):
        parse_spec("x:1x3x224x224:int64:extra")
    assert parse_spec("x:1x3:int64").dtype == "int64"
    assert parse_spec("1x3").dtype is None  # the builder's default: the model's dtype


# ---------------------------------------------------------------- custom formulas
def test_register_formula_refuses_a_non_callable_and_keeps_the_registry_clean():
    with pytest.raises(
        TypeError, match=r"formula for the op aten.mm must be callable as formula\(event\), got 5"
    ):
        flopmeter.register_formula("aten.mm", 5)
    assert flopmeter.profile(nn.Linear(4, 4, bias=False), torch.randn(2, 4)).macs == 32


def test_a_formula_with_the_wrong_signature_is_refused_at_registration():
    with pytest.raises(TypeError, match=r"called as formula\(event\), but .* takes \(\)"):
        flopmeter.register_formula("aten.mm", lambda: 0)
    with pytest.raises(TypeError, match=r"formula\(module, inputs, output\)"):
        flopmeter.profile(nn.Linear(4, 4), torch.randn(2, 4), custom_formulas={nn.Linear: lambda event: 0})


def test_an_unknown_aten_op_is_refused_with_close_names():
    with pytest.raises(ValueError, match=r"no aten op 'aten.adddmm'.*did you mean aten.addmm"):
        flopmeter.register_formula("aten.adddmm", lambda event: 0)


def test_an_unknown_op_of_another_namespace_warns():
    try:
        with pytest.warns(UserWarning, match="torch knows no op 'mylib.does_not_exist'"):
            flopmeter.register_formula("mylib.does_not_exist", lambda event: 0)
    finally:
        flopmeter.unregister_formula("mylib.does_not_exist")


@pytest.mark.parametrize(
    ("result", "complaint"),
    [
        (-100, "returned -100"),
        (1.5, "returned 1.5"),
        (True, "returned True"),
        (flopmeter.Cost(macs=-1), "returned a Cost with macs=-1"),
        (flopmeter.Cost(flops=2.0), "returned a Cost with flops=2.0"),
    ],
)
def test_a_formula_returning_a_bad_cost_names_the_op_and_module(result, complaint):
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(
        flopmeter.FormulaError, match=rf"custom formula for aten.addmm \(in module '0'\) {complaint}"
    ):
        flopmeter.profile(model, torch.randn(2, 4), custom_formulas={"aten.addmm": lambda event: result})


def test_a_formula_that_raises_names_the_op_and_module_and_chains_the_error():
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(
        flopmeter.FormulaError, match=r"aten.addmm \(in module '0'\) raised ZeroDivisionError"
    ) as info:
        flopmeter.profile(model, torch.randn(2, 4), custom_formulas={"aten.addmm": lambda event: 1 // 0})
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_a_module_formula_that_raises_names_the_module():
    def broken(module, inputs, output):
        raise KeyError("weight")

    with pytest.raises(
        flopmeter.FormulaError, match=r"formula for Linear \(module Linear: in_features=4.*KeyError"
    ):
        flopmeter.profile(nn.Linear(4, 4), torch.randn(2, 4), custom_formulas={nn.Linear: broken})


def test_good_formulas_still_count():
    report = flopmeter.profile(
        nn.Linear(4, 4),
        torch.randn(2, 4),
        custom_formulas={"aten.addmm": lambda event: flopmeter.Cost(macs=7)},
    )
    assert report.macs == 7


# ---------------------------------------------------------------- hardware, benchmark, report
@pytest.mark.parametrize(
    ("peak", "bandwidth", "complaint"),
    [
        (1e12, 0, "bandwidth must be a positive bytes/s, got 0"),
        (1e12, -5.0, "bandwidth must be a positive bytes/s"),
        (-1, 1e9, "peak_flops must be a positive FLOP/s, got -1"),
        (0, 1e9, "peak_flops must be a positive FLOP/s"),
        ({"float32": 1e12, "float16": 0.0}, 1e9, "peak_flops for float16 must be a positive"),
        ({}, 1e9, "needs at least one dtype"),
        (float("inf"), 1e9, "peak_flops must be a positive"),
    ],
)
def test_hardware_rejects_impossible_numbers(peak, bandwidth, complaint):
    with pytest.raises(ValueError, match=complaint):
        Hardware("x", peak_flops=peak, bandwidth=bandwidth)


def test_benchmark_refuses_a_meta_model():
    with torch.device("meta"):
        model = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="on the meta device"):
        flopmeter.benchmark(model, torch.randn(2, 4, device="meta"))


def test_an_unknown_convention_is_a_value_error():
    report = flopmeter.profile(nn.Linear(4, 4), torch.randn(2, 4))
    for render in (report.to_html, lambda convention: report.to_markdown(convention=convention)):
        with pytest.raises(
            ValueError, match="unknown convention 'nope'; expected one of exact, 2mac, mac, ptflops"
        ):
            render(convention="nope")


def test_tensors_inside_one_argument_are_named_by_place():
    class Pair(nn.Module):
        def forward(self, pair):
            return pair[0] + pair[1]

    report = flopmeter.profile(Pair(), ((torch.randn(1, 8), torch.randn(1, 8)),))
    assert [entry["name"] for entry in report.to_dict()["inputs"]] == ["arg0[0]", "arg0[1]"]


def test_a_negative_markdown_depth_is_refused():
    report = flopmeter.profile(nn.Sequential(nn.Linear(4, 4)), torch.randn(2, 4))
    with pytest.raises(ValueError, match="depth must be None .* got -1"):
        report.to_markdown(depth=-1)
    assert "| 0 | Linear | 20 | 32 | 64 |" in report.to_markdown(depth=1)  # Linear(4, 4) on 2 rows
