"""Probe-8 findings on ONNX files as a deployment team holds them (docs/probe-8/onnx.md):
onnxruntime's quantized, fp16 and optimized graphs. Each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import profile_onnx  # noqa: E402

MS = "com.microsoft"


def _model(nodes, inputs, initializers, value_info=()):  # type: ignore[no-untyped-def]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, n) for n, v in initializers.items()],
        value_info=list(value_info),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])


def _per_channel_dynamic(n: int = 3) -> onnx.ModelProto:
    """What quantize_dynamic(per_channel=True) writes for x (2, 4) @ W (4, n) + b: the
    per-channel weight scale (n,) multiplied with the activation's scalar scale."""
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("Mul", ["xs", "w_scale"], ["scales"]),
        helper.make_node("MatMulInteger", ["xq", "w_q", "xz", "w_zp"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["accf", "scales"], ["yq"]),
        helper.make_node("Add", ["yq", "bias"], ["y"]),
    ]
    weights = {
        "w_scale": np.full(n, 0.1, np.float32),
        "w_zp": np.full(n, 128, np.uint8),
        "w_q": np.ones((4, n), np.uint8),
        "bias": np.ones(n, np.float32),
    }
    return _model(nodes, {"x": (2, 4)}, weights)


# P8-O1: quantize_dynamic(per_channel=True) multiplies the weight's per-channel scale
# vector with the activation's scale; that vector was taken for a bias (a parameter).
def test_per_channel_weight_scales_are_not_parameters() -> None:
    report = profile_onnx(_per_channel_dynamic(3))
    assert report.params == 4 * 3 + 3  # 15: W (4 x 3 uint8) + bias (3); the 3 scales are not
    assert report.macs == 2 * 4 * 3  # 24 integer MACs
    (fact,) = report.options["onnx"]["quantized"]
    assert (fact["weight_bits"], fact["activation_bits"], fact["bops"]) == (8, 8, 24 * 8 * 8)  # 1,536


def _fused_conv(activation: str | None, *, with_sum: bool = False, declared: bool = False) -> onnx.ModelProto:
    """onnxruntime's extended optimization: Conv (1x3x8x8, 4 filters 3x3, pad 1, bias)
    [+ Z] + activation as one com.microsoft.FusedConv."""
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    if activation:
        attrs["activation"] = activation
    if activation == "Clip":
        attrs["activation_params"] = [0.0, 6.0]
    inputs = ["x", "W", "B"] + (["z"] if with_sum else [])
    node = helper.make_node("FusedConv", inputs, ["y"], domain=MS, **attrs)
    value_info = [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 4, 8, 8))] if declared else []
    shapes = {"x": (1, 3, 8, 8), **({"z": (1, 4, 8, 8)} if with_sum else {})}
    weights = {"W": np.ones((4, 3, 3, 3), np.float32), "B": np.ones(4, np.float32)}
    return _model([node], shapes, weights, value_info)


CONV_MACS = 4 * 8 * 8 * 3 * 3 * 3  # 6,912
CONV_FLOPS = 2 * CONV_MACS  # 13,824: (2*27 - 1) per output + the bias add, 256 outputs
OUTPUTS = 4 * 8 * 8  # 256


# P8-O2: FusedConv had no shape rule (a legacy export optimized by onnxruntime could not be
# counted), its weights were no parameters, and its fused activation was not counted.
@pytest.mark.parametrize(
    ("activation", "with_sum", "flops"),
    [
        ("Relu", False, CONV_FLOPS + OUTPUTS),  # 13,824 + 256 max(x, 0) = 14,080
        ("Clip", False, CONV_FLOPS + 2 * OUTPUTS),  # ReLU6: min and max, 14,336
        ("Sigmoid", True, CONV_FLOPS + OUTPUTS + 3 * OUTPUTS),  # + Z add + exp, add, divide: 14,848
        (None, False, CONV_FLOPS),
    ],
)
def test_fused_conv_counts_conv_sum_and_activation(
    activation: str | None, with_sum: bool, flops: int
) -> None:
    report = profile_onnx(_fused_conv(activation, with_sum=with_sum))
    assert report.macs == CONV_MACS
    assert report.flops == flops
    assert report.params == 4 * 27 + 4  # 112: W and B, as the Conv's
    assert not report.unsupported


