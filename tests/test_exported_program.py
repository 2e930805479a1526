"""A torch.export ExportedProgram is profiled as the module tree it was exported from: the
same per-module numbers and class names as the eager model, on its example inputs by
default, and the program is left as it was (src/flopmeter/exported.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter.api import ModelError


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x)) + torch.relu(x[:, :4])


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.head(self.block(x)) * scale


def _exported(batch: int = 2, dynamic: bool = False) -> torch.export.ExportedProgram:
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    return torch.export.export(Net().eval(), (torch.randn(batch, 8),), dynamic_shapes=shapes)


def test_per_module_numbers_and_classes_are_the_eager_models() -> None:
    program = _exported()
    report = flopmeter.profile(program)  # the example inputs: x of 2 x 8
    # block.fc 2*8*4 = 64 MACs, head 2*4*2 = 16 MACs; 80 in all
    assert {name: m.total.macs for name, m in report.modules.items()} == {
        "": 80,
        "block": 64,
        "block.fc": 64,
        "block.act": 0,
        "head": 16,
    }
    assert {name: m.type for name, m in report.modules.items()} == {
        "": "Net",
        "block": "Block",
        "block.fc": "Linear",
        "block.act": "ReLU",
        "head": "Linear",
    }
    assert report.model_name == "Net" and report.batch_size == 2
    assert report.modules["block.fc"].extra_repr == ""  # the program keeps no in/out features text
    assert report.params == 8 * 4 + 4 + 4 * 2 + 2  # 46
    eager = flopmeter.profile(Net().eval(), torch.randn(2, 8))
    for name, stats in eager.modules.items():
        mine = report.modules[name]
        assert (mine.total.flops, mine.params, mine.calls) == (stats.total.flops, stats.params, stats.calls)


def test_other_inputs_on_a_dynamic_batch() -> None:
    report = flopmeter.profile(_exported(dynamic=True), torch.randn(4, 8))
    assert report.batch_size == 4
    assert report.modules["block.fc"].total.macs == 4 * 8 * 4  # 128
    assert report.modules["head"].total.macs == 4 * 4 * 2  # 32


def test_a_static_shape_it_was_not_exported_with_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="dynamic_shapes") as raised:
        flopmeter.profile(_exported(), torch.randn(3, 8))
    assert "in module '(root)' (Net)" in str(raised.value)  # its exported class, not UnflattenedModule
    assert isinstance(raised.value.__cause__, RuntimeError)  # torch's own error, chained


def test_the_program_is_left_as_it_was() -> None:
    program = _exported()
    state = {key: value.clone() for key, value in program.state_dict.items()}
    nodes = [node.format_node() for node in program.graph.nodes]
    flopmeter.profile(program)
    assert program.state_dict.keys() == state.keys()
    assert all(torch.equal(program.state_dict[key], value) for key, value in state.items())
    assert [node.format_node() for node in program.graph.nodes] == nodes


def test_positional_and_keyword_example_inputs_need_explicit_inputs() -> None:
    program = torch.export.export(Net().eval(), (torch.randn(2, 8),), {"scale": 2.0})
    with pytest.raises(ValueError, match="takes 1 positional and keyword scale input.*not both"):
        flopmeter.profile(program)
    with pytest.raises(ValueError, match="not both"):  # neither a tuple nor a dict can call it
        flopmeter.profile(program, (torch.randn(2, 8),))


def _cli(*args: str) -> tuple[int, str, str]:
    import io

    from flopmeter.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_reads_a_saved_program_on_its_example_inputs(tmp_path: Path) -> None:
    path = tmp_path / "net.pt2"
    torch.export.save(_exported(dynamic=True), str(path))
    code, out, _ = _cli(str(path), "--format", "json")
    assert code == 0
    data = json.loads(out)
    rows = {row["name"]: (row["type"], row["total"]["macs"]) for row in data["modules"]}
    assert rows["block.fc"] == ("Linear", 64) and rows["head"] == ("Linear", 16)  # as above, batch 2
    assert data["model"] == "Net"
    code, out, _ = _cli(str(path), "--input", "4x8", "--format", "json")
    assert code == 0 and json.loads(out)["totals"]["macs"] == 4 * 8 * 4 + 4 * 4 * 2  # 160
    static = tmp_path / "static.pt2"
    torch.export.save(_exported(), str(static))
    code, _, err = _cli(str(static), "--input", "3x8")
    assert code == 1 and "in module '(root)' (Net)" in err and "dynamic_shapes" in err


def test_cli_refuses_a_bad_file_and_set(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt2"
    bad.write_text("not a program")
    code, _, err = _cli(str(bad))
    assert code == 2 and "is not a file torch.export.load can read" in err
    assert "Traceback" not in err
    good = tmp_path / "net.pt2"
    torch.export.save(_exported(), str(good))
    code, _, err = _cli(str(good), "--set", "hidden_size=8")
    assert code == 2 and "already built" in err


class _Attention(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class _AttentionNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = _Attention()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.attn(q, k, v, mask)


def test_attention_is_counted_whole_as_in_the_eager_model() -> None:
    """The program calls aten.scaled_dot_product_attention, which dispatched alone
    decomposes into bmm, softmax and the mask's where/add (1,248 FLOPs here); it is
    counted whole by the attention formula, as eagerly (docs/formulas.md)."""
    q = torch.randn(1, 2, 4, 8)  # 2 heads, L = S = 4, E = Ev = 8
    inputs = (q, q.clone(), q.clone(), torch.ones(4, 4, dtype=torch.bool).tril())
    program = torch.export.export(_AttentionNet(), inputs)
    report = flopmeter.profile(program)
    # per head: QK^T 4*4*(2*8-1) = 240, scale 16, mask 16, softmax 4*(5*4-2) = 72,
    # AV 4*8*(2*4-1) = 224: 568; 2 heads = 1,136 FLOPs; MACs 2*(4*4*8 + 4*4*8) = 512
    assert (report.flops, report.macs) == (1136, 512)
    assert report.modules["attn"].total.flops == 1136
    assert list(report.operators) == ["aten.scaled_dot_product_attention"]
    eager = flopmeter.profile(_AttentionNet(), inputs)
    assert (eager.flops, eager.bytes_read, eager.bytes_written) == (
        report.flops,
        report.bytes_read,
        report.bytes_written,
    )
    targets = [str(node.target) for node in program.graph.nodes if node.op == "call_function"]
    assert targets == ["aten.scaled_dot_product_attention.default"]  # the program is unchanged


class _Rows(nn.Module):
    """A module that runs no op (Identity), one never called (aux), a ModuleList and an
    nn.MultiheadAttention: what the program keeps of each differs from the eager model."""

    def __init__(self) -> None:
        super().__init__()
        self.skip = nn.Identity()
        self.aux = nn.Linear(4, 4)
        self.layers = nn.ModuleList([nn.Linear(4, 4)])
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers[0](self.skip(x))
        return self.attn(x, x, x, need_weights=False)[0]


def test_what_the_program_does_not_keep_reads_as_documented() -> None:
    """docs/exported.md: no-op and uncalled modules are rows of type Module with 0 calls,
    a ModuleList an InterpreterModule; attention's pieces have its FLOPs and more bytes."""
    x = torch.randn(1, 3, 4)  # batch 1, L = 3 tokens, 4 features
    model = _Rows().eval()
    program = torch.export.export(model, (x,))
    report, eager = flopmeter.profile(program), flopmeter.profile(model, x)
    rows = {name: (m.type, m.calls, m.params) for name, m in report.modules.items()}
    assert rows["skip"] == ("Module", 0, 0) and eager.modules["skip"].calls == 1
    assert rows["aux"] == ("Module", 0, 4 * 4 + 4)  # its 20 params still counted
    assert rows["layers"][0] == "InterpreterModule" and eager.modules["layers"].type == "ModuleList"
    assert rows["attn.out_proj"][:2] == ("Module", 0)  # MHA uses its weight, never calls it
    # MACs: layers.0 3*4*4 = 48, in-projection 3*(3*4*4) = 144, attention 2 heads *
    # (QK^T 3*3*2 + AV 3*3*2) = 72 (head size 4/2 = 2), out-projection 3*4*4 = 48: 312
    assert report.macs == eager.macs == 312
    assert report.flops == eager.flops and report.params == eager.params
    assert report.bytes_read > eager.bytes_read  # the pieces read their intermediates
    assert "nn.functional.multi_head_attention_forward" in eager.operators
    assert "nn.functional.multi_head_attention_forward" not in report.operators


