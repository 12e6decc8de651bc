"""Proposals as INSERT statements into dataloader.table_control, named so that they collide with no
row already there (control key, destination folder), valid under the INSERT-time rules."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from pipes_workers.discovery.proposal import Proposal

COLUMNS = ("control_key", "db_config_key", "source_schema", "source_table", "destination_table",
           "load_strategy", "cron", "is_active", "primary_keys", "incremental_column", "chunk_column",
           "chunk_size")  # fmt: skip
MAX_SEGMENT_BYTES = 255
_UNSAFE = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class ControlRowInsert:
    """One proposal as a control row: its values by column, and the INSERT that adds it."""

    proposal: Proposal
    values: dict[str, Any]

    @property
    def control_key(self) -> str:
        """The new row's control_key."""
        return str(self.values["control_key"])

    def statement(self) -> str:
        """`INSERT INTO dataloader.table_control (...) VALUES (...);` with every value a quoted literal."""
        names = ", ".join(self.values)
        values = ", ".join(_literal(v) for v in self.values.values())
        return f"INSERT INTO dataloader.table_control ({names})\nVALUES ({values});"


def _literal(value: Any) -> str:
    if isinstance(value, tuple):
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + "]::text[]" if value else "NULL"
    return sql.Literal(value).as_string(None)


def folder_segment(name: str) -> str:
    """A destination path segment for a source name: lower case, runs of other characters as `_`,
    never starting with `_delta`, at most 255 bytes."""
    segment = _UNSAFE.sub("_", name.lower()).strip("_") or "t"
    if segment.startswith("_delta") or segment.startswith("delta_log"):
        segment = "t_" + segment
    return segment[:MAX_SEGMENT_BYTES]


def _unique(candidate: str, taken: set[str], *, fold: bool) -> str:
    """`candidate`, or `candidate_2`, `_3`… whichever is not in `taken` (compared lower-cased with `fold`)."""
    n, name = 1, candidate
    while (name.lower() if fold else name) in taken:
        n += 1
        name = f"{candidate}_{n}"
    taken.add(name.lower() if fold else name)
    return name


def control_rows(
    db_config_key: str,
    proposals: Iterable[Proposal],
    *,
    registered: Collection[tuple[str | None, str]],
    control_keys: Iterable[str],
    destinations: Iterable[str],
    cron: str,
    activate: bool,
    prefix: str = "bronze",
) -> list[ControlRowInsert]:
    """One insert per loadable proposal whose table is not `registered` (as (schema, table)) yet,
    named apart from the `control_keys` and `destinations` in use, in table order.

    control_key is `<db_config_key>.<schema>.<table>`; destination_table is
    `<prefix>/<db_config_key>/<schema>/<table>`, each segment made safe by `folder_segment`; a
    name already used gets a `_2`, `_3`… suffix.
    """
    keys, folders = set(control_keys), {d.lower() for d in destinations}
    result = []
    for p in proposals:
        t = p.table
        if p.load_strategy is None or (t.schema, t.name) in registered:
            continue
        path = [prefix, folder_segment(db_config_key), *([folder_segment(t.schema)] if t.schema else [])]
        values = {
            "control_key": _unique(
                ".".join(filter(None, (db_config_key, t.schema, t.name))), keys, fold=False
            ),
            "db_config_key": db_config_key,
            "source_schema": t.schema,
            "source_table": t.name,
            "destination_table": _unique("/".join([*path, folder_segment(t.name)]), folders, fold=True),
            "load_strategy": p.load_strategy,
            "cron": cron,
            "is_active": activate,
            "primary_keys": p.primary_keys,
            "incremental_column": p.incremental_column,
            "chunk_column": p.chunk_column,
            "chunk_size": p.chunk_size,
        }
        result.append(ControlRowInsert(p, values))
    return result


def statements(rows: Sequence[ControlRowInsert]) -> list[str]:
    """The INSERT statements of `rows`."""
    return [r.statement() for r in rows]
