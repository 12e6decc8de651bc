"""What the worker fork server imports before it forks anything (the orchestrator names this module
only): the Pipes load worker and its source readers — everything a load imports — but nothing that
opens a connection, a table or a runtime, so a forked worker inherits no open state. OpenBLAS is
kept from starting a thread pool (no worker computes with BLAS), so the server stays single-threaded
but for the allocator's own fork-aware threads, and a fork copies no other thread's locks."""

import contextlib
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pipes_workers.dataloader_pipe  # noqa: E402, F401
import pipes_workers.sources.postgres  # noqa: E402, F401

with contextlib.suppress(ImportError):  # a driver that is not installed is the worker's to report
    import pipes_workers.sources.mysql  # noqa: F401
