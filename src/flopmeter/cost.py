"""The unit every formula returns: integers only, no strings."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(slots=True, unsafe_hash=True)
class Cost:
    """What one op (or a sum of ops) costs.

    - ``macs``: multiply-accumulates of contractions (conv, matmul, attention, RNN gates).
    - ``flops``: exact floating point operations, the seed's way: a dot product of
      length n is n multiplications and n-1 additions; a bias add is one more.
      Elementwise and reduction work is FLOPs, not MACs.
    - ``ptflops_macs``: the number ptflops' per-module rules give for the same work
      (bias adds, activations and pooling counted as MACs); see docs/conventions.md.
    - ``bytes_read`` / ``bytes_written``: memory traffic lower bound (every input,
      weight and output touched once, no cache effects).
    - ``weight_bytes``: the part of ``bytes_read`` that is parameters or buffers.
    - ``onnx_tool_macs``: onnx-tool's weighted count of the same work, for ONNX reports
      only (0 in PyTorch reports, whose ``flops_as("onnx-tool")`` refuses); see
      docs/onnx.md.

    Treat a Cost as a value: arithmetic returns new ones. (Not ``frozen``: a frozen
    dataclass is five times slower to create, and a profile creates thousands.)
    """

    macs: int = 0
    flops: int = 0
    ptflops_macs: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    weight_bytes: int = 0
    onnx_tool_macs: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.macs + other.macs,
            self.flops + other.flops,
            self.ptflops_macs + other.ptflops_macs,
            self.bytes_read + other.bytes_read,
            self.bytes_written + other.bytes_written,
            self.weight_bytes + other.weight_bytes,
            self.onnx_tool_macs + other.onnx_tool_macs,
        )

    def __sub__(self, other: Cost) -> Cost:
        return Cost(
            self.macs - other.macs,
            self.flops - other.flops,
            self.ptflops_macs - other.ptflops_macs,
            self.bytes_read - other.bytes_read,
            self.bytes_written - other.bytes_written,
            self.weight_bytes - other.weight_bytes,
            self.onnx_tool_macs - other.onnx_tool_macs,
        )

    @staticmethod
    def sum_of(costs: list[Cost]) -> Cost:
        """The sum of ``costs`` (one new Cost, not one per addition)."""
        macs = flops = ptflops_macs = bytes_read = bytes_written = weight_bytes = onnx_tool_macs = 0
        for cost in costs:
            macs += cost.macs
            flops += cost.flops
            ptflops_macs += cost.ptflops_macs
            bytes_read += cost.bytes_read
            bytes_written += cost.bytes_written
            weight_bytes += cost.weight_bytes
            onnx_tool_macs += cost.onnx_tool_macs
        return Cost(macs, flops, ptflops_macs, bytes_read, bytes_written, weight_bytes, onnx_tool_macs)

    def scaled(self, factor: int) -> Cost:
        return Cost(*(getattr(self, f.name) * factor for f in fields(self)))

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written


ZERO = Cost()
