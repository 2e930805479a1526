"""LLM mode on a Llama-2-70B config: a prefill of 4096 tokens and one decode step at
n = 32,768, each counted on the meta device; prints wall time, CPU time and peak RSS.

    PYTHONPATH=src python benchmarks/llama70b_llm.py

Target (issue 9): under 30 s and under 2 GB each on a 2-core machine. Each phase runs
in a fresh process, so the peak resident set size is that phase's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

PHASE = """
import json, resource, sys, time
import transformers
from flopmeter.llm import language_model
from flopmeter.llm import traces
config = transformers.LlamaConfig(
    num_hidden_layers=80, hidden_size=8192, intermediate_size=28672, num_attention_heads=64,
    num_key_value_heads=8, vocab_size=32000)
start, cpu = time.perf_counter(), time.process_time()
lm = language_model(config)
if sys.argv[1] == "prefill":
    report = traces.prefill(lm, 4096)
else:
    report = traces.decode(lm, 32768)
print(json.dumps({
    "flops_2mac": 2 * report.macs,
    "wall_s": time.perf_counter() - start,
    "cpu_s": time.process_time() - cpu,
    "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
}))
"""


def main() -> None:
    for phase, label in (("prefill", "prefill T=4096"), ("decode", "decode step at n=32,768")):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", PHASE, phase], capture_output=True, text=True, check=True
        )
        numbers = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"Llama-2-70B {label}: {numbers['flops_2mac']:,} FLOPs (2 x MACs); "
            f"{numbers['wall_s']:.1f} s wall ({numbers['cpu_s']:.1f} s CPU) building and tracing, "
            f"{time.perf_counter() - start:.1f} s with interpreter start; peak RSS "
            f"{numbers['peak_rss_gib']:.2f} GiB (targets < 30 s, < 2 GB)"
        )


if __name__ == "__main__":
    main()
