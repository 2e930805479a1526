"""Probe 11, model families: graph networks (message passing over an edge index or a sparse
adjacency), recommenders (DLRM's interaction) and sparse inputs. Toys in plain torch that
run what torch_geometric runs; one check with torch_geometric itself when it is installed."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import flopmeter

# A 5-node graph with 8 directed edges (source -> target); every node is some edge's target.
SOURCES = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4])
TARGETS = torch.tensor([1, 2, 3, 4, 0, 2, 4, 1])


def _adjacency(layout: str) -> torch.Tensor:
    """A[target, source] = 1: rows aggregate their incoming messages (nnz 8)."""
    coo = torch.sparse_coo_tensor(torch.stack([TARGETS, SOURCES]), torch.ones(8), (5, 5)).coalesce()
    return coo if layout == "coo" else coo.to_sparse_csr()


def _profile(model: nn.Module, inputs: tuple, **options) -> flopmeter.Report:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "sparse CSR support is in beta"
        return flopmeter.profile(model, inputs, **options)


def _op(report: flopmeter.Report, op: str):
    return report.by_operator()[op].cost


class SparseProduct(nn.Module):
    def forward(self, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(adjacency, x)


class SparseAddmm(nn.Module):
    def forward(self, bias: torch.Tensor, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.addmm(bias, adjacency, x)


class SparseReduce(nn.Module):
    def __init__(self, reduce: str) -> None:
        super().__init__()
        self.reduce = reduce

    def forward(self, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(adjacency, x, self.reduce)


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_sparse_input_product_counts_its_stored_values(layout: str) -> None:
    # Before: counted as the dense 5x5 @ 5x4: 5*5*4 = 100 MACs, 5*4*(2*5-1) = 180 FLOPs.
    report = _profile(SparseProduct(), (_adjacency(layout), torch.randn(5, 4)))
    assert report.options["computed"] == "values"  # no shapes-only attempt: nonzeros are values
    assert report.macs == 32  # nnz*N = 8*4
    assert report.flops == 64  # a multiply and an add per product: 2*8*4
    assert not report.unsupported_ops()
    # reads torch's zeros (5*4*4 = 80 B), the 8 stored values (32 B) and x (80 B); before: the
    # dense 5*5*4 = 100 B in place of 32
    assert report.by_operator()["aten._sparse_addmm"].cost.bytes_read == 80 + 32 + 80


class Products(nn.Module):
    """The ways GCN code multiplies a sparse adjacency (pygcn's ``torch.spmm``, ``adj @ x``)."""

    def __init__(self, way: str) -> None:
        super().__init__()
        self.way = way

    def forward(self, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.way == "mm":
            return torch.mm(adjacency, x)
        if self.way == "@":
            return adjacency @ x
        if self.way == "spmm":
            return torch.spmm(adjacency, x)
        return (x.t() @ adjacency).t()  # dense (4, 5) @ sparse (5, 5): nnz*M = 8*4 as well


@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize("way", ["mm", "@", "spmm", "dense @ sparse"])
def test_every_way_to_multiply_a_sparse_input(layout: str, way: str) -> None:
    # Before: aten.mm with a sparse operand was the dense 5*5*4 = 100 MACs, 180 FLOPs.
    report = _profile(Products(way), (_adjacency(layout), torch.randn(5, 4)))
    assert (report.macs, report.flops) == (32, 64)  # 8*4 products, a multiply and an add each


def test_shapes_only_refuses_a_sparse_input_clearly() -> None:
    # Before: torch's NotImplementedError for the SparseMeta backend, as the model's error.
    with pytest.raises(ValueError, match="shapes_only=True cannot count sparse tensor inputs"):
        _profile(SparseProduct(), (_adjacency("csr"), torch.randn(5, 4)), shapes_only=True)


class ScaledGraph(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3, bias=False)

    def forward(self, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(adjacency, self.linear(x))


def test_backward_through_a_sparse_input() -> None:
    report = _profile(ScaledGraph(), (_adjacency("coo"), torch.randn(5, 4)), backward=True)
    # forward: x@W 5*3*(2*4-1) = 105, A@(xW) 2*8*3 = 48; backward: dW = x^T-side 3*4*(2*5-1) = 108,
    # d(xW) = A^T @ g 2*8*3 = 48 (before: the dense 5*3*(2*5-1) = 135)
    assert report.flops == 105 + 48 + 108 + 48
    assert report.macs == 60 + 24 + 60 + 24


def test_sparse_addmm_adds_its_bias() -> None:
    report = _profile(SparseAddmm(), (torch.randn(5, 4), _adjacency("coo"), torch.randn(5, 4)))
    assert report.macs == 32  # 8*4
    assert report.flops == 84  # 2*8*4 products + 5*4 bias adds


@pytest.mark.parametrize(("reduce", "macs", "flops"), [("sum", 32, 64), ("mean", 32, 84), ("amax", 0, 64)])
def test_sparse_product_with_a_reduction(reduce: str, macs: int, flops: int) -> None:
    # Before: aten._sparse_mm_reduce_impl had no formula (listed, not counted).
    # sum 2*8*4 = 64; mean + 5*4 divides = 84; amax 8*4 multiplies + 8*4 compares = 64, no MACs
    report = _profile(SparseReduce(reduce), (_adjacency("csr"), torch.randn(5, 4)))
    assert (report.macs, report.flops) == (macs, flops)
    assert not report.unsupported_ops()


class WeightedMessages(nn.Module):
    """GCN's propagation over an edge index, as torch_geometric runs it: gather the source
    rows, scale each by its edge weight, scatter-add into the targets."""

    def forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        messages = x.index_select(0, SOURCES) * weight.view(-1, 1)
        return x.new_zeros(x.shape).index_add_(0, TARGETS, messages)


def test_edge_index_and_sparse_adjacency_count_the_same_work() -> None:
    x, weight = torch.randn(5, 4), torch.rand(8)
    edges = _profile(WeightedMessages(), (x, weight))
    # gather 0; multiply 8*4 = 32; index_add 8*4 = 32: 64 FLOPs
    assert edges.flops == 64
    adjacency = torch.sparse_coo_tensor(torch.stack([TARGETS, SOURCES]), weight, (5, 5)).to_sparse_csr()
    assert _profile(SparseProduct(), (adjacency, x)).flops == edges.flops


class WithSparseWeight(nn.Module):
    def __init__(self, as_buffer: bool) -> None:
        super().__init__()
        if as_buffer:
            self.register_buffer("adjacency", _adjacency("coo"))
        else:
            self.adjacency = _adjacency("csr")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(self.adjacency, x)


@pytest.mark.parametrize("as_buffer", [True, False])
def test_a_sparse_weight_keeps_the_dense_count(as_buffer: bool) -> None:
    # a model's own sparse tensor (a pruned weight stored sparse, as a buffer or a plain
    # attribute): the dense view, as before; the compression view gives nnz*N
    report = _profile(WithSparseWeight(as_buffer), (torch.randn(5, 4),))
    assert report.macs == 100  # 5*5*4
    assert report.flops == 180  # 5*4*(2*5-1)


class ReadsCsrParts(nn.Module):
    def forward(self, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        degree = adjacency.crow_indices().diff().to(x.dtype)  # row lengths: integers
        rows = torch.repeat_interleave(torch.arange(5), adjacency.crow_indices().diff())
        return (
            x.index_select(0, adjacency.col_indices()) * adjacency.values().view(-1, 1)
            + rows.view(-1, 1)
            + degree.sum()
        )


def test_the_parts_of_a_sparse_tensor_are_views() -> None:
    # Before: crow_indices, col_indices and values were listed as ops without a formula.
    report = _profile(ReadsCsrParts(), (_adjacency("csr"), torch.randn(5, 4)))
    assert not report.unsupported_ops()
    # diff 5 (on int64: 0), sum of 5 floats 4, multiply 8*4 = 32, two adds 8*4 each = 64
    assert report.flops == 4 + 32 + 64


class DotInteraction(nn.Module):
    """DLRM's feature interaction: pairwise dot products of F feature vectors, upper triangle."""

    def __init__(self) -> None:
        super().__init__()
        self.bottom = nn.Linear(4, 3)
        self.tables = nn.ModuleList(nn.EmbeddingBag(10, 3, mode="sum") for _ in range(2))

    def forward(self, dense: torch.Tensor, indices: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        features = [self.bottom(dense)] + [
            table(indices[i], offsets[i]) for i, table in enumerate(self.tables)
        ]
        z = torch.stack(features, 1)  # B, F=3, D=3
        products = torch.bmm(z, z.transpose(1, 2))
        row, col = torch.triu_indices(3, 3, offset=1)
        return products[:, row, col]


@pytest.mark.parametrize("shapes_only", [True, False])
def test_dlrm_interaction(shapes_only: bool) -> None:
    # Before: aten.triu_indices (integer index pairs) was listed as an op without a formula.
    indices, offsets = torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.tensor([[0, 1], [0, 2]])
    report = _profile(DotInteraction(), (torch.randn(2, 4), indices, offsets), shapes_only=shapes_only)
    assert not report.unsupported_ops()
    assert _op(report, "aten.addmm").flops == 48  # 2*3*(2*4)
    assert _op(report, "aten._embedding_bag").flops == 6  # bags of 1 and 2 rows: (0+1)*3 adds per table
    assert _op(report, "aten.bmm").macs == 54  # 2*3*3*3
    assert _op(report, "aten.bmm").flops == 90  # 2*3*3*(2*3-1)
    assert report.flops == 48 + 6 + 90


def test_torch_geometric_gcn_edge_index_and_csr_agree() -> None:
    pyg = pytest.importorskip("torch_geometric")
    conv = pyg.nn.GCNConv(4, 3)
    x = torch.randn(5, 4)
    edges = _profile(conv, (x, torch.stack([SOURCES, TARGETS])))
    csr = _profile(conv, (x, pyg.utils.to_torch_csr_tensor(torch.stack([TARGETS, SOURCES]), size=(5, 5))))
    # 13 edges with the self loops. x@W 5*3*(2*4-1) = 105; degrees 13, rsqrt 5, inf test 5 + 5,
    # edge norms 2*13; messages 13*3 multiplies + 13*3 adds = 78; bias 5*3 = 15
    assert edges.flops == 105 + 13 + 15 + 26 + 78 + 15 == 252
    assert csr.flops == edges.flops
    assert not csr.unsupported_ops()


class Matmul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


@pytest.mark.parametrize("layout", ["csc", "bsr"])
def test_other_layouts_count_their_stored_values(layout: str) -> None:
    eye = torch.eye(5)
    eye[0, 3] = 1.0  # 6 nonzeros
    sparse = eye.to_sparse_csc() if layout == "csc" else eye.to_sparse_bsr((1, 1))
    report = _profile(Matmul(), (sparse, torch.randn(5, 4)))
    assert (report.macs, report.flops) == (24, 48)  # 6*4 products, 2*6*4


def test_bsr_counts_every_element_of_its_blocks() -> None:
    # eye(4) in 2x2 blocks: 2 blocks, 8 stored elements (4 of them zeros the kernel multiplies)
    report = _profile(Matmul(), (torch.eye(4).to_sparse_bsr((2, 2)), torch.randn(4, 3)))
    assert (report.macs, report.flops) == (24, 48)  # 8*3, 2*8*3


def test_a_product_of_two_sparse_tensors() -> None:
    eye = torch.eye(5)
    csr = _profile(SparseProduct(), (eye.to_sparse_csr(), eye.to_sparse_csr()))
    assert csr.macs == 125  # counted dense, an upper bound: 5*5*5
    coo = _profile(SparseProduct(), (eye.to_sparse(), eye.to_sparse()))
    assert "aten._sparse_sparse_matmul" in coo.unsupported_ops()  # listed, never a silent zero


class BuildsItsAdjacency(nn.Module):
    """An adjacency made in the forward from an edge index and learned edge weights."""

    def __init__(self) -> None:
        super().__init__()
        self.edge_weight = nn.Parameter(torch.rand(8))

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        coo = torch.sparse_coo_tensor(edges, self.edge_weight * 2, (5, 5))
        return torch.sparse.mm(coo.coalesce().to_sparse_csr(), x)


@pytest.mark.parametrize("shapes_only", [None, False])
def test_an_adjacency_made_in_the_forward(shapes_only: bool | None) -> None:
    report = _profile(
        BuildsItsAdjacency(), (torch.randn(5, 4), torch.stack([TARGETS, SOURCES])), shapes_only=shapes_only
    )
    assert _op(report, "aten._sparse_addmm").macs == 32  # 8*4
    assert report.flops == 8 + 64  # edge_weight * 2: 8; the product 2*8*4
    # coalescing adds the values of repeated indices: value-dependent, listed with its shapes
    assert "aten._coalesce" in report.unsupported_ops()


class PaddedEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=True)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(x, src_key_padding_mask=padding)


def _encoder_warnings(model: nn.Module, inputs: tuple, **options) -> tuple[flopmeter.Report, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = flopmeter.profile(model, inputs, **options)
    ours = [w for w in caught if issubclass(w.category, flopmeter.FlopmeterWarning)]
    assert all(w.filename == __file__ for w in ours)  # pointing at the user's call
    return report, [str(w.message) for w in ours]


def test_a_padding_mask_into_the_encoder_fast_path_warns() -> None:
    model = PaddedEncoder().eval()
    padding = torch.tensor([[False] * 4, [False, False, True, True]])  # lengths 4 and 2
    report, notes = _encoder_warnings(model, (torch.randn(2, 4, 8), padding))
    assert any("skips the padded tokens" in note for note in notes)
    # the padded batch, 8 tokens: in-projection 8*24*16 = 3,072; per (sequence, head) scores
    # 4*4*(2*4-1) = 112, scale 16, mask 16, softmax 4*(5*4-2) = 72, A.V 4*4*(2*4-1) = 112: 328*4
    # = 1,312; out-projection 8*8*16 = 1,024; feed-forward 8*16*16 + 8*8*32 = 4,096; two norms
    # 2*8*(5*8+2+2*8) = 928; residuals 2*64, relu 128; the mask made float 8, its logical_not 8
    assert report.flops == 3_072 + 1_312 + 1_024 + 4_096 + 928 + 128 + 128 + 8 + 8 == 10_704
    _, without_mask = _encoder_warnings(model, (torch.randn(2, 4, 8),))
    assert not any("skips the padded tokens" in note for note in without_mask)
    _, training = _encoder_warnings(model, (torch.randn(2, 4, 8), padding), backward=True)
    assert not any("skips the padded tokens" in note for note in training)
