"""Probe 6, adversarial: each test fails on the code before its fix (docs/probe-6/adversarial.md)."""

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.cli import main

MODEL_FILE = """
import torch.nn as nn
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 3)
    def forward(self, x):
        print("forward ran on", tuple(x.shape))
        return self.l(x)
def build():
    print("building the model")
    return M()
built = nn.Linear(4, 3)
EXAMPLE_INPUTS = "2x4"
"""


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "printing_model.py"
    path.write_text(MODEL_FILE)
    return str(path)


class Pooled(nn.Module):
    """Hands its two Linear(8, 8) to a thread pool, then adds their outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        with ThreadPoolExecutor(2) as pool:
            a, b = pool.submit(self.a, x), pool.submit(self.b, x)
            return a.result() + b.result()


def test_modules_run_on_worker_threads_warn_that_their_ops_are_not_counted():
    """P6-A1: the recorder follows the profiling thread; the two Linear calls (2*2*8*8 = 256
    MACs) ran in a pool and were a silent 0 beside the add (2*8 = 16 FLOPs)."""
    for shapes_only in (None, False):
        with pytest.warns(UserWarning, match=r"2 call\(s\) of the model's modules ran on other threads"):
            report = flopmeter.profile(Pooled(), torch.randn(2, 8), shapes_only=shapes_only)
        assert (report.macs, report.flops) == (0, 16)


def test_a_models_print_does_not_go_into_the_report(model_file, capsys):
    """P6-A2: the model's print() went to stdout, into the JSON: `> cost.json` was not JSON."""
    assert main([f"{model_file}:build", "-f", "json", "-q"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["totals"]["macs"] == 24  # 2*4*3
    assert "building the model" in err and "forward ran on (2, 4)" in err


class BrokenRepr(nn.Module):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.l, self.fail = nn.Linear(4, 3), fail

    def forward(self, x):
        if self.fail:
            raise ValueError("the model's own error")
        return self.l(x)

    def extra_repr(self) -> str:
        raise RuntimeError("extra_repr is broken")


def test_a_broken_extra_repr_is_shown_not_raised(model_file, tmp_path, capsys):
    """P6-A3: the report (and the CLI, with a traceback) died in the model's extra_repr;
    a forward error's message too."""
    report = flopmeter.profile(BrokenRepr(), torch.randn(2, 4))
    assert report.macs == 24  # 2*4*3
    assert "<extra_repr raised RuntimeError>" in str(report)
    with pytest.raises(flopmeter.ModelError, match="the model's own error"):
        flopmeter.profile(BrokenRepr(fail=True), torch.randn(2, 4))


def test_sizes_beyond_what_a_tensor_holds_are_refused_clearly(model_file):
    """P6-A4: a size whose tensor would overflow int64 bytes raised torch's C++ error (with
    its frames), exit 1; an ONNX dim raised onnx's 'Value out of range'."""
    with pytest.raises(ValueError, match="more than a tensor can hold"):
        flopmeter.profile(nn.Linear(4, 3), input_shape=(10**20, 4))
    with pytest.raises(ValueError, match="more than a tensor can hold"):
        flopmeter.profile(nn.Linear(4, 3), input_shape=(2**31, 2**31))  # 2**62 elements, 2**64 bytes
    huge = "99999999999999999999"
    for options in (
        ["-i", f"{huge}x4"],
        ["--batch-size", huge],
        ["--roofline", "h100-sxm", "--batch-sizes", f"1,{huge}"],
    ):
        assert main([f"{model_file}:build", "-q", *options]) == 2


def test_batch_sweep_estimates_count_inputs_without_allocating_them(model_file):
    """P6-A5: predict_batches (--roofline with --batch-sizes) repeated real inputs up to each
    batch: batch 2**36 of 4 floats asked for 1 TiB and failed (a single profile counts it on meta)."""
    estimates = flopmeter.predict_batches(
        nn.Linear(4, 3), input_shape=(1, 4), batch_sizes=[1, 2**36], hardware="h100-sxm"
    )
    assert [e.batch_size for e in estimates] == [1, 2**36]
    assert [e.rows[""].flops for e in estimates] == [24, 24 * 2**36]  # 2*4*3 per sample


def test_an_input_shape_given_as_a_list_of_ints_is_one_shape():
    """P6-A6: [2, 4] was read as two specs, 'got 2'; (2, 4.0) said the same."""
    assert flopmeter.profile(nn.Linear(4, 3), input_shape=[2, 4]).macs == 24  # 2*4*3
    with pytest.raises(TypeError, match=r"sizes must be ints, got \(2, 4.0\)"):
        flopmeter.profile(nn.Linear(4, 3), input_shape=(2, 4.0))


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("train", "yes", "train must be True, False or None"),
        ("backward", "no", "backward must be True or False"),
        ("shapes_only", "no", "shapes_only must be True, False or None"),
        ("name", 3, "name must be a str"),
    ],
)
def test_flags_of_the_wrong_type_are_refused(flag, value, message):
    """P6-A7: train="yes" reached torch's Module.train (its own ValueError), backward="no"
    was true, shapes_only="no" was true, name=3 broke to_html with an AttributeError."""
    with pytest.raises(TypeError, match=message):
        flopmeter.profile(nn.Linear(4, 3), torch.randn(2, 4), **{flag: value})


