"""Whether torch, as this process is set, runs float32 work on TF32 tensor cores.

On an Ampere or later NVIDIA GPU, torch hands float32 convolutions and recurrent layers to
cuDNN and float32 matmuls to cuBLAS, each allowed to use TF32 (a 10-bit mantissa, float32
range and accumulation) by its own setting (torch's notes on CUDA semantics, "TensorFloat-32
(TF32) on Ampere (and later) devices"):

- cuDNN convolutions: ``torch.backends.cudnn.conv.fp32_precision``, "tf32" by default
  (the legacy ``torch.backends.cudnn.allow_tf32``, True by default);
- cuDNN RNNs: ``torch.backends.cudnn.rnn.fp32_precision``, "tf32" by default;
- matmuls: ``torch.backends.cuda.matmul.fp32_precision``, "ieee" by default
  (``torch.set_float32_matmul_precision("high")`` or the legacy
  ``torch.backends.cuda.matmul.allow_tf32 = True`` make it "tf32").

A setting of "none" inherits its parent's (``torch.backends.cudnn.fp32_precision``, then
``torch.backends.fp32_precision``); "none" all the way up is "ieee".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from . import lists_peak

if TYPE_CHECKING:
    from . import Hardware

CUDNN_CLASSES = frozenset({"conv", "pointwise", "depthwise"})  # flopmeter.roofline.op_class


def tf32_allowed(op_class: str) -> bool:
    """Whether float32 work of ``op_class`` (``flopmeter.roofline.op_class``: "conv",
    "pointwise", "depthwise", "recurrent", "matmul", ...) may run on TF32 tensor cores
    under this process's torch settings."""
    backends, cudnn = torch.backends, torch.backends.cudnn
    chain: list[object]
    if op_class in CUDNN_CLASSES:
        chain = [getattr(cudnn, "conv", None), cudnn, backends]
    elif op_class == "recurrent":
        chain = [getattr(cudnn, "rnn", None), cudnn, backends]
    elif op_class == "matmul":
        chain = [backends.cuda.matmul, backends]
    else:
        return False
    for level in chain:
        setting = getattr(level, "fp32_precision", "none")
        if setting != "none":
            return bool(setting == "tf32")
    return False


def peak_dtype_of(
    dtype: str, op_class: str, hardware: Hardware, allowed: dict[str, bool] | None = None
) -> str:
    """The dtype whose peak work of ``dtype`` and ``op_class`` runs at on ``hardware``:
    "tfloat32" for float32 work torch would run on TF32 (``tf32_allowed``) where the spec
    lists a TF32 peak (NVIDIA Ampere and later), else ``dtype``. ``allowed``: a memo of
    ``tf32_allowed`` by op class, filled as asked (torch's settings read once per class)."""
    if dtype != "float32" or not lists_peak(hardware, "tfloat32"):
        return dtype
    if allowed is None:
        return "tfloat32" if tf32_allowed(op_class) else dtype
    tf32 = allowed.get(op_class)
    if tf32 is None:
        tf32 = allowed[op_class] = tf32_allowed(op_class)
    return "tfloat32" if tf32 else dtype
