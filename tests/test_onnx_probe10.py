"""Probe-10 findings on ONNX files a deploying user holds (docs/probe-10/onnx.md): onnxruntime's
quantized and optimized files of real exports. Hand-built graphs (onnx.helper) with the
arithmetic beside each expected number; each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import profile_onnx  # noqa: E402

MS = "com.microsoft"


def _model(nodes, inputs, initializers, outputs):  # type: ignore[no-untyped-def]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(v, n) for n, v in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])


def _scale(name: str) -> dict[str, np.ndarray]:
    return {f"{name}_s": np.array(0.1, np.float32), f"{name}_z": np.array(128, np.uint8)}


def _quantized_linear(combine: str = "QLinearAdd", relu: bool = True) -> onnx.ModelProto:
    """quantize_static(QOperator) of a Linear 4 -> 8 on x (2, 3, 4), then ReLU: the bias is
    a uint8 vector and QLinearAdd's *first* operand, as onnxruntime writes it for BERT
    (``combine``: the op taking it; ``relu=False``: y is the dequantized result)."""
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["xq"]),
        helper.make_node("QLinearMatMul", ["xq", "x_s", "x_z", "w", "w_s", "w_z", "m_s", "m_z"], ["mq"]),
        helper.make_node(
            combine, ["bias", "b_s", "b_z", "mq", "m_s", "m_z", "y_s", "y_z"], ["yq"], domain=MS
        ),
        helper.make_node("DequantizeLinear", ["yq", "y_s", "y_z"], ["yf" if relu else "y"]),
        *([helper.make_node("Relu", ["yf"], ["y"])] if relu else []),
    ]
    weights = {
        "w": np.ones((4, 8), np.uint8),
        "bias": np.ones(8, np.uint8),
        **_scale("x"), **_scale("w"), **_scale("m"), **_scale("b"), **_scale("y"),
    }  # fmt: skip
    return _model(nodes, {"x": (2, 3, 4)}, weights, ["y"])


# P10-O1: QLinearAdd's output took its first operand's shape; with the bias first (BERT's
# QOperator file) the add was (8,), not (2, 3, 8): the ops after it were counted on 8
# elements (BERT's Reshape then refused the file). P10-O2: the uint8 bias was no parameter.
def test_qlinear_add_broadcasts_its_operands_and_its_quantized_bias_is_a_parameter() -> None:
    report = profile_onnx(_quantized_linear())
    assert report.macs == 2 * 3 * 4 * 8  # 192 integer MACs
    # Quantize 24 x 4 = 96, Dequantize 48 x 2 = 96, Relu 48: 240 (integer ops 0)
    assert report.flops == 96 + 96 + 48
    assert report.params == 4 * 8 + 8  # 40: W (4 x 8) and the bias (8); scales are not
    (dequantize,) = [r for r in report.ops if r.op == "onnx.DequantizeLinear"]
    assert dequantize.cost.flops == 2 * 3 * 8 * 2  # 96: on (2, 3, 8), not on the bias's (8,)


# P10-O3: com.microsoft.QLinearSoftmax (QOperator attention) was listed as unsupported.
def test_qlinear_softmax_is_integer_work_not_unsupported() -> None:
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["xq"]),
        helper.make_node(
            "QLinearSoftmax", ["xq", "x_s", "x_z", "y_s", "y_z"], ["yq"], domain=MS, axis=-1, opset=13
        ),
        helper.make_node("DequantizeLinear", ["yq", "y_s", "y_z"], ["y"]),
    ]
    report = profile_onnx(_model(nodes, {"x": (2, 3, 8)}, {**_scale("x"), **_scale("y")}, ["y"]))
    assert report.unsupported == {}
    assert report.flops == 48 * 4 + 48 * 2  # 288: Quantize 4 and Dequantize 2 per element; the softmax 0
    (softmax,) = [r for r in report.ops if r.op == "com.microsoft.QLinearSoftmax"]
    assert softmax.cost.flops == 0


def _dynamic_quantize_lstm(*, bias: bool = True) -> onnx.ModelProto:
    """quantize_dynamic of an LSTM: X (T=3, B=2, I=4), hidden 2, one direction; W (1, 4, 8)
    and R (1, 2, 8) int8 (transposed from LSTM's (D, 4H, I)), B (1, 16) float."""
    inputs = ["X", "W", "R", "B" if bias else "", "", "", "", "", "w_s", "w_z", "r_s", "r_z"]
    node = helper.make_node("DynamicQuantizeLSTM", inputs, ["Y", "Y_h"], domain=MS, hidden_size=2)
    relu = helper.make_node("Relu", ["Y"], ["out"])  # on Y (T, D, B, H) = (3, 1, 2, 2): 12
    weights = {
        "W": np.ones((1, 4, 8), np.int8),
        "R": np.ones((1, 2, 8), np.int8),
        "w_s": np.full(1, 0.1, np.float32),
        "w_z": np.zeros(1, np.int8),
        "r_s": np.full(1, 0.1, np.float32),
        "r_z": np.zeros(1, np.int8),
        **({"B": np.ones((1, 16), np.float32)} if bias else {}),
    }
    return _model([node, relu], {"X": (3, 2, 4)}, weights, ["out", "Y_h"])


# P10-O4: quantize_dynamic turns every LSTM into com.microsoft.DynamicQuantizeLSTM, which
# was unsupported: the LSTM tagger's file lost 2,064,384 of its 2,087,424 MACs and 87,552
# of its 120,522 params.
def test_dynamic_quantize_lstm_counts_integer_macs_and_its_float_work() -> None:
    report = profile_onnx(_dynamic_quantize_lstm())
    assert report.unsupported == {}
    assert report.macs == 6 * 8 * (4 + 2)  # 288: 6 tokens x 4H gates x (I + H)
    # per token 19H cell + 8H rescales + 8H bias adds = 38 + 16 + 16 = 70, x 6 tokens = 420;
    # X quantized once: 6 x 24 - 2 = 142; h per step: 3 x (6 x 2 x 2 - 2) = 66
    assert report.flops == 420 + 142 + 66 + 12  # and the Relu on Y's 12 elements
    assert report.params == 32 + 16 + 16  # 64: W, R, B
    (fact,) = report.options["onnx"]["quantized"]
    assert (fact["weight_bits"], fact["activation_bits"], fact["weight_bytes"]) == (8, 8, 48)  # W + R
    assert fact["integer"] is True


def test_dynamic_quantize_lstm_without_bias() -> None:
    report = profile_onnx(_dynamic_quantize_lstm(bias=False))
    assert report.flops == 6 * (38 + 16) + 142 + 66 + 12  # 544: no bias adds
    assert report.params == 48


# P10-O5: quantize_static(QOperator) of densenet121 writes com.microsoft.QLinearAveragePool
# (its transitions' 2x2 pools): no shape rule, so the file was refused.
def test_qlinear_average_pool_has_the_pooled_shape() -> None:
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["xq"]),
        helper.make_node(
            "QLinearAveragePool",
            ["xq", "x_s", "x_z", "y_s", "y_z"],
            ["yq"],
            domain=MS,
            kernel_shape=[2, 2],
            strides=[2, 2],
        ),  # fmt: skip
        helper.make_node("DequantizeLinear", ["yq", "y_s", "y_z"], ["y"]),
    ]
    report = profile_onnx(_model(nodes, {"x": (1, 2, 4, 4)}, {**_scale("x"), **_scale("y")}, ["y"]))
    assert report.unsupported == {}
    # Quantize 32 x 4 = 128; the pool on integers 0; Dequantize of (1, 2, 2, 2): 8 x 2 = 16
    assert report.flops == 128 + 16