def test_backward_under_inference_mode_says_where_autograd_went():
    """P6-A8: the message blamed the model's forward ('does its forward run under no_grad?')."""
    with (
        torch.inference_mode(),
        pytest.raises(ValueError, match=r"cannot run under torch.inference_mode\(\)"),
    ):
        flopmeter.profile(nn.Linear(4, 3), torch.randn(2, 4), backward=True)


@dataclass
class Output:
    hidden: torch.Tensor
    steps: int


class DataclassOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x):
        return Output(self.l(x), 1)


def test_backward_of_a_dataclass_output_differentiates_its_tensors():
    """P6-A9: refused with 'the model returned Output with no tensor in it'."""
    report = flopmeter.profile(DataclassOut(), torch.randn(3, 4), backward=True)
    # forward 3*4*4 = 48 MACs; backward: the weight's gradient, 48 (x needs no gradient)
    assert (report.forward.macs, report.backward_cost.macs) == (48, 48)


def test_a_complex_model_gets_complex_inputs_from_a_shape():
    """P6-A10: input_shape built float32 inputs for a complex64 model (a dtype error)."""
    model = nn.Linear(4, 3).to(torch.complex64)
    report = flopmeter.profile(model, input_shape=(2, 4))
    assert report.inputs[0]["dtype"] == "complex64"
    assert report.macs == 4 * 24  # 2*4*3 = 24 complex MACs, 4 real MACs each (probe 14)
    assert report.bytes_read == 184  # (2*4 input + 12 weight + 3 bias) * 8 bytes


def test_a_model_built_in_the_file_is_taken_as_it_is(model_file, capsys):
    """P6-A11: FILE.py:NAME naming a module instance called it with no input (its forward)."""
    assert main([f"{model_file}:built", "-i", "2x4", "-q"]) == 0
    assert "24 MACs" in capsys.readouterr().out  # 2*4*3
    assert main([f"{model_file}:built", "-i", "2x4", "--set", "a=1"]) == 2
    assert "a model already built" in capsys.readouterr().err


def test_an_onnx_dim_beyond_int64_is_refused(tmp_path):
    """P6-A4 (ONNX): dims={'T': 10**20} raised onnx's ValueError 'Value out of range'."""
    pytest.importorskip("onnx")
    path = tmp_path / "linear.onnx"
    torch.onnx.export(
        nn.Linear(8, 8),
        (torch.randn(2, 8),),
        str(path),
        input_names=["x"],
        dynamic_axes={"x": {0: "B"}},
        dynamo=False,
    )
    with pytest.raises(flopmeter.OnnxModelError, match="must fit in int64"):
        flopmeter.profile_onnx(str(path), dims={"B": 10**20})


class TwoParents(nn.Module):
    """One Linear(4, 4) held by two parents: ``a`` and ``b[0]``."""

    def __init__(self) -> None:
        super().__init__()
        shared = nn.Linear(4, 4)
        self.a, self.b = shared, nn.Sequential(shared, nn.ReLU())

    def forward(self, x):
        return self.b(self.a(x))


def test_a_module_held_by_two_parents_is_charged_where_it_was_called():
    """P6-A12, fixed at stop 19 (docs/modes.md; tests/test_module_sharing.py): the call
    made by 'b' goes to 'b.0', the model's own call to 'a'. Totals are right."""
    report = flopmeter.profile(TwoParents(), torch.randn(2, 4))
    assert report.macs == 64  # 2 calls * 2*4*4
    assert report.flops == 136  # 2 calls * 2*4*2*4 (bias) = 128, ReLU 2*4 = 8
    modules = report.by_module()
    assert (modules["a"].calls, modules["a"].total.macs) == (1, 32)
    assert (modules["b"].total.macs, modules["b"].total.flops) == (32, 72)  # b.0's 64 + ReLU 8
    assert (modules["b.0"].calls, modules["b.0"].total.macs) == (1, 32)


