"""Probe-3 findings on ONNX files (docs/probe-3/onnx.md): each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import profile_onnx  # noqa: E402
from flopmeter.onnx.load import OnnxModelError  # noqa: E402


def _model(nodes, inputs, weights=None, opset=18, extra_opsets=(), value_info=()):  # type: ignore[no-untyped-def]
    """A graph of ``nodes`` with float inputs {name: shape} and all-ones float weights."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones(s, np.float32), n) for n, s in (weights or {}).items()],
        value_info=list(value_info),
    )
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in extra_opsets]
    return helper.make_model(graph, opset_imports=imports)


def _einsum(equation: str, *shapes: tuple[int, ...]):  # type: ignore[no-untyped-def]
    names = [f"x{i}" for i in range(len(shapes))]
    node = helper.make_node("Einsum", names, ["y"], equation=equation)
    return _model([node], dict(zip(names, shapes, strict=True)))


# P3-O1: an equation without "->" (implicit output) counted every index as contracted.
def test_einsum_implicit_output_is_the_letters_seen_once() -> None:
    report = profile_onnx(_einsum("ij,jk", (2, 3), (3, 4)))  # = "ij,jk->ik"
    assert report.macs == 2 * 4 * 3  # 24: 8 outputs, 3 terms each
    assert report.flops == 8 * (2 * 3 - 1)  # 40


# P3-O2: one operand (a sum, a transpose, a diagonal) has no products: no MACs.
@pytest.mark.parametrize(
    ("equation", "shape", "flops"),
    [
        ("ij->i", (2, 3), 2 * (3 - 1)),  # 4 adds, as aten.sum of the PyTorch einsum
        ("ij->ji", (2, 3), 0),  # a transpose
        ("ii->i", (3, 3), 0),  # a diagonal
        ("ii", (3, 3), 3 - 1),  # the trace: 2 adds
    ],
)
def test_einsum_one_operand_has_no_macs(equation: str, shape: tuple[int, ...], flops: int) -> None:
    report = profile_onnx(_einsum(equation, shape))
    assert report.macs == 0
    assert report.flops == flops


def test_einsum_three_operands_unchanged() -> None:
    report = profile_onnx(_einsum("ij,jk,kl->il", (2, 3), (3, 4), (4, 5)))
    # 10 outputs x 12 (j, k) terms = 120 terms of 2 multiplies; 10 x 11 adds
    assert report.macs == 120
    assert report.flops == 120 * 2 + 10 * 11  # 350


# P3-O9: both exporters write GroupNorm as Reshape -> InstanceNormalization (scale 1,
# bias 0 of their own) -> Reshape -> Mul(weight) -> Add(bias): the affine transform was
# counted twice (+2E FLOPs) and dynamo's made-up scale and bias were parameters.
def _group_norm_graph():  # type: ignore[no-untyped-def]
    def const(name: str, values: list[int]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(values, np.int64), name)

    nodes = [
        helper.make_node("Reshape", ["x", "grouped"], ["xg"], name="/gn/Reshape"),
        helper.make_node(
            "InstanceNormalization", ["xg", "ones", "zeros"], ["n"], name="/gn/InstanceNormalization"
        ),
        helper.make_node("Reshape", ["n", "back"], ["nb"], name="/gn/Reshape_1"),
        helper.make_node("Mul", ["nb", "gn.weight"], ["m"], name="/gn/Mul"),
        helper.make_node("Add", ["m", "gn.bias"], ["y"], name="/gn/Add"),
    ]
    model = _model(
        nodes,
        {"x": (1, 4, 3, 3)},
        {"ones": (2,), "zeros": (2,), "gn.weight": (4, 1, 1), "gn.bias": (4, 1, 1)},
    )
    model.graph.initializer.extend([const("grouped", [1, 2, -1]), const("back", [1, 4, 3, 3])])
    return model


def test_group_norm_decomposition_counts_as_pytorch() -> None:
    report = profile_onnx(_group_norm_graph())
    # GroupNorm(2, 4) on 1x4x3x3: 2 groups of 18: 2*(5*18 + 2) = 184; weight and bias 2*36 = 72
    assert report.flops == 184 + 72  # 256, as aten.native_group_norm
    assert report.params == 4 + 4  # the module's weight and bias; not the exporter's ones and zeros
    assert report.modules["gn"].flops == 256
    assert "pattern.group_norm" in report.operators


