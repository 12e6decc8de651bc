"""cdc on PostgreSQL: snapshot, then rounds of inserts, updates (a TOASTed column left unchanged)
and deletes, each load equal to a `full` load of the same rows; crash safety; the lag check; a lost
slot. Real server: the logical-decoding PostgreSQL on 127.0.0.1:5441 (`make cdc-pg-start`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cdc_support import assert_equals_full_load, insert, typed_table
from loadtest_support import PostgresSource, after_success, destination_rows, killed_worker

from dataloader_contract.errors import ConfigurationError, SchemaConflictError
from dataloader_contract.request import LoadRequest
from pipes_workers.cdc.pg_slots import slot_name
from pipes_workers.load import run_load


@pytest.fixture
def source(cdc_pg_url: str) -> Iterator[PostgresSource]:
    db = PostgresSource(cdc_pg_url)
    try:
        yield db
    finally:
        db.conn.close()


def cdc_request(source: PostgresSource, table: str, lake_root: Path, **fields: object) -> LoadRequest:
    settings: dict[str, object] = {"incremental_column": None, "delete_mode": "hard", **fields}
    return source.request(table, "cdc", lake_root, **settings)


def big_value(source: PostgresSource, table: str, key: int) -> str:
    return source.fetch(f"SELECT big FROM {table} WHERE id = {key}")[0]["big"]


def test_snapshot_then_three_rounds(source: PostgresSource, lake_root: Path) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 6), big=True)
    request = cdc_request(source, table, lake_root)
    first = run_load(request)
    assert first.rows_read == 5 and first.committed
    assert first.watermark_after is not None and "/" in first.watermark_after
    assert_equals_full_load(request)
    request = after_success(request, first)

    # Round 1: inserts (one of them TOASTed).
    insert(source, table, range(6, 9))
    insert(source, table, range(9, 10), big=True)
    second = run_load(request)
    assert (second.rows_read, second.rows_written) == (4, 4)
    assert_equals_full_load(request)
    request = after_success(request, second)

    # Round 2: updates; the TOASTed `big` of rows 1 and 9 is left unchanged (pgoutput does not send it).
    toasted = big_value(source, table, 1)
    assert len(toasted) > 2000
    source.execute(f"UPDATE {table} SET amount = amount + 100, flag = NOT flag WHERE id IN (1, 9)")
    source.execute(f"UPDATE {table} SET name = 'renamed', tags = ARRAY['x'], doc = NULL WHERE id = 2")
    source.execute(f"UPDATE {table} SET name = 'twice' WHERE id = 2")
    third = run_load(request)
    assert third.rows_written == 3
    rows = {r["id"]: r for r in assert_equals_full_load(request)}
    assert rows[1]["big"] == toasted and rows[2]["name"] == "twice"
    request = after_success(request, third)

    # Round 3: deletes, a key change, an insert-then-delete, and an update of a TOASTed row.
    source.execute(f"DELETE FROM {table} WHERE id IN (3, 7)")
    source.execute(f"UPDATE {table} SET id = 100 WHERE id = 4")
    insert(source, table, range(50, 51))
    source.execute(f"DELETE FROM {table} WHERE id = 50")
    source.execute(f"UPDATE {table} SET ratio = -1 WHERE id = 9")
    fourth = run_load(request)
    assert fourth.rows_deleted == 3  # 3, 7 and the old key 4 (50 never reached Delta)
    rows = {r["id"]: r for r in assert_equals_full_load(request)}
    assert 4 not in rows and 100 in rows and rows[9]["big"] == big_value(source, table, 9)
    assert {c.name for c in fourth.checks} >= {"cdc_slot_lag"}
    request = after_success(request, fourth)

    nothing = run_load(request)
    assert nothing.rows_read == 0 and not nothing.committed
    assert nothing.delta_version == fourth.delta_version


def test_soft_deletes_and_truncate(source: PostgresSource, lake_root: Path) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 4))
    request = cdc_request(source, table, lake_root, delete_mode="soft")
    request = after_success(request, run_load(request))
    source.execute(f"DELETE FROM {table} WHERE id = 2")
    request = after_success(request, run_load(request))
    rows = {r["id"]: r for r in destination_rows(request)}
    assert rows[2]["_dataloader_deleted_at"] is not None and rows[1]["_dataloader_deleted_at"] is None
    source.execute(f"TRUNCATE {table}")
    insert(source, table, range(7, 8))
    request = after_success(request, run_load(request))
    live = [r["id"] for r in destination_rows(request) if r["_dataloader_deleted_at"] is None]
    assert live == [7]


@pytest.mark.parametrize("point", ["snapshot", "read"])
def test_crash_in_the_first_snapshot(source: PostgresSource, lake_root: Path, point: str) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 4))
    request = cdc_request(source, table, lake_root)
    killed_worker(request, point)
    insert(source, table, range(4, 6))  # after the dead snapshot's slot: must not be lost or doubled
    request = after_success(request, run_load(request))
    insert(source, table, range(6, 7))
    run_load(request)
    assert_equals_full_load(request)


@pytest.mark.parametrize("point", ["read", "acknowledge", "commit"])
def test_crash_while_applying_changes(source: PostgresSource, lake_root: Path, point: str) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 4), big=True)
    request = cdc_request(source, table, lake_root)
    request = after_success(request, run_load(request))
    insert(source, table, range(4, 6))
    source.execute(f"UPDATE {table} SET amount = amount + 1 WHERE id = 1")
    source.execute(f"DELETE FROM {table} WHERE id = 2")
    killed_worker(request, point)
    # The control row never heard of the dead load: same request again.
    again = run_load(request)
    assert_equals_full_load(request)
    if point != "read":  # the dead load committed: its changes are skipped, not applied twice
        assert again.rows_read == 0 and not again.committed
    request = after_success(request, again)
    source.execute(f"UPDATE {table} SET name = 'after the crash' WHERE id = 3")
    run_load(request)
    assert_equals_full_load(request)


def test_lag_check_warns_when_the_slot_is_held_back(
    source: PostgresSource, lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warn_above = 200_000
    monkeypatch.setenv("DATALOADER_CDC_LAG_WARN_BYTES", str(warn_above))
    table = typed_table(source)
    insert(source, table, range(1, 2))
    request = cdc_request(source, table, lake_root)
    first = run_load(request)
    lag = next(c for c in first.checks if c.name == "cdc_slot_lag")
    assert lag.passed, lag.metadata
    request = after_success(request, first)
    for i in range(100, 300):  # ~700 kB of WAL in 200 transactions
        insert(source, table, range(i, i + 1), big=True)
    monkeypatch.setenv("DATALOADER_CDC_MAX_CHANGES", "5")  # the load takes only a few of them
    held = run_load(request)
    lag = next(c for c in held.checks if c.name == "cdc_slot_lag")
    assert not lag.passed and lag.severity == "WARN" and lag.metadata["lag_bytes"] > warn_above
    assert held.cdc_lag_bytes == lag.metadata["lag_bytes"]
    monkeypatch.delenv("DATALOADER_CDC_MAX_CHANGES")
    request = after_success(request, run_load(after_success(request, held)))
    # restart_lsn follows confirmed position at the next running-transactions record (the
    # bgwriter logs one every 15 s; a checkpoint does at once).
    source.execute("CHECKPOINT")
    drained = run_load(request)
    assert next(c for c in drained.checks if c.name == "cdc_slot_lag").passed
    assert_equals_full_load(request)


def test_missing_slot_asks_for_load_full(source: PostgresSource, lake_root: Path) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 3))
    request = cdc_request(source, table, lake_root)
    request = after_success(request, run_load(request))
    source.execute("SELECT pg_drop_replication_slot(%s)", (slot_name(request.control_key),))
    insert(source, table, range(3, 4))
    with pytest.raises(ConfigurationError, match="load_full") as refused:
        run_load(request)
    assert refused.value.kind == "configuration"
    reload = run_load(dataclasses.replace(request, load_full=True))
    assert reload.rows_read == 3
    assert_equals_full_load(request)


def test_table_without_replica_identity_is_refused(source: PostgresSource, lake_root: Path) -> None:
    source.execute("CREATE TABLE no_key (id int, v text)")
    request = cdc_request(source, "no_key", lake_root)
    with pytest.raises(ConfigurationError, match="REPLICA IDENTITY FULL"):
        run_load(request)
    with psycopg.connect(source.url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() is not None


def test_added_column_reaches_delta_and_a_type_change_fails(source: PostgresSource, lake_root: Path) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 3))
    request = cdc_request(source, table, lake_root)
    request = after_success(request, run_load(request))
    source.execute(f"UPDATE {table} SET name = 'before the new column' WHERE id = 1")
    source.execute(f"ALTER TABLE {table} ADD COLUMN note text")
    insert(source, table, range(3, 4))
    source.execute(f"UPDATE {table} SET note = 'noted' WHERE id IN (2, 3)")
    added = run_load(request)
    assert added.rows_written == 3
    rows = {r["id"]: r for r in assert_equals_full_load(request)}
    assert rows[2]["note"] == "noted" and rows[1]["note"] is None
    request = after_success(request, added)
    source.execute(f"ALTER TABLE {table} ALTER COLUMN amount TYPE text")
    with pytest.raises(SchemaConflictError, match="amount"):
        run_load(request)


def test_a_load_with_nothing_to_write_moves_the_position_without_a_commit(
    source: PostgresSource, lake_root: Path
) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 3))
    request = cdc_request(source, table, lake_root)
    request = after_success(request, run_load(request))
    source.execute("CREATE TABLE other_wal AS SELECT g FROM generate_series(1, 20000) g")  # not ours
    idle = run_load(request)
    assert not idle.committed and idle.watermark_after != request.incremental_value
    # Its result never reached the control row (the orchestrator died): the old position still works.
    again = run_load(request)
    assert not again.committed
    # Recorded this time: the next load starts there, and the slot follows (acknowledged then).
    request = after_success(request, again)
    source.execute(f"UPDATE {table} SET name = 'later' WHERE id = 1")
    later = run_load(request)
    assert later.rows_written == 1
    assert_equals_full_load(request)
    (confirmed,) = source.fetch(
        f"SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = '{slot_name(request.control_key)}'"
    )
    assert confirmed["c"] == later.watermark_after


def test_replica_identity_full_table_without_a_primary_key(source: PostgresSource, lake_root: Path) -> None:
    table = typed_table(source)
    source.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, REPLICA IDENTITY FULL")
    insert(source, table, range(1, 4), big=True)
    request = cdc_request(source, table, lake_root)
    request = after_success(request, run_load(request))
    source.execute(f"UPDATE {table} SET amount = 7 WHERE id = 1")  # big unchanged, in the old row
    source.execute(f"UPDATE {table} SET id = 30 WHERE id = 2")
    source.execute(f"DELETE FROM {table} WHERE id = 3")
    changed = run_load(request)
    assert (changed.rows_written, changed.rows_deleted) == (2, 2)
    rows = {r["id"]: r for r in assert_equals_full_load(request)}
    assert sorted(rows) == [1, 30] and rows[30]["big"] == big_value(source, table, 30)


def test_awkward_schema_table_and_column_names(source: PostgresSource, lake_root: Path) -> None:
    schema, table = 'Sales "EU"', "Orders; Mixed Case"
    q = source.quote
    source.execute(f"CREATE SCHEMA {q(schema)}")
    source.execute(f"CREATE TABLE {q(schema)}.{q(table)} (id int PRIMARY KEY, {q('Customer Name; x')} text)")
    source.execute(f"INSERT INTO {q(schema)}.{q(table)} VALUES (1, 'a'), (2, 'b')")
    request = cdc_request(
        source, table, lake_root, source_schema=schema, destination_table="bronze/test/awkward"
    )
    request = after_success(request, run_load(request))
    source.execute(f"UPDATE {q(schema)}.{q(table)} SET {q('Customer Name; x')} = 'changed' WHERE id = 1")
    source.execute(f"DELETE FROM {q(schema)}.{q(table)} WHERE id = 2")
    changed = run_load(request)
    assert (changed.rows_written, changed.rows_deleted) == (1, 1)
    assert destination_rows(request) == [{"id": 1, "Customer Name; x": "changed"}]


def test_the_documented_role_suffices_and_a_role_without_replication_is_told(
    source: PostgresSource, lake_root: Path
) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 3))
    source.execute("DROP ROLE IF EXISTS dl_cdc_reader; DROP ROLE IF EXISTS dl_cdc_plain")
    source.execute("CREATE ROLE dl_cdc_reader LOGIN REPLICATION; CREATE ROLE dl_cdc_plain LOGIN")
    source.execute(f"ALTER TABLE {table} OWNER TO dl_cdc_reader")
    source.execute(
        "GRANT CREATE ON DATABASE " + source.quote(source.url.rsplit("/", 1)[1]) + " TO dl_cdc_reader"
    )

    def as_role(role: str) -> LoadRequest:
        config = {**source.config().config, "user": role}
        request = cdc_request(source, table, lake_root, control_key=f"test.{table}.{role}")
        return dataclasses.replace(request, source=dataclasses.replace(request.source, config=config))

    request = as_role("dl_cdc_reader")
    request = after_success(request, run_load(request))
    source.execute(f"UPDATE {table} SET name = 'by the role' WHERE id = 2")
    assert run_load(request).rows_written == 1
    assert_equals_full_load(request)
    with pytest.raises(ConfigurationError, match="REPLICATION"):
        run_load(
            dataclasses.replace(as_role("dl_cdc_plain"), destination_table=request.destination_table + "_x")
        )


def test_a_month_partitioned_cdc_table_derives_its_partition_like_a_full_load(
    source: PostgresSource, lake_root: Path
) -> None:
    """partition_by month(event_date): inserted and updated rows get their month (a row whose date
    moves changes partition), and the table equals a full load of the same rows, partition included."""
    table = typed_table(source)
    insert(source, table, range(1, 6))
    request = cdc_request(source, table, lake_root, partition_by=("month(event_date)",))
    request = after_success(request, run_load(request))
    insert(source, table, range(6, 9))
    source.execute(f"UPDATE {table} SET event_date = DATE '2024-03-15' WHERE id = 1")
    source.execute(f"DELETE FROM {table} WHERE id = 2")
    result = run_load(request)
    assert result.error is None, result.error
    rows = {r["id"]: r for r in assert_equals_full_load(request)}
    assert rows[1]["_part_month_event_date"] == "2024-03" and rows[7]["_part_month_event_date"] == "2024-01"
    assert 2 not in rows
