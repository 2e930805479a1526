"""Probe 7 (a new user and an adversarial tester on the docs as written): each test
failed before its fix; hand counts beside the expected values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import flopmeter

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import OnnxModelError, profile_onnx  # noqa: E402


def _einsum_graph() -> onnx.ModelProto:
    """y = einsum('bi,ij->bj', x, W), x (3, 8), W an (8, 6) initializer: what the legacy
    exporter writes for a module that calls torch.einsum on its own Parameter."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 6])
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32), "W")
    node = helper.make_node("Einsum", ["x", "W"], ["y"], equation="bi,ij->bj")
    graph = helper.make_graph([node], "einsum", [x], [y], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_an_einsum_operand_initializer_is_a_parameter() -> None:
    # P7-1: the legacy export of torch.einsum("bi,ij->bj", x, self.w) lost the 48 params
    report = profile_onnx(_einsum_graph())
    assert report.macs == 3 * 8 * 6  # 144
    assert report.params == 8 * 6  # 48: the (8, 6) weight, as the PyTorch module counts it


def test_a_declared_input_dim_of_0_is_refused_not_counted_as_nothing() -> None:
    # P7-2: a model whose input declares a static dim of 0 counted 0 MACs without a word
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [0, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    weight = numpy_helper.from_array(np.ones((4, 8), np.float32), "W")
    node = helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)
    model = helper.make_model(
        helper.make_graph([node], "g", [x], [y], [weight]), opset_imports=[helper.make_opsetid("", 17)]
    )
    with pytest.raises(OnnxModelError, match=r"input 'x'.*dim of 0.*--input"):
        profile_onnx(model)
    # giving the shape replaces the declared one: 2*8*4 = 64 MACs
    assert profile_onnx(model, inputs={"x": (2, 8)}).macs == 64


def _linear_with_zeros(in_features: int, out_features: int, zeros: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features, bias=False)
    with torch.no_grad():
        layer.weight.copy_(
            torch.arange(1, in_features * out_features + 1, dtype=torch.float32).view_as(layer.weight)
        )
        layer.weight.view(-1)[:zeros] = 0
    return layer


def test_micronet_charges_a_mask_only_when_sparse_storage_is_smaller() -> None:
    # P7-3: a dense layer with one exact zero (random init makes a few: resnet18 had 2) was
    # charged a 1-bit mask for every weight, more than storing it dense
    one_zero = flopmeter.profile(_linear_with_zeros(64, 2, zeros=1), torch.randn(1, 64), compression=True)
    score = flopmeter.micronet(one_zero.compression, "imagenet")
    assert score.freebie
    # dense at the 16-bit freebie: 128 * 16 = 2,048 bits = 64 words; sparse would be
    # 127 * 16 + 128 mask bits = 2,160 bits (67.5 words), so the layer is stored dense
    assert score.storage == 64.0
    half = flopmeter.profile(_linear_with_zeros(64, 2, zeros=64), torch.randn(1, 64), compression=True)
    # 64 kept * 16 + 128 mask bits = 1,152 bits = 36 words < 64: sparse
    assert flopmeter.micronet(half.compression, "imagenet").storage == 36.0


def test_ideal_bytes_take_the_smallest_sparse_format() -> None:
    # P7-4: a 4:8 weight was stored with its N:M index (3 bits per kept value) though the
    # bitmask (1 bit per weight) is smaller, and the N:M index was never compared with dense
    layer = nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        layer.weight[:, 4:] = 0  # 4 of every 8 along the reduction: structure 4:8
    view = flopmeter.profile(layer, torch.randn(2, 8), compression=True).compression
    fact = view.layers[""]
    assert fact.structure == "4:8"
    # 16 kept * 4 bytes = 64; bitmask 32 / 8 = 4 -> 68 (the 4:8 index: 16 * 3 / 8 = 6 -> 70)
    assert fact.bytes_ideal == 68
    # at 2 weight bits: dense 32 * 2 / 8 = 8 bytes; 4:8 would be 16 * 2 / 8 + 6 = 10,
    # a bitmask 4 + 4 = 8 (a tie: dense); + 4 fp16 row scales = 8 bytes
    assert view.assume(bits="w2a16").layers[""].bytes_ideal == 8 + 4 * (2 + 1)


@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("names", [("weight", "bias"), ("bias",)])
def test_a_pruned_bias_is_overhead_and_its_mask_is_stored(backward: bool, names: tuple[str, ...]) -> None:
    # P7-5: torch's pruning tutorial prunes `bias` too; its mask multiply was counted as the
    # model's FLOPs (forward when only the bias was pruned, the gradient's in a backward
    # profile) and its mask buffer left out of the stored bytes
    from torch.nn.utils import prune

    dense = nn.Linear(10, 4)
    pruned = nn.Linear(10, 4)
    for name in names:
        prune.l1_unstructured(pruned, name, amount=0.5)
    x = torch.randn(3, 10)
    before = flopmeter.profile(dense, x, backward=backward)
    after = flopmeter.profile(pruned, x, backward=backward)
    # forward: 3 rows * 4 outputs * (2*10 - 1) + 3*4 bias adds = 240, as the dense layer
    assert after.flops == before.flops
    assert not backward or after.flops > 240
    # overhead: weight_orig * weight_mask (40 FLOPs) and bias_orig * bias_mask (4) forward;
    # in a backward profile the gradients' multiplies by the masks too (40 + 4)
    mask_flops = (40 if "weight" in names else 0) + 4
    assert after.overhead["aten.mul"].cost.flops == mask_flops * (2 if backward else 1)
    layer = after.compression.layers[""]
    # weight (160 bytes; + a 160-byte mask when pruned) + bias_orig 16 + bias_mask 16
    assert layer.bytes_actual == 160 * len(names) + 32


def _dense_and_pruned() -> tuple[nn.Module, nn.Module]:
    from torch.nn.utils import prune

    dense = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    pruned = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    prune.l1_unstructured(pruned[0], "weight", amount=0.5)
    return dense, pruned


@pytest.mark.parametrize(
    ("before_options", "after_options", "names"),
    [
        ({}, {"rows": 64}, "batch 1, the second batch 64"),
        ({"backward": True}, {}, "forward \\+ backward, the second forward;"),
        ({"train": True}, {}, "train mode, the second eval mode"),
    ],
)
def test_compare_refuses_reports_of_different_runs(
    before_options: dict[str, object], after_options: dict[str, object], names: str
) -> None:
    # P7-6: compare(Report at batch 1, Report at batch 64) printed every layer "structural",
    # a MAC speedup of 0.016x and a BOPs ratio of 38.4; a training step against an inference
    # a speedup estimate of 2.75x: ratios of two different runs, not of two models
    dense, pruned = _dense_and_pruned()

    def run(model: nn.Module, options: dict[str, object]) -> flopmeter.Report:
        options = dict(options)
        rows = int(options.pop("rows", 1))  # type: ignore[call-overload]
        return flopmeter.profile(model, torch.randn(rows, 16), **options)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match=names):
        flopmeter.compare(run(dense, before_options), run(pruned, after_options))


