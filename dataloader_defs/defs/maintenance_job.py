"""dataloader_maintenance_job: compact and vacuum tables through the Pipes maintenance worker.

For each requested control key the op takes the row with `claim_for_maintenance` (NULL/Succeeded ->
In Progress, last_run_id = this run, so the reconcile monitor sees a live run), runs
`python -m pipes_workers.maintain_pipe` through the loads' worker launcher (the `loader` resource), and puts the row
back. Rows a load holds are skipped; files before/after and bytes removed become output metadata.
"""

import uuid

from dagster import Config, Failure, OpExecutionContext, job, op

from dataloader_defs.defs.loader import TableLoader
from dataloader_defs.defs.loader.launcher import MAINTENANCE_WORKER_MODULE
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
    """Compact and vacuum each requested table while holding its control row."""
    from control_db import queries
    from pipes_workers.maintenance_request import MaintenanceRequest

    report: dict[str, dict] = {}
    failed: list[str] = []
    with control_db.connect("dagster-maintenance") as conn:
        for key in config.control_keys:
            row = queries.get_control_row(conn, key)
            claim = queries.claim_for_maintenance(
                conn,
                key,
                token=f"{context.run.run_id[:8]}-{uuid.uuid4().hex[:6]}",
                run_id=context.run.run_id,
                run_url=settings.run_url(context.run.run_id),
            )
            if row is None or claim is None:
                state = "missing" if row is None else row.last_status
                context.log.info(f"{key}: skipped, the row is {state}")
                report[key] = {"skipped": f"row is {state}"}
                continue
            request = MaintenanceRequest(
                control_key=key,
                destination_table=row.destination_table,
                lake_root=settings.lake_root,
                load_strategy=row.load_strategy,
                primary_keys=tuple(row.primary_keys or ()),
            )
            try:
                invocation = loader.workers.run_module(
                    context,
                    MAINTENANCE_WORKER_MODULE,
                    extras={"maintenance_request": request.to_dict()},
                    env=settings.worker_env(),
                )
                messages = invocation.get_custom_messages()
                report[key] = messages[-1] if messages else {"skipped": "the worker reported nothing"}
            except Exception as exc:
                context.log.error(f"{key}: maintenance failed: {type(exc).__name__}: {exc}")
                failed.append(key)
                queries.release_maintenance(conn, claim, done=False)
                continue
            queries.release_maintenance(conn, claim, done=True)
    context.add_output_metadata(
        {
            key: ", ".join(f"{name}={value}" for name, value in facts.items() if name != "control_key")
            for key, facts in report.items()
        }
    )
    if failed:
        raise Failure(f"maintenance failed for {', '.join(failed)} (their rows were put back)")
    return report


@job(
    description="Compacts (z-ordered by primary key for MERGEd tables) and vacuums Delta tables, "
    "holding each control row so no load races it.",
    tags={"dataloader/maintenance": "true"},
)
def dataloader_maintenance_job() -> None:
    maintain_tables()
