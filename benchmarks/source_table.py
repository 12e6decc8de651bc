"""The benchmark's source: an N-row mixed-type `bench_events` table in PostgreSQL, built server-side.

The table has exactly the eight columns of PERF_NOTES, so every variant — the ceiling included —
reads the same rows and columns. Each row's original values are a function of its id, which is how
the 1% change made for the incremental run is undone without helper columns.
"""

from __future__ import annotations

import psycopg

TABLE = "bench_events"
COLUMNS_SQL = "id, updated_at, customer_id, amount, status, payload, is_active, event_date"
_COLUMNS = COLUMNS_SQL.split(", ")
_ORIGINAL_UPDATED_AT = "timestamptz '2024-01-01 00:00:00+00' + id * interval '1 second'"
_ORIGINAL_AMOUNT = "round(((id * 104729) % 1000000) / 100.0, 2)::numeric(12,2)"
# A table loaded incrementally has an index on its watermark column; without it every tool's
# incremental query is a full scan of the source.
_WATERMARK_INDEX = f"CREATE INDEX IF NOT EXISTS {TABLE}_updated_at ON {TABLE} (updated_at)"


def ensure_table(url: str, rows: int) -> None:
    """Create `bench_events` with `rows` rows unless a table of that size and layout exists (cached);
    a cached table gets its original values back."""
    with psycopg.connect(url, autocommit=True) as conn:
        columns = [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                (TABLE,),
            ).fetchall()
        ]
        if columns == _COLUMNS and conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == rows:
            conn.execute(_WATERMARK_INDEX)
            restore_table(url)
            return
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"""
            CREATE TABLE {TABLE} (
                id bigint PRIMARY KEY,
                updated_at timestamptz NOT NULL,
                customer_id int NOT NULL,
                amount numeric(12,2),
                status text,
                payload text,
                is_active boolean,
                event_date date
            )"""
        )
        conn.execute(
            f"""
            INSERT INTO {TABLE}
            SELECT id,
                   ts,
                   (id * 7919) % 100000,
                   {_ORIGINAL_AMOUNT},
                   (ARRAY['new','paid','shipped','returned','cancelled'])[1 + id % 5],
                   md5(id::text) || left(md5((id * 31)::text), 28),
                   id % 3 <> 0,
                   (ts AT TIME ZONE 'UTC')::date
            FROM (
                SELECT id, {_ORIGINAL_UPDATED_AT} AS ts
                FROM generate_series(1::bigint, {rows}::bigint) AS id
            ) s"""
        )
        conn.execute(_WATERMARK_INDEX)
        conn.execute(f"VACUUM ANALYZE {TABLE}")


def restore_table(url: str) -> None:
    """Give every changed row its original values back, in id order on disk as when it was built.

    An UPDATE moves rows to wherever there is free space; without the CLUSTER each run would read a
    differently ordered table, and write differently clustered Delta files, than the run before.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        restored = conn.execute(
            f"UPDATE {TABLE} SET updated_at = {_ORIGINAL_UPDATED_AT}, amount = {_ORIGINAL_AMOUNT} "
            f"WHERE updated_at <> {_ORIGINAL_UPDATED_AT} OR amount IS DISTINCT FROM {_ORIGINAL_AMOUNT}"
        ).rowcount
        if restored:
            conn.execute(f"CLUSTER {TABLE} USING {TABLE}_pkey")
            conn.execute(f"ANALYZE {TABLE}")


def change_recent_rows(url: str, fraction: float) -> int:
    """Update the most recent `fraction` of rows (as real tables change), return how many changed.

    Each changed row is stamped past the table's current MAX(updated_at), as `now()` would stamp it.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        (max_id,) = conn.execute(f"SELECT max(id) FROM {TABLE}").fetchone()
        cutoff = int(max_id * (1 - fraction))
        cur = conn.execute(
            f"UPDATE {TABLE} SET updated_at = updated_at + %s * interval '1 second', amount = amount + 1 "
            "WHERE id > %s",
            (max_id, cutoff),
        )
        return cur.rowcount


def max_updated_at(url: str) -> str:
    """The current MAX(updated_at) as ISO text: the watermark an earlier full load would have stored."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(f"SELECT max(updated_at) FROM {TABLE}").fetchone()[0].isoformat()
