"""A Pipes load worker forked from the fork server that imported it once (fork_preload.py).

A small table's worker spends most of its CPU importing pyarrow, numpy, deltalake, psycopg and the
drivers (about 0.25 s a table). Forked from a server that imported them already, the same
entrypoint runs in its own process, with its own environment, started in milliseconds. The
orchestrator runs this module by name in the forked process (`runpy.run_module`, with `WORKER_ENV`
and `WORKER_CWD` among its globals), as it runs `pipes_workers.dataloader_pipe` by name otherwise.
"""

from __future__ import annotations

import os


def run(env: dict[str, str], cwd: str) -> None:
    """Take the worker's environment (the Pipes bootstrap variables included) and working
    directory, then run the Pipes worker's entrypoint, which ends the process."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    from pipes_workers.dataloader_pipe import entrypoint

    entrypoint()


if __name__ == "__main__":
    run(globals()["WORKER_ENV"], globals()["WORKER_CWD"])
