"""Counting on shapes alone (meta tensors) gives the numbers of a real run, faster."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import flopmeter


def models():
    torchvision = pytest.importorskip("torchvision")
    transformers = pytest.importorskip("transformers")
    vit = torchvision.models.vit_b_16().eval()
    vit.encoder.layers = vit.encoder.layers[:2]
    llama = transformers.AutoModel.from_config(
        transformers.LlamaConfig(
            num_hidden_layers=2,
            hidden_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=128,
        )
    ).eval()
    ids = {
        "input_ids": torch.zeros(1, 16, dtype=torch.long),
        "attention_mask": torch.ones(1, 16, dtype=torch.long),
    }
    return {
        "resnet18": (torchvision.models.resnet18(), torch.randn(2, 3, 64, 64)),
        "vit": (vit, torch.randn(1, 3, 224, 224)),
        "mobilenet_v3_small": (torchvision.models.mobilenet_v3_small(), torch.randn(1, 3, 96, 96)),
        "lstm": (nn.LSTM(16, 32, num_layers=2), torch.randn(10, 1, 16)),
        "llama": (llama, ids),
        "bert": (
            transformers.BertModel(
                transformers.BertConfig(
                    num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128
                )
            ).eval(),
            ids,
        ),
    }


@pytest.mark.parametrize("name", ["resnet18", "vit", "mobilenet_v3_small", "lstm", "llama", "bert"])
def test_shapes_only_equals_a_real_run(name):
    model, inputs = models()[name]
    fast = flopmeter.profile(model, inputs)  # the default: shapes first
    real = flopmeter.profile(model, inputs, shapes_only=False)
    # nn.LSTM checks in Python that input and weights share a device: it falls back to values
    assert fast.options["computed"] == ("values" if name == "lstm" else "shapes")
    assert real.options["computed"] == "values"
    assert fast.total == real.total  # MACs, FLOPs, ptflops MACs, bytes: all the same
    assert {n: m.total for n, m in fast.modules.items()} == {n: m.total for n, m in real.modules.items()}
    assert fast.unsupported_ops() == real.unsupported_ops() == {}
    if name != "vit":
        assert fast.peak_activation_bytes == real.peak_activation_bytes
    # vit: nn.MultiheadAttention's inner SDPA runs the math path on meta (it materializes the
    # score matrix) but the flash kernel on the CPU: peak memory follows the kernels that run


class NeedsValues(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        return y * 2 if y.sum() > 0 else y  # branches on a float value


def test_falls_back_to_a_real_run_when_the_model_needs_values():
    report = flopmeter.profile(NeedsValues(), torch.randn(1, 4))
    assert report.options["computed"] == "values"
    assert report.macs == 16
    with pytest.raises(flopmeter.ModelError, match="meta"):
        flopmeter.profile(NeedsValues(), torch.randn(1, 4), shapes_only=True)


@pytest.mark.parametrize(
    "name",
    [
        "convnext_tiny",
        "swin_tiny_patch4_window7_224",
        "mixer_b16_224",
        "mobilevit_xxs",
        "eva02_tiny_patch14_224",
    ],
)
def test_timm_models_count_the_same_on_shapes(name):
    timm = pytest.importorskip("timm")
    model = timm.create_model(name, pretrained=False).eval()
    x = torch.randn(1, *model.pretrained_cfg.get("input_size", (3, 224, 224)))
    fast, real = flopmeter.profile(model, x), flopmeter.profile(model, x, shapes_only=False)
    assert fast.options["computed"] == "shapes" and fast.unsupported_ops() == {}
    assert (fast.macs, fast.flops, fast.flops_as("ptflops")) == (
        real.macs,
        real.flops,
        real.flops_as("ptflops"),
    )
    assert fast.total == real.total  # bytes too


class _Attention(nn.Module):
    """SDPA of heads permuted out of one projection (a fused CPU kernel writes its output
    laid out like the query, the math path contiguous: the reshape after copies in one
    case only), optionally under sdpa_kernel([MATH])."""

    def __init__(self, math_only: bool) -> None:
        super().__init__()
        self.math_only = math_only
        self.qkv, self.out = nn.Linear(32, 96), nn.Linear(32, 32)

    def forward(self, x):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        batch, length, _ = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, 4, 8).permute(2, 0, 3, 1, 4)
        if self.math_only:
            with sdpa_kernel([SDPBackend.MATH]):
                y = F.scaled_dot_product_attention(q, k, v)
        else:
            y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(batch, length, 32))


@pytest.mark.parametrize("math_first", [False, True])
def test_sdpa_backend_restriction_is_followed_call_by_call(math_first):
    """Two attention calls of one shape, one restricted to the math backend: the shapes-only
    run follows each call's backend (the choice is not reused across the restriction), so
    its traffic and copies equal the values run's: one reshape copy, after the math call."""
    model, x = nn.Sequential(_Attention(math_first), _Attention(not math_first)), torch.randn(2, 16, 32)
    fast = flopmeter.profile(model, x)
    real = flopmeter.profile(model, x, shapes_only=False)
    assert fast.options["computed"] == "shapes"
    assert fast.total == real.total
    assert fast.by_operator()["aten.clone"].calls == real.by_operator()["aten.clone"].calls == 1


