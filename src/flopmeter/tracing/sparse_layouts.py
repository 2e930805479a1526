"""The stored values of a sparse tensor, recorded with its shape so that formulas can count
the work a sparse kernel does (``torch.sparse.mm`` of a GNN's adjacency: nnz · N)."""

from __future__ import annotations

import torch

_COMPRESSED = (torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc)


def stored_values(tensor: torch.Tensor) -> int | None:
    """How many values a sparse ``tensor`` stores: COO, CSR and CSC their nonzeros, BSR and
    BSC every element of their blocks. None for a dense (strided) tensor, and when the count
    cannot be read."""
    layout = tensor.layout
    try:
        if layout is torch.sparse_coo:
            count = int(tensor._values().numel())
        elif layout in _COMPRESSED:
            count = int(tensor.values().numel())
        else:
            return None
    except (RuntimeError, NotImplementedError):
        return None
    # a sparse tensor built on meta from its indices and values keeps their sizes, but one
    # moved to meta (``.to("meta")``) claims none: unknown, not zero
    return None if count == 0 and tensor.is_meta else count


def held_sparse_tensors(modules: list[torch.nn.Module]) -> list[torch.Tensor]:
    """The sparse tensors modules hold in plain attributes (``self.weight_sparse =
    w.to_sparse()``): weights of the model like its parameters and buffers, whose savings
    the compression view reports, not inputs."""
    return [
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, torch.Tensor) and value.layout is not torch.strided
    ]


def has_sparse_tensor(values: list[object]) -> bool:
    """Whether any of ``values`` is a sparse tensor (its nonzeros decide the work)."""
    return any(isinstance(value, torch.Tensor) and value.layout is not torch.strided for value in values)
