"""Probe 11 (docs/probe-11/dynamic.md): supernets that run a slice of their weights,
dynamic depth, weight sharing and torch.func, each toy with its counts worked out by hand.

Conventions used below: a Linear(in -> out) on B rows is B*in*out MACs and, with its bias,
2*B*in*out exact FLOPs ((2*in - 1) per output, + 1 for the bias); without a bias
(2*in - 1)*out*B. Params are what the model holds, each tensor once."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, stack_module_state, vmap
from torch.nn import functional as F

import flopmeter


# ----------------------------------------------------------------- supernets (slices)
class SlimLinear(nn.Linear):
    """A slimmable Linear: runs the top-left ``active_out x active_in`` corner of its weight."""

    def __init__(self, fin: int, fout: int) -> None:
        super().__init__(fin, fout)
        self.active_in, self.active_out = fin, fout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight[: self.active_out, : self.active_in]
        return F.linear(x, w, self.bias[: self.active_out])


class SlimNet(nn.Module):
    """Supernet Linear(16, 32) -> ReLU -> Linear(32, 8); subnet 8 -> 16 -> 8."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = SlimLinear(16, 32), SlimLinear(32, 8)
        self.fc1.active_in, self.fc1.active_out, self.fc2.active_in = 8, 16, 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class ElasticConv(nn.Conv2d):
    """Once-for-all's elastic kernel: a depthwise 7x7 whose centre 3x3 is cropped and
    passed through a learned 9x9 transform (a Linear on the 9 taps) when active_k == 3."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, channels, 7, padding=3, groups=channels, bias=False)
        self.transform = nn.Parameter(torch.eye(9))
        self.active_k = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, w = self.active_k, self.weight
        if k < 7:
            start = (7 - k) // 2
            w = w[:, :, start : start + k, start : start + k]
            w = F.linear(w.reshape(w.shape[0], w.shape[1], k * k), self.transform).view_as(w)
        return F.conv2d(x, w, None, 1, k // 2, 1, self.in_channels)


def test_a_slimmable_subnet_counts_its_active_macs_and_the_params_the_model_holds():
    report = flopmeter.profile(SlimNet(), torch.randn(2, 8))
    # params: the whole supernet, 16*32 + 32 + 32*8 + 8 = 808 (what the model holds;
    # ptflops, fvcore and thop say the same; OFA counts a subnet after extracting it)
    assert report.params == 808
    rows = report.by_module()
    assert (rows["fc1"].params, rows["fc2"].params) == (544, 264)
    # MACs: the active slices, fc1 2*8*16 = 256, fc2 2*16*8 = 256
    assert (rows["fc1"].total.macs, rows["fc2"].total.macs, report.macs) == (256, 256, 512)
    # FLOPs: 2*B*in*out per Linear with bias: 512 + 512, + ReLU on 2*16 = 32 -> 1,056
    assert (rows["fc1"].total.flops, rows["fc2"].total.flops, report.flops) == (512, 512, 1056)
    # the weight traffic is the slice read: fc1 (16*8 + 16) * 4 B = 576, fc2 (8*16 + 8) * 4 = 544
    assert (rows["fc1"].total.weight_bytes, rows["fc2"].total.weight_bytes) == (576, 544)


def test_the_compression_view_does_not_apply_the_whole_weights_zeros_to_a_slices_work():
    model = SlimNet()
    with torch.no_grad():
        model.fc1.weight[16:] = 0  # the supernet's inactive rows pruned; the active slice is dense
    view = flopmeter.profile(model, torch.randn(2, 8), compression=True).compression
    # before: fc1 "channel", 50 % sparse (256 of 512 weights zero), MACs effective
    # 256 * 256 / 512 = 128, though all 8*16 active weights are nonzero: 256 run
    assert view.sliced == ["fc1", "fc2"]
    assert view.layers["fc1"].weight_nonzero is None and view.layers["fc1"].sparsity is None
    assert view.layers["fc1"].macs_effective == 256
    assert view.macs_effective == 512 and view.params == 808
    # a what-if on bits keeps the slice's nonzeros unknown; one on sparsity assumes them
    assert view.assume(bits="w8a8").layers["fc1"].macs_effective == 256
    assert view.assume(sparsity=0.5).layers["fc1"].macs_effective == 128  # 256 * 0.5


def test_a_whole_weight_read_keeps_its_nonzeros():
    model = ElasticConv(4)
    model.active_k = 7  # the whole 7x7 kernel: not a slice
    with torch.no_grad():
        model.weight.zero_()
        model.weight[:, :, 2:5, 2:5] = 1  # 4 * 9 = 36 nonzeros of 196
    report = flopmeter.profile(model, torch.randn(1, 4, 8, 8), compression=True)
    assert report.compression.sliced == []
    # 4 channels * 64 positions * 49 taps = 12,544 MACs
    assert report.macs == 12_544
    # weights: the kernel (196, 36 nonzero) and the unused transform (81, 9 nonzero)
    assert report.compression.layers[""].weight_nonzero == 45


class ChunkedQKV(nn.Linear):
    """Linear(8, 24) read as three Linear(8, 8): weight.chunk(3), each part once."""

    def __init__(self) -> None:
        super().__init__(8, 24)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = zip(self.weight.chunk(3), self.bias.chunk(3), strict=True)
        return sum(F.linear(x, w, b) for w, b in parts)


class ThreeTimes(nn.Module):
    """One Linear(8, 8) applied three times."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = self.layer(x)
        return x