def test_nested_tensor_inputs_are_refused_with_a_clear_message():
    """P6-A13: torch's 'NestedTensorImpl doesn't support sizes' (batch rule) or a
    NotImplementedError for 'aten::_to_copy' on NestedTensorMeta came out raw."""
    jagged = torch.nested.nested_tensor([torch.randn(2, 4), torch.randn(3, 4)])
    for options in ({}, {"batch_size": 2}, {"batch_size": 2, "shapes_only": False}):
        with pytest.raises(ValueError, match="nested .jagged. tensor inputs are not supported"):
            flopmeter.profile(nn.Linear(4, 4), jagged, **options)


def test_an_llm_prompt_past_what_a_tensor_holds_is_refused():
    """P6-A14: llm_cost(prompt=10**20) raised torch's C++ overflow from torch.zeros."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        num_hidden_layers=1,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
    )
    with pytest.raises(ValueError, match="more than a tensor can hold"):
        flopmeter.llm_cost(config, prompt=10**20)


def test_a_parameter_passed_as_the_input_counts_the_same_on_shapes_and_with_values():
    """P6-A15: the shapes-only run moved the input to meta as a copy, so the weight read
    through it counted as an activation: weight_bytes 263,168 on shapes, 525,312 with values."""
    model = nn.Linear(256, 256)
    shapes = flopmeter.profile(model, (model.weight,))
    values = flopmeter.profile(model, (model.weight,), shapes_only=False)
    assert shapes.options["computed"] == "shapes"
    for report in (shapes, values):
        assert report.macs == 16_777_216  # 256 rows * 256 * 256
        # W read twice (as the input and as the weight) + the bias: 2*256*256*4 + 256*4
        assert report.to_dict()["totals"]["weight_bytes"] == 525_312
        assert report.bytes_read == 525_312


def test_the_ptflops_drop_in_leaves_the_random_stream_and_allocates_nothing():
    """P6-A16: get_model_complexity_info drew its input with torch.randn (the user's random
    stream moved; ptflops' own does not) and allocated it: (3, 10**10, 10**10) raised torch's
    'Storage size calculation overflowed'."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    state = torch.get_rng_state()
    macs, params = flopmeter.get_model_complexity_info(
        model, (3, 8, 8), as_strings=False, print_per_layer_stat=False
    )
    assert torch.equal(torch.get_rng_state(), state)
    # conv 3*3*3 * 6*6 * 8 = 7,776 MACs + bias 288 (ptflops counts it) + ReLU 6*6*8 = 288
    assert (macs, params) == (8_352, 224)
    with pytest.raises(ValueError, match="more than a tensor can hold"):
        flopmeter.get_model_complexity_info(model, (3, 10**10, 10**10), print_per_layer_stat=False)


class FailsOnItsThirdCall(nn.Module):
    """Counts its calls in a list outside itself (a profile puts its own attributes back)."""

    calls: list[int] = []

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 3)

    def forward(self, x):
        self.calls.append(1)
        if len(self.calls) == 3:
            raise RuntimeError("the third call fails")
        return self.l(x)


def test_a_model_failing_in_a_timed_run_is_a_model_error(tmp_path, capsys):
    """P6-A17: its profile passed, then a timed run raised: benchmark() let the raw error out
    and `--bench` printed a Python traceback (exit 1)."""
    FailsOnItsThirdCall.calls.clear()
    with pytest.raises(flopmeter.ModelError, match="in a run benchmark.. timed.*the third call fails"):
        flopmeter.benchmark(FailsOnItsThirdCall(), torch.randn(2, 4), warmup=1, repeat=3)
    path = tmp_path / "flaky.py"
    path.write_text(
        "import torch.nn as nn\nN = [0]\nclass M(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.l = nn.Linear(4, 3)\n"
        "    def forward(self, x):\n        N[0] += 1\n"
        "        if N[0] == 4:\n            raise RuntimeError('the fourth call fails')\n"
        "        return self.l(x)\nEXAMPLE_INPUTS = '2x4'\n"
    )
    assert main([f"{path}:M", "--bench", "--warmup", "1", "--repeat", "5", "-q"]) == 1
    err = capsys.readouterr().err
    assert "the fourth call fails" in err and "Traceback" not in err


class CatchesItsOwnFailure(nn.Module):
    """A real run takes ``big`` (64*64 weights); ``.item()`` fails on meta, and the model's own
    ``except`` then took ``small`` in the shapes-only run."""

    def __init__(self) -> None:
        super().__init__()
        self.big, self.small = nn.Linear(64, 64), nn.Linear(64, 2)

    def forward(self, x):
        try:
            scale = float(x.abs().max().item())
            return self.big(x) / scale
        except RuntimeError:
            return self.small(x)


