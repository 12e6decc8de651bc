"""The throughput benchmark's batched variant on the Celery deployment (deploy/celery), 1..N hosts.

Same 60 tables as `benchmarks.throughput` (3 PostgreSQL sources, half full, half incremental), same
batching (DATALOADER_RUN_BATCH=12, DATALOADER_RUN_CONCURRENCY=4), but the runs go through the
CeleryRunLauncher over RabbitMQ to `scripts/celery_hosts.py`'s worker hosts (2 runs at a time each)
and the lake is on the S3 emulator (`make s3-start`), as a multi-host deployment's must be. Timed
from the cluster's start (code server and hosts ready, daemon just started) until every row is
Succeeded; CPU is that of every process of the cluster over the same span (benchmarks.cluster_cpu),
plus the PostgreSQL backends of the benchmark's databases and the broker and result backend.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from benchmarks.cluster_cpu import BackendSampler, process_cpu, session_cpu
from benchmarks.throughput import ROOT, Databases, admin_url, seed_sources
from control_db.migrate import upgrade
from control_db.urls import sqlalchemy_url

S3_ENDPOINT = os.environ.get("TEST_S3_ENDPOINT", "http://127.0.0.1:5055")
S3_OPTIONS = {
    "AWS_ENDPOINT_URL": S3_ENDPOINT,
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_ALLOW_HTTP": "true",
}
BROKERS = ("beam.smp", "redis-server")  # RabbitMQ's Erlang VM and Redis (shared servers)


def _bucket() -> str:
    import boto3

    name = f"bench-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=S3_ENDPOINT, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench-secret")  # fmt: skip
    try:
        client.create_bucket(Bucket=name)
    except Exception as exc:
        raise SystemExit(f"S3 emulator unreachable at {S3_ENDPOINT} ({exc}): run `make s3-start`") from None
    return name


def _hosts(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "celery_hosts.py"), *args],
                          env=env, capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"celery_hosts.py {args[0]} failed: {done.stdout}{done.stderr}")
    return done.stdout


def run_celery(hosts: int, tables: int, rows: int, timeout_s: float = 1800) -> dict[str, object]:
    """One batched run of the 60 tables through `hosts` Celery worker hosts; its figures."""
    dbs = Databases(admin_url())
    work = Path(tempfile.mkdtemp(prefix="dataloader-celery-throughput-"))
    root = work / "cluster"
    env: dict[str, str] = {}
    try:
        control_url = dbs.create("dl_bench_control")
        upgrade(control_url)
        total = seed_sources(dbs, control_url, tables, rows)
        dagster_url = dbs.create("dl_bench_dagster")
        env = {
            **os.environ,
            "DAGSTER_PG_URL": sqlalchemy_url(dagster_url, "psycopg2"),
            "DATALOADER_CONTROL_DB_URL": control_url,
            "DATALOADER_LAKE_ROOT": f"s3://{_bucket()}/lake",
            "DATALOADER_LAKE_STORAGE_OPTIONS": json.dumps(S3_OPTIONS),
            "DATALOADER_MASTER_INTERVAL_S": "5",
            "DATALOADER_MASTER_BATCH": str(total),
            "DATALOADER_RUN_BATCH": "12",
            "DATALOADER_RUN_CONCURRENCY": "4",
            "DATALOADER_DAGSTER_URL": "http://127.0.0.1:1",
        }
        layout = json.loads(_hosts(env, "start", "--hosts", str(hosts), "--root", str(root)))
        sessions = [entry["session"] for entry in layout["processes"].values()]
        with BackendSampler(dbs.names) as backends:
            roles = {name: [entry["session"]] for name, entry in layout["processes"].items()}
            roles["worker hosts"] = [
                e["session"] for n, e in layout["processes"].items() if n.startswith("host")
            ]
            role0 = {name: session_cpu(s) for name, s in roles.items()}
            cpu0, brokers0, started = session_cpu(sessions), process_cpu(BROKERS), time.monotonic()
            done = failed = 0
            with psycopg.connect(control_url, autocommit=True) as conn:
                while time.monotonic() - started < timeout_s and done + failed < total:
                    time.sleep(0.5)
                    done, failed = conn.execute(
                        "SELECT count(*) FILTER (WHERE last_status = 'Succeeded'), "
                        "count(*) FILTER (WHERE last_status = 'Failed') FROM dataloader.table_control"
                    ).fetchone()
            elapsed = time.monotonic() - started
            cluster_cpu = session_cpu(sessions) - cpu0
            by_role = {
                name: session_cpu(s) - role0[name] for name, s in roles.items() if not name.startswith("host")
            }
            brokers_cpu = process_cpu(BROKERS) - brokers0
        postgres_cpu = backends.total()
        cpu = cluster_cpu + postgres_cpu
        return {
            "variant": f"Celery, {hosts} worker host{'s' if hosts > 1 else ''}",
            "tables": total,
            "succeeded": done,
            "failed": failed,
            "seconds": round(elapsed, 1),
            "tables_per_hour": round(done / elapsed * 3600) if elapsed else 0,
            "cpu_s": round(cpu, 1),
            "cpu_per_table_s": round(cpu / done, 2) if done else None,
            "cpu_detail": f"cluster {cluster_cpu:.1f} s ("
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in by_role.items())
            + f"), PostgreSQL (sampled) {postgres_cpu:.1f} s, "
            f"RabbitMQ+Redis {brokers_cpu:.1f} s (whole servers, not counted)",
        }
    finally:
        if (root / "cluster.json").exists():
            _hosts(env, "stop", "--root", str(root))
        dbs.drop_all()
        shutil.rmtree(work, ignore_errors=True)
