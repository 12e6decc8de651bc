"""Helpers for the `dataloader discover` tests: register a source, run the command, load every row
it applied through `dataloader load`'s path, and compare each Delta table with its source table."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg
import pyarrow as pa
from psycopg.types.json import Jsonb

from dataloader_contract.request import SourceConfig, table_uri
from pipes_workers.discovery.command import main
from pipes_workers.lake.session import DeltaSession
from pipes_workers.local_load import load_control_key


def add_source(conn: psycopg.Connection, config: SourceConfig) -> None:
    """The table_control_dbconfig row for `config` (literal scope)."""
    conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES (%s, %s, %s, 'literal')",
        (config.db_config_key, config.db_type, Jsonb(config.config)),
    )


def run_discover(
    control_db_url: str, key: str, *extra: str, settings: dict[str, int] | None = None
) -> tuple[int, list[str]]:
    """`dataloader discover KEY ...` in-process on `control_db_url`; (exit code, printed lines)."""
    options = {"full_below_rows": None, "backfill_above_bytes": None, "chunk_size": None, **(settings or {})}
    flags = {"--apply": "apply", "--activate": "activate"}
    args = argparse.Namespace(
        db_config_key=key, schema=None, tables=None, cron=None, apply=False, activate=False, **options
    )
    rest = list(extra)
    while rest:
        flag = rest.pop(0)
        if flag in flags:
            setattr(args, flags[flag], True)
        else:
            setattr(args, flag.lstrip("-"), rest.pop(0))
    lines: list[str] = []
    with mock.patch.dict(os.environ, {"DATALOADER_CONTROL_DB_URL": control_db_url}):
        return main(args, out=lines.append), lines


def control_rows(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every table_control row as a dict, by control_key."""
    cur = conn.execute("SELECT * FROM dataloader.table_control ORDER BY control_key")
    names = [d.name for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def load_all(control_db_url: str, keys: Iterable[str], lake_root: Path) -> dict[str, str]:
    """Load each row as `dataloader load` does; control_key -> the error or the failed asset checks,
    for the rows whose load failed or whose checks did not pass."""
    failures = {}
    for key in keys:
        result = load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)
        if result.error is not None:
            failures[key] = result.error.message
        elif result.failed_checks:
            failures[key] = f"failed checks {result.failed_checks}"
    return failures


def normalised(value: Any) -> Any:
    """Datetimes as aware UTC (naive ones are UTC already), so source and Delta values compare."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def as_text(value: Any) -> Any:
    """A source value in the text form the loader stores for a string column (time with microseconds,
    JSON as PostgreSQL/MariaDB print it, uuid/inet/enum/tsvector as their text)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, time):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):  # inet prints a host's /32
        return f"{value}/{value.max_prefixlen}"
    return str(value)


def row_set(rows: Iterable[dict[str, Any]]) -> list[tuple[tuple[str, Any], ...]]:
    """Rows as sorted tuples of (column, value), in a stable order (duplicates kept)."""
    return sorted((tuple(sorted((k, normalised(v)) for k, v in r.items())) for r in rows), key=repr)


def delta_rows(lake_root: Path, destination: str) -> list[dict[str, Any]]:
    """Every row of the Delta table at `destination`."""
    table = DeltaSession(table_uri(str(lake_root), destination)).read_arrow()
    return table.to_pylist()


def assert_delta_equals_source(
    rows: list[dict[str, Any]], lake_root: Path, source_rows: Callable[[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    """Each control row's Delta table holds exactly its source table's rows (`source_rows(row)`
    reads them with the driver's own values; those of string columns compare by `as_text`)."""
    for row in rows:
        uri = table_uri(str(lake_root), row["destination_table"])
        table = DeltaSession(uri).read_arrow()
        delta = table.to_pylist()
        text = {f.name for f in table.schema if pa.types.is_string(f.type)}
        source = [{k: as_text(v) if k in text else v for k, v in r.items()} for r in source_rows(row)]
        assert len(delta) == len(source), row["control_key"]
        assert row_set(delta) == row_set(source), (row["control_key"], delta[:1], source[:1])