def test_fused_conv_with_a_declared_shape_has_its_parameters() -> None:  # dynamo exports keep value_info
    report = profile_onnx(_fused_conv("Relu", declared=True))
    assert (report.macs, report.flops, report.params) == (CONV_MACS, CONV_FLOPS + OUTPUTS, 112)


def test_fused_conv_with_an_unknown_activation_is_an_error_naming_it() -> None:
    from flopmeter.onnx.load import OnnxModelError

    with pytest.raises(OnnxModelError, match="activation 'Softsign'"):
        profile_onnx(_fused_conv("Softsign"))


def _unsorted_fp16_io() -> onnx.ModelProto:
    """What onnxruntime's float16 converter writes with keep_io_types=True: a float32
    input, a Cast to float16 appended after the nodes that read it."""
    nodes = [
        helper.make_node("Relu", ["x16"], ["r"]),
        helper.make_node("Cast", ["r"], ["y"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 8))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# P8-O3: a graph whose nodes are valid but not in topological order (as onnxruntime's
# fp16 converter writes them, and onnxruntime runs) was refused as "truncated".
def test_unsorted_graph_is_counted_in_dependency_order_and_left_unchanged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = _unsorted_fp16_io()
    before = model.SerializeToString()
    report = profile_onnx(model)
    assert report.flops == 2 * 8  # the Relu on 2 x 8 float16 values; the Casts cost no FLOPs
    assert model.SerializeToString() == before  # the user's ModelProto is not reordered
    path = tmp_path / "fp16io.onnx"
    onnx.save(model, path)
    assert profile_onnx(path).flops == 16


def test_a_graph_no_order_fixes_is_still_refused() -> None:
    from flopmeter.onnx.load import OnnxModelError

    model = _unsorted_fp16_io()
    model.graph.node[2].input[0] = "missing"
    with pytest.raises(OnnxModelError, match="'missing', which nothing defines"):
        profile_onnx(model)


def _dynamic_conv_after_export() -> onnx.ModelProto:
    """quantize_dynamic of an export: the tool's nodes (no dynamo metadata, no legacy
    ``/scope/Op`` name) around a ConvInteger whose weight keeps the module's name;
    x (1, 3, 4, 4), conv1 1x1 with 2 filters, then the export's own ``/relu/Relu``."""
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"], name="x_QuantizeLinear"),
        helper.make_node("Mul", ["xs", "conv1.weight_scale"], ["s"], name="node_conv2d_quant_scales_mul"),
        helper.make_node(
            "ConvInteger",
            ["xq", "conv1.weight_quantized", "xz"],
            ["acc"],
            name="node_conv2d_quant",
            kernel_shape=[1, 1],
        ),
        helper.make_node(
            "Cast", ["acc"], ["accf"], name="conv2d_output_quantized_cast", to=TensorProto.FLOAT
        ),
        helper.make_node("Mul", ["accf", "s"], ["c"], name="node_conv2d_quant_output_scale_mul"),
        helper.make_node("Relu", ["c"], ["y"], name="/relu/Relu"),
    ]
    weights = {
        "conv1.weight_scale": np.array(0.1, np.float32),
        "conv1.weight_quantized": np.ones((2, 3, 1, 1), np.uint8),
    }
    return _model(nodes, {"x": (1, 3, 4, 4)}, weights)


# P8-O4: onnxruntime's quantizers drop dynamo's metadata on the nodes they write: the
# ConvInteger / QLinearConv / MatMulInteger of a dynamo export fell to the root module.
def test_quantized_nodes_a_tool_added_keep_their_module() -> None:
    report = profile_onnx(_dynamic_conv_after_export())
    conv1 = report.modules["conv1"]
    assert conv1.type == "ConvInteger"  # its layer's op, not the DynamicQuantizeLinear before it
    assert conv1.total.macs == 2 * 4 * 4 * 3  # 96: 2 filters x 16 positions x 3 channels
    # the graph input's DynamicQuantizeLinear (its only reader is conv1's): 6n - 2 = 6*48 - 2 = 286,
    # the rescale: Mul of the two scales (1) + Cast (0) + Mul per output (32): 319
    assert conv1.total.flops == 286 + 1 + 2 * 16
    assert report.modules["relu"].total.flops == 32  # the export's own node keeps its module
    assert report.modules[""].own.flops == 0
    (fact,) = report.options["onnx"]["quantized"]
    assert fact["module"] == "conv1"


