"""`dataloader load CONTROL_KEY`: one load now, in-process, through the same lifecycle as a Dagster run.

Registered via the entry-point group `dataloader.commands` (`load = "pipes_workers.local_load:register"`).
Queued -> In Progress -> `attempt_load` -> Succeeded/Failed, recorded by `control_db.lifecycle`, the
function the Dagster asset uses too. Prints progress and the asset checks the worker evaluated.
Environment: DATALOADER_CONTROL_DB_URL, DATALOADER_LAKE_ROOT (beside `make dev` both found by the
`dataloader` command, control_db.dev_settings), DATALOADER_SECRETS_DIR.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from control_db.dev_settings import LAKE_ROOT_ENV, missing
from control_db.lifecycle import Refusal, begin_attempt, record_outcome
from control_db.local_runs import new_local_run_id
from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import LoadRequest
from dataloader_contract.result import LoadFailure, LoadResult, failed_result
from pipes_workers.load import attempt_load, unexpected_failure

CONTROL_DB_ENV = "DATALOADER_CONTROL_DB_URL"


def load_control_key(
    conn_url: str, control_key: str, lake_root: str, *, log: Callable[[str], None] = print
) -> LoadResult:
    """Load one control row now and record the outcome; returns the LoadResult (failed ones too,
    an unexpected exception among them: the row never stays In Progress after this returns).

    Raises:
        ConfigurationError when the row does not exist or is already being loaded.
        OutcomeNotRecorded (a RuntimeError) when the control database stayed unreachable for
            DATALOADER_OUTCOME_RETRY_S after the load: the row stays In Progress for this process's
            run until the process has ended; then the next load or reset of the row, or the
            reconcile pass, fails it.
    """
    run_id = new_local_run_id()
    attempt = begin_attempt(conn_url, control_key, run_id=run_id, history_id=None, component="cli")
    if isinstance(attempt, Refusal):
        raise ConfigurationError(attempt.reason)
    request = LoadRequest.from_control_row(attempt.row, attempt.source, lake_root=lake_root, run_id=run_id)
    try:
        result = attempt_load(request, log=log)
    except KeyboardInterrupt:
        interrupted = LoadFailure(kind="transient", code="interrupted", message=f"{control_key}: interrupted")
        record_outcome(
            conn_url, attempt, failed_result(control_key, request.load_strategy, interrupted), component="cli"
        )
        raise
    except Exception as exc:  # a bug, or stdout closed under us: Failed, never left In Progress
        result = failed_result(control_key, request.load_strategy, unexpected_failure(control_key, exc))
    recorded = record_outcome(conn_url, attempt, result, component="cli")
    if recorded.status == "not recorded":
        log(f"{control_key}: {recorded.detail}")
    return result


def print_checks(result: LoadResult) -> None:
    """One line per asset check the worker evaluated."""
    for check in result.checks:
        verdict = "passed" if check.passed else f"FAILED ({check.severity})"
        details = ", ".join(f"{k}={v}" for k, v in check.metadata.items())
        progress(f"  check {check.name}: {verdict}; {details}")


def main(args: argparse.Namespace) -> int:
    """Run `dataloader load CONTROL_KEY`; 0 on success, 1 on failure (the reason on stderr)."""
    unset = missing(CONTROL_DB_ENV, LAKE_ROOT_ENV)
    if unset:
        print(f"dataloader load: {unset}", file=sys.stderr)
        return 1
    conn_url, lake_root = os.environ[CONTROL_DB_ENV], os.environ[LAKE_ROOT_ENV]
    try:
        result = load_control_key(conn_url, args.control_key, lake_root, log=progress)
    except ConfigurationError as exc:
        print(f"dataloader load: {exc}", file=sys.stderr)
        return 1
    if result.error is not None:
        print(f"dataloader load: {result.error.kind} error: {result.error.message}", file=sys.stderr)
        return 1
    summary = "skipped (nothing new)" if result.skipped else f"{result.rows_read:,} rows"
    progress(f"{args.control_key}: Succeeded, {summary}, Delta version {result.delta_version}")
    print_checks(result)
    return 0


def progress(line: str) -> None:
    """Print one line of progress. A reader that went away (`dataloader load KEY | head -1`) silences
    the rest instead of failing the load: the outcome is in the control row either way."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `load` subcommand to the `dataloader` CLI."""
    parser = subparsers.add_parser("load", help="load one control row now, in-process, with progress")
    parser.add_argument("control_key", metavar="CONTROL_KEY")
    parser.set_defaults(func=main, needs_lake=True)
