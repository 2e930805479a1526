"""Review B of probe 7 (docs/probe-7/review-b.md): neighbouring cases of the probe-7 fixes. Each
test failed before its fix; hand counts beside the expected values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import flopmeter

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import OnnxModelError, profile_onnx  # noqa: E402


def _empty_cache_graph() -> onnx.ModelProto:
    """What the legacy exporter writes for ``fc(torch.cat([past, x]))`` traced with an empty
    cache: x (2, 8) and past (0, 8), both static; Gemm with a (4, 8) weight."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    past = helper.make_tensor_value_info("past", TensorProto.FLOAT, [0, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    weight = numpy_helper.from_array(np.ones((4, 8), np.float32), "W")
    nodes = [
        helper.make_node("Concat", ["past", "x"], ["joined"], axis=0),
        helper.make_node("Gemm", ["joined", "W"], ["y"], transB=1),
    ]
    graph = helper.make_graph(nodes, "cache", [x, past], [y], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_an_empty_later_input_is_counted_as_pytorch_counts_it() -> None:
    # R7b-1: P7-2 refused every declared dim of 0, so an export with an empty KV cache (a
    # later input) could not be counted at all (inputs= refuses a 0 too); PyTorch's profile
    # of the same module counts it: (0 + 2) rows * 8 * 4 = 64 MACs
    assert profile_onnx(_empty_cache_graph()).macs == 64
    assert profile_onnx(_empty_cache_graph(), inputs={"past": (0, 8)}).macs == 64

    class Cached(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 4, bias=False)

        def forward(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.cat([past, x]))

    assert flopmeter.profile(Cached(), (torch.randn(2, 8), torch.zeros(0, 8))).macs == 64
    # an empty first input is still refused (P7-2: every count would be 0)
    with pytest.raises(OnnxModelError, match=r"input 'x'.*a dim of 0"):
        profile_onnx(_empty_cache_graph(), inputs={"x": (0, 8)})


def test_a_sparse_format_that_only_ties_with_dense_is_named_dense() -> None:
    # R7b-2: P7-4 took the smallest format but put the bitmask before dense, so a tie
    # was named "bitmask" (the code before named a tie dense, and P7-4's test says so)
    layer = nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        layer.weight[:, 4:] = 0  # 16 of 32 kept, structure 4:8
    plan = (
        flopmeter.profile(layer, torch.randn(2, 8), compression=True)
        .compression.assume(bits="w2a16")
        .layers[""]
    )
    # 2 bits: dense 32 * 2 / 8 = 8 bytes; bitmask 16 * 2 / 8 + 32 / 8 = 8 (a tie); 4:8 4 + 6 = 10
    assert plan.ideal_format == "dense"
    # at 32 bits the bitmask wins (64 + 4 = 68 < 128) and keeps its name
    assert (
        flopmeter.profile(layer, torch.randn(2, 8), compression=True).compression.layers[""].ideal_format
        == "bitmask"
    )


def test_compare_of_another_batch_says_how_to_give_the_batch() -> None:
    # R7b-3: a model whose first input is sequence-first (its own code transposes) has its
    # leading dim taken for the batch; compare refused two sequence lengths as "batch 5" vs
    # "batch 7" with no word of batch_size=, the way to say which dim is the batch
    class SeqFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.transpose(0, 1))

    dense, pruned = SeqFirst(), SeqFirst()
    prune.l1_unstructured(pruned.fc, "weight", amount=0.5)
    short, long = torch.randn(5, 2, 8), torch.randn(7, 2, 8)
    with pytest.raises(ValueError, match=r"batch 5, the second batch 7.*batch_size="):
        flopmeter.compare(
            flopmeter.profile(dense, short, compression=True),
            flopmeter.profile(pruned, long, compression=True),
        )
    # with the batch given, the two lengths compare: fc MACs 5*2 rows * 8 * 2 = 160 dense before;
    # after, 7*2 rows * 8 kept of 16 = 112 effective
    result = flopmeter.compare(
        flopmeter.profile(dense, short, batch_size=2, compression=True),
        flopmeter.profile(pruned, long, batch_size=2, compression=True),
    )
    (fc,) = result.layers
    assert fc.before is not None and fc.after is not None
    assert (fc.before.macs_effective, fc.after.macs_effective) == (160, 112)


def test_a_dim_given_twice_with_two_values_is_refused(tmp_path: object) -> None:
    # R7b-4: since P7-11 each --dim binds the compared files that have it, so
    # `compare d.onnx d.onnx --dim N=3 --dim N=4` reads as one value per file; the last won
    # silently for both (N=4: 4*8*4 = 128 MACs each, not 96 and 128); the single-model
    # command took the last one too
    from pathlib import Path

    from flopmeter.cli import run

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    weight = numpy_helper.from_array(np.ones((4, 8), np.float32), "W")
    node = helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)
    path = Path(str(tmp_path)) / "dynamic.onnx"
    onnx.save(
        helper.make_model(
            helper.make_graph([node], "g", [x], [y], [weight]), opset_imports=[helper.make_opsetid("", 17)]
        ),
        path,
    )
    for argv in (
        ["compare", str(path), str(path), "--dim", "N=3", "--dim", "N=4"],
        [str(path), "--dim", "N=3", "--dim", "N=4"],
    ):
        code, out, err = run(argv)
        assert code == 2 and not out, err
        assert "--dim N is given twice (3 and 4)" in err
    # the same value twice is no contradiction: 3*8*4 = 96 MACs
    code, out, _ = run([str(path), "--dim", "N=3", "--dim", "N=3", "-f", "json", "-q"])
    assert code == 0
    import json

    assert json.loads(out)["totals"]["macs"] == 96


