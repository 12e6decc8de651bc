"""End to end: master sensor tick -> its RunRequest executed -> the Pipes worker writes Delta -> Succeeded."""

from __future__ import annotations

import os

import psycopg
from dagster import AssetCheckSeverity
from defs_support import (
    add_control,
    materialize_by_hand,
    request_keys,
    row,
    source_table,
    status_trail,
    tick_and_run,
)
from deltalake import DeltaTable, write_deltalake

from control_db import queries
from dataloader_defs.defs.run_tags import TAG_SOURCE

ORDERS_DDL = "id integer PRIMARY KEY, amount numeric(10, 2) NOT NULL, updated_at timestamptz NOT NULL"


def checks_by_name(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_sensor_to_succeeded_with_delta_table(control_conn, source, instance, resources, lake_root):
    source_table(
        source,
        "orders_e2e",
        ORDERS_DDL,
        "INSERT INTO orders_e2e SELECT g, g * 1.5, now() - make_interval(mins => g) FROM generate_series(1, 250) g",
    )
    add_control(
        control_conn,
        "e2e.orders",
        source_table="orders_e2e",
        load_strategy="incremental",
        incremental_column="updated_at",
        primary_keys=["id"],
    )

    request, result = tick_and_run(instance, resources)

    assert result.success
    loaded = row(control_conn, "e2e.orders")
    assert loaded.last_status == "Succeeded"
    assert loaded.last_rows_processed == 250
    assert loaded.incremental_value is not None
    assert loaded.last_run_id == result.run_id
    assert status_trail(control_conn, "e2e.orders") == [None, "Queued", "In Progress", "Succeeded"]
    (history,) = queries.history_rows(control_conn, "e2e.orders")
    assert (history.load_status, history.rows_processed, history.run_id) == ("Succeeded", 250, result.run_id)
    assert request.tags[f"dataloader/attempt.{history.id}"] == "e2e.orders"

    assert DeltaTable(str(lake_root / "bronze/test/orders_e2e")).to_pyarrow_dataset().count_rows() == 250
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key.path == ["bronze", "test", "orders_e2e"]  # the table's own asset
    meta = event.materialization.metadata
    for key in (
        "rows_read",
        "bytes_written",
        "seconds",
        "rows_per_second",
        "watermark_after",
        "delta_version",
        "strategy",
        "source_row_count",
        "dagster/row_count",
        "destination",
    ):
        assert key in meta, key
    assert meta["rows_read"].value == 250 and meta["source_row_count"].value == 250
    assert "watermark_before" not in meta  # a first load has none: nothing shown that does not apply
    checks = checks_by_name(result)
    assert set(checks) == {
        "row_count_reconciliation",
        "primary_key_unique",
        "freshness_against_cron",
        "schema_drift",
    }
    assert all(c.passed for c in checks.values()), {n: c.metadata for n, c in checks.items() if not c.passed}
    assert {c.asset_key.path[-1] for c in checks.values()} == {"orders_e2e"}  # the table's own checks
    run = instance.get_run_by_id(result.run_id)
    assert request_keys(request) == ["e2e.orders"] and run.tags[TAG_SOURCE] == "test_pg"


def test_worker_failure_marks_failed_with_worker_message(control_conn, source, instance, resources):
    add_control(control_conn, "e2e.missing", source_table="no_such_table_here")

    _, result = tick_and_run(instance, resources, raise_on_error=False)

    assert not result.success
    failed = row(control_conn, "e2e.missing")
    assert failed.last_status == "Failed"
    assert failed.last_status_message == 'source table "public"."no_such_table_here" does not exist'
    assert (failed.last_error_kind, failed.last_error_code) == ("permanent", "42P01")
    assert status_trail(control_conn, "e2e.missing") == [None, "Queued", "In Progress", "Failed"]
    (history,) = queries.history_rows(control_conn, "e2e.missing")
    assert history.load_status == "Failed" and history.error_message == failed.last_status_message
    assert (history.error_kind, history.error_code) == ("permanent", "42P01")
    # The run's failure says it once, without class-name prefixes.
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure.message.count("does not exist") == 1 and "LoadError" not in failure.message


def test_hand_launched_run_goes_through_queued(control_conn, source, instance, resources):
    source_table(
        source,
        "by_hand",
        "id integer PRIMARY KEY, name text",
        "INSERT INTO by_hand VALUES (1, 'a'), (2, 'b')",
    )
    add_control(control_conn, "e2e.by_hand", source_table="by_hand", primary_keys=["id"])
    result = materialize_by_hand(instance, resources, "e2e.by_hand")

    assert result.success
    assert row(control_conn, "e2e.by_hand").last_status == "Succeeded"
    (history,) = queries.history_rows(control_conn, "e2e.by_hand")
    assert history.load_status == "Succeeded" and history.load_queued_time is not None
    assert status_trail(control_conn, "e2e.by_hand") == [None, "Queued", "In Progress", "Succeeded"]
    assert row(control_conn, "e2e.by_hand").last_run_id == result.run_id
    # Dagster names the run `__ASSET_JOB` in a deployment (here `materialize`'s own implicit job)
    # whatever we do (issue 19): its tags say what it is.
    run = instance.get_run_by_id(result.run_id)
    assert run.tags["dataloader/launched_by"] == "hand" and run.tags["dataloader/tables"] == "1"


def test_a_sensor_run_is_not_tagged_as_started_by_hand(control_conn, source, instance, resources):
    source_table(source, "by_sensor", "id integer PRIMARY KEY", "INSERT INTO by_sensor VALUES (1)")
    add_control(control_conn, "e2e.by_sensor", source_table="by_sensor", primary_keys=["id"])
    _, result = tick_and_run(instance, resources)
    assert result.success
    assert "dataloader/launched_by" not in instance.get_run_by_id(result.run_id).tags


def test_checks_catch_missing_rows_and_planted_duplicates(
    control_conn, source, instance, resources, lake_root
):
    source_table(
        source,
        "events_e2e",
        "id integer PRIMARY KEY, kind text",
        "INSERT INTO events_e2e SELECT g, 'k' FROM generate_series(1, 100) g",
    )
    add_control(
        control_conn,
        "e2e.events",
        source_table="events_e2e",
        load_strategy="append_only",
        incremental_column="id",
        primary_keys=["id"],
        cron="* * * * *",
    )
    _, first = tick_and_run(instance, resources)
    assert all(c.passed for c in checks_by_name(first).values())

    # Late rows below the watermark: append_only never reads them -> the destination misses them.
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("INSERT INTO events_e2e VALUES (-1, 'late'), (-2, 'late'), (-3, 'late'), (1000, 'new')")
    # And a duplicate key planted straight into the Delta table.
    table_path = str(lake_root / "bronze/test/events_e2e")
    planted = DeltaTable(table_path).to_pyarrow_dataset().head(1)
    write_deltalake(table_path, planted, mode="append")
    control_conn.execute(
        "UPDATE dataloader.table_control SET next_load_date_time = now() WHERE control_key = 'e2e.events'"
    )

    _, second = tick_and_run(instance, resources, raise_on_error=False)

    checks = checks_by_name(second)
    pk = checks["primary_key_unique"]
    assert not pk.passed and pk.severity == AssetCheckSeverity.ERROR
    assert pk.metadata["duplicate_keys"].value == 1
    counts = checks["row_count_reconciliation"]
    assert not counts.passed
    assert counts.metadata["source_rows"].value == 104
    assert counts.metadata["destination_rows"].value == 100 + 1 + 1  # 100 + planted duplicate + id 1000
    assert counts.metadata["missing_rows"].value == 2
    # The blocking check fails the run; the load itself committed, so the row is Succeeded with the reason.
    assert not second.success
    loaded = row(control_conn, "e2e.events")
    assert loaded.last_status == "Succeeded"
    assert "primary_key_unique" in loaded.last_status_message


def test_schema_changes_are_seen_on_loads_that_read_no_rows(control_conn, source, instance, resources):
    source_table(
        source,
        "drift",
        "id integer PRIMARY KEY, a integer, updated_at timestamptz NOT NULL DEFAULT now()",
        "INSERT INTO drift (id, a) VALUES (1, 10)",
    )
    add_control(
        control_conn,
        "e2e.drift",
        source_table="drift",
        load_strategy="incremental",
        primary_keys=["id"],
        incremental_column="updated_at",
    )
    tick_and_run(instance, resources)

    # A new column, no changed rows: the load reads nothing and the drift check says so.
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("ALTER TABLE drift ADD COLUMN b integer")
    control_conn.execute("UPDATE dataloader.table_control SET next_load_date_time = now()")
    _, second = tick_and_run(instance, resources)
    drift = checks_by_name(second)["schema_drift"]
    assert not drift.passed and drift.severity == AssetCheckSeverity.WARN
    assert drift.metadata["source_only_columns"].value == "b"
    assert row(control_conn, "e2e.drift").last_rows_processed == 0
    # No commit, yet the table is current as of this read: freshness counts from it.
    fresh = checks_by_name(second)["freshness_against_cron"]
    assert fresh.passed and "source_read_without_changes" in fresh.metadata

    # A type change (integer -> text), still no changed rows: refused, naming the column.
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("ALTER TABLE drift ALTER COLUMN a TYPE text")
    control_conn.execute("UPDATE dataloader.table_control SET next_load_date_time = now()")
    _, third = tick_and_run(instance, resources, raise_on_error=False)
    assert not third.success
    failed = row(control_conn, "e2e.drift")
    assert failed.last_status == "Failed" and failed.last_error_kind == "permanent"
    assert "column 'a' changed type" in failed.last_status_message


def test_a_run_of_twelve_tables_with_one_missing_fails_only_that_table(
    control_conn, source, instance, resources, monkeypatch
):
    monkeypatch.setenv("DATALOADER_MASTER_BATCH", "20")
    for i in range(11):
        source_table(
            source,
            f"batch{i}",
            "id integer PRIMARY KEY, v text",
            f"INSERT INTO batch{i} VALUES (1, 'a'), (2, 'b')",
        )
        add_control(control_conn, f"b.batch{i:02}", source_table=f"batch{i}", primary_keys=["id"])
    add_control(control_conn, "b.missing", source_table="no_such_batch_table", primary_keys=["id"])

    request, result = tick_and_run(instance, resources, raise_on_error=False)

    assert len(request_keys(request)) == 12  # one run for the twelve tables of the source
    assert not result.success
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized == {f"batch{i}" for i in range(11)}
    statuses = {key: row(control_conn, key).last_status for key in request_keys(request)}
    assert [k for k, s in statuses.items() if s != "Succeeded"] == ["b.missing"]
    missing = row(control_conn, "b.missing")
    assert missing.last_status == "Failed" and "no_such_batch_table" in missing.last_status_message
    assert missing.last_error_code == "42P01"
    (failure,) = result.get_step_failure_events()
    text = failure.step_failure_data.error.message
    assert "1 of 12 tables failed (11 succeeded or skipped)" in text and "b.missing" in text


def test_orchestrator_loads_a_table_whose_credentials_only_the_worker_has(
    control_conn, source_pg_url, instance, resources, monkeypatch
):
    """The source's host, database and user are secret names resolved in the worker's environment
    only: the Dagster process never has them and never opens the source."""
    from urllib.parse import urlsplit

    from defs_support import with_pipes_client

    from dataloader_defs.defs.loader import LocalPipesClient

    parts = urlsplit(source_pg_url)
    names = {"DL_ONLY_WORKER_HOST": parts.hostname, "DL_ONLY_WORKER_DB": parts.path.lstrip("/"),
             "DL_ONLY_WORKER_USER": parts.username or "postgres", "DL_ONLY_WORKER_PORT": str(parts.port or 5432)}  # fmt: skip
    for name in names:
        monkeypatch.delenv(name, raising=False)
    control_conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES ('worker_only', 'postgresql', %s::jsonb, 'env')",
        (
            '{"host": "DL_ONLY_WORKER_HOST", "port": "DL_ONLY_WORKER_PORT", "database": "DL_ONLY_WORKER_DB", '
            '"user": "DL_ONLY_WORKER_USER"}',
        ),
    )
    source_table(
        source_pg_url, "secretive", "id integer PRIMARY KEY", "INSERT INTO secretive VALUES (1), (2), (3)"
    )
    add_control(
        control_conn,
        "w.secretive",
        db_config_key="worker_only",
        source_table="secretive",
        primary_keys=["id"],
    )

    worker_only = with_pipes_client(resources, LocalPipesClient(env=names))
    result = materialize_by_hand(instance, worker_only, "w.secretive")

    assert result.success
    assert row(control_conn, "w.secretive").last_rows_processed == 3
    assert not any(name in os.environ for name in names)  # the orchestrator never had them
