"""ONNX sequences (P12-R4): ConcatFromSequence's shape from the elements its sequence was built
with (SequenceConstruct, SequenceEmpty, SequenceInsert, SequenceErase, SplitToSequence), which
ONNX's own inference cannot give (a sequence type has no length); where the elements are not
known, an error naming ConcatFromSequence, the sequence and why. Hand counts, and every shape
checked against onnxruntime's run of the same graph."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import OnnxModelError, profile_onnx  # noqa: E402


def model(
    nodes: list, inputs: dict[str, tuple[int, ...]], initializers: dict[str, np.ndarray]
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "sequences",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, n) for n, v in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def ort_shape(proto: onnx.ModelProto, inputs: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {n: np.ones(s, np.float32) for n, s in inputs.items()}
    return tuple(session.run(["y"], feeds)[0].shape)


def test_concat_from_a_constructed_sequence_is_counted_as_concat() -> None:
    """P12-R4: SequenceConstruct(a, b) -> ConcatFromSequence(axis=1) -> MatMul was an error blaming
    input b (the concat's axis unknown). a (2, 3) and b (2, 5) joined: (2, 8) @ w (8, 4)."""
    inputs = {"a": (2, 3), "b": (2, 5)}
    proto = model(
        [
            helper.make_node("SequenceConstruct", ["a", "b"], ["seq"], name="/seq"),
            helper.make_node("ConcatFromSequence", ["seq"], ["ab"], name="/cat", axis=1),
            helper.make_node("MatMul", ["ab", "w"], ["y"], name="/fc/MatMul"),
        ],
        inputs,
        {"w": np.ones((8, 4), np.float32)},
    )
    report = profile_onnx(proto)
    assert ort_shape(proto, inputs) == (2, 4)
    assert report.macs == 2 * 4 * 8  # 64: 8 outputs, dot products of 3 + 5 = 8
    assert report.flops == 2 * 4 * (2 * 8 - 1)  # 120
    assert report.unsupported_ops() == {}
    concat = report.by_operator()["onnx.ConcatFromSequence"]
    assert concat.kind == "data"  # a copy, as Concat
    # reads a 2*3*4 = 24 B and b 2*5*4 = 40 B, writes (2, 8) 64 B
    assert (concat.cost.bytes_read, concat.cost.bytes_written) == (24 + 40, 64)


def test_a_split_stacked_on_a_new_axis() -> None:
    """x (2, 6) split along 1 into pieces of 2: three (2, 2); stacked on a new axis 0: (3, 2, 2);
    @ w (2, 4): (3, 2, 4), 24 outputs of dot products of 2."""
    inputs = {"x": (2, 6)}
    proto = model(
        [
            helper.make_node("SplitToSequence", ["x", "two"], ["parts"], name="/split", axis=1),
            helper.make_node("ConcatFromSequence", ["parts"], ["stacked"], name="/stack", axis=0, new_axis=1),
            helper.make_node("MatMul", ["stacked", "w"], ["y"], name="/fc/MatMul"),
        ],
        inputs,
        {"two": np.array(2, np.int64), "w": np.ones((2, 4), np.float32)},  # type: ignore[dict-item]
    )
    report = profile_onnx(proto)
    assert ort_shape(proto, inputs) == (3, 2, 4)
    assert report.macs == 3 * 2 * 4 * 2  # 48
    assert report.flops == 3 * 2 * 4 * (2 * 2 - 1)  # 72


def test_insert_erase_at_and_length_are_followed() -> None:
    """[] -> insert a (2, 3) -> insert b (2, 5) at 0: [b, a] -> erase the last: [b] -> insert
    c (2, 1): [b, c] -> concat along 1: (2, 6); its length 2 reshapes d (4, 3) to (2, -1) = (2, 6);
    the two added: (2, 6) @ w (6, 4), and SequenceAt(-1) = c (2, 1) @ v (1, 4)."""
    inputs = {"a": (2, 3), "b": (2, 5), "c": (2, 1), "d": (4, 3)}
    proto = model(
        [
            helper.make_node("SequenceEmpty", [], ["s0"], name="/empty", dtype=TensorProto.FLOAT),
            helper.make_node("SequenceInsert", ["s0", "a"], ["s1"], name="/ins_a"),
            helper.make_node("SequenceInsert", ["s1", "b", "zero"], ["s2"], name="/ins_b"),
            helper.make_node("SequenceErase", ["s2"], ["s3"], name="/erase"),
            helper.make_node("SequenceInsert", ["s3", "c"], ["s4"], name="/ins_c"),
            helper.make_node("ConcatFromSequence", ["s4"], ["bc"], name="/cat", axis=1),
            helper.make_node("SequenceLength", ["s4"], ["n"], name="/len"),
            helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"], name="/unsq"),
            helper.make_node("Concat", ["n1", "minus1"], ["target"], name="/target", axis=0),
            helper.make_node("Reshape", ["d", "target"], ["d2"], name="/reshape"),
            helper.make_node("Add", ["bc", "d2"], ["sum"], name="/add"),
            helper.make_node("MatMul", ["sum", "w"], ["p"], name="/fc/MatMul"),
            helper.make_node("SequenceAt", ["s4", "minus1_scalar"], ["last"], name="/at"),
            helper.make_node("MatMul", ["last", "v"], ["q"], name="/fc2/MatMul"),
            helper.make_node("Add", ["p", "q"], ["y"], name="/out"),
        ],
        inputs,
        {
            "zero": np.array(0, np.int64),
            "zero1": np.array([0], np.int64),
            "minus1": np.array([-1], np.int64),
            "minus1_scalar": np.array(-1, np.int64),
            "w": np.ones((6, 4), np.float32),
            "v": np.ones((1, 4), np.float32),
        },  # type: ignore[dict-item]
    )
    report = profile_onnx(proto)
    assert ort_shape(proto, inputs) == (2, 4)
    # (2, 6) @ (6, 4): 2*4*6 = 48 MACs; (2, 1) @ (1, 4): 2*4*1 = 8 MACs
    assert report.macs == 48 + 8
    # matmuls 2*4*(2*6-1) = 88 and 2*4*(2*1-1) = 8; adds 2*6 = 12 and 2*4 = 8
    assert report.flops == 88 + 8 + 12 + 8
    assert report.unsupported_ops() == {}


def test_a_sequence_split_at_run_time_is_refused_naming_concat_from_sequence() -> None:
    proto = model(
        [
            helper.make_node("SplitToSequence", ["x", "sizes"], ["parts"], name="/split", axis=1),
            helper.make_node("ConcatFromSequence", ["parts"], ["cat"], name="/cat", axis=0, new_axis=1),
            helper.make_node("MatMul", ["cat", "w"], ["y"], name="/fc/MatMul"),
        ],
        {"x": (2, 6)},
        {"w": np.ones((3, 4), np.float32)},
    )
    sizes = helper.make_tensor_value_info("sizes", TensorProto.INT64, [])
    proto.graph.input.append(sizes)  # the split sizes: a graph input, known only at run time
    with pytest.raises(OnnxModelError) as caught:
        profile_onnx(proto)
    message = str(caught.value)
    assert (
        "node '/cat' (ConcatFromSequence) reads the sequence 'parts', the output of node '/split' " in message
    )
    assert (
        "whose elements (how many, and their shapes) are unknown, and its new axis is their number" in message
    )
    assert "depends on the value of its input 'sizes'" in message


def test_a_sequence_flopmeter_does_not_follow_is_named() -> None:
    body = helper.make_graph(
        [helper.make_node("Relu", ["e"], ["r"])],
        "body",
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("r", TensorProto.FLOAT, None)],
    )
    proto = model(
        [
            helper.make_node("SequenceConstruct", ["a", "b"], ["seq"], name="/seq"),
            helper.make_node("SequenceMap", ["seq"], ["mapped"], name="/map", body=body),
            helper.make_node("ConcatFromSequence", ["mapped"], ["ab"], name="/cat", axis=1),
            helper.make_node("MatMul", ["ab", "w"], ["y"], name="/fc/MatMul"),
        ],
        {"a": (2, 3), "b": (2, 5)},
        {"w": np.ones((8, 4), np.float32)},
    )
    with pytest.raises(
        OnnxModelError,
        match=r"its size along the axis is their sum: flopmeter follows a sequence's elements through SequenceConstruct, SequenceEmpty, SequenceErase, SequenceInsert, SplitToSequence, not through SequenceMap",
    ):
        profile_onnx(proto)


