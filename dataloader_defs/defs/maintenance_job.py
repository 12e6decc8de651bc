"""dataloader_maintenance_job: compact and vacuum tables through the Pipes maintenance worker.

For each requested control key the op claims the row (`control_db.maintenance_lifecycle`, owner
`run:<this run>`, so a claim of a run that died is taken over), runs
`python -m pipes_workers.maintain_pipe` through the loads' worker launcher (the `loader` resource)
with no control-database connection open, reads the worker's typed `MaintenanceResult` and releases
the claim. Rows a load holds are skipped; files before/after and bytes removed become output metadata.
"""

from dagster import Config, Failure, OpExecutionContext, job, op

from dataloader_defs.defs.loader import TableLoader
from dataloader_defs.defs.loader.launcher import MAINTENANCE_WORKER_MODULE
from dataloader_defs.defs.maintenance_owners import owner_gone_in
from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings


class MaintenanceConfig(Config):
    """Which control rows to maintain."""

    control_keys: list[str]


@op
def maintain_tables(
    context: OpExecutionContext,
    config: MaintenanceConfig,
    control_db: ControlDatabase,
    settings: DataloaderSettings,
    loader: TableLoader,
) -> dict:
    """Compact and vacuum each requested table while holding its maintenance claim."""
    from control_db import maintenance_lifecycle as lifecycle
    from pipes_workers.maintenance_request import MaintenanceRequest, read_maintenance_result

    owner = lifecycle.run_owner(context.run.run_id)
    owner_gone = owner_gone_in(context.instance)
    report: dict[str, dict] = {}
    failed: list[str] = []
    for key in config.control_keys:
        held = lifecycle.claim_table(control_db.url, key, owner=owner, owner_gone=owner_gone)
        if isinstance(held, lifecycle.NotHeld):
            context.log.info(f"{key}: skipped, {held.reason}")
            report[key] = {"skipped": held.reason}
            continue
        request = MaintenanceRequest.for_target(held.target, settings.lake_root)
        try:
            invocation = loader.workers.run_module(
                context,
                MAINTENANCE_WORKER_MODULE,
                extras={"maintenance_request": request.to_dict()},
                env=settings.worker_env(),
            )
            result = read_maintenance_result(invocation.get_custom_messages())
            if result is None:
                raise RuntimeError("the maintenance worker reported no result")
        except Exception as exc:
            context.log.error(f"{key}: maintenance failed: {type(exc).__name__}: {exc}")
            failed.append(key)
            lifecycle.release_table(control_db.url, held.claim, done=False)
            continue
        lifecycle.release_table(control_db.url, held.claim, done=True)
        report[key] = result.to_metadata()
    context.add_output_metadata(
        {
            key: ", ".join(f"{name}={value}" for name, value in facts.items() if name != "control_key")
            for key, facts in report.items()
        }
    )
    if failed:
        raise Failure(f"maintenance failed for {', '.join(failed)} (their claims were released)")
    return report


@job(
    description="Compacts (z-ordered by primary key for MERGEd tables) and vacuums Delta tables, "
    "holding a maintenance claim on each control row so no load races it.",
    tags={"dataloader/maintenance": "true"},
)
def dataloader_maintenance_job() -> None:
    maintain_tables()