# P10-O6: onnxruntime's extended level fuses Gemm + Relu (alexnet's classifier, dynamo
# export) into com.microsoft.FusedGemm: it was unsupported, its MACs and weights lost
# (alexnet: -54,525,952 MACs, -54,534,144 params).
def test_fused_gemm_counts_the_gemm_and_its_activation() -> None:
    node = helper.make_node("FusedGemm", ["x", "W", "B"], ["y"], domain=MS, transB=1, activation="Relu")
    weights = {"W": np.ones((8, 4), np.float32), "B": np.ones(8, np.float32)}
    report = profile_onnx(_model([node], {"x": (2, 4)}, weights, ["y"]))
    assert report.unsupported == {}
    assert report.macs == 2 * 4 * 8  # 64
    assert report.flops == 2 * 8 * (2 * 4) + 2 * 8  # 144: (2K - 1) + the bias add per output, + Relu 16
    assert report.params == 8 * 4 + 8  # 40


# P10-O7: onnxruntime's optimizer keeps no node metadata: in an optimized dynamo export the
# tree came from the one plain Gemm left (alexnet's classifier.6), whose module then took
# every node, 98,144,960 MACs for a 4,096,000-MAC layer. Fused contractions now take the
# module their weight is named after.
def test_fused_contractions_of_an_optimized_dynamo_file_take_their_weights_module() -> None:
    nodes = [
        helper.make_node(
            "FusedConv",
            ["x", "c1.weight", "c1.bias"],
            ["a"],
            domain=MS,
            kernel_shape=[3, 3],
            activation="Relu",
        ),
        helper.make_node("Flatten", ["a"], ["f"]),
        helper.make_node(
            "FusedGemm", ["f", "fc1.weight", "fc1.bias"], ["h"], domain=MS, transB=1, activation="Relu"
        ),
        helper.make_node("Gemm", ["h", "fc2.weight", "fc2.bias"], ["y"], transB=1),
    ]
    weights = {
        "c1.weight": np.ones((2, 1, 3, 3), np.float32), "c1.bias": np.ones(2, np.float32),
        "fc1.weight": np.ones((4, 8), np.float32), "fc1.bias": np.ones(4, np.float32),
        "fc2.weight": np.ones((3, 4), np.float32), "fc2.bias": np.ones(3, np.float32),
    }  # fmt: skip
    report = profile_onnx(_model(nodes, {"x": (1, 1, 4, 4)}, weights, ["y"]))
    macs = {name: stats.total.macs for name, stats in report.modules.items()}
    # c1: 2 x 2 x 2 outputs x 9 = 72; fc1: 8 x 4 = 32; fc2: 4 x 3 = 12
    assert (macs["c1"], macs["fc1"], macs["fc2"], macs[""]) == (72, 32, 12, 116)


