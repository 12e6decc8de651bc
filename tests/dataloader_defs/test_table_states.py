"""Why a table is not loading, where people look: a failed load's run carries the error kind, code
and message (an observation on the asset and the step failure's metadata), and table_state_monitor
records paused / manual review / failed states on the asset once per change, read back from the
instance's event log."""

from __future__ import annotations

from dagster import AssetKey, DagsterInstance, build_sensor_context
from defs_support import add_control, set_row, tick_and_run

from dataloader_defs.defs.sensors.table_state_monitor import table_state_monitor

MISSING = 'source table "public"."no_such_table_here" does not exist'


def _observations(instance: DagsterInstance, path: str) -> list:
    """The metadata values and description of each observation of asset `path`, oldest first."""
    records = instance.fetch_observations(AssetKey(path.split("/")), limit=100, ascending=True).records
    found = []
    for record in records:
        observation = record.event_log_entry.dagster_event.event_specific_data.asset_observation
        values = {k: v.value for k, v in observation.metadata.items()}
        found.append((observation.description, values, record.event_log_entry.run_id))
    return found


def _tick(instance: DagsterInstance, control_db, cursor: str | None):
    context = build_sensor_context(instance=instance, resources={"control_db": control_db}, cursor=cursor)
    result = table_state_monitor(context)
    # What the sensor daemon does with a tick's asset events: store them in the event log.
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def test_a_failed_load_shows_kind_code_and_message_on_the_run(control_conn, source, instance, resources):
    add_control(control_conn, "st.missing", source_table="no_such_table_here")
    _, result = tick_and_run(instance, resources, raise_on_error=False)

    assert not result.success
    ((description, metadata, run_id),) = _observations(instance, "bronze/test/no_such_table_here")
    assert run_id == result.run_id
    assert description == f"load failed (permanent, 42P01): {MISSING}"
    assert (metadata["error_kind"], metadata["error_code"], metadata["error_message"]) == (
        "permanent",
        "42P01",
        MISSING,
    )
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    values = {k: v.value for k, v in failure.metadata.items()}
    assert (values["error_kind"], values["error_code"], values["error_message"]) == (
        "permanent",
        "42P01",
        MISSING,
    )
    assert "| st.missing | permanent | 42P01 |" in values["failed_tables"]


def test_states_are_observed_once_per_change(control_conn, source, instance, control_db):
    add_control(control_conn, "st.review")
    add_control(control_conn, "st.paused")
    add_control(control_conn, "st.fine")
    set_row(
        control_conn,
        "st.review",
        last_status="Failed",
        manual_review=True,
        manual_review_reason="manual review (permanent): missing table",
        last_status_message=MISSING,
        last_error_kind="permanent",
        last_error_code="42P01",
    )
    set_row(control_conn, "st.paused", is_active=False)

    first = _tick(instance, control_db, None)
    assert len(first.asset_events) == 2
    ((description, metadata, _),) = _observations(instance, "bronze/test/review")
    assert description == "manual review (permanent): missing table"
    assert metadata["dataloader/state"] == "manual review"
    assert (metadata["error_kind"], metadata["error_code"], metadata["error_message"]) == (
        "permanent",
        "42P01",
        MISSING,
    )
    ((description, metadata, _),) = _observations(instance, "bronze/test/paused")
    assert metadata["dataloader/state"] == "paused" and description.startswith("paused: ")
    assert _observations(instance, "bronze/test/fine") == []

    # Nothing changed: no new observation.
    second = _tick(instance, control_db, first.cursor)
    assert second.asset_events == []

    # A reset clears the review: one `ok` observation; resuming does the same for the paused table.
    set_row(control_conn, "st.review", last_status=None, manual_review=False, manual_review_reason=None)
    set_row(control_conn, "st.paused", is_active=True)
    third = _tick(instance, control_db, second.cursor)
    assert len(third.asset_events) == 2
    assert _observations(instance, "bronze/test/review")[-1][1]["dataloader/state"] == "ok"
    assert _observations(instance, "bronze/test/paused")[-1][1]["dataloader/state"] == "ok"
    assert _tick(instance, control_db, third.cursor).asset_events == []