def test_a_weight_read_whole_in_parts_or_by_every_call_keeps_its_nonzeros():
    model = ChunkedQKV()
    with torch.no_grad():
        model.weight[:8] = 0  # the first of the three parts pruned: 128 of 192 weights nonzero
    view = flopmeter.profile(model, torch.randn(2, 8), compression=True).compression
    # 3 parts x 2*8*8 = 384 MACs, effective 384 * 128 / 192 = 256
    assert view.sliced == [] and view.layers[""].macs_effective == 256
    shared = ThreeTimes()
    with torch.no_grad():
        shared.layer.weight[:, :4] = 0  # half the columns: 32 of 64 nonzero
    report = flopmeter.profile(shared, torch.randn(2, 8), compression=True)
    # 3 calls x 2*8*8 = 384 MACs, effective 384 * 32 / 64 = 192
    assert report.by_module()["layer"].calls == 3
    assert report.compression.sliced == [] and report.compression.macs_effective == 192


def test_an_elastic_kernel_counts_its_crop_and_transform():
    report = flopmeter.profile(ElasticConv(4), torch.randn(1, 4, 8, 8))
    # params: 4*49 kernel + 81 transform = 277 (the whole supernet kernel)
    assert report.params == 277
    # transform: Linear(9 -> 9, no bias) on 4 rows: 4*9*9 = 324 MACs, (2*9-1)*9*4 = 612 FLOPs;
    # depthwise 3x3 on 4 x 8 x 8: 4*64*9 = 2,304 MACs, (2*9-1)*4*64 = 4,352 FLOPs
    assert report.macs == 324 + 2304 == 2628
    assert report.flops == 612 + 4352 == 4964


def test_a_sliced_layer_is_named_in_the_compression_note():
    report = flopmeter.profile(SlimNet(), torch.randn(2, 8), compression=True)
    text = report.to_markdown(compression=True)
    assert "NOTE: fc1, fc2 read only part of their weights" in text
    assert report.to_dict()["compression"]["sliced"] == ["fc1", "fc2"]


class MixedOp(nn.Module):
    """A DARTS edge: softmax(alpha)-weighted sum of conv 3x3, conv 1x1 and identity; the
    architecture weights (normal and reduction cells') in an nn.ParameterList."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = nn.ModuleList(
            [nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.Conv2d(4, 4, 1, bias=False), nn.Identity()]
        )
        self.alphas = nn.ParameterList([nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(3))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = F.softmax(self.alphas[0], dim=0)
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))


def test_a_darts_edge_runs_every_candidate_and_prints_its_alphas_on_one_line():
    report = flopmeter.profile(MixedOp(), torch.randn(1, 4, 8, 8))
    # conv 3x3: 64 positions * 4 out * 4 in * 9 = 9,216 MACs; conv 1x1: 64*4*4 = 1,024
    assert report.macs == 9216 + 1024 == 10_240
    # params: 4*4*9 + 4*4 + 2*3 alphas = 166
    assert report.params == 166
    alphas = next(line for line in str(report).splitlines() if "(alphas)" in line)
    # before: nn.ParameterList's extra_repr broke the tree row over two lines
    assert alphas.endswith(
        "(0): Parameter containing: [torch.float32 of size 3], (1): Parameter containing: [torch.float32 of size 3])"
    )


# -------------------------------------------------------------- dynamic depth and loops
class EarlyExit(nn.Module):
    """Linear a; exits when the mean is positive, else runs Linear b too."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)
        with torch.no_grad():
            self.a.weight.copy_(torch.eye(4))
            self.a.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        if x.mean() > 0:
            return x
        return self.b(x)


@pytest.mark.parametrize(("sign", "macs", "b_calls"), [(1, 16, 0), (-1, 32, 1)])
def test_an_early_exit_counts_the_branch_a_real_run_takes(sign, macs, b_calls):
    report = flopmeter.profile(EarlyExit(), sign * torch.ones(1, 4))
    # a: 1*4*4 = 16 MACs; b another 16 only when the mean is not positive
    assert report.macs == macs
    assert report.by_module()["b"].calls == b_calls