def test_compare_of_reports_of_the_same_run_still_compares() -> None:
    dense, pruned = _dense_and_pruned()
    x = torch.randn(4, 16)
    result = flopmeter.compare(
        flopmeter.profile(dense, x, compression=True), flopmeter.profile(pruned, x, compression=True)
    )
    # 0: 256 weights, 128 kept; MACs effective (4 rows): 4*(128 + 64) = 768 vs 4*(256 + 64) = 1,280
    assert result.layers[0].change == "in place"
    assert result.layers[0].mac_speedup_effective == 2.0


def test_assumed_bits_for_a_prefix_that_names_no_module_are_refused() -> None:
    # P7-7: a mistyped prefix ({"fc1": ...} for a model whose layer is "fc") left the
    # plan as the model is, with no word: BOPs as if nothing were assumed
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    view = flopmeter.profile(model, torch.randn(2, 16)).compression
    with pytest.raises(ValueError, match=r"'5'.*no module"):
        view.assume(bits={"": "w8a8", "5": "w4a16"})
    # "0" names the first Linear: (2*16*16 = 512 MACs at 4x16 + 2*16*4 = 128 at 32x32) / (640 * 32*32)
    plan = view.assume(bits={"0": "w4a16"})
    assert plan.bops_relative == (512 * 4 * 16 + 128 * 32 * 32) / (640 * 32 * 32)


def test_a_transformers_config_source_is_the_bare_model_without_its_head() -> None:
    # README (P7-8): `transformers:CONFIGCLASS` builds AutoModel, not the causal LM, so the
    # 70B example (80 layers of width 8192, MLP 28672, 64 heads, 8 KV heads) counts no lm_head
    from flopmeter.models import load_model

    pytest.importorskip("transformers")
    overrides = {
        "num_hidden_layers": 1,
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
    }
    model = load_model("transformers:LlamaConfig", overrides=overrides, meta=True).model
    assert type(model).__name__ == "LlamaModel" and not hasattr(model, "lm_head")
    # one layer: q, o 8192*8192 each; k, v 8192*1024 each; MLP 3*8192*28672; 2 norms of 8192
    layer = 2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672 + 2 * 8192  # 855,654,400
    embed, final_norm = 32_000 * 8192, 8192  # 262,144,000 and 8,192
    assert sum(p.numel() for p in model.parameters()) == embed + layer + final_norm
    # 80 layers: 68,714,504,192 = 68.71 G (with a 262,144,000 lm_head it would be 68.98 G)
    assert embed + 80 * layer + final_norm == 68_714_504_192


