"""hash_columns on real PostgreSQL and MariaDB: values land as HMAC-SHA-256 hex (equal across tables,
NULL kept), a hashed primary key merges and reconciles deletes, every strategy hashes, the key comes
from DATALOADER_HASH_KEY or the secrets directory and never shows anywhere, and switching hashing on
a loaded table needs load_full."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from columns_support import SECRET, customer, customers_table, insert_customers
from dagster import AssetCheckSpec, MaterializeResult, PipesSubprocessClient, asset, materialize
from dagster._serdes import serialize_value
from loadtest_support import SourceDB, after_success, destination_rows, insert_control_row
from psycopg.types.json import Jsonb

from dataloader_contract.request import LoadRequest, table_uri
from dataloader_contract.result import CHECK_SPECS, PK_UNIQUE, ROW_COUNT, SCHEMA_DRIFT, LoadResult
from pipes_workers.column_hashing import HASHED_METADATA, KEY_ID_FIELD, hmac_hex
from pipes_workers.hash_key import HASH_KEY_ENV, HASH_KEY_FILE
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import attempt_load, run_load
from pipes_workers.local_load import load_control_key
from pipes_workers.metadata import materialization_metadata
from pipes_workers.secrets import SECRETS_DIR_ENV

KEY = "tests-only hash key 0123456789"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def hashed(value: Any, key: str = KEY) -> str:
    """What the worker must store for `value`: HMAC-SHA-256 hex of its text form."""
    return hmac.new(key.encode(), str(value).encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def hash_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(HASH_KEY_ENV, KEY)
    monkeypatch.delenv(SECRETS_DIR_ENV, raising=False)
    return KEY


def test_hmac_hex_matches_the_standard_hmac_for_every_value_kind() -> None:
    key = b"k" * 70  # longer than SHA-256's block: hashed first, as RFC 2104 says
    cases: list[tuple[pa.Array, list[Any]]] = [
        (pa.array(["a@b.c", None, "a@b.c", "ü"]), ["a@b.c", None, "a@b.c", "ü"]),
        (pa.array([42, None], pa.int32()), ["42", None]),
        (pa.array([Decimal("12.50")], pa.decimal128(10, 2)), ["12.50"]),
        (pa.array([b"\x00\xff"], pa.large_binary()), [b"\x00\xff"]),
    ]
    for array, texts in cases:
        expected = [
            None
            if t is None
            else hmac.new(key, t if isinstance(t, bytes) else t.encode(), "sha256").hexdigest()
            for t in texts
        ]
        assert hmac_hex(array, key).to_pylist() == expected


def test_a_hashed_email_is_the_same_64_hex_in_two_tables(
    source: SourceDB, lake_root: Path, hash_key: str
) -> None:
    tables = [customers_table(source), customers_table(source)]
    insert_customers(source, tables[0], [customer(1), customer(2), customer(3, email="shared@example.com")])
    insert_customers(source, tables[1], [customer(7, email="shared@example.com"), customer(8)])
    source.execute(f"UPDATE {source.quote(tables[1])} SET email = NULL WHERE id = 8")
    results, stored = [], []
    for table in tables:
        request = source.request(table, "full", lake_root, hash_columns=("email",))
        results.append(run_load(request))
        stored.append({r["id"]: r["email"] for r in destination_rows(request)})
        schema = DeltaSession(table_uri(lake_root, request.destination_table)).stored_schema()
        assert schema is not None
        field = schema.field("email")
        assert field.type == pa.string()
        expected = {**HASHED_METADATA, KEY_ID_FIELD: hashed("dataloader hash key id")[:16]}
        assert field.metadata == {k.encode(): v.encode() for k, v in expected.items()}
    assert stored[0][3] == stored[1][7] == hashed("shared@example.com")
    assert stored[0][1] == hashed("user1@example.com")
    assert stored[1][8] is None  # NULL stays NULL
    assert all(HEX64.match(v) for table in stored for v in table.values() if v is not None)
    assert materialization_metadata(results[0], source_table=tables[0])["hashed_columns"] == {
        "raw_value": "email (HMAC-SHA-256, hex)",
        "type": "text",
    }


def test_a_hashed_primary_key_merges_and_reconciles_deletes(
    source: SourceDB, lake_root: Path, hash_key: str
) -> None:
    table = customers_table(source)
    insert_customers(source, table, [customer(i) for i in range(1, 6)])
    request = source.request(
        table, "incremental", lake_root, hash_columns=("id", "email"), delete_mode="hard"
    )
    first = run_load(request)
    assert _stored(request) == {hashed(i): hashed(f"user{i}@example.com") for i in range(1, 6)}

    later = source.ts(customer(3, shift_s=3600)[3])
    source.execute(
        f"UPDATE {source.quote(table)} SET email = 'new3@example.com', updated_at = %s WHERE id = 3", (later,)
    )
    source.execute(f"DELETE FROM {source.quote(table)} WHERE id = 2")
    insert_customers(source, table, [customer(6, shift_s=3600)])
    request = after_success(request, first)
    second = run_load(request)
    assert second.rows_read == 2 and second.rows_deleted == 1
    expected = {hashed(i): hashed(f"user{i}@example.com") for i in (1, 4, 5, 6)}
    expected[hashed(3)] = hashed("new3@example.com")
    assert _stored(request) == expected
    _assert_checks_pass(second, PK_UNIQUE, ROW_COUNT)

    # Re-reading every row (a lookback over all of them) matches each hashed key: no duplicate.
    again = run_load(dataclasses.replace(after_success(request, second), incremental_lookback="3650 days"))
    assert again.rows_read == 5
    assert _stored(request) == expected
    _assert_checks_pass(again, PK_UNIQUE, ROW_COUNT)


STRATEGIES: dict[str, dict[str, Any]] = {
    "full": {},
    "incremental": {},
    "append_only": {"primary_keys": ()},
    "check_and_load": {},
    "rolling": {"rolling_column": "day", "rolling_window_days": 30},
    "chunked_backfill": {"chunk_column": "id", "chunk_size": 2},
}


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_lands_hashed_and_selected_columns(
    source: SourceDB, lake_root: Path, hash_key: str, strategy: str
) -> None:
    table = customers_table(source)
    recent = datetime.now(UTC) - timedelta(days=2)
    rows = [customer(i) for i in range(1, 6)]
    rows = [
        (*row[:3], recent + timedelta(seconds=row[0]), (recent + timedelta(seconds=row[0])).date())
        for row in rows
    ]
    insert_customers(source, table, rows)
    settings = {"hash_columns": ("email",), "exclude_columns": (SECRET,), **STRATEGIES[strategy]}
    request = source.request(table, strategy, lake_root, **settings)
    result = run_load(request)
    assert result.error is None and result.rows_written == 5
    stored = destination_rows(request)
    assert [r["email"] for r in stored] == [hashed(f"user{i}@example.com") for i in range(1, 6)]
    assert all(SECRET not in r for r in stored)
    _assert_checks_pass(result, SCHEMA_DRIFT)

    # A second load onto the hashed table (merge, append, window or hand-over) keeps hashing.
    insert_customers(
        source, table, [(6, "user6@example.com", "hunter6", recent + timedelta(hours=1), recent.date())]
    )
    again = run_load(after_success(request, result))
    assert again.error is None and again.rows_written >= 1
    stored = destination_rows(request)
    assert [r["email"] for r in stored] == [hashed(f"user{i}@example.com") for i in range(1, 7)]
    _assert_checks_pass(again, SCHEMA_DRIFT)


def test_a_missing_or_short_key_is_a_configuration_error(
    source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(HASH_KEY_ENV, raising=False)
    monkeypatch.setenv(SECRETS_DIR_ENV, str(tmp_path / "secrets"))
    table = customers_table(source)
    insert_customers(source, table, [customer(1)])
    request = source.request(table, "full", lake_root, hash_columns=("email", "id"))
    missing = attempt_load(request)
    assert missing.error is not None and missing.error.kind == "configuration"
    assert missing.error.message == (
        f"test.{table}: hash_columns (email, id) need the hashing key, which is not set: "
        "set DATALOADER_HASH_KEY or the file 'hash_key' under DATALOADER_SECRETS_DIR"
    )
    monkeypatch.setenv(HASH_KEY_ENV, "too short")
    short = attempt_load(request)
    assert short.error is not None and short.error.kind == "configuration"
    assert short.error.message == (
        f"test.{table}: hash_columns (email, id) need the hashing key: "
        "the key in DATALOADER_HASH_KEY is shorter than 16 bytes"
    )
    assert "too short" not in short.error.message
    assert destination_rows(request) == []

    # The same key from the secrets directory gives the same hashes.
    monkeypatch.delenv(HASH_KEY_ENV)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / HASH_KEY_FILE).write_text(KEY + "\n")
    assert run_load(request).error is None
    assert destination_rows(request)[0]["email"] == hashed("user1@example.com")


def test_the_key_never_shows_in_logs_results_metadata_or_the_lake(
    source: SourceDB,
    lake_root: Path,
    hash_key: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    table = customers_table(source)
    insert_customers(source, table, [customer(i) for i in range(1, 4)])
    request = source.request(table, "incremental", lake_root, hash_columns=("email",))
    lines: list[str] = []
    first = run_load(request, log=lines.append)
    insert_customers(source, table, [customer(4, shift_s=60)])
    second = run_load(after_success(request, first), log=lines.append)
    # A failing load after the key was resolved: its message must not carry the key either.
    broken = attempt_load(dataclasses.replace(request, hash_columns=("email", "nope")), log=lines.append)
    assert broken.error is not None
    captured = capfd.readouterr()
    texts = [
        *lines,
        captured.out,
        captured.err,
        caplog.text,
        json.dumps(request.to_dict()),
        repr(request),
        *(json.dumps(r.to_json()) for r in (first, second, broken)),
        *(json.dumps(materialization_metadata(r, source_table=table)) for r in (first, second)),
    ]
    assert lines and all(KEY not in text for text in texts)
    lake_files = [p for p in lake_root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in lake_files)
    assert all(KEY.encode() not in p.read_bytes() for p in lake_files)


def test_hashing_a_column_of_a_loaded_table_needs_load_full(
    source: SourceDB, lake_root: Path, hash_key: str
) -> None:
    table = customers_table(source)
    insert_customers(source, table, [customer(1)])
    request = source.request(table, "incremental", lake_root)
    first = run_load(request)
    hashing = dataclasses.replace(after_success(request, first), hash_columns=("email",))
    refused = attempt_load(hashing)
    assert refused.error is not None and refused.error.kind == "permanent"
    assert refused.error.message == (
        f"{table_uri(lake_root, request.destination_table)}: column 'email' is stored in clear text in the "
        "Delta table but hash_columns now hashes it; reload the table with load_full (then vacuum, so no "
        "older version keeps the old values)"
    )
    reloaded = run_load(dataclasses.replace(hashing, load_full=True))
    assert destination_rows(request)[0]["email"] == hashed("user1@example.com")
    insert_customers(source, table, [customer(2, shift_s=60)])
    merged = run_load(after_success(dataclasses.replace(hashing, load_full=False), reloaded))
    assert merged.error is None
    assert [r["email"] for r in destination_rows(request)] == [hashed(f"user{i}@example.com") for i in (1, 2)]
    schema = DeltaSession(table_uri(lake_root, request.destination_table)).stored_schema()
    assert schema is not None and schema.field("email").metadata[b"dataloader.hashed"] == b"hmac-sha256"

    unhashing = attempt_load(after_success(dataclasses.replace(hashing, hash_columns=()), merged))
    assert (
        unhashing.error is not None
        and "stored hashed in the Delta table but hash_columns now no longer" in (unhashing.error.message)
    )


def test_a_new_hashing_key_needs_load_full(
    source: SourceDB, lake_root: Path, hash_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hashed key under a new key would match none of its rows: every update would duplicate a row."""
    table = customers_table(source)
    insert_customers(source, table, [customer(1)])
    request = source.request(table, "incremental", lake_root, hash_columns=("id", "email"))
    first = run_load(request)
    new_key = "a rotated key, also long enough"
    monkeypatch.setenv(HASH_KEY_ENV, new_key)
    insert_customers(source, table, [customer(2, shift_s=60)])
    refused = attempt_load(after_success(request, first))
    assert refused.error is not None and refused.error.kind == "permanent"
    old_id, new_id = hashed("dataloader hash key id")[:16], hashed("dataloader hash key id", new_key)[:16]
    assert refused.error.message == (
        f"{table_uri(lake_root, request.destination_table)}: column 'id' was hashed with another key "
        f"(key id {old_id}; this one is {new_id}): the hashing key changed; reload the table with "
        "load_full (then vacuum, so no older version keeps the old values)"
    )
    assert new_key not in refused.error.message and KEY not in refused.error.message
    reloaded = run_load(dataclasses.replace(after_success(request, first), load_full=True))
    assert reloaded.error is None
    assert sorted(_stored(request)) == sorted(hashed(i, new_key) for i in (1, 2))