# P8-O4 (QDQ): a dynamo Conv into which a BatchNorm was folded carries the BatchNorm's
# scope; a float one is charged to ``conv1`` by its weight's name, and after
# quantize_static(QDQ) its weight is ``conv1.weight_quantized`` behind a DequantizeLinear.
def test_qdq_conv_with_a_folded_batch_norm_is_charged_to_its_conv() -> None:
    nodes = [
        helper.make_node(
            "DequantizeLinear", ["conv1.weight_quantized", "ws"], ["w"], name="conv1.weight_DequantizeLinear"
        ),
        helper.make_node("Conv", ["x", "w"], ["y"], name="node_Conv_15", kernel_shape=[1, 1]),
    ]
    scope = nodes[1].metadata_props.add()
    scope.key, scope.value = "pkg.torch.onnx.name_scopes", "['bn', 'getitem']"
    weights = {"ws": np.array(0.1, np.float32), "conv1.weight_quantized": np.ones((2, 3, 1, 1), np.int8)}
    report = profile_onnx(_model(nodes, {"x": (1, 3, 4, 4)}, weights))
    assert report.modules["conv1"].total.macs == 96  # 2 x 16 x 3
    assert report.modules["conv1"].total.flops == 2 * 6 + (2 * 96 - 32)  # DQ of 6 weights (2 each) + conv 160
    assert "bn" not in report.modules


def test_a_contraction_with_a_made_up_weight_name_is_not_charged_to_the_layer_before() -> None:
    """MatMulNBits of a bias-free dynamo Linear (its weight ``val_2``): nothing names its
    module, and its producer (``act``) is the previous layer: it stays at the root."""
    k, n = 16, 8  # one 16-weight block per column, 4 bits: 8 bytes
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="/act/Relu"),
        helper.make_node(
            "MatMulNBits", ["r", "val_2_Q4", "val_2_scales"], ["y"], name="node_linear_1_Q4", domain=MS,
            K=k, N=n, bits=4, block_size=16,
        ),
    ]  # fmt: skip
    weights = {"val_2_Q4": np.ones((n, 1, 8), np.uint8), "val_2_scales": np.ones((n, 1), np.float32)}
    report = profile_onnx(_model(nodes, {"x": (2, k)}, weights))
    assert report.modules["act"].total.macs == 0
    assert report.modules[""].own.macs == 2 * k * n  # 256
    assert report.params == k * n  # 128 4-bit weights


def _qdq_matmul() -> onnx.ModelProto:
    """quantize_static(QDQ): x (2, 4) and W (4, 3) int8 dequantized, then a float MatMul."""
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w_q", "s"], ["w"]),
        helper.make_node("MatMul", ["xd", "w"], ["y"]),
    ]
    weights = {"s": np.array(0.1, np.float32), "zp": np.array(0, np.int8), "w_q": np.ones((4, 3), np.int8)}
    return _model(nodes, {"x": (2, 4)}, weights)


# P8-O5: the summary called every quantized contraction's MACs "integer MACs, not FLOPs",
# also those a QDQ graph (or MatMulNBits) computes in float and counts as FLOPs.
def test_qdq_note_says_its_macs_are_float_work() -> None:
    from flopmeter.render.onnx_notes import onnx_lines

    report = profile_onnx(_qdq_matmul())
    # Q 8 x 4 + DQ 8 x 2 + DQ of W 12 x 2 + MatMul 6 outputs x (2*4 - 1) = 32 + 16 + 24 + 42 = 114
    assert report.flops == 114
    (note,) = [line for line in onnx_lines(report) if "quantized op" in line]
    assert "24 MACs computed in float, counted as FLOPs" in note  # 2 x 4 x 3
    assert "integer" not in note
    integer = profile_onnx(_per_channel_dynamic(3))
    (note,) = [line for line in onnx_lines(integer) if "quantized op" in line]
    assert "24 integer MACs, not FLOPs" in note


