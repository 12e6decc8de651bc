"""Pipes maintenance worker: `python -m pipes_workers.maintain_pipe` (the Dagster maintenance job runs it).

Reads the extras key `maintenance_request`, compacts and vacuums that table (the job holds the
row's maintenance claim meanwhile) and reports the MaintenanceResult as a custom Pipes message
(`MaintenanceResult.to_message`, read back with `read_maintenance_result`). Imports only
`dagster_pipes` from Dagster.
"""

from __future__ import annotations

from dagster_pipes import PipesContext

from dataloader_contract.errors import ConfigurationError
from pipes_workers.maintain import maintain_table
from pipes_workers.maintenance_request import MaintenanceRequest, MaintenanceResult
from pipes_workers.pipes_io import open_worker_pipes

EXTRAS_KEY = "maintenance_request"


def run_in_pipes(context: PipesContext) -> MaintenanceResult:
    """Maintain the requested table inside an open Pipes context and report the result."""
    data = context.get_extra(EXTRAS_KEY) if EXTRAS_KEY in context.extras else None
    if not isinstance(data, dict):
        raise ConfigurationError(f"Pipes extras key {EXTRAS_KEY!r} is missing or not an object")
    result = maintain_table(MaintenanceRequest.from_dict(data), log=context.log.info)
    context.report_custom_message(result.to_message())
    return result


def entrypoint() -> None:
    """Open Pipes (params from the environment the client set) and run."""
    with open_worker_pipes() as context:
        run_in_pipes(context)


if __name__ == "__main__":
    entrypoint()