def test_a_model_that_catches_an_ops_failure_on_meta_is_counted_with_values():
    """P6-A18: 256 MACs (small: 2*64*2) reported as computed on shapes; the real call runs
    big: 2*64*64 = 8,192 MACs."""
    model, x = CatchesItsOwnFailure(), torch.randn(2, 64)
    report = flopmeter.profile(model, x)
    assert (report.macs, report.options["computed"]) == (8_192, "values")
    assert report.macs == flopmeter.profile(model, x, shapes_only=False).macs
    with pytest.raises(flopmeter.ModelError, match="shapes-only run"):
        flopmeter.profile(model, x, shapes_only=True)  # asked for shapes: refused, not wrong


@pytest.mark.parametrize("option", ["-o", "--html", "--plot"])
def test_an_output_file_that_is_the_models_own_file_is_refused(model_file, option, capsys):
    """P6-A19: `flopmeter model.py:build -o model.py` replaced the user's model file with the
    report (an .onnx file and a config.json too), exit 0."""
    source = open(model_file).read()
    assert main([f"{model_file}:build", "-q", option, model_file]) == 2
    assert "that is the file the model" in capsys.readouterr().err
    assert open(model_file).read() == source


def test_a_report_pickles_for_multiprocessing():
    """P6-A20: pickle.dumps(report) raised "Can't pickle local object 'finish.<locals>.<lambda>'"
    (the lazy compression view), so a multiprocessing.Pool could not return Reports."""
    import pickle

    report = flopmeter.profile(nn.Sequential(nn.Linear(8, 8), nn.GELU()), torch.randn(2, 8))
    copy = pickle.loads(pickle.dumps(report))
    assert copy.to_dict() == report.to_dict()
    assert copy.macs == 128  # 2*8*8
    assert str(copy.compression) == str(report.compression)


def test_a_torch_export_module_is_counted_in_the_mode_its_graph_fixes():
    """P6-A21: profile() asked the exported module for eval mode, and torch.export's module
    raises NotImplementedError('Calling train() is not supported yet.'), raw."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
    x = torch.randn(2, 3, 8, 8)
    exported = torch.export.export(model.eval(), (x,)).module()
    report = flopmeter.profile(exported, x)
    # conv 2 * 6*6*4 * 3*3*3 = 7,776 + linear 2*144*2 = 576 MACs, as the original
    assert report.macs == 8_352 == flopmeter.profile(model, x).macs
    assert report.flops == flopmeter.profile(model, x).flops
    timing = flopmeter.benchmark(exported, x, warmup=1, repeat=2)[0]  # benchmark() asked eval() too
    assert timing.flops == report.flops


def test_a_model_file_returning_a_torch_export_module_is_counted(tmp_path, capsys):
    """P6-A21 (CLI): the loader's model.eval() raised NotImplementedError with a traceback."""
    path = tmp_path / "exported.py"
    path.write_text(
        "import torch, torch.nn as nn\n"
        "def build():\n"
        "    model = nn.Sequential(nn.Linear(4, 3)).eval()\n"
        "    return torch.export.export(model, (torch.randn(2, 4),)).module()\n"
        "EXAMPLE_INPUTS = '2x4'\n"
    )
    assert main([f"{path}:build", "-q"]) == 0
    assert "24 MACs" in capsys.readouterr().out  # 2*4*3


class CompiledInside(nn.Module):
    """A submodule compiled with torch.compile, called by the model's own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.block = torch.compile(nn.Sequential(nn.Linear(8, 8), nn.ReLU()))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.block(x))


def test_code_compiled_in_place_or_inside_the_model_is_not_compiled_by_a_profile():
    """P6-A22: `model.compile()` (no OptimizedModule to unwrap) and a compiled submodule were
    compiled by dynamo under the profile, flopmeter's dispatch mode with them: 12 graphs and
    ~2 s of CPU for a 3-layer model, meta graphs filling the recompile limit."""
    from torch._dynamo.utils import counters

    in_place = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    in_place.compile()
    torch._dynamo.reset()
    counters.clear()
    for model in (in_place, CompiledInside()):
        for options in ({}, {"shapes_only": False}):
            report = flopmeter.profile(model, torch.randn(2, 8), **options)
            assert report.macs == 160  # 2*8*8 + 2*8*2
    assert counters["frames"]["total"] == 0  # dynamo was asked to compile nothing
    assert torch.compiler.is_compiling() is False
    with torch.no_grad():
        in_place(torch.randn(2, 8))  # the stance is back: a plain call compiles
    assert counters["frames"]["total"] >= 1
    torch._dynamo.reset()
