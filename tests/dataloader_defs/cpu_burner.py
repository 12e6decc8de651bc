"""A bounded CPU burner: keeps the load average up while a test (or a measurement) runs.

    with CpuBurner(processes=20, seconds=600) as burner: ...   # burner.load_average() samples
    python tests/dataloader_defs/cpu_burner.py 20 600          # the same from a shell (Ctrl-C stops)

Each burner is a busy loop at nice 19 (it raises the run queue, and so the load average, while
taking little CPU from real work) that ends by itself after `seconds` however its parent ends; the
context manager SIGKILLs every one it started on exit, by pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

_LOOP = "import os, time\nos.nice(19)\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


class CpuBurner:
    """`processes` busy loops for at most `seconds`; samples the 1-minute load average meanwhile."""

    def __init__(self, processes: int, seconds: float) -> None:
        self.processes, self.seconds = processes, seconds
        self._burners: list[subprocess.Popen] = []
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> CpuBurner:
        try:
            for _ in range(self.processes):
                self._burners.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _LOOP.format(seconds=self.seconds)], start_new_session=True
                    )
                )
        except BaseException:
            self.stop()
            raise
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Kill every burner started (by pid) and stop sampling."""
        self._stop.set()
        for burner in self._burners:
            with contextlib.suppress(ProcessLookupError):
                os.kill(burner.pid, signal.SIGKILL)
        for burner in self._burners:
            burner.wait()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self._samples.append(os.getloadavg()[0])

    def wait_for_load(self, at_least: float, timeout_s: float) -> float:
        """Wait until the 1-minute load average reaches `at_least` (at most `timeout_s`); the value seen."""
        deadline = time.monotonic() + timeout_s
        while (load := os.getloadavg()[0]) < at_least and time.monotonic() < deadline:
            time.sleep(1)
        return load

    def load_average(self, since_sample: int = 0) -> tuple[float, float]:
        """(min, max) of the 1-minute load average sampled each second, from sample `since_sample` on."""
        samples = self._samples[since_sample:] or [os.getloadavg()[0]]
        return min(samples), max(samples)

    @property
    def samples_taken(self) -> int:
        return len(self._samples)


if __name__ == "__main__":
    count, seconds = int(sys.argv[1]), float(sys.argv[2])
    with CpuBurner(count, seconds) as burner, contextlib.suppress(KeyboardInterrupt):
        time.sleep(seconds)
    print(f"load average (1 min) min/max while burning: {burner.load_average()}")
