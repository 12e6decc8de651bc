"""A job for run-launcher tests: its op records its pid, then sleeps until interrupted (or 5 minutes).

On interruption it writes `interrupted` next to the pid file and stops, like the load asset's
interruption path; with `stubborn` it writes the file and keeps sleeping (a run that ignores SIGINT).
"""

import os
import time
from pathlib import Path

from dagster import Config, OpExecutionContext, in_process_executor, job, op
from dagster._core.errors import DagsterExecutionInterruptedError


class SleepConfig(Config):
    marker_dir: str
    stubborn: bool = False


@op
def sleep_until_stopped(context: OpExecutionContext, config: SleepConfig) -> None:
    markers = Path(config.marker_dir)
    (markers / "pid").write_text(str(os.getpid()))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            time.sleep(0.2)
        except DagsterExecutionInterruptedError:
            (markers / "interrupted").write_text(context.run_id)
            if not config.stubborn:
                raise


# In process, as the load job: a Celery pool process is daemonic and may not start step subprocesses.
@job(executor_def=in_process_executor)
def sleep_job() -> None:
    sleep_until_stopped()