def test_matmul_nbits_counts_float_flops_as_the_matmul_it_replaced() -> None:  # docs/onnx.md said 0
    k, n = 16, 8
    node = helper.make_node(
        "MatMulNBits", ["x", "b", "scales"], ["y"], domain=MS, K=k, N=n, bits=4, block_size=16
    )
    weights = {"b": np.ones((n, 1, 8), np.uint8), "scales": np.ones((n, 1), np.float32)}
    report = profile_onnx(_model([node], {"x": (2, k)}, weights))
    assert (report.macs, report.flops) == (2 * k * n, 2 * n * (2 * k - 1))  # 256 MACs, 16 x 31 = 496 FLOPs
    assert report.options["onnx"]["quantized"][0]["integer"] is False


# P8-O6: quantize_static(QOperator) of a model with torch.cat writes com.microsoft.QLinearConcat,
# which had no shape rule: the whole file was refused.
def test_qlinear_concat_is_a_concat_of_quantized_inputs() -> None:
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
        helper.make_node(
            "QLinearConcat", ["s", "zp", "xq", "s", "zp", "xq", "s", "zp"], ["c"], domain=MS, axis=1
        ),
        helper.make_node("DequantizeLinear", ["c", "s", "zp"], ["y"]),
    ]
    weights = {"s": np.array(0.1, np.float32), "zp": np.array(0, np.uint8)}
    report = profile_onnx(_model(nodes, {"x": (1, 2, 3)}, weights))
    assert report.flops == 6 * 4 + 12 * 2  # Quantize 6 elements at 4, Dequantize 1 x 4 x 3 = 12 at 2: 48
    assert not report.unsupported  # moved bytes, no arithmetic, as a Concat
    assert report.operators["com.microsoft.QLinearConcat"].calls == 1


# P8-O7: onnxruntime's extended level fuses x * sigmoid(x) into QuickGelu(alpha=1) and names it
# "/<node>/QuickGeluFusion/": it counted an alpha multiply per element the model does not make,
# and it was charged to a made-up module ("blk.Mul.QuickGeluFusion").
@pytest.mark.parametrize(("alpha", "per_element"), [(1.0, 4), (1.702, 5)])  # silu: exp, add, divide, mul
def test_quick_gelu_counts_its_alpha_only_when_it_scales(alpha: float, per_element: int) -> None:
    node = helper.make_node(
        "QuickGelu", ["x"], ["y"], name="/blk/Mul/QuickGeluFusion/", domain=MS, alpha=alpha
    )
    report = profile_onnx(_model([node], {"x": (2, 8)}, {}))
    assert (
        report.flops == 16 * per_element
    )  # 64 as the Sigmoid (3) + Mul (1) it replaced; 80 with alpha 1.702
    assert report.modules["blk"].total.flops == report.flops
    assert "blk.Mul" not in report.modules


# P8-O8: BiasGelu (the Linear's bias fused into the GELU by onnxruntime) read the bias in no
# weight slot: an optimized MLP lost its bias from the parameters.
def test_bias_gelu_bias_is_a_parameter() -> None:
    node = helper.make_node("BiasGelu", ["x", "fc1.bias"], ["y"], name="BiasGelu", domain=MS)
    report = profile_onnx(_model([node], {"x": (2, 8)}, {"fc1.bias": np.ones(8, np.float32)}))
    assert report.params == 8
    assert report.flops == 16 * (5 + 1)  # aten.gelu: divide, erf, add, mul, mul; + the bias add: 96


