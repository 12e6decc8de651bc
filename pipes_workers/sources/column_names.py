"""Source columns whose names differ only in case (`Val`, `val`) cannot be loaded side by side.

Delta column names are case-insensitive (delta-rs refuses such a schema as `Duplicate field name
(case-insensitive)`, and Spark and Databricks read names so), while PostgreSQL, SQL Server with a
case-sensitive collation, ClickHouse and Snowflake's quoted names allow both. The load and
`dataloader validate` refuse them as a configuration error naming the table and the columns,
before anything is read or written. Renaming one automatically would hand readers a column the
source does not have, under a name that changes if a third column appears; a view in the source
that aliases one of them says which is which.
"""

from __future__ import annotations

from collections.abc import Iterable

CASE_DUPLICATE_CODE = "case_duplicate_columns"


def case_duplicates(names: Iterable[str]) -> list[tuple[str, ...]]:
    """Groups of names equal but for case, in source order (Delta compares lower-cased names)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.lower(), []).append(name)
    return [tuple(group) for group in groups.values() if len(group) > 1]


def case_duplicate_problem(table: str, names: Iterable[str]) -> str | None:
    """The refusal for `table`'s columns that differ only in case, or None when there are none."""
    groups = case_duplicates(names)
    if not groups:
        return None
    listed = "; ".join(", ".join(repr(name) for name in group) for group in groups)
    return (
        f"source table {table}: columns {listed} differ only in case, and Delta column names are "
        "case-insensitive: rename one in the source, or load a view that aliases it"
    )
