"""control_table_sensor: when control rows are added, changed or removed, write a new version of the
control-table state into Dagster's defs state storage and ask the code server to reload with it, so
every row has its asset (a removed row's asset goes away, a paused one says it is paused).

A tick compares the control table's fingerprint with the snapshot the running definitions were
built from. When they differ and the latest stored version already matches the table (a reload is
under way, or was not possible), it only asks for the reload again.
"""

from dagster import (
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from dataloader_defs.control_snapshot import Snapshot, fingerprint
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.polling import polling_sensor


def build_control_table_sensor(snapshot: Snapshot) -> SensorDefinition:
    """The sensor that compares the control table with the snapshot the definitions were built from."""

    @polling_sensor(
        name="control_table_sensor",
        every="DATALOADER_REFRESH_INTERVAL_S",
        description="Writes a new control-table state version and reloads the code location when rows change.",
    )
    def control_table_sensor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
        from dataloader_defs import state

        with control_db.connect("dagster-refresh") as conn:
            current = fingerprint(conn)
        if current == snapshot.fingerprint:
            return SensorResult(
                skip_reason=SkipReason(f"{len(snapshot.rows)} table(s), control table unchanged")
            )
        stored = state.stored_snapshot(context.instance)
        if stored is None or stored.fingerprint != current:
            version = state.refresh_state(context.instance, control_db.url)
            stored = state.stored_snapshot(context.instance, version)
            written = f"state {version} written ({len(stored.rows) if stored else 0} row(s))"
        else:
            written = "the latest state already matches it"
        outcome = state.request_reload(context.code_location_origin, context.instance)
        message = (
            f"control table changed since these definitions ({len(snapshot.rows)} row(s)): "
            f"{written}; {outcome}"
        )
        context.log.info(message)
        return SensorResult(skip_reason=SkipReason(message))

    return control_table_sensor
