"""The command as a process: Ctrl-C and a closed pipe end quietly (probe-1 C35, C36)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
TINY = str(Path(__file__).parent / "fixtures" / "tiny_model.py")


def command(*argv: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen(
        [sys.executable, "-m", "flopmeter", *argv], env=env, stderr=subprocess.PIPE, text=True, **kwargs
    )


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_exits_130_with_one_line(tmp_path):
    started = tmp_path / "started"
    model = tmp_path / "slow.py"
    model.write_text(
        textwrap.dedent(
            f"""\
            import time
            import torch

            class Slow(torch.nn.Module):
                def forward(self, x):
                    open({str(started)!r}, "w").close()
                    time.sleep(60)
                    return x

            EXAMPLE_INPUTS = ["1x4"]
            """
        )
    )
    # Ctrl-C as a terminal delivers it: a shell running this suite as a background job
    # (``pytest &``) passes SIGINT on ignored, and Python then installs no handler for it
    process = command(f"{model}:Slow", stdout=subprocess.PIPE, preexec_fn=_sigint_as_in_a_terminal)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert started.exists(), process.communicate()[1]
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "flopmeter: interrupted"


def test_closed_pipe_is_a_quiet_exit():
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before anything is written (`flopmeter ... | true`)
    process = command(f"{TINY}:TinyNet", stdout=writer)
    os.close(writer)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141
    assert "Traceback" not in err and "Broken pipe" not in err