def test_ort_enable_all_layout_ops_are_listed_not_counted_as_zero() -> None:  # docs/onnx.md "Not yet"
    """ORT_ENABLE_ALL's blocked-layout Conv (com.microsoft.nchwc): listed as unsupported with its
    calls; the nodes after it are counted from its declared shape, or an error names it."""
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], domain="com.microsoft.nchwc", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    weights = {"W": np.ones((8, 8, 1, 1), np.float32)}
    declared = [helper.make_tensor_value_info("c", TensorProto.FLOAT, (1, 8, 2, 2))]
    model = _model(nodes, {"x": (1, 8, 2, 2)}, weights, declared)
    model.opset_import.append(helper.make_opsetid("com.microsoft.nchwc", 1))
    report = profile_onnx(model)
    assert report.unsupported["com.microsoft.nchwc.Conv"].calls == 1
    assert report.flops == 32  # the Relu on 1 x 8 x 2 x 2
    del model.graph.value_info[:]
    from flopmeter.onnx.load import OnnxModelError

    with pytest.raises(OnnxModelError, match="nchwc"):
        profile_onnx(model)


def _fused_dynamic_matmul(op: str) -> onnx.ModelProto:
    """onnxruntime's extended level on a quantize_dynamic Linear, x (2, 4) @ W (4, 3) + b:
    DynamicQuantizeMatMul(A, B, b_scale, b_zp, bias), or MatMulIntegerToFloat on an
    already quantized A (a, b, a_scale, b_scale, a_zp, b_zp, bias)."""
    if op == "DynamicQuantizeMatMul":
        nodes = [helper.make_node(op, ["x", "w_q", "w_scale", "w_zp", "bias"], ["y"], domain=MS)]
    else:
        nodes = [
            helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
            helper.make_node(op, ["xq", "w_q", "xs", "w_scale", "xz", "w_zp", "bias"], ["y"], domain=MS),
        ]
    weights = {
        "w_q": np.ones((4, 3), np.int8),
        "w_scale": np.array(0.1, np.float32),
        "w_zp": np.array(0, np.int8),
        "bias": np.ones(3, np.float32),
    }
    return _model(nodes, {"x": (2, 4)}, weights)


# P8-O9: onnxruntime fuses quantize_dynamic's DynamicQuantizeLinear + MatMulInteger + Cast +
# Mul + Add into DynamicQuantizeMatMul (MatMulIntegerToFloat where A's quantization is shared):
# neither had a rule. An optimized dynamic-quant MLP counted 0 MACs and 0 params.
@pytest.mark.parametrize("op", ["DynamicQuantizeMatMul", "MatMulIntegerToFloat"])
def test_fused_dynamic_quant_matmul_counts_as_the_nodes_it_replaced(op: str) -> None:
    report = profile_onnx(_fused_dynamic_matmul(op))
    assert report.macs == 2 * 4 * 3  # 24 integer MACs
    # quantize x: 6n - 2 = 6*8 - 2 = 46; scales product 1; rescale 6 outputs; bias add 6: 59
    assert report.flops == 46 + 1 + 6 + 6
    assert report.params == 12 + 3  # W (int8) and the bias
    (fact,) = report.options["onnx"]["quantized"]
    assert (fact["weight_bits"], fact["activation_bits"], fact["integer"]) == (8, 8, True)
    assert fact["bops"] == 24 * 8 * 8  # 1,536


def test_fused_dynamic_quant_matmul_equals_the_unfused_graph() -> None:
    unfused = profile_onnx(_per_channel_dynamic(3))  # the same Linear, per-channel scales (3,)
    fused = _fused_dynamic_matmul("DynamicQuantizeMatMul")
    fused.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.full(3, 0.1, np.float32), "w_scale"))
    report = profile_onnx(fused)
    # unfused: DQL 46 + Mul(x_scale, w_scale) 3 + Cast 0 + Mul 6 + Add 6 = 61
    assert (
        (report.macs, report.flops, report.params)
        == (unfused.macs, unfused.flops, unfused.params)
        == (24, 61, 15)
    )


