"""OpInfo sweep (probe 14): flopmeter over PyTorch's own op test database.

    PYTHONPATH=src python benchmarks/opinfo_sweep.py [--ops REGEX] [--samples N] [--out FILE.jsonl]
    PYTHONPATH=src python benchmarks/opinfo_sweep.py --summary FILE.jsonl

``torch.testing._internal.common_methods_invocations.op_db`` holds an OpInfo per public op,
with ``sample_inputs(device, dtype)``; it imports ``expecttest`` (``pip install expecttest``,
a test-only dependency of torch). For every OpInfo that runs in float32 on the CPU, the
first ``--samples`` samples (2 by default; ``--noncontiguous``: their strided twins with gaps)
are each wrapped in a tiny ``nn.Module`` calling the op, ``fn(input, *args, **kwargs)``, and
counted four ways, each on its own copy of the sample (``batch_size=1``: a sample's leading
dim may be 0, which a profile refuses as an empty batch unless told the batch):

- ``flopmeter.profile(module, inputs)``: the default (shapes-only, falling back to values);
- ``flopmeter.profile(module, inputs, shapes_only=False)``: with values;
- ``flopmeter.profile(module, inputs, shapes_only=True)``: shapes only, no fallback;
- ``torch.utils.flop_counter.FlopCounterMode`` around a plain call.

One JSON line per sample (``--out``), with each run's flops, macs, bytes, unsupported ops,
per-op counts and error, and the classes the sample falls in:

- ``crash``: flopmeter raised where the plain call succeeded, or a shapes-only run changed
  the inputs (a values run writes into them as the plain call of an in-place op does: the
  user's own tensors are out of a profile's reach, docs/meta.md);
- ``modes_disagree``: the default and the values run give other flops/macs/bytes or
  unsupported ops, or one raised ("the same numbers either way");
- ``forced_refused``: ``shapes_only=True`` raised (data-dependent sizes, ``.item()``, no meta
  kernel: to be refused with a clear message, judged by reading it);
- ``forced_disagree``: ``shapes_only=True`` counted other numbers than the values run (a
  silently wrong shapes-only count);
- ``zero``: 0 FLOPs, nothing unsupported, and some op counted by a formula that gave 0 (an
  empty or one-element input, integer work: judge it); ``zero_free``: the same with every op
  a view or data op (free by docs/formulas.md);
- ``fcm_disagree``: FlopCounterMode counts the op and its count is not our ``2mac`` view.

``--summary`` prints the counts per class and each flagged sample, from a JSONL file.
Single-threaded, CPU only, about a minute and a half for the whole database at 3 samples; a
sample taking longer than ``--timeout`` seconds is recorded as such and skipped.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import signal
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

import flopmeter
from flopmeter.registry import kind_of

SRC = str(Path(flopmeter.__file__).parent)


class OpCall(nn.Module):
    """A module whose forward calls one OpInfo's op on a sample: ``fn(input, *args, **kwargs)``."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, inp: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.fn(inp, *args, **kwargs)


class Timeout(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise Timeout()


def describe(value: Any) -> Any:
    """A sample's arguments as JSON: tensors as ``dtype[shape]``."""
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')}{list(value.shape)}"
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, dict):
        return {k: describe(v) for k, v in value.items()}
    if isinstance(value, (int, float, bool, str)) or value is None:
        return value
    return repr(value)[:80]


def snapshot(value: Any) -> list[Any]:
    """Every tensor leaf cloned with its metadata, to see whether a run changed it."""
    leaves, _ = tree_flatten(value)
    return [
        (t.detach().clone(), t.shape, t.dtype, t.device, t.requires_grad)
        if isinstance(t, torch.Tensor)
        else t
        for t in leaves
    ]


def changed(before: list[Any], value: Any) -> list[str]:
    """Which tensor leaves differ from ``before`` (values, shape, dtype, device, requires_grad)."""
    leaves, _ = tree_flatten(value)
    if len(leaves) != len(before):
        return ["number of leaves"]
    out = []
    for i, (old, new) in enumerate(zip(before, leaves, strict=True)):
        if not isinstance(new, torch.Tensor):
            continue
        data, shape, dtype, device, grad = old
        if (new.shape, new.dtype, new.device, new.requires_grad) != (shape, dtype, device, grad):
            out.append(f"leaf {i}: metadata")
        elif not torch.equal(torch.nan_to_num(new.detach(), 1.5), torch.nan_to_num(data, 1.5)):
            out.append(f"leaf {i}: values")
    return out


def where_raised(error: BaseException) -> str:
    """The innermost flopmeter frame of ``error`` or its causes (``file:line function``), else ''."""
    found = ""
    seen = 0
    while error is not None and seen < 5:
        for frame in traceback.extract_tb(error.__traceback__):
            if frame.filename.startswith(SRC):
                found = f"{Path(frame.filename).relative_to(SRC)}:{frame.lineno} {frame.name}"
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
        seen += 1
    return found


