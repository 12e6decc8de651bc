"""master_sensor: queue ready control rows and request one load run per row."""

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from dataloader_defs.defs.assets import control_keys, run_tags
from dataloader_defs.defs.jobs import load_job
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.settings import env_int, interval


@sensor(
    job=load_job,
    minimum_interval_seconds=interval("DATALOADER_MASTER_INTERVAL_S"),
    default_status=DefaultSensorStatus.RUNNING,
    description="Queues ready control rows (at most DATALOADER_MASTER_BATCH a tick) and launches their loads.",
)
def master_sensor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """Add partitions for new active rows, mark ready rows Queued, request one run per queued row."""
    from control_db import queries

    with control_db.connect("dagster-master") as conn:
        active = [status.control_key for status in queries.table_status(conn) if status.is_active]
        queued = queries.queue_ready_tables(conn, limit=env_int("DATALOADER_MASTER_BATCH"))
    known = set(context.instance.get_dynamic_partitions(control_keys.name))
    missing = sorted({*active, *(q.control_key for q in queued)} - known)
    requests = [
        RunRequest(
            run_key=f"{q.control_key}:{q.history_id}",
            partition_key=q.control_key,
            tags=run_tags(q.control_key, q.db_config_key, q.load_strategy, q.history_id),
        )
        for q in queued
    ]
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[control_keys.build_add_request(missing)] if missing else None,
        skip_reason=None if requests else SkipReason("no control row is ready"),
    )
