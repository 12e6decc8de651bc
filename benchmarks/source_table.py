"""The benchmark's sources: an N-row mixed-type table built server-side from a seed, in PostgreSQL
and (for the MariaDB rows) in MariaDB.

Every value is a function of the row's id and the seed, so two runs with the same BENCH_ROWS and
BENCH_SEED read the same bytes, and the 1% change made for the incremental run is undone without
helper columns. Tables are named after rows and seed (`bench_events_3000000_s42`) and cached: a
3M and a 10M run do not rebuild each other's table. All variants read the same eight columns.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg

COLUMNS_SQL = "id, updated_at, customer_id, amount, status, payload, is_active, event_date"
_COLUMNS = COLUMNS_SQL.split(", ")
_ORIGINAL_UPDATED_AT = "timestamptz '2024-01-01 00:00:00+00' + id * interval '1 second'"


def table_name(rows: int, seed: int) -> str:
    """The cached table for `rows` rows built from `seed`."""
    return f"bench_events_{rows}_s{seed}"


def _seed_of(table: str) -> int:
    return int(table.rsplit("_s", 1)[1])


def _original_amount(seed: int) -> str:
    return f"round((((id + {seed}) * 104729) % 1000000) / 100.0, 2)::numeric(12,2)"


def ensure_table(url: str, rows: int, seed: int) -> str:
    """Create the PostgreSQL table of `rows` rows from `seed` unless it exists (cached; a cached table
    gets its original values back); returns its name. `updated_at` is indexed, as the watermark column
    of an incrementally loaded table is."""
    table = table_name(rows, seed)
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        same_layout = [name for (name,) in found] == _COLUMNS
        if same_layout and conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows:
            restore_table(url, table)
            return table
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(
            f"""
            CREATE TABLE {table} (
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
            INSERT INTO {table}
            SELECT id, ts,
                   (id * 7919 + {seed}) % 100000,
                   {_original_amount(seed)},
                   (ARRAY['new','paid','shipped','returned','cancelled'])[1 + (id + {seed}) % 5],
                   md5((id + {seed})::text) || left(md5((id * 31 + {seed})::text), 28),
                   (id + {seed}) % 3 <> 0,
                   (ts AT TIME ZONE 'UTC')::date
            FROM (
                SELECT id, {_ORIGINAL_UPDATED_AT} AS ts
                FROM generate_series(1::bigint, {rows}::bigint) AS id
            ) s"""
        )
        conn.execute(f"CREATE INDEX {table}_updated_at ON {table} (updated_at)")
        conn.execute(f"VACUUM ANALYZE {table}")
    return table


def ensure_mariadb_table(url: str, rows: int, seed: int) -> str:
    """The same table in MariaDB (TIMESTAMP(6) for timestamptz, DECIMAL, TEXT, BOOLEAN, DATE), built
    with the sequence engine; cached like the PostgreSQL one. Returns its name."""
    import pymysql

    table = table_name(rows, seed)
    params = mariadb_params(url)
    server = pymysql.connect(**{**params, "database": None}, autocommit=True)
    try:
        server.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{params['database']}`")
    finally:
        server.close()
    conn = pymysql.connect(**params, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = %s",
                (table,),
            )
            if cur.fetchone() is not None:
                cur.execute(f"SELECT count(*) FROM {table}")
                if cur.fetchone()[0] == rows:
                    return table
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(
                f"""
                CREATE TABLE {table} (
                    id BIGINT PRIMARY KEY,
                    updated_at TIMESTAMP(6) NOT NULL,
                    customer_id INT NOT NULL,
                    amount DECIMAL(12,2),
                    status TEXT,
                    payload TEXT,
                    is_active BOOLEAN,
                    event_date DATE
                ) ENGINE=InnoDB"""
            )
            cur.execute(
                f"""
                INSERT INTO {table}
                SELECT seq, ts,
                       (seq * 7919 + {seed}) % 100000,
                       ROUND((((seq + {seed}) * 104729) % 1000000) / 100.0, 2),
                       ELT(1 + (seq + {seed}) % 5, 'new', 'paid', 'shipped', 'returned', 'cancelled'),
                       CONCAT(MD5(CAST(seq + {seed} AS CHAR)), LEFT(MD5(CAST(seq * 31 + {seed} AS CHAR)), 28)),
                       (seq + {seed}) % 3 <> 0,
                       DATE(ts)
                FROM (
                    SELECT seq, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND AS ts
                    FROM seq_1_to_{rows}
                ) s"""
            )
            cur.execute(f"ANALYZE TABLE {table}")
    finally:
        conn.close()
    return table


def mariadb_params(url: str) -> dict:
    """pymysql connect arguments from a `mysql://user:password@host:port/database` URL."""
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
        "database": parts.path.lstrip("/") or "dataloader_bench",
    }


def restore_table(url: str, table: str) -> None:
    """Give every changed row its original values back, in id order on disk as when it was built.

    An UPDATE moves rows to wherever there is free space; without the CLUSTER each run would read a
    differently ordered table, and write differently clustered Delta files, than the run before.
    """
    amount = _original_amount(_seed_of(table))
    with psycopg.connect(url, autocommit=True) as conn:
        restored = conn.execute(
            f"UPDATE {table} SET updated_at = {_ORIGINAL_UPDATED_AT}, amount = {amount} "
            f"WHERE updated_at <> {_ORIGINAL_UPDATED_AT} OR amount IS DISTINCT FROM {amount}"
        ).rowcount
        if restored:
            conn.execute(f"CLUSTER {table} USING {table}_pkey")
            conn.execute(f"ANALYZE {table}")


def change_recent_rows(url: str, table: str, fraction: float) -> int:
    """Update the most recent `fraction` of rows (as real tables change), return how many changed.

    Each changed row is stamped past the table's current MAX(updated_at), as `now()` would stamp it.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        (max_id,) = conn.execute(f"SELECT max(id) FROM {table}").fetchone()
        cutoff = int(max_id * (1 - fraction))
        cur = conn.execute(
            f"UPDATE {table} SET updated_at = updated_at + %s * interval '1 second', amount = amount + 1 "
            "WHERE id > %s",
            (max_id, cutoff),
        )
        return cur.rowcount


def max_updated_at(url: str, table: str) -> str:
    """The current MAX(updated_at) as ISO text: the watermark an earlier full load would have stored."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(f"SELECT max(updated_at) FROM {table}").fetchone()[0].isoformat()


def ensure_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server of `admin_url` unless it exists; returns its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
