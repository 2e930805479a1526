"""--bench of an ONNX file: latency with onnxruntime, per-module kernel times."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
import onnx  # noqa: E402

from flopmeter.cli import main  # noqa: E402
from flopmeter.onnx.bench import benchmark_onnx  # noqa: E402
from test_onnx_formulas import one_node  # noqa: E402


def gemm_file(tmp_path) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "gemm.onnx"
    onnx.save(one_node("Gemm", {"a": [4, 8]}, {"b": [8, 3], "c": [3]}, opset=17), str(path))
    return str(path)


def test_benchmark_onnx_times_runs_and_nodes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (timing,) = benchmark_onnx(gemm_file(tmp_path), warmup=1, repeat=3, per_module=True)
    assert len(timing.times) == 3 and timing.warmup == 1
    assert all(t > 0 for t in timing.times)
    assert timing.batch_size == 4
    assert timing.flops == 4 * 3 * (2 * 8 - 1) + 4 * 3  # 12 dot products of 8, + 12 bias adds = 192
    assert timing.device == "cpu (onnxruntime)"
    # the node /gemm/Gemm belongs to module "gemm"; the root holds it too
    assert set(timing.per_module) == {"", "gemm"}
    assert timing.per_module[""] == timing.per_module["gemm"] > 0


def test_cli_bench_of_an_onnx_file(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = gemm_file(tmp_path)
    assert main([path, "--bench", "--warmup", "1", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "measured on cpu (onnxruntime), 1 warm-up + 2 timed runs" in out
    assert main([path, "--bench", "--batch-sizes", "1,2"]) == 2
    assert "--batch-sizes needs a PyTorch model" in capsys.readouterr().err


def test_cli_bench_without_onnxruntime_is_a_usage_error(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    assert main([gemm_file(tmp_path), "--bench"]) == 2
    assert "timing an ONNX model needs onnxruntime: pip install 'flopmeter[onnx]'" in capsys.readouterr().err


def test_benchmark_onnx_counts_the_integer_ops(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """P5-R4: an int8 ONNX graph (MatMulInteger: MACs, 0 FLOPs) timed with --bench had no
    integer ops: 'achieved int' and the int8 part of '% of peak' were missing, as a
    PyTorch int8 model has them (timing.py)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    import flopmeter

    node = helper.make_node("MatMulInteger", ["a", "b"], ["out"], name="/mm/MatMulInteger")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, 16])],
        [helper.make_tensor_value_info("out", TensorProto.INT32, None)],
        [numpy_helper.from_array(np.ones((16, 8), np.int8), "b")],
    )
    path = tmp_path / "mmint.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    t4 = flopmeter.hardware.get("t4")
    (timing,) = benchmark_onnx(str(path), warmup=1, repeat=3, hardware=t4)
    assert (timing.flops, timing.int_ops) == (0, 2 * 4 * 16 * 8)  # 2 x 512 MACs = 1,024 int ops
    assert timing.achieved_int_ops_per_second == pytest.approx(1_024 / timing.median)
    assert timing.fraction_of_peak == pytest.approx(1_024 / t4.peak("int8") / timing.median)


def test_bench_of_a_shape_over_static_dims_is_refused_not_a_traceback(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Probe 12 (P12-U2): a file declaring a static (4, 8) input, given --input a:2x8, is
    counted (2 rows: 2 * 3 * 2 * 8 = 96 FLOPs with the bias), but onnxruntime refuses to run
    it: --bench printed onnxruntime's InvalidArgument traceback and exited 1."""
    path = gemm_file(tmp_path)
    assert main([path, "--input", "a:2x8", "-q"]) == 0
    assert "96 FLOPs" in capsys.readouterr().out  # 2 rows x 3 outputs x (8 mults + 7 adds + 1 bias)
    assert main([path, "--input", "a:2x8", "--bench", "--warmup", "1", "--repeat", "1"]) == 2
    err = capsys.readouterr().err
    assert (
        "input 'a' is declared with static dims that the shape given (2, 8) changes (dim 0: 4, given 2)"
        in err
    )
    assert "Traceback" not in err
    with pytest.raises(ValueError, match="onnxruntime runs only the declared sizes"):
        benchmark_onnx(path, inputs={"a": (2, 8)}, warmup=1, repeat=1)


def test_an_onnxruntime_failure_while_timing_is_an_onnx_model_error() -> None:
    """P12-U2: onnxruntime's own exception types from session.run (not ValueErrors) escaped the
    CLI as tracebacks; they become OnnxModelError, as a failure to load the session already did."""
    from flopmeter.onnx.bench import _run
    from flopmeter.onnx.load import OnnxModelError

    class Session:
        def run(self, outputs, feeds):  # type: ignore[no-untyped-def]
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION")

    with pytest.raises(
        OnnxModelError, match="onnxruntime could not run the model to time it: .*RUNTIME_EXCEPTION"
    ):
        _run(Session())({})