def test_group_norm_legacy_export_matches_pytorch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    import flopmeter

    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(2, 4)).eval()
    x = torch.randn(1, 3, 5, 5)
    path = tmp_path / "gn.onnx"
    torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=17)
    exported, eager = profile_onnx(path), flopmeter.profile(module, x)
    assert (exported.macs, exported.flops, exported.params) == (eager.macs, eager.flops, eager.params)


# P3-O3: a custom op's output shape declared in the graph's value_info was ignored: the
# nodes after it could not be counted at all.
def _custom_then_relu(declared: tuple | None):  # type: ignore[no-untyped-def,type-arg]
    nodes = [
        helper.make_node("MyOp", ["x"], ["z"], domain="my.domain"),
        helper.make_node("Relu", ["z"], ["y"]),
    ]
    info = [helper.make_tensor_value_info("z", TensorProto.FLOAT, declared)] if declared else []
    return _model(nodes, {"x": ("N", 8)}, extra_opsets=["my.domain"], value_info=info)


def test_custom_op_output_shape_from_value_info() -> None:
    report = profile_onnx(_custom_then_relu(("N", 8)), dims={"N": 3})
    assert report.flops == 3 * 8  # the Relu after it: 24 elements, the user's N bound in value_info
    unsupported = report.unsupported["my.domain.MyOp"]
    assert (unsupported.calls, unsupported.shapes) == (1, ["(3x8:float32)"])  # never a silent zero


def test_custom_op_without_value_info_names_the_fix() -> None:
    with pytest.raises(OnnxModelError, match=r"my\.domain\.MyOp is not a standard ONNX op.*value_info"):
        profile_onnx(_custom_then_relu(None), dims={"N": 3})


# P3-O4: a 0 in a shape given with inputs= counted 0 silently (docs: a dim of 0 is refused).
def test_zero_dim_in_given_input_shape_is_refused() -> None:
    model = _model([helper.make_node("Relu", ["x"], ["y"])], {"x": ("N", 8)})
    with pytest.raises(OnnxModelError, match=r"input 'x': the shape given, \(1, 0\), has a dim of 0"):
        profile_onnx(model, inputs={"x": (1, 0)})


# P3-O5: an input dim with neither a value nor a name is reported as 'x[0]' and the error
# said "--dim x[0]=SIZE", which was then refused as "not a symbolic dim".
def test_unnamed_dim_binds_by_its_label() -> None:
    model = _model([helper.make_node("Relu", ["x"], ["y"])], {"x": (None, 8)})
    with pytest.raises(OnnxModelError, match=r"--dim x\[0\]=SIZE"):
        profile_onnx(model)
    assert profile_onnx(model, dims={"x[0]": 5}).flops == 5 * 8  # 40
    with pytest.raises(OnnxModelError, match=r"symbolic dims are: x\[0\]"):
        profile_onnx(model, dims={"T": 5})


# P3-O8: `--input x:1x8:float16` on a float32 ONNX model was accepted and the dtype ignored
# (bytes counted as float32 while the user asked for float16).
def test_cli_input_dtype_other_than_the_models_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from flopmeter.cli import run

    path = tmp_path / "relu.onnx"
    onnx.save(_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ("N", 8)}), path)
    code, out, err = run([str(path), "--input", "x:2x8:float16"])
    assert code == 2 and out == ""
    assert "input 'x' is float32" in err
    code, out, err = run([str(path), "--input", "x:2x8:fp32", "--units", "plain", "-q"])
    assert code == 0, err
    assert "16 FLOPs" in out  # 2 x 8 Relu


# P3-O7: profile_onnx(None) raised os.fspath's TypeError; a folder was "no such ONNX file".
def test_source_that_is_not_a_path_or_a_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        TypeError, match="expected a path to an .onnx file or an onnx.ModelProto, got NoneType"
    ):
        profile_onnx(None)
    with pytest.raises(OnnxModelError, match="is a folder, not an ONNX file"):
        profile_onnx(tmp_path)


