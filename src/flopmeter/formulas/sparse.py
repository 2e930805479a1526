"""Products of a sparse matrix (COO, CSR, CSC) with a dense one, counted from the sparse
operand's stored values: a graph's adjacency in a GNN (``torch.sparse.mm(adj, x)``,
torch_geometric's sparse ``propagate``). Pure functions of sizes.
"""

from __future__ import annotations

from ..cost import Cost


def sparse_matmul(nnz: int, n: int, *, bias_adds: int = 0, extra_scalings: int = 0) -> Cost:
    """sparse A (M x K, ``nnz`` stored values) @ dense B (K x N).

    The kernel multiplies each stored value by a row of B and accumulates the N products
    into its output row: nnz*N MACs, 2*nnz*N FLOPs (a multiply and an add per product,
    the same as a GNN's gather, multiply and ``scatter_add`` over nnz edges). The dense
    product's "k - 1 adds per output" does not apply: which outputs a stored value reaches
    depends on its indices, not on shapes. A bias (``addmm``'s beta*C) adds ``bias_adds``
    and alpha/beta multiplies ``extra_scalings``, as for the dense addmm.
    """
    products = nnz * n
    return Cost(
        macs=products,
        flops=2 * products + bias_adds + extra_scalings,
        ptflops_macs=products + bias_adds,
    )


def sparse_matmul_reduce(nnz: int, rows: int, n: int, reduce: str) -> Cost:
    """``torch.sparse.mm(A, B, reduce)`` (CSR A, M = ``rows`` rows, ``nnz`` stored values;
    B with N columns): each stored value times a row of B, reduced into its output row.

    sum: as ``sparse_matmul`` (nnz*N MACs, 2*nnz*N FLOPs); mean: also one divide per output,
    M*N; amax / amin / max / min / prod: nnz*N multiplies and nnz*N compares (or multiplies),
    2*nnz*N FLOPs and no MACs (not a sum of products).
    """
    products = nnz * n
    if reduce in ("sum", "mean"):
        cost = sparse_matmul(nnz, n)
        return cost + Cost(flops=rows * n) if reduce == "mean" else cost
    return Cost(flops=2 * products)
