"""GPT-2 exported by dynamo, as a deploying user does it (probe 12): the default export and
``optimize=False``, set against the PyTorch profile of the same model."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import pytest

pytest.importorskip("onnx")
transformers = pytest.importorskip("transformers")
import torch  # noqa: E402

import flopmeter  # noqa: E402
from onnx_exports import TEXT_LENGTH, TokensToTensor, randomize  # noqa: E402

D, LAYERS, HEADS, VOCAB = 64, 2, 4, 100


@pytest.fixture(scope="module")
def gpt2() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_embd=D, n_layer=LAYERS, n_head=HEADS, vocab_size=VOCAB, n_positions=128
    )
    model = TokensToTensor(randomize(transformers.GPT2LMHeadModel(config)), True).eval()
    return model, torch.zeros(1, TEXT_LENGTH, dtype=torch.long)


def export(model: torch.nn.Module, ids: torch.Tensor, path: Path, optimize: bool) -> Path:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (ids,),
            str(path),
            dynamo=True,
            optimize=optimize,
            dynamic_shapes={"ids": {1: torch.export.Dim("T", max=128)}},
        )
    return path


def test_gpt2_dynamo_default_and_unoptimized_against_pytorch(gpt2, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model, ids = gpt2
    torch_report = flopmeter.profile(model, ids)
    # the materialized causal mask's add: layers x heads x T x T = 2 x 4 x 16 x 16 = 2,048
    mask_adds = LAYERS * HEADS * TEXT_LENGTH * TEXT_LENGTH
    optimized = flopmeter.profile_onnx(
        export(model, ids, tmp_path / "opt.onnx", True), dims={"T": TEXT_LENGTH}
    )
    assert optimized.macs == torch_report.macs
    assert optimized.flops == torch_report.flops + mask_adds
    # dynamo's optimizer folds the tied embedding's transpose for lm_head into a second tensor:
    # + vocab x d = 100 x 64 = 6,400 params
    assert optimized.params == torch_report.params + VOCAB * D
    # P12-U3: optimize=False writes tensor.split (c_attn's q, k, v) as SplitToSequence +
    # SequenceAt: counted (it was an error), and the tied table stays one tensor
    plain = flopmeter.profile_onnx(
        export(model, ids, tmp_path / "plain.onnx", False), dims={"T": TEXT_LENGTH}
    )
    assert plain.macs == torch_report.macs
    assert plain.params == torch_report.params
    # + 2 Sqrts of one scalar per attention (the score scale computed at run time): 2 x 2 = 4
    assert plain.flops == torch_report.flops + mask_adds + 2 * LAYERS
