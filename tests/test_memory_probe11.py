"""Probe 11: peak_activation_bytes against what torch allocates (benchmarks/memory_check.py
measures the real peak with torch.profiler; these are the cases where they differed)."""

import torch
from torch import nn

import flopmeter
from flopmeter.tracing.modules import ModuleStack
from flopmeter.tracing.recorder import OpRecorder


def test_memory_counts_until_the_last_tensor_on_its_storage_dies():
    recorder = OpRecorder(ModuleStack(nn.Identity()), {})
    tensor = torch.empty(4, 8)  # 4*8*4 = 128 bytes
    recorder._allocated(tensor)
    saved = tensor.detach()  # another tensor object on the same storage, as autograd saves an output
    del tensor
    assert recorder.live_bytes == 128  # it was 0: the memory was taken as freed
    del saved
    assert (recorder.live_bytes, recorder.peak_bytes) == (0, 128)


class SigmoidTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(100, 100)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).sigmoid() * 2


def test_an_output_autograd_saved_stays_live_until_its_backward():
    # every activation is 64 x 100 x 4 = 25,600 bytes. sigmoid saves its output s; the
    # forward's tensor object for s dies when it returns, but s lives on in the graph.
    # sigmoid's backward makes its grad while s, the input x, the output, the ones the
    # backward starts from and mul's grad are alive: 6 x 25,600 = 153,600 (the measured
    # peak). Counted as freed with the tensor object, s was missing: the peak was then
    # addmm's backward, x + out + ones + grad 4 x 25,600 + grad_weight 100 x 100 x 4
    # + grad_bias 100 x 4 = 102,400 + 40,000 + 400 = 142,800.
    report = flopmeter.profile(SigmoidTwice(), torch.randn(64, 100), backward=True)
    assert report.peak_activation_bytes == 6 * 25_600


def test_silu_backward_runs_as_its_cpu_kernel_not_decomposed():
    # x 64 x 100 (25,600 B); linear1 out h 25,600 (saved by linear2); the clone of h that
    # silu_ saves for its backward 25,600; out 64 x 10 x 4 = 2,560; backward: ones 2,560,
    # grad of h 25,600, grad_weight2 10 x 100 x 4 = 4,000, grad_bias2 40:
    # 3 x 25,600 + 2 x 2,560 + 25,600 + 4,000 + 40 = 111,560 (the measured peak). Decomposed
    # (sigmoid, 1 - s, x * ..., 1 + ..., s * ..., grad * ...), silu_backward held five more
    # 25,600 B tensors alive at once: 111,560 + 5 x 25,600 = 239,560.
    model = nn.Sequential(nn.Linear(100, 100), nn.SiLU(inplace=True), nn.Linear(100, 10))
    report = flopmeter.profile(model, torch.randn(64, 100), backward=True)
    assert report.peak_activation_bytes == 111_560
    assert "aten.silu_backward" in {op.op for op in report.ops}
    assert "aten.sigmoid" not in {op.op for op in report.ops}


class MatMul3D(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.w)


def test_an_output_sharing_its_storage_with_a_live_one_is_not_counted_again():
    # matmul of (4, 8, 16) by (16, 32) runs mm on (32, 16) and hands back the result through
    # aten._unsafe_view (not marked a view, yet the same storage): input 4*8*16*4 = 2,048
    # + mm's 32*32*4 = 4,096 = 6,144 (the measured peak); the alias was counted again: 10,240
    for shapes_only in (True, False):
        report = flopmeter.profile(MatMul3D(), torch.randn(4, 8, 16), shapes_only=shapes_only)
        assert report.peak_activation_bytes == 2_048 + 4_096
