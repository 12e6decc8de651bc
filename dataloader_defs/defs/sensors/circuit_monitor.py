"""circuit_monitor: shows each circuit breaker transition on the assets of its source.

Every audited transition (`dataloader.source_circuit_history`, after the sensor's cursor) becomes an
asset observation on each table asset of that source, with the circuit's state, the reason and the
end of the cool-down as metadata: the asset page says why a source's tables are not loading.
"""

from __future__ import annotations

from dagster import (
    AssetKey,
    AssetObservation,
    MetadataValue,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from dataloader_defs.control_snapshot import Snapshot
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.polling import polling_sensor


def circuit_observations(change, assets: list[AssetKey]) -> list[AssetObservation]:
    """One observation per asset of the source `change` (a CircuitChange) is about."""
    metadata = {
        "circuit": MetadataValue.text(change.new_state),
        "circuit_reason": MetadataValue.text(change.reason or "-"),
        "circuit_changed_at": MetadataValue.text(change.changed_at.isoformat()),
    }
    if change.open_until is not None and change.new_state == "open":
        metadata["circuit_open_until"] = MetadataValue.text(change.open_until.isoformat())
    if change.probe_control_key:
        metadata["circuit_probe"] = MetadataValue.text(change.probe_control_key)
    return [AssetObservation(asset_key=key, metadata=metadata) for key in assets]


def build_circuit_monitor(snapshot: Snapshot) -> SensorDefinition:
    """The circuit monitor for the table assets of `snapshot`."""
    assets: dict[str, list[AssetKey]] = {}
    for row in snapshot.rows:
        assets.setdefault(row.db_config_key, []).append(AssetKey(row.asset_path))

    @polling_sensor(
        name="circuit_monitor",
        every="DATALOADER_CIRCUIT_INTERVAL_S",
        description="Records each source circuit-breaker transition as an observation on the source's assets.",
    )
    def circuit_monitor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
        from control_db.queries.circuit_reads import circuit_changes

        after = int(context.cursor or 0)
        with control_db.connect("dagster-circuit") as conn:
            changes = circuit_changes(conn, after_id=after)
        if not changes:
            return SensorResult(skip_reason=SkipReason("no circuit breaker transition"))
        events = [
            obs
            for change in changes
            for obs in circuit_observations(change, assets.get(change.db_config_key, []))
        ]
        return SensorResult(asset_events=events, cursor=str(changes[-1].id))

    return circuit_monitor
