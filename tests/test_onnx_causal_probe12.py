"""causal="needed" on an ONNX file at a real sequence length (probe 12, P12-U7): the mask's
value was read only up to 4,096 elements (64 tokens), so a dynamo Llama counted at
--dim T=2048 --causal needed was counted in full, silently."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import profile_onnx  # noqa: E402
from flopmeter.render.onnx_notes import onnx_lines  # noqa: E402


def masked_attention(length: int) -> onnx.ModelProto:
    """Scores q @ kt of 1 head, T = ``length``, head dim 2, with transformers' causal mask built
    from an arange and a comparison (key j kept for query i when j <= i), then softmax @ v."""
    nodes = [
        helper.make_node("Range", ["zero", "length", "one"], ["ar"]),
        helper.make_node("Unsqueeze", ["ar", "axis1"], ["rows"]),
        helper.make_node("Unsqueeze", ["ar", "axis0"], ["cols"]),
        helper.make_node("LessOrEqual", ["cols", "rows"], ["keep"]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Where", ["keep", "s", "ninf"], ["sm"]),
        helper.make_node("Softmax", ["sm"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    shapes = {"q": (1, 1, length, 2), "kt": (1, 1, 2, length), "v": (1, 1, length, 2)}
    constants = {"zero": 0, "length": length, "one": 1}
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in constants.items()]
        + [numpy_helper.from_array(np.array([1], np.int64), "axis1")]
        + [numpy_helper.from_array(np.array([0], np.int64), "axis0")]
        + [numpy_helper.from_array(np.array(-np.inf, np.float32), "ninf")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_a_causal_mask_of_2048_tokens_is_read() -> None:
    model = masked_attention(2048)
    full = profile_onnx(model)
    needed = profile_onnx(model, causal="needed")
    assert full.macs == 2048 * 2048 * (2 + 2)  # 16,777,216: QK and PV, head dim 2 each
    # kept scores 2048 * 2049 / 2 = 2,098,176, each 2 + 2 MACs: 8,392,704 (was 16,777,216)
    assert needed.macs == 2048 * 2049 // 2 * (2 + 2)
    assert needed.options["onnx"]["unchecked_masks"] == []
    assert not any("could not be read" in line for line in onnx_lines(needed))


def test_a_mask_too_large_to_read_is_counted_in_full_and_said() -> None:
    model = masked_attention(4097)  # 4097^2 = 16,785,409 > the 16,777,216 elements read
    needed = profile_onnx(model, causal="needed")
    assert needed.macs == 4097 * 4097 * (2 + 2)  # 67,141,636: full
    (reason,) = needed.options["onnx"]["unchecked_masks"]
    assert reason.startswith("'keep':")
    assert any(
        "causal='needed': 1 attention mask(s) could not be read, so those attentions are counted in full"
        in line
        for line in onnx_lines(needed)
    )
    assert profile_onnx(model).options["onnx"]["unchecked_masks"] == []  # causal="full" reads no mask


def test_one_mask_shared_by_two_attentions_is_one_unchecked_mask_with_its_size() -> None:
    """Review of probe 12: a mask every layer shares was listed once per attention ("2 attention
    mask(s) could not be read" for one mask), and its reason named the mask as computed from
    itself ("computed from 'keep', a tensor of unknown or large shape")."""
    model = masked_attention(4097)
    model.graph.node.extend(  # a second attention over the first one's output, the same mask
        [
            helper.make_node("MatMul", ["y", "kt"], ["s2"]),
            helper.make_node("Where", ["keep", "s2", "ninf"], ["sm2"]),
            helper.make_node("Softmax", ["sm2"], ["p2"], axis=-1),
            helper.make_node("MatMul", ["p2", "v"], ["y2"]),
        ]
    )
    model.graph.output[0].name = "y2"
    needed = profile_onnx(model, causal="needed")
    assert needed.macs == 2 * 4097 * 4097 * (2 + 2)  # both attentions in full: 134,283,272
    # 4097^2 = 16,785,409 elements, over the 4,096^2 = 16,777,216 read
    assert needed.options["onnx"]["unchecked_masks"] == [
        "'keep': it has 16,785,409 elements, more than the 16,777,216 read"
    ]
    assert any("1 attention mask(s) could not be read" in line for line in onnx_lines(needed))
