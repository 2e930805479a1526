"""aten op name -> formula. The one place where an op's arguments meet a formula.

Three kinds of op:
- counted: a handler reads shapes from the OpEvent and calls a formula;
- free: views and metadata ops (no FLOPs, no memory traffic), and data movement
  (copies, concatenation, gathers, fills: no FLOPs, but bytes);
- unsupported: anything else. ``cost_of`` returns None and the report lists it
  with its call count and shapes. A silent zero is a bug.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from math import prod
from typing import Any

from .complex_calls import complex_cost, touches_complex
from .cost import Cost
from .dtypes import dtype_bits
from .formulas import attention as attn
from .formulas import (
    contraction,
    detection,
    distance,
    elementwise,
    embedding,
    normalization,
    pooling,
    quantized,
    recurrent,
    spectral,
)
from .formulas import linalg as linalg_formulas
from .formulas import losses as loss_formulas
from .formulas import sparse as sparse_formulas
from .tracing.events import NOT_WEIGHTS, OpEvent, TensorMeta


@dataclass(frozen=True)
class CountOptions:
    """Choices that change what is counted (not how it is shown).

    ``causal``: "full" counts causal attention as the dense computation (what the
    math path and torch.utils.flop_counter count); "needed" counts only the scores
    a causal mask keeps (about half).
    """

    causal: str = "full"
    # id(packed weight object) -> its PackedLayout (compression/packed.py), read
    # before the trace; the quantized op formulas look their weight shapes up here.
    packed: Mapping[int, Any] = field(default_factory=dict, compare=False)


Handler = Callable[[OpEvent, CountOptions], Cost]
_HANDLERS: dict[str, Handler] = {}

# No FLOPs, no memory traffic: views and metadata.
VIEW_OPS = frozenset(
    "aten." + name
    for name in (
        "view alias _unsafe_view reshape t transpose permute expand expand_as unsqueeze squeeze select "
        "slice narrow split split_with_sizes unbind unsafe_split unsafe_split_with_sizes chunk detach "
        "lift_fresh as_strided as_strided_ diagonal view_as_real view_as_complex unfold movedim "
        "_reshape_alias flatten unflatten _local_scalar_dense sym_size sym_numel sym_stride "
        "is_nonzero _has_compatible_shallow_copy_type set_ resize_ resize_as_ "
        "_nested_tensor_from_mask_left_aligned t_ transpose_ squeeze_ unsqueeze_ "
        "is_same_size _assert_async _assert_tensor_metadata record_stream"
    ).split()
)
# Complex conjugation and negation are lazy views (a bit on the tensor) until resolved.
VIEW_OPS |= frozenset({"aten._conj", "aten._neg_view"})
# torch.profiler's annotations (``record_function``, nn.DataParallel's forward): no work at all.
VIEW_OPS |= frozenset(
    {
        "profiler._record_function_enter",
        "profiler._record_function_enter_new",
        "profiler._record_function_exit",
    }
)

# No FLOPs, but memory is read and/or written: copies, gathers, fills, padding.
DATA_OPS = frozenset(
    "aten." + name
    for name in (
        "clone copy_ _to_copy to contiguous cat stack "
        "constant_pad_nd pad reflection_pad1d reflection_pad2d reflection_pad3d "
        "replication_pad1d replication_pad2d replication_pad3d repeat repeat_interleave roll flip "
        "tile scatter index_put _index_put_impl index_copy masked_select slice_scatter select_scatter "
        "diagonal_scatter as_strided_scatter masked_scatter nonzero tril triu "
        "pixel_shuffle pixel_unshuffle channel_shuffle native_channel_shuffle im2col "
        "_unsafe_index _unsafe_index_put one_hot randn rand randint randperm "
        "normal_ uniform_ random_ exponential_ bernoulli index_fill "
        "_pin_memory lift unique_dim select_backward slice_backward "
        "diagonal_backward as_strided_backward index_select_backward"
    ).split()
) | frozenset("aten." + name for name in elementwise.FILL_OPS)

# Probe 8: packing a padded batch for an RNN (and its gradient, the unpacking), unpooling
# (a scatter of values to their argmax positions), a sparse gradient's construction, random
# draws and boolean checks: data.
DATA_OPS |= frozenset(
    "aten." + name
    for name in (
        "_pack_padded_sequence _pack_padded_sequence_backward _pad_packed_sequence "
        "max_unpool2d max_unpool3d _sparse_coo_tensor_with_dims_and_tensors "
        # random draws (0 FLOPs, as randn): a VAE's or a diffusion step's noise, sampling
        "randn_like rand_like randint_like normal multinomial poisson binomial _standard_gamma "
        "_sample_dirichlet cauchy cauchy_ log_normal log_normal_ geometric geometric_ "
        # torch.distributions' argument checks: an all/any over booleans
        "_is_all_true _is_any_true "
        # complex(real, imag) interleaves two tensors; diag_embed, rot90 place values;
        # masked_scatter's gradient for its source gathers the masked places (a VLM's
        # image features merged into the text embeddings)
        "complex diag_embed rot90 masked_scatter_backward"
    ).split()
)
# linalg's check of its LAPACK info codes: no work.
VIEW_OPS |= frozenset({"aten._linalg_check_errors"})
# Probe 11: a sparse tensor's parts (a GNN's CSR adjacency, read by torch_geometric) are
# views; building one from its parts, converting its indices and making index pairs
# (DLRM's ``triu_indices``) touch integers only: data.
VIEW_OPS |= frozenset(
    "aten." + name
    for name in (
        "crow_indices col_indices ccol_indices row_indices values indices _indices _values "
        "_nnz _dimI _dimV sparse_dim dense_dim is_coalesced"
    ).split()
)
DATA_OPS |= frozenset(
    "aten." + name
    for name in (
        "triu_indices tril_indices _convert_indices_from_coo_to_csr _convert_indices_from_csr_to_coo "
        "sparse_compressed_tensor _sparse_compressed_tensor_unsafe sparse_csr_tensor "
        "_sparse_csr_tensor_unsafe sparse_coo_tensor _sparse_coo_tensor_unsafe _to_sparse _to_sparse_csr "
        "_to_sparse_csc _to_sparse_bsr _to_sparse_bsc _to_dense to_dense"
    ).split()
)
# Probe 10: a torch.export program copies each tensor constant its forward makes
# (``torch.tensor(...)``, Swin's relative-position index): data, as ``clone``.
DATA_OPS |= frozenset({"aten.lift_fresh_copy"})
# Probe 12: torch.block_diag places its blocks on a zero background: data.
DATA_OPS |= frozenset({"aten.block_diag"})
# Probe 14: lu_unpack copies L and U out of an LU factorization (unit diagonal filled in) and
# builds P from the integer pivots: data.
DATA_OPS |= frozenset({"aten.lu_unpack"})
# Probe 14 (the OpInfo sweep): the copying forms of the views (``view_copy``, ``permute_copy``,
# ...: what a functionalized or ExecuTorch edge graph holds instead of views) copy their
# result; FSDP2's ``_chunk_cat`` concatenates chunks; ``nonzero_static`` is nonzero with a
# fixed size (``torch.combinations`` calls it): data.
VIEW_COPIES = frozenset(
    "aten." + name
    for name in (
        "alias_copy as_strided_copy diagonal_copy expand_copy narrow_copy permute_copy "
        "split_with_sizes_copy split_copy squeeze_copy t_copy transpose_copy unbind_copy unfold_copy "
        "unsqueeze_copy view_copy select_copy slice_copy detach_copy _reshape_copy "
        "view_as_real_copy view_as_complex_copy"
    ).split()
)
DATA_OPS |= VIEW_COPIES | frozenset({"aten._chunk_cat", "aten.nonzero_static"})


def formula(*ops: str) -> Callable[[Handler], Handler]:
    """Register a handler for aten ops (names without the ``aten.`` prefix)."""

    def register(handler: Handler) -> Handler:
        for op in ops:
            _HANDLERS["aten." + op] = handler
        return handler

    return register


@lru_cache(maxsize=4096)
def op_key(op: str) -> str:
    """The registry key of an op: in-place variants (``relu_``) share the base formula."""
    if op in _HANDLERS or op in VIEW_OPS or op in DATA_OPS:
        return op
    stripped = op[:-1] if op.endswith("_") and not op.endswith("__") else op
    return stripped


@lru_cache(maxsize=4096)
def kind_of(op: str) -> str:
    """ "counted", "view", "data" or "unsupported"."""
    key = op_key(op)
    if key in _HANDLERS:
        return "counted"
    if key in VIEW_OPS:
        return "view"
    if key in DATA_OPS:
        return "data"
    return "unsupported"


def cost_of(event: OpEvent, options: CountOptions | None = None) -> Cost | None:
    """The cost of one op call, bytes included; None when no formula exists."""
    kind = kind_of(event.op)
    if kind == "counted":
        work = _HANDLERS[op_key(event.op)](event, options or CountOptions())
    elif kind == "data":
        work = _data_work(event)
    elif kind == "view":
        return Cost()
    else:
        return None
    if work.flops and not is_floating(event):
        work = replace(work, flops=0)  # integer/bool arithmetic (ids, masks, counters) is not FLOPs
    elif work.flops and touches_complex(event):  # real FLOPs of complex arithmetic (probe 14)
        complex_work = complex_cost(event, op_key(event.op).removeprefix("aten."), work)
        if complex_work is None:
            return None  # no complex formula: listed as unsupported, not counted as real
        work = complex_work
    return with_traffic(work, event)


def is_floating(event: OpEvent) -> bool:
    """Whether an op touches any floating-point tensor (as input or output)."""
    for tensor in event.outputs:  # (loops, not any(): this runs for every op call)
        if tensor.is_floating:
            return True
    for tensor in event.tensor_inputs():
        if tensor.is_floating:
            return True
    return False


# Norms also return saved statistics (N*C values, empty on some devices in eval mode):
# only the normalized output is counted as written, so every device gives one number.
_NORMALIZED_OUTPUT_ONLY = frozenset(
    "aten." + name
    for name in (
        "native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training "
        "cudnn_batch_norm native_layer_norm native_group_norm _batch_norm_with_update "
        "_batch_norm_no_update _fused_rms_norm"
    ).split()
)


# Ops whose tensor argument is only a template (its shape, dtype, device): ``zeros_like(x)``,
# ``x.new_zeros(n)`` and kin never read x's values, so x is not read traffic.
_TEMPLATE_INPUTS = frozenset(
    "aten." + name
    for name in (
        "zeros_like ones_like empty_like full_like rand_like randn_like randint_like "
        "new_zeros new_ones new_empty new_full new_empty_strided"
    ).split()
)


# Ops that only allocate (``torch.empty`` and kin, e.g. inside BatchNorm's eval path on the
# CPU): no kernel runs and nothing is read or written, so like views they cost nothing.
ALLOCATION_ONLY = frozenset(
    "aten." + name
    for name in "empty empty_like new_empty empty_strided new_empty_strided empty_permuted".split()
)


def with_traffic(work: Cost, event: OpEvent) -> Cost:
    """``work`` with the default traffic of ``event`` unless its formula set bytes:
    every tensor input read once (not a template's: ``_TEMPLATE_INPUTS``), every output
    written once (a lower bound); nothing for an op that only allocates."""
    if work.bytes_read or work.bytes_written or event.op in ALLOCATION_ONLY:
        return work
    read = weights = written = 0
    # (prod(shape) * itemsize is TensorMeta.nbytes without its two property calls: this runs per op call;
    # a sparse tensor reads its stored values, ``nnz``)
    for tensor in () if event.op in _TEMPLATE_INPUTS else event.tensor_inputs():
        size = (prod(tensor.shape) if tensor.nnz is None else tensor.nnz) * tensor.itemsize
        read += size
        if tensor.role not in NOT_WEIGHTS:
            weights += size
    for tensor in event.outputs[:1] if event.op in _NORMALIZED_OUTPUT_ONLY else event.outputs:
        written += (prod(tensor.shape) if tensor.nnz is None else tensor.nnz) * tensor.itemsize
    return Cost(work.macs, work.flops, work.ptflops_macs, read, written, weights)


# ----------------------------------------------------------------------------- helpers
def _tensor(event: OpEvent, index: int, name: str) -> TensorMeta | None:
    value = event.arg(index, name)
    return value if isinstance(value, TensorMeta) else None


def _out(event: OpEvent) -> TensorMeta:
    return event.outputs[0]


def _out_numel(event: OpEvent) -> int:
    return event.outputs[0].numel if event.outputs else 0


def _nonzero(value: Any, neutral: float) -> bool:
    return value is not None and value != neutral


# ----------------------------------------------------------------------- contractions
@formula(
    "convolution",
    "_convolution",
    "conv2d",
    "conv1d",
    "conv3d",
    "cudnn_convolution",
    "mkldnn_convolution",
    "_slow_conv2d_forward",
    "slow_conv3d_forward",
    "thnn_conv2d",
)
def _conv(event: OpEvent, options: CountOptions) -> Cost:
    x, w = event.arg(0, "input"), event.arg(1, "weight")
    bias = _tensor(event, 2, "bias") is not None
    transposed = (
        bool(event.arg(6, "transposed", False))
        if event.op in ("aten.convolution", "aten._convolution")
        else False
    )
    groups = int(event.arg(8, "groups", 1) or 1)
    out = _out(event).shape
    covered = None
    if transposed:
        spatial = len(w.shape) - 2
        covered = contraction.transposed_conv_covered(
            tuple(out),
            tuple(x.shape[-spatial:]),
            tuple(w.shape[2:]),
            _per_dim(event.arg(3, "stride", 1), spatial, 1),
            _per_dim(event.arg(4, "padding", 0), spatial, 0),
            _per_dim(event.arg(5, "dilation", 1), spatial, 1),
        )
    return contraction.conv(
        x.shape, w.shape, out, bias=bias, transposed=transposed, groups=groups, covered=covered
    )


def _per_dim(value: Any, dims: int, default: int) -> tuple[int, ...]:
    """A conv's stride/padding/dilation argument as one int per spatial dim."""
    if value is None:
        return (default,) * dims
    if isinstance(value, int):
        return (value,) * dims
    values = tuple(int(v) for v in value)
    return values * dims if len(values) == 1 else values


@formula("convolution_backward")
def _conv_backward(event: OpEvent, options: CountOptions) -> Cost:
    """grad_input: the forward's MACs again, each input gradient a sum of its terms;
    grad_weight: one dot product per weight over N*out_spatial terms;
    grad_bias: the sum of grad_output over batch and space, per channel."""
    grad_out, x, w = event.args[0], event.args[1], event.args[2]
    transposed = bool(event.arg(7, "transposed", False))
    mask = event.arg(10, "output_mask", [True, True, True])
    forward = contraction.conv(x.shape, w.shape, grad_out.shape, bias=False, transposed=transposed)
    total = Cost()
    if mask[0]:
        total += Cost(macs=forward.macs, flops=max(2 * forward.macs - x.numel, 0), ptflops_macs=forward.macs)
    if mask[1]:
        total += contraction.dot_products(w.numel, forward.macs // max(w.numel, 1))
    if mask[2]:
        channels = grad_out.shape[1]
        total += elementwise.reduction(channels, grad_out.numel // max(channels, 1))
    return total


def _alpha_beta_extras(event: OpEvent, outputs: int, beta_index: int, alpha_index: int) -> tuple[int, int]:
    """(bias adds, extra multiplies) of addmm-style ops: beta*bias + alpha*(a @ b)."""
    beta = event.arg(beta_index, "beta", 1)
    alpha = event.arg(alpha_index, "alpha", 1)
    bias_adds = 0 if beta == 0 else outputs
    extras = (outputs if _nonzero(alpha, 1) else 0) + (outputs if beta not in (0, 1) else 0)
    return bias_adds, extras


@formula("mm", "_mm")
def _mm(event: OpEvent, options: CountOptions) -> Cost:
    a, b = event.args[0], event.args[1]
    sparse = _sparse_product(a, b)
    if sparse is not None:  # torch.mm(adj, x), adj @ x, torch.spmm with a sparse input
        return sparse
    return contraction.matmul(1, a.shape[0], a.shape[1], b.shape[1])


@formula("addmm", "_addmm_activation")
def _addmm(event: OpEvent, options: CountOptions) -> Cost:
    a, b = event.args[1], event.args[2]  # args[0] is the bias
    adds, extras = _alpha_beta_extras(event, a.shape[0] * b.shape[1], 3, 4)
    sparse = _sparse_product(a, b, bias_adds=adds, extra_scalings=extras)
    if sparse is not None:
        return sparse
    cost = contraction.matmul(1, a.shape[0], a.shape[1], b.shape[1], bias_adds=adds, extra_scalings=extras)
    if event.op == "aten._addmm_activation":
        gelu = bool(event.arg(5, "use_gelu", False))
        cost += elementwise.pointwise(_out_numel(event), elementwise.PER_ELEMENT["gelu" if gelu else "relu"])
    return cost


@formula("addr")
def _addr(event: OpEvent, options: CountOptions) -> Cost:
    """``beta*M + alpha*outer(x, y)``: a matmul of (m x 1) by (1 x n), as ``addmm``."""
    x, y = event.args[1], event.args[2]
    adds, extras = _alpha_beta_extras(event, x.numel * y.numel, 3, 4)
    return contraction.matmul(1, x.numel, 1, y.numel, bias_adds=adds, extra_scalings=extras)


@formula("trace")
def _trace(event: OpEvent, options: CountOptions) -> Cost:
    """The sum of the diagonal of an (m x n) matrix: min(m, n) - 1 adds."""
    return elementwise.reduction(1, min(event.args[0].shape))


@formula("bmm")
def _bmm(event: OpEvent, options: CountOptions) -> Cost:
    a, b = event.args[0], event.args[1]
    sparse = _sparse_product(a, b)
    if sparse is not None:  # torch.bmm(adjacencies, x): a batch of sparse COO matrices (R11b-4)
        return sparse
    return contraction.matmul(a.shape[0], a.shape[1], a.shape[2], b.shape[2])


@formula("baddbmm", "addbmm")
def _baddbmm(event: OpEvent, options: CountOptions) -> Cost:
    a, b = event.args[1], event.args[2]
    adds, extras = _alpha_beta_extras(event, _out_numel(event), 3, 4)
    batch, m, k, n = a.shape[0], a.shape[1], a.shape[2], b.shape[2]
    cost = contraction.matmul(batch, m, k, n, bias_adds=adds, extra_scalings=extras)
    if event.op.startswith("aten.addbmm"):  # the batch is also summed into one matrix
        cost += Cost(flops=(batch - 1) * m * n)
    return cost


@formula("_grouped_mm", "_scaled_grouped_mm")
def _grouped_mm(event: OpEvent, options: CountOptions) -> Cost:
    """Grouped GEMM (mixture-of-experts): each output element is a dot product over its
    group's K. a (M, K) with b (G, K, N): rows routed to groups, K = a's last dim; a (M, K)
    with b (K, N) split along K into G groups: output (G, M, N), the K's sum to K."""
    a, b, out = event.args[0], event.args[1], _out(event)
    if a.ndim == 2 and b.ndim == 2:  # groups split the contraction dimension
        macs = out.numel // out.shape[0] * a.shape[1]
    else:
        macs = out.numel * a.shape[-1]
    has_bias = isinstance(event.kwargs.get("bias"), TensorMeta)
    return Cost(
        macs=macs, flops=max(2 * macs - out.numel, 0) + (out.numel if has_bias else 0), ptflops_macs=macs
    )


@formula("mv", "addmv")
def _mv(event: OpEvent, options: CountOptions) -> Cost:
    """mv; addmv ``beta*v + alpha*(M @ x)`` as addmm: the bias adds (none for beta = 0) and
    the alpha, beta multiplies (before probe 13 alpha and beta were not counted)."""
    addmv = event.op.startswith("aten.addmv")
    a = event.args[1] if addmv else event.args[0]
    adds, extras = _alpha_beta_extras(event, a.shape[0], 3, 4) if addmv else (0, 0)
    nnz = _sparse_activation_nnz(a)
    if nnz is not None:  # adj @ v, a sparse matrix times a vector (power iteration): N = 1 (R11b-4)
        return sparse_formulas.sparse_matmul(nnz, 1, bias_adds=adds, extra_scalings=extras)
    return contraction.matmul(1, a.shape[0], a.shape[1], 1, bias_adds=adds, extra_scalings=extras)


@formula("dot", "vdot")
def _dot(event: OpEvent, options: CountOptions) -> Cost:
    return contraction.dot_products(1, event.args[0].numel)


@formula("_trilinear")
def _trilinear(event: OpEvent, options: CountOptions) -> Cost:
    """nn.Bilinear's kernel and its gradients' (i1, i2, i3, expand1, expand2, expand3,
    sumdim): each input unsqueezed at its expand dims, then ``contraction.trilinear``."""
    shapes = []
    for tensor, expand in zip(event.args[:3], event.args[3:6], strict=True):
        shape = list(tensor.shape)
        for dim in sorted(expand):
            shape.insert(dim, 1)
        shapes.append(tuple(shape))
    return contraction.trilinear(shapes, list(event.args[6]))


# --------------------------------------------------------------------------- attention
def _sdpa(event: OpEvent, options: CountOptions, *, mask: Any, dropout: Any, causal: Any) -> Cost:
    # by position or name alike: diffusers calls F.scaled_dot_product_attention(query=, key=, value=)
    q, k, v = event.arg(0, "query"), event.arg(1, "key"), event.arg(2, "value")
    heads = prod(q.shape[:-2])
    bottom_right = event.kwargs.get("causal_mask") == "bottom_right"  # a mask the recorder recognised
    return attn.attention(
        heads,
        q.shape[-2],
        k.shape[-2],
        q.shape[-1],
        v.shape[-1],
        masked=isinstance(mask, TensorMeta),
        dropout=bool(dropout),
        causal_needed=(bool(causal) or bottom_right) and options.causal == "needed",
        bottom_right=bottom_right,
        window=event.kwargs.get("causal_window"),  # a sliding-window mask the recorder recognised
    )


@formula("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention")
def _sdpa_flash(event: OpEvent, options: CountOptions) -> Cost:
    return _sdpa(
        event,
        options,
        mask=event.kwargs.get("attn_mask"),
        dropout=event.arg(3, "dropout_p", 0.0),
        causal=event.arg(4, "is_causal", False),
    )


@formula(
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
)
def _sdpa_with_bias(event: OpEvent, options: CountOptions) -> Cost:
    return _sdpa(
        event,
        options,
        mask=event.arg(3, "attn_bias"),
        dropout=event.arg(5, "dropout_p", 0.0),
        causal=event.arg(6, "is_causal", False),
    )


@formula("_scaled_dot_product_attention_math", "scaled_dot_product_attention")
def _sdpa_math(event: OpEvent, options: CountOptions) -> Cost:
    return _sdpa(
        event,
        options,
        mask=event.arg(3, "attn_mask"),
        dropout=event.arg(4, "dropout_p", 0.0),
        causal=event.arg(5, "is_causal", False),
    )


def _flex_attention(event: OpEvent, options: CountOptions) -> Cost:
    """``flex_attention(query, key, value)``, recorded whole (tracing/higher_order.py): dense
    attention over every query and key, as its eager kernel computes it, masked when it is
    given a block mask (any mask_mod: the eager kernel applies it to every score). Its score_mod's and mask_mod's own ops are not counted; the
    blocks a compiled kernel would skip are (``causal="needed"`` does not apply)."""
    q, k, v = event.args[0], event.args[1], event.args[2]
    return attn.attention(
        prod(q.shape[:-2]),
        q.shape[-2],
        k.shape[-2],
        q.shape[-1],
        v.shape[-1],
        masked=bool(event.kwargs.get("masked")),
    )


@formula("_native_multi_head_attention")
def _native_mha(event: OpEvent, options: CountOptions) -> Cost:
    q, k = event.args[0], event.args[1]
    embed, heads = int(event.args[3]), int(event.args[4])
    has_bias = _tensor(event, 6, "qkv_bias") is not None
    batch, queries, keys = prod(q.shape[:-2]), q.shape[-2], k.shape[-2]
    projections = (
        contraction.dot_products(batch * queries * embed, embed, bias=has_bias)
        + contraction.dot_products(batch * keys * embed, embed, bias=has_bias).scaled(2)
        + contraction.dot_products(
            batch * queries * embed, embed, bias=_tensor(event, 8, "proj_bias") is not None
        )
    )
    head_dim = embed // heads
    core = attn.attention(
        batch * heads, queries, keys, head_dim, head_dim, masked=_tensor(event, 9, "mask") is not None
    )
    return projections + core


def _mha_forward(event: OpEvent, options: CountOptions) -> Cost:
    """F.multi_head_attention_forward, (L, B, E) or (L, E) inputs: q/k/v projections
    (packed or separate weights), attention over the keys (+1 per bias_k, +1 with
    add_zero_attn), the output projection; with need_weights the explicit weights
    are averaged over heads (H-1 adds and 1 divide per weight). The output projection
    has out_proj_weight's rows as outputs (E unless it narrows, as CLIP's attnpool)."""
    q, k, v = event.arg(0, "query"), event.arg(1, "key"), event.arg(2, "value")
    heads = int(event.arg(4, "num_heads"))
    embed = q.shape[-1]
    batch = q.shape[1] if q.ndim == 3 else 1
    queries, keys = q.shape[0], k.shape[0]
    separate = bool(event.arg(17, "use_separate_proj_weight", False))
    in_bias = _tensor(event, 6, "in_proj_bias") is not None
    if separate:
        k_out = event.arg(19, "k_proj_weight").shape[0]
        v_out = event.arg(20, "v_proj_weight").shape[0]
    else:
        k_out = v_out = embed
    cost = (
        contraction.dot_products(batch * queries * embed, embed, bias=in_bias)
        + contraction.dot_products(batch * keys * k_out, k.shape[-1], bias=in_bias)
        + contraction.dot_products(batch * keys * v_out, v.shape[-1], bias=in_bias)
    )
    keys += int(_tensor(event, 7, "bias_k") is not None) + int(bool(event.arg(9, "add_zero_attn", False)))
    masked = _tensor(event, 16, "attn_mask") is not None or _tensor(event, 14, "key_padding_mask") is not None
    training = bool(event.arg(13, "training", True))
    dropout = training and float(event.arg(10, "dropout_p", 0.0) or 0.0) > 0
    cost += attn.attention(
        batch * heads,
        queries,
        keys,
        embed // heads,
        v_out // heads,
        masked=masked,
        dropout=dropout,
        causal_needed=bool(event.arg(24, "is_causal", False)) and options.causal == "needed",
    )
    out_bias = _tensor(event, 12, "out_proj_bias") is not None
    out_weight = _tensor(event, 11, "out_proj_weight")  # (out, v_out): an attention pool may narrow
    out_features = out_weight.shape[0] if out_weight is not None else embed
    cost += contraction.dot_products(batch * queries * out_features, v_out, bias=out_bias)
    if bool(event.arg(15, "need_weights", True)) and bool(event.arg(23, "average_attn_weights", True)):
        cost += Cost(flops=batch * queries * keys * heads)  # (H-1) adds + 1 divide per averaged weight
    return cost


_HANDLERS["nn.functional.multi_head_attention_forward"] = _mha_forward
_HANDLERS["higher_order.flex_attention"] = _flex_attention


@formula("_transformer_encoder_layer_fwd")
def _encoder_layer(event: OpEvent, options: CountOptions) -> Cost:
    src = event.args[0]
    embed, heads = int(event.args[1]), int(event.args[2])
    gelu = bool(event.args[7])
    ffn_w1 = event.args[14]
    tokens = prod(src.shape[:-1])
    batch, length = prod(src.shape[:-2]), src.shape[-2]
    head_dim = embed // heads
    cost = contraction.dot_products(tokens * embed, embed, bias=True).scaled(4)  # q, k, v, out projection
    cost += attn.attention(
        batch * heads, length, length, head_dim, head_dim, masked=event.arg(18, "mask") is not None
    )
    cost += elementwise.pointwise(tokens * embed, 1).scaled(2)  # two residual adds
    cost += normalization.normalize_with_statistics(tokens, embed, weight=True, bias=True).scaled(2)
    hidden = ffn_w1.shape[0]
    cost += contraction.dot_products(tokens * hidden, embed, bias=True)
    cost += elementwise.pointwise(tokens * hidden, elementwise.PER_ELEMENT["gelu" if gelu else "relu"])
    cost += contraction.dot_products(tokens * embed, hidden, bias=True)
    return cost


# --------------------------------------------------------------------------- recurrent
_RNN_MODES = {0: "rnn_relu", 1: "rnn_tanh", 2: "lstm", 3: "gru"}


@formula("mkldnn_rnn_layer")
def _mkldnn_rnn_layer(event: OpEvent, options: CountOptions) -> Cost:
    x, w_ih = event.args[0], event.args[1]
    mode = _RNN_MODES[int(event.args[9])]
    hidden, has_bias = int(event.args[10]), bool(event.args[12])
    tokens = x.numel // x.shape[-1]
    return recurrent.recurrent_step(mode, w_ih.shape[1], hidden, bias=has_bias).scaled(tokens)


@formula("_cudnn_rnn", "miopen_rnn")
def _cudnn_rnn(event: OpEvent, options: CountOptions) -> Cost:
    x, weights = event.args[0], event.args[1]
    mode = _RNN_MODES[int(event.args[6])]
    hidden, proj, layers = int(event.args[7]), int(event.args[8] or 0), int(event.args[9])
    directions = 2 if bool(event.args[13]) else 1
    per_cell = len(weights) // (layers * directions)
    has_bias = per_cell - (1 if proj else 0) == 4
    tokens = x.numel // x.shape[-1]
    total = Cost()
    for layer in range(layers):
        size_in = x.shape[-1] if layer == 0 else (proj or hidden) * directions
        step = recurrent.recurrent_step(mode, size_in, hidden, bias=has_bias, proj_size=proj)
        total += step.scaled(tokens * directions)
    return total


@formula("mkldnn_rnn_layer_backward")
def _mkldnn_rnn_layer_backward(event: OpEvent, options: CountOptions) -> Cost:
    """The gradient of one layer in one direction (the CPU kernel computes every gradient)."""
    x, w_ih = event.args[0], event.args[1]
    mode = _RNN_MODES[int(event.args[14])]
    hidden, has_bias = int(event.args[15]), bool(event.args[17])
    tokens = x.numel // max(x.shape[-1], 1)
    hx = event.args[5]
    return recurrent.recurrent_backward(
        mode,
        w_ih.shape[1],
        hidden,
        tokens,
        bias=has_bias,
        sequences=hx.shape[-2] if hx.ndim > 1 else 1,
        final_h_grad=event.args[11] is not None,
        final_c_grad=event.args[12] is not None,
    )


@formula("_cudnn_rnn_backward")
def _cudnn_rnn_backward(event: OpEvent, options: CountOptions) -> Cost:
    """All layers and directions; the weight gradients only when ``output_mask[3]`` asks.
    A bidirectional layer's input gradient is the sum of its two directions' (1 add each)."""
    x, weights, hx = event.args[0], event.args[1], event.args[4]
    mode = _RNN_MODES[int(event.args[10])]
    hidden, proj, layers = int(event.args[11]), int(event.args[12] or 0), int(event.args[13])
    directions = 2 if bool(event.args[17]) else 1
    mask = event.arg(21, "output_mask", [True, True, True, True])
    per_cell = len(weights) // (layers * directions)
    has_bias = per_cell - (1 if proj else 0) == 4
    tokens = x.numel // max(x.shape[-1], 1)
    total = Cost()
    for layer in range(layers):
        size_in = x.shape[-1] if layer == 0 else (proj or hidden) * directions
        step = recurrent.recurrent_backward(
            mode,
            size_in,
            hidden,
            tokens,
            bias=has_bias,
            proj_size=proj,
            weights=bool(mask[3]),
            sequences=hx.shape[-2] if hx.ndim > 1 else 1,
            final_h_grad=event.args[8] is not None,
            final_c_grad=event.args[9] is not None,
        )
        # the directions' gradients of the layer's input summed: (directions - 1) adds each
        total += step.scaled(directions) + Cost(flops=(directions - 1) * tokens * size_in)
    return total


@formula("_thnn_fused_lstm_cell", "_thnn_fused_gru_cell")
def _fused_cell(event: OpEvent, options: CountOptions) -> Cost:
    gates = event.args[0]
    mode = "lstm" if "lstm" in event.op else "gru"
    hidden = gates.shape[-1] // recurrent.GATES[mode]
    has_bias = _tensor(event, 3, "input_bias") is not None
    return recurrent.fused_cell_pointwise(prod(gates.shape[:-1]), mode, hidden, bias=has_bias)


@formula("_thnn_fused_lstm_cell_backward_impl")
def _fused_lstm_cell_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_hy, grad_cy, cx, cy, workspace, has_bias)."""
    cx, has_bias = event.args[2], bool(event.args[5])
    return recurrent.fused_cell_backward(
        prod(cx.shape[:-1]), "lstm", cx.shape[-1], bias=has_bias, next_c_grad=event.args[1] is not None
    )


@formula("_thnn_fused_gru_cell_backward")
def _fused_gru_cell_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_hy, workspace, has_bias)."""
    grad, has_bias = event.args[0], bool(event.args[2])
    return recurrent.fused_cell_backward(
        prod(grad.shape[:-1]), "gru", grad.shape[-1], bias=has_bias, next_c_grad=False
    )


# ----------------------------------------------------------------------- normalization
def _batch_norm(event: OpEvent, training: bool, weight: Any, running: Any) -> Cost:
    x = event.args[0]
    channels = x.shape[1] if x.ndim > 1 else 1
    affine = isinstance(weight, TensorMeta)
    if not training:
        return normalization.batch_norm_inference(x.numel, channels, affine=affine)
    cost = normalization.normalize_with_statistics(channels, x.numel // channels, weight=affine, bias=affine)
    if isinstance(running, TensorMeta):
        cost += normalization.running_stats_update(channels)
    return cost


# The aten batch norms (``compare`` counts a model's calls of them): those the handlers below
# count, and export's functional form.
BATCH_NORM_OPS = frozenset(
    "aten." + name
    for name in (
        "native_batch_norm",
        "cudnn_batch_norm",
        "miopen_batch_norm",
        "_batch_norm_impl_index",
        "_native_batch_norm_legit",
        "_batch_norm_with_update",
        "_batch_norm_no_update",
        "_native_batch_norm_legit_no_training",
        "_native_batch_norm_legit_functional",
    )
)


@formula("native_batch_norm", "cudnn_batch_norm", "miopen_batch_norm", "_batch_norm_impl_index")
def _native_batch_norm(event: OpEvent, options: CountOptions) -> Cost:
    return _batch_norm(
        event, bool(event.arg(5, "training")), event.arg(1, "weight"), event.arg(3, "running_mean")
    )


@formula("_native_batch_norm_legit", "_batch_norm_with_update", "_batch_norm_no_update")
def _batch_norm_legit(event: OpEvent, options: CountOptions) -> Cost:
    if event.overload == "no_stats":
        return _batch_norm(event, True, event.arg(1, "weight"), None)
    if event.op == "aten._batch_norm_with_update":
        return _batch_norm(event, True, event.arg(1, "weight"), event.arg(3, "running_mean"))
    if event.op == "aten._batch_norm_no_update":
        return _batch_norm(event, False, event.arg(1, "weight"), event.arg(3, "running_mean"))
    return _batch_norm(
        event, bool(event.arg(5, "training")), event.arg(1, "weight"), event.arg(3, "running_mean")
    )


@formula("_native_batch_norm_legit_no_training")
def _batch_norm_eval(event: OpEvent, options: CountOptions) -> Cost:
    return _batch_norm(event, False, event.arg(1, "weight"), event.arg(3, "running_mean"))


@formula("native_layer_norm", "layer_norm")
def _layer_norm(event: OpEvent, options: CountOptions) -> Cost:
    x, shape = event.args[0], event.args[1]
    size = prod(shape)
    return normalization.normalize_with_statistics(
        x.numel // max(size, 1),
        size,
        weight=_tensor(event, 2, "weight") is not None,
        bias=_tensor(event, 3, "bias") is not None,
    )


@formula("native_group_norm")
def _group_norm(event: OpEvent, options: CountOptions) -> Cost:
    x = event.args[0]
    n, c, hw, groups = (int(v) for v in event.args[3:7])
    return (
        normalization.normalize_with_statistics(
            n * groups,
            c // groups * hw,
            weight=_tensor(event, 1, "weight") is not None,
            bias=_tensor(event, 2, "bias") is not None,
        )
        if x.numel
        else Cost()
    )


@formula("_fused_rms_norm", "rms_norm")
def _rms_norm(event: OpEvent, options: CountOptions) -> Cost:
    x, shape = event.args[0], event.args[1]
    size = prod(shape)
    return normalization.rms_norm(
        x.numel // max(size, 1), size, weight=_tensor(event, 2, "weight") is not None
    )


@formula("_fused_rms_norm_backward")
def _rms_norm_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_out, input, normalized_shape, rstd, weight, output_mask): CUDA's fused RMSNorm."""
    mask = event.arg(5, "output_mask", [True, True])
    return normalization.rms_norm_backward(
        event.args[1].numel,
        weight=_tensor(event, 4, "weight") is not None,
        input_grad=bool(mask[0]),
        weight_grad=bool(mask[1]),
    )


# --------------------------------------------------------------------------- pooling
def _window(kernel: Any, dims: int) -> int:
    sizes = list(kernel) if isinstance(kernel, (list, tuple)) else [kernel]
    if len(sizes) == 1:
        sizes = sizes * dims
    return prod(int(s) for s in sizes)


@formula(
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "mkldnn_max_pool2d",
    "mkldnn_max_pool3d",
    "quantized_max_pool2d",
)
def _max_pool(event: OpEvent, options: CountOptions) -> Cost:
    x, out = event.args[0], _out(event)
    dims = int(re.search(r"pool(\d)d", event.op).group(1))  # type: ignore[union-attr]
    return pooling.max_pool(out.numel, _window(event.arg(1, "kernel_size"), dims), input_elements=x.numel)


@formula("avg_pool1d", "avg_pool2d", "avg_pool3d")
def _avg_pool(event: OpEvent, options: CountOptions) -> Cost:
    x, out = event.args[0], _out(event)
    dims = int(re.search(r"pool(\d)d", event.op).group(1))  # type: ignore[union-attr]
    return pooling.avg_pool(out.numel, _window(event.arg(1, "kernel_size"), dims), input_elements=x.numel)


def _adaptive(event: OpEvent, kind: str) -> Cost:
    x, out = event.args[0], _out(event)
    dims = len(event.arg(1, "output_size"))
    planes = prod(x.shape[:-dims])
    return pooling.adaptive_pool(planes, tuple(x.shape[-dims:]), tuple(out.shape[-dims:]), kind=kind)


@formula(
    "_adaptive_avg_pool2d",
    "_adaptive_avg_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "mkldnn_adaptive_avg_pool2d",
)
def _adaptive_avg(event: OpEvent, options: CountOptions) -> Cost:
    return _adaptive(event, "avg")


@formula("fractional_max_pool2d", "fractional_max_pool3d")
def _fractional_max_pool(event: OpEvent, options: CountOptions) -> Cost:
    """(self, kernel_size, output_size, random_samples): a max over a full window per
    output; the pseudo-random window positions are not FLOPs."""
    dims = 3 if event.op.endswith("3d") else 2
    x = event.args[0]
    return pooling.max_pool(
        _out_numel(event), _window(event.arg(1, "kernel_size"), dims), input_elements=x.numel
    )


@formula("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")
def _adaptive_max(event: OpEvent, options: CountOptions) -> Cost:
    return _adaptive(event, "max")


_INTERPOLATION = {
    "upsample_nearest1d": "nearest",
    "upsample_nearest2d": "nearest",
    "upsample_nearest3d": "nearest",
    "_upsample_nearest_exact1d": "nearest",
    "_upsample_nearest_exact2d": "nearest",
    "_upsample_nearest_exact3d": "nearest",
    "upsample_linear1d": "linear",
    "upsample_bilinear2d": "bilinear",
    "_upsample_bilinear2d_aa": "bilinear",
    "upsample_trilinear3d": "trilinear",
    "upsample_bicubic2d": "bicubic",
    "_upsample_bicubic2d_aa": "bicubic",
}


@formula(*_INTERPOLATION)
def _interpolate(event: OpEvent, options: CountOptions) -> Cost:
    name = event.op.removeprefix("aten.")
    if name.endswith("_aa"):
        return _antialiased(event, _INTERPOLATION[name])
    return pooling.interpolate(_out_numel(event), _INTERPOLATION[name])


def _antialiased(event: OpEvent, mode: str) -> Cost:
    """_upsample_{bilinear,bicubic}2d_aa(input, output_size, align_corners, scales_h,
    scales_w) and its backward (grad_output, output_size, input_size, align_corners,
    scales_h, scales_w): the scale per dimension as torch computes it
    (area_pixel_compute_scale)."""
    backward = event.op.endswith("_backward")
    if backward:
        input_size = tuple(int(v) for v in event.arg(2, "input_size"))
        planes, in_sizes = prod(input_size[:-2]), input_size[-2:]
        out_sizes = tuple(event.args[0].shape[-2:])
    else:
        x = event.args[0]
        planes, in_sizes, out_sizes = prod(x.shape[:-2]), tuple(x.shape[-2:]), tuple(_out(event).shape[-2:])
    at = 3 if backward else 2
    align_corners = bool(event.arg(at, "align_corners", False))
    given = (event.arg(at + 1, "scales_h"), event.arg(at + 2, "scales_w"))
    if isinstance(given[0], (list, tuple)):  # the .vec overload: (..., scale_factors)
        given = (given[0][0], given[0][1])
    scales = []
    for size_in, size_out, scale in zip(in_sizes, out_sizes, given, strict=True):
        if align_corners:
            scales.append((size_in - 1) / (size_out - 1) if size_out > 1 else 0.0)
        else:
            scales.append(1.0 / scale if scale else size_in / max(size_out, 1))
    return pooling.antialiased_interpolate(
        planes, in_sizes, out_sizes, tuple(scales), mode, backward=backward
    )


@formula("_upsample_bilinear2d_aa_backward", "_upsample_bicubic2d_aa_backward")
def _antialiased_backward(event: OpEvent, options: CountOptions) -> Cost:
    return _antialiased(event, "bicubic" if "bicubic" in event.op else "bilinear")


@formula(
    "upsample_linear1d_backward",
    "upsample_bilinear2d_backward",
    "upsample_trilinear3d_backward",
    "upsample_bicubic2d_backward",
)
def _interpolate_backward(event: OpEvent, options: CountOptions) -> Cost:
    """Each output gradient adds its weighted share to each of the cells it read."""
    mode = event.op.removeprefix("aten.upsample_").removesuffix("_backward")[:-2]
    return Cost(flops=event.args[0].numel * pooling.INTERPOLATION_BACKWARD_PER_OUTPUT[mode])


@formula("grid_sampler_2d", "grid_sampler", "grid_sampler_3d")
def _grid_sample(event: OpEvent, options: CountOptions) -> Cost:
    """grid_sampler(input, grid (N, *out, d), interpolation_mode, padding_mode,
    align_corners): per output element the interpolation of its mode (0 bilinear or
    trilinear, 1 nearest, 2 bicubic) as ``interpolate`` counts it; per grid point the
    un-normalising of its d coordinates, 3 each ((x + 1) * size - 1) / 2), shared by the
    channels. The padding modes' clamps and reflections are not counted."""
    grid = event.arg(1, "grid")
    return pooling.grid_sample(_out_numel(event), grid.numel, _grid_mode(event, grid, 2))


def _grid_mode(event: OpEvent, grid: TensorMeta, mode_index: int) -> str:
    """grid_sampler's interpolation_mode (0 bilinear or trilinear, 1 nearest, 2 bicubic)."""
    family = {1: "nearest", 2: "cubic"}.get(int(event.arg(mode_index, "interpolation_mode", 0)), "linear")
    return pooling.grid_interpolation(family, grid.shape[-1])


@formula("grid_sampler_2d_backward", "grid_sampler_3d_backward")
def _grid_sample_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_output, input, grid, interpolation_mode, padding_mode, align_corners,
    output_mask): the input's gradient when output_mask[0], the grid's when [1]."""
    grad, grid = event.args[0], event.arg(2, "grid")
    mask = event.arg(6, "output_mask", [True, True])
    return pooling.grid_sample_backward(
        grad.numel, grid.numel, _grid_mode(event, grid, 3), input_grad=bool(mask[0]), grid_grad=bool(mask[1])
    )


@formula("affine_grid_generator")
def _affine_grid(event: OpEvent, options: CountOptions) -> Cost:
    """F.affine_grid(theta (N, d, d+1), size (N, C, *spatial)): torch multiplies the base
    grid of the P = prod(spatial) points, (x, y[, z], 1), by theta: N*P*d dot products of
    d+1 terms (a bmm). (Making the base grid, a linspace, is not counted; the backward
    runs as a bmm and is counted as one.)"""
    size = [int(v) for v in event.arg(1, "size")]
    batch, points, d = size[0], prod(size[2:]), len(size) - 2
    return contraction.dot_products(batch * points * d, d + 1)


@formula("cudnn_grid_sampler")
def _cudnn_grid_sample(event: OpEvent, options: CountOptions) -> Cost:
    """(self, grid): cuDNN's 2-d sampler, which torch picks for bilinear, zeros padding,
    align_corners=True: the same count as grid_sampler_2d."""
    return pooling.grid_sample(_out_numel(event), event.arg(1, "grid").numel, "bilinear")


@formula("cudnn_grid_sampler_backward")
def _cudnn_grid_sample_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(self, grid, grad_output): cuDNN computes both gradients."""
    grid, grad = event.arg(1, "grid"), event.arg(2, "grad_output")
    return pooling.grid_sample_backward(grad.numel, grid.numel, "bilinear", input_grad=True, grid_grad=True)


# ------------------------------------------------------------------ elementwise, reductions
def _per_element(name: str, event: OpEvent) -> int:
    per = elementwise.PER_ELEMENT[name]
    if name in ("add", "sub", "rsub") and _nonzero(event.arg(2, "alpha", 1), 1):
        per += 1  # alpha * other
    elif name == "clamp" and (event.arg(1, "min") is None or event.arg(2, "max") is None):
        per = 1
    elif name == "elu":
        per += int(_nonzero(event.arg(2, "scale", 1), 1)) + int(_nonzero(event.arg(3, "input_scale", 1), 1))
    elif name == "softplus" and _nonzero(event.arg(1, "beta", 1), 1):
        per += 2
    elif name == "gelu" and event.kwargs.get("approximate", event.arg(1, "approximate", "none")) == "tanh":
        per = elementwise.PER_ELEMENT["gelu_tanh"]
    elif name == "lerp" and not isinstance(event.arg(2, "weight"), TensorMeta):
        per = 3
    elif name in ("addcmul", "addcdiv") and _nonzero(event.arg(3, "value", 1), 1):
        per += 1
    elif name == "round" and _nonzero(event.kwargs.get("decimals", event.arg(1, "decimals", 0)), 0):
        per = 3  # x * 10^d, round, / 10^d (before probe 13: 1)
    return per


# ptflops' module rules count these activations as one MAC per output element.
_PTFLOPS_ACTIVATIONS = frozenset(
    {"relu", "_prelu_kernel", "prelu", "elu", "leaky_relu", "hardtanh", "gelu", "silu"}
)


# Elementwise ops counted as another op of the same cost per element.
_ELEMENTWISE_ALIASES = {
    "clamp_min": "clamp",
    "clamp_max": "clamp",
    "relu6": "hardtanh",
    "true_divide": "div",
    "multiply": "mul",
    "rrelu_with_noise": "rrelu",  # training: a random slope (a draw, 0) then compare, multiply
    "subtract": "sub",
    "special_erf": "erf",
    "sgn": "sign",
}


def _elementwise(event: OpEvent, options: CountOptions) -> Cost:
    name = op_key(event.op).removeprefix("aten.")
    name = _ELEMENTWISE_ALIASES.get(name, name)
    elements = _out_numel(event)
    cost = elementwise.pointwise(elements, _per_element(name, event))
    if name in _PTFLOPS_ACTIVATIONS or (name == "add" and _linear_bias_add(event)):
        cost = replace(cost, ptflops_macs=elements)
    return cost


def _linear_bias_add(event: OpEvent) -> bool:
    """``output + bias``: how torch's F.linear adds its bias after a matmul when the input
    is not contiguous (``x.transpose(1, 2)`` into a Linear), and a linear layer written
    out (``x @ w + b``, ONNX's MatMul + Add); ptflops' nn.Linear rule counts one per
    output element, as the fused addmm's view does (ptflops itself counts 0 for a layer
    written out: no module, no patched function). A 1-D parameter as long as the
    output's last dim added to an activation, alpha 1."""
    x, bias = event.args[0], event.arg(1, "other")
    return (
        isinstance(bias, TensorMeta)
        and bias.role == "param"
        and x.role == "activation"
        and bias.ndim == 1
        and bool(x.shape)
        and bias.shape[0] == x.shape[-1]
        and not _nonzero(event.kwargs.get("alpha", 1), 1)
    )


for _name in list(elementwise.PER_ELEMENT) + list(_ELEMENTWISE_ALIASES):
    formula(_name)(_elementwise)


def _reduced(event: OpEvent) -> tuple[int, int]:
    """(outputs, terms per output) of a reduction."""
    x = event.args[0]
    outputs = max(_out_numel(event), 1)
    return outputs, x.numel // outputs


@formula(
    "sum",
    "nansum",
    "amax",
    "amin",
    "max",
    "min",
    "prod",
    "all",
    "any",
    "argmax",
    "argmin",
    "count_nonzero",
    "aminmax",
)
def _reduce(event: OpEvent, options: CountOptions) -> Cost:
    if event.op in ("aten.max", "aten.min") and len(event.tensor_inputs()) == 2:
        return elementwise.pointwise(_out_numel(event), 1)  # binary max/min
    outputs, length = _reduced(event)
    return elementwise.reduction(outputs, length)


@formula("_weight_norm_interface")
def _weight_norm(event: OpEvent, options: CountOptions) -> Cost:
    """``_weight_norm_interface(v, g, dim)``: one norm per slice along ``dim`` (-1: the
    whole tensor)."""
    v = event.arg(0, "v")
    dim = event.arg(2, "dim", 0)
    groups = 1 if dim == -1 or not v.shape else v.shape[dim]
    return elementwise.weight_norm(v.numel, groups)


@formula("renorm")
def _renorm(event: OpEvent, options: CountOptions) -> Cost:
    """``renorm(self, p, dim, maxnorm)``: one slice per index of ``dim``."""
    x = event.args[0]
    dim = int(event.args[2]) % max(x.ndim, 1)
    slices = x.shape[dim] if x.ndim else 1
    return elementwise.renorm(slices, x.numel // max(slices, 1))


@formula("_weight_norm_interface_backward")
def _weight_norm_backward(event: OpEvent, options: CountOptions) -> Cost:
    """``_weight_norm_interface_backward(grad_w, saved_v, saved_g, saved_norms, dim)``: one
    slice per element of ``saved_norms``."""
    v, norms = event.arg(1, "saved_v"), event.arg(3, "saved_norms")
    return elementwise.weight_norm_backward(v.numel, norms.numel)


@formula("mean", "nanmean")
def _mean(event: OpEvent, options: CountOptions) -> Cost:
    outputs, length = _reduced(event)
    cost = elementwise.reduction(outputs, length, per_output=1)
    # ptflops counts global average pooling (which torch runs as mean) per input element,
    # and no other mean (an RMSNorm's, a loss's)
    return replace(cost, ptflops_macs=outputs * length) if _global_pool_mean(event) else cost


def _global_pool_mean(event: OpEvent) -> bool:
    """Whether a mean is how torch runs AdaptiveAvgPool{1,2,3}d to size 1: ``mean(x,
    (-1, -2[, -3]), keepdim=True)`` over the last 2 or 3 dims of an input of more dims."""
    x, dims = event.args[0], event.arg(1, "dim", None)
    if not event.arg(2, "keepdim", False) or not isinstance(dims, (list, tuple)) or not x.ndim:
        return False
    reduced = sorted(int(d) % x.ndim for d in dims)
    return (
        len(reduced) in (2, 3)
        and x.ndim > len(reduced)
        and reduced == list(range(x.ndim - len(reduced), x.ndim))
    )


@formula("var", "std", "var_mean", "std_mean")
def _var(event: OpEvent, options: CountOptions) -> Cost:
    outputs, length = _reduced(event)
    return elementwise.variance(outputs, length, sqrt="std" in event.op)


@formula("linalg_vector_norm", "norm", "frobenius_norm")
def _norm(event: OpEvent, options: CountOptions) -> Cost:
    """|x|^p per term (1), their sum (n - 1), the p-th root (1): 2n per output; no root
    for p = 0 (a count of nonzeros), 1, and +-inf (a max of |x|, n - 1 compares): 2n - 1,
    as cdist's distances (before probe 13 these counted 2n too)."""
    outputs, length = _reduced(event)
    order = (
        2.0 if event.op == "aten.frobenius_norm" else event.arg(1, "ord" if "vector" in event.op else "p", 2)
    )
    root = 0 if length and order is not None and abs(float(order)) in (0.0, 1.0, float("inf")) else 1
    return Cost(flops=outputs * (2 * length - 1 + root) if length else 0)


@formula("dist")
def _dist(event: OpEvent, options: CountOptions) -> Cost:
    """``torch.dist(a, b, p)`` = ||a - b||_p over the broadcast elements: one distance of n
    terms as cdist counts it, 3n - 1 + a root (none for p = 0, 1, inf)."""
    a, b = event.args[0], event.args[1]
    n = prod(_broadcast_shape([a.shape, b.shape]))
    p = abs(float(event.arg(2, "p", 2)))
    return distance.distances(1, n, p)


@formula("logsumexp")
def _logsumexp(event: OpEvent, options: CountOptions) -> Cost:
    outputs, length = _reduced(event)  # max n-1, sub n, exp n, sum n-1, log 1, add 1
    return Cost(flops=outputs * 4 * length)


@formula("histc", "bincount", "histogram")
def _histogram(event: OpEvent, options: CountOptions) -> Cost:
    """Binning: (x - min) * bins / (max - min) and a floor per input element (3 FLOPs);
    the count increments are integer work. Without a range (``histc``'s default min = max
    = 0, any min == max; ``histogram(x, bins=B)`` without ``range``) the kernel first finds
    the data's min and max: n - 1 comparisons each, 2(n - 1). ``bincount`` bins integers as
    they are (no arithmetic): with float ``weights`` each element's weight is added to its bin (1),
    as ``histogram``'s ``weight`` (keyword-only; before review 13 not counted).
    ``histogram(..., density=True)`` then normalises its B bins as the kernel does: their
    sum (B - 1), each divided by it (B), the bin widths from the edges (B subtracts) and
    each bin divided by its width (B): 4B - 1 (before probe 14 not counted; ``histc`` has
    no density)."""
    x = event.args[0]
    if event.op == "aten.bincount":
        return Cost(flops=x.numel if _tensor(event, 1, "weights") is not None else 0)
    weights = density = 0
    if event.op == "aten.histc":
        low, high = event.arg(2, "min", 0), event.arg(3, "max", 0)
        scans = float(low) == float(high)
    else:  # histogram: bins a count (bin_ct) scans without a range; bin edges (a tensor) never
        scans = not isinstance(event.arg(1, "bins"), TensorMeta) and event.arg(2, "range") is None
        weights = x.numel if isinstance(event.kwargs.get("weight"), TensorMeta) else 0
        bins = event.outputs[0].numel
        density = 4 * bins - 1 if event.kwargs.get("density") and bins else 0
    scan = 2 * (x.numel - 1) if scans and x.numel else 0
    return Cost(flops=3 * x.numel + weights + scan + density)


@formula("_histogramdd_bin_edges", "_histogramdd_from_bin_cts", "_histogramdd_from_bin_tensors")
def _histogramdd(event: OpEvent, options: CountOptions) -> Cost:
    """``torch.histogramdd`` of N points in D dims (input (..., D)), as ``histogram`` per
    coordinate: without a ``range`` each dim's min and max are found, 2(N - 1) compares per
    dim, by ``_histogramdd_bin_edges`` (the edges) and again inside
    ``_histogramdd_from_bin_cts`` (which makes its own edges); the binning 3 per coordinate,
    ``weight`` 1 per point, ``density`` the normalisation of the H = prod(B_d) bins: their
    sum H - 1, / sum H, then per dim its B_d widths and H divides: (D + 2)H - 1 + sum B_d
    (before probe 14 these ops were listed as unsupported)."""
    x = event.args[0]
    dims = x.shape[-1] if x.ndim else 1
    points = x.numel // dims if dims else 0
    bins = event.arg(1, "bins")
    given = event.op.endswith("bin_tensors") or event.kwargs.get("range") is not None
    scan = 0 if given or not points else 2 * (points - 1) * dims
    if event.op.endswith("bin_edges"):
        return Cost(flops=scan)
    flops = scan + 3 * points * dims
    if isinstance(event.kwargs.get("weight"), TensorMeta):
        flops += points
    cells = event.outputs[0].numel
    if event.kwargs.get("density") and cells:
        counts = [b.numel - 1 if isinstance(b, TensorMeta) else int(b) for b in bins]
        flops += (dims + 2) * cells - 1 + sum(counts)
    return Cost(flops=flops)


@formula("cumsum", "cumprod", "logcumsumexp", "cummax", "cummin")
def _cumulative(event: OpEvent, options: CountOptions) -> Cost:
    x = event.args[0]
    dim = int(event.arg(1, "dim", 0)) % max(x.ndim, 1)
    length = x.shape[dim] if x.ndim else 1
    per_step = elementwise.LOGADDEXP if event.op == "aten.logcumsumexp" else 1
    return elementwise.cumulative(x.numel // max(length, 1), length, per_step=per_step)


@formula("_softmax", "softmax", "_log_softmax", "log_softmax", "_safe_softmax")
def _softmax(event: OpEvent, options: CountOptions) -> Cost:
    rows, length = _rows_along(event.args[0], event.arg(1, "dim"))
    return elementwise.softmax(rows, length, log="log" in event.op)


def _rows_along(x: TensorMeta, dim: Any) -> tuple[int, int]:
    """(rows, length) of ``x`` cut along ``dim`` (None: the last), as softmax reduces it."""
    dim = (-1 if dim is None else int(dim)) % max(x.ndim, 1)
    length = x.shape[dim] if x.ndim else 1
    return x.numel // max(length, 1), length


@formula("sort", "topk", "msort", "argsort", "kthvalue", "median", "nanmedian", "mode")
def _sort(event: OpEvent, options: CountOptions) -> Cost:
    """Comparison sorts: n*ceil(log2 n) comparisons per row (an estimate, documented)."""
    x = event.args[0]
    if event.op in ("aten.median", "aten.nanmedian") and event.arg(1, "dim") is None:
        rows, length = 1, x.numel  # the median of the whole tensor
    else:
        dim_at = 2 if event.op in ("aten.topk", "aten.kthvalue") else 1  # after k
        dim = int(event.arg(dim_at, "dim", -1)) % max(x.ndim, 1)
        length = x.shape[dim] if x.ndim else 1
        rows = x.numel // max(length, 1)
    return elementwise.sort_comparisons(rows, length)


@formula("bucketize", "searchsorted")
def _binary_search(event: OpEvent, options: CountOptions) -> Cost:
    """bucketize(values, boundaries (B,)); searchsorted(sorted_sequence (..., B), values):
    one binary search per value (NeRF's hierarchical sampling, binned encodings)."""
    first, second = event.args[0], event.args[1]
    boundaries = second if event.op.startswith("aten.bucketize") else first
    length = boundaries.shape[-1] if isinstance(boundaries, TensorMeta) and boundaries.ndim else 1
    return elementwise.binary_search(_out_numel(event), length)


@formula("_unique2", "unique_consecutive")
def _unique(event: OpEvent, options: CountOptions) -> Cost:
    """torch.unique (sorted) and unique_consecutive of the flattened input (no dim)."""
    return elementwise.unique(event.args[0].numel, consecutive="consecutive" in event.op)


@formula("isin")
def _isin(event: OpEvent, options: CountOptions) -> Cost:
    """(elements, test_elements, assume_unique, invert): a scalar on either side is one
    element; with a scalar test torch runs ``eq``, one compare per element (the rule above
    with 1 test)."""
    elements, tests = (a.numel if isinstance(a, TensorMeta) else 1 for a in event.args[:2])
    return elementwise.isin(elements, tests, assume_unique=bool(event.arg(2, "assume_unique", False)))


@formula("mvlgamma")
def _mvlgamma(event: OpEvent, options: CountOptions) -> Cost:
    return elementwise.mvlgamma(_out_numel(event), int(event.arg(1, "p")))


@formula("logspace")
def _logspace(event: OpEvent, options: CountOptions) -> Cost:
    """base ** linspace(start, end, steps): the linspace is free (as ``linspace``), one
    power per element."""
    return elementwise.pointwise(_out_numel(event), 1)


@formula("_unsafe_masked_index")
def _masked_index(event: OpEvent, options: CountOptions) -> Cost:
    """(self, mask, indices, fill): ``where(mask, self[indices], fill)``, a gather and one
    select per output element (``where`` 1); inductor's decompositions of padding and
    upsampling call it."""
    return elementwise.pointwise(_out_numel(event), elementwise.PER_ELEMENT["where"])


@formula("_unsafe_masked_index_put_accumulate")
def _masked_index_put_accumulate(event: OpEvent, options: CountOptions) -> Cost:
    """(self, mask, indices, values): ``self.index_put(indices, values.masked_fill(~mask, 0),
    accumulate=True)``: per value a select (masked_fill 1) and an add (1)."""
    values = event.arg(3, "values")
    return Cost(flops=2 * values.numel) if isinstance(values, TensorMeta) else Cost()


@formula("embedding", "index_select", "gather", "index", "take", "_unsafe_index")
def _gather(event: OpEvent, options: CountOptions) -> Cost:
    """Gathers do no arithmetic; they read only the rows they pick (plus the indices)."""
    out = _out(event)
    inputs = event.tensor_inputs()
    source = inputs[0]
    indices = sum(t.nbytes for t in inputs[1:])
    if event.op == "aten.embedding":
        source, indices = inputs[0], inputs[1].nbytes
    weight = out.nbytes if source.role not in NOT_WEIGHTS else 0
    return Cost(bytes_read=out.nbytes + indices, bytes_written=out.nbytes, weight_bytes=weight)


@formula("embedding_bag", "_embedding_bag", "_embedding_bag_forward_only")
def _embedding_bag(event: OpEvent, options: CountOptions) -> Cost:
    """Per bag of n >= 1 rows of width D: (n-1)*D adds (sum, mean) or comparisons (max), an
    empty bag none; mean divides every bag's D outputs (the CPU kernel by max(n, 1));
    per_sample_weights (sum only) multiply every reduced row: n*D. The rows reduced and
    the bags holding any (``bag_rows``, ``filled_bags``) come from the real offsets
    (``tracing/bag_sizes.py``: empty bags and ``padding_idx`` rows left out); without
    them every index is a row and every bag holds one."""
    indices, out = event.args[1], _out(event)
    width = out.shape[-1] if out.ndim else 1
    bags = out.numel // max(width, 1)
    rows = event.kwargs.get("bag_rows", indices.numel)
    filled = event.kwargs.get("filled_bags", min(bags, rows))
    mode = int(event.arg(4, "mode", 0))  # 0 sum, 1 mean, 2 max: one op per gathered element
    weighted = _tensor(event, 6, "per_sample_weights") is not None
    return Cost(
        flops=max(rows - filled, 0) * width
        + (out.numel if mode == 1 else 0)
        + (rows * width if weighted else 0)
    )


@formula("_embedding_bag_backward", "_embedding_bag_dense_backward", "_embedding_bag_sparse_backward")
def _embedding_bag_backward(event: OpEvent, options: CountOptions) -> Cost:
    """embedding.embedding_bag_backward; the three schemas place mode, sparse and the
    per-sample weights differently."""
    grad, indices = event.args[0], event.args[1]
    name = event.op.removeprefix("aten.")
    mode_index, weights_index = {
        "_embedding_bag_backward": (8, 10),
        "_embedding_bag_dense_backward": (7, 8),
        "_embedding_bag_sparse_backward": (7, 8),
    }[name]
    if name == "_embedding_bag_backward":
        sparse = bool(event.arg(9, "sparse", False))
    else:
        sparse = name == "_embedding_bag_sparse_backward"
    return embedding.embedding_bag_backward(
        grad.shape[0] if grad.ndim > 1 else 1,
        grad.shape[-1] if grad.ndim else 1,
        indices.numel,
        mode=int(event.arg(mode_index, "mode", 0)),
        weighted=_tensor(event, weights_index, "per_sample_weights") is not None,
        sparse=sparse,
    )


@formula("embedding_renorm")
def _embedding_renorm(event: OpEvent, options: CountOptions) -> Cost:
    """``embedding_renorm_(weight, indices, max_norm, norm_type)``."""
    weight, indices = event.args[0], event.args[1]
    return embedding.embedding_renorm(indices.numel, weight.shape[-1] if weight.ndim else 1)


@formula("_embedding_bag_per_sample_weights_backward")
def _per_sample_weights_backward(event: OpEvent, options: CountOptions) -> Cost:
    grad, indices = event.args[0], event.args[2]
    return embedding.per_sample_weights_backward(indices.numel, grad.shape[-1] if grad.ndim else 1)


# ------------------------------------------------------------------------------ backward
@formula(*elementwise.PER_ELEMENT_BACKWARD)
def _activation_backward(event: OpEvent, options: CountOptions) -> Cost:
    name = event.op.removeprefix("aten.")
    per = elementwise.PER_ELEMENT_BACKWARD[name]
    if (
        name == "gelu_backward"
        and event.kwargs.get("approximate", event.arg(2, "approximate", "none")) == "tanh"
    ):
        per = 15  # the tanh form's derivative: tanh (9 as forward) + sech^2 and chain (6)
    elif name == "rrelu_with_noise_backward" and not event.arg(5, "training", False):
        per = elementwise.PER_ELEMENT_BACKWARD["leaky_relu_backward"]  # eval: a fixed slope
    return elementwise.pointwise(_out_numel(event), per)


@formula("_softmax_backward_data", "_log_softmax_backward_data")
def _softmax_backward(event: OpEvent, options: CountOptions) -> Cost:
    """softmax: g*y - y*sum(g*y); log_softmax: g - exp(y)*sum(g): 4n-1 per row either way."""
    return elementwise.softmax_backward(*_rows_along(event.args[0], event.arg(2, "dim")))


@formula(
    "native_layer_norm_backward",
    "native_group_norm_backward",
    "native_batch_norm_backward",
    "_native_batch_norm_legit_backward",
    "cudnn_batch_norm_backward",
    "batch_norm_backward",
)
def _norm_backward(event: OpEvent, options: CountOptions) -> Cost:
    """Per element: grad_input 8 (recompute x_hat 2, scale by gamma 1, two row sums 2,
    combine 3), 7 without a weight (no gamma to scale by; before probe 13 counted 8);
    grad_weight 2 (multiply by x_hat, accumulate); grad_bias 1 (accumulate).
    Eval-mode BatchNorm grad_input is 1 per element (the folded scale)."""
    grad, x = event.args[0], event.args[1]
    weight_at = {"aten.native_layer_norm_backward": 5, "aten.native_group_norm_backward": 4}.get(event.op, 2)
    weighted = _tensor(event, weight_at, "weight") is not None
    mask = event.kwargs.get("output_mask") or next(
        (
            a
            for a in reversed(event.args)
            if isinstance(a, list) and len(a) == 3 and all(isinstance(b, bool) for b in a)
        ),
        [True, True, True],
    )
    training = True
    if "batch_norm" in event.op:
        training = (
            bool(event.arg(7, "train", True)) if event.op == "aten.native_batch_norm_backward" else True
        )
    per_input = (8 if weighted else 7) if training else 1
    per_element = per_input * int(mask[0]) + 2 * int(mask[1]) + int(mask[2])
    return Cost(flops=x.numel * per_element if x.numel == grad.numel else grad.numel * per_element)


@formula("embedding_dense_backward", "embedding_backward")
def _embedding_backward(event: OpEvent, options: CountOptions) -> Cost:
    """Scatter-add of every output-gradient element into the weight gradient: 1 add each."""
    return Cost(flops=event.args[0].numel)


@formula(
    "max_pool2d_with_indices_backward",
    "max_pool3d_with_indices_backward",
    "adaptive_max_pool2d_backward",
    "adaptive_max_pool3d_backward",
    "fractional_max_pool2d_backward",
    "fractional_max_pool3d_backward",
)
def _max_pool_backward(event: OpEvent, options: CountOptions) -> Cost:
    """Each output gradient is added at its argmax: 1 add per output-gradient element."""
    return Cost(flops=event.args[0].numel)


@formula(
    "avg_pool2d_backward",
    "avg_pool3d_backward",
    "_adaptive_avg_pool2d_backward",
    "_adaptive_avg_pool3d_backward",
)
def _avg_pool_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_output, self, [kernel_size, stride, padding, ...]): pooling.avg_pool_backward,
    windows clipped to the input (padded cells receive nothing)."""
    grad, x = event.args[0], event.args[1]
    dims = 3 if "3d" in event.op else 2
    ins, outs = x.shape[-dims:], grad.shape[-dims:]
    if "adaptive" in event.op:
        hits = [pooling.adaptive_hits(i, o) for i, o in zip(ins, outs, strict=True)]
    else:
        kernel = _per_dim(event.arg(2, "kernel_size"), dims, 1)
        stride = _per_dim(event.arg(3, "stride") or kernel, dims, 1)
        padding = _per_dim(event.arg(4, "padding", 0), dims, 0)
        hits = [
            contraction.scatter_hits(i, o, k, s, p, 1)
            for i, o, k, s, p in zip(ins, outs, kernel, stride, padding, strict=True)
        ]
    planes = grad.numel // max(prod(outs), 1)
    return pooling.avg_pool_backward(planes, prod(outs), hits)


def _sdpa_backward(event: OpEvent, options: CountOptions, causal: Any) -> Cost:
    q, k, v = event.args[1], event.args[2], event.args[3]  # args[0] is grad_out
    return attn.attention_backward(
        prod(q.shape[:-2]),
        q.shape[-2],
        k.shape[-2],
        q.shape[-1],
        v.shape[-1],
        causal_needed=bool(causal) and options.causal == "needed",
    )


@formula(
    "_scaled_dot_product_flash_attention_for_cpu_backward", "_scaled_dot_product_flash_attention_backward"
)
def _sdpa_flash_backward(event: OpEvent, options: CountOptions) -> Cost:
    # is_causal's position in the schemas: 7 (CPU), 11 (CUDA: after cum_seq_q/k, max_q/k, dropout_p)
    return _sdpa_backward(event, options, event.arg(7 if "for_cpu" in event.op else 11, "is_causal", False))


@formula("_scaled_dot_product_efficient_attention_backward", "_scaled_dot_product_cudnn_attention_backward")
def _sdpa_other_backward(event: OpEvent, options: CountOptions) -> Cost:
    # is_causal's position in the schemas: 11 (efficient), 14 (cudnn)
    return _sdpa_backward(
        event, options, event.arg(11 if "efficient" in event.op else 14, "is_causal", False)
    )


# ------------------------------------------------------- quantized and sparse contractions
def namespaced_formula(namespace: str, *ops: str) -> Callable[[Handler], Handler]:
    """Register a handler for ops of another namespace (``quantized.linear``)."""

    def register(handler: Handler) -> Handler:
        for op in ops:
            _HANDLERS[f"{namespace}.{op}"] = handler
        return handler

    return register


def _packed_layout(event: OpEvent, options: CountOptions) -> Any:
    """The PackedLayout of a quantized op's packed weight (its second argument)."""
    return _layout_of(event.args[1], options)


def _layout_of(packed: Any, options: CountOptions, dtype: Any = None) -> Any:
    """The PackedLayout of a torch.ao packed weight: the one read before the trace, else
    read now (``dtype``: the dtype it is stored in, when its unpacked one is not)."""
    layout = options.packed.get(id(packed))
    if layout is None:
        from .compression.packed import layout_of

        layout = layout_of(packed, dtype)
    return layout


@namespaced_formula(
    "quantized",
    "linear",
    "linear_relu",
    "linear_leaky_relu",
    "linear_tanh",
    "linear_dynamic",
    "linear_relu_dynamic",
    "linear_dynamic_fp16",
    "linear_relu_dynamic_fp16",
)
def _quantized_linear(event: OpEvent, options: CountOptions) -> Cost:
    """x (..., K) @ W^T, W (N, K) from the packed weight. int8 x int8 (static, and
    dynamic: x is quantized inside the kernel) is integer work; the fp16 variants
    widen the weight and compute in float."""
    layout = _packed_layout(event, options)
    n, k = layout.weight_shape[0], layout.weight_shape[-1]
    m = event.args[0].numel // max(k, 1)
    if event.op.endswith("fp16"):
        cost = quantized.weight_only_matmul(m, k, n, bias=layout.has_bias)
        return _with_packed_weight(
            cost + (elementwise.pointwise(m * n, 1) if "relu" in event.op else Cost()), event, layout
        )
    return _with_packed_weight(quantized.integer_matmul(m, k, n), event, layout)


def _with_packed_weight(work: Cost, event: OpEvent, layout: Any) -> Cost:
    """``work`` with its default traffic plus the packed weight it reads (a ScriptObject,
    so not among the tensor inputs): ``_packed_bytes``."""
    weight = _packed_bytes(layout)
    return with_traffic(work, event) + Cost(bytes_read=weight, weight_bytes=weight)


def _packed_bytes(layout: Any) -> int:
    """A torch.ao packed weight's bytes: its numel x its bits / 8, its float32 bias, and its
    scales and zero points as torch stores them (``PackedLayout.scale_bytes``: 16 B a scale,
    one per tensor or per output channel)."""
    return (
        prod(layout.weight_shape) * (dtype_bits(layout.dtype) or 32) // 8
        + layout.bias_numel * 4
        + layout.scale_bytes
    )


@namespaced_formula(
    "quantized",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv1d_relu",
    "conv2d_relu",
    "conv3d_relu",
    "conv2d_add",
    "conv2d_add_relu",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
def _quantized_conv(event: OpEvent, options: CountOptions) -> Cost:
    """The conv formula on the packed weight's shape (groups are in its shape);
    integer MACs, 0 FLOPs."""
    layout = _packed_layout(event, options)
    x = event.args[0]
    weight = layout.weight_shape
    if len(weight) == x.ndim + 1:  # conv1d packs a 2-d kernel of height 1
        weight = (*weight[:2], *weight[3:])
    work = quantized.integer_conv(
        x.shape, weight, _out(event).shape, bias=layout.has_bias, transposed=layout.transposed
    )
    return _with_packed_weight(work, event, layout)


# elementwise ops on quantized tensors (MicroNet counts them as the float ops: micronet.py)
QUANTIZED_POINTWISE = (
    "add",
    "add_relu",
    "add_out",
    "add_relu_out",
    "add_scalar",
    "add_scalar_relu",
    "mul",
    "mul_relu",
    "mul_scalar",
    "mul_scalar_relu",
    "relu6",
    "leaky_relu",
    "sigmoid",
    "hardswish",
    "elu",
    "celu",
    "gelu",
    "softmax",
    "threshold",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "batch_norm",
    "batch_norm1d",
    "batch_norm2d",
    "batch_norm3d",
    "batch_norm1d_relu",
    "batch_norm2d_relu",
    "batch_norm3d_relu",
)


@namespaced_formula("quantized", *QUANTIZED_POINTWISE)
def _quantized_pointwise(event: OpEvent, options: CountOptions) -> Cost:
    """Elementwise work on quantized tensors, one operation per output element as the
    float op counts; integer values, so ``cost_of`` keeps it out of FLOPs."""
    return elementwise.pointwise(_out_numel(event), 1)


@namespaced_formula(
    "quantized", "cat", "cat_relu", "embedding_byte", "embedding_4bit", "max_pool1d", "max_pool2d"
)
def _quantized_data(event: OpEvent, options: CountOptions) -> Cost:
    """Concatenation, lookups and max pooling of quantized values: integer comparisons
    and copies, no FLOPs (bytes only)."""
    return Cost()


# torch.ao quantized EmbeddingBag: (packed weight, indices, offsets, scale_grad_by_freq,
# mode, pruned_weights, per_sample_weights, ...), aten's positions; the sums are float work
namespaced_formula("quantized", "embedding_bag_byte", "embedding_bag_4bit")(_embedding_bag)


# PT2E quantization (``prepare_pt2e`` / ``convert_pt2e``): the reference representation's
# quantize and dequantize ops (torch's ``quantized_decomposed`` namespace)
PT2E_QUANTIZE = (
    "quantize_per_tensor",
    "quantize_per_channel",
    "quantize_per_token",
    "quantize_per_channel_group",
)
PT2E_DEQUANTIZE = (
    "dequantize_per_tensor",
    "dequantize_per_channel",
    "dequantize_per_token",
    "dequantize_per_channel_group",
)
PT2E_QPARAMS = (
    "choose_qparams",
    "choose_qparams_symmetric",
    "choose_qparams_per_token",
    "choose_qparams_per_token_asymmetric",
)


@namespaced_formula("quantized_decomposed", *PT2E_QUANTIZE, "fake_quant_per_channel")
@formula(
    "quantize_per_tensor",
    "quantize_per_channel",
    "quantize_per_tensor_dynamic",
    "fake_quantize_per_tensor_affine",
    "fake_quantize_per_channel_affine",
    "fake_quantize_per_tensor_affine_cachemask",  # torch.ao FakeQuantize, with a gradient
    "_fake_quantize_per_tensor_affine_cachemask_tensor_qparams",
    "fake_quantize_per_channel_affine_cachemask",
    "_fake_quantize_learnable_per_tensor_affine",  # _LearnableFakeQuantize (LSQ)
    "_fake_quantize_learnable_per_channel_affine",
)
def _quantize(event: OpEvent, options: CountOptions) -> Cost:
    """x / scale + zero_point, round, clamp: 4 operations per element (the dynamic
    variant also finds the range: min and max, 2 more). Compression overhead."""
    per = 6 if event.op.endswith("dynamic") else 4
    return elementwise.pointwise(event.args[0].numel, per)


@formula("_fused_moving_avg_obs_fq_helper")
def _observe_and_fake_quantize(event: OpEvent, options: CountOptions) -> Cost:
    """A QAT fake quantizer's fused op: the running min and max (2 per element) and
    the fake quantize (4 per element, as ``fake_quantize_per_tensor_affine``).
    Compression overhead."""
    return elementwise.pointwise(event.args[0].numel, 6)


@namespaced_formula("quantized_decomposed", *PT2E_DEQUANTIZE)
@formula("dequantize")
def _dequantize(event: OpEvent, options: CountOptions) -> Cost:
    """(q - zero_point) * scale: 2 operations per element. Compression overhead."""
    return elementwise.pointwise(sum(t.numel for t in event.outputs), 2)


@namespaced_formula("quantized_decomposed", *PT2E_QPARAMS)
def _pt2e_qparams(event: OpEvent, options: CountOptions) -> Cost:
    """A dynamic quantization's range: min and max of the input, 2 operations per input
    element (the scale and zero point from them are a few per tensor or token, not
    counted). Compression overhead."""
    return elementwise.pointwise(event.args[0].numel, 2)


# torchao's quantization primitives, each call recorded whole (tracing/library_calls.py)
TORCHAO_PRIMITIVES = {
    "torchao.quantize_affine": 4,
    "torchao.fake_quantize_affine": 4,
    "torchao.dequantize_affine": 2,
    "torchao.choose_qparams_affine": 2,
}


@namespaced_formula("torchao", *(name.removeprefix("torchao.") for name in TORCHAO_PRIMITIVES))
def _torchao_quantize(event: OpEvent, options: CountOptions) -> Cost:
    """torchao's ``quantize_affine`` and fake quantize (4 operations per input element, as
    ``quantize_per_tensor``), ``dequantize_affine`` (2, as ``dequantize``) and
    ``choose_qparams_affine`` (2: min and max). Compression overhead."""
    return elementwise.pointwise(event.args[0].numel, TORCHAO_PRIMITIVES[event.op])


@formula("quantized_lstm", "quantized_gru")
def _quantized_recurrent(event: OpEvent, options: CountOptions) -> Cost:
    """torch.ao dynamic quantized LSTM/GRU: (input, hx, packed cells, has_biases,
    num_layers, dropout, train, bidirectional, ...) or the packed-sequence form
    (data, batch_sizes, hx, cells, ...); formulas/quantized.py. Its weights are read from
    the cells (ScriptObjects, not tensor inputs): each layer and direction's packed W_ih
    and W_hh, their biases, scales and zero points (``_packed_bytes``)."""
    at = next(
        i
        for i, a in enumerate(event.args)
        if isinstance(a, list) and a and type(a[0]).__name__ == "ScriptObject"
    )
    cells, hx, x = event.args[at], event.args[at - 1], event.args[0]
    hidden = (hx[0] if isinstance(hx, list) else hx).shape[-1]
    kind = str(cells[0].__getstate__()[0][0])
    work = quantized.dynamic_recurrent(
        "lstm" if "lstm" in event.op else "gru",
        x.numel // x.shape[-1],
        x.shape[-1],
        hidden,
        layers=int(event.args[at + 2]),
        directions=2 if bool(event.args[at + 5]) else 1,
        bias=bool(event.args[at + 1]),
        integer="fp16" not in kind,
    )
    weights = sum(_packed_bytes(layout) for layout in _cell_layouts(cells, options))
    return with_traffic(work, event) + Cost(bytes_read=weights, weight_bytes=weights)


def _cell_layouts(cells: list[Any], options: CountOptions) -> list[Any]:
    """The PackedLayouts of a dynamic LSTM/GRU's cells' packed weights: each cell's state is
    (kind, biases, ..., [packed W_ih, packed W_hh]); a "quantized_fp16" cell's unpack to
    float32 but are stored float16. Each layer's biases are packed with its weights."""
    import torch

    from .compression.packed import is_packed

    found = []
    for cell in cells:
        state = cell.__getstate__()[0]
        dtype = torch.float16 if "fp16" in str(state[0]) else None
        found += [_layout_of(packed, options, dtype) for packed in state[-1] if is_packed(packed)]
    return found


@namespaced_formula(
    "quantized",
    "quantized_lstm_cell_dynamic",
    "quantized_gru_cell_dynamic",
    "quantized_rnn_tanh_cell_dynamic",
    "quantized_rnn_relu_cell_dynamic",
)
def _quantized_recurrent_cell(event: OpEvent, options: CountOptions) -> Cost:
    """One step of a torch.ao dynamic quantized LSTMCell/GRUCell/RNNCell: (input, hx,
    packed W_ih, packed W_hh, b_ih, b_hh); int8 projections, float gates. Its weights are
    the two packed ones (``_packed_bytes``: values, the biases torch.ao packs with them,
    scales and zero points); the separate b_ih, b_hh are read as torch passes them."""
    x, hx = event.args[0], event.args[1]
    mode = next(m for m in ("lstm", "gru", "rnn_tanh", "rnn_relu") if f"_{m}_cell" in event.op)
    from .compression.packed import is_packed

    weights = sum(
        _packed_bytes(_layout_of(packed, options)) for packed in event.args[2:4] if is_packed(packed)
    )
    work = quantized.dynamic_recurrent(
        mode,
        x.numel // x.shape[-1],
        x.shape[-1],
        (hx[0] if isinstance(hx, list) else hx).shape[-1],
        layers=1,
        directions=1,
        bias=True,
        integer=True,
    )
    return with_traffic(work, event) + Cost(bytes_read=weights, weight_bytes=weights)


@formula("_int_mm")
def _int_mm(event: OpEvent, options: CountOptions) -> Cost:
    a, b = event.args[0], event.args[1]
    return quantized.integer_matmul(a.shape[0], a.shape[1], b.shape[1])


@formula(
    "_weight_int8pack_mm",
    "_weight_int4pack_mm",
    "_weight_int4pack_mm_for_cpu",
    "_weight_int4pack_mm_with_scales_and_zeros",
)
def _weight_only_mm(event: OpEvent, options: CountOptions) -> Cost:
    """x (M, K) float @ a packed int8/int4 weight: N from the output."""
    k, out = event.args[0].shape[-1], _out(event)
    n = out.shape[-1]
    return quantized.weight_only_matmul(out.numel // max(n, 1), k, n)


@formula("_dyn_quant_matmul_4bit")
def _dyn_quant_4bit(event: OpEvent, options: CountOptions) -> Cost:
    """x quantized to int8 on the fly @ an int4 weight: integer MACs."""
    k, n = int(event.arg(3, "in_features")), int(event.arg(4, "out_features"))
    return quantized.integer_matmul(_out_numel(event) // max(n, 1), k, n)


@formula("_scaled_mm")
def _scaled_mm(event: OpEvent, options: CountOptions) -> Cost:
    """fp8 (M, K) @ (K, N) with scales: float MACs (fp8 is floating point)."""
    a, b = event.args[0], event.args[1]
    bias = _tensor(event, 4, "bias") is not None
    return contraction.matmul(
        1, a.shape[0], a.shape[1], b.shape[1], bias_adds=a.shape[0] * b.shape[1] if bias else 0
    )


def _sparse_product(
    a: TensorMeta, b: TensorMeta, *, bias_adds: int = 0, extra_scalings: int = 0
) -> Cost | None:
    """(M, K) @ (K, N) with one sparse input operand, by its stored values: sparse @ dense
    nnz*N products, dense @ sparse nnz*M (formulas/sparse.py); a batch (B, M, K) @ (B, K, N)
    likewise, nnz counting the stored values of every matrix. None when neither or both
    are (both: the dense count, an upper bound; the work depends on where the nonzeros
    meet)."""
    left, right = _sparse_activation_nnz(a), _sparse_activation_nnz(b)
    if (left is None) == (right is None):
        return None
    nnz, n = (left, b.shape[-1]) if left is not None else (right, a.shape[-2])
    return sparse_formulas.sparse_matmul(nnz or 0, n, bias_adds=bias_adds, extra_scalings=extra_scalings)


def _sparse_activation_nnz(a: TensorMeta) -> int | None:
    """The stored values of a sparse operand made in the forward or given as an input (a
    GNN's adjacency); None for a dense one, one on meta, and a sparse parameter or buffer
    (a pruned weight stored sparse), which keeps the dense count: its savings are the
    compression view's (docs/compression.md)."""
    return a.nnz if a.role == "activation" else None


@formula("_sparse_addmm", "_sparse_mm", "sspaddmm")
def _sparse_mm(event: OpEvent, options: CountOptions) -> Cost:
    """A sparse (M, K) @ dense (K, N): an input or activation by its stored values
    (formulas/sparse.py: nnz*N MACs, 2*nnz*N FLOPs); a sparse weight as the dense matmul
    of those shapes, the compression view giving the effective MACs (nnz * N)."""
    has_bias = event.op != "aten._sparse_mm"
    if has_bias:
        a, b = event.arg(1, "mat1"), event.arg(2, "mat2")
    else:
        a, b = event.arg(0, "sparse"), event.arg(1, "dense")
    adds, extras = _alpha_beta_extras(event, a.shape[0] * b.shape[1], 3, 4) if has_bias else (0, 0)
    sparse = _sparse_product(a, b, bias_adds=adds, extra_scalings=extras)
    if sparse is not None:
        return sparse
    return contraction.matmul(1, a.shape[0], a.shape[1], b.shape[1], bias_adds=adds, extra_scalings=extras)


@formula("_sparse_mm_reduce_impl")
def _sparse_mm_reduce(event: OpEvent, options: CountOptions) -> Cost:
    """``torch.sparse.mm(A, B, reduce)`` (torch_geometric's sparse mean / max aggregation):
    sparse CSR A (M, K) @ dense B (K, N) reduced per output row; a sparse A without a
    readable count (a weight) by its dense M*K stored places."""
    a, b = event.arg(0, "self"), event.arg(1, "other")
    nnz = _sparse_activation_nnz(a)
    stored = nnz if nnz is not None else a.shape[0] * a.shape[1]
    return sparse_formulas.sparse_matmul_reduce(
        stored, a.shape[0], b.shape[1], str(event.arg(2, "reduce", "sum"))
    )


@formula("_sparse_semi_structured_linear")
def _semi_structured_linear(event: OpEvent, options: CountOptions) -> Cost:
    bias = _tensor(event, 3, "bias") is not None
    return quantized.semi_structured_matmul(_out_numel(event), event.args[0].shape[-1], bias=bias)


@formula("_sparse_semi_structured_mm", "_sparse_semi_structured_addmm", "_cslt_sparse_mm")
def _semi_structured_mm(event: OpEvent, options: CountOptions) -> Cost:
    """2:4 sparse A (its packed values) @ dense B (K, N): K from B."""
    if event.op == "aten._sparse_semi_structured_addmm":
        b, bias = event.arg(3, "mat2"), True
    elif event.op == "aten._cslt_sparse_mm":
        b, bias = event.arg(1, "dense_B"), _tensor(event, 2, "bias") is not None
    else:
        b, bias = event.arg(2, "mat2"), False
    return quantized.semi_structured_matmul(_out_numel(event), b.shape[0], bias=bias)


# --------------------------------------------------------------------------- detection (torchvision)
def _nms(event: OpEvent, options: CountOptions) -> Cost:
    """torchvision.nms(boxes (N, 4), scores (N,), iou_threshold) -> kept indices."""
    return detection.nms(event.arg(0, "dets").shape[0])


def _roi_align(event: OpEvent, options: CountOptions) -> Cost:
    """torchvision.roi_align(input (N, C, H, W), rois (K, 5), spatial_scale, PH, PW,
    sampling_ratio, aligned) -> (K, C, PH, PW). sampling_ratio <= 0 picks the samples per
    bin from each region's size (values): counted as 1 per bin, a lower bound."""
    out = _out(event)
    rois, channels, bins = out.shape[0], out.shape[1], out.shape[2] * out.shape[3]
    ratio = int(event.arg(5, "sampling_ratio", -1))
    return detection.roi_align(rois, channels, bins, ratio * ratio if ratio > 0 else 1)


def _roi_align_backward(event: OpEvent, options: CountOptions) -> Cost:
    """torchvision._roi_align_backward(grad (K, C, PH, PW), rois, spatial_scale, PH, PW,
    batch_size, C, H, W, sampling_ratio, aligned): S as in the forward."""
    grad = event.arg(0, "grad")
    ratio = int(event.arg(9, "sampling_ratio", -1))
    return detection.roi_align_backward(
        grad.shape[0], grad.shape[1], grad.shape[2] * grad.shape[3], ratio * ratio if ratio > 0 else 1
    )


def _ps_roi_align_backward(event: OpEvent, options: CountOptions) -> Cost:
    """torchvision._ps_roi_align_backward(grad (K, C_out, PH, PW), rois, channel_mapping,
    spatial_scale, PH, PW, sampling_ratio, ...): as RoIAlign's, per output gradient."""
    grad = event.arg(0, "grad")
    ratio = int(event.arg(6, "sampling_ratio", -1))
    return detection.roi_align_backward(
        grad.shape[0], grad.shape[1], grad.shape[2] * grad.shape[3], ratio * ratio if ratio > 0 else 1
    )


def _deform_shapes(event: OpEvent, first: int) -> tuple[TensorMeta, TensorMeta, TensorMeta, bool, bool]:
    """(input, weight, offset, use_mask, a layer's bias) of deform_conv2d or its backward,
    whose arguments start one later (after grad). torchvision passes zeros for a layer
    without bias: only a parameter (or buffer) counts as one."""
    x, weight, offset = event.args[first], event.args[first + 1], event.args[first + 2]
    bias = event.args[first + 4]
    has_bias = isinstance(bias, TensorMeta) and bias.role != "activation"
    return x, weight, offset, bool(event.args[first + 13]), has_bias


def _deform_conv2d(event: OpEvent, options: CountOptions) -> Cost:
    """torchvision.deform_conv2d(input, weight, offset, mask, bias, stride_h, stride_w,
    pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, use_mask)."""
    x, weight, offset, mask, bias = _deform_shapes(event, 0)
    out = _out(event)
    taps = weight.numel // max(weight.shape[0] * weight.shape[1], 1)
    positions = out.numel // max(out.shape[1], 1)
    return detection.deform_conv2d(
        out.numel, weight.numel // max(weight.shape[0], 1), x.shape[1] * taps * positions,
        offset.numel // 2, taps * positions, mask=mask, bias=bias,
    )  # fmt: skip


def _deform_conv2d_backward(event: OpEvent, options: CountOptions) -> Cost:
    """torchvision._deform_conv2d_backward(grad, input, weight, offset, mask, bias, ...)."""
    grad = event.args[0]
    x, weight, offset, mask, bias = _deform_shapes(event, 1)
    groups = int(event.args[12])
    taps = weight.numel // max(weight.shape[0] * weight.shape[1], 1)
    positions = grad.numel // max(grad.shape[1], 1)
    return detection.deform_conv2d_backward(
        grad.shape[1], grad.shape[1] // max(groups, 1), weight.numel, positions,
        x.shape[1] * taps * positions, offset.numel // 2, mask=mask, bias=bias,
    )  # fmt: skip


_HANDLERS["torchvision.nms"] = _nms
_HANDLERS["torchvision.roi_align"] = _roi_align
_HANDLERS["torchvision._roi_align_backward"] = _roi_align_backward
_HANDLERS["torchvision.deform_conv2d"] = _deform_conv2d
# Position-sensitive RoIAlign (R-FCN): output channel c of bin b reads input channel c*PH*PW + b,
# at the bin's sample points; the same counts per output element and per sample point.
_HANDLERS["torchvision.ps_roi_align"] = _roi_align
_HANDLERS["torchvision._ps_roi_align_backward"] = _ps_roi_align_backward
_HANDLERS["torchvision._deform_conv2d_backward"] = _deform_conv2d_backward


# ------------------------------------------------------------------ indexed writes
# An in-place indexed write (``cache.index_copy_(2, pos, k)``, ``x[idx] = v``,
# ``x.scatter_(d, idx, src)``) touches only the slice it writes: it reads the indices
# and the values it writes, and writes that many elements of the destination (reading
# them too when it accumulates). The out-of-place forms make a whole new tensor and keep
# the default rule (read every input, write the whole result).

# op -> (position of the index argument, position and name of the values written)
_INDEXED_ARGS = {
    "index_copy": (2, 3, "source"),
    "index_add": (2, 3, "source"),
    "index_reduce": (2, 3, "source"),
    "scatter": (2, 3, "src"),
    "scatter_add": (2, 3, "src"),
    "scatter_reduce": (2, 3, "src"),
    "index_put": (1, 2, "values"),
    "_index_put_impl": (1, 2, "values"),
    "_unsafe_index_put": (1, 2, "values"),
}
_ALWAYS_ACCUMULATE = frozenset({"index_add", "index_reduce", "scatter_add", "scatter_reduce"})


def _written_elements(event: OpEvent, name: str) -> int | None:
    """Elements of the destination an indexed write touches; None when that depends on
    values (a boolean mask index)."""
    if name.startswith("index_") and name != "index_put":
        return int(event.arg(3, "source").numel)  # whole slices along dim, one per index
    if name.startswith("scatter"):
        return int(event.arg(2, "index").numel)  # one element per index entry
    # dest[indices] = values: the index tensors broadcast together, times the dims they skip
    dest, indices = event.args[0], list(event.arg(1, "indices") or [])
    tensors = [i for i in indices if isinstance(i, TensorMeta)]
    if any(i.dtype in ("bool", "uint8") for i in tensors):
        return None
    picked = prod(_broadcast_shape([i.shape for i in tensors]))
    skipped = prod(size for size, i in zip(dest.shape, indices, strict=False) if i is None)
    return picked * skipped * prod(dest.shape[len(indices) :])


def _broadcast_shape(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    ndim = max((len(s) for s in shapes), default=0)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    return tuple(max((s[d] for s in padded), default=1) for d in range(ndim))


def _accumulates(event: OpEvent, name: str) -> bool:
    if name in _ALWAYS_ACCUMULATE:
        return True
    if name == "scatter":
        return event.kwargs.get("reduce", event.arg(4, "reduce")) is not None
    return name in ("index_put", "_index_put_impl", "_unsafe_index_put") and bool(
        event.arg(3, "accumulate", False)
    )


def _indexed_write(event: OpEvent) -> Cost:
    """Accumulating writes (``index_add_``, ``scatter_add_``, ``scatter_reduce_``,
    ``index_put_(accumulate=True)``): 1 FLOP per element written (2 with index_add's
    alpha != 1); plain writes 0. In-place forms move only the written slice (above)."""
    name = op_key(event.op).removeprefix("aten.")
    written = _written_elements(event, name)
    accumulates = _accumulates(event, name)
    flops = 0
    if written is not None and accumulates and is_floating(event):
        alpha = event.arg(4, "alpha", 1) if name == "index_add" else 1
        flops = written * (2 if _nonzero(alpha, 1) else 1)
    if not event.op.endswith("_") or written is None:
        return Cost(flops=flops)  # a whole new tensor (or an unknown slice): the default rule
    dest = event.args[0]
    index_at, values_at, values_name = _INDEXED_ARGS[name]
    index = event.arg(index_at, "index" if index_at == 2 else "indices")
    indices = [index] if isinstance(index, TensorMeta) else [i for i in index if isinstance(i, TensorMeta)]
    values = event.arg(values_at, values_name)
    moved = min(values.numel, written) * values.itemsize if isinstance(values, TensorMeta) else 0
    read = sum(i.nbytes for i in indices) + moved + (written * dest.itemsize if accumulates else 0)
    weights = moved if isinstance(values, TensorMeta) and values.role not in NOT_WEIGHTS else 0
    return Cost(flops=flops, bytes_read=read, bytes_written=written * dest.itemsize, weight_bytes=weights)


def _data_work(event: OpEvent) -> Cost:
    """The FLOPs and (when not the default) traffic of a data op."""
    if event.op in VIEW_COPIES:
        return _view_copy(event)
    return _indexed_write(event) if op_key(event.op).removeprefix("aten.") in _INDEXED_ARGS else Cost()


def _view_copy(event: OpEvent) -> Cost:
    """A view's copying form (``diagonal_copy``, ``narrow_copy``, ``expand_copy``): it writes
    its result and reads what the view sees, no more than the input's bytes (an expand's
    input) nor the result's (a diagonal's, a narrow's): min(input, output) read."""
    source = event.args[0]
    written = sum(out.nbytes for out in event.outputs)
    read = min(source.nbytes, written) if isinstance(source, TensorMeta) else 0
    weights = read if isinstance(source, TensorMeta) and source.role not in NOT_WEIGHTS else 0
    return Cost(bytes_read=read, bytes_written=written, weight_bytes=weights)


formula(*_ALWAYS_ACCUMULATE)(lambda event, options: _indexed_write(event))


# ---------------------------------------------------------------------- dense linear algebra
def _matrix(tensor: TensorMeta) -> tuple[int, int, int]:
    """(batch, rows, cols) of a (..., rows, cols) tensor."""
    return prod(tensor.shape[:-2]), tensor.shape[-2], tensor.shape[-1]


def _right_hand_sides(result: TensorMeta, n: int) -> int:
    """Right-hand sides of a solve over the whole batch: the solution's numel / n (its
    columns when ``left``, its rows otherwise: n values each either way)."""
    return result.numel // n if n else 0


def _per_square_matrix(count: Callable[[int, int], Cost]) -> Handler:
    """The handler of an op whose cost is ``count(n, batch)`` of its first argument's
    ``batch`` n x n matrices."""

    def handler(event: OpEvent, options: CountOptions) -> Cost:
        batch, _, n = _matrix(event.args[0])
        return count(n, batch)

    return handler


# (A, ...) -> ...: per n x n matrix of A's batch. det: LU + n; slogdet: LU + 5n - 1; potrf;
# linalg_eig (eigvals too under a dispatch mode): an estimate (iterative); matrix_exp;
# sytrf (LDL^T, ldl_factor); potri (cholesky_inverse).
for _names, _count in (
    (("_linalg_det",), linalg_formulas.det),
    (("_linalg_slogdet",), linalg_formulas.slogdet),
    (("linalg_cholesky_ex", "linalg_cholesky", "cholesky"), linalg_formulas.cholesky),
    (("linalg_eig",), linalg_formulas.eig),
    (("linalg_matrix_exp",), linalg_formulas.matrix_exp),
    (("linalg_ldl_factor_ex",), linalg_formulas.sytrf),
    (("cholesky_inverse",), linalg_formulas.potri),
):
    formula(*_names)(_per_square_matrix(_count))


@formula("linalg_lu_factor_ex", "linalg_lu_factor", "linalg_lu")
def _linalg_lu(event: OpEvent, options: CountOptions) -> Cost:
    """(A, pivot=True, ...): without pivoting (CUDA only) no pivot search."""
    batch, rows, cols = _matrix(event.args[0])
    return linalg_formulas.lu(rows, cols, batch, pivot=event.arg(1, "pivot", True) is not False)


@formula("_linalg_solve_ex", "linalg_solve_ex", "linalg_solve")
def _linalg_solve(event: OpEvent, options: CountOptions) -> Cost:
    """(A, B, left, ...) -> (result, LU, pivots, info): LU of A (its own batch, not B's
    broadcast), then getrs for every right-hand side of the result."""
    batch, _, n = _matrix(event.args[0])
    return linalg_formulas.solve(n, _right_hand_sides(event.outputs[0], n), batch)


@formula("linalg_inv_ex", "linalg_inv", "inverse")
def _linalg_inv(event: OpEvent, options: CountOptions) -> Cost:
    """torch solves A X = I: LU + getrs for the n columns of the identity."""
    batch, _, n = _matrix(event.args[0])
    return linalg_formulas.solve(n, batch * n, batch)


@formula("linalg_lu_solve", "lu_solve")
def _linalg_lu_solve(event: OpEvent, options: CountOptions) -> Cost:
    """(LU, pivots, B, ...): getrs for every right-hand side of the result. The deprecated
    ``aten.lu_solve`` takes (B, LU, pivots) (torch 2.x decomposes it into linalg_lu_solve)."""
    n = event.args[1 if event.op.startswith("aten.lu_solve") else 0].shape[-1]
    return linalg_formulas.lu_solve(n, _right_hand_sides(event.outputs[0], n))


@formula("cholesky_solve")
def _cholesky_solve(event: OpEvent, options: CountOptions) -> Cost:
    """(B, L, upper): two triangular solves per right-hand side."""
    n = event.args[1].shape[-1]
    return linalg_formulas.cholesky_solve(n, _right_hand_sides(event.outputs[0], n))


@formula("linalg_solve_triangular")
def _solve_triangular(event: OpEvent, options: CountOptions) -> Cost:
    """(A, B, upper, left=True, unitriangular=False)."""
    n = event.args[0].shape[-1]
    unit = bool(event.arg(4, "unitriangular", False))
    return linalg_formulas.triangular_solve(n, _right_hand_sides(event.outputs[0], n), unit=unit)


@formula("triangular_solve")
def _triangular_solve(event: OpEvent, options: CountOptions) -> Cost:
    """(b, A, upper, transpose, unitriangular) -> (solution, A's copy)."""
    n = event.args[1].shape[-1]
    unit = bool(event.arg(4, "unitriangular", False))
    return linalg_formulas.triangular_solve(n, _right_hand_sides(event.outputs[0], n), unit=unit)


@formula("linalg_qr")
def _linalg_qr(event: OpEvent, options: CountOptions) -> Cost:
    """(A, mode='reduced'): geqrf, then orgqr for Q unless mode is 'r' (LAWN 41 counts)."""
    batch, rows, cols = _matrix(event.args[0])
    return linalg_formulas.qr(rows, cols, batch, mode=str(event.arg(1, "mode", "reduced")))


@formula("geqrf")
def _geqrf(event: OpEvent, options: CountOptions) -> Cost:
    batch, rows, cols = _matrix(event.args[0])
    return linalg_formulas.geqrf(rows, cols, batch)


@formula("linalg_householder_product")
def _householder_product(event: OpEvent, options: CountOptions) -> Cost:
    """(A m x n, tau k) -> Q m x n from k reflectors (``torch.orgqr`` too)."""
    batch, rows, cols = _matrix(event.args[0])
    return linalg_formulas.orgqr(rows, cols, event.args[1].shape[-1], batch)


@formula("ormqr")
def _ormqr(event: OpEvent, options: CountOptions) -> Cost:
    """(A, tau, C, left=True, transpose=False): tau's k reflectors applied to C."""
    batch, rows, cols = _matrix(event.args[2])
    left = event.arg(3, "left", True) is not False
    return linalg_formulas.ormqr(rows, cols, event.args[1].shape[-1], batch, left=left)


@formula("_linalg_svd")
def _linalg_svd(event: OpEvent, options: CountOptions) -> Cost:
    """(A, full_matrices=False, compute_uv=True, driver=None): an estimate (iterative).
    svdvals, matrix_norm(2, 'nuc'), cond and matrix_rank reach it with compute_uv=True
    under any dispatch mode (ATen computes the vectors when a mode is active), so they
    are counted with the thin vectors."""
    batch, rows, cols = _matrix(event.args[0])
    vectors = event.arg(2, "compute_uv", True) is not False
    full = bool(event.arg(1, "full_matrices", False))
    return linalg_formulas.svd(rows, cols, batch, vectors=vectors, full=full)


@formula("_linalg_eigh")
def _linalg_eigh(event: OpEvent, options: CountOptions) -> Cost:
    """(A, UPLO='L', compute_v=True): an estimate (iterative); eigvalsh as svdvals above."""
    batch, _, n = _matrix(event.args[0])
    return linalg_formulas.eigh(n, batch, vectors=event.arg(2, "compute_v", True) is not False)


@formula("linalg_pinv")
def _linalg_pinv(event: OpEvent, options: CountOptions) -> Cost:
    """(A, *, atol, rtol, hermitian) as one op (its SVD or eigh runs inside, not recorded):
    the decomposition's estimate + the products that form the pseudo-inverse."""
    batch, rows, cols = _matrix(event.args[0])
    hermitian = bool(event.kwargs.get("hermitian", False))  # keyword-only, as atol and rtol
    return linalg_formulas.pinv(rows, cols, batch, hermitian=hermitian)


@formula("linalg_lstsq")
def _linalg_lstsq(event: OpEvent, options: CountOptions) -> Cost:
    """(A, B, rcond=None, *, driver=None) -> (solution, ...): per system of the broadcast
    batch, B's columns as right-hand sides (a vector B: 1)."""
    a, b = event.args[0], event.args[1]
    rows, cols = a.shape[-2], a.shape[-1]
    rhs = 1 if b.ndim == a.ndim - 1 else b.shape[-1]
    per_system = cols * rhs
    batch = event.outputs[0].numel // per_system if per_system else prod(a.shape[:-2])
    driver = event.kwargs.get("driver")  # keyword-only
    return linalg_formulas.lstsq(rows, cols, rhs, batch, driver=driver)


@formula("linalg_ldl_solve")
def _linalg_ldl_solve(event: OpEvent, options: CountOptions) -> Cost:
    """(LD, pivots, B, hermitian): sytrs for every right-hand side of the result."""
    n = event.args[0].shape[-1]
    return linalg_formulas.sytrs(n, _right_hand_sides(event.outputs[0], n))


# ------------------------------------------------------------------------------- losses
def _reduction(event: OpEvent, index: int) -> int:
    return int(event.arg(index, "reduction", loss_formulas.MEAN))


@formula("_ctc_loss")
def _ctc_loss(event: OpEvent, options: CountOptions) -> Cost:
    """_ctc_loss(log_probs (T, N, C) or (T, C), targets, input_lengths, target_lengths, ...)
    -> (nll, log_alpha (N, T, 2S + 1))."""
    batch, time, states = _ctc_sizes(event.outputs[1])
    return loss_formulas.ctc_loss(batch, time, states)


@formula("_ctc_loss_backward")
def _ctc_loss_backward(event: OpEvent, options: CountOptions) -> Cost:
    """_ctc_loss_backward(grad, log_probs, targets, input_lengths, target_lengths, nll,
    log_alpha, blank, ...)."""
    batch, time, states = _ctc_sizes(event.args[6])
    return loss_formulas.ctc_loss_backward(batch, time, states, event.args[1].shape[-1])


def _ctc_sizes(log_alpha: TensorMeta) -> tuple[int, int, int]:
    """(sequences, frames, states) from log_alpha's shape (N, T, 2S + 1) or (T, 2S + 1)."""
    batch = log_alpha.shape[0] if log_alpha.ndim == 3 else 1
    return batch, log_alpha.shape[-2], log_alpha.shape[-1]


def _margin_sizes(x: TensorMeta) -> tuple[int, int]:
    """(samples, classes) of multi_margin_loss's input: (N, C) or (C,)."""
    return (x.shape[0], x.shape[1]) if x.ndim == 2 else (1, x.shape[0] if x.ndim else 1)


@formula("multi_margin_loss")
def _multi_margin_loss(event: OpEvent, options: CountOptions) -> Cost:
    """(self, target, p=1, margin=1, weight=None, reduction=mean)."""
    samples, classes = _margin_sizes(event.args[0])
    weighted = _tensor(event, 4, "weight") is not None
    return loss_formulas.multi_margin_loss(
        samples, classes, int(event.arg(2, "p", 1)), _reduction(event, 5), weighted=weighted
    )


@formula("multi_margin_loss_backward")
def _multi_margin_loss_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_output, self, target, p, margin, weight=None, reduction)."""
    samples, classes = _margin_sizes(event.args[1])
    weighted = _tensor(event, 5, "weight") is not None
    return loss_formulas.multi_margin_loss_backward(
        samples, classes, int(event.arg(3, "p", 1)), weighted=weighted
    )


@formula("nll_loss_forward", "nll_loss2d_forward", "nll_loss", "nll_loss2d")
def _nll_loss(event: OpEvent, options: CountOptions) -> Cost:
    """(self, target, weight, reduction, ignore_index): one sample per target element."""
    return loss_formulas.nll_loss(
        event.arg(1, "target").numel, _reduction(event, 3), weighted=_tensor(event, 2, "weight") is not None
    )


@formula("nll_loss_backward", "nll_loss2d_backward")
def _nll_loss_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_output, self, target, weight, reduction, ignore_index, total_weight)."""
    return loss_formulas.nll_loss_backward(
        event.arg(2, "target").numel, _reduction(event, 4), weighted=_tensor(event, 3, "weight") is not None
    )


# torch 2.14's chunked ``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``:
# a ``torch.library.custom_op`` whose matmuls run inside it, out of a dispatch mode's sight.
_LCE_REDUCTIONS = {"none": loss_formulas.NONE, "mean": loss_formulas.MEAN, "sum": loss_formulas.SUM}


def _linear_cross_entropy_chunked(event: OpEvent, options: CountOptions) -> Cost:
    """torch_nn._linear_cross_entropy_batch_chunked(input (N, H), linear_weight (V, H),
    target, linear_bias, weight, reduction, ignore_index, label_smoothing, batch_chunk_size,
    acc_policy, acc_dtype, allow_retain_graph, compute_input_grad, compute_linear_weight_grad,
    compute_linear_bias_grad) -> (loss, grad_input, grad_linear_weight, grad_linear_bias):
    the reference path's count, with the gradients its forward computes (the flags say which).
    ``label_smoothing`` is always 0 here (torch takes the reference path otherwise)."""
    x, w = event.arg(0, "input"), event.arg(1, "linear_weight")
    target = event.arg(2, "target")
    return loss_formulas.linear_cross_entropy(
        x.shape[0],
        x.shape[-1],
        w.shape[0],
        _LCE_REDUCTIONS[str(event.arg(5, "reduction", "mean"))],
        bias=_tensor(event, 3, "linear_bias") is not None,
        weighted=_tensor(event, 4, "weight") is not None,
        probabilities=target.is_floating,
        grad_input=bool(event.arg(12, "compute_input_grad", False)),
        grad_weight=bool(event.arg(13, "compute_linear_weight_grad", False)),
        grad_bias=bool(event.arg(14, "compute_linear_bias_grad", False)),
    )


def _linear_cross_entropy_chunked_no_reduction(event: OpEvent, options: CountOptions) -> Cost:
    """torch_nn._linear_cross_entropy_batch_chunked_no_reduction(input (N, H), linear_weight
    (V, H), target (N,), linear_bias, weight, ignore_index, batch_chunk_size, acc_policy,
    acc_dtype) -> loss (N,): the loss only; its backward recomputes the logits and the
    gradients in Python, counted there op by op."""
    x, w = event.arg(0, "input"), event.arg(1, "linear_weight")
    return loss_formulas.linear_cross_entropy(
        x.shape[0],
        x.shape[-1],
        w.shape[0],
        loss_formulas.NONE,
        bias=_tensor(event, 3, "linear_bias") is not None,
        weighted=_tensor(event, 4, "weight") is not None,
    )


_HANDLERS["torch_nn._linear_cross_entropy_batch_chunked"] = _linear_cross_entropy_chunked
_HANDLERS["torch_nn._linear_cross_entropy_batch_chunked_no_reduction"] = (
    _linear_cross_entropy_chunked_no_reduction
)


@formula(
    "mse_loss",
    "huber_loss",
    "smooth_l1_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "soft_margin_loss",
)
def _pointwise_loss(event: OpEvent, options: CountOptions) -> Cost:
    """(self, target, ...): elements = the broadcast of input and target."""
    name = op_key(event.op).removeprefix("aten.")
    x, target = event.args[0], event.arg(1, "target")
    elements = prod(_broadcast_shape([x.shape, target.shape]))
    per = loss_formulas.LOSS_PER_ELEMENT[name]
    weighted = False
    if name == "smooth_l1_loss" and float(event.arg(3, "beta", 1.0)) == 0.0:
        per = loss_formulas.SMOOTH_L1_BETA_ZERO
    elif name == "binary_cross_entropy":
        weighted = _tensor(event, 2, "weight") is not None
    elif name == "binary_cross_entropy_with_logits":
        weighted = _tensor(event, 2, "weight") is not None
        per += loss_formulas.POS_WEIGHT_PER_ELEMENT if _tensor(event, 3, "pos_weight") is not None else 0
    reduction_at = {"binary_cross_entropy": 3, "binary_cross_entropy_with_logits": 4}.get(name, 2)
    return loss_formulas.pointwise_loss(elements, per, _reduction(event, reduction_at), weighted=weighted)


@formula(*loss_formulas.LOSS_BACKWARD_PER_ELEMENT)
def _pointwise_loss_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_output, self, target, ...) -> the input's gradient."""
    name = event.op.removeprefix("aten.")
    weighted = name == "binary_cross_entropy_backward" and _tensor(event, 3, "weight") is not None
    return loss_formulas.pointwise_loss_backward(
        _out_numel(event),
        loss_formulas.LOSS_BACKWARD_PER_ELEMENT[name],
        _reduction(event, 4 if name == "binary_cross_entropy_backward" else 3),
        weighted=weighted,
    )


@formula(
    "upsample_nearest1d_backward",
    "upsample_nearest2d_backward",
    "upsample_nearest3d_backward",
    "_upsample_nearest_exact1d_backward",
    "_upsample_nearest_exact2d_backward",
    "_upsample_nearest_exact3d_backward",
)
def _upsample_nearest_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_output, output_size, input_size, scales...): sums of the copied gradients."""
    out_sizes = tuple(int(s) for s in event.arg(1, "output_size"))
    input_size = tuple(int(s) for s in event.arg(2, "input_size"))
    dims = len(out_sizes)
    names = {1: ["scales"], 2: ["scales_h", "scales_w"], 3: ["scales_d", "scales_h", "scales_w"]}[dims]
    scales = [event.arg(3 + d, name) for d, name in enumerate(names)]
    exact = "exact" in event.op
    hit = tuple(
        pooling.nearest_sources(size_in, size_out, scales[d], exact=exact)
        for d, (size_in, size_out) in enumerate(zip(input_size[-dims:], out_sizes, strict=True))
    )
    return pooling.upsample_nearest_backward(prod(input_size[:-dims]), out_sizes, hit)


@formula("logit")
def _logit(event: OpEvent, options: CountOptions) -> Cost:
    """log(x / (1 - x)): sub, div, log = 3 per element; eps clamps x first (+2)."""
    return elementwise.pointwise(_out_numel(event), 3 if event.arg(1, "eps") is None else 5)


@formula("logit_backward")
def _logit_backward(event: OpEvent, options: CountOptions) -> Cost:
    """g / (x * (1 - x)): sub, mul, div = 3 per element; with eps, the range test (+2)."""
    return elementwise.pointwise(_out_numel(event), 3 if event.arg(2, "eps") is None else 5)


@formula("_masked_softmax", "_masked_softmax_backward")
def _masked_softmax(event: OpEvent, options: CountOptions) -> Cost:
    """softmax (or its backward, 4n - 1 per row) of rows whose masked places are set first:
    + 1 per element (the masked_fill)."""
    x = event.args[0]
    backward = event.op.endswith("_backward")
    rows, length = _rows_along(x, event.arg(3 if backward else 2, "dim"))
    if backward:
        return elementwise.softmax_backward(rows, length) + Cost(flops=x.numel)
    return elementwise.softmax(rows, length) + Cost(flops=x.numel)


@formula("_fused_dropout", "_masked_scale")
def _dropout_kernels(event: OpEvent, options: CountOptions) -> Cost:
    """CUDA's older dropout: the mask's compare and the multiply by mask/(1-p), 2 per
    element, as native_dropout; _masked_scale (its backward), 1 as native_dropout_backward."""
    name = "native_dropout" if event.op == "aten._fused_dropout" else "native_dropout_backward"
    table = elementwise.PER_ELEMENT if name == "native_dropout" else elementwise.PER_ELEMENT_BACKWARD
    return elementwise.pointwise(_out_numel(event), table[name])


@formula("glu_backward")
def _glu_backward(event: OpEvent, options: CountOptions) -> Cost:
    """glu(x) = a * s, s = sigmoid(b): per output gradient g, s (3), g*s for a (1) and
    g*a*s*(1 - s) for b (1 subtract, 3 multiplies): 8."""
    return elementwise.pointwise(event.args[0].numel, 8)


@formula("_prelu_kernel_backward")
def _prelu_backward(event: OpEvent, options: CountOptions) -> Cost:
    """Per element: x > 0 (1), grad_input g or w*g (1), the weight's share x*g (1): 3;
    summing the shares per channel is a separate op."""
    return elementwise.pointwise(event.args[1].numel, 3)


@formula("_cdist_forward", "_pdist_forward")
def _cdist(event: OpEvent, options: CountOptions) -> Cost:
    """cdist(x1 (..., P, M), x2 (..., R, M), p, compute_mode) and pdist(x (N, M), p), one
    distance per output: per pair M subtracts, M |d|^p (1 each), M-1 adds, and the p-th
    root (none for p = 0, 1, inf): 3M - 1 + root."""
    p = float(event.arg(1 if event.op == "aten._pdist_forward" else 2, "p", 2.0))
    return distance.distances(_out_numel(event), event.args[0].shape[-1], p)


@formula("_euclidean_dist")
def _euclidean_dist(event: OpEvent, options: CountOptions) -> Cost:
    """(x1 (..., P, M), x2 (..., R, M)) -> (..., P, R): cdist's matmul path."""
    x1, x2, out = event.args[0], event.args[1], _out(event)
    rows, others = x1.shape[-2], x2.shape[-2]
    batch = out.numel // max(rows * others, 1)
    return distance.euclidean_by_matmul(batch, rows, others, x1.shape[-1])


@formula("_cdist_backward")
def _cdist_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad (..., P, R), x1 (..., P, M), x2 (..., R, M), p, cdist) -> x1's gradient."""
    grad, x1, x2 = event.args[0], event.arg(1, "x1"), event.arg(2, "x2")
    rows, others = x1.shape[-2], x2.shape[-2]
    batch = grad.numel // max(rows * others, 1)
    return distance.cdist_backward(batch, rows, others, x1.shape[-1], float(event.arg(3, "p")))


@formula("_pdist_backward")
def _pdist_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad (N(N-1)/2,), self (N, M), p, pdist) -> self's gradient."""
    x = event.arg(1, "self")
    return distance.pdist_backward(x.shape[0], x.shape[1], float(event.arg(2, "p")))


# ------------------------------------------------------------------ Fourier transforms
def _fft_lengths(event: OpEvent, signal: TensorMeta) -> tuple[tuple[int, ...], int]:
    """(the signal's sizes along ``dim``, the product of the other dims)."""
    dims = [int(d) % max(signal.ndim, 1) for d in event.arg(1, "dim")]
    lengths = tuple(signal.shape[d] for d in dims)
    return lengths, signal.numel // max(prod(lengths), 1)


@formula("_fft_r2c", "_fft_c2r", "_fft_c2c")
def _fft(event: OpEvent, options: CountOptions) -> Cost:
    """(self, dim, normalization, onesided | last_dim_size | forward): a transform of the
    sizes along dim, real for r2c (the input's sizes; ``onesided=False`` fills the other
    half by symmetry: copies, 0 FLOPs) and c2r (the output's, the last one
    ``last_dim_size``), complex for c2c."""
    signal = _out(event) if event.op == "aten._fft_c2r" else event.args[0]
    lengths, batch = _fft_lengths(event, signal)
    normalized = int(event.arg(2, "normalization", 0)) != 0
    return spectral.fft(lengths, batch, real=event.op != "aten._fft_c2c", normalized=normalized)


@formula(*spectral.WINDOW_PER_ELEMENT)
def _window_function(event: OpEvent, options: CountOptions) -> Cost:
    """torch.hann_window(N) and the other windows (an STFT made in forward): their
    definition per element (formulas/spectral.py)."""
    name = event.op.removeprefix("aten.")
    return elementwise.pointwise(_out_numel(event), spectral.WINDOW_PER_ELEMENT[name])


@formula("fft_fftfreq", "fft_rfftfreq")
def _fft_frequencies(event: OpEvent, options: CountOptions) -> Cost:
    """torch.fft.fftfreq(n, d) / rfftfreq: integers 0, 1, ... (an arange, data) scaled by
    1 / (n * d), one multiply per output (the scale is a Python number, computed once)."""
    return Cost(flops=_out_numel(event))


@formula("put", "put_")
def _put(event: OpEvent, options: CountOptions) -> Cost:
    """``Tensor.put_(index, source, accumulate)`` (the flattened tensor's elements): with
    ``accumulate`` each source value is added into its element (1 FLOP), otherwise written
    (a copy, 0)."""
    source = event.arg(2, "source")
    accumulate = bool(event.arg(3, "accumulate", False))
    return Cost(flops=source.numel if accumulate and isinstance(source, TensorMeta) else 0)


@formula("equal")
def _equal(event: OpEvent, options: CountOptions) -> Cost:
    """torch.equal(a, b) -> a Python bool: one compare per element (0 on integers and
    bools, as every compare); torch.istft runs one."""
    return Cost(flops=event.args[0].numel)


@formula("allclose")
def _allclose(event: OpEvent, options: CountOptions) -> Cost:
    """torch.allclose(a, b, rtol, atol, equal_nan) -> a Python bool: torch.isclose's ops
    (``elementwise.isclose``) and an ``all`` over its bools (0). On integers and bools 0, as
    every op that touches no floating-point tensor (torch.isclose itself shows its float
    conversion and is counted)."""
    a, b = event.args[0], event.arg(1, "other")
    rtol, atol = event.arg(2, "rtol", 1e-05), event.arg(3, "atol", 1e-08)
    equal_nan = bool(event.arg(4, "equal_nan", False))
    elements = prod(_broadcast_shape([a.shape, b.shape]))
    return elementwise.isclose(elements, a.numel, b.numel, a.is_floating, bool(rtol) or bool(atol), equal_nan)


@formula("unfold_backward")
def _unfold_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_in (..., frames, ..., size), input_sizes, dim, size, step): the overlap-add
    of the windows (torch.istft, Tensor.unfold's backward); no overlap: a copy (0)."""
    grad, sizes = event.args[0], [int(v) for v in event.arg(1, "input_sizes")]
    dim = int(event.arg(2, "dim")) % max(len(sizes), 1)
    size, step = int(event.arg(3, "size")), int(event.arg(4, "step"))
    frames = grad.shape[dim] if grad.ndim > dim else 0
    return spectral.overlap_add(prod(sizes) // max(sizes[dim], 1), frames, size, step)


@formula(
    "reflection_pad1d_backward",
    "reflection_pad2d_backward",
    "reflection_pad3d_backward",
    "replication_pad1d_backward",
    "replication_pad2d_backward",
    "replication_pad3d_backward",
)
def _padding_backward(event: OpEvent, options: CountOptions) -> Cost:
    """(grad_output, self, padding): the padded cells' gradients added back."""
    return pooling.padding_backward(event.args[0].numel, event.arg(1, "self").numel)


@formula("col2im")
def _col2im(event: OpEvent, options: CountOptions) -> Cost:
    """(self (N, C*kh*kw, L) or unbatched, output_size, kernel_size, dilation, padding,
    stride): F.fold, and F.unfold's backward: the overlapping blocks summed."""
    x = event.args[0]
    pairs = [tuple(int(v) for v in event.arg(i, name)) for i, name in
             enumerate(("output_size", "kernel_size", "dilation", "padding", "stride"), start=1)]  # fmt: skip
    out_sizes, kernel = pairs[0], pairs[1]
    planes = x.numel // max(prod(kernel) * x.shape[-1], 1)
    return pooling.fold_sums(planes, out_sizes, kernel, pairs[2], pairs[3], pairs[4])