def test_the_view_totals_of_a_backward_profile_say_they_are_the_forward_pass() -> None:
    # R7b-6: after P7-9 the view of a backward profile is its forward pass, but the printed
    # totals said nothing of it: "1.22 KMACs" for the model above, "MACs dense 576" below
    from flopmeter.render.compression import view_summary_lines

    layer = nn.Linear(16, 8)
    prune.custom_from_mask(layer, "weight", (torch.arange(16) < 8).float().expand(8, 16))
    x = torch.randn(4, 16)
    both = flopmeter.profile(layer, x, backward=True)
    assert both.macs > both.compression.macs_dense == 4 * 16 * 8  # 512, the forward's
    assert "(of the forward pass" in view_summary_lines(both.compression)[0]
    assert "forward pass" not in view_summary_lines(flopmeter.profile(layer, x).compression)[0]


def test_compare_refuses_a_training_count_beside_an_onnx_file(tmp_path: object) -> None:
    # R7b-7: `compare model.py:a model.onnx --backward` counted the PyTorch model's forward +
    # backward and the ONNX file as exported (a forward), and printed a speedup of 1.94x for
    # a model and its own export (P7-6 refuses such pairs in flopmeter.compare); the
    # single-model command refuses --backward for an ONNX file. Options only PyTorch models
    # take are refused when every model is an ONNX file (they changed nothing, exit 0)
    from pathlib import Path

    from flopmeter.cli import run

    folder = Path(str(tmp_path))
    source = folder / "tiny.py"
    source.write_text("from torch import nn\nEXAMPLE_INPUTS = '2x8'\ndef a():\n    return nn.Linear(8, 4)\n")
    exported = folder / "tiny.onnx"
    torch.onnx.export(nn.Linear(8, 4), (torch.randn(2, 8),), exported, dynamo=False)
    for mode in ("--backward", "--train"):
        code, out, err = run(["compare", f"{source}:a", str(exported), mode])
        assert code == 2 and not out, err
        assert f"{mode}: {exported} is an ONNX file" in err and "counting" not in err
    for option in (["--count-overhead"], ["--set", "hidden_size=8"]):
        code, out, err = run(["compare", str(exported), str(exported), *option])
        assert code == 2 and not out, err
        assert f"{option[0]}: every model compared is an ONNX file" in err
    # a PyTorch model and its export, both forward: 2*8*4 = 64 MACs each, a speedup of 1.00x
    code, out, err = run(["compare", f"{source}:a", str(exported), "-f", "json", "-q"])
    assert code == 0, err
    import json

    assert [row["macs"] for row in json.loads(out)["rows"]] == [64, 64]


def test_a_coo_or_csr_weight_denser_than_its_format_pays_is_ideal_dense() -> None:
    # R7b-8: docs: "the smaller of dense and a sparse format"; a COO or CSR weight was given
    # its format's bytes even where dense is smaller (P7-4 compared the bitmask and N:M only)
    from test_compression_reference import _SparseMM as SparseMM  # weight_sparse @ x

    half = torch.zeros(32, 64)
    half[:, ::2] = 1.0  # 32 * 32 = 1,024 nonzeros of 2,048
    x = torch.randn(64, 16)
    # COO 1,024*4 + 2 dims * 1,024 * 8 = 20,480 and CSR 4,096 + (1,024 + 32 + 1) * 8 = 12,552
    # both above dense 2,048 * 4 = 8,192
    for weight in (half.to_sparse(), half.to_sparse_csr()):
        layer = flopmeter.profile(SparseMM(weight), x).compression.layers[""]
        assert (layer.bytes_ideal, layer.ideal_format) == (8_192, "dense")
    # at 1 in 8 kept the format pays: COO 256*4 + 2*256*8 = 5,120 < 8,192 (as before)
    eighth = torch.zeros(32, 64)
    eighth[:, ::8] = 1.0
    layer = flopmeter.profile(SparseMM(eighth.to_sparse()), x).compression.layers[""]
    assert (layer.bytes_ideal, layer.ideal_format) == (5_120, "COO")


@pytest.mark.parametrize("backward", [False, True])
def test_a_pruned_bias_of_any_name_is_overhead(backward: bool) -> None:
    # R7b-9: P7-5 took the mask multiply of a pruned ``bias`` out of the model's FLOPs, but
    # only for that name: an LSTM's bias_ih_l0 (16 values: 16 FLOPs forward, 16 more for its
    # gradient) and MHA's in_proj_bias (24 values) still counted theirs as model FLOPs
    cases = [
        (lambda: nn.LSTM(4, 4), "bias_ih_l0", 16, (torch.randn(5, 2, 4),)),
        (lambda: nn.MultiheadAttention(8, 2), "in_proj_bias", 24, (torch.randn(5, 2, 8),) * 3),
    ]
    for build, name, mask_flops, args in cases:
        torch.manual_seed(0)
        dense = build()
        pruned = build()
        prune.l1_unstructured(pruned, name, amount=0.5)
        before = flopmeter.profile(dense, args, backward=backward)
        after = flopmeter.profile(pruned, args, backward=backward)
        assert after.flops == before.flops, name  # the same layer's work, dense or pruned
        assert after.overhead["aten.mul"].cost.flops == mask_flops * (2 if backward else 1), name
        # the mask buffer is stored too: mask_flops float32 values (LSTM: 160 params * 4 = 640
        # bytes + 16 * 4 = 704; MHA: 288 params * 4 = 1,152 + 24 * 4 = 1,248)
        assert after.compression.bytes_actual == before.compression.bytes_actual + 4 * mask_flops, name
