"""A source connection ended while a load streams it (PostgreSQL pg_terminate_backend, MariaDB KILL,
ClickHouse KILL QUERY): the attempt is recorded `transient` with the source's code and a one-line
message, nothing half-written is visible in Delta, and the retry loads the table exactly once — for
full, incremental (a streamed MERGE), append_only and a chunked_backfill chunk."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from loadtest_support import SourceDB, assert_same_rows, insert_control_row, make_rows, open_source
from psycopg.types.json import Jsonb

from dataloader_contract.request import table_uri
from pipes_workers.delta import DeltaDestination
from pipes_workers.local_load import load_control_key

KILLER = Path(__file__).with_name("source_killer.py")
# Codes a source reports for a connection ended by an administrator: PostgreSQL's admin_shutdown;
# MariaDB's lost connection (2013) or connection killed (1927), whichever the stream saw first.
# ClickHouse's QUERY_WAS_CANCELLED (394).
KILLED_CODES = {"postgresql": {"57P01"}, "mariadb": {"2013", "1927"}, "clickhouse": {"394"}}
SLOW_FROM_ID = 300  # rows above this id stream slowly, so the stream is cut after its first rows
ROWS = 1000


@pytest.fixture(params=["postgresql", "mariadb", "clickhouse"])
def source(request: pytest.FixtureRequest) -> Iterator[SourceDB]:
    """The streaming readers: ADBC (PostgreSQL), connectorx (MariaDB), clickhouse-driver."""
    with open_source(request, request.param) as db:
        yield db


def make_view(source: SourceDB, view: str, table: str, *, slow: bool) -> None:
    """`view` over `table`: every column, rows with id > SLOW_FROM_ID slowed down when `slow` (through
    event_date, so filters on id and aggregates over other columns stay fast)."""
    q = source.quote
    others = ", ".join(q(c) for c in ("id", "Customer Name; x", "amount", "updated_at"))
    if source.db_type == "postgresql":
        source.execute(
            "CREATE OR REPLACE FUNCTION dl_slow(v bigint, pause float8) RETURNS bigint LANGUAGE plpgsql "
            "STABLE AS $$ BEGIN IF pause > 0 THEN PERFORM pg_sleep(pause); END IF; RETURN v; END $$"
        )
        pause = f"CASE WHEN id > {SLOW_FROM_ID} THEN {0.01 if slow else 0} ELSE 0 END"
        slowed = f"event_date + (dl_slow(id, {pause}) * 0)::int"
        source.execute(
            f"CREATE OR REPLACE VIEW {q(view)} AS SELECT {others}, {slowed} AS event_date FROM {q(table)}"
        )
    elif source.db_type == "clickhouse":
        # No CREATE OR REPLACE on Debian's 18.16 server, which also evaluates the whole view before
        # a chunk's filter: every row is slowed (see the chunked_backfill skip).
        pause = "sleepEachRow(0.0015)" if slow else "0"
        source.execute(f"DROP TABLE IF EXISTS {q(view)}")
        source.execute(
            f"CREATE VIEW {q(view)} AS SELECT {others}, addDays(event_date, {pause}) AS event_date FROM {q(table)}"
        )
    else:
        pause = f"IF(id > {SLOW_FROM_ID}, SLEEP(0.01), 0)" if slow else "0"
        source.execute(
            f"CREATE OR REPLACE VIEW {q(view)} AS SELECT {others}, event_date + INTERVAL {pause} DAY AS event_date "
            f"FROM {q(table)}"
        )


def add_row(conn: psycopg.Connection, source: Any, view: str, strategy: str, **fields: object) -> str:
    config = source.config()
    conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES (%s, %s, %s, 'literal') ON CONFLICT DO NOTHING",
        (config.db_config_key, config.db_type, Jsonb(config.config)),
    )
    return insert_control_row(
        conn, f"test.{view}", config.db_config_key, view, destination_table=f"bronze/test/{view}",
        load_strategy=strategy, **fields,
    )  # fmt: skip


def control(conn: psycopg.Connection, key: str) -> dict:
    cur = conn.execute(
        "SELECT last_status, last_error_kind, last_error_code, last_status_message, load_strategy "
        "FROM dataloader.table_control WHERE control_key = %s",
        (key,),
    )
    names = [d.name for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def data_files(root: Path) -> set[str]:
    """Every file under the table's directory outside `_delta_log`."""
    if not root.exists():
        return set()
    return {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "_delta_log" not in p.parts
    }


