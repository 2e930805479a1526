"""Probe 14: complex dtypes counted in real arithmetic, and other odd dtypes and layouts.

Convention (docs/conventions.md, "Complex numbers"; formulas/complex_values.py): a complex
add is 2 real adds, a complex multiply 4 real multiplies + 2 real adds (6), so a complex
MAC is 4 real MACs (8 real FLOPs); a real operand is not promoted ((a + bi)·c is 2
multiplies). Every expected value has its arithmetic beside it.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopmeter
from flopmeter.formulas import complex_values, spectral
from flopmeter.hardware import Hardware
from test_coverage_layers import Fn  # a module calling a function


def c(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.complex64)


def both(model: nn.Module, inputs, **kwargs) -> flopmeter.Report:  # type: ignore[no-untyped-def]
    """The report with values, after checking shapes-only gives every number the same."""
    report = flopmeter.profile(model, inputs, shapes_only=False, **kwargs)
    meta = flopmeter.profile(model, inputs, shapes_only=True, **kwargs)
    assert report.unsupported_ops() == {}, report.unsupported_ops()
    assert (meta.macs, meta.flops, meta.total.bytes_read, meta.total.bytes_written) == (
        report.macs,
        report.flops,
        report.total.bytes_read,
        report.total.bytes_written,
    )
    return report


# ------------------------------------------------------------------------ contractions
class TestContractions:
    def test_the_leads_matmul(self):
        report = both(Fn(torch.matmul), (c(4, 8), c(8, 16)))
        assert report.macs == 4 * 4 * 8 * 16  # 512 complex MACs, 4 real each: 2,048
        # 4*16 outputs, each 8 complex multiplies (6) and 7 complex adds (2): 4*16*(8*6 + 7*2)
        assert report.flops == 3_968
        assert report.total.bytes_read == (4 * 8 + 8 * 16) * 8  # complex64 is 8 B: 1,280
        assert report.total.bytes_written == 4 * 16 * 8  # 512
        assert report.flops_as("2mac") == 2 * 2_048  # 8 real FLOPs per complex MAC
        assert report.flops_as("mac") == 2_048

    def test_linear_with_bias(self):
        report = both(Fn(lambda x, w, b: F.linear(x, w, b)), (c(3, 8), c(5, 8), c(5)))
        assert report.macs == 4 * 3 * 5 * 8  # 120 complex MACs: 480
        # 15 outputs: 8 multiplies (48) + 7 adds (14) + the bias add (2) = 64 each: 960
        assert report.flops == 15 * 64
        # ptflops view: real MACs + 2 per complex bias add: 480 + 2*15 = 510
        assert report.flops_as("ptflops") == 510

    def test_einsum_runs_as_a_complex_bmm(self):
        # "bixy,ioxy->boxy", b 2, i 3, o 6, x 4, y 5: 2*6*20 = 240 outputs, dots of 3
        model = Fn(lambda a, w: torch.einsum("bixy,ioxy->boxy", a, w))
        report = both(model, (c(2, 3, 4, 5), c(3, 6, 4, 5)))
        assert report.macs == 4 * 240 * 3  # 2,880
        assert report.flops == 240 * (3 * 6 + 2 * 2)  # 5,280

    def test_vdot_and_bmm(self):
        report = both(Fn(torch.vdot), (c(10), c(10)))  # conj(a)·b: the conjugate is free
        assert (report.macs, report.flops) == (4 * 10, 10 * 6 + 9 * 2)  # (40, 78)
        report = both(Fn(torch.bmm), (c(2, 3, 4), c(2, 4, 5)))
        assert (report.macs, report.flops) == (4 * 2 * 3 * 5 * 4, 2 * 3 * 5 * (4 * 6 + 3 * 2))  # (480, 900)

    def test_conv_is_the_three_real_convs_torch_runs(self):
        # torch runs a complex conv as Gauss's trick on the parts: a = conv(xr, wr),
        # b = conv(xi, wi), c = conv(xr + xi, wr + wi); real a - b, imaginary c - a - b.
        # Each real conv: 1*4*4*4 = 64 outputs of 2*3*3 = 18 terms: 1,152 MACs, 64*35 = 2,240 FLOPs
        report = both(Fn(F.conv2d), (c(1, 2, 6, 6), c(4, 2, 3, 3)))
        ops = report.by_operator()
        assert ops["aten.convolution"].calls == 3
        assert report.macs == 3 * 1_152  # 3,456 real MACs (4*1,152 = 4,608 by the definition)
        # + xr + xi (72), wr + wi (72), the real part plus i·imag (64 real + complex: 1 each)
        assert ops["aten.add"].cost.flops == 72 + 72 + 64
        assert ops["aten.sub"].cost.flops == 3 * 64  # a - b, c - a, - b
        assert ops["aten.mul"].cost.flops == 2 * 64  # imag * 1j: a real times i, 2 each
        assert report.flops == 3 * 2_240 + 208 + 192 + 128  # 7,248


# ------------------------------------------------------------------------- elementwise
ELEMENTWISE = [
    # (name, function, inputs, real FLOPs per element)
    ("mul complex*complex", torch.mul, (c(10), c(10)), 6),
    ("mul complex*real", torch.mul, (c(10), torch.randn(10)), 2),
    ("mul by a float", lambda z: z * 2.0, (c(10),), 2),
    ("mul by 1j", lambda z: z * 1j, (c(10),), 6),
    ("mul real by 1j", lambda x: x * 1j, (torch.randn(10),), 2),
    ("add complex+complex", torch.add, (c(10), c(10)), 2),
    ("add complex+real", torch.add, (c(10), torch.randn(10)), 1),
    ("add with alpha 2", lambda a, b: torch.add(a, b, alpha=2), (c(10), c(10)), 2 + 2),
    ("sub", torch.sub, (c(10), c(10)), 2),
    ("div complex/complex", torch.div, (c(10), c(10)), 11),
    ("div complex/real", torch.div, (c(10), torch.rand(10) + 1), 2),
    ("div real/complex", torch.div, (torch.randn(10), c(10)), 8),
    ("neg", torch.neg, (c(10),), 2),
    ("abs", torch.abs, (c(10),), 4),  # sqrt(a^2 + b^2): 2 mul, add, sqrt
    ("angle", torch.angle, (c(10),), 1),  # atan2(b, a)
    ("sgn", torch.sgn, (c(10),), 6),  # z / |z|: 4 + 2 divides
    ("exp", torch.exp, (c(10),), 5),  # e^a (cos b + i sin b): exp, cos, sin, 2 mul
    ("log", torch.log, (c(10),), 6),
    ("sqrt", torch.sqrt, (c(10),), 11),
    ("reciprocal", torch.reciprocal, (c(10),), 6),
    ("tanh", torch.tanh, (c(10),), 9),
    ("sigmoid", torch.sigmoid, (c(10),), 14),
    ("pow to a real", lambda z: torch.pow(z, 2.5), (c(10),), 13),  # exp(2.5·log z): 6 + 2 + 5
    ("pow to a complex", torch.pow, (c(10), c(10)), 17),  # 6 + 6 + 5
    ("eq", torch.eq, (c(10), c(10)), 3),  # two compares, and
]


@pytest.mark.parametrize(("name", "fn", "inputs", "per"), ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise(name, fn, inputs, per):  # type: ignore[no-untyped-def]
    report = both(Fn(fn), inputs)
    assert report.flops == 10 * per
    assert report.macs == 0


def test_conj_physical_and_where_are_as_before():
    # -b per complex element: 1 (formulas/elementwise.py); a select of one value: 1
    assert both(Fn(torch.conj_physical), (c(10),)).flops == 10
    mask = torch.rand(10) > 0.5
    assert both(Fn(torch.where), (mask, c(10), c(10))).flops == 10


def test_real_operands_written_into_a_complex_result_are_real_arithmetic():
    def product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.mul(a, b, out=torch.empty(10, dtype=torch.complex64))

    assert flopmeter.profile(Fn(product), (torch.randn(10), torch.randn(10))).flops == 10  # 1 each


def test_an_op_without_a_complex_formula_is_listed_not_counted_as_real():
    report = flopmeter.profile(Fn(torch.asin), c(5))
    assert report.flops == 0
    unsupported = report.unsupported_ops()["aten.asin"]
    assert unsupported.calls == 1 and unsupported.shapes == ["(5:complex64)"]
    # the same op on real values keeps its formula: 1 per element
    assert flopmeter.profile(Fn(torch.asin), torch.rand(5)).flops == 5


# -------------------------------------------------------------------------- reductions
class TestReductions:
    def test_sum_mean_prod_cumsum(self):
        x = (c(3, 10),)
        assert both(Fn(lambda z: z.sum(-1)), x).flops == 3 * 9 * 2  # 9 complex adds a row: 54
        assert both(Fn(lambda z: z.sum()), x).flops == 29 * 2  # 58
        assert both(Fn(lambda z: z.mean(-1)), x).flops == 3 * (9 * 2 + 2)  # + the real divide of a and b: 60
        assert both(Fn(lambda z: z.prod(-1)), x).flops == 3 * 9 * 6  # complex multiplies: 162
        assert both(Fn(lambda z: z.cumsum(-1)), x).flops == 3 * 9 * 2  # 54

    def test_var_std_and_norms(self):
        x = (c(3, 10),)
        # mean 2*10, subtract 2*10, |.|^2 3*10, real sum 9, divide 1: 8*10 per row
        assert both(Fn(lambda z: z.var(-1)), x).flops == 3 * 80  # 240
        assert both(Fn(lambda z: z.std(-1)), x).flops == 3 * 81  # + sqrt: 243
        # p = 2: a^2 + b^2 (3) per term, 9 adds, the root: 3*(30 + 9 + 1)
        assert both(Fn(lambda z: torch.linalg.vector_norm(z, dim=-1)), x).flops == 120
        # p = 1: |z| (4) per term, 9 adds, no root: 3*(40 + 9)
        assert both(Fn(lambda z: torch.linalg.vector_norm(z, 1, dim=-1)), x).flops == 147


# --------------------------------------------------------------------------- toy models
class SpectralConv2d(nn.Module):
    """An FNO layer: rfft2, complex weights on the low modes (both corners), irfft2."""

    def __init__(self, cin: int, cout: int, modes: int) -> None:
        super().__init__()
        self.cout, self.modes = cout, modes
        self.w1 = nn.Parameter(torch.randn(cin, cout, modes, modes, dtype=torch.cfloat) * 0.1)
        self.w2 = nn.Parameter(torch.randn(cin, cout, modes, modes, dtype=torch.cfloat) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        m = self.modes
        x_ft = torch.fft.rfft2(x)
        out = torch.zeros(b, self.cout, h, w // 2 + 1, dtype=torch.cfloat, device=x.device)
        out[:, :, :m, :m] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :m, :m], self.w1)
        out[:, :, -m:, :m] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, -m:, :m], self.w2)
        return torch.fft.irfft2(out, s=(h, w))


class FNOBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.spectral = SpectralConv2d(3, 4, 3)
        self.skip = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.spectral(x) + self.skip(x))


def test_fno_block_per_module():
    report = both(FNOBlock(), torch.randn(2, 3, 8, 8))
    modules = report.by_module()
    spectral_conv = modules["spectral"].total
    # rfft2 of 6 planes 8x8: 8 rows * 2.5*8*3 = 480 + 5 columns * 5*8*3 = 600 -> 1,080 each: 6,480
    # two einsums of 2*4*3*3 = 72 outputs, dots of 3 complex: MACs 72*3*4 = 864, FLOPs 72*(3*6 + 2*2) = 1,584
    # irfft2 to 8 planes: 8 * 1,080 + 1/n on 8*64 reals = 9,152
    assert spectral_conv.macs == 2 * 864  # 1,728
    assert spectral_conv.flops == 6_480 + 2 * 1_584 + 9_152  # 18,800
    assert spectral_conv.weight_bytes == 2 * 3 * 4 * 3 * 3 * 8  # w1, w2: 108 complex64 each, 1,728 B
    # skip Conv2d(3, 4, 1) with bias on 2x8x8: 512 outputs of 3 terms: 1,536 MACs, 512*2*3 = 3,072
    assert (modules["skip"].total.macs, modules["skip"].total.flops) == (1_536, 3_072)
    # the root's add (512) and gelu (5 * 512)
    assert report.flops == 18_800 + 3_072 + 512 + 5 * 512  # 24,944
    assert report.macs == 1_728 + 1_536


class Rotary(nn.Module):
    """Llama's reference rotary embedding: pairs as complex numbers times e^{i·angle}."""

    def __init__(self, head_dim: int, seq: int) -> None:
        super().__init__()
        freqs = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        angles = torch.outer(torch.arange(seq).float(), freqs)
        self.register_buffer("freqs_cis", torch.polar(torch.ones_like(angles), angles), persistent=False)

    def forward(self, q: torch.Tensor) -> torch.Tensor:  # (batch, seq, heads, head_dim)
        q_ = torch.view_as_complex(q.float().reshape(*q.shape[:-1], -1, 2))
        freqs = self.freqs_cis.view(1, q_.shape[1], 1, q_.shape[-1])
        return torch.view_as_real(q_ * freqs).flatten(3).type_as(q)


