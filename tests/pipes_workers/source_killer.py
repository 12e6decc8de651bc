"""Run as a script beside a load: end the source connection of the first query that reads `marker`
once it has run `min_ms`, as an operator or a failover would (PostgreSQL: pg_terminate_backend,
MariaDB: KILL, ClickHouse: KILL QUERY). A separate process, because connectorx holds the GIL while
it reads.

    python source_killer.py postgresql|mariadb|clickhouse URL MARKER MIN_MS

Prints `killed <id>` and exits 0, or exits 1 when no such query showed up within 60 s.
"""

from __future__ import annotations

import sys
import time
from typing import Any
from urllib.parse import urlsplit

_PG_QUERY = (
    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid() "
    "AND query LIKE %s AND now() - query_start >= %s * interval '1 millisecond'"
)
_CLICKHOUSE_QUERY = (
    "SELECT query_id FROM system.processes WHERE query LIKE %(pattern)s "
    "AND query NOT LIKE '%%system.processes%%' AND elapsed * 1000 >= %(min_ms)s"
)
_MARIADB_QUERY = (
    "SELECT id FROM information_schema.PROCESSLIST WHERE db = %s AND id <> CONNECTION_ID() "
    "AND command <> 'Sleep' AND info LIKE %s AND time_ms >= %s"
)


def kill_once(db_type: str, url: str, marker: str, min_ms: int, *, timeout_s: float = 60) -> str | None:
    """End the first matching query's connection; its id, or None after `timeout_s`."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    pattern = f"%{marker}%"
    deadline = time.monotonic() + timeout_s
    if db_type == "postgresql":
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(_PG_QUERY, (database, pattern, min_ms)).fetchone()
                if row is not None:
                    conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    return str(row[0])
                time.sleep(0.05)
        return None
    if db_type == "clickhouse":
        return _kill_clickhouse(parts, pattern, min_ms, deadline)
    import pymysql

    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 3306, user=parts.username or "root",
        password=parts.password or "", autocommit=True,
    )  # fmt: skip
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute(_MARIADB_QUERY, (database, pattern, min_ms))
                row = cur.fetchone()
                if row is not None:
                    cur.execute(f"KILL {int(row[0])}")
                    return str(row[0])
                time.sleep(0.05)
    finally:
        conn.close()
    return None


def _kill_clickhouse(parts: Any, pattern: str, min_ms: int, deadline: float) -> str | None:
    from clickhouse_driver import Client

    client = Client(
        host=parts.hostname or "127.0.0.1", port=parts.port or 9000, user=parts.username or "default"
    )
    try:
        while time.monotonic() < deadline:
            rows = client.execute(_CLICKHOUSE_QUERY, {"pattern": pattern, "min_ms": min_ms})
            if rows:
                client.execute("KILL QUERY WHERE query_id = %(id)s ASYNC", {"id": rows[0][0]})
                return str(rows[0][0])
            time.sleep(0.05)
    finally:
        client.disconnect()
    return None


if __name__ == "__main__":
    killed = kill_once(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
    print(f"killed {killed}" if killed else "no such query", flush=True)
    sys.exit(0 if killed else 1)