class _Aliased(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = self.a  # one module, two names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def test_a_module_under_two_names_is_a_row_per_name_called() -> None:
    x = torch.randn(2, 8)
    report = flopmeter.profile(torch.export.export(_Aliased(), (x,)))
    eager = flopmeter.profile(_Aliased(), x)
    # each call 2*8*8 = 128 MACs; eagerly one row 'a' of 2 calls, 256 MACs
    assert {n: (m.total.macs, m.calls) for n, m in eager.modules.items()} == {"": (256, 1), "a": (256, 2)}
    assert {n: (m.total.macs, m.calls, m.params) for n, m in report.modules.items()} == {
        "": (256, 1, 72),
        "a": (128, 1, 8 * 8 + 8),  # 72
        "b": (128, 1, 0),  # the same weights, counted once
    }


def test_the_public_signature_admits_a_program() -> None:
    """A user's type checker accepts ``profile(exported_program)`` (it said: expected Module)."""
    import inspect

    annotation = str(inspect.signature(flopmeter.profile).parameters["model"].annotation)
    assert "ExportedProgram" in annotation and "Module" in annotation


def test_train_is_refused_not_reported_while_the_exported_graph_is_counted(tmp_path: Path) -> None:
    """A program exported in eval runs its batch norm on running statistics whatever
    train= says; train=True reported training while counting that graph (164 FLOPs here,
    not the 220 of batch statistics), so it is refused, as --train is (exit 2)."""
    model = nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4)).eval()
    program = torch.export.export(model, (torch.randn(2, 8),))
    for train in (True, False):
        with pytest.raises(ValueError, match="runs in the mode it was exported in"):
            flopmeter.profile(program, train=train)
    # the Linear: 2 rows * 4 outputs * (8 mults + 7 adds + 1 bias) = 128 FLOPs
    assert flopmeter.profile(program).modules["0"].total.flops == 128
    # backward=True counts the backward of the graph the program holds: its batch norm's
    # forward is the eval one, as without backward
    stepped = flopmeter.profile(program, backward=True)
    assert stepped.forward.flops == flopmeter.profile(program).flops and stepped.backward_cost.flops > 0
    path = tmp_path / "bn.pt2"
    torch.export.save(program, str(path))
    code, _, err = _cli(str(path), "--train")
    assert code == 2 and "runs in the mode it was exported in" in err


