"""Compare a loaded Delta table with its source table: the whole-system tests' "0 lost, 0 twice"."""

from __future__ import annotations

import psycopg

from dataloader_defs.lake import open_table


def delta_vs_source(
    lake_root: str, destination: str, source_url: str, source_table: str, label: str
) -> str | None:
    """How the Delta table's rows (id, v) differ from the source table's; None when equal."""
    delta = open_table(lake_root, destination)
    if delta is None:
        return f"{label}: no Delta table"
    columns = delta.to_pyarrow_table(columns=["id", "v"])
    loaded = sorted(zip(columns.column("id").to_pylist(), columns.column("v").to_pylist(), strict=True))
    with psycopg.connect(source_url) as source:
        expected = sorted(source.execute(f"SELECT id, v FROM {source_table}").fetchall())
    if loaded == expected:
        return None
    ids = [i for i, _ in loaded]
    missing = len({i for i, _ in expected} - set(ids))
    return (
        f"{label}: Delta has {len(loaded)} rows ({len(ids) - len(set(ids))} duplicate keys, "
        f"{missing} keys missing), the source {len(expected)}"
    )
