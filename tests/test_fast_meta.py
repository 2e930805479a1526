"""Results the recorder builds itself on meta equal what the ops' own meta kernels give."""

import pytest
import torch

from flopmeter.tracing.fast_meta import fast_meta as _fast_meta
from flopmeter.tracing.recorder import _op_facts

aten = torch.ops.aten


def meta(*shape, dtype=torch.float32, channels_last=False):
    tensor = torch.empty(shape, dtype=dtype, device="meta")
    return tensor.contiguous(memory_format=torch.channels_last) if channels_last else tensor


def same_result(func, *args):
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    ours = _fast_meta(_op_facts(func), args, tensors)
    theirs = func(*args)
    if ours is None:
        return None
    ours, theirs = (
        (ours,) if isinstance(ours, torch.Tensor) else ours,
        ((theirs,) if isinstance(theirs, torch.Tensor) else theirs),
    )
    return all(
        (a.shape, a.dtype, a.stride()) == (b.shape, b.dtype, b.stride())
        for a, b in zip(ours, theirs, strict=True)
    )


@pytest.mark.parametrize(
    "x, w, stride, padding, dilation, groups",
    [
        (meta(2, 3, 9, 9), meta(8, 3, 3, 3), [1, 1], [0, 0], [1, 1], 1),
        (meta(2, 4, 10, 7), meta(8, 2, 3, 2), [2, 1], [1, 0], [1, 2], 2),  # strided, dilated, grouped
        (meta(2, 3, 17), meta(4, 3, 5), [3], [2], [1], 1),  # 1-d
        (meta(1, 2, 5, 6, 7), meta(4, 2, 3, 3, 3), [1, 2, 1], [1, 1, 0], [1, 1, 2], 1),  # 3-d
        (
            meta(2, 8, 6, 6, dtype=torch.float16),
            meta(8, 1, 3, 3, dtype=torch.float16),
            [1, 1],
            [1, 1],
            [1, 1],
            8,
        ),
    ],
)
def test_convolution(x, w, stride, padding, dilation, groups):
    bias = meta(w.shape[0], dtype=x.dtype)
    for b in (bias, None):
        assert same_result(aten.convolution.default, x, w, b, stride, padding, dilation, False, [0], groups)


def test_convolution_leaves_channels_last_and_bad_shapes_to_the_kernel():
    w = meta(8, 3, 3, 3)
    x = meta(2, 3, 9, 9, channels_last=True)
    assert same_result(aten.convolution.default, x, w, None, [1, 1], [0, 0], [1, 1], False, [0], 1) is None
    for bad in (meta(2, 4, 9, 9), meta(3, 9, 9), meta(2, 3, 2, 2)):  # channels, unbatched, too small
        args = (bad, w, None, [1, 1], [0, 0], [1, 1], False, [0], 1)
        assert _fast_meta(_op_facts(aten.convolution.default), args, [bad, w]) is None
        with pytest.raises(RuntimeError):
            aten.convolution.default(*args)


@pytest.mark.parametrize("dims, keepdim", [([2, 3], True), ([-1], False), ([0, 2], False), ([1], True)])
def test_mean(dims, keepdim):
    assert same_result(aten.mean.dim, meta(2, 3, 4, 5), dims, keepdim)


@pytest.mark.parametrize("channels_last", [False, True])
def test_unary_and_batch_norm_keep_the_layout(channels_last):
    x = meta(2, 3, 4, 5, channels_last=channels_last)
    assert same_result(aten.hardswish.default, x)
    stats = meta(3)
    norm = aten._native_batch_norm_legit_no_training.default
    args = (x, stats, stats, stats, stats, 0.1, 1e-5)
    ours, theirs = _fast_meta(_op_facts(norm), args, [x, stats, stats, stats, stats])[0], norm(*args)[0]
    assert (ours.shape, ours.stride()) == (theirs.shape, theirs.stride())


