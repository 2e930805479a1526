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


def totals(model: nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    r = flopmeter.profile(model, x)
    return (
        r.bytes_read,
        r.bytes_written,
        r.total.weight_bytes,
        r.param_bytes,
        r.buffer_bytes,
        r.peak_activation_bytes,
    )


def test_linear_bytes_by_hand():
    # x 4x10x4 = 160, W 20x10x4 = 800, b 80: read 1,040; written 4x20x4 = 320; weights 880;
    # peak: x + out = 480
    assert totals(nn.Linear(10, 20), torch.randn(4, 10)) == (1_040, 320, 880, 880, 0, 480)
    # half: every size halves
    assert totals(nn.Linear(10, 20).half(), torch.randn(4, 10).half()) == (520, 160, 440, 440, 0, 240)
    assert totals(nn.Linear(10, 20).bfloat16(), torch.randn(4, 10).bfloat16()) == (520, 160, 440, 440, 0, 240)


def test_conv_bn_in_eval_bytes_by_hand():
    # x 1x3x8x8x4 = 768; conv W 8x3x3x3x4 = 864, b 32, out 8x6x6x4 = 1,152; bn reads out
    # + weight, bias, running mean, running var (4 x 32) and writes 1,152.
    # read 768 + 864 + 32 + 1,152 + 128 = 2,944; written 2 x 1,152 = 2,304;
    # weights 864 + 32 + 128 = 1,024; params 864 + 32 + 2 x 32 = 960; buffers 32 + 32 +
    # num_batches_tracked's 8 (int64) = 72; peak 768 + 2 x 1,152 = 3,072
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)).eval()
    assert totals(model, torch.randn(1, 3, 8, 8)) == (2_944, 2_304, 1_024, 960, 72, 3_072)


class TiedEmbedding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.head = nn.Linear(16, 100, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(x))


def test_embedding_and_a_tied_weight_bytes_by_hand():
    idx = torch.randint(0, 100, (2, 5))  # 10 x 8 = 80 bytes of int64
    # the lookup reads the 10 rows it picks (10 x 16 x 4 = 640), not the table (6,400)
    assert totals(nn.Embedding(100, 16), idx) == (80 + 640, 640, 640, 6_400, 0, 80 + 640)
    # tied: the table is stored once (param_bytes 6,400) but read twice: its 10 rows and,
    # by the head, whole: weights 640 + 6,400 = 7,040; read 80 + 640 + 640 + 6,400 = 7,760;
    # written 640 + 10 x 100 x 4 = 4,640; peak 80 + 640 + 4,000 = 4,720
    assert totals(TiedEmbedding(), idx) == (7_760, 4_640, 7_040, 6_400, 0, 4_720)


class ScaledLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(10, 10)
        self.register_buffer("scale", torch.ones(10), persistent=False)
        self.register_buffer("shift", torch.zeros(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.scale + self.shift


def test_a_non_persistent_buffer_counts_in_buffer_bytes():
    # it is memory the model holds, though not in its state_dict: 2 x 10 x 4 = 80.
    # read: linear 160 + 400 + 40, mul 160 + 40, add 160 + 40 = 1,000; written 3 x 160;
    # weights 440 + 40 + 40 = 520
    assert totals(ScaledLinear(), torch.randn(4, 10)) == (1_000, 480, 520, 440, 80, 480)


def test_a_dynamic_int8_linear_bytes_by_hand():
    model = torch.ao.quantization.quantize_dynamic(
        nn.Sequential(nn.Linear(64, 32)), {nn.Linear}, dtype=torch.qint8
    )
    # x 4 x 64 x 4 = 1,024; packed int8 weight 32 x 64 = 2,048 + float32 bias 128 + the
    # weight's scale (float64) and zero point (int64) 16 = 2,192 weight bytes (read with the
    # weight since probe 14), as param_bytes; out 4 x 32 x 4 = 512; peak 1,024 + 512
    assert totals(model, torch.randn(4, 64)) == (1_024 + 2_192, 512, 2_192, 2_192, 0, 1_536)


class ExpChain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(100, 100)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).exp().exp().exp()


def test_the_peak_is_the_inference_peak_whatever_the_callers_grad_mode():
    # 64 x 100 x 4 = 25,600 B a tensor. Without grad each exp frees its input once done:
    # x + two neighbours = 3 x 25,600 = 76,800. With grad every exp keeps its result for
    # the backward: x + 3 results = 102,400 (the measured peak of such a forward).
    with torch.enable_grad():
        report = flopmeter.profile(ExpChain(), torch.randn(64, 100))
    assert report.peak_activation_bytes == 3 * 25_600