# P8-O10: quantize_static(weight_type=QInt4) at opset < 21 writes com.microsoft
# DequantizeLinear of int4 weights; its output was typed as its int4 input (not the float
# scale's type), so ONNX refused the Conv after it and the file could not be counted.
def test_contrib_dequantize_of_int4_weights_gives_floats() -> None:
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "ws", "wz"], ["w"], domain=MS),
        helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 4, 4))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            helper.make_tensor("w_q", TensorProto.INT4, (2, 3, 1, 1), [1] * 6),
            helper.make_tensor("ws", TensorProto.FLOAT, (), [0.1]),
            helper.make_tensor("wz", TensorProto.INT4, (), [0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    report = profile_onnx(model)
    assert report.macs == 2 * 16 * 3  # 96
    assert report.flops == 6 * 2 + (2 * 96 - 32)  # dequantize 6 weights at 2, conv 32 x (2*3 - 1): 172
    (fact,) = report.options["onnx"]["quantized"]
    assert (fact["weight_bits"], fact["weight_bytes"], fact["bops"]) == (
        4,
        3,
        96 * 4 * 32,
    )  # 6 x 4 bits = 3 bytes
    assert report.param_bytes == 3  # 6 int4 weights


# P8-O11: MatMulNBitsQuantizer(op_types_to_quantize=("MatMul", "Gather")) turns an embedding
# into com.microsoft.GatherBlockQuantized, which had no rule: the file could not be counted.
@pytest.mark.parametrize(
    ("table", "dims"),
    [
        (helper.make_tensor("table", TensorProto.INT4, (10, 8), [1] * 80), None),  # opset 21: int4
        (
            numpy_helper.from_array(np.ones((10, 4), np.uint8), "table"),
            None,
        ),  # uint8, two 4-bit values a byte
    ],
)
def test_gather_block_quantized_is_an_embedding_of_4_bit_rows(table, dims) -> None:  # type: ignore[no-untyped-def]
    node = helper.make_node(
        "GatherBlockQuantized", ["table", "ids", "scales"], ["y"], domain=MS, block_size=8, gather_axis=0,
        quantize_axis=1,
    )  # fmt: skip
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, (2, 3))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [table, numpy_helper.from_array(np.ones((10, 1), np.float32), "scales")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(MS, 1)])
    report = profile_onnx(model)
    assert report.flops == 2 * 3 * 8 * 2  # 6 rows of 8 dequantized at 2 (as DequantizeLinear): 96
    assert report.params == 10 * 8  # 80 4-bit weights
    assert report.param_bytes == 40  # 80 x 4 bits


def _contrib_matmul(op: str, x_shape: tuple[int, ...]) -> onnx.ModelProto:
    """One contrib matmul whose weight has K = 4 (ONNX has no shape inference for it)."""
    weights: dict[str, np.ndarray] = {"s": np.ones((3, 1), np.float32)}
    if op == "MatMulNBits":
        node = helper.make_node(op, ["x", "b", "s"], ["y"], domain=MS, K=4, N=3, bits=4, block_size=16)
        weights["b"] = np.ones((3, 1, 8), np.uint8)
    elif op == "DynamicQuantizeMatMul":
        node = helper.make_node(op, ["x", "b", "s"], ["y"], domain=MS)
        weights.update(b=np.ones((4, 3), np.int8), s=np.array(0.1, np.float32))
    else:  # FusedMatMul
        node = helper.make_node(op, ["x", "b"], ["y"], domain=MS, alpha=1.0)
        weights = {"b": np.ones((4, 3), np.float32)}
    return _model([node], {"x": x_shape}, weights)


# P8-O12: an --input whose last dim is not the weight's K was counted with a made-up row count
# (MatMulNBits: numel // K rows; the others A's own K), where onnxruntime refuses to run.
@pytest.mark.parametrize("op", ["MatMulNBits", "DynamicQuantizeMatMul", "FusedMatMul"])
def test_contrib_matmul_refuses_an_input_that_does_not_end_in_k(op: str) -> None:
    from flopmeter.onnx.load import OnnxModelError

    assert profile_onnx(_contrib_matmul(op, (2, 4))).macs == 2 * 4 * 3  # 24 with the right input
    with pytest.raises(OnnxModelError, match=r"has shape \(2, 5\) but its weight expects a last dim of 4"):
        profile_onnx(_contrib_matmul(op, (2, 5)))
