"""What hash_columns costs: one full load of a PostgreSQL table, without and with hashed columns.

    python -m benchmarks.hashing [ROWS]     (default 1,000,000 rows; TEST_POSTGRES_URL as in tests)

Creates a scratch database with a table of ROWS rows (a unique bigint id, a unique e-mail, a
low-cardinality country, a timestamp), loads it into a temporary lake once per variant, and prints
seconds and rows/s per variant. The database and the lake are removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg

VARIANTS: dict[str, tuple[str, ...]] = {
    "no hashing": (),
    "email (unique)": ("email",),
    "country (200 values)": ("country",),
    "id, email, country": ("id", "email", "country"),
}


def main(rows: int) -> None:
    """Run every variant once over a table of `rows` rows and print the table."""
    from benchmarks.variants import _source_config
    from dataloader_contract.request import LoadRequest
    from pipes_workers.load import run_load

    admin = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"dl_bench_hash_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    lake = tempfile.mkdtemp(prefix="dl_bench_hash_")
    os.environ.setdefault("DATALOADER_HASH_KEY", "benchmark key, not a secret")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE customers AS SELECT i::bigint AS id, 'user' || i || '@example.com' AS email, "
                "'country ' || (i % 200) AS country, now() - i * interval '1 second' AS updated_at "
                f"FROM generate_series(1, {rows}) AS i"
            )
        source = _source_config(url)  # the throughput benchmarks' source, on this scratch database
        print(f"{'variant':<24} {'seconds':>8} {'rows/s':>12}")
        for label, hashed in VARIANTS.items():
            request = LoadRequest(
                control_key=f"bench.{len(hashed)}",
                load_strategy="full",
                source_schema="public",
                source_table="customers",
                destination_table=f"bench/v{list(VARIANTS).index(label)}",
                source=source,
                lake_root=lake,
                hash_columns=hashed,
            )
            started = time.perf_counter()
            result = run_load(request)
            seconds = time.perf_counter() - started
            assert result.rows_written == rows, result
            print(f"{label:<24} {seconds:>8.2f} {rows / seconds:>12,.0f}")
    finally:
        shutil.rmtree(lake, ignore_errors=True)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
