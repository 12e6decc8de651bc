"""`dataloader validate [CONTROL_KEY]`: check control rows against their live sources, loading nothing.

For every active row (or the one named) it reports the INSERT/UPDATE rules the stored row breaks
(a row stored before migration 0003 was never checked against them), then opens the row's source
the way a worker would (its secrets resolved here, from this process's environment) and checks that
the table exists, that every column the row names exists (incremental, rolling and chunk columns,
each primary key, every name in include_columns / exclude_columns / hash_columns), that every
column type has a faithful mapping, and that the rolling/chunk/
incremental columns suit what the strategy does with them (the strategies' own functions decide).
One line per row; exit 1 when any row has a problem. Registered via the entry-point group
`dataloader.commands`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from control_db.dev_settings import missing
from control_db.queries import connect, get_control_row, get_source_config
from control_db.queries.reads import active_rows, stored_rule_problems
from dataloader_contract.errors import ConfigurationError, LoadError
from dataloader_contract.request import COLUMN_LISTS, SourceConfig
from pipes_workers.lake.partitioning import Partitioning
from pipes_workers.secrets import resolve_source
from pipes_workers.sources import SourceColumn, SourceReader, open_reader
from pipes_workers.sources.base import arrow_schema
from pipes_workers.sources.column_names import case_duplicate_problem
from pipes_workers.sources.failures import scrub
from pipes_workers.sources.query import qualified_name
from pipes_workers.strategies.chunked_backfill import chunk_step
from pipes_workers.strategies.rolling import window_start
from pipes_workers.watermark import parse_lookback, parse_watermark

CONTROL_DB_ENV = "DATALOADER_CONTROL_DB_URL"


@dataclass(frozen=True)
class RowCheck:
    """The outcome for one control row: no problems means it can be loaded as it stands."""

    control_key: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the row has no problem."""
        return not self.problems

    def line(self) -> str:
        """`<control_key>: OK` or `<control_key>: <problem>; <problem>`."""
        return f"{self.control_key}: {'OK' if self.ok else '; '.join(self.problems)}"


def _type_checks(row: Any) -> list[tuple[str, str | None, Callable[[SourceColumn], object]]]:
    """(role, column name, check) for the columns whose type the strategy depends on."""
    return [
        (
            "incremental_column",
            row.incremental_column,
            lambda c: (
                parse_lookback(row.incremental_lookback, c.arrow_type, column=c.name),
                parse_watermark(row.incremental_value, c.arrow_type, column=c.name),
            ),
        ),
        (
            "rolling_column",
            row.rolling_column,
            lambda c: window_start(
                datetime.now(UTC), row.rolling_window_days or 1, c.arrow_type, column=c.name
            ),
        ),
        ("chunk_column", row.chunk_column, lambda c: chunk_step(row.chunk_size or 1, c.arrow_type)),
    ]


def check_row(reader: SourceReader, row: Any) -> tuple[str, ...]:
    """The problems of one control row (control_db ControlRow, duck-typed) against its open source."""
    table = qualified_name(reader.quote_identifier, row.source_schema, row.source_table)
    try:
        columns = {c.name: c for c in reader.columns(row.source_schema, row.source_table)}
    except Exception as exc:  # a reader error for this table is this row's problem, not a traceback
        return (_describe(exc, ()),)
    named = [
        ("incremental_column", row.incremental_column),
        ("rolling_column", row.rolling_column),
        ("chunk_column", row.chunk_column),
        *(("primary_keys", key) for key in row.primary_keys or ()),
        *((setting, name) for setting in COLUMN_LISTS for name in getattr(row, setting, None) or ()),
    ]
    problems = [
        f"source table {table}: {role} {name!r} is not a column"
        for role, name in named
        if name and name not in columns
    ]
    duplicates = case_duplicate_problem(table, columns)
    if duplicates is not None:
        problems.append(duplicates)
    problems += [f"source table {table}: {p}" for p in _partition_problems(row, columns, table)]
    for role, name, check in _type_checks(row):
        column = columns.get(name) if name else None
        if column is None:
            continue
        try:
            check(column)
        except LoadError as exc:
            said = str(exc)
            subject = (
                "" if said.startswith(f"{role} {name!r}") else f"{role} {name!r} ({column.source_type}): "
            )
            problems.append(f"source table {table}: {subject}{said}")
    return tuple(problems)


