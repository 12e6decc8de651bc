"""Where a worker finds its Pipes context and writes its messages, by where it runs: locally and in a
Kubernetes pod, Dagster's defaults (bootstrap from environment variables; context and messages as
the client set them: temp files, or the environment and the pod log); on Databricks
(DATABRICKS_RUNTIME_VERSION is set on every cluster) the context file and the message chunks live
on DBFS, and on an existing cluster the bootstrap comes as command-line parameters of the task."""

from __future__ import annotations

import os

from dagster_pipes import (
    PipesCliArgsParamsLoader,
    PipesContext,
    PipesDbfsContextLoader,
    PipesDbfsMessageWriter,
    open_dagster_pipes,
)

DATABRICKS_RUNTIME_ENV = "DATABRICKS_RUNTIME_VERSION"


def open_worker_pipes() -> PipesContext:
    """The Pipes context of this worker process, opened with the loaders of where it runs."""
    if not os.environ.get(DATABRICKS_RUNTIME_ENV):
        return open_dagster_pipes()
    cli_params = PipesCliArgsParamsLoader()
    return open_dagster_pipes(
        context_loader=PipesDbfsContextLoader(),
        message_writer=PipesDbfsMessageWriter(),
        params_loader=cli_params if cli_params.is_dagster_pipes_process() else None,
    )
