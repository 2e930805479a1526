"""torchvision's nms and roi_align formulas (hand counts), and formulas reading their
arguments by name or position alike (zoo-1 F2: SDPA called with keywords)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopmeter
from flopmeter.formulas import detection

torchvision = pytest.importorskip("torchvision")


class Nms(nn.Module):
    def forward(self, boxes, scores):
        return torchvision.ops.nms(boxes, scores, 0.5)


def boxes(n: int) -> torch.Tensor:
    corner = torch.rand(n, 2) * 10
    return torch.cat([corner, corner + 1 + torch.rand(n, 2) * 5], dim=1)


def test_nms_formula_by_hand():
    # sort 5*ceil(log2 5) = 15, areas 3*5 = 15, pairs 5*4/2 = 10 -> 13*10 = 130: 160
    assert detection.nms(5).flops == 160
    assert detection.nms(1).flops == 3  # one area, nothing to sort or compare
    assert detection.nms(0).flops == 0
    assert detection.nms(5).macs == 0


@pytest.mark.parametrize("shapes_only", [None, False])
def test_nms_is_counted_in_a_profile(shapes_only):
    report = flopmeter.profile(Nms(), (boxes(5), torch.rand(5)), shapes_only=shapes_only)
    assert not report.unsupported_ops()
    assert report.flops == 160  # as above: 15 + 15 + 130


class RoiAlign(nn.Module):
    def __init__(self, sampling_ratio: int) -> None:
        super().__init__()
        self.sampling_ratio = sampling_ratio

    def forward(self, x, rois):
        return torchvision.ops.roi_align(
            x, rois, (2, 2), spatial_scale=0.5, sampling_ratio=self.sampling_ratio
        )


def rois(k: int) -> torch.Tensor:
    return torch.cat([torch.zeros(k, 1), boxes(k)], dim=1)


def test_roi_align_formula_by_hand():
    # 3 rois, 2 channels, 2x2 bins, 2x2 samples: outputs 3*2*4 = 24, each 8*4 = 32 -> 768;
    # sample points 3*4*4 = 48, each 8 -> 384: 1,152
    assert detection.roi_align(3, 2, 4, 4).flops == 1152


@pytest.mark.parametrize("shapes_only", [None, True, False])
def test_roi_align_is_counted_in_a_profile(shapes_only):
    model = RoiAlign(sampling_ratio=2)
    report = flopmeter.profile(model, (torch.randn(1, 2, 8, 8), rois(3)), shapes_only=shapes_only)
    assert not report.unsupported_ops()
    assert report.flops == 1152  # as above


def test_roi_align_adaptive_sampling_counts_one_sample_per_bin():
    report = flopmeter.profile(RoiAlign(sampling_ratio=-1), (torch.randn(1, 2, 8, 8), rois(3)))
    # outputs 24 * 8 = 192, sample points 3*4*1 = 12 * 8 = 96: 288 (a documented lower bound)
    assert report.flops == 288


class KeywordAttention(nn.Module):
    def __init__(self, style: str) -> None:
        super().__init__()
        self.style = style

    def forward(self, q):
        mask = torch.ones(8, 8, dtype=torch.bool, device=q.device).tril()
        if self.style == "keywords":  # as diffusers' attention dispatcher calls it
            return F.scaled_dot_product_attention(query=q, key=q, value=q, attn_mask=mask)
        if self.style == "mixed":
            return F.scaled_dot_product_attention(q, key=q, value=q, attn_mask=mask)
        return F.scaled_dot_product_attention(q, q, q, mask)


@pytest.mark.parametrize("style", ["keywords", "mixed", "positional"])
@pytest.mark.parametrize("shapes_only", [None, False])
def test_sdpa_by_keyword_or_position(style, shapes_only):
    report = flopmeter.profile(KeywordAttention(style), torch.randn(1, 2, 8, 4), shapes_only=shapes_only)
    # per head (2 heads): Q.K^T 8*8*4 = 256 MACs, A.V 8*8*4 = 256 MACs: 2*512 = 1,024
    assert report.macs == 1024
    # FLOPs per head: QK 8*8*(2*4-1) = 448, scale 64, mask 64, softmax 8*(5*8-2) = 304,
    # AV 8*4*(2*8-1) = 480: 1,360; two heads: 2,720
    assert report.flops == 2720


def test_multi_head_attention_forward_by_keyword():
    mha = nn.MultiheadAttention(16, 4)
    x = torch.randn(5, 2, 16)

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return F.multi_head_attention_forward(
                query=x,
                key=x,
                value=x,
                embed_dim_to_check=16,
                num_heads=4,
                in_proj_weight=self.mha.in_proj_weight,
                in_proj_bias=self.mha.in_proj_bias,
                bias_k=None,
                bias_v=None,
                add_zero_attn=False,
                dropout_p=0.0,
                out_proj_weight=self.mha.out_proj.weight,
                out_proj_bias=self.mha.out_proj.bias,
                training=False,
            )[0]

    # projections 3 * 10 tokens * 16 * 16 = 7,680 + out 2,560; attention 8 heads * 5*5*4 * 2 = 1,600
    assert flopmeter.profile(Functional(), x).macs == 11840
    assert flopmeter.profile(mha, (x, x, x)).macs == 11840


def test_encoder_layer_fast_path_without_mask():
    """The fused encoder op's trailing mask arguments are left out when not given."""
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True).eval()
    attn, n1, n2 = layer.self_attn, layer.norm1, layer.norm2

    class Fused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, x):
            return torch._transformer_encoder_layer_fwd(
                x, 16, 4, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight, attn.out_proj.bias,
                False, False, n1.eps, n1.weight, n1.bias, n2.weight, n2.bias,
                layer.linear1.weight, layer.linear1.bias, layer.linear2.weight, layer.linear2.bias,
            )  # fmt: skip

    report = flopmeter.profile(Fused(), torch.randn(2, 5, 16), shapes_only=False)
    # q, k, v, out projections 4 * 10 tokens * 16 * 16 = 10,240; attention 2 * 4 heads *
    # (5*5*4) * 2 = 1,600; feed-forward 10 * 16 * 32 * 2 = 10,240: 22,080
    assert report.macs == 22080
    assert flopmeter.profile(layer, torch.randn(2, 5, 16)).macs == 22080


def test_handlers_index_only_required_positional_arguments():
    """aten ops reach the recorder with their schema's positional arguments in place but
    trailing defaults left out, so ``event.args[i]`` is safe only for a required argument;
    anything optional must go through ``event.arg(i, name, default)``."""
    import inspect
    import re

    from flopmeter import registry

    unsafe = []
    for op, handler in registry._HANDLERS.items():
        namespace, name = op.split(".", 1)
        packet = (
            getattr(getattr(torch.ops, namespace), name, None)
            if namespace in ("aten", "torchvision")
            else None
        )
        if packet is None:
            continue
        source = inspect.getsource(handler)
        used = {int(i) for i in re.findall(r"event\.args\[(\d+)\]", source)}
        for start, stop in re.findall(r"event\.args\[(\d+):(\d+)\]", source):
            used |= set(range(int(start), int(stop)))
        for overload in packet.overloads():
            positional = [a for a in getattr(packet, overload)._schema.arguments if not a.kwarg_only]
            unsafe += [
                (op, overload, i) for i in used if i >= len(positional) or positional[i].has_default_value()
            ]
    assert unsafe == []
