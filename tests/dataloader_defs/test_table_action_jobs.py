"""The Launchpad's control-action jobs on a real Dagster instance and control database: each action
changes the selected rows through the guarded statements, names its run in the control history,
and a refusal fails the run with the reason and changes nothing."""

from __future__ import annotations

import psycopg
import pytest
from dagster import DagsterInstance, DagsterRunStatus
from defs_support import add_control, row, set_row

from dataloader_defs.defs.table_action_jobs import ACTION_JOBS

JOBS = {job.name: job for job in ACTION_JOBS}


def _run(instance: DagsterInstance, resources: dict, action: str, **selection):
    job = JOBS[f"dataloader_{action}"]
    return job.execute_in_process(
        run_config={"ops": {f"{action}_tables": {"config": selection}}},
        instance=instance,
        resources={"control_db": resources["control_db"]},
        raise_on_error=False,
    )


def _sources(conn: psycopg.Connection, control_key: str) -> list[tuple[str, dict]]:
    """(change_source, new_values) of each UPDATE the history recorded for the row."""
    return conn.execute(
        "SELECT change_source, new_values FROM dataloader.table_control_history "
        "WHERE control_key = %s AND change_type ILIKE 'update%%' ORDER BY id",
        (control_key,),
    ).fetchall()


def _failure_message(result) -> str:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return event.step_failure_data.user_failure_data.description


@pytest.fixture
def tables(control_conn: psycopg.Connection, source: str) -> psycopg.Connection:
    add_control(control_conn, "t.public.a")
    add_control(control_conn, "t.public.b")
    return control_conn


def test_pause_then_resume_by_source_records_the_run(instance, resources, tables) -> None:
    result = _run(instance, resources, "pause", db_config_keys=["test_pg"])
    assert result.success
    assert not row(tables, "t.public.a").is_active and not row(tables, "t.public.b").is_active
    source, new = _sources(tables, "t.public.a")[-1]
    assert source == f"dataloader-dagster-run:{result.run_id}" and new["is_active"] is False
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert output.event_specific_data.metadata["changed"].value == 2

    resumed = _run(instance, resources, "resume", control_keys=["t.public.a"])
    assert resumed.success
    assert row(tables, "t.public.a").is_active and not row(tables, "t.public.b").is_active
    assert _sources(tables, "t.public.a")[-1][0] == f"dataloader-dagster-run:{resumed.run_id}"


def test_reset_by_asset_key_clears_a_failed_row(instance, resources, tables) -> None:
    set_row(
        tables,
        "t.public.a",
        last_status="Failed",
        retry_count=3,
        manual_review=True,
        manual_review_reason="permanent: missing table",
        last_error_kind="permanent",
        last_error_code="42P01",
    )
    result = _run(instance, resources, "reset", asset_keys=["bronze/test/a"])
    assert result.success
    after = row(tables, "t.public.a")
    assert (after.last_status, after.retry_count, after.manual_review, after.last_error_code) == (
        None,
        0,
        False,
        None,
    )
    assert _sources(tables, "t.public.a")[-1][0] == f"dataloader-dagster-run:{result.run_id}"


def test_force_full_reload_and_load_now(instance, resources, tables) -> None:
    set_row(tables, "t.public.a", next_load_date_time="2099-01-01T00:00:00Z")
    assert _run(instance, resources, "force_full_reload", control_keys=["t.public.a"]).success
    after = row(tables, "t.public.a")
    assert after.load_full and after.next_load_date_time is None

    set_row(tables, "t.public.b", next_load_date_time="2099-01-01T00:00:00Z")
    assert _run(instance, resources, "load_now", control_keys=["t.public.b"]).success
    assert row(tables, "t.public.b").next_load_date_time is None


def test_a_row_in_progress_refuses_and_nothing_changes(instance, resources, tables) -> None:
    set_row(tables, "t.public.b", last_status="In Progress", retry_count=2)
    set_row(tables, "t.public.a", last_status="Failed", retry_count=2)
    result = _run(instance, resources, "reset", control_keys=["t.public.a", "t.public.b"])
    assert not result.success
    assert _failure_message(result) == (
        "reset: reset refused for 1 table(s), nothing changed: t.public.b is In Progress; "
        "wait for its run to finish (or fail) and reset it then"
    )
    assert row(tables, "t.public.a").last_status == "Failed"  # rolled back with the refusal
    assert row(tables, "t.public.b").last_status == "In Progress"
    assert not any("dagster-run" in source for source, _ in _sources(tables, "t.public.a"))

    skipped = _run(instance, resources, "reset", control_keys=["t.public.a", "t.public.b"], skip_refused=True)
    assert skipped.success
    assert row(tables, "t.public.a").last_status is None
    assert row(tables, "t.public.b").last_status == "In Progress"