# P10-O8: the legacy exporter at opsets 7 and 8 does not fold the Slices and Concats that
# reorder a GRU's / LSTM's gates: its weights reached the GRU through them and were not
# parameters (a GRU(8, 8): -432 params at opset 7, 0 at opset 9).
def test_recurrent_weights_read_through_gate_reordering_slices_are_parameters() -> None:
    def reorder(weight: str, rows: int) -> list[onnx.NodeProto]:  # [r, z, n] -> [z, r, n], opset-7 Slice
        parts = [
            helper.make_node(
                "Slice", [weight], [f"{weight}_{i}"], axes=[0], starts=[i * rows], ends=[(i + 1) * rows]
            )
            for i in range(3)
        ]
        joined = helper.make_node(
            "Concat", [f"{weight}_1", f"{weight}_0", f"{weight}_2"], [f"{weight}_c"], axis=0
        )
        return [*parts, joined, helper.make_node("Unsqueeze", [f"{weight}_c"], [f"{weight}_u"], axes=[0])]

    gru = helper.make_node("GRU", ["x", "W_u", "R_u", "B_u"], ["y"], hidden_size=2)
    nodes = [*reorder("W", 2), *reorder("R", 2), *reorder("B", 4), gru]
    weights = {
        "W": np.ones((6, 4), np.float32),
        "R": np.ones((6, 2), np.float32),
        "B": np.ones(12, np.float32),
    }
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (3, 1, 4))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, n) for n, v in weights.items()],
    )
    report = profile_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)]))
    assert report.params == 6 * 4 + 6 * 2 + 12  # 48: W, R and both biases
    assert report.macs == 3 * 6 * (4 + 2)  # 108: 3 tokens x 3H gates x (I + H)


# P10-O9: onnxruntime's extended level fuses a ViT's q @ k^T (and scores @ v) with the
# Transposes around them into FusedMatMul with transBatchA / transBatchB, which were ignored:
# torchvision's ViT (dynamo) lost 65,280 of its 73,984 attention MACs.
def test_fused_matmul_applies_trans_batch() -> None:
    node = helper.make_node(
        "FusedMatMul", ["q", "k"], ["s"], domain=MS, transBatchA=1, transBatchB=1, transB=1, alpha=0.5
    )
    # q (L=5, BH=2, E=4) -> (2, 5, 4); k (5, 2, 4) -> (2, 5, 4) -> transB (2, 4, 5); s (2, 5, 5)
    report = profile_onnx(
        _model([node, helper.make_node("Relu", ["s"], ["y"])], {"q": (5, 2, 4), "k": (5, 2, 4)}, {}, ["y"])
    )
    assert report.macs == 2 * 5 * 4 * 5  # 200
    # 50 outputs x (2 x 4 - 1) = 350, alpha 50, Relu on the 50 scores
    assert report.flops == 350 + 50 + 50


