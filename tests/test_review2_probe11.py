"""Probe 11, second code review (docs/probe-11/code-review-2.md): sparse tensors the model
holds in containers, the encoder fast-path warning's conditions."""

from __future__ import annotations

import warnings

import torch
from torch import nn

import flopmeter

SOURCES = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4])
TARGETS = torch.tensor([1, 2, 3, 4, 0, 2, 4, 1])


class HeldInAList(nn.Module):
    """A fixed graph's adjacency kept in a list attribute (one per relation, say)."""

    def __init__(self) -> None:
        super().__init__()
        adjacency = torch.sparse_coo_tensor(torch.stack([TARGETS, SOURCES]), torch.ones(8), (5, 5))
        self.adjacencies = [adjacency.coalesce()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(self.adjacencies[0], x)


def test_a_sparse_tensor_held_in_a_list_attribute_is_the_models_like_a_plain_one() -> None:
    """R11b-1: the roles now come from the state guard's list of held tensors (one walk of the
    modules' dicts, not two); a sparse tensor the model holds, in a list as in a plain
    attribute, keeps the dense count (docs/formulas.md, sparse products)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = flopmeter.profile(HeldInAList(), (torch.randn(5, 4),))
    # the dense 5x5 @ 5x4: 5*5*4 = 100 MACs, (2*5 - 1)*5*4 = 180 FLOPs (its nnz 8 would be 32 / 64)
    assert (report.macs, report.flops) == (100, 180)
    # its 8 stored values * 4 bytes are the model's (weight bytes), not an activation's
    assert report.by_operator()["aten._sparse_addmm"].cost.weight_bytes == 8 * 4


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1)

    def forward(
        self, x: torch.Tensor, padding: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.encoder(x, mask=mask, src_key_padding_mask=padding)


def test_the_fast_path_warning_names_the_conditions_torch_checks_after_it_can_see() -> None:
    """R11b-2: with a causal ``mask`` beside the padding mask torch takes no fast path (its
    "src_key_padding_mask and mask were both supplied"), yet the mask check ran: the warning
    cannot tell, so it names that condition (and the others) instead of stating it as fact."""
    padding = torch.tensor([[False] * 4, [False, False, True, True]])
    causal = nn.Transformer.generate_square_subsequent_mask(4).bool()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flopmeter.profile(Encoder().eval(), (torch.randn(2, 4, 8), padding, causal))
    notes = [str(w.message) for w in caught if issubclass(w.category, flopmeter.FlopmeterWarning)]
    fast = [note for note in notes if "skips the padded tokens" in note]
    assert fast and "no `mask` beside the padding mask" in fast[0] and "padding at its end" in fast[0]


def test_calibration_figures_computed_with_numpy_are_numbers_too() -> None:
    """R11b-3: P11-P20 took numpy scalars for the peak and bandwidth only; the calibration's
    overheads and efficiencies (an np.median of timings) were refused as "seconds >= 0"."""
    import numpy as np

    from flopmeter.hardware import Hardware

    spec = Hardware(
        "calibrated",
        peak_flops=1e13,
        bandwidth=2e12,
        op_overhead={"default": np.float32(5e-6)},
        module_overhead=np.float64(1e-6),
        efficiency={"matmul": np.float32(0.5)},
    )
    assert spec.overhead("matmul") == float(np.float32(5e-6))
    assert spec.class_efficiency("matmul", memory_bound=False) == 0.5
    assert type(spec.efficiency["matmul"]) is float
    scalar = Hardware("calibrated", peak_flops=1e13, bandwidth=2e12, op_overhead=np.int64(0))
    assert scalar.overhead("matmul") == 0.0


class Product(nn.Module):
    def __init__(self, function) -> None:
        super().__init__()
        self.function = function

    def forward(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.function(a, x)


def _adjacency() -> torch.Tensor:
    return torch.sparse_coo_tensor(torch.stack([TARGETS, SOURCES]), torch.ones(8), (5, 5)).coalesce()


def test_a_sparse_matrix_times_a_vector_counts_its_stored_values() -> None:
    """R11b-4: ``adj @ v`` / ``torch.mv`` (power iteration, PageRank) reach ``aten.mv``, which
    counted the dense 5x5 @ 5: 25 MACs, 5*(2*5-1) = 45 FLOPs."""
    for function in (torch.mv, torch.matmul):
        for adjacency in (_adjacency(), _adjacency().to_sparse_csr()):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = flopmeter.profile(Product(function), (adjacency, torch.randn(5)))
            # nnz 8 stored values, each times one vector entry added into its row: 8 MACs, 2*8 = 16 FLOPs
            assert (report.macs, report.flops) == (8, 16)


def test_a_batch_of_sparse_matrices_counts_their_stored_values() -> None:
    """R11b-4: ``torch.bmm`` of a sparse COO batch (2 x 5 x 5, 8 stored values each) by a dense
    2 x 5 x 4 counted the dense batch: 2*5*5*4 = 200 MACs, 2*5*4*(2*5-1) = 360 FLOPs."""
    batch = torch.stack([_adjacency().to_dense()] * 2).to_sparse()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = flopmeter.profile(Product(torch.bmm), (batch, torch.randn(2, 5, 4)))
    # 16 stored values * 4 columns = 64 MACs, 2*64 = 128 FLOPs
    assert (report.macs, report.flops) == (64, 128)


class HeldAdjacency(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.adjacency = _adjacency()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(self.adjacency, x)


def test_shapes_only_refuses_a_model_holding_a_sparse_tensor_clearly() -> None:
    """R11b-5: P11-F5 refused a sparse *input* by name; a sparse tensor the model holds gave
    torch's "Could not run 'aten::addmm' with arguments from the 'SparseMeta' backend" dump."""
    import pytest

    with pytest.raises(ValueError, match="shapes_only=True cannot count a model holding sparse tensors"):
        flopmeter.profile(HeldAdjacency(), (torch.randn(5, 4),), shapes_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = flopmeter.profile(HeldAdjacency(), (torch.randn(5, 4),))
    # held by the model: the dense 5x5 @ 5x4, 5*5*4 = 100 MACs, (2*5-1)*5*4 = 180 FLOPs, counted with values
    assert (report.macs, report.flops, report.options["computed"]) == (100, 180, "values")
