"""Field-report cases decided as documented behaviour (docs/field-reports.md), and a check that
every test that document names exists."""

import re
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import flopmeter

ROOT = Path(__file__).parent.parent


def test_complex_contraction_counts_real_macs():
    """probe-1 G10, changed in probe 14: a complex contraction is counted in real arithmetic
    (docs/conventions.md, "Complex numbers"), as the FFTs beside it always were."""

    class ComplexMatMul(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 4, dtype=torch.complex64))

        def forward(self, x):
            return x @ self.w

    report = flopmeter.profile(ComplexMatMul(), torch.randn(2, 4, dtype=torch.complex64))
    assert report.macs == 4 * 32  # 2*4*4 = 32 complex MACs, 4 real MACs each: 128
    # 2*4 outputs, each 4 complex multiplies (6 real FLOPs) and 3 complex adds (2): 8*(24 + 6) = 240
    assert report.flops == 240
    assert report.unsupported_ops() == {}


def test_sequence_first_rnn_reads_its_batch_at_dim_1():
    """probe-1 D23, probe-3: a sequence-first GRU given (seq 10, batch 3, features 8) runs
    3 sequences, as torch takes it: the batch is 3, not the leading 10."""
    gru = nn.GRU(8, 16)
    x = torch.randn(10, 3, 8)
    report = flopmeter.profile(gru, x)
    # GRU per token: 3 gates * (8*16 + 16*16) = 1,152 MACs; 10 tokens * 3 sequences = 34,560
    assert report.batch_size == 3 and report.macs == 34_560
    assert report.per_sample()["macs"] == 11_520  # 34,560 / 3
    assert flopmeter.profile(gru, x, batch_size=10).batch_size == 10  # the caller's word wins
    first = flopmeter.profile(nn.GRU(8, 16, batch_first=True), torch.randn(3, 10, 8))
    assert first.batch_size == 3 and first.macs == 34_560


def _encoder(**options):
    layer = nn.TransformerEncoderLayer(8, 2, 16, **options)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


@pytest.mark.parametrize(
    "model, inputs, batch",
    [
        (nn.LSTM(8, 16), torch.randn(10, 3, 8), 3),  # (seq, batch, features)
        (nn.MultiheadAttention(8, 2), (torch.randn(5, 3, 8),) * 3, 3),  # (L, N, E)
        (_encoder(), torch.randn(5, 3, 8), 3),  # read first by layers.0.self_attn
        (_encoder(norm_first=True), torch.randn(5, 3, 8), 3),  # read first by layers.0.norm1
        (nn.Transformer(8, 2, 1, 1, 16), (torch.randn(5, 3, 8), torch.randn(4, 3, 8)), 3),
        (_encoder(batch_first=True), torch.randn(3, 5, 8), 3),  # batch-first: the leading dim
        # sequences of 3 and 1 tokens, packed: data is (4, 4), batch_sizes [2, 1, 1]
        (nn.GRU(4, 8), (nn.utils.rnn.pack_padded_sequence(torch.randn(3, 2, 4), [3, 1]),), 2),
        # the embedding reads the (seq 7, batch 3) ids first, not the LSTM: the leading dim
        (nn.Sequential(nn.Embedding(10, 8), nn.LSTM(8, 8)), torch.zeros(7, 3, dtype=torch.long), 7),
    ],
    ids=[
        "lstm",
        "mha",
        "encoder",
        "encoder-norm-first",
        "transformer",
        "batch-first",
        "packed",
        "embedding-first",
    ],
)
def test_the_batch_is_where_the_sequence_layer_reading_the_input_keeps_it(model, inputs, batch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's nested-tensor advice for sequence-first layers
        assert flopmeter.profile(model, inputs).batch_size == batch


@pytest.mark.parametrize(
    "layer, x, macs",
    [
        (nn.Conv2d(3, 4, 3), torch.randn(3, 8, 8), 3_888),  # 4*6*6 outputs * 3*3*3 = 3,888
        (nn.Conv1d(3, 4, 3), torch.randn(3, 8), 216),  # 4*6 outputs * 3*3 = 216
        (nn.Linear(8, 4), torch.randn(8), 32),  # 8*4 = 32
    ],
)
def test_an_unbatched_sample_is_a_batch_of_one(layer, x, macs):
    """probe-2: torch's layers take an input without its batch dimension as one sample
    (they make it (1, *shape) first); so does the batch size, instead of reading the
    channels or features as the batch."""
    report = flopmeter.profile(layer, x)
    assert report.batch_size == 1
    assert report.macs == report.per_sample()["macs"] == macs
    batched = flopmeter.profile(layer, x.unsqueeze(0).expand(2, *x.shape).contiguous())
    assert batched.batch_size == 2 and batched.per_sample()["macs"] == macs
    assert flopmeter.profile(layer, x, batch_size=3).batch_size == 3  # the caller's word wins


def test_a_detection_models_batch_is_its_number_of_images():
    """probe-2: torchvision detection models take a list of (C, H, W) images; the batch is
    how many, not the first image's 3 channels (per_sample() had divided by 3)."""
    tv = pytest.importorskip("torchvision")
    model = tv.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)
    model.eval()
    one = flopmeter.profile(model, ([torch.rand(3, 160, 160)],))
    two = flopmeter.profile(model, ([torch.rand(3, 160, 160), torch.rand(3, 160, 160)],))
    assert (one.batch_size, two.batch_size) == (1, 2)
    assert two.per_sample()["macs"] == one.macs  # same-size images: each costs what one does
    with pytest.raises(ValueError, match="no images"):
        flopmeter.profile(model, ([],))
    images = [torch.rand(3, 160, 160), torch.rand(3, 160, 160)]
    assert flopmeter.profile(model, {"images": images}).batch_size == 2  # by keyword
    assert flopmeter.profile(model, {"targets": None, "images": images}).batch_size == 2

    class Wrapped(nn.Module):  # a detector inside the user's own module
        def __init__(self) -> None:
            super().__init__()
            self.detector = model

        def forward(self, images):
            return self.detector(images)

    assert flopmeter.profile(Wrapped().eval(), (images,)).batch_size == 2


