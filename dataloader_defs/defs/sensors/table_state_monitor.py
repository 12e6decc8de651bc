"""table_state_monitor: shows on each table's asset why it is not loading — paused, in manual review
or failed, with the reason and the error's kind, code and message — as an AssetObservation, once per
change (the cursor holds a digest per such row), and an `ok` observation once it loads again."""

import json

from dagster import (
    AssetKey,
    AssetObservation,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.polling import polling_sensor

CLEARED_REASON = "no longer paused, failed or in manual review"


def observation(row) -> AssetObservation:
    """The observation of a row that is not loading (`row`: control_db.queries.table_states.NotLoading)."""
    metadata = {
        "dataloader/state": row.state,
        "dataloader/reason": row.reason,
        "control_key": row.control_key,
        "last_status": row.last_status or "never loaded",
        "retries": f"{row.retry_count} of {row.max_retries}",
    }
    for name, value in (
        ("error_kind", row.last_error_kind),
        ("error_code", row.last_error_code),
        ("error_message", row.last_status_message),
    ):
        if value:
            metadata[name] = value
    return AssetObservation(
        asset_key=AssetKey(row.destination_table.split("/")),
        # The retry analysis' reason already starts "manual review (permanent): …".
        description=row.reason if row.reason.startswith(row.state) else f"{row.state}: {row.reason}",
        metadata=metadata,
    )


@polling_sensor(
    every="DATALOADER_STATE_INTERVAL_S",
    description="Records on each asset why its table is not loading (paused, manual review, failed), once per change.",
)
def table_state_monitor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """Observations for the rows whose state changed since the last tick (cursor: key -> [digest, path])."""
    from control_db.queries.table_states import tables_not_loading

    with control_db.connect("dagster-state") as conn:
        rows = tables_not_loading(conn)
    seen: dict[str, list[str]] = json.loads(context.cursor) if context.cursor else {}
    now = {row.control_key: [row.digest(), row.destination_table] for row in rows}
    events = [observation(row) for row in rows if seen.get(row.control_key) != now[row.control_key]]
    for key, (_, path) in seen.items():
        if key not in now:
            events.append(
                AssetObservation(
                    asset_key=AssetKey(path.split("/")),
                    description=f"ok: {CLEARED_REASON}",
                    metadata={
                        "dataloader/state": "ok",
                        "dataloader/reason": CLEARED_REASON,
                        "control_key": key,
                    },
                )
            )
    return SensorResult(
        asset_events=events,
        cursor=json.dumps(now, sort_keys=True),
        skip_reason=None if events else SkipReason("no table changed state"),
    )