def test_a_value_branch_on_shapes_only_or_on_a_meta_model_is_a_clear_error():
    with pytest.raises(flopmeter.ModelError, match="shapes_only=False"):
        flopmeter.profile(EarlyExit(), torch.ones(1, 4), shapes_only=True)
    with torch.device("meta"):
        model = EarlyExit.__new__(EarlyExit)
        nn.Module.__init__(model)
        model.a, model.b = nn.Linear(4, 4), nn.Linear(4, 4)
    # before: only "Check that the inputs match what the model expects."
    with pytest.raises(
        flopmeter.ModelError, match="meta device, which holds no values.*build the model on the CPU"
    ):
        flopmeter.profile(model, input_shape=(1, 4))


class HalveUntilSmall(nn.Module):
    """Applies Linear(4, 4, no bias) = 0.5 * I while max |x| > 0.1: from ones, 4 times."""

    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Linear(4, 4, bias=False)
        with torch.no_grad():
            self.f.weight.copy_(0.5 * torch.eye(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while x.abs().max() > 0.1:
            x = self.f(x)
        return x


def test_a_data_dependent_loop_counts_every_iteration_that_ran():
    report = flopmeter.profile(HalveUntilSmall(), torch.ones(1, 4))
    # 1 -> 0.5 -> 0.25 -> 0.125 -> 0.0625: 4 calls of 1*4*4 = 16 MACs
    assert report.by_module()["f"].calls == 4
    assert report.macs == 64


# ------------------------------------------------------------------- weight sharing
class Tied(nn.Module):
    """Embedding(10, 6) whose weight is also the output Linear(6 -> 10)'s."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.out = nn.Embedding(10, 6), nn.Linear(6, 10, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(ids))


def test_tied_embeddings_count_their_params_once():
    report = flopmeter.profile(Tied(), torch.tensor([[1, 2, 3]]))
    rows = report.by_module()
    # 10*6 = 60 params, at the first module that holds them; the Linear runs 3*6*10 = 180
    # MACs, (2*6 - 1)*10*3 = 330 FLOPs
    assert (report.params, rows["emb"].params, rows["out"].params) == (60, 60, 0)
    assert (report.macs, report.flops) == (180, 330)


def test_albert_shares_one_layer_across_its_depth():
    transformers = pytest.importorskip("transformers")
    config = transformers.AlbertConfig(
        vocab_size=100, embedding_size=16, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    model = transformers.AlbertModel(config).eval()
    report = flopmeter.profile(model, torch.randint(0, 100, (1, 8)))
    assert report.params == sum(p.numel() for p in model.parameters()) == 12_832
    layer = report.by_module()["encoder.albert_layer_groups.0.albert_layers.0"]
    # per call, S = 8, d = 32, FFN 64, 2 heads of 16: Q, K, V, O 4*8*32*32 = 32,768;
    # QK^T and AV 2 * 2*8*8*16 = 4,096; FFN 2*8*32*64 = 32,768 -> 69,632; x 3 calls
    assert layer.calls == 3 and layer.total.macs == 3 * 69_632 == 208_896
    # + embedding projection 8*16*32 = 4,096 + pooler 32*32 = 1,024
    assert report.macs == 208_896 + 4_096 + 1_024 == 214_016


# ----------------------------------------------------------------------- torch.func
class Ensemble(nn.Module):
    """vmap(functional_call) over 5 stacked copies of Linear(4, 3)."""

    def __init__(self) -> None:
        super().__init__()
        weights, _ = stack_module_state([nn.Linear(4, 3) for _ in range(5)])
        self.weight, self.bias = nn.Parameter(weights["weight"]), nn.Parameter(weights["bias"])
        self.base = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def one(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, {"weight": w, "bias": b}, (x,))

        return vmap(one, in_dims=(0, 0, None))(self.weight, self.bias, x)


class Swapped(nn.Module):
    """functional_call of its Linear(4, 3) with other weights."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(4, 3)
        self.other_w, self.other_b = nn.Parameter(torch.randn(3, 4)), nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.inner, {"weight": self.other_w, "bias": self.other_b}, (x,))


class VmapInside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.vmap(lambda v: self.w @ v)(x)


class InputGrad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad(lambda v: self.lin(v).sum())(x)


class Jacobian(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return jacrev(self.lin)(x)


TORCH_FUNC_CASES = {
    # Linear(4, 3) on 2 rows: 24 MACs, 2*2*4*3 = 48 FLOPs; params 2 x 15
    "functional_call": (Swapped, (2, 4), 30, 24, 48),
    # 5 models x 2 rows x 4 x 3 = 120 MACs; vmap runs addmm as bias * 1 (5*3 = 15) + bmm
    # ((2*4 - 1)*3*2*5 = 210) + add (5*2*3 = 30) = 255 FLOPs; params 5*15 + the template's 15
    "vmap ensemble": (Ensemble, (2, 4), 90, 120, 255),
    # 2 samples of a 3x4 matvec: 24 MACs, (2*4 - 1)*3*2 = 42 FLOPs
    "vmap inside": (VmapInside, (2, 4), 12, 24, 42),
    # forward 2*4*1 = 8 MACs ((2*4 - 1)*2 + 2 bias = 16 FLOPs), sum 1 FLOP, input grad
    # (2x1)@(1x4) = 8 MACs, (2*1 - 1)*4*2 = 8 FLOPs -> 16 MACs, 25 FLOPs
    "grad": (InputGrad, (2, 4), 5, 16, 25),
    # forward 12 MACs (7*3 + 3 = 24 FLOPs); 3 vector-Jacobian products batched: (3x3)@(3x4)
    # = 36 MACs, (2*3 - 1)*4*3 = 60 FLOPs -> 48 MACs, 84 FLOPs
    "jacrev": (Jacobian, (4,), 15, 48, 84),
}


@pytest.mark.parametrize("case", TORCH_FUNC_CASES)
def test_torch_func_counts_the_batched_work_and_leaves_the_model_as_it_was(case):
    build, shape, params, macs, flops = TORCH_FUNC_CASES[case]
    torch.manual_seed(0)
    model, x = build(), torch.randn(shape)
    expected = model(x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    report = flopmeter.profile(model, x)
    assert (report.params, report.macs, report.flops) == (params, macs, flops)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(not p.is_meta and p.requires_grad for p in model.parameters())
    assert torch.equal(model(x), expected)
    if case == "vmap ensemble":  # each op of vmap's addmm: bias * 1, bmm, + bias
        ops = report.by_operator()
        assert [ops[op].cost.flops for op in ("aten.mul", "aten.bmm", "aten.add")] == [15, 210, 30]


# ---------------------------------------------------------------------------- NAS loop
def test_random_subnets_profiled_in_one_process_stay_exact():
    model, x = SlimNet(), torch.randn(2, 16)
    rng = random.Random(0)
    for _ in range(20):
        fin, hidden = rng.choice([4, 8, 16]), rng.choice([8, 16, 24, 32])
        model.fc1.active_in, model.fc1.active_out, model.fc2.active_in = fin, hidden, hidden
        report = flopmeter.profile(model, x[:, :fin])
        # 2 rows: fc1 2*fin*hidden + fc2 2*hidden*8 MACs; params always the supernet's 808
        assert report.macs == 2 * fin * hidden + 2 * hidden * 8
        assert report.params == 808


class PerSampleGrads(nn.Module):
    """Per-sample weight gradients of an MSE loss: vmap(grad(loss)) over the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        params = {k: v.detach() for k, v in self.lin.named_parameters()}

        def loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
            return F.mse_loss(functional_call(self.lin, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))

        return vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)["weight"]


def test_per_sample_gradients_count_the_batched_forward_and_outer_products():
    report = flopmeter.profile(PerSampleGrads(), (torch.randn(5, 4), torch.randn(5, 3)))
    ops = report.by_operator()
    # forward of 5 samples as one mm: 5*4*3 = 60 MACs, (2*4 - 1)*3*5 = 105 FLOPs;
    # each sample's weight gradient, the outer product (3x1)(1x4), as one bmm: 5*3*1*4 = 60
    # MACs, (2*1 - 1)*3*4*5 = 60 FLOPs
    assert (ops["aten.mm"].cost.macs, ops["aten.mm"].cost.flops) == (60, 105)
    assert (ops["aten.bmm"].cost.macs, ops["aten.bmm"].cost.flops) == (60, 60)
    assert report.macs == 120


class SwitchableBN(nn.BatchNorm2d):
    """Slimmable batch norm: the first 4 of its 8 channels' statistics and affine."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return F.batch_norm(
            x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c], self.training, 0.1
        )


@pytest.mark.parametrize("options", [{}, {"shapes_only": False}, {"backward": True}])
def test_a_switchable_batch_norm_trained_on_a_slice_keeps_its_statistics(options):
    model = SwitchableBN(8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flopmeter.profile(model, torch.randn(2, 4, 3, 3) + 3, train=True, **options)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training


def test_a_slimmable_subnets_backward_counts_the_slices_gradients():
    report = flopmeter.profile(SlimNet(), torch.randn(2, 8), backward=True)
    # forward 512; fc2: input grad (2x8)(8x16) 256 + weight grad (8x2)(2x16) 256;
    # fc1: weight grad (16x2)(2x8) 256 (the input needs none) -> 512 + 768 = 1,280
    assert report.macs == 1280
    assert report.by_module()["fc2"].backward.macs == 512
    assert report.by_module()["fc1"].backward.macs == 256