# P3-O11: quantize_dynamic stores embedding tables as uint8 / int8 Gather data; they were
# left out of params (a 2-layer BERT: 139,392 in PyTorch, 67,072 quantized).
def test_quantized_embedding_table_is_a_parameter() -> None:
    def tensor(name: str, array: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(array, name)

    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["e"]),
        helper.make_node("Gather", ["shape_table", "one"], ["dim"]),  # an int64 exporter constant
        helper.make_node("Reshape", ["e", "dim"], ["y"], allowzero=0),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, (3,))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            tensor("table", np.ones((10, 4), np.uint8)),
            tensor("scale", np.array(0.1, np.float32)),
            tensor("zero", np.array(0, np.uint8)),
            tensor("shape_table", np.array([[3, 4], [12, 1]], np.int64)),
            tensor("one", np.array(1, np.int64)),
        ],
    )
    report = profile_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    assert report.params == 10 * 4  # the uint8 table; the int64 shape table is a constant
    assert report.param_bytes == 40  # 1 byte each


# P3-O6: saved with size_threshold=0, even a Reshape's 2-element shape went to the data
# file, and the model could not be counted ("whose data is external").
def test_integer_shape_tensor_in_external_data_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("MatMul", ["r", "w"], ["y"]),
    ]
    model = _model(nodes, {"x": (2, 2, 8)}, {"w": (8, 16)})
    model.graph.initializer.append(numpy_helper.from_array(np.array([4, 8], np.int64), "shape"))
    path = tmp_path / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    report = profile_onnx(path)
    assert report.macs == 4 * 8 * 16  # 512: (4, 8) @ (8, 16)
    assert report.params == 8 * 16  # 128


# P3-O12: a model that scales q itself (Swin, `q = q * scale`, then q @ k^T + bias) had that
# Mul folded into the attention, which then counted SDPA's scale of every score instead:
# +heads x L x (S - E) FLOPs (+22,491 in swin_t's first block at 64x64).
def test_attention_with_the_models_own_q_scaling() -> None:
    shapes = {"q": (1, 2, 4, 8), "kt": (1, 2, 8, 6), "v": (1, 2, 6, 8), "bias": (1, 2, 4, 6)}
    nodes = [
        helper.make_node("Mul", ["q", "scale"], ["qs"], name="/attn/Mul"),
        helper.make_node("MatMul", ["qs", "kt"], ["s"], name="/attn/MatMul"),
        helper.make_node("Add", ["s", "bias"], ["sb"], name="/attn/Add"),
        helper.make_node("Softmax", ["sb"], ["p"], axis=-1, name="/attn/Softmax"),
        helper.make_node("MatMul", ["p", "v"], ["y"], name="/attn/MatMul_1"),
    ]
    model = _model(nodes, shapes)
    model.graph.initializer.append(numpy_helper.from_array(np.array(0.35, np.float32), "scale"))
    report = profile_onnx(model)
    assert report.macs == 2 * 4 * 6 * (8 + 8)  # 768: QK^T and PV
    # as PyTorch counts the same code: q * scale 2*4*8 = 64; QK^T 2*24*(2*8-1) = 720; + bias 48;
    # softmax 2*(5*24 - 2*4) = 224; PV 2*4*8*(2*6-1) = 704
    assert report.flops == 64 + 720 + 48 + 224 + 704  # 1,760 (was 1,744: 48 score scalings, no q Mul)
    assert report.operators["onnx.Mul"].cost.flops == 64


# P3-O10: DequantizeLinear -> MatMul was listed for the compression view only when both
# operands were dequantized (weight-only int8 / int4 was missing), and a float contraction's
# inputs were looked up by node name, so unnamed nodes (common outside torch) were missed.
def _qdq_matmul(activation_quantized: bool):  # type: ignore[no-untyped-def]
    def tensor(name: str, array: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(array, name)

    nodes = [helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"])]
    if activation_quantized:
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        ]
    nodes.append(helper.make_node("MatMul", ["xd" if activation_quantized else "x", "w"], ["y"]))
    weights = [tensor("wq", np.ones((8, 16), np.int8)), tensor("ws", np.array(0.1, np.float32))]
    weights += [tensor("xs", np.array(0.1, np.float32)), tensor("xz", np.array(0, np.uint8))]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (4, 8))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


