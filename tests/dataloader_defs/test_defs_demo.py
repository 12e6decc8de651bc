"""The demo seeding (all six strategies pass the control table's constraints) and scripts/dev.py setup."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import psycopg
from defs_support import request_keys, tick

from dataloader_defs import demo

ROOT = Path(__file__).resolve().parents[2]


def test_seed_covers_all_strategies_and_generator_changes_rows(
    control_conn, control_db_url, source_pg_url, instance, control_db
):
    demo.seed_source(source_pg_url)
    keys = demo.seed_control(control_db_url, source_pg_url)
    assert demo.seed_control(control_db_url, source_pg_url) == keys  # idempotent
    strategies = {
        r[0] for r in control_conn.execute("SELECT load_strategy FROM dataloader.table_control").fetchall()
    }
    assert strategies == {
        "full",
        "incremental",
        "append_only",
        "rolling",
        "check_and_load",
        "chunked_backfill",
    }

    with psycopg.connect(source_pg_url, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM shop.events").fetchone()[0]
        demo.generate_once(conn, random.Random(1))
        assert conn.execute("SELECT count(*) FROM shop.events").fetchone()[0] > before

    result = tick(instance, control_db)
    assert len(result.run_requests) == 2  # one source: five tables in one run, the backfill alone
    assert sorted(k for r in result.run_requests for k in request_keys(r)) == sorted(keys)


def test_dev_setup_only(control_conn, control_db_url, source_pg_url, tmp_path):
    env = {
        **os.environ,
        "DATALOADER_CONTROL_DB_URL": control_db_url,
        "DAGSTER_PG_URL": control_db_url,  # not connected by --setup-only; avoids creating databases
        "DATALOADER_DEMO_SOURCE_URL": source_pg_url,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "DATALOADER_LAKE_ROOT": str(tmp_path / "lake"),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dev.py"), "--setup-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "demo.shop.page_views" in done.stdout
    assert (tmp_path / "home" / "dagster.yaml").exists()
    assert "DATALOADER_MASTER_INTERVAL_S=15" in done.stdout
    # What a second shell needs: the control database URL and where the UI runs.
    assert f"DATALOADER_CONTROL_DB_URL={control_db_url}" in done.stdout
    assert "DATALOADER_DAGSTER_URL=http://127.0.0.1:3000" in done.stdout
