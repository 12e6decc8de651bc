"""Support for the column selection and hashing tests: a `customers` table on either source dialect,
and a login that the source itself forbids to read one column (column-level privileges), so a load
that reads that column fails on the server: proof, from the source, that a column never left it."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from loadtest_support import SourceDB

from dataloader_contract.request import SourceConfig

SECRET = "Pass word"  # the column kept out; an awkward name, so quoting is exercised too
COLUMNS = ("id", "email", SECRET, "updated_at", "day")
BASE = datetime(2024, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)


def customers_table(source: SourceDB) -> str:
    """Create an empty customers table: id, email, the secret column, updated_at, day."""
    name = f"cu_{uuid.uuid4().hex[:8]}"
    stamp = "timestamptz" if source.db_type == "postgresql" else "datetime(6) NULL"
    source.execute(
        f"CREATE TABLE {source.quote(name)} (id bigint PRIMARY KEY, email varchar(200), "
        f"{source.quote(SECRET)} varchar(200), updated_at {stamp}, day date)"
    )
    return name


def customer(i: int, *, email: str | None = None, shift_s: int = 0) -> tuple[Any, ...]:
    """Row `i`: (id, email, secret, updated_at, day)."""
    stamp = BASE + timedelta(seconds=i + shift_s, microseconds=i)
    return (i, email if email is not None else f"user{i}@example.com", f"hunter{i}", stamp, stamp.date())


def insert_customers(source: SourceDB, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert customer rows."""
    names = ", ".join(source.quote(c) for c in COLUMNS)
    for row in rows:
        values = (*row[:3], source.ts(row[3]) if row[3] is not None else None, row[4])
        source.execute(f"INSERT INTO {source.quote(table)} ({names}) VALUES (%s, %s, %s, %s, %s)", values)


@contextlib.contextmanager
def login_without(source: SourceDB, table: str, hidden: str) -> Iterator[SourceConfig]:
    """A source config whose login may SELECT every column of `table` but `hidden`; dropped afterwards.

    On MariaDB the login also gets REFERENCES on `hidden`: without any privilege on a column,
    information_schema hides it, and the load would then (rightly) say the table lacks it.
    """
    user = f"dl_cols_{uuid.uuid4().hex[:8]}"
    readable = ", ".join(source.quote(c) for c in COLUMNS if c != hidden)
    config = source.config()
    if source.db_type == "postgresql":
        source.execute(f'CREATE ROLE "{user}" LOGIN')
        source.execute(f'GRANT SELECT ({readable}) ON {source.quote(table)} TO "{user}"')
        drop = [f'DROP OWNED BY "{user}"', f'DROP ROLE "{user}"']
    else:
        database = config.config["database"]
        target = f"`{database}`.{source.quote(table)}"
        source.execute(f"CREATE USER '{user}'@'%'")
        source.execute(
            f"GRANT SELECT ({readable}), REFERENCES ({source.quote(hidden)}) ON {target} TO '{user}'@'%'"
        )
        drop = [f"DROP USER '{user}'@'%'"]
    try:
        yield dataclasses.replace(config, config={**config.config, "user": user, "password": ""})
    finally:
        for statement in drop:
            source.execute(statement)
