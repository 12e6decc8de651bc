"""Pipes worker entrypoint: `python -m pipes_workers.dataloader_pipe`.

Opens the Dagster Pipes context, reads the extras key `load_request`, runs the load and reports the
result as an asset materialisation (data version = Delta table version). Imports only
`dagster_pipes`. On failure the exception propagates (Pipes reports it); LoadError messages start
with the exception class name so the orchestrator's retry analysis can read them.
"""

from __future__ import annotations

from collections.abc import Callable

from dagster_pipes import PipesContext, open_dagster_pipes

from pipes_workers.errors import ConfigurationError, LoadError
from pipes_workers.load import run_load
from pipes_workers.request import LoadRequest
from pipes_workers.result import LoadResult

EXTRAS_KEY = "load_request"


def prefixed(exc: LoadError) -> LoadError:
    """The same error with its message prefixed by the class name (`TransientLoadError: …`)."""
    name = type(exc).__name__
    text = str(exc)
    if text.startswith(f"{name}: "):
        return exc
    clone = type(exc)(f"{name}: {text}")
    return clone


def main(request_data: dict, *, log: Callable[[str], None] | None = None) -> LoadResult:
    """Parse the request and run the load (the plain logic behind the Pipes entrypoint).

    Args:
        request_data: the `load_request` extras (LoadRequest.to_dict() form).
        log: progress sink.

    Returns:
        The LoadResult.
    """
    try:
        request = LoadRequest.from_dict(request_data)
        return run_load(request, log=log)
    except LoadError as exc:
        raise prefixed(exc) from exc


def run_in_pipes(context: PipesContext) -> LoadResult:
    """Run the load inside an open Pipes context and report the materialisation."""
    data = context.get_extra(EXTRAS_KEY) if EXTRAS_KEY in context.extras else None
    if not isinstance(data, dict):
        raise prefixed(ConfigurationError(f"Pipes extras key {EXTRAS_KEY!r} is missing or not an object"))
    result = main(data, log=context.log.info)
    context.report_asset_materialization(
        metadata=result.to_metadata(),
        data_version=str(result.delta_version) if result.delta_version is not None else None,
    )
    return result


def entrypoint() -> None:
    """Open Pipes (params from the environment the client set) and run."""
    with open_dagster_pipes() as context:
        run_in_pipes(context)


if __name__ == "__main__":
    entrypoint()