def test_the_first_profile_in_a_process_has_the_same_peak_as_the_next():
    """In a fresh interpreter (torch imports torch._dynamo lazily, once per process, on
    the first Python meta kernel): the first profile's peak equals the second's and the
    values run's. Before, the import inside the run kept a cast copy alive: 8196 vs 8192."""
    import subprocess
    import sys

    script = """
import torch, torch.nn as nn, flopmeter
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
    def forward(self, x):
        return torch.cat([self.conv(x), x.half().float()[:, :2]], 1).sum()
x = torch.randn(2, 3, 8, 8)
peaks = [flopmeter.profile(Model(), x).peak_activation_bytes for _ in range(2)]
print(*peaks, flopmeter.profile(Model(), x, shapes_only=False).peak_activation_bytes)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    first, second, values = map(int, result.stdout.split())
    # x 2*3*8*8*4 = 1536 (held throughout), conv out 2*4*8*8*4 = 2048, half 768, float 1536,
    # cat 2*6*8*8*4 = 3072: peak at the cat = 1536 + 2048 + 1536 + 3072 = 8192
    assert first == second == values == 8192


def test_a_float32_mixture_of_experts_counts_on_shapes_apart_from_its_device_dependent_histogram():
    """transformers' MoE picks its histogram's dtype by device type: float on the CPU, int
    elsewhere (meta included). MACs and bytes are equal either way; the exact FLOPs differ
    by the float histogram and its cumsum, 2 layers * (3 * 32 expert ids + 3 adds over 4
    bins) = 2 * 99 = 198 (docs/meta.md)."""
    transformers = pytest.importorskip("transformers")
    config = transformers.MixtralConfig(
        vocab_size=100,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,  # 16 tokens * top 2 = 32 expert ids per layer
    )
    torch.manual_seed(0)
    model = transformers.MixtralModel(config).eval()
    ids = {"input_ids": torch.randint(0, 100, (1, 16))}
    shapes = flopmeter.profile(model, ids, shapes_only=True)
    values = flopmeter.profile(model, ids, shapes_only=False)
    assert shapes.macs == values.macs
    assert (shapes.forward.bytes_read, shapes.forward.bytes_written) == (
        values.forward.bytes_read,
        values.forward.bytes_written,
    )
    assert values.flops - shapes.flops == 198
    assert values.operators["aten.histc"].cost.flops == 2 * 3 * 32
    assert shapes.operators["aten.histc"].cost.flops == 0  # integer binning on meta


class _NumberWrittenIntoASlice(nn.Module):
    """torchvision's Swin builds its shifted-window mask so: ``mask[h0:h1, w0:w1] = count``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x.new_zeros(4, 4)
        mask[0:2, 0:2] = 3
        return x + mask


def test_a_number_written_into_a_slice_costs_a_few_bytes_more_on_shapes():
    """torch's indexing writes a Python number into a CPU tensor with ``fill_`` (its value a
    0-d constant, ``lift_fresh``), into a tensor on another device (meta too) with a
    ``copy_`` from a new 0-d tensor (``scalar_tensor``) expanded over the slice. MACs and
    FLOPs are equal; the bytes differ by that copy (docs/meta.md, README)."""
    x = torch.randn(4, 4)
    shapes = flopmeter.profile(_NumberWrittenIntoASlice(), x, shapes_only=True)
    values = flopmeter.profile(_NumberWrittenIntoASlice(), x, shapes_only=False)
    assert (shapes.macs, shapes.flops) == (values.macs, values.flops) == (0, 16)  # the add: 4*4
    assert values.operators["aten.fill_"].cost.bytes_read == 20  # the 2x2 slice 16 + the 0-d value 4
    assert (
        shapes.operators["aten.copy_"].cost.bytes_read == 32
    )  # the slice 16 + the expanded value as 2x2, 16
    assert shapes.operators["aten.scalar_tensor"].cost.bytes_written == 4  # the value, made on meta
    assert shapes.total.bytes_read - values.total.bytes_read == 32 - 20
    assert shapes.total.bytes_written - values.total.bytes_written == 4