class RotaryQuery(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(8, 8)
        self.rope = Rotary(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rope(self.q(x).view(2, 5, 2, 4))


def test_rotary_embedding_via_view_as_complex():
    report = both(RotaryQuery(), torch.randn(2, 5, 8))
    rope, q = report.by_module()["rope"].total, report.by_module()["q"].total
    # 2*5*2 heads * 2 pairs = 40 complex multiplies, 6 real FLOPs each
    assert (rope.macs, rope.flops) == (0, 240)
    assert rope.bytes_read == 2 * 5 * 8 * 4 + 5 * 2 * 8  # q (80 floats) + freqs_cis (10 complex64): 400
    assert rope.bytes_written == 2 * 5 * 8 * 4  # 320
    assert (q.macs, q.flops) == (10 * 8 * 8, 10 * 8 * 2 * 8)  # (640, 1,280)


def test_fno_training_step_counts_the_backward_in_real_arithmetic():
    report = flopmeter.profile(SpectralConv2d(3, 4, 3), torch.randn(2, 3, 8, 8), backward=True)
    assert report.unsupported_ops() == {}
    ops = report.by_operator()
    # the weights' gradients: two more bmms of 72 outputs' worth of 3-term complex dots
    # (grad_w[i,o,x,y] = sum over b of conj(x_ft)·grad: 3*4*9 = 108 outputs, dots of 2):
    # 4 * 108 * 2 = 864 real MACs each, as the forward's
    assert ops["aten.bmm"].calls == 4
    assert ops["aten.bmm"].cost.macs == 4 * 864
    # irfft2's adjoint doubles the inner bins: 2*4*8*3 = 192 complex values times the real 2
    assert ops["aten.mul_"].cost.flops == 2 * 192


# ---------------------------------------------------------------------- fft consistency
def test_a_complex_stft_window_costs_two_per_sample_in_both_counts():
    # torch.stft of a complex signal: the window multiply (complex times a real window, 2
    # per sample) and a complex transform per frame; the ONNX formula says the same
    frames = 2 * (1 + (80 - 16) // 4)  # 34 frames of 16 (center pads 64 -> 80)
    assert spectral.stft(frames, 16, real=False, windowed=True).flops == 2 * 544 + 34 * 5 * 16 * 4  # 11,968
    model = Fn(lambda s, window: torch.stft(s, 16, 4, window=window, return_complex=True))
    report = both(model, (c(2, 64), torch.hann_window(16)))
    assert report.by_operator()["aten.mul"].cost.flops == 2 * 544
    assert report.flops == 11_968


# --------------------------------------------------------------------------- roofline
def test_complex_peaks_are_their_parts_peaks():
    hw = Hardware(name="x", peak_flops={"float32": 10e12, "float64": 1e12, "float16": 40e12}, bandwidth=1e12)
    assert hw.peak("complex64") == 10e12
    assert hw.peak("complex128") == 1e12  # before probe 14: float32's, 10x too fast here
    assert hw.peak(torch.complex128) == 1e12


def test_a_complex128_model_takes_the_float64_peak():
    model = nn.Linear(64, 64).to(torch.complex128)
    report = flopmeter.profile(model, c(8, 64).to(torch.complex128))
    roofline = report.roofline("l4")
    # 8*64 outputs of 64 complex MACs, + bias: 512 * (64*6 + 63*2 + 2) = 262,144 real FLOPs
    assert report.flops == 262_144
    assert roofline.dtype == "complex128"
    hw = flopmeter.hardware.get("l4")
    assert hw.peak("complex128") == hw.peak("float64")


# ----------------------------------------------------------------- other dtypes, layouts
class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.bn(self.conv(x))).mean((2, 3)))


def test_channels_last_counts_as_contiguous():
    model, x = SmallNet().eval(), torch.randn(2, 3, 8, 8)
    plain = flopmeter.profile(model, x)
    model_cl = SmallNet().eval().to(memory_format=torch.channels_last)
    last = both(model_cl, x.to(memory_format=torch.channels_last))
    assert (last.macs, last.flops, last.total.bytes_read, last.total.bytes_written) == (
        plain.macs,
        plain.flops,
        plain.total.bytes_read,
        plain.total.bytes_written,
    )
    # conv: 2*8*64 = 1,024 outputs of 27 terms: 27,648 MACs
    assert plain.by_module()["conv"].total.macs == 27_648


def test_integer_matmuls_count_macs_not_flops():
    a = torch.randint(-5, 5, (32, 64), dtype=torch.int8)
    b = torch.randint(-5, 5, (64, 32), dtype=torch.int8)
    for fn in (torch.matmul, torch._int_mm):
        report = both(Fn(fn), (a, b))
        assert report.macs == 32 * 64 * 32  # 65,536 integer MACs
        assert report.flops == 0  # integer arithmetic is not FLOPs
        assert report.total.bytes_read == 2 * 32 * 64  # 1 B each: 4,096
    # int8 @ int8 via matmul gives int8 (1 B), _int_mm int32 (4 B): 32*32 outputs
    assert both(Fn(torch.matmul), (a, b)).total.bytes_written == 32 * 32
    assert both(Fn(torch._int_mm), (a, b)).total.bytes_written == 32 * 32 * 4


def test_bool_and_uint8_inputs_into_elementwise_ops():
    mask, small = torch.rand(10) > 0.5, torch.randint(0, 9, (10,), dtype=torch.uint8)
    x = torch.randn(10)
    assert both(Fn(lambda u: u + u), (small,)).flops == 0  # uint8 arithmetic: integer work
    assert both(Fn(lambda m, u: m & (u > 3)), (mask, small)).flops == 0
    assert both(Fn(lambda v, m: v * m), (x, mask)).flops == 10  # a float result: 1 each
    report = both(Fn(lambda v, u: v + u), (x, small))
    assert report.flops == 10
    assert report.total.bytes_read == 10 * 4 + 10 * 1  # float32 and uint8: 50


@pytest.mark.parametrize(("dtype", "size"), [(torch.float16, 2), (torch.bfloat16, 2), (torch.float64, 8)])
def test_other_float_dtypes_count_the_same_work_with_their_bytes(dtype, size):
    x = torch.randn(2, 3, 8, 8)
    plain = flopmeter.profile(SmallNet().eval(), x)
    model = SmallNet().eval().to(dtype)
    report = both(model, x.to(dtype))
    built = flopmeter.profile(model, input_shape=(2, 3, 8, 8), shapes_only=True)
    assert built.inputs[0]["dtype"] == str(dtype).removeprefix("torch.")
    assert report.flops == plain.flops == built.flops
    # every tensor is `size` bytes a value where float32's are 4
    assert report.total.bytes_read * 4 == plain.total.bytes_read * size
    assert built.total.bytes_written * 4 == plain.total.bytes_written * size


def test_formula_constants():
    # (a + bi)(c + di) = (ac - bd) + (ad + bc)i
    assert complex_values.MUL == 4 + 2 and complex_values.REAL_MACS_PER_COMPLEX_MAC == 4
    # ((ac + bd) + (bc - ad)i) / (c^2 + d^2): 6 multiplies, 3 adds, 2 divides
    assert complex_values.DIV == 6 + 3 + 2
    # the contraction rule from a real count: M = 512, F = 960 (4x8 @ 8x16) -> 4*512 + 2*960
    cost = complex_values.contraction(flopmeter.Cost(macs=512, flops=960, ptflops_macs=512))
    assert (cost.macs, cost.flops, cost.ptflops_macs) == (2_048, 3_968, 2_048)


def test_the_peers_count_a_complex_op_as_if_it_were_real():
    """docs/conventions.md, "Complex numbers": ours is 4x theirs on complex contractions."""
    from torch.utils.flop_counter import FlopCounterMode

    a, b = c(4, 8), c(8, 16)
    with FlopCounterMode(display=False) as counter:
        torch.matmul(a, b)
    assert counter.get_total_flops() == 2 * 4 * 8 * 16  # 1,024, as for a real matmul
    report = flopmeter.profile(Fn(torch.matmul), (a, b))
    assert report.flops_as("2mac") == 4 * 1_024
    fvcore = pytest.importorskip("fvcore.nn")
    with warnings.catch_warnings():  # fvcore warns of the ops it skips
        warnings.simplefilter("ignore")
        assert fvcore.FlopCountAnalysis(Fn(torch.matmul), (a, b)).total() == 4 * 8 * 16  # 512
    assert report.flops_as("mac") == 4 * 512
    ptflops = pytest.importorskip("ptflops")
    linear = nn.Linear(8, 5).to(torch.complex64)
    macs, _ = ptflops.get_model_complexity_info(
        linear,
        (3, 8),
        as_strings=False,
        print_per_layer_stat=False,
        input_constructor=lambda shape: torch.randn(1, *shape, dtype=torch.complex64),
    )
    assert macs == 3 * 8 * 5 + 3 * 5  # 135: MACs + bias adds, as if real
    ours = flopmeter.get_model_complexity_info(linear, (3, 8), as_strings=False, print_per_layer_stat=False)
    assert ours[0] == 4 * 120 + 2 * 15  # real MACs + 2 per complex bias add: 510


def test_eig_of_a_real_matrix_is_real_arithmetic_of_a_complex_one_complex():
    """linalg.eig returns complex values for a real matrix, but LAPACK's real geev computes
    them: real FLOPs; a complex matrix's eig is complex arithmetic (a MAC 4 real MACs)."""
    real = both(Fn(lambda a: torch.linalg.eig(a)[0]), (torch.randn(4, 4),))
    assert (real.macs, real.flops) == (800, 1600)  # 25*4**3 = 1,600 FLOPs, MACs half
    cplx = both(Fn(lambda a: torch.linalg.eig(a)[0]), (c(4, 4),))
    assert cplx.macs == 4 * 800  # 3,200 real MACs
    assert cplx.flops == 4 * 800 + 2 * 1600  # 4·M + 2·F = 6,400