def test_insert_at_a_negative_position_counts_from_the_sequences_length() -> None:
    """Review 13: SequenceInsert's position -1 inserts before the last element (onnxruntime,
    and ONNX's reference ``list.insert``: -1 + n), not after it (-1 + n + 1 was appending).
    [a (2, 3)] + b (2, 5) at -1 = [b, a]; SequenceAt 0 is b (2, 5) @ w (5, 4): 2*4 outputs of
    5 MACs = 40 MACs, 2*4*(2*5 - 1) = 72 FLOPs (a at 0 would not even multiply by w)."""
    inputs = {"a": (2, 3), "b": (2, 5)}
    minus_one, zero = np.array(-1, np.int64), np.array(0, np.int64)
    proto = model(
        [
            helper.make_node("SequenceConstruct", ["a"], ["s1"], name="/seq"),
            helper.make_node("SequenceInsert", ["s1", "b", "minus_one"], ["s2"], name="/ins_b"),
            helper.make_node("SequenceAt", ["s2", "zero"], ["first"], name="/at"),
            helper.make_node("MatMul", ["first", "w"], ["y"], name="/fc/MatMul"),
        ],
        inputs,
        {"w": np.ones((5, 4), np.float32), "minus_one": minus_one, "zero": zero},
    )
    assert ort_shape(proto, inputs) == (2, 4)
    report = profile_onnx(proto)
    assert report.macs == 2 * 4 * 5  # 40
    assert report.flops == 2 * 4 * (2 * 5 - 1)  # 72