@dataclasses.dataclass
class _Output:
    value: torch.Tensor


class _DataclassNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> _Output:
        return _Output(self.fc(x))


def test_a_file_whose_output_class_is_unknown_names_that_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch.export.load raises 'check the warnings above' and logs the real error; the
    CLI said the former with nothing above (transformers' outputs, unless imported)."""
    import torch.utils._pytree as pytree

    pytree.register_dataclass(_Output, serialized_type_name="tests._Output")
    try:
        program = torch.export.export(_DataclassNet(), (torch.randn(2, 8),))
        path = tmp_path / "dataclass.pt2"
        torch.export.save(program, str(path))
    finally:
        pytree._deregister_pytree_node(_Output)
    code, _, err = _cli(str(path))
    assert code == 2 and "tests._Output in pytree is not registered" in err
    assert "import it and profile the program in Python" in err and "warnings above" not in err
    assert "Traceback" not in capsys.readouterr().err  # torch's logged traceback is not shown


def test_cli_inputs_must_fit_the_programs_call(tmp_path: Path) -> None:
    """A program exported with keyword x takes exactly that: a positional --input was a
    model failure (exit 1, torch's pytree message); it is a usage error naming the call."""
    path = tmp_path / "keyword.pt2"
    torch.export.save(torch.export.export(Net().eval(), (), {"x": torch.randn(2, 8)}), str(path))
    code, _, err = _cli(str(path), "--input", "2x8")
    assert code == 2
    assert "takes keyword x input(s), as it was exported, not 1 positional" in err
    code, out, _ = _cli(str(path), "--input", "x:2x8", "--format", "json")
    # block.fc 2*8*4 = 64 MACs, head 2*4*2 = 16 MACs: 80
    assert code == 0 and json.loads(out)["totals"]["macs"] == 80


def test_python_inputs_must_fit_the_programs_call() -> None:
    """P10: ``profile(program, wrong_inputs)`` raised torch's tree-spec error as a ModelError;
    now a ValueError naming the call, as the CLI's exit 2 does."""
    program = _exported()  # takes x: one positional input
    with pytest.raises(
        ValueError, match=r"takes 1 positional input\(s\), as it was exported, not 2 positional"
    ):
        flopmeter.profile(program, (torch.randn(2, 8), torch.randn(2, 8)))
    with pytest.raises(ValueError, match="takes 1 positional input.*not keyword x"):
        flopmeter.profile(program, {"x": torch.randn(2, 8)})
    with pytest.raises(ValueError, match="takes 1 positional input.*not keyword x"):
        flopmeter.profile(program, input_shape="x:2x8")
    assert flopmeter.profile(program, input_shape="2x8").macs == 80  # 64 + 16, as above


class _Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tensor([1.0, 2.0, 3.0, 4.0])


def test_a_tensor_constant_made_in_forward_is_a_counted_copy() -> None:
    """P10 (Swin's sweep row): the program copies the constant ``torch.tensor(...)`` makes
    (``aten.lift_fresh_copy``), which was reported as an op flopmeter cannot count."""
    report = flopmeter.profile(torch.export.export(_Constant(), (torch.randn(2, 4),)))
    assert report.unsupported == {}
    copy = report.operators["aten.lift_fresh_copy"]
    # 4 float32 values read and written: 16 bytes each way, no FLOPs
    assert (copy.calls, copy.cost.flops, copy.cost.bytes_read, copy.cost.bytes_written) == (1, 0, 16, 16)
    assert report.flops == 2 * 4  # the multiply, one FLOP per output


class _SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


@pytest.mark.parametrize(
    ("batch", "out_projection", "clones"), [(1, ["aten.addmm"], 1), (3, ["aten.mm", "aten.add"], 2)]
)
def test_multihead_attention_pieces_by_batch(batch: int, out_projection: list[str], clones: int) -> None:
    """docs/exported.md: the program runs nn.MultiheadAttention as its pieces, the same MACs and
    FLOPs as eagerly, more bytes; past batch 1 its out-projection is an mm and an add and it
    clones once more. Per sequence of 5 tokens, d = 4, 2 heads: in-projection 5*4*12 = 240,
    scores and weighted sum 2 * 5*5 * (2 + 2) = 200, out-projection 5*4*4 = 80: 520 MACs."""
    model = _SelfAttention().eval()
    x = torch.randn(batch, 5, 4)
    report = flopmeter.profile(torch.export.export(model, (x,)))
    eager = flopmeter.profile(model, x)
    assert report.macs == eager.macs == 520 * batch
    assert report.flops == eager.flops
    assert report.bytes_read > eager.bytes_read  # the pieces read their intermediates
    assert all(op in report.operators for op in out_projection)
    assert report.operators["aten.clone"].calls == clones
    if batch == 1:
        assert report.operators["aten.addmm"].calls == 2 and "aten.mm" not in report.operators