def run_profile(module: nn.Module, inputs: tuple[Any, ...], shapes_only: bool | None) -> dict[str, Any]:
    """One flopmeter run: totals, unsupported ops, per-op counts, or the error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report = flopmeter.profile(module, inputs, shapes_only=shapes_only, batch_size=1)
        except Timeout:
            raise
        except Exception as error:  # noqa: BLE001 - recorded, the sweep goes on
            cause = error.__cause__
            return {
                "error": f"{type(error).__name__}: {str(error)[:400]}",
                "cause": f"{type(cause).__name__}: {str(cause)[:200]}" if cause else None,
                "where": where_raised(error),
            }
    return {
        "computed": report.options.get("computed"),
        "flops": report.flops,
        "macs": report.macs,
        "bytes_read": report.bytes_read,
        "bytes_written": report.bytes_written,
        "unsupported": {op: u.calls for op, u in report.unsupported.items()},
        "ops": {op: [s.kind, s.cost.flops, s.cost.macs] for op, s in report.operators.items()},
        "warnings": sorted(
            {str(w.message)[:160] for w in caught if "flopmeter" in type(w.message).__module__}
        ),
    }


def flop_counter(module: nn.Module, inputs: tuple[Any, ...]) -> dict[str, Any]:
    """FlopCounterMode around a plain call: its total and its per-op counts."""
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(*inputs)
    except Timeout:
        raise
    except Exception as error:  # noqa: BLE001
        return {"error": f"{type(error).__name__}: {str(error)[:200]}"}
    per_op = {str(op): n for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {"flops": counter.get_total_flops(), "ops": per_op}


NUMBERS = ("flops", "macs", "bytes_read", "bytes_written")


def classify(row: dict[str, Any]) -> list[str]:
    """The classes a sample falls in (see the module docstring)."""
    if row.get("plain_error") or row.get("skipped"):
        return []
    shapes, values, fcm = row["shapes"], row["values"], row["fcm"]
    classes = []
    if "error" in shapes or "error" in values or row["changed"]:
        classes.append("crash")
    if _disagree(shapes, values):
        classes.append("modes_disagree")
    forced = row.get("forced_shapes", {})
    if "error" in forced:
        classes.append("forced_refused")  # shapes_only=True refused: judge its message
    elif _disagree(forced, values):
        classes.append("forced_disagree")  # shapes_only=True counted other numbers: silently wrong
    if "error" not in values and values["flops"] == 0 and not values["unsupported"]:
        # every op a view or data (free by docs/formulas.md) or an op with a formula giving 0
        # (an empty or one-element input, integer work): both to be judged, apart
        free = all(kind in ("view", "data") for kind in row["kinds"].values())
        classes.append("zero_free" if free else "zero")
    if "error" not in values and fcm.get("flops") and fcm["flops"] != 2 * values["macs"]:
        classes.append("fcm_disagree")
    return classes


def _disagree(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """One run raised and the other did not, or their numbers or unsupported ops differ."""
    if ("error" in one) != ("error" in other):
        return True
    return "error" not in one and any(one[k] != other[k] for k in (*NUMBERS, "unsupported"))


def samples(
    opinfo: Any, count: int, noncontiguous: bool, dtype: torch.dtype = torch.float32
) -> Iterator[Any]:
    """The first ``count`` samples, or their non-contiguous twins (``SampleInput.noncontiguous``:
    each tensor a strided view with gaps, the values the same)."""
    produced = 0
    for sample in opinfo.sample_inputs("cpu", dtype, requires_grad=False):
        yield sample.noncontiguous() if noncontiguous else sample
        produced += 1
        if produced >= count:
            return


def sweep_one(opinfo: Any, index: int, sample: Any) -> dict[str, Any]:
    """Count one sample three ways and classify it."""
    name = opinfo.name + (f".{opinfo.variant_test_name}" if opinfo.variant_test_name else "")
    inputs = (sample.input, tuple(sample.args), dict(sample.kwargs))
    row: dict[str, Any] = {"op": name, "sample": index, "inputs": describe(inputs)}
    module = OpCall(opinfo.op)
    try:  # the plain call, on a copy (some ops write into their arguments)
        with torch.no_grad():
            row["output"] = describe(module(*copy.deepcopy(inputs)))
    except Timeout:
        raise
    except Exception as error:  # noqa: BLE001
        row["plain_error"] = f"{type(error).__name__}: {str(error)[:200]}"
        return row
    # Each run gets its own copy: a values run writes into the inputs as a plain call of an
    # in-place op does (the user's own tensors are out of a profile's reach, docs/meta.md);
    # a shapes-only run must leave them as they were.
    row["changed"] = []
    for run, shapes_only in (("shapes", None), ("values", False), ("forced_shapes", True)):
        mine = copy.deepcopy(inputs)
        before = snapshot(mine)
        row[run] = run_profile(module, mine, shapes_only)
        if row[run].get("computed") != "values":
            row["changed"] += [f"{run} run: {c}" for c in changed(before, mine)]
    row["fcm"] = flop_counter(module, copy.deepcopy(inputs))
    ops = {**row["shapes"].get("ops", {}), **row["values"].get("ops", {})}
    row["kinds"] = {op: kind_of(op) for op in ops}
    row["classes"] = classify(row)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", help="regex: only OpInfos whose name (name.variant) it searches")
    parser.add_argument("--samples", type=int, default=2, help="samples per OpInfo (default 2)")
    parser.add_argument("--out", help="write one JSON line per sample to this file")
    parser.add_argument(
        "--noncontiguous", action="store_true", help="each sample's tensors as strided views with gaps"
    )
    parser.add_argument("--dtype", default="float32", help="the samples' dtype (default float32)")
    parser.add_argument("--timeout", type=int, default=20, help="seconds per sample (default 20)")
    parser.add_argument("--summary", metavar="FILE", help="summarize a JSONL file written before")
    args = parser.parse_args(argv)
    if args.summary:
        summarize([json.loads(line) for line in Path(args.summary).read_text().splitlines() if line])
        return 0

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    from torch.testing._internal.common_methods_invocations import op_db

    pattern = re.compile(args.ops) if args.ops else None
    dtype = getattr(torch, args.dtype)
    out = open(args.out, "w") if args.out else None  # noqa: SIM115 - kept open for the sweep
    rows = []
    signal.signal(signal.SIGALRM, _alarm)
    started = time.time()
    for opinfo in op_db:
        name = opinfo.name + (f".{opinfo.variant_test_name}" if opinfo.variant_test_name else "")
        if pattern and not pattern.search(name):
            continue
        if dtype not in opinfo.supported_dtypes("cpu"):
            continue
        index = 0
        try:
            signal.alarm(args.timeout)
            for index, sample in enumerate(samples(opinfo, args.samples, args.noncontiguous, dtype)):
                torch.manual_seed(0)
                row = sweep_one(opinfo, index, sample)
                signal.alarm(args.timeout)
                rows.append(row)
                if out:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
        except Timeout:
            row = {"op": name, "sample": index, "skipped": f"over {args.timeout} s"}
            rows.append(row)
            if out:
                out.write(json.dumps(row) + "\n")
        except Exception as error:  # noqa: BLE001 - a sample generator's own failure
            row = {"op": name, "sample": index, "skipped": f"{type(error).__name__}: {str(error)[:200]}"}
            rows.append(row)
            if out:
                out.write(json.dumps(row) + "\n")
        finally:
            signal.alarm(0)
    if out:
        out.close()
    print(f"{len(rows)} samples in {time.time() - started:.0f} s", file=sys.stderr)
    summarize(rows)
    return 0


def _numbers(run: dict[str, Any]) -> Any:
    return run.get("error") or {k: run[k] for k in (*NUMBERS, "unsupported")}


def summarize(rows: list[dict[str, Any]]) -> None:
    """Counts per class (samples and distinct ops), then each flagged sample in one line."""
    ops = {r["op"] for r in rows}
    print(f"{len(rows)} samples of {len(ops)} OpInfos")
    print(f"  plain call failed: {sum(1 for r in rows if r.get('plain_error'))}")
    print(f"  skipped: {sum(1 for r in rows if r.get('skipped'))}")
    per_class: Counter[str] = Counter()
    op_class: dict[str, set[str]] = {}
    for r in rows:
        for c in r.get("classes", []):
            per_class[c] += 1
            op_class.setdefault(c, set()).add(r["op"])
    for c in (
        "crash",
        "modes_disagree",
        "forced_disagree",
        "forced_refused",
        "zero",
        "zero_free",
        "fcm_disagree",
    ):
        print(f"  {c}: {per_class[c]} samples, {len(op_class.get(c, ()))} ops")
    for c in ("crash", "modes_disagree", "forced_disagree", "forced_refused", "fcm_disagree", "zero"):
        print(f"\n== {c}")
        for r in rows:
            if c not in r.get("classes", []):
                continue
            s, v = r["shapes"], r["values"]
            if c == "crash":
                err = s.get("error") or v.get("error") or r["changed"]
                print(
                    f"{r['op']}[{r['sample']}] {r['inputs']}\n    {err}\n    at {s.get('where') or v.get('where')}"
                )
            elif c in ("modes_disagree", "forced_disagree"):
                one = s if c == "modes_disagree" else r["forced_shapes"]
                print(
                    f"{r['op']}[{r['sample']}] shapes({one.get('computed')})={_numbers(one)} values={_numbers(v)}"
                )
            elif c == "forced_refused":
                print(f"{r['op']}[{r['sample']}] {r['forced_shapes']['error'][:200]}")
            elif c == "fcm_disagree":
                print(
                    f"{r['op']}[{r['sample']}] fcm={r['fcm']['flops']} 2mac={2 * v['macs']} fcm_ops={r['fcm']['ops']}"
                )
            else:
                print(f"{r['op']}[{r['sample']}] kinds={r['kinds']}")


if __name__ == "__main__":
    raise SystemExit(main())
