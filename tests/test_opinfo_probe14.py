"""Probe 14: the OpInfo sweep's findings (benchmarks/opinfo_sweep.py, docs/probe-14/opinfo.md)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter
from wrapped import Fn


def _both(model: nn.Module, *inputs: torch.Tensor) -> tuple[flopmeter.Report, flopmeter.Report]:
    shapes = flopmeter.profile(model, inputs, shapes_only=True)
    values = flopmeter.profile(model, inputs, shapes_only=False)
    assert shapes.options["computed"] == "shapes" and values.options["computed"] == "values"
    return shapes, values


def _numbers(report: flopmeter.Report) -> tuple[int, int, int, int]:
    return report.flops, report.macs, report.bytes_read, report.bytes_written


# -- a strided input with gaps keeps its strides on meta ---------------------------------


def test_a_strided_input_with_gaps_is_copied_by_reshape_in_both_modes():
    """``x[:, :3]`` of a 4x6 tensor is 4x3 with strides (6, 1): ``reshape(-1)`` must copy it.
    ``.to("meta")`` packed it densely, so the shapes-only run saw a free view (0 bytes) and
    the values run a copy."""
    x = torch.randn(4, 6)[:, :3]
    shapes, values = _both(Fn(lambda t: t.reshape(-1)), x)
    # clone of 4*3 = 12 float32: 12*4 = 48 bytes read, 48 written
    assert _numbers(shapes) == _numbers(values) == (0, 0, 48, 48)
    assert shapes.operators["aten.clone"].calls == 1


def test_contiguous_of_a_strided_input_copies_in_both_modes():
    x = torch.randn(5, 10)[:, ::2]  # 5x5, strides (10, 2)
    shapes, values = _both(Fn(lambda t: t.contiguous()), x)
    # 5*5 = 25 float32 copied: 25*4 = 100 bytes read, 100 written
    assert _numbers(shapes) == _numbers(values) == (0, 0, 100, 100)


def test_inner_of_strided_vectors_runs_the_same_kernels_in_both_modes():
    """torch.inner of two strided 1-D vectors runs mul + sum on the CPU (dot on dense ones):
    the shapes-only run counted dot (5 MACs) where the real run has none."""
    a, b = torch.randn(10)[::2], torch.randn(10)[::2]  # 5 elements, stride 2
    shapes, values = _both(Fn(torch.inner), a, b)
    # mul 5 + sum of 5 terms 4 = 9 FLOPs, no MACs (elementwise)
    assert _numbers(shapes) == _numbers(values)
    assert (values.flops, values.macs) == (9, 0)


def test_a_strided_parameter_keeps_its_strides_on_meta():
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 6)[:, :3])  # 4x3, strides (6, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.w.reshape(-1)

    model = Holder()
    assert model.w.stride() == (6, 1)
    shapes, values = _both(model, torch.randn(12))
    # clone 12 (48 B read, 48 written) + add 12 FLOPs (reads 48 + 48, writes 48)
    assert _numbers(shapes) == _numbers(values) == (12, 0, 48 + 96, 48 + 48)


@pytest.mark.parametrize("layout", ["dense", "permuted", "channels_last"])
def test_dense_layouts_are_unchanged(layout: str):
    x = torch.randn(2, 3, 4, 4)
    x = {"dense": x, "permuted": x.transpose(1, 3), "channels_last": x.to(memory_format=torch.channels_last)}[
        layout
    ]
    shapes, values = _both(Fn(lambda t: t.reshape(-1)), x)
    assert _numbers(shapes) == _numbers(values)


# -- ops the sweep found unsupported: now counted -----------------------------------------


def _counted(fn, *inputs) -> flopmeter.Report:  # type: ignore[no-untyped-def]
    report = flopmeter.profile(Fn(fn), inputs, shapes_only=False, batch_size=1)
    assert not report.unsupported, report.unsupported
    return report


@pytest.mark.parametrize("fn", [torch.logical_xor, torch.nextafter])
def test_binary_logical_and_step_ops_are_one_per_output_element(fn):  # type: ignore[no-untyped-def]
    a, b = torch.randn(5, 1), torch.randn(5)
    # broadcast to 5x5 = 25 outputs, 1 each
    assert _counted(fn, a, b).flops == 25


@pytest.mark.parametrize("fn", [torch.isposinf, torch.isneginf])
def test_infinity_tests_are_one_compare_per_element(fn):  # type: ignore[no-untyped-def]
    assert _counted(fn, torch.randn(4, 5)).flops == 20  # 4*5 compares


def test_mvlgamma_is_3p_per_element():
    x = torch.rand(5, 5) + 3
    # p = 3: 3 adds + 3 lgammas + 2 sums + 1 constant add = 9 = 3p per element; 25 elements: 225
    assert _counted(lambda t: torch.mvlgamma(t, 3), x).flops == 225


def test_logspace_is_one_power_per_element():
    report = _counted(lambda t: t + torch.logspace(-3, 0, 7), torch.randn(7))
    # logspace 7 powers + the add 7 = 14
    assert report.flops == 14
    assert report.operators["aten.logspace"].cost.flops == 7


def test_isin_with_few_tests_compares_every_pair():
    # tests 5 < int(10 * 20**0.145) = int(15.4) = 15: brute force, 20*5 = 100 compares
    assert _counted(torch.isin, torch.randn(20), torch.randn(5)).flops == 100


def test_isin_with_many_tests_sorts():
    # tests 20 >= int(10 * 5**0.145) = int(12.6) = 12: the sorting path
    # unique(5): 5*ceil(log2 5) + 4 = 15 + 4 = 19; unique(20): 20*5 + 19 = 119;
    # sort of 25: 25*ceil(log2 25) = 125, + 24 neighbour compares = 149; total 19 + 119 + 149 = 287
    assert _counted(torch.isin, torch.randn(5), torch.randn(20)).flops == 287
    # assume_unique: only the sort of 25 and its 24 compares, 149
    assert (
        _counted(lambda a, b: torch.isin(a, b, assume_unique=True), torch.randn(5), torch.randn(20)).flops
        == 149
    )


def test_isin_against_a_scalar_is_one_compare_per_element():
    # 12 elements against 1 test: int(10 * 12**0.145) = int(14.3) = 14 > 1, brute force 12*1 = 12
    assert _counted(lambda a: torch.isin(a, 0.5), torch.randn(3, 4)).flops == 12


def test_unsafe_masked_index_is_one_select_per_output():
    x, mask = torch.randn(5, 5), torch.rand(10, 10) > 0.5
    rows, cols = torch.randint(0, 5, (10, 1)), torch.randint(0, 5, (1, 10))
    report = _counted(lambda t: torch.ops.aten._unsafe_masked_index(t, mask, [rows, cols], 0.0), x)
    assert report.flops == 100  # 10*10 outputs, one where each


def test_unsafe_masked_index_put_accumulate_is_a_select_and_an_add_per_value():
    x, mask, values = torch.randn(5, 5), torch.rand(5, 6) > 0.5, torch.randn(5, 6)
    rows, cols = torch.randint(0, 5, (5, 1)), torch.randint(0, 5, (1, 6))
    fn = lambda t: torch.ops.aten._unsafe_masked_index_put_accumulate(t, mask, [rows, cols], values)  # noqa: E731
    assert _counted(fn, x).flops == 60  # 5*6 = 30 values, masked_fill 1 + add 1 each: 2*30


@pytest.mark.parametrize(
    ("fn", "read", "written"),
    [
        # 5x5 float32 input (100 B): the diagonal's 5 values, 20 B read and written
        (torch.diagonal_copy, 20, 20),
        # narrow 2 of 5 rows of 5: 10 values, 40 B
        (lambda t: torch.narrow_copy(t, 0, 0, 2), 40, 40),
        # permute: all 25 values, 100 B
        (lambda t: torch.permute_copy(t, (1, 0)), 100, 100),
        # view: 100 B
        (lambda t: torch.ops.aten.view_copy(t, [25]), 100, 100),
    ],
)
def test_copying_views_read_what_they_write(fn, read, written):  # type: ignore[no-untyped-def]
    report = _counted(fn, torch.randn(5, 5))
    assert (report.flops, report.bytes_read, report.bytes_written) == (0, read, written)


def test_expand_copy_reads_its_input_once():
    report = _counted(lambda t: torch.expand_copy(t, (4, 5)), torch.randn(1, 5))
    # reads the 5-value row (20 B), writes 4*5 = 20 values (80 B)
    assert (report.flops, report.bytes_read, report.bytes_written) == (0, 20, 80)


def test_chunk_cat_and_nonzero_static_are_data():
    a, b = torch.randn(2, 6), torch.randn(2, 4)
    report = _counted(lambda x, y: torch._chunk_cat([x, y], 1, 2), a, b)
    # 2*6 + 2*4 = 20 values read (80 B) and written into a 2x2x5 result (80 B)
    assert (report.flops, report.bytes_read, report.bytes_written) == (0, 80, 80)
    report = _counted(lambda x: torch.nonzero_static(x, size=4), torch.randn(3, 3))
    assert report.flops == 0 and report.operators["aten.nonzero_static"].kind == "data"


def test_empty_permuted_only_allocates():
    report = _counted(lambda x: x + torch.empty_permuted((2, 3), (1, 0)).zero_(), torch.randn(2, 3))
    assert report.operators["aten.empty_permuted"].kind == "data"
    assert report.operators["aten.empty_permuted"].cost.bytes_written == 0


def test_an_empty_leading_dimension_is_refused_unless_the_batch_is_given():
    a, b = torch.randn(0, 5), torch.randn(5, 10)
    with pytest.raises(ValueError, match=r"the batch is empty: the first input has shape \(0, 5\)"):
        flopmeter.profile(Fn(torch.mm), (a, b))
    report = flopmeter.profile(Fn(torch.mm), (a, b), batch_size=1)
    # (0x5) @ (5x10): 0*10 outputs, 0 MACs; reads 0 + 5*10*4 = 200 bytes, writes 0
    assert (report.flops, report.macs, report.bytes_read, report.bytes_written) == (0, 0, 200, 0)
    assert not report.unsupported


def test_flop_counter_counts_no_vdot():
    """docs/conventions.md: FlopCounterMode's registry has no vdot (as no dot): 0, where our
    2mac view counts it."""
    from torch.utils.flop_counter import FlopCounterMode

    a, b = torch.randn(5), torch.randn(5)
    with FlopCounterMode(display=False) as counter:
        torch.vdot(a, b)
    report = flopmeter.profile(Fn(torch.vdot), (a, b))
    assert counter.get_total_flops() == 0
    assert report.macs == 5 and report.flops_as("2mac") == 10  # 5 multiply-adds, 2*5


@pytest.mark.parametrize(
    ("fn", "inputs"),
    [
        (torch.nonzero, (torch.randn(4, 4),)),
        (torch.masked_select, (torch.randn(4, 4), torch.rand(4, 4) > 0.5)),
        (lambda t: t.max().item(), (torch.randn(3),)),
    ],
)
def test_a_call_needing_values_says_so_with_shapes_only(fn, inputs):  # type: ignore[no-untyped-def]
    """shapes_only=True on a data-dependent op: the error says the call needs values (and that
    torch's nonzero guess would count the guess), not "check that the inputs match"."""
    with pytest.raises(flopmeter.ModelError) as raised:
        flopmeter.profile(Fn(fn), inputs, shapes_only=True)
    message = str(raised.value)
    assert "this call needs them" in message and "shapes_only=False" in message
    assert "Check that the inputs" not in message
    assert flopmeter.profile(Fn(fn), inputs).options["computed"] == "values"  # the default runs it


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_embedding_bag_writes_the_same_bytes_in_both_modes(dtype):
    """The CPU's fast sum path (float32, float16 and bfloat16; not float64) returns an empty
    offset2bag: a shapes-only run gave a bfloat16 bag the indices-long one (40 bytes more)."""
    weight = torch.randn(10, 5, dtype=dtype)
    indices, offsets = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([0, 2])
    model = nn.EmbeddingBag.from_pretrained(weight, mode="sum")
    shapes, values = _both(model, indices, offsets)
    assert _numbers(shapes) == _numbers(values)
    # 2 bags x 5 (output) + bag_size and max_indices 2 int64 each (16 B each)
    # + offset2bag: 0 on the fast path, 5 int64 (40 B) for float64
    itemsize = torch.finfo(dtype).bits // 8
    expected = 2 * 5 * itemsize + 16 + 16 + (40 if dtype == torch.float64 else 0)
    assert values.operators["aten._embedding_bag_forward_only"].cost.bytes_written == expected


def test_a_move_to_the_device_it_is_on_with_another_layout_copies_in_both_modes():
    """``x.to("cpu", memory_format=torch.channels_last)`` of a CPU tensor is a real copy (the
    layout changes); the shapes-only run took it for a move that keeps a meta tensor as it is."""
    x = torch.randn(2, 3, 4, 5)
    shapes, values = _both(Fn(lambda t: t.to("cpu", memory_format=torch.channels_last)), x)
    # 2*3*4*5 = 120 float32 copied: 480 B read, 480 written
    assert _numbers(shapes) == _numbers(values) == (0, 0, 480, 480)
    # a plain move to the device it is on is no op in either mode
    shapes, values = _both(Fn(lambda t: t.to("cpu") * 2), x)
    assert _numbers(shapes) == _numbers(values) == (120, 0, 480, 480)  # the multiply only
