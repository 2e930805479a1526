"""Fourier transforms (torch.fft, torch.stft, ONNX DFT/STFT) against hand counts.

Convention (formulas/spectral.py): a complex transform of length n is 5·n·log2(n) real
FLOPs, a real one 2.5·n·log2(n); multi-dim = each dim's 1-d transforms times the other
elements (a real transform's other dims on the n//2 + 1 half spectrum); a norm is one
multiply per real number of the signal; 0 MACs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopmeter
from flopmeter import registry
from flopmeter.formulas import spectral
from test_coverage_layers import Fn  # a module calling a function


def fft_flops(fn, *inputs: torch.Tensor, **kwargs) -> int:  # type: ignore[no-untyped-def]
    """FLOPs of the FFT ops alone (torch's own pads and copies around them are free)."""
    report = flopmeter.profile(Fn(fn), inputs, **kwargs)
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    assert report.macs == 0  # FFTs are not contractions
    return sum(stats.cost.flops for op, stats in report.by_operator().items() if "_fft_" in op)


X = torch.randn(2, 8)
XC = torch.randn(2, 8, dtype=torch.complex64)


class TestFormula:
    def test_one_dimension(self):
        assert spectral.fft((8,), 2, real=False, normalized=False).flops == 240  # 2 * 5*8*3
        assert spectral.fft((8,), 2, real=True, normalized=False).flops == 120  # 2 * 2.5*8*3
        assert spectral.fft((8,), 2, real=True, normalized=True).flops == 136  # + 2 rows * 8 reals
        assert spectral.fft((8,), 2, real=False, normalized=True).flops == 272  # + 2 * 2*8 reals
        assert spectral.fft((1,), 5, real=False, normalized=False).flops == 0  # log2(1) = 0
        assert spectral.fft((), 5, real=False, normalized=True).flops == 0  # no dim transformed
        assert spectral.fft((0,), 5, real=True, normalized=True).flops == 0

    def test_non_power_of_two_uses_the_real_log2_rounded_once(self):
        # 2 * 2.5*12*log2(12) = 60 * 3.58496 = 215.098 -> 215
        assert spectral.fft((12,), 2, real=True, normalized=False).flops == 215
        # 3 * 5*7*log2(7) = 105 * 2.80735 = 294.77 -> 295 (not 3 * round(98.26) = 294)
        assert spectral.fft((7,), 3, real=False, normalized=False).flops == 295

    def test_two_dimensions(self):
        # complex (4, 8): dim 4: 5*4*2 * 8 columns = 320; dim 8: 5*8*3 * 4 rows = 480 -> 800
        # = 5*N*log2(N), N = 32: 5*32*5 = 800
        assert spectral.fft((4, 8), 1, real=False, normalized=False).flops == 800
        # real (4, 8): last dim 2.5*8*3 * 4 rows = 240; dim 4 complex on 8//2+1 = 5 columns:
        # 5*4*2 * 5 = 200 -> 440 (FFTW's benchmark figure 2.5*32*5 = 400 ignores the Nyquist column)
        assert spectral.fft((4, 8), 1, real=True, normalized=False).flops == 440

    def test_stft(self):
        # 34 frames of 16: window 34*16 = 544, real transforms 34 * 2.5*16*4 = 5,440
        assert spectral.stft(34, 16, real=True, windowed=True).flops == 544 + 5_440
        assert spectral.stft(34, 16, real=False, windowed=False).flops == 34 * 5 * 16 * 4  # 10,880


class TestTorchFft:
    def test_registered(self):
        for op in ("aten._fft_r2c", "aten._fft_c2r", "aten._fft_c2c"):
            assert registry.kind_of(op) == "counted"

    @pytest.mark.parametrize("shapes_only", [True, False])
    def test_one_dimension(self, shapes_only):
        kw = {"shapes_only": shapes_only}
        assert fft_flops(torch.fft.rfft, X, **kw) == 120  # 2 rows * 2.5*8*3
        # fft of a real input: the one-sided transform, the other half filled by symmetry
        assert fft_flops(torch.fft.fft, X, **kw) == 120
        assert fft_flops(torch.fft.fft, XC, **kw) == 240  # 2 * 5*8*3
        assert fft_flops(torch.fft.ifft, XC, **kw) == 240 + 32  # 1/n: 2 rows * 16 reals
        assert fft_flops(lambda x: torch.fft.rfft(x, norm="ortho"), X, **kw) == 120 + 16  # 16 real inputs
        # irfft to n=8 from 5 bins: 2 * 2.5*8*3 = 120, 1/n on 16 real outputs
        assert fft_flops(lambda x: torch.fft.irfft(x, n=8), XC[:, :5], **kw) == 136
        # irfft's default n = 2*(8-1) = 14: 2 * 2.5*14*log2(14) = 266.515 -> 267, + 28
        assert fft_flops(torch.fft.irfft, XC, **kw) == 295
        # fft(n=12) pads (free) and transforms 12: 2 * 2.5*12*log2(12) = 215.098 -> 215
        assert fft_flops(lambda x: torch.fft.fft(x, n=12), X, **kw) == 215
        # hfft: a c2r to n = 14 without a norm (267); ihfft: an r2c with 1/n on 16 reals (136)
        assert fft_flops(torch.fft.hfft, XC, **kw) == 267
        assert fft_flops(torch.fft.ihfft, X, **kw) == 136

    def test_multi_dimensional(self):
        # rfft2 of (2, 4, 8): per image last dim 4 rows * 60 = 240, dim 4 on 5 columns 5 * 40 = 200
        assert fft_flops(torch.fft.rfft2, torch.randn(2, 4, 8)) == 2 * 440
        # fft2 of a complex (2, 4, 8): 2 * 5*32*log2(32) = 1,600
        assert fft_flops(torch.fft.fft2, torch.randn(2, 4, 8, dtype=torch.complex64)) == 1_600
        # fft2 of a real tensor: torch copies it to complex and runs the same c2c (1,600)
        assert fft_flops(torch.fft.fft2, torch.randn(2, 4, 8)) == 1_600
        # rfftn over all of (2, 4, 6, 8): last dim 48 rows * 2.5*8*3 = 2,880; half spectrum
        # 2*4*6*5 = 240 elements: dim 2 120 * 5*2*1 = 1,200, dim 4 60 * 5*4*2 = 2,400,
        # dim 6 40 * 5*6*log2(6) = 3,101.955 -> 9,581.955 -> 9,582
        assert fft_flops(torch.fft.rfftn, torch.randn(2, 4, 6, 8)) == 9_582
        # irfftn back to (2, 4, 6, 8): the same transform + 1/n on 384 real outputs
        spectrum = torch.randn(2, 4, 6, 5, dtype=torch.complex64)
        assert fft_flops(lambda s: torch.fft.irfftn(s, s=(2, 4, 6, 8)), spectrum) == 9_582 + 384

    def test_bytes_are_the_default_traffic(self):
        report = flopmeter.profile(Fn(torch.fft.fft), X)
        cost = report.by_operator()["aten._fft_r2c"].cost
        # reads 16 float32 = 64 B; writes the full 2x8 complex64 spectrum = 128 B
        assert (cost.bytes_read, cost.bytes_written) == (64, 128)

    def test_under_inference_mode(self):
        with torch.inference_mode():
            assert fft_flops(torch.fft.rfft2, torch.randn(2, 4, 8)) == 880
            assert fft_flops(torch.fft.rfft2, torch.randn(2, 4, 8), shapes_only=False) == 880


class Spectrogram(nn.Module):
    """A torchaudio-style power spectrogram: Hann window, centred (reflect-padded) frames."""

    def __init__(self, n_fft: int = 16, hop: int = 4) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, return_complex=True)
        return spec.abs().pow(2)


class AudioTagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.spec = Spectrogram()
        self.head = nn.Linear(9, 4)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.spec(wave).transpose(1, 2))


class GlobalFilter(nn.Module):
    """GFNet's token mixer (Rao et al. 2021): a learned filter on the 2-d spectrum."""

    def __init__(self, h: int, w: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(h, w // 2 + 1, dim, 2) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        spectrum = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
        spectrum = spectrum * torch.view_as_complex(self.weight)
        return torch.fft.irfft2(spectrum, s=x.shape[1:3], dim=(1, 2), norm="ortho")


class FilterNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.filter = GlobalFilter(8, 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.filter(self.proj(x))


class SpectralConv2d(nn.Module):
    """A Fourier Neural Operator layer (Li et al. 2021): complex weights on the low modes."""

    def __init__(self, cin: int, cout: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        self.weight = nn.Parameter(torch.randn(cin, cout, modes, modes, dtype=torch.cfloat) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        x_ft = torch.fft.rfft2(x)
        out = torch.zeros(b, self.weight.shape[1], h, w // 2 + 1, dtype=torch.cfloat, device=x.device)
        low = x_ft[:, :, : self.modes, : self.modes]
        out[:, :, : self.modes, : self.modes] = torch.einsum("bixy,ioxy->boxy", low, self.weight)
        return torch.fft.irfft2(out, s=(h, w))


class TestUserModels:
    def test_fourier_neural_operator(self):
        report = flopmeter.profile(SpectralConv2d(3, 4, 4), torch.randn(2, 3, 16, 16))
        assert report.unsupported_ops() == {}
        ops = report.by_operator()
        # rfft2 of 6 planes 16x16: 16 rows * 2.5*16*4 = 2,560 + 9 columns * 5*16*4 = 2,880 -> 5,440
        assert ops["aten._fft_r2c"].cost.flops == 6 * 5_440  # 32,640
        # irfft2 to 8 planes 16x16: 8 * 5,440 + 1/n on 8*256 reals -> 45,568
        assert ops["aten._fft_c2r"].cost.flops == 8 * 5_440 + 8 * 256
        # the einsum on 4x4 modes: 16 complex products (2x3)@(3x4), 384 complex MACs = 4*384
        # = 1,536 real MACs; 16*8 = 128 outputs of 3 complex multiplies (6) and 2 complex
        # adds (2): 128*(3*6 + 2*2) = 2,816 real FLOPs (docs/conventions.md, complex numbers)
        assert (ops["aten.bmm"].cost.macs, ops["aten.bmm"].cost.flops) == (1_536, 2_816)
        assert report.flops == 32_640 + 45_568 + 2_816

    def test_stft_front_end(self):
        report = flopmeter.profile(AudioTagger(), torch.randn(2, 64))
        assert report.unsupported_ops() == {}
        modules = report.by_module()
        # center=True pads 64 -> 80 (reflect, free): 1 + (80-16)/4 = 17 frames of 16, 2 signals
        # window 2*17*16 = 544; rfft 34 * 2.5*16*4 = 5,440; |X| of 34*9 = 306 complex bins,
        # sqrt(a^2 + b^2) 4 real FLOPs each = 1,224; then ^2 of the real |X|: 306
        assert modules["spec"].total.flops == 544 + 5_440 + 1_224 + 306  # 7,514
        assert report.by_operator()["aten._fft_r2c"].cost.flops == 5_440
        # Linear(9, 4) on 34 frames: 34*4 outputs * (2*9) with bias = 2,448
        assert modules["head"].total.flops == 2_448
        assert report.flops == 7_514 + 2_448
        assert report.macs == 34 * 4 * 9  # 1,224: the transform adds none

    @pytest.mark.parametrize(
        ("window", "per_element"),
        [
            ("hann_window", 4),
            ("hamming_window", 4),
            ("bartlett_window", 4),
            ("blackman_window", 8),
            ("kaiser_window", 8),
        ],
    )
    def test_a_window_made_in_forward(self, window, per_element):
        # stft(x, window=torch.hann_window(16)) in forward: the window is 16 elements of its
        # definition (hann: 0.5 - 0.5*cos(t), 4), then the frames as above
        model = Fn(lambda w: torch.stft(w, 16, 4, window=getattr(torch, window)(16), return_complex=True))
        report = flopmeter.profile(model, torch.randn(2, 64))
        assert report.unsupported_ops() == {}
        assert report.by_operator()["aten." + window].cost.flops == 16 * per_element
        assert report.flops == 16 * per_element + 544 + 5_440

    def test_istft(self):
        spec = torch.stft(torch.randn(2, 64), 16, 4, window=torch.hann_window(16), return_complex=True)
        inverse = Fn(lambda s: torch.istft(s, 16, 4, window=torch.hann_window(16)))
        report = flopmeter.profile(inverse, spec)
        assert report.unsupported_ops() == {}
        # 34 frames of 9 bins back to 16 samples: 34 * 2.5*16*4 = 5,440 + 1/n on 34*16 reals
        assert report.by_operator()["aten._fft_c2r"].cost.flops == 5_440 + 544
        # torch.istft checks its window with torch.equal on two bools: a compare, 0 FLOPs
        assert report.by_operator()["aten.equal"].cost.flops == 0
        # the overlap-add (unfold_backward): 17 frames of 16 at hop 4 cover 16*4 + 16 = 80
        # samples: 17*16 - 80 = 192 adds per row; the signal's 2 rows and the window
        # envelope's 1: 3 * 192 = 576
        overlap_add = report.by_operator()["aten.unfold_backward"]
        assert (overlap_add.calls, overlap_add.cost.flops) == (2, 576)

    def test_equal_on_floats(self):
        report = flopmeter.profile(Fn(lambda a: a * float(torch.equal(a, a))), X, shapes_only=False)
        assert report.by_operator()["aten.equal"].cost.flops == 16  # 2x8 compares

    def test_unfold_backward(self):
        assert registry.kind_of("aten.unfold_backward") == "counted"  # was a data op (0 FLOPs)
        x = torch.randn(2, 10, requires_grad=True)
        report = flopmeter.profile(Fn(lambda t: t.unfold(1, 4, 2).sum()), x, backward=True)
        # 4 windows of 4 at step 2 over 10: 16 - (3*2 + 4) = 6 adds per row, 2 rows
        assert report.by_operator()["aten.unfold_backward"].cost.flops == 12
        report = flopmeter.profile(Fn(lambda t: t.unfold(1, 2, 3).sum()), x, backward=True)
        assert report.by_operator()["aten.unfold_backward"].cost.flops == 0  # no overlap: a copy

    def test_gfnet_filter_forward(self):
        report = flopmeter.profile(FilterNet(), torch.randn(1, 8, 8, 4))
        assert report.unsupported_ops() == {}
        # rfft2 over (8, 8), 4 channels: last dim 8 rows * 2.5*8*3 = 480, dim 8 on 5 columns
        # 5 * 5*8*3 = 600 -> 1,080 per channel, 4,320, + ortho 4*64 = 256 -> 4,576;
        # the filter: 8*5*4 = 160 complex multiplies, 6 real FLOPs each = 960; irfft2 the same 4,576
        assert report.by_module()["filter"].total.flops == 4_576 + 960 + 4_576  # 10,112
        assert report.by_module()["proj"].total.flops == 64 * 4 * 8  # 2,048

    def test_gfnet_filter_backward(self):
        report = flopmeter.profile(FilterNet(), torch.randn(1, 8, 8, 4), backward=True)
        assert report.unsupported_ops() == {}
        backward = report.by_module()["filter"].backward
        ops = {op: stats for op, stats in report.by_operator().items() if "_fft_" in op}
        # autograd runs the adjoint transforms: irfft2's backward is an rfft2 (4,576 with
        # its ortho scale), rfft2's a complex ifft of the padded spectrum over (8, 8):
        # 4 channels * 5*64*6 = 7,680 + ortho on 4*128 reals = 512 -> 8,192
        assert ops["aten._fft_r2c"].calls == 2 and ops["aten._fft_r2c"].cost.flops == 2 * 4_576
        assert ops["aten._fft_c2c"].calls == 1 and ops["aten._fft_c2c"].cost.flops == 8_192
        # + the doubled inner bins of irfft's adjoint (8*3*4 = 96 complex values times the
        # real 2: 2 real multiplies each, 192) and the product's two gradients (160 complex
        # multiplies each, 6 real FLOPs: 1,920): 4,576 + 192 + 1,920 + 8,192 = 14,880
        assert backward.flops == 14_880
        assert backward.macs == 0


def test_fnet_token_mixing():
    """transformers' FNet mixes tokens with fftn over (sequence, hidden) and keeps .real."""
    transformers = pytest.importorskip("transformers")
    config = transformers.FNetConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, intermediate_size=64,
        max_position_embeddings=64, use_tpu_fourier_optimizations=False,
    )  # fmt: skip
    report = flopmeter.profile(transformers.FNetModel(config).eval(), torch.randint(0, 100, (1, 16)))
    assert report.unsupported_ops() == {}
    # each layer: a complex 16x32 transform (the real states copied to complex): 5*512*9
    for layer in (0, 1):
        assert report.by_module()[f"encoder.layer.{layer}.fourier.self"].own.flops == 23_040
    assert report.by_operator()["aten._fft_c2c"].cost.flops == 2 * 23_040


def test_peers_do_not_count_fft():
    """What the docs say of the peers: FlopCounterMode counts 0, fvcore lists the op as
    unsupported, ptflops counts 0; flopmeter counts the transform (120)."""
    import warnings

    from torch.utils.flop_counter import FlopCounterMode

    model = Fn(torch.fft.rfft)
    with FlopCounterMode(display=False) as counter:
        model(X)
    assert counter.get_total_flops() == 0
    fvcore = pytest.importorskip("fvcore.nn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = fvcore.FlopCountAnalysis(model, X).unsupported_ops_warnings(False)
        assert analysis.total() == 0 and "aten::fft_rfft" in analysis.unsupported_ops()
    ptflops = pytest.importorskip("ptflops")
    macs, _ = ptflops.get_model_complexity_info(
        model, (8,), as_strings=False, print_per_layer_stat=False, backend="aten"
    )
    assert macs == 0
    assert flopmeter.profile(model, X).flops == 120


onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from flopmeter.onnx import profile_onnx  # noqa: E402


def dft_graph(shape, opset: int, *, axis: int, length: int | None = None, **attrs):  # type: ignore[no-untyped-def]
    """One DFT node: opset 20 takes dft_length and axis as inputs, 17 axis as an attribute."""
    import numpy as np

    constants = {} if length is None else {"n": length}
    if opset >= 20:
        constants["axis"] = axis
        inputs = ["x", "" if length is None else "n", "axis"]
    else:
        attrs["axis"] = axis
        inputs = ["x"] if length is None else ["x", "n"]
    graph = helper.make_graph(
        [helper.make_node("DFT", inputs, ["out"], **attrs)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


class TestOnnx:
    @pytest.mark.parametrize("opset", [17, 20])
    def test_dft(self, opset):
        real = profile_onnx(dft_graph([2, 8, 1], opset, axis=1, onesided=1))
        assert real.flops == 120 and real.macs == 0  # 2 rows * 2.5*8*3
        assert real.unsupported_ops() == {}
        # complex (2, 8) along axis 1: 2 * 5*8*3 = 240; inverse scales 1/n: + 2 * 16 reals
        assert profile_onnx(dft_graph([2, 8, 2], opset, axis=1)).flops == 240
        assert profile_onnx(dft_graph([2, 8, 2], opset, axis=1, inverse=1)).flops == 272
        # a real input padded to dft_length 12: 2 * 2.5*12*log2(12) = 215.098 -> 215
        assert profile_onnx(dft_graph([2, 8, 1], opset, axis=1, length=12)).flops == 215

    def test_stft(self):
        import numpy as np

        node = helper.make_node("STFT", ["x", "step", "window", "length"], ["out"], onesided=1)
        graph = helper.make_graph(
            [node],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 80, 1])],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
            [
                numpy_helper.from_array(np.array(4, np.int64), "step"),
                numpy_helper.from_array(np.hanning(16).astype(np.float32), "window"),
                numpy_helper.from_array(np.array(16, np.int64), "length"),
            ],
        )
        report = profile_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
        # 2 signals * 17 frames: window 34*16 = 544 + 34 * 2.5*16*4 = 5,440
        assert report.flops == 5_984 and report.unsupported_ops() == {}


HANN = torch.hann_window(16)  # a constant (a window made in forward is folded by the exporter)


class RoundTrip(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft(torch.fft.rfft2(x), n=x.shape[-1])


@pytest.mark.parametrize(
    ("model", "example", "expected"),
    [
        # rfft2 (2, 4, 8) = 880; irfft over 8 rows of 8 = 480 + 1/n on 64 reals = 544
        (RoundTrip(), torch.randn(2, 4, 8), 880 + 544),
        # rfft with norm="ortho": 2 * 60 + 16 real inputs scaled (ONNX: a Div before the DFT)
        (Fn(lambda x: torch.view_as_real(torch.fft.rfft(x, norm="ortho"))), torch.randn(2, 8), 136),
        # fft of a real tensor: the one-sided real transform, the other half by symmetry
        (Fn(lambda x: torch.view_as_real(torch.fft.fft(x))), torch.randn(2, 8), 120),
        # the spectrogram without |X|^2 (ONNX has no complex abs): window 544 + rfft 5,440
        (Fn(lambda w: torch.view_as_real(torch.stft(w, 16, 4, window=HANN, return_complex=True))), torch.randn(2, 64), 5_984),
    ],
)  # fmt: skip
def test_an_exported_model_counts_as_in_pytorch(tmp_path, model, example, expected):
    assert flopmeter.profile(model, example).flops == expected
    onnx_report = profile_onnx(export(model, example, tmp_path))
    assert onnx_report.unsupported_ops() == {}
    assert onnx_report.flops == expected


def export(model: nn.Module, example: torch.Tensor, folder) -> str:  # type: ignore[no-untyped-def]
    import warnings

    path = str(folder / "spectral.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), path, dynamo=True, verbose=False)
    return path


def test_a_normalized_multi_dim_inverse_differs_in_onnx(tmp_path):
    """The documented difference: the exporter scales after each dim's inverse DFT."""
    model = Fn(lambda x: torch.view_as_real(torch.fft.ifft2(torch.fft.fft2(x))))
    example = torch.randn(2, 4, 8)
    # PyTorch: fft2 of the real tensor copied to complex, 2 * 5*32*5 = 1,600; ifft2 the same
    # + 1/n once on 2 * 64 reals = 128 -> 3,328
    assert flopmeter.profile(model, example).flops == 1_600 + 1_600 + 128
    # ONNX: the same transforms, the 1/n of each of the 2 inverse DFTs (+128 each)
    assert profile_onnx(export(model, example, tmp_path)).flops == 1_600 + 1_600 + 2 * 128


def test_mac_conventions_leave_the_transform_out():
    report = flopmeter.profile(Fn(torch.fft.rfft), X)
    assert report.flops_as("exact") == 120
    assert report.flops_as("2mac") == report.flops_as("mac") == report.flops_as("ptflops") == 0