@pytest.mark.parametrize(("activation_quantized", "activation_bits"), [(False, 32), (True, 8)])
def test_qdq_matmul_is_listed(activation_quantized: bool, activation_bits: int) -> None:
    report = profile_onnx(_qdq_matmul(activation_quantized))
    (fact,) = report.options["onnx"]["quantized"]
    assert fact["op"] == "onnx.MatMul" and fact["qdq"] is True
    assert fact["macs"] == 4 * 8 * 16  # 512
    assert (fact["weight_bits"], fact["activation_bits"]) == (8, activation_bits)
    assert fact["bops"] == 512 * 8 * activation_bits
    assert fact["weight_bytes"] == 8 * 16  # 128 int8 weights


# P3-O14: an op inside a Loop body that runs 5 times was listed (unsupported) or tabled
# (counted) with 1 call; its cost was already x5.
def test_loop_body_ops_count_a_call_per_iteration() -> None:
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Hardmax", ["y_in"], ["h"]),  # no formula: listed, never a silent zero
            helper.make_node("Relu", ["h"], ["y_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, ()),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, ()),
            helper.make_tensor_value_info("y_in", TensorProto.FLOAT, (4, 8)),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, ()),
            helper.make_tensor_value_info("y_out", TensorProto.FLOAT, (4, 8)),
        ],
    )
    model = _model([helper.make_node("Loop", ["M", "go", "x"], ["y"], body=body, name="loop")], {"x": (4, 8)})
    model.graph.initializer.extend(
        [numpy_helper.from_array(np.array(5, np.int64), "M"), numpy_helper.from_array(np.array(True), "go")]
    )
    report = profile_onnx(model)
    assert report.unsupported["onnx.Hardmax"].calls == 5
    assert report.operators["onnx.Relu"].calls == 5
    assert report.operators["onnx.Relu"].cost.flops == 5 * 32  # 160


# P3-O13: MatMulNBits packs two 4-bit weights a byte: params counted the uint8 bytes (half
# the weights) and the quantized facts' weight_bytes half the bytes stored.
def test_matmul_nbits_counts_weights_not_packed_bytes() -> None:
    node = helper.make_node(
        "MatMulNBits",
        ["a", "packed", "scales"],
        ["y"],
        domain="com.microsoft",
        K=16,
        N=8,
        bits=4,
        block_size=16,
    )
    model = _model([node], {"a": (2, 16)}, {"scales": (8,)}, extra_opsets=["com.microsoft"])
    # B: (N, K / block_size, block_size * bits / 8) = (8, 1, 8) uint8 = 64 bytes, 128 weights
    model.graph.initializer.append(numpy_helper.from_array(np.ones((8, 1, 8), np.uint8), "packed"))
    report = profile_onnx(model)
    assert report.macs == 2 * 16 * 8  # 256
    assert report.flops == 2 * 8 * (2 * 16 - 1)  # 496: float activations, dequantized weights
    assert report.params == 16 * 8  # 128 weights (the per-block scales are not parameters)
    assert report.param_bytes == 64
    (fact,) = report.options["onnx"]["quantized"]
    assert (fact["weight_bits"], fact["activation_bits"], fact["weight_bytes"]) == (4, 32, 64)
    assert fact["bops"] == 256 * 4 * 32  # 32,768


def _contrib(op: str, inputs: dict, outputs: list[str], **attrs):  # type: ignore[no-untyped-def,type-arg]
    names = [name if shape is not None else "" for name, shape in inputs.items()]
    node = helper.make_node(op, names, outputs, domain="com.microsoft", **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info(
                n, TensorProto.INT32 if n in ("seqlens", "total") else TensorProto.FLOAT, s
            )
            for n, s in inputs.items()
            if s is not None
        ],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
    )
    imports = [helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=imports)