# P10-O10: onnxruntime's basic level folds a Mul by a constant after a Conv (timm ConvNeXt's
# layer scale) into the Conv's weight and renames it ConvMulFusion_W_<name>: the Conv was
# charged to a module "ConvMulFusion_W_stages" beside "stages" (19,660,800 of convnext_atto's
# 44,162,560 stage MACs).
def test_a_weight_renamed_by_onnxruntime_keeps_its_module() -> None:
    weight = "ConvMulFusion_W_stages.0.fc2.weight"
    node = helper.make_node(
        "Conv", ["x", weight], ["y"], name="/stages/stages.0/fc2/Conv", kernel_shape=[1, 1]
    )
    report = profile_onnx(
        _model([node], {"x": (1, 4, 2, 2)}, {weight: np.ones((3, 4, 1, 1), np.float32)}, ["y"])
    )
    macs = {name: stats.total.macs for name, stats in report.modules.items()}
    assert macs == {"": 48, "stages": 48, "stages.0": 48, "stages.0.fc2": 48}  # 3 x 2 x 2 outputs x 4


# P10-O11: onnxruntime's extended level fuses T5's RMSNorm into SimplifiedLayerNormalization
# in the *ONNX* domain (its own kernel), which was unsupported: a T5 encoder lost its five
# norms' 20,640 FLOPs and its norm weights' module.
def test_simplified_layer_norm_in_the_onnx_domain_is_an_rms_norm() -> None:
    node = helper.make_node("SimplifiedLayerNormalization", ["x", "w"], ["y"], axis=-1, epsilon=1e-6)
    report = profile_onnx(_model([node], {"x": (2, 3, 8)}, {"w": np.ones(8, np.float32)}, ["y"]))
    assert report.unsupported == {}
    assert report.flops == 6 * (3 * 8 + 2) + 48  # 204: per row square, mean, eps, rsqrt, scale; + the weight
    assert report.params == 8


# P10-O12: the summary said "exporter other" for every file that is not a dynamo export
# (torch's legacy exporter, onnxruntime's quantizer); it names the file's producer now.
def test_the_summary_names_the_files_producer() -> None:
    from flopmeter.render.onnx_notes import onnx_lines

    model = _model([helper.make_node("Relu", ["x"], ["y"])], {"x": (2, 3)}, {}, ["y"])
    model.producer_name, model.producer_version = "onnx.quantize", "0.1.0"
    (line, *_) = onnx_lines(profile_onnx(model))
    assert line == "  ONNX graph: 1 nodes from onnx.quantize 0.1.0, opsets {'': 17, 'com.microsoft': 1}"


# P10-O13: quantize_static(QDQ) quantizes exporter constants too (Swin's folded relative
# position biases, (heads, 49, 49), added to the scores): read through a DequantizeLinear,
# each was a parameter (swin_t's QDQ file: +331,338 params over the float file's).
def test_a_quantized_exporter_constant_is_not_a_parameter() -> None:
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "s", "z"], ["w"]),
        helper.make_node("MatMul", ["x", "w"], ["h"]),  # h (1, 2, 3, 4)
        helper.make_node("DequantizeLinear", ["bias_q", "s", "z"], ["bias"]),
        helper.make_node("DequantizeLinear", ["table_q", "s", "z"], ["table"]),
        helper.make_node("MatMul", ["h", "h_t"], ["scores"]),  # (1, 2, 3, 3)
        helper.make_node("Add", ["scores", "table"], ["y"]),
        helper.make_node("Add", ["h", "bias"], ["out"]),
    ]
    weights = {
        "w_q": np.ones((4, 4), np.int8), "bias_q": np.ones(4, np.int8), "table_q": np.ones((2, 3, 3), np.int8),
        "s": np.array(0.1, np.float32), "z": np.array(0, np.int8),
    }  # fmt: skip
    report = profile_onnx(_model(nodes, {"x": (1, 2, 3, 4), "h_t": (1, 2, 4, 3)}, weights, ["y", "out"]))
    assert report.params == 4 * 4 + 4  # 20: the weight and the bias; the (2, 3, 3) table is a constant


# docs/onnx.md promises (promises audit, stop 22): QLinearMul broadcasts as QLinearAdd does,
# QLinearGlobalAveragePool is integer work, an optimized file's fused attention is not halved.
def test_qlinear_mul_broadcasts_its_operands_and_its_quantized_vector_is_a_parameter() -> None:
    report = profile_onnx(_quantized_linear("QLinearMul", relu=False))
    assert report.macs == 2 * 3 * 4 * 8  # 192 integer MACs
    assert report.flops == 24 * 4 + 48 * 2  # Quantize 96 + Dequantize on (2, 3, 8) 96: 192
    assert report.params == 4 * 8 + 8  # 40: W and the uint8 vector