def test_only_a_torch_layer_taking_one_sample_makes_a_batch_of_one():
    """An RNN or MultiheadAttention given one unbatched sequence is a batch of 1; a model's
    own code adding a dim to its batched input (a GRU's layer dim) is not (review of
    probe-2's fix)."""

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(8, 8)

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            return self.gru(hidden.unsqueeze(0))[0]  # (1, B, H): one step for a batch of B

    assert flopmeter.profile(Decoder(), torch.randn(5, 8)).batch_size == 5
    assert flopmeter.profile(nn.LSTM(8, 16), torch.randn(7, 8)).batch_size == 1  # (L, H_in)
    assert flopmeter.profile(nn.LSTM(8, 16, batch_first=True), torch.randn(7, 8)).batch_size == 1
    mha = nn.MultiheadAttention(8, 2)
    x = torch.randn(7, 8)  # (L, E): one unbatched sequence
    assert flopmeter.profile(mha, (x, x, x)).batch_size == 1
    assert flopmeter.profile(mha, (x[:, None].expand(7, 3, 8),) * 3).batch_size == 3  # (L, N, E): dim 1


def test_the_unbatched_rule_follows_the_input_not_its_shape():
    """A buffer of the input's shape read first ((32,) frequencies, 32 timesteps) is not the
    input: the batch stays 32 (review of probe-2's fix)."""

    class TimestepEmbedding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("freqs", torch.rand(32))

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.freqs[None] * t[:, None]  # the buffer is read first, as (1, 32)

    report = flopmeter.profile(TimestepEmbedding(), torch.rand(32))
    assert report.batch_size == 32
    assert report.per_sample()["flops"] == 32  # one multiply per frequency: 32 * 32 / 32


def _named_tests() -> list[tuple[str, str]]:
    """(file, test name) for every `tests/FILE.py::[Class::]test_name` in the document."""
    text = (ROOT / "docs" / "field-reports.md").read_text()
    return sorted(set(re.findall(r"`(tests/test_\w+\.py)::(?:Test\w+::)?(test_\w+)", text)))


def test_field_report_table_has_every_id_once():
    text = (ROOT / "docs" / "field-reports.md").read_text()
    rows = re.findall(r"^\| (probe-1|zoo-1) ([\w/ -]+?) \|", text, flags=re.M)
    ids = [f"{report} {case}" for report, case in rows]
    assert len(ids) == len(set(ids)), "an id has two rows"
    # 45 DEFECT + 48 ROUGH cases; paired ROUGH ids (A7/A8, C7/C8, ...) share a row
    assert len([i for i in ids if i.startswith("probe-1")]) >= 85
    assert len(_named_tests()) > 50


@pytest.mark.parametrize("path,name", _named_tests())
def test_every_test_named_in_field_reports_exists(path, name):
    source = (ROOT / path).read_text()
    assert re.search(rf"^\s*(?:async )?def {name}\(", source, flags=re.M), f"{path}::{name} not found"
