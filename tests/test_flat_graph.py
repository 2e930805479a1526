"""A flat exported graph (``torch.export.export(m, args).module()``, a PT2E graph, a
``torch.fx.symbolic_trace``) is profiled one row per layer it records in its nodes'
``nn_module_stack``: the eager model's rows, classes, calls and numbers, and the graph
module is left as it was (src/flopmeter/flat_graph.py, docs/exported.md)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.api import ModelError


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x)) * 2


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc(self.block(x).mean((2, 3))))  # fc called twice


# x: 1 x 2 x 5 x 5. conv 2->3, 3x3: 3*3*3 = 27 outputs x 2*3*3 = 18 MACs = 486 MACs,
# 27 x (2*18) = 972 FLOPs (18 mul, 17 add, the bias); ReLU 27, "* 2" 27: block 1,026.
# mean over 3x3: 3 x (8 add + 1 div) = 27 at the root. fc 3x3, twice: 2 x 9 = 18 MACs,
# 2 x (9 mul + 6 add + 3 bias) = 36 FLOPs. Params: conv 2*3*9 + 3 = 57, fc 9 + 3 = 12.
EXPECTED = {  # name: (type, MACs, FLOPs, params, calls)
    "": ("Toy", 504, 1_089, 69, 1),
    "block": ("Block", 486, 1_026, 57, 1),
    "block.conv": ("Conv2d", 486, 972, 57, 1),
    "block.act": ("ReLU", 0, 27, 0, 1),
    "fc": ("Linear", 18, 36, 12, 2),
}


def _rows(report: flopmeter.Report) -> dict[str, tuple[str, int, int, int, int]]:
    return {
        name: (stats.type, stats.total.macs, stats.total.flops, stats.params, stats.calls)
        for name, stats in report.modules.items()
    }


def _flat(dynamic: bool = False) -> torch.fx.GraphModule:
    torch.manual_seed(0)
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    example = torch.randn(2 if dynamic else 1, 2, 5, 5)  # a batch of 1 would be specialized
    return torch.export.export(Toy().eval(), (example,), dynamic_shapes=shapes).module()


def test_a_flat_exported_graph_has_the_eager_models_rows() -> None:
    graph = _flat()
    report = flopmeter.profile(graph, torch.randn(1, 2, 5, 5))
    rows = _rows(report)
    assert rows == EXPECTED  # not torch.export's input check, _guards_fn: no layer of the model
    assert list(rows) == list(EXPECTED)  # in the eager model's order
    assert report.model_name == "Toy" and report.macs == 504
    assert _rows(flopmeter.profile(Toy(), torch.randn(1, 2, 5, 5))) == EXPECTED  # the eager model


def test_a_graph_changed_without_recompile_is_counted_as_it_runs() -> None:
    """Its code, which calling it runs, is not its graph (``convert_fx`` leaves its input so):
    profiled as it is, not regrouped from the graph."""
    graph = _flat()
    for node in graph.graph.nodes:
        if node.target is torch.ops.aten.relu.default:
            node.target = torch.ops.aten.sigmoid.default  # no graph.recompile()
    report = flopmeter.profile(graph, torch.randn(1, 2, 5, 5))
    assert "aten.relu" in report.operators and "aten.sigmoid" not in report.operators
    assert report.modules[""].type == type(graph).__name__ and report.modules["block.conv"].macs == 0  # flat
    assert report.macs == 504


def test_a_compiled_flat_graph_is_counted_as_the_graph() -> None:
    compiled = torch.compile(_flat())  # counted as the module it compiles, never compiled
    assert _rows(flopmeter.profile(compiled, torch.randn(1, 2, 5, 5))) == EXPECTED


def test_a_dynamic_batch_counts_the_batch_given() -> None:
    report = flopmeter.profile(_flat(dynamic=True), torch.randn(4, 2, 5, 5))
    assert report.modules["block.conv"].total.macs == 4 * 486  # 1,944
    assert report.modules["fc"].total.macs == 4 * 18  # 72


def test_backward_is_charged_to_the_layers_as_eagerly() -> None:
    x = torch.randn(1, 2, 5, 5)
    flat = _rows(flopmeter.profile(_flat(), x, backward=True))
    eager = _rows(flopmeter.profile(Toy(), x, backward=True))
    assert flat == eager
    # fc's backward: each call's input grad 9 MACs and weight grad 9 MACs (the first
    # call's input grad too, since the mean's input needs one): 2 x 9 forward + 2 x 18 = 54
    assert flat["fc"][1] == 54


def test_a_symbolic_trace_has_the_eager_models_rows() -> None:
    """symbolic_trace calls leaf modules by ``call_module`` and records the stack of the
    ops it inlines (``* 2`` in ``block``): the same rows as the eager model."""
    graph = torch.fx.symbolic_trace(Toy())
    assert _rows(flopmeter.profile(graph, torch.randn(1, 2, 5, 5))) == EXPECTED


def test_a_graph_recording_no_module_is_profiled_as_it_is() -> None:
    graph = torch.fx.symbolic_trace(Toy())
    for node in graph.graph.nodes:
        node.meta.pop("nn_module_stack", None)
    rows = _rows(flopmeter.profile(graph, torch.randn(1, 2, 5, 5)))
    # its call_module nodes are rows; "* 2" and the mean (27 + 27 FLOPs) are the root's own
    assert rows["block.conv"] == ("Conv2d", 486, 972, 57, 1)
    assert rows["fc"] == ("Linear", 18, 36, 12, 2)
    assert rows["block"][1:] == (486, 999, 57, 0)  # 972 + 27 (ReLU); never called itself
    assert rows[""][1:3] == (504, 1_089)


def _state(graph: torch.fx.GraphModule) -> tuple[object, ...]:
    return (
        graph.code,
        sorted(graph.__dict__),
        [
            (name, type(module).__name__, sorted(module.__dict__), module.training)
            for name, module in graph.named_modules()
        ],
        {key: value.clone() for key, value in graph.state_dict().items()},
    )


def test_the_graph_module_is_left_as_it_was_even_when_it_raised() -> None:
    graph = _flat()
    before = _state(graph)
    flopmeter.profile(graph, torch.randn(1, 2, 5, 5), backward=True)
    with pytest.raises(ModelError, match=r"in module '\(root\)' \(Toy\)"):  # a shape it was not exported with
        flopmeter.profile(graph, torch.randn(3, 2, 5, 5))  # (its _guards_fn raises)
    after = _state(graph)
    assert after[:3] == before[:3]
    assert after[3].keys() == before[3].keys()
    assert all(torch.equal(after[3][key], value) for key, value in before[3].items())
    assert all(p.grad is None for p in graph.parameters())


def test_train_is_refused_and_wrong_inputs_name_the_call() -> None:
    graph = _flat()
    with pytest.raises(ValueError, match="runs in the mode it was exported in"):
        flopmeter.profile(graph, torch.randn(1, 2, 5, 5), train=True)
    with pytest.raises(ValueError, match=r"called as forward\(x\).*too many positional"):
        flopmeter.profile(graph, (torch.randn(1, 2, 5, 5), torch.randn(1, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"called as forward\(x\).*missing a required argument: 'x'"):
        flopmeter.profile(graph, {"y": torch.randn(1, 2, 5, 5)})
    with pytest.raises(ValueError, match=r"called as forward\(x\).*unexpected keyword argument 'y'"):
        flopmeter.profile(graph, input_shape=["1x2x5x5", "y:1x2x5x5"])
    assert flopmeter.profile(graph, input_shape="1x2x5x5").macs == 504  # as above


class _Kept(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.idn = nn.Identity()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        x = self.idn(x)
        return self.mha(x, x, x, need_weights=False)[0]


def test_attention_is_counted_whole_and_what_the_graph_does_not_keep() -> None:
    torch.manual_seed(0)
    model, x = _Kept().eval(), torch.randn(1, 4, 8)
    rows = _rows(flopmeter.profile(torch.export.export(model, (x,)).module(), x))
    eager = _rows(flopmeter.profile(model, x))
    # 4 tokens: each Linear 4*8*8 = 256 MACs; mha in-projection 4*8*24 = 768, out 256,
    # scores and weighted sum 2 heads x 4*4*4 x 2 = 256: 1,280
    assert rows["mha"][1] == 1_280 and rows["layers.0"][1] == 256 and rows[""][1] == 1_792
    # SDPA counted whole by its formula, as eagerly (its decomposition: 32 FLOPs more)
    assert rows["mha"] == eager["mha"] and rows[""] == eager[""]
    assert rows["layers"] == ("Module", 512, 1_024, 144, 0)  # a ModuleList: no node names it
    assert rows["mha.out_proj"] == ("Module", 0, 0, 72, 0)  # its weights used by its parent: 8*8 + 8
    assert "idn" not in rows and eager["idn"] == ("Identity", 0, 0, 0, 1)  # no op, no weight: no trace


def test_a_flat_graph_inside_another_model_is_one_module() -> None:
    """docs/exported.md: not regrouped when held inside another model; all its ops are its row."""
    outer = nn.Sequential(_flat(), nn.Linear(3, 2))
    rows = _rows(flopmeter.profile(outer, torch.randn(1, 2, 5, 5)))
    assert rows["0"][1:] == (504, 1_089, 69, 1)  # the whole Toy, as above
    assert rows["0.block.conv"][1:3] == (0, 0)  # its layers' records are not read
    assert rows["1"][1:] == (6, 12, 8, 1)  # 3 x 2 = 6 MACs, 2 x 6 = 12 FLOPs, params 3*2 + 2
    assert rows[""][1:3] == (510, 1_101)


class _TwoConvBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 2, 1)
        self.c2 = nn.Conv2d(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(torch.relu(self.c1(x)) * 2)


class _Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = _TwoConvBlock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def test_quantize_nodes_inside_a_module_leave_it_one_call() -> None:
    """convert_pt2e puts c2's input quantize / dequantize (no module record) between block's
    ``* 2`` and c2: block was counted as called twice (the eager model calls it once)."""
    pt2e = pytest.importorskip("torchao.quantization.pt2e.quantize_pt2e")
    x86 = pytest.importorskip("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer")
    torch.manual_seed(0)
    x = torch.randn(1, 2, 3, 3)
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = pt2e.prepare_pt2e(torch.export.export(_Wrapper().eval(), (x,)).module(), quantizer)
    prepared(x)
    converted = pt2e.convert_pt2e(prepared)
    rows = _rows(flopmeter.profile(converted, x))
    # each 1x1 conv 2->2 on 3x3: 9 positions x 2 outputs x 2 inputs = 36 MACs, 9 x 2 x 4 = 72
    # FLOPs (2 mul, 1 add, the bias); relu 18, "* 2" 18: block 72 MACs, 180 FLOPs
    assert rows["block"] == ("_TwoConvBlock", 72, 180, 12, 1)  # params 2 x (2*2 + 2) = 12
    assert rows["block.c2"] == ("Conv2d", 36, 72, 6, 1)
    assert rows == _rows(flopmeter.profile(_Wrapper(), x))  # the eager model's rows