def test_the_compression_view_of_a_backward_profile_is_its_forward_view() -> None:
    # P7-9: with backward=True the view's MACs (dense, effective) and BOPs were the forward's
    # but its FLOPs effective added the backward's dense FLOPs: 957.38 K against 266.40 K
    # dense MACs for a pruned conv + linear, a saving neither pass has
    from torch.nn.utils import prune

    layer = nn.Linear(16, 8)
    prune.custom_from_mask(layer, "weight", (torch.arange(16) < 8).float().expand(8, 16))
    x = torch.randn(4, 16)
    forward = flopmeter.profile(layer, x).compression
    both = flopmeter.profile(layer, x, backward=True).compression
    # R = 4 rows, 8 nonzeros in each of 8 rows: 4 * 8 * (2*8 - 1) + 4*8 bias adds = 512
    assert forward.flops_effective == 512
    assert both.flops_effective == 512
    assert both.layers[""].flops_effective == 512
    assert (
        (both.macs_dense, both.macs_effective) == (forward.macs_dense, forward.macs_effective) == (512, 256)
    )


def _gemm_file(path: Path, rows: int | str) -> Path:
    """x (rows, 8) -> Gemm with a (4, 8) weight: rows * 8 * 4 MACs; ``rows`` a dim name
    for a dynamic export."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    weight = numpy_helper.from_array(np.ones((4, 8), np.float32), "W")
    node = helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)
    model = helper.make_model(
        helper.make_graph([node], "g", [x], [y], [weight]), opset_imports=[helper.make_opsetid("", 17)]
    )
    onnx.save(model, path)
    return path


def test_compare_with_compression_refuses_an_onnx_file_before_counting(tmp_path: Path) -> None:
    # P7-10: the refusal came after both models were counted, in the Python API's words
    # ("compare needs Reports with a compression view (profiled by flopmeter.profile)")
    from flopmeter.cli import run

    static = _gemm_file(tmp_path / "static.onnx", 2)
    code, out, err = run(["compare", str(static), str(static), "--compression"])
    assert code == 2 and not out
    assert "--compression: the compression view needs PyTorch models" in err and "counting" not in err


def test_compare_binds_each_dim_in_the_onnx_files_that_have_it(tmp_path: Path) -> None:
    # P7-11: `compare static.onnx dynamic.onnx --dim N=2` refused the static file ("dim 'N' is
    # not a symbolic dim of any input"): a static and a dynamic export could not be compared
    from flopmeter.cli import run

    static = _gemm_file(tmp_path / "static.onnx", 2)
    dynamic = _gemm_file(tmp_path / "dynamic.onnx", "N")
    code, out, err = run(["compare", str(static), str(dynamic), "--dim", "N=3", "-f", "json", "-q"])
    assert code == 0, err
    import json

    rows = json.loads(out)["rows"]
    assert [row["macs"] for row in rows] == [2 * 8 * 4, 3 * 8 * 4]  # 64 and 96
    # a dim that no file has is still refused, naming the files' dims
    code, _, err = run(["compare", str(static), str(dynamic), "--dim", "T=3"])
    assert code == 2 and "'T'" in err and "N" in err


def test_an_assumed_sparsity_prunes_a_pruned_weight_further_never_back() -> None:
    # P7-12: assume(sparsity=...) on a weight already pruned counted from the dense size: a
    # Linear(16, 8) with rows 4..7 pruned away (64 of 128 kept) "assumed 2:4" kept 8 in every
    # row, 64: the plan put the pruned rows back
    from torch.nn.utils import prune

    layer = nn.Linear(16, 8)
    prune.custom_from_mask(layer, "weight", (torch.arange(8) < 4).float()[:, None].expand(8, 16))
    view = flopmeter.profile(layer, torch.randn(2, 16)).compression
    assert view.layers[""].weight_nonzero == 64
    # 2:4 keeps 8 of a full row of 16, nothing of an empty one: 4 * 8 = 32; R = 2 rows of x
    two_four = view.assume(sparsity="2:4").layers[""]
    assert (two_four.weight_nonzero, two_four.macs_effective) == (32, 64)
    # 0.5 prunes round(64 * 0.5) = 32 of the 64 kept, as prune.l1_unstructured on it would:
    # 32 left, 8 in each of the 4 live rows: FLOPs 2 * 4 * (2*8 - 1) + 2*8 bias adds = 136
    half = view.assume(sparsity=0.5).layers[""]
    assert (half.weight_nonzero, half.macs_effective, half.flops_effective) == (32, 64, 136)
    again = nn.Linear(16, 8)
    prune.custom_from_mask(again, "weight", (torch.arange(8) < 4).float()[:, None].expand(8, 16))
    prune.l1_unstructured(again, "weight", amount=0.5)
    assert int(again.weight_mask.sum()) == 32
    # a dense weight is planned as before: 128 - round(128 * 0.5) = 64, 8 per row
    dense = flopmeter.profile(nn.Linear(16, 8), torch.randn(2, 16), compression=True)
    dense = dense.compression.assume(sparsity=0.5)
    assert dense.layers[""].weight_nonzero == 64


def test_compare_plot_that_cannot_be_written_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    # P7-13: `compare A B --compression --plot /proc/x.png` passed the early check (root may
    # "write" to /proc by access()) and then raised FileNotFoundError from matplotlib: a raw
    # traceback, exit 1. The single-model --plot turns it into a message; compare now does too
    from flopmeter.cli import run

    source = tmp_path / "two.py"
    source.write_text(
        "from torch import nn\nEXAMPLE_INPUTS = '1x8'\n"
        "def a():\n    return nn.Linear(8, 4)\n"
        "def b():\n    return nn.Linear(8, 4)\n"
    )
    code, _, err = run(["compare", f"{source}:a", f"{source}:b", "--compression", "--plot", "/proc/p7.png"])
    assert code == 2, err
    assert "--plot /proc/p7.png" in err and "Traceback" not in err


def test_llm_mode_plot_that_cannot_be_written_is_a_message_not_a_traceback() -> None:
    # As P7-13 in LLM mode (seen by probe 7, fixed by the lead): `--prompt 8 --plot
    # /proc/x.png` passed the early check and then raised FileNotFoundError from matplotlib
    from flopmeter.cli import run

    tiny = [f"--set={key}={value}" for key, value in (
        ("num_hidden_layers", 1), ("hidden_size", 64), ("intermediate_size", 128),
        ("num_attention_heads", 4), ("num_key_value_heads", 4), ("vocab_size", 100),
    )]  # fmt: skip
    code, _, err = run(
        ["transformers:LlamaConfig", *tiny, "--prompt", "8", "--generate", "4", "--plot", "/proc/p7.png"]
    )
    assert code == 2, err
    assert "--plot /proc/p7.png: cannot write" in err and "Traceback" not in err


def test_threads_far_beyond_the_cpus_are_refused_not_a_crash() -> None:
    # P7-14: `--threads 100000 --bench` crashed the process (libgomp "Thread creation
    # failed", then SIGSEGV, exit 139) after counting; now a usage error before anything runs
    import os

    from flopmeter.cli import run

    limit = 4 * (os.cpu_count() or 1)
    code, out, err = run(["torchvision:resnet18", "--bench", "--threads", str(limit + 1)])
    assert code == 2 and not out
    assert f"--threads takes 1 to {limit}" in err and "counting" not in err


@pytest.mark.parametrize("mode", ["--backward", "--train"])
def test_bench_with_a_training_count_is_refused(tmp_path: Path, mode: str) -> None:
    # P7-15: `--backward --bench` counted a training step (fwd + bwd) and timed an inference
    # forward (benchmark: eval mode, no_grad), with no word; `--train --bench` timed eval mode
    from flopmeter.cli import run

    source = tmp_path / "tiny.py"
    source.write_text(
        "from torch import nn\nEXAMPLE_INPUTS = '1x8'\ndef build():\n    return nn.Linear(8, 4)\n"
    )
    for argv in ([f"{source}:build", "--repeat", "2"], ["compare", f"{source}:build", f"{source}:build"]):
        code, out, err = run([*argv, mode, "--bench"])
        assert code == 2 and not out, err
        assert "--bench times an inference forward" in err and mode in err and "counting" not in err


class _FloatThenInt8(nn.Module):
    """A float Linear, then an eagerly quantized int8 Linear as the last layer."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Linear(8, 8)
        self.quant = torch.ao.quantization.QuantStub()
        self.fc = nn.Linear(8, 8)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.fc(self.quant(self.pre(x))))


@pytest.mark.filterwarnings("ignore")
def test_backward_of_an_int8_model_names_its_quantized_layers() -> None:
    # N1 (seen by probe 7, fixed by the lead): the float layer's parameters require grad but
    # the int8 layer after it has no backward; the message asked whether the forward ran
    # under torch.no_grad()
    model = _FloatThenInt8().eval()
    model.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    model.pre.qconfig = None
    torch.ao.quantization.prepare(model, inplace=True)
    model(torch.randn(4, 8))
    torch.ao.quantization.convert(model, inplace=True)
    with pytest.raises(
        ValueError, match=r"its quantized layers \(fc \(Linear\)\) have no gradient"
    ) as raised:
        flopmeter.profile(model, torch.randn(2, 8), backward=True)
    assert "no_grad" not in str(raised.value)