def _partition_problems(row: Any, columns: dict[str, SourceColumn], table: str) -> list[str]:
    """What keeps the row's partition_by from applying to the source's columns."""
    try:
        partitioning = Partitioning.parse(getattr(row, "partition_by", None) or (), table=table)
    except ConfigurationError as exc:
        return [str(exc).removeprefix(f"{table}: ")]
    return partitioning.problems(arrow_schema(list(columns.values())))


def _describe(exc: BaseException, secrets: Iterable[str]) -> str:
    """A problem line for an exception: LoadError messages are secret-free by contract; others are
    scrubbed of URLs, `password=` pairs and the source's secret values."""
    if isinstance(exc, LoadError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {scrub(str(exc), secrets)}"


def _secret_values(source: SourceConfig) -> tuple[str, ...]:
    try:
        return resolve_source(source).secret_values()
    except LoadError:
        return ()


def check_source_rows(source: Any, rows: list[Any]) -> list[RowCheck]:
    """Open `source` (a control_db SourceDbConfig, or None when missing) once and check its rows."""
    if source is None:
        return [
            RowCheck(r.control_key, (f"db_config_key {r.db_config_key!r} has no table_control_dbconfig row",))
            for r in rows
        ]
    config = SourceConfig.from_dbconfig_row(source)
    try:
        reader = open_reader(config)
    except Exception as exc:  # a missing driver or secret, a refused connection: every row's problem
        problem = _describe(exc, _secret_values(config))
        return [RowCheck(r.control_key, (problem,)) for r in rows]
    with reader:
        return [RowCheck(r.control_key, check_row(reader, r)) for r in rows]


def validate_control_rows(conn_url: str, control_key: str | None = None) -> list[RowCheck]:
    """Check every active row (or only `control_key`, active or not) against its source.

    Raises ConfigurationError when `control_key` names no row. The control-database connection is
    closed before any source is opened.
    """
    with connect(conn_url, "cli") as conn:
        if control_key is None:
            rows = active_rows(conn)
        else:
            row = get_control_row(conn, control_key)
            if row is None:
                raise ConfigurationError(f"no control row with control_key {control_key!r}")
            rows = [row]
        sources = {key: get_source_config(conn, key) for key in {r.db_config_key for r in rows}}
        stored = stored_rule_problems(conn, [r.control_key for r in rows])
    checks: list[RowCheck] = []
    for key, group in groupby(sorted(rows, key=lambda r: r.db_config_key), key=lambda r: r.db_config_key):
        checks += check_source_rows(sources[key], list(group))
    return sorted(
        (RowCheck(c.control_key, (*stored.get(c.control_key, ()), *c.problems)) for c in checks),
        key=lambda c: c.control_key,
    )


def main(args: argparse.Namespace) -> int:
    """Run `dataloader validate [CONTROL_KEY]`: 0 when every row is OK, 1 otherwise."""
    unset = missing(CONTROL_DB_ENV)
    if unset:
        print(f"dataloader validate: {unset}", file=sys.stderr)
        return 1
    conn_url = os.environ[CONTROL_DB_ENV]
    try:
        checks = validate_control_rows(conn_url, args.control_key)
    except ConfigurationError as exc:
        print(f"dataloader validate: {exc}", file=sys.stderr)
        return 1
    for check in checks:
        print(check.line())
    bad = sum(not c.ok for c in checks)
    print(f"({len(checks)} row{'s' if len(checks) != 1 else ''} checked, {bad} with problems)")
    return 1 if bad else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `validate` subcommand to the `dataloader` CLI."""
    parser = subparsers.add_parser(
        "validate", help="check active rows (or one) against their live sources without loading"
    )
    parser.add_argument("control_key", metavar="CONTROL_KEY", nargs="?", default=None)
    parser.set_defaults(func=main)