def _stored(request: LoadRequest) -> dict[Any, Any]:
    return {row["id"]: row["email"] for row in destination_rows(request)}


def _assert_checks_pass(result: LoadResult, *names: str) -> None:
    outcomes = {check.name: check for check in result.checks}
    for name in names:
        assert outcomes[name].passed, (name, outcomes[name].metadata)


def test_a_pipes_run_reports_hashing_and_selection_and_never_the_key(
    pg_source: SourceDB, lake_root: Path, hash_key: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """The real Pipes worker, run by Dagster: the materialisation says what was hashed and left out;
    no event of the run and no output of the worker holds the key."""
    table = customers_table(pg_source)
    insert_customers(pg_source, table, [customer(i) for i in range(1, 4)])
    settings = {"hash_columns": ("email",), "exclude_columns": (SECRET,)}
    request = pg_source.request(table, "incremental", lake_root, **settings)

    @asset(check_specs=[AssetCheckSpec(spec.name, asset="loaded") for spec in CHECK_SPECS])
    def loaded(context, pipes: PipesSubprocessClient) -> MaterializeResult:  # noqa: ANN001
        invocation = pipes.run(
            command=[sys.executable, "-m", "pipes_workers.dataloader_pipe"],
            context=context,
            extras={"load_request": request.to_dict()},
        )
        return invocation.get_materialize_result(implicit_materialization=False)

    root = Path(__file__).resolve().parents[2]
    run = materialize([loaded], resources={"pipes": PipesSubprocessClient(cwd=str(root))})
    assert run.success
    (event,) = run.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["hashed_columns"].value == "email (HMAC-SHA-256, hex)"
    assert meta["columns_not_loaded"].value == SECRET
    assert [r["email"] for r in destination_rows(request)] == [
        hashed(f"user{i}@example.com") for i in (1, 2, 3)
    ]
    captured = capfd.readouterr()
    events = [serialize_value(e) for e in run.all_events]
    assert all(KEY not in text for text in (captured.out, captured.err, *events))


def test_a_control_row_with_selection_and_hashing_loads_through_the_lifecycle(
    source: SourceDB, control_conn: psycopg.Connection, control_db_url: str, lake_root: Path, hash_key: str
) -> None:
    """From the stored control row to Delta, on the path the asset takes (LoadRequest.from_control_row)."""
    table = customers_table(source)
    insert_customers(source, table, [customer(i) for i in range(1, 4)])
    config = source.config()
    control_conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES (%s, %s, %s, 'literal')",
        (config.db_config_key, config.db_type, Jsonb(config.config)),
    )
    key = insert_control_row(
        control_conn,
        f"test.{table}",
        config.db_config_key,
        table,
        hash_columns=["id", "email"],
        exclude_columns=[SECRET],
    )
    result = load_control_key(control_db_url, key, str(lake_root))
    assert result.error is None and result.rows_written == 3
    assert result.hashed_columns == ("id", "email") and result.columns_left_out == (SECRET,)
    uri = table_uri(lake_root, "bronze/test/" + key.replace(".", "_"))
    stored = DeltaSession(uri).read_arrow()
    assert stored.column_names == ["id", "email", "updated_at", "day"]
    assert sorted(stored.column("id").to_pylist()) == sorted(hashed(i) for i in (1, 2, 3))
    status = control_conn.execute(
        "SELECT last_status FROM dataloader.table_control WHERE control_key = %s", (key,)
    ).fetchone()
    assert status == ("Succeeded",)