def killed_load(
    control_db_url: str, key: str, lake_root: Path, source: SourceDB, marker: str, min_ms: int
) -> None:
    """Load `key` while the killer ends the source connection of the query reading `marker`."""
    killer = subprocess.Popen(
        [sys.executable, str(KILLER), source.db_type, source.url, marker, str(min_ms)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        result = load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)
    finally:
        out, _ = killer.communicate(timeout=70)
    assert killer.returncode == 0, f"the killer found no query reading {marker}: {out}"
    assert result.error is not None, "the load finished before the connection was ended"


@pytest.mark.parametrize("strategy", ["full", "incremental", "append_only", "chunked_backfill"])
def test_a_connection_ended_mid_read_is_transient_and_the_retry_loads_once(
    control_conn: psycopg.Connection,
    control_db_url: str,
    source: SourceDB,
    lake_root: Path,
    strategy: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if source.db_type == "clickhouse" and strategy == "chunked_backfill":
        pytest.skip(
            "ClickHouse 18.16 slows every chunk of the view alike: no first chunk commits before the cut"
        )
    monkeypatch.setenv("DATALOADER_SMALL_READ_MB", "0")  # an incremental read streams into the MERGE
    monkeypatch.setenv("DATALOADER_DELTA_TARGET_FILE_MB", "1")  # files land on disk during the write
    table = source.events_table()
    view = f"v_{table}"
    wide = make_rows(range(1, ROWS + 1))
    source.insert(table, [(i, "x" * 2000 + str(i), *rest) for i, _name, *rest in wide])
    fields: dict[str, object] = {}
    if strategy == "chunked_backfill":
        fields = {"chunk_column": "id", "chunk_size": SLOW_FROM_ID}
    key = add_row(control_conn, source, view, strategy, **fields)
    destination = lake_root / "bronze" / "test" / view
    if strategy != "chunked_backfill":
        make_view(source, view, table, slow=False)
        assert load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None).error is None
        later = datetime(2025, 6, 1, tzinfo=UTC)
        if strategy == "append_only":
            source.insert(table, make_rows(range(ROWS + 1, ROWS + 501), base=later))
        else:
            source.execute(
                f"UPDATE {source.quote(table)} SET amount = amount + 1, updated_at = %s", (source.ts(later),)
            )
    make_view(source, view, table, slow=True)
    uri = table_uri(str(lake_root), f"bronze/test/{view}")
    version_before = DeltaDestination(uri).state(key).version
    files_before = data_files(destination)

    # A backfill's first chunk (ids 1..300) is fast and commits; its second is cut.
    killed_load(control_db_url, key, lake_root, source, view, 700)

    row = control(control_conn, key)
    assert row["last_status"] == "Failed"
    assert row["last_error_kind"] == "transient", row
    assert row["last_error_code"] in KILLED_CODES[source.db_type], row
    message = row["last_status_message"]
    assert "\n" not in message and "Traceback" not in message and "DeltaTable" not in message, message
    assert message.startswith("reading "), message
    state = DeltaDestination(uri).state(key)
    if strategy == "chunked_backfill":
        assert state.version == 0 and state.last_chunk["index"] == 0  # chunk 1 committed, chunk 2 not
        committed = DeltaTable(uri).get_add_actions(flatten=True)
        assert data_files(destination) == set(
            pa.RecordBatchReader.from_stream(committed).read_all()["path"].to_pylist()
        )
    else:
        assert state.version == version_before  # the previous version is what readers see
        assert data_files(destination) == files_before  # the cut write's files were removed

    make_view(source, view, table, slow=False)
    retry = load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)
    assert retry.error is None, retry.error
    assert control(control_conn, key)["last_status"] == "Succeeded"
    request = source.request(view, "incremental", lake_root, destination_table=f"bronze/test/{view}")
    assert_same_rows(source, view, request)
