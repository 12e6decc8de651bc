"""The benchmark's source: an N-row mixed-type `bench_events` table in PostgreSQL, built server-side."""

from __future__ import annotations

import psycopg

TABLE = "bench_events"
COLUMNS_SQL = "id, updated_at, customer_id, amount, status, payload, is_active, event_date"


def ensure_table(url: str, rows: int) -> None:
    """Create `bench_events` with `rows` rows unless a table of that size already exists (cached)."""
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{TABLE}",)).fetchone()[0]
        if exists and conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == rows:
            conn.execute(
                f"UPDATE {TABLE} SET updated_at = created_at, amount = base_amount WHERE updated_at <> created_at"
            )
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
                event_date date,
                created_at timestamptz NOT NULL,
                base_amount numeric(12,2)
            )"""
        )
        conn.execute(
            f"""
            INSERT INTO {TABLE}
            SELECT g,
                   ts,
                   (g * 7919) % 100000,
                   amt,
                   (ARRAY['new','paid','shipped','returned','cancelled'])[1 + g % 5],
                   md5(g::text) || left(md5((g * 31)::text), 28),
                   g % 3 <> 0,
                   (ts AT TIME ZONE 'UTC')::date,
                   ts,
                   amt
            FROM (
                SELECT g,
                       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS ts,
                       round(((g * 104729) % 1000000) / 100.0, 2)::numeric(12,2) AS amt
                FROM generate_series(1::bigint, {rows}::bigint) AS g
            ) s"""
        )
        conn.execute(f"VACUUM ANALYZE {TABLE}")


def change_recent_rows(url: str, fraction: float) -> int:
    """Update the most recent `fraction` of rows (as real tables change), return how many changed."""
    with psycopg.connect(url, autocommit=True) as conn:
        (max_id,) = conn.execute(f"SELECT max(id) FROM {TABLE}").fetchone()
        cutoff = int(max_id * (1 - fraction))
        cur = conn.execute(
            f"UPDATE {TABLE} SET updated_at = created_at + interval '1 day', amount = base_amount + 1 WHERE id > %s",
            (cutoff,),
        )
        return cur.rowcount


def max_updated_at(url: str) -> str:
    """The current MAX(updated_at) as ISO text: the watermark an earlier full load would have stored."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(f"SELECT max(updated_at) FROM {TABLE}").fetchone()[0].isoformat()
