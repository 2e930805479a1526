"""dtype_bits: one table of element widths for torch and ONNX dtype names."""

import pytest
import torch

from flopmeter.dtypes import dtype_bits


@pytest.mark.parametrize(
    ("dtype", "bits"),
    [
        (torch.float32, 32),
        (torch.bfloat16, 16),
        (torch.float8_e4m3fn, 8),  # torch's name
        ("float8e4m3fn", 8),  # ONNX's name for the same
        ("float4e2m1", 4),
        (torch.qint8, 8),
        (torch.quint4x2, 4),
        ("int4", 4),
        ("uint4", 4),
        (torch.int64, 64),
        (torch.bool, 1),
        ("complex64", None),  # not known here: callers choose their fallback
    ],
)
def test_dtype_bits(dtype, bits):
    assert dtype_bits(dtype) == bits
