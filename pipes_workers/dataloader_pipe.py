"""Pipes worker entrypoint: `python -m pipes_workers.dataloader_pipe`.

Opens the Dagster Pipes context, reads the extras (`load_request`, and `asset_key` when the
orchestrator's asset is not the only one in scope), runs the load and reports, in this order: the
typed LoadResult as one custom message (what the orchestrator records), then — when the load
succeeded — the materialisation with typed metadata and the four asset checks. A failed load is
reported in the LoadResult (kind, code, message) and the process exits 0: the failure is known and
recorded. Only a crash before anything could be reported leaves the orchestrator to classify the
exit itself. Imports only `dagster_pipes`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from dagster_pipes import PipesContext

from dataloader_contract.errors import ConfigurationError, LoadError
from dataloader_contract.request import LoadRequest
from dataloader_contract.result import LoadFailure, LoadResult, failed_result
from pipes_workers.load import attempt_load, unexpected_failure
from pipes_workers.metadata import check_metadata, materialization_metadata
from pipes_workers.parent_watch import die_with_parent
from pipes_workers.pipes_io import open_worker_pipes

EXTRAS_KEY = "load_request"
ASSET_KEY_EXTRA = "asset_key"


def main(request_data: Mapping[str, Any], *, log: Callable[[str], None] | None = None) -> LoadResult:
    """Parse the request and attempt the load; never raises for a load failure.

    Args:
        request_data: the `load_request` extras (LoadRequest.to_dict() form).
        log: progress sink.

    Returns:
        The LoadResult: succeeded, or failed with a structured error.
    """
    key = str(request_data.get("control_key", "<unknown control_key>"))
    strategy = str(request_data.get("load_strategy", "?"))
    try:
        request = LoadRequest.from_dict(dict(request_data))
        return attempt_load(request, log=log)
    except LoadError as exc:  # the request itself is invalid
        return failed_result(key, strategy, LoadFailure.from_exception(exc))
    except Exception as exc:  # a bug: reported as permanent (a person must look), text scrubbed
        failure = unexpected_failure(key, exc)
        return failed_result(key, strategy, failure)


def report(context: PipesContext, result: LoadResult, *, source_table: str, asset_key: str | None) -> None:
    """Send the LoadResult, then (on success) the materialisation and the checks, over Pipes."""
    context.report_custom_message(result.to_message())
    if not result.succeeded:
        return
    context.report_asset_materialization(
        metadata=materialization_metadata(result, source_table=source_table),
        data_version=str(result.delta_version) if result.delta_version is not None else None,
        asset_key=asset_key,
    )
    for check in result.checks:
        context.report_asset_check(
            check.name,
            check.passed,
            severity=check.severity,
            metadata=check_metadata(check),
            asset_key=asset_key,
        )


def run_in_pipes(context: PipesContext) -> LoadResult:
    """Run the load inside an open Pipes context and report it."""
    data = context.get_extra(EXTRAS_KEY) if EXTRAS_KEY in context.extras else None
    if not isinstance(data, Mapping):
        error = ConfigurationError(f"Pipes extras key {EXTRAS_KEY!r} is missing or not an object")
        result = failed_result("<unknown control_key>", "?", LoadFailure.from_exception(error))
    else:
        result = main(data, log=context.log.info)
    asset_key = context.extras.get(ASSET_KEY_EXTRA)
    source_table = ".".join(
        str(p) for p in ((data or {}).get("source_schema"), (data or {}).get("source_table")) if p
    )
    report(context, result, source_table=source_table, asset_key=asset_key)
    return result


def entrypoint() -> None:
    """Open Pipes (params from the environment the client set), run, and once Pipes is closed (its
    last message written) leave without the interpreter's teardown (0.08–0.13 s a worker)."""
    die_with_parent()
    with open_worker_pipes() as context:
        run_in_pipes(context)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    entrypoint()
