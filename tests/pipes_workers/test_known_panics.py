"""The stderr filter around Delta writes keeps only object_store's known "Already shut down" panic
off stderr (to the debug log instead); every other line — another Rust panic, Python output, a line
without its newline — reaches stderr unchanged and in order. Run in a child process, whose real fd 2
the test reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

KNOWN = (
    "\nthread 'tokio-rt-worker' (15668) panicked at /home/runner/.cargo/registry/src/index.crates.io-"
    "1949cf8c6b5b557f/object_store-0.13.2/src/buffered.rs:369:41:\nAlready shut down\n"
    "stack backtrace:\n   0: rust_begin_unwind\n             at /rustc/abc/library/std/src/panicking.rs:1\n"
    "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n"
)
OTHER_PANIC = "\nthread 'main' panicked at src/other.rs:1:1:\nAlready shut down\nstack backtrace:\n"

CHILD = f"""
import logging, os, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="LOG %(message)s")
from pipes_workers.lake.known_panics import known_panics_hidden
with known_panics_hidden():
    print("python before", file=sys.stderr, flush=True)
    os.write(2, {KNOWN.encode()!r})
    os.write(2, {OTHER_PANIC.encode()!r})
    with known_panics_hidden():  # nested: one pipe, restored once
        os.write(2, b"Already shut down\\n")
    os.write(2, {KNOWN.encode()[:60]!r})  # a write split mid-line
    os.write(2, {KNOWN.encode()[60:]!r})
    os.write(2, b"no newline at the end")
print("python after", file=sys.stderr, flush=True)
"""


def test_only_the_known_panic_is_kept_off_stderr() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (
        "python before\n" + OTHER_PANIC + "Already shut down\nno newline at the endpython after\n"
    ), proc.stderr
    assert "object_store-0.13.2/src/buffered.rs" not in proc.stderr
    logged = [line for line in proc.stdout.splitlines() if line.startswith("LOG object_store panicked")]
    assert len(logged) == 2, proc.stdout
    assert "Already shut down" in proc.stdout and "stack backtrace:" in proc.stdout


def test_a_process_without_stderr_writes_as_before() -> None:
    """A worker started with fd 2 closed (a daemon): the filter stands aside, the block still runs."""
    child = (
        "import os\nos.close(2)\nfrom pipes_workers.lake.known_panics import known_panics_hidden\n"
        "with known_panics_hidden():\n    print('ran')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr


def test_a_crash_during_a_write_still_dumps_its_traceback() -> None:
    """faulthandler's dump goes to the real stderr, not into the pipe whose reader dies with it."""
    child = (
        "import faulthandler\nfaulthandler.enable()\n"
        "from pipes_workers.lake.known_panics import known_panics_hidden\n"
        "with known_panics_hidden():\n    faulthandler._sigsegv()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Fatal Python error: Segmentation fault" in proc.stderr, proc.stderr
