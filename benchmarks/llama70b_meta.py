"""Count a 70B-class Llama config on the meta device; print wall time and peak memory.

    python benchmarks/llama70b_meta.py

Target (issue: the CLI and its reports): under 60 s and under 2 GB of resident memory
on a 2-core machine. Runs the same command a user types, in a fresh process, so the
peak resident set size measured is flopmeter's own.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

COMMAND = [
    sys.executable,
    "-m",
    "flopmeter",
    "transformers:LlamaConfig",
    "--set",
    "num_hidden_layers=80",
    "--set",
    "hidden_size=8192",
    "--set",
    "intermediate_size=28672",
    "--set",
    "num_attention_heads=64",
    "--set",
    "num_key_value_heads=8",
    "--input",
    "input_ids:1x2048:int64",
    "--meta",
    "-q",
]


def main() -> None:
    start = time.perf_counter()
    result = subprocess.run(COMMAND, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(result.stdout.strip())
    print(f"wall time {elapsed:.1f} s (target < 60 s), peak RSS {peak_kib / 2**20:.2f} GiB (target < 2 GiB)")


if __name__ == "__main__":
    main()
