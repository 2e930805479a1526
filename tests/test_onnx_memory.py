"""Peak activation bytes of ONNX graphs from tensor lifetimes, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import profile_onnx  # noqa: E402

F = TensorProto.FLOAT


def test_peak_follows_lifetimes_and_views() -> None:
    """x (2, 8) float32 = 64 bytes, live all run. In order:
    w = MatMul(x, W1 (8, 32))  (2, 32) 256 B   live 64 + 256 = 320
    s = ReduceSum(w) -> (2,)   8 B              live 328; w freed -> 72
    z = MatMul(x, W2 (8, 16))  (2, 16) 128 B   live 200
    r = Reshape(z, (4, 8))     a view: no bytes; keeps z alive
    e = Exp(r)                 (4, 8) 128 B     live 328; z freed (r's last use) -> 200
    out = Mul(e, e)            128 B            live 328; e freed -> 200
    (Counting the view would give 456 after Exp; never freeing w, 584 after Mul.)
    """
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["w"], name="mm1"),
        helper.make_node("ReduceSum", ["w", "axis"], ["s"], name="sum", keepdims=0),
        helper.make_node("MatMul", ["x", "W2"], ["z"], name="mm2"),
        helper.make_node("Reshape", ["z", "shape"], ["r"], name="view"),
        helper.make_node("Exp", ["r"], ["e"], name="exp"),
        helper.make_node("Mul", ["e", "e"], ["out"], name="square"),
    ]
    initializers = [
        numpy_helper.from_array(np.ones((8, 32), np.float32), "W1"),
        numpy_helper.from_array(np.ones((8, 16), np.float32), "W2"),
        numpy_helper.from_array(np.array([1], np.int64), "axis"),
        numpy_helper.from_array(np.array([4, 8], np.int64), "shape"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", F, [2, 8])],
        [helper.make_tensor_value_info("out", F, None), helper.make_tensor_value_info("s", F, None)],
        initializers,
    )
    report = profile_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    # x 64 + w 256 + s 8 = 328 after ReduceSum; later x 64 + s 8 + z 128 + e 128 = 328 after Exp
    # and x 64 + s 8 + e 128 + out 128 = 328 after Mul: the peak is 328
    assert report.peak_activation_bytes == 64 + 256 + 8  # 328


def test_peak_of_a_chain_is_two_neighbours_plus_the_input() -> None:
    """x (1, 1024) float32 = 4 KiB; Relu -> Relu -> Relu: at most x, the previous
    output and the new one are live: 3 x 4,096 = 12,288."""
    nodes = [helper.make_node("Relu", [a], [b], name=b) for a, b in (("x", "a"), ("a", "b"), ("b", "c"))]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", F, [1, 1024])],
        [helper.make_tensor_value_info("c", F, None)],
    )
    report = profile_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert report.peak_activation_bytes == 3 * 4096  # 12,288