# P3-O17: GroupQueryAttention always has present_key / present_value outputs (onnxruntime
# LLM exports); their shapes had no rule, so no such graph could be counted.
def test_group_query_attention_with_its_present_outputs() -> None:
    inputs = {
        "q": (1, 3, 32),
        "k": (1, 3, 16),
        "v": (1, 3, 16),
        "past_k": (1, 2, 5, 8),
        "past_v": (1, 2, 5, 8),
    }
    inputs |= {"seqlens": (1,), "total": ()}
    model = _contrib(
        "GroupQueryAttention", inputs, ["y", "present_k", "present_v"], num_heads=4, kv_num_heads=2
    )
    report = profile_onnx(model)
    # 4 heads, 3 queries over 5 + 3 = 8 keys, head 8: 24 scores per head
    assert report.macs == 4 * 24 * (8 + 8)  # 1,536
    # per head: QK 24*15 = 360, scale 24, softmax 5*24 - 2*3 = 114, AV 8*(2*24 - 3) = 360
    assert report.flops == 4 * (360 + 24 + 114 + 360)  # 3,432


# P3-O18: MultiHeadAttention with past_key attended over the new keys only.
def test_multi_head_attention_with_past_keys() -> None:
    inputs = {"q": (2, 4, 16), "k": (2, 6, 16), "v": (2, 6, 16), "bias": None, "mask": None, "rel": None}
    inputs |= {"past_k": (2, 2, 3, 8), "past_v": (2, 2, 3, 8)}
    model = _contrib("MultiHeadAttention", inputs, ["y", "present_k", "present_v"], num_heads=2)
    report = profile_onnx(model)
    # 2 x 2 heads, 4 queries over 3 + 6 = 9 keys, head 8: 36 scores per head
    assert report.macs == 4 * 36 * (8 + 8)  # 2,304
    # per head: QK 36*15 = 540, scale 36, softmax 5*36 - 2*4 = 172, AV 8*(2*36 - 4) = 544
    assert report.flops == 4 * (540 + 36 + 172 + 544)  # 5,168