def test_broadcast_shape_agrees_with_torch_on_every_pair() -> None:
    """The recorder's own broadcast (torch.broadcast_shapes is Python reference code, ~30 us
    a call) gives torch's shape for every pair of these shapes, and None where torch raises."""
    import itertools

    from flopmeter.tracing.fast_meta import _broadcast_shape

    shapes = [
        (),
        (1,),
        (3,),
        (2, 1),
        (2, 3),
        (1, 3),
        (4, 1, 3),
        (4, 2, 3),
        (0,),
        (2, 0),
        (1, 0),
        (5, 1, 1, 1),
    ]
    for pair in itertools.product(shapes, repeat=2):
        try:
            expected = tuple(torch.broadcast_shapes(*pair))
        except RuntimeError:
            expected = None
        got = _broadcast_shape([torch.empty(shape, device="meta") for shape in pair])
        assert (None if got is None else tuple(got)) == expected, pair


def test_empty_like_keeps_strides_of_permuted_tensors_as_the_cpu_kernel_does() -> None:
    """For views of every layout (sliced, permuted, expanded), the meta result the recorder
    builds has the strides CPU ``empty_like`` gives the real tensor."""
    import random

    from flopmeter.tracing.fast_meta import _empty_like

    rng = random.Random(0)
    checked = 0
    for _ in range(400):
        shape = [rng.choice([1, 2, 3, 4]) for _ in range(rng.randint(1, 4))]
        base = torch.empty([size * rng.choice([1, 2]) for size in shape])
        view = base[tuple(slice(0, size) for size in shape)]
        order = list(range(len(shape)))
        rng.shuffle(order)
        view = view.permute(order)
        if rng.random() < 0.3:
            view = view.expand(*[rng.choice([1, 3]) if size == 1 else size for size in view.shape])
        twin = torch.empty_strided(view.shape, view.stride(), device="meta")
        assert _empty_like(twin).stride() == torch.empty_like(view).stride(), (view.shape, view.stride())
        checked += 1
    assert checked == 400


@pytest.mark.parametrize(
    "parts, dim",
    [
        ([(2, 3, 4, 4), (2, 5, 4, 4)], 1),  # channels: shufflenet's concat
        ([(2, 3), (4, 3), (1, 3)], 0),
        ([(2, 3), (2, 1)], -1),
        ([(1, 197, 768)], 1),
    ],
)
def test_cat(parts, dim):
    tensors = [meta(*shape) for shape in parts]
    ours = _fast_meta(_op_facts(aten.cat.default), (tensors, dim), tensors)
    theirs = aten.cat.default(tensors, dim)
    assert (ours.shape, ours.dtype, ours.stride()) == (theirs.shape, theirs.dtype, theirs.stride())


def test_cat_leaves_mixed_dtypes_layouts_and_bad_shapes_to_the_kernel():
    op = _op_facts(aten.cat.default)
    cases = [
        [meta(2, 3), meta(2, 3, dtype=torch.float16)],  # promotion: the kernel's job
        [meta(2, 3, 4, 4, channels_last=True), meta(2, 3, 4, 4)],
        [meta(2, 3).t(), meta(3, 2)],  # not contiguous
        [meta(2, 3), meta(3, 3)],  # disagree off dim 1
    ]
    for tensors in cases:
        assert _fast_meta(op, (tensors, 1), tensors) is None


@pytest.mark.parametrize(
    "shape, kernel, stride, padding, dilation, ceil_mode",
    [
        ((1, 24, 112, 112), [3, 3], [2, 2], [1, 1], [1, 1], False),  # shufflenet / resnet stem
        ((2, 3, 9, 9), [2], [], [0], [1], False),  # stride defaults to the kernel
        ((2, 3, 10, 7), [3, 2], [2, 3], [1, 0], [2, 1], True),
        ((3, 11, 11), [3, 3], [2, 2], [0, 0], [1, 1], True),  # unbatched; ceil drops a window
        ((1, 2, 5, 5), [3, 3], [2, 2], [1, 1], [1, 1], True),
    ],
)
def test_max_pool2d(shape, kernel, stride, padding, dilation, ceil_mode):
    func = aten.max_pool2d_with_indices.default
    x = meta(*shape)
    args = (x, kernel, stride, padding, dilation, ceil_mode)
    assert same_result(func, *args)
    real = func(torch.zeros(shape), kernel, stride, padding, dilation, ceil_mode)  # the CPU kernel too
    ours = _fast_meta(_op_facts(func), args, [x])
    assert [(t.shape, t.dtype, t.stride()) for t in ours] == [(t.shape, t.dtype, t.stride()) for t in real]


