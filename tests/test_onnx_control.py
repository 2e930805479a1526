"""Loop, Scan and If: their bodies counted by hand on small graphs built with onnx.helper."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.cli import main  # noqa: E402
from flopmeter.onnx import OnnxModelError, profile_onnx  # noqa: E402

F, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def info(name: str, dtype: int, shape: list | None) -> onnx.ValueInfoProto:  # type: ignore[type-arg]
    return helper.make_tensor_value_info(name, dtype, shape)


def ones(name: str, shape: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def model_of(nodes: list, inputs: list, outputs: list, initializers: list) -> onnx.ModelProto:  # type: ignore[type-arg]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def matmul_relu_body(condition: list | None = None) -> onnx.GraphProto:  # type: ignore[type-arg]
    """(i, c, v (2, 8)) -> (c, relu(v @ W), v @ W): one MatMul and one Relu per iteration."""
    nodes = [
        helper.make_node("MatMul", ["v", "W"], ["y"], name="mm"),
        helper.make_node("Relu", ["y"], ["z"], name="relu"),
        *(condition or [helper.make_node("Identity", ["c"], ["c_out"], name="keep")]),
    ]
    return helper.make_graph(
        nodes,
        "body",
        [info("i", I64, []), info("c", BOOL, []), info("v", F, None)],
        [info("c_out", BOOL, []), info("z", F, None), info("y", F, None)],
    )


def loop_model(
    limit: str = "M", body: onnx.GraphProto | None = None, name: str = "/block/Loop"
) -> onnx.ModelProto:
    loop = helper.make_node(
        "Loop", [limit, "cond", "x"], ["v_final", "ys"], name=name, body=body or matmul_relu_body()
    )
    tail = helper.make_node("Add", ["v_final", "x"], ["out"], name="/tail/Add")
    initializers = [
        ones("W", [8, 8]),
        numpy_helper.from_array(np.array(5, np.int64), "M"),
        numpy_helper.from_array(np.array(True), "cond"),
    ]
    return model_of(
        [loop, tail], [info("x", F, [2, 8])], [info("out", F, None), info("ys", F, None)], initializers
    )


# Per iteration: MatMul (2, 8) @ (8, 8): 2*8*8 = 128 MACs, (2*8-1)*2*8 = 240 FLOPs;
# Relu: 2*8 = 16 FLOPs. The Add after the loop: 16 FLOPs.
ITERATION_MACS, ITERATION_FLOPS, TAIL_FLOPS = 128, 240 + 16, 16


def test_loop_with_a_constant_trip_count() -> None:
    report = profile_onnx(loop_model())
    assert report.macs == 5 * ITERATION_MACS  # 640
    assert report.flops == 5 * ITERATION_FLOPS + TAIL_FLOPS  # 5*256 + 16 = 1,296
    assert report.params == 64  # W (8, 8), read only inside the body
    assert report.modules["block"].params == 64  # owned by the Loop's module
    assert report.modules["block"].total.macs == 640  # the body is charged to the Loop's module
    assert report.modules["block"].total.flops == 1280
    (fact,) = report.options["onnx"]["control_flow"]
    assert fact == {
        "node": "/block/Loop", "op": "Loop", "module": "block", "trips": 5, "source": "constant",
        "upper_bound": False, "branch": "",
    }  # fmt: skip
    assert report.operators["onnx.MatMul"].cost.macs == 640
    assert not report.unsupported


def test_loop_trip_count_from_a_bound_dim() -> None:
    """M = Shape(seq)[0] with seq (T, 1): folds once the user binds T."""
    model = loop_model(limit="M2")
    model.graph.input.append(info("seq", F, ["T", 1]))
    model.graph.node.insert(0, helper.make_node("Shape", ["seq"], ["seq_shape"], name="shape"))
    model.graph.node.insert(1, helper.make_node("Gather", ["seq_shape", "zero"], ["M2"], name="gather"))
    model.graph.initializer.append(numpy_helper.from_array(np.array(0, np.int64), "zero"))
    report = profile_onnx(model, dims={"T": 7})
    assert report.macs == 7 * ITERATION_MACS  # 896
    assert report.options["onnx"]["control_flow"][0]["trips"] == 7
    with pytest.raises(OnnxModelError, match=r"Loop '/block/Loop' needs a trip count.*--dim /block/Loop=N"):
        profile_onnx(model)  # T unbound: M unknown


def test_while_loop_needs_the_users_trip_count() -> None:
    model = loop_model(limit="")
    with pytest.raises(
        OnnxModelError, match=r"needs a trip count: it has no trip limit.*dims=\{'/block/Loop': N\}"
    ):
        profile_onnx(model)
    report = profile_onnx(model, dims={"/block/Loop": 3})
    assert report.macs == 3 * ITERATION_MACS  # 384
    assert report.flops == 3 * ITERATION_FLOPS + TAIL_FLOPS  # 768 + 16 = 784
    assert report.options["onnx"]["control_flow"][0]["source"] == "user"


def test_loop_whose_body_may_end_it_early_is_an_upper_bound() -> None:
    """cond_out = i < 2 (not a constant): M = 5 is only an upper bound, and says so."""
    condition = [
        helper.make_node("Less", ["i", "two"], ["c_out"], name="less"),
        helper.make_node(
            "Constant", [], ["two"], name="k", value=numpy_helper.from_array(np.array(2, np.int64))
        ),
    ]
    condition.reverse()
    report = profile_onnx(loop_model(body=matmul_relu_body(condition)))
    # 5 iterations counted; the integer Less costs no FLOPs
    assert report.macs == 5 * ITERATION_MACS
    fact = report.options["onnx"]["control_flow"][0]
    assert fact["upper_bound"] is True
    assert "upper bound" in str(report)


def test_loop_with_growing_carried_shapes_is_typed_per_iteration() -> None:
    """v (1, k) -> concat(relu(v), one) (1, k+1): the Relu costs k FLOPs at iteration k."""
    body = helper.make_graph(
        [
            helper.make_node("Relu", ["v"], ["r"], name="relu"),
            helper.make_node("Concat", ["r", "one"], ["grown"], name="cat", axis=1),
            helper.make_node("Identity", ["c"], ["c_out"], name="keep"),
        ],
        "body",
        [info("i", I64, []), info("c", BOOL, []), info("v", F, None)],
        [info("c_out", BOOL, []), info("grown", F, None)],
    )
    loop = helper.make_node("Loop", ["M", "cond", "x"], ["v_final"], name="grow", body=body)
    initializers = [
        numpy_helper.from_array(np.array(3, np.int64), "M"),
        numpy_helper.from_array(np.array(True), "cond"),
        numpy_helper.from_array(np.zeros((1, 1), np.float32), "one"),
    ]
    model = model_of([loop], [info("x", F, [1, 2])], [info("v_final", F, None)], initializers)
    report = profile_onnx(model)
    assert report.flops == 2 + 3 + 4  # Relu over (1, 2), (1, 3), (1, 4) = 9


def scan_model() -> onnx.ModelProto:
    body = helper.make_graph(
        [
            helper.make_node("Add", ["h", "x_t"], ["h_sum"], name="add"),
            helper.make_node("MatMul", ["h_sum", "W"], ["h_new"], name="mm"),
        ],
        "body",
        [info("h", F, None), info("x_t", F, None)],
        [info("h_new", F, None), info("y_t", F, None)],
    )
    body.node.append(helper.make_node("Identity", ["h_new"], ["y_t"], name="copy"))
    scan = helper.make_node(
        "Scan", ["h0", "xs"], ["h_final", "ys"], name="/rnn/Scan", body=body, num_scan_inputs=1
    )
    tail = helper.make_node("ReduceSum", ["ys"], ["total"], name="/sum/ReduceSum", keepdims=0)
    return model_of(
        [scan, tail],
        [info("h0", F, [1, 4]), info("xs", F, ["T", 1, 4])],
        [info("h_final", F, None), info("total", F, None)],
        [ones("W", [4, 4])],
    )


def test_scan_counts_one_iteration_per_slice() -> None:
    report = profile_onnx(scan_model(), dims={"T": 6})
    # per step: Add (1, 4) = 4 FLOPs; MatMul (1, 4) @ (4, 4) = 16 MACs, (2*4-1)*4 = 28 FLOPs
    assert report.macs == 6 * 16  # 96
    # + ReduceSum over ys (6, 1, 4): 24 - 1 = 23 adds
    assert report.flops == 6 * (4 + 28) + 23  # 215
    assert report.modules["rnn"].total.macs == 96
    assert report.options["onnx"]["control_flow"][0]["trips"] == 6
    assert report.options["onnx"]["control_flow"][0]["source"] == "scan axis"
    with pytest.raises(OnnxModelError, match=r"dim 'T' is unbound"):
        profile_onnx(scan_model())


def if_model(condition_known: bool) -> onnx.ModelProto:
    then_branch = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["a"], name="mm")], "then", [], [info("a", F, None)]
    )
    else_branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["b"], name="relu")], "else", [], [info("b", F, None)]
    )
    branch = helper.make_node(
        "If", ["flag"], ["y"], name="/head/If", then_branch=then_branch, else_branch=else_branch
    )
    inputs = [info("x", F, [2, 8])]
    initializers = [ones("W", [8, 8])]
    if condition_known:
        initializers.append(numpy_helper.from_array(np.array(True), "flag"))
    else:
        inputs.append(info("flag", BOOL, []))
    return model_of([branch], inputs, [info("y", F, None)], initializers)


def test_if_with_a_constant_condition_counts_the_branch_taken() -> None:
    report = profile_onnx(if_model(condition_known=True))
    assert report.macs == 2 * 8 * 8  # then: MatMul (2, 8) @ (8, 8) = 128
    assert report.flops == (2 * 8 - 1) * 16  # 240; the else branch's Relu is not counted
    fact = report.options["onnx"]["control_flow"][0]
    assert (fact["branch"], fact["upper_bound"]) == ("then", False)


def test_if_with_an_unknown_condition_counts_both_and_says_so() -> None:
    report = profile_onnx(if_model(condition_known=False))
    assert report.macs == 128
    assert report.flops == 240 + 16  # both branches: MatMul 240 + Relu 16
    assert report.modules["head"].total.flops == 256
    fact = report.options["onnx"]["control_flow"][0]
    assert (fact["branch"], fact["upper_bound"]) == ("both", True)
    assert "BOTH branches counted" in str(report)


def test_if_nested_in_a_loop_is_charged_to_the_loops_module() -> None:
    """Each of 5 iterations runs an If with an unknown condition: both branches, 5 times."""
    inner = if_model(condition_known=False).graph.node[0]
    body = helper.make_graph(
        [inner, helper.make_node("Identity", ["c"], ["c_out"], name="keep")],
        "body",
        [info("i", I64, []), info("c", BOOL, []), info("v", F, None)],
        [info("c_out", BOOL, []), info("v", F, None)],
    )
    model = loop_model(body=body)
    model.graph.node[0].output[:] = ["v_final"]
    model.graph.output.pop()  # no ys
    model.graph.input.append(info("flag", BOOL, []))
    report = profile_onnx(model)
    assert report.macs == 5 * 128  # 640
    assert report.flops == 5 * 256 + TAIL_FLOPS  # 1,296
    assert report.modules["block"].total.flops == 1280
    assert [f["op"] for f in report.options["onnx"]["control_flow"]] == ["Loop", "If"]


def test_cli_binds_a_loop_trip_count_with_dim(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "loop.onnx"
    onnx.save(loop_model(limit="", name="loop"), str(path))
    assert main([str(path)]) == 2
    assert "--dim loop=N" in capsys.readouterr().err
    assert main([str(path), "--dim", "loop=4", "--format", "json"]) == 0
    assert '"macs": 512' in capsys.readouterr().out  # 4 x 128


class ScriptedLoop(torch.nn.Module):
    """A TorchScript for-loop and a data-dependent if: the legacy exporter writes Loop and If."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        for _ in range(n):
            x = torch.relu(self.lin(x))
        if bool(x.sum() > 0):
            x = x * 2
        else:
            x = x + 1
        return x


def test_a_torchscript_loop_exported_by_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "scripted.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.jit.script(ScriptedLoop())
        torch.onnx.export(model, (torch.randn(2, 8), 3), str(path), dynamo=False, input_names=["x", "n"])
    with pytest.raises(
        OnnxModelError, match=r"Loop '/Loop' needs a trip count: its M input is not a constant"
    ):
        profile_onnx(str(path))  # M is the model input n
    report = profile_onnx(str(path), dims={"/Loop": 3})
    assert report.macs == 3 * 2 * 8 * 8  # Linear(8, 8) on (2, 8), 3 times: 384
    # per iteration: (2*8-1)*16 + 16 bias adds + 16 ReLU = 272; then sum(x) 15 adds and
    # 1 compare; both branches of the if: x * 2 (16) and x + 1 (16)
    assert report.flops == 3 * 272 + 15 + 1 + 16 + 16  # 864
    assert report.params == 8 * 8 + 8  # 72
    flows = report.options["onnx"]["control_flow"]
    assert [(f["op"], f["source"], f["branch"]) for f in flows] == [
        ("Loop", "user", ""),
        ("If", "condition unknown", "both"),
    ]