def test_qlinear_global_average_pool_is_integer_work() -> None:
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["xq"]),
        helper.make_node(
            "QLinearGlobalAveragePool", ["xq", "x_s", "x_z", "y_s", "y_z"], ["yq"], domain=MS, channels_last=0
        ),
        helper.make_node("DequantizeLinear", ["yq", "y_s", "y_z"], ["y"]),
    ]
    report = profile_onnx(_model(nodes, {"x": (1, 2, 4, 4)}, {**_scale("x"), **_scale("y")}, ["y"]))
    assert report.unsupported == {}
    assert report.flops == 32 * 4 + 2 * 2  # Quantize 128; the pool 0; Dequantize of (1, 2, 1, 1): 4


def test_fused_matmul_attention_is_not_halved_by_causal_needed() -> None:
    """q @ k^T scaled inside FusedMatMul (alpha), a causal mask added, softmax, @ v: 2 heads,
    T = 4, E = 8. The pattern is not recognised as attention, so causal="needed" changes nothing."""
    nodes = [
        helper.make_node("FusedMatMul", ["q", "k"], ["s"], domain=MS, alpha=0.35, transB=1),
        helper.make_node("Add", ["s", "mask"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    mask = np.triu(np.full((4, 4), -1e9, np.float32), 1)
    shapes = {name: (1, 2, 4, 8) for name in ("q", "k", "v")}
    model = _model(nodes, shapes, {"mask": mask}, ["y"])
    full, needed = profile_onnx(model), profile_onnx(model, causal="needed")
    assert full.macs == needed.macs == 2 * 4 * 4 * (8 + 8)  # QK^T and AV: 512
    # QK^T 32 x 15 = 480 + alpha 32, mask 32, softmax 2 x 4 x (5 x 4 - 2) = 144, AV 64 x 7 = 448
    assert full.flops == needed.flops == 480 + 32 + 32 + 144 + 448


def test_a_position_embedding_is_a_parameter_only_while_dynamos_metadata_names_it() -> None:
    """docs/onnx.md: dynamo's fx metadata names a learned tensor read outside weight slots
    (``%p_pos``); onnxruntime's optimizer drops that metadata, and the tensor is then an
    exporter constant, as in a legacy export. pos (1, 5, 4): 20 values, not a vector."""
    add = helper.make_node("Add", ["x", "pos"], ["y"])
    model = _model([add], {"x": (1, 5, 4)}, {"pos": np.ones((1, 5, 4), np.float32)}, ["y"])
    entry = model.graph.node[0].metadata_props.add()
    entry.key = "pkg.torch.onnx.fx_node"
    entry.value = "%add : call_function[target=torch.ops.aten.add.Tensor](args = (%x, %p_pos), kwargs = {})"
    assert profile_onnx(model).params == 20
    del model.graph.node[0].metadata_props[:]  # as onnxruntime's optimizer writes it
    assert profile_onnx(model).params == 0


def test_dynamic_quantize_lstm_counts_each_direction() -> None:
    """docs/onnx.md: "per direction, X is quantized once ... and h once per time step"."""
    inputs = ["X", "W", "R", "B", "", "", "", "", "w_s", "w_z", "r_s", "r_z"]
    node = helper.make_node(
        "DynamicQuantizeLSTM", inputs, ["Y", "Y_h"], domain=MS, hidden_size=2, direction="bidirectional"
    )
    relu = helper.make_node("Relu", ["Y"], ["out"])  # on Y (T, D, B, H) = (3, 2, 2, 2): 24
    weights = {
        "W": np.ones((2, 4, 8), np.int8), "R": np.ones((2, 2, 8), np.int8), "B": np.ones((2, 16), np.float32),
        "w_s": np.full(2, 0.1, np.float32), "w_z": np.zeros(2, np.int8),
        "r_s": np.full(2, 0.1, np.float32), "r_z": np.zeros(2, np.int8),
    }  # fmt: skip
    report = profile_onnx(_model([node, relu], {"X": (3, 2, 4)}, weights, ["out", "Y_h"]))
    assert report.macs == 2 * 288  # the one-direction 288 (above), twice: 576
    assert report.flops == 2 * (420 + 142 + 66) + 24  # each direction's float work (above): 1,280
    assert report.params == 64 + 32 + 32  # W 2x4x8, R 2x2x8, B 2x16: 128