def test_unknown_keys_are_named_and_refused(instance, resources, tables) -> None:
    result = _run(
        instance, resources, "pause", control_keys=["t.public.a", "no.such"], db_config_keys=["nosrc"]
    )
    assert not result.success
    assert (
        _failure_message(result) == "pause: no control row for control_key 'no.such', db_config_key 'nosrc'"
    )
    assert row(tables, "t.public.a").is_active
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.status == DagsterRunStatus.FAILURE


def test_load_now_refuses_failed_and_paused_rows(instance, resources, tables) -> None:
    set_row(tables, "t.public.a", last_status="Failed")
    set_row(tables, "t.public.b", is_active=False)
    result = _run(instance, resources, "load_now", control_keys=["t.public.a", "t.public.b"])
    assert _failure_message(result) == (
        "load_now: load_now refused for 2 table(s), nothing changed: "
        "t.public.a is Failed; reset it instead (a reset loads it now); "
        "t.public.b is paused (is_active = false); resume it first"
    )


def test_the_jobs_are_in_the_code_location() -> None:
    from dataloader_defs.control_snapshot import Snapshot
    from dataloader_defs.control_tables_component import build_definitions_from_snapshot

    defs = build_definitions_from_snapshot(Snapshot(fingerprint="none"))
    for name in JOBS:
        assert defs.get_job_def(name).name == name


def _circuit_run(instance: DagsterInstance, resources: dict, verb: str, **config):
    from dataloader_defs.defs.circuit_action_jobs import CIRCUIT_JOBS

    (job,) = [j for j in CIRCUIT_JOBS if j.name == f"dataloader_{verb}_circuit"]
    return job.execute_in_process(
        run_config={"ops": {f"{verb}_circuits": {"config": config}}},
        instance=instance,
        resources={"control_db": resources["control_db"]},
        raise_on_error=False,
    )


def _circuit_trail(conn: psycopg.Connection, source: str) -> list[tuple[str, str, str]]:
    return conn.execute(
        "SELECT new_state, reason, change_source FROM dataloader.source_circuit_history "
        "WHERE db_config_key = %s ORDER BY id",
        (source,),
    ).fetchall()


def test_open_then_close_a_sources_circuit_from_the_launchpad(instance, resources, tables) -> None:
    from control_db.queries.circuit import QUEUE_ALLOWED

    opened = _circuit_run(
        instance, resources, "open", db_config_keys=["test_pg"], reason="planned maintenance", cooldown_s=3600
    )
    assert opened.success
    (state, until) = tables.execute(
        "SELECT state, open_until > now() + interval '50 minutes' FROM dataloader.source_circuit "
        "WHERE db_config_key = 'test_pg'"
    ).fetchone()
    assert (state, until) == ("open", True)
    queueable = tables.execute(
        f"SELECT count(*) FROM dataloader.table_control AS tc WHERE {QUEUE_ALLOWED}"
    ).fetchone()
    assert queueable == (0,)  # the master sensor queues none of its tables
    assert _circuit_trail(tables, "test_pg")[-1] == (
        "open",
        "planned maintenance",
        f"dataloader-dagster-run:{opened.run_id}",
    )

    closed = _circuit_run(instance, resources, "close", db_config_keys=["test_pg"])
    assert closed.success
    assert tables.execute(
        "SELECT state FROM dataloader.source_circuit WHERE db_config_key = 'test_pg'"
    ).fetchone() == ("closed",)
    state, reason, source = _circuit_trail(tables, "test_pg")[-1]
    assert (state, source) == (
        "closed",
        f"dataloader-dagster-run:{closed.run_id}",
    ) and closed.run_id in reason


def test_an_unknown_source_fails_the_circuit_run_and_changes_nothing(instance, resources, tables) -> None:
    before = _circuit_trail(tables, "test_pg")  # the history outlives other tests' rows
    result = _circuit_run(instance, resources, "open", db_config_keys=["test_pg", "nosuch"])
    assert not result.success
    assert _failure_message(result) == "open circuit: no source with db_config_key 'nosuch'; nothing changed"
    assert _circuit_trail(tables, "test_pg") == before  # test_pg, listed first, was rolled back too
    state = tables.execute(
        "SELECT state FROM dataloader.source_circuit WHERE db_config_key = 'test_pg'"
    ).fetchone()
    assert state in (None, ("closed",))