# P3-O20: an If with an unknown condition counts both branches "as an upper bound", but the
# ops after it took the first branch's output shape even when the other one was larger.
def test_if_of_unknown_condition_passes_on_the_larger_output() -> None:
    def ints(name: str, values: list[int]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(values, np.int64), name)

    then_branch = helper.make_graph(  # x[0:2]: 2 x 8
        [helper.make_node("Slice", ["x", "start", "end", "axis"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
    )
    else_branch = helper.make_graph(  # x: 4 x 8
        [helper.make_node("Identity", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
    )
    nodes = [
        helper.make_node("If", ["c"], ["z"], then_branch=then_branch, else_branch=else_branch),
        helper.make_node("Relu", ["z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, ()),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, (4, 8)),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [ints("start", [0]), ints("end", [2]), ints("axis", [0])],
    )
    report = profile_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    assert report.operators["onnx.Relu"].cost.flops == 4 * 8  # 32: the else branch's 4 x 8, not 2 x 8
    assert report.options["onnx"]["control_flow"][0]["upper_bound"] is True


# P3-O21: an LSTM's peephole weights (input P) were neither parameters nor counted as work:
# 3 gates x (P * c, + the gate) per hidden unit and step.
def test_lstm_peepholes_are_counted() -> None:
    weights = {"w": (1, 16, 3), "r": (1, 16, 4), "b": (1, 32)}
    plain = profile_onnx(
        _model(
            [helper.make_node("LSTM", ["x", "w", "r", "b"], ["y"], hidden_size=4)], {"x": (5, 2, 3)}, weights
        )
    )
    node = helper.make_node("LSTM", ["x", "w", "r", "b", "", "", "", "p"], ["y"], hidden_size=4)
    peep = profile_onnx(_model([node], {"x": (5, 2, 3)}, {**weights, "p": (1, 12)}))
    assert peep.macs == plain.macs == 5 * 2 * 16 * (3 + 4)  # 1,120: 10 steps, 4 gates x 4 hidden x 7
    assert peep.flops - plain.flops == 5 * 2 * 3 * 2 * 4  # 240: 10 steps x 3 gates x 2 ops x 4 hidden
    assert peep.params - plain.params == 12  # P: 3 x 4


# P3-O22: dynamo with optimize=False gives a bias-free conv a bias of zeros (Expand of 0):
# E bias adds per conv that PyTorch never did (resnet18 at 64x64: +202,752 FLOPs).
def test_dynamo_zero_bias_of_a_bias_free_conv_is_not_counted() -> None:
    conv = helper.make_node("Conv", ["x", "w", "zeros"], ["y"], pads=[1, 1, 1, 1], name="node_conv2d")
    fx = "%conv2d : [num_users=1] = call_function[target=torch.ops.aten.conv2d.default](args = (%x, %p_w, None, [1, 1], [1, 1]), kwargs = {})"
    helper.set_metadata_props(conv, {"pkg.torch.onnx.fx_node": fx})
    expand = helper.make_node("Expand", ["zero", "channels"], ["zeros"])
    model = _model([expand, conv], {"x": (1, 3, 8, 8)}, {"w": (4, 3, 3, 3), "zero": ()})
    model.graph.initializer.append(numpy_helper.from_array(np.array([4], np.int64), "channels"))
    report = profile_onnx(model)
    assert report.macs == 4 * 64 * 27  # 6,912
    assert report.flops == 4 * 64 * (2 * 27 - 1)  # 13,568: no bias adds, as aten.conv2d(bias=None)


# P3-O23: a causal mask built from aranges and a comparison (transformers' masks; dynamo with
# optimize=False; no Trilu) was not recognised: causal="needed" counted the full square
# (a 2-layer Llama: +30,720 MACs against PyTorch, at opset 18 and 23).
def _causal_keep_mask_nodes() -> list:  # type: ignore[type-arg]
    return [
        helper.make_node("Range", ["zero", "four", "one"], ["ar"]),
        helper.make_node("Unsqueeze", ["ar", "axis1"], ["rows"]),
        helper.make_node("Unsqueeze", ["ar", "axis0"], ["cols"]),
        helper.make_node("LessOrEqual", ["cols", "rows"], ["keep"]),  # key j <= query i
    ]


def _mask_constants() -> list[onnx.TensorProto]:
    values = {"zero": 0, "four": 4, "one": 1}
    tensors = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in values.items()]
    tensors += [numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    tensors += [numpy_helper.from_array(np.array([0], np.int64), "axis0")]
    return tensors + [numpy_helper.from_array(np.array(-np.inf, np.float32), "ninf")]


def test_causal_mask_of_a_comparison_is_recognised() -> None:
    nodes = _causal_keep_mask_nodes() + [
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Where", ["keep", "s", "ninf"], ["sm"]),
        helper.make_node("Softmax", ["sm"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    model = _model(nodes, {"q": (1, 2, 4, 8), "kt": (1, 2, 8, 4), "v": (1, 2, 4, 8)})
    model.graph.initializer.extend(_mask_constants())
    assert profile_onnx(model).macs == 2 * 16 * (8 + 8)  # 512: full, 2 heads x 4 x 4 scores
    needed = profile_onnx(model, causal="needed")
    assert needed.macs == 2 * 10 * (8 + 8)  # 320: 1 + 2 + 3 + 4 kept scores per head
    # per head: QK 10*15 = 150, mask 10, softmax 5*10 - 2*4 = 42, PV 8*(2*10 - 4) = 128 (no scale in the graph)
    assert needed.flops == 2 * (150 + 10 + 42 + 128)  # 660


def test_opset23_attention_with_a_causal_attn_mask() -> None:
    nodes = _causal_keep_mask_nodes() + [helper.make_node("Attention", ["q", "k", "v", "keep"], ["y"])]
    model = _model(nodes, {"q": (1, 2, 4, 8), "k": (1, 2, 4, 8), "v": (1, 2, 4, 8)}, opset=23)
    model.graph.initializer.extend(_mask_constants())
    assert profile_onnx(model).macs == 512
    assert profile_onnx(model, causal="needed").macs == 320


# P3-O24: a bias of the scores' own shape (T5's position bias, 1 x heads x L x S) added to
# the scores: the walk back followed the bias instead of the scores, no attention was
# folded, and the legacy exporter's q and k scalings counted (T5 encoder: +2,048 FLOPs).
def test_attention_with_a_bias_of_the_scores_shape() -> None:
    nodes = [
        helper.make_node("Identity", ["bias"], ["position_bias"]),  # computed in the graph, as T5's
        helper.make_node("Mul", ["q", "c"], ["qs"]),
        helper.make_node("Mul", ["kt", "c"], ["ks"]),
        helper.make_node("MatMul", ["qs", "ks"], ["s"]),
        helper.make_node("Add", ["s", "position_bias"], ["sb"]),
        helper.make_node("Softmax", ["sb"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    shapes = {"q": (1, 2, 4, 8), "kt": (1, 2, 8, 4), "v": (1, 2, 4, 8), "bias": (1, 2, 4, 4)}
    model = _model(nodes, shapes)
    model.graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), "c"))
    report = profile_onnx(model)
    assert "pattern.attention" in report.operators
    # as aten.scaled_dot_product_attention with a mask: per head QK 16*15 = 240, scale 16,
    # bias 16, softmax 5*16 - 2*4 = 72, PV 8*(2*16 - 4) = 224
    assert report.flops == 2 * (240 + 16 + 16 + 72 + 224)  # 1,136 (was 1,232: 64 + 64 scalings)


# P3-O12 (second half): dynamo writes SDPA with scale=1.0 (Whisper scales q in q_proj) with
# no Mul at all; its fx metadata says aten.scaled_dot_product_attention, which PyTorch
# counts with its score scaling: the fold must too (Whisper's encoder: -8,192 FLOPs).
def test_dynamo_sdpa_of_scale_one_counts_as_pytorch() -> None:
    softmax = helper.make_node("Softmax", ["s"], ["p"], axis=-1)
    fx = "%scaled_dot_product_attention : [num_users=1] = call_function[target=torch.ops.aten.scaled_dot_product_attention.default](args = (%q, %k, %v), kwargs = {scale: 1.0})"
    helper.set_metadata_props(softmax, {"pkg.torch.onnx.fx_node": fx})
    nodes = [
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        softmax,
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    report = profile_onnx(_model(nodes, {"q": (1, 2, 4, 8), "kt": (1, 2, 8, 4), "v": (1, 2, 4, 8)}))
    # as aten.scaled_dot_product_attention: per head QK 240, scale 16, softmax 72, PV 224
    assert report.flops == 2 * (240 + 16 + 72 + 224)  # 1,104


def test_instance_norm_module_between_reshapes_is_not_a_group_norm() -> None:
    model = _group_norm_graph()
    for node in model.graph.node:  # the InstanceNorm2d module's own (named) weight and bias
        if node.op_type == "InstanceNormalization":
            node.input[1], node.input[2] = "inn.weight", "inn.bias"
    for tensor in model.graph.initializer:
        tensor.name = {"ones": "inn.weight", "zeros": "inn.bias"}.get(tensor.name, tensor.name)
    report = profile_onnx(model)
    assert "pattern.group_norm" not in report.operators
    # InstanceNorm over 2 planes of 18 with its affine: 2*(5*18 + 2) + 2*36 = 256; Mul 36, Add 36
    assert report.flops == 256 + 36 + 36  # 328
    assert report.params == 2 + 2 + 4 + 4  # its weight and bias, and the Mul's and Add's vectors


def test_conv_transpose_counts_only_the_outputs_a_product_reaches():
    """P3-O15: ConvTranspose 4->2, k3, stride 2, output_padding 1 on 1x4x5x5 gives 12x12
    outputs, of which row and column 11 receive no product: 2*1,800 - 2*11*11 = 3,358
    FLOPs, from the ONNX file and from PyTorch alike (it was 3,312: 2*MACs - every output)."""
    import io

    import torch

    import flopmeter

    conv = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1, bias=False)
    x = torch.randn(1, 4, 5, 5)
    buffer = io.BytesIO()
    torch.onnx.export(conv, (x,), buffer, dynamo=False, opset_version=17)
    from_onnx = profile_onnx(onnx.load_from_string(buffer.getvalue()))
    from_torch = flopmeter.profile(conv, x)
    assert from_onnx.macs == from_torch.macs == 1_800  # 100 inputs * 2*9 weights
    assert from_onnx.flops == from_torch.flops == 3_358
