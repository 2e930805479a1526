"""ONNX op formulas against numbers computed by hand, on one-node graphs."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import profile_onnx  # noqa: E402


def one_node(op: str, inputs: dict, weights: dict, opset: int = 23, domain: str = "", **attrs):  # type: ignore[no-untyped-def]
    names = list(inputs) + list(weights)
    node = helper.make_node(op, names, ["out"], name=f"/{op.lower()}/{op}", domain=domain, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones(s, np.float32), n) for n, s in weights.items()],
    )
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=imports)


def test_gemm_with_alpha_and_beta() -> None:
    model = one_node("Gemm", {"a": [4, 8]}, {"b": [8, 3], "c": [3]}, alpha=2.0, beta=0.5)
    report = profile_onnx(model)
    assert report.macs == 4 * 3 * 8  # 96
    # 12 dot products of 8: 12*15 = 180; bias adds 12; alpha and beta multiplies 12 + 12
    assert report.flops == 180 + 12 + 12 + 12  # 216


def test_attention_opset23_causal_needed_halves() -> None:
    q = {"q": [1, 2, 4, 8], "k": [1, 2, 4, 8], "v": [1, 2, 4, 8]}
    full = profile_onnx(one_node("Attention", q, {}, is_causal=1))
    needed = profile_onnx(one_node("Attention", q, {}, is_causal=1), causal="needed")
    assert full.macs == 2 * 4 * 4 * (8 + 8)  # heads x L x S x (E + Ev) = 512
    # per head: QK 16*(2*8-1)=240, scale 16, softmax 5*16-2*4=72, AV 8*(2*16-4)=224 -> 552
    assert full.flops == 2 * 552  # 1,104
    assert needed.macs == 2 * (1 + 2 + 3 + 4) * 16  # 320: 10 kept scores per head


def test_lstm_counts_steps_and_directions() -> None:
    model = one_node(
        "LSTM", {"x": [5, 2, 3]}, {"w": [2, 16, 3], "r": [2, 16, 4], "b": [2, 32]}, hidden_size=4,
        direction="bidirectional",
    )  # fmt: skip
    report = profile_onnx(model)
    # per step and direction: 4 gates x 4 hidden x (3 + 4) = 112 MACs; 5 steps x 2 batch x 2 directions
    assert report.macs == 112 * 5 * 2 * 2  # 2,240


def test_einsum_batched_matmul() -> None:
    model = one_node("Einsum", {"a": [2, 3, 5], "b": [2, 5, 4]}, {}, equation="bij,bjk->bik")
    report = profile_onnx(model)
    assert report.macs == 2 * 3 * 4 * 5  # 120
    assert report.flops == 2 * 3 * 4 * (2 * 5 - 1)  # 216


def test_rms_normalization() -> None:
    report = profile_onnx(one_node("RMSNormalization", {"x": [3, 8]}, {"scale": [8]}))
    assert report.flops == 3 * (3 * 8 + 2) + 3 * 8  # 102: square, mean, eps, rsqrt, scale + weight


def test_softmax_rows() -> None:
    report = profile_onnx(one_node("Softmax", {"x": [6, 10]}, {}, axis=-1))
    assert report.flops == 6 * (5 * 10 - 2)  # 288


def test_unsupported_op_is_named_with_count_and_shape() -> None:
    report = profile_onnx(one_node("Det", {"x": [3, 3]}, {}))
    assert report.unsupported["onnx.Det"].calls == 1
    assert report.unsupported["onnx.Det"].shapes == ["(3x3:float32)"]


def test_group_query_attention_contrib_op() -> None:
    model = one_node(
        "GroupQueryAttention", {"q": [1, 4, 32], "k": [1, 4, 16], "v": [1, 4, 16]}, {}, domain="com.microsoft",
        num_heads=4, kv_num_heads=2,
    )  # fmt: skip
    report = profile_onnx(model)
    assert report.macs == 4 * 4 * 4 * (8 + 8)  # heads x L x S x (E + Ev) = 1,024
    assert not report.unsupported