def test_max_pool2d_leaves_bad_padding_and_channels_last_to_the_kernel():
    func = aten.max_pool2d_with_indices.default
    op = _op_facts(func)
    too_much_padding = (meta(1, 2, 8, 8), [2, 2], [2, 2], [2, 2], [1, 1], False)  # padding > kernel / 2
    assert _fast_meta(op, too_much_padding, [too_much_padding[0]]) is None
    with pytest.raises(RuntimeError):
        func(*too_much_padding)
    x = meta(1, 2, 8, 8, channels_last=True)
    assert _fast_meta(op, (x, [2, 2], [2, 2], [0, 0], [1, 1], False), [x]) is None


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "channels_last", "sliced"])
def test_log_sigmoid_forward_returns_output_and_buffer_laid_out_as_on_the_cpu(layout):
    """Two results (the output and the buffer its backward reads), contiguous whatever the
    input's layout, as the CPU kernel writes them (its meta kernel keeps a transposed
    input's strides). It had been built as one tensor: every shapes-only run of a
    LogSigmoid failed."""
    real = {
        "contiguous": torch.randn(2, 3, 4, 5),
        "transposed": torch.randn(5, 4).t(),
        "channels_last": torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last),
        "sliced": torch.randn(2, 3, 8, 5)[:, :, ::2],
    }[layout]
    twin = torch.empty_strided(real.shape, real.stride(), device="meta")
    ours = _fast_meta(_op_facts(aten.log_sigmoid_forward.default), (twin,), [twin])
    cpu = aten.log_sigmoid_forward.default(real)
    assert [(t.shape, t.stride(), t.dtype) for t in ours] == [(t.shape, t.stride(), t.dtype) for t in cpu]


def test_a_log_sigmoid_is_counted_on_shapes():
    import flopmeter

    report = flopmeter.profile(torch.nn.LogSigmoid(), torch.randn(2, 8), shapes_only=True)
    stats = report.operators["aten.log_sigmoid_forward"]
    assert stats.calls == 1
    assert stats.cost.bytes_written == 2 * 2 * 8 * 4  # output and buffer, 16 float32 each = 128


@pytest.mark.parametrize("forward_only", [False, True])
@pytest.mark.parametrize(
    "mode, include_last_offset, weighted, padding_idx",
    [
        (0, False, False, -1),
        (0, False, True, -1),
        (1, False, False, -1),
        (2, False, False, -1),
        (0, True, False, -1),
        (1, True, False, 2),
        (0, False, False, 2),
    ],
)
def test_embedding_bag_results_are_laid_out_as_on_the_cpu(
    forward_only, mode, include_last_offset, weighted, padding_idx
):
    """With its offsets on meta (as a shapes-only run puts them), the meta kernel gives the
    CUDA sizes of offset2bag, bag_size and max_indices; ``as_on_cpu`` gives the CPU's."""
    from flopmeter.tracing.fast_meta import as_on_cpu

    func = aten._embedding_bag_forward_only.default if forward_only else aten._embedding_bag.default
    weight, indices, offsets = torch.randn(10, 4), torch.tensor([0, 9, 3, 5, 1]), torch.tensor([0, 2, 4])
    weights = torch.ones(5) if weighted else None
    args = (weight, indices, offsets, False, mode, False, weights, include_last_offset, padding_idx)
    cpu = func(*args)
    on_meta = tuple(a.to("meta") if isinstance(a, torch.Tensor) else a for a in args)
    ours = as_on_cpu(_op_facts(func), on_meta, func(*on_meta))
    assert [(t.shape, t.dtype) for t in ours] == [(t.shape, t.dtype) for t in cpu]
    assert all(t.is_meta for t in ours)
