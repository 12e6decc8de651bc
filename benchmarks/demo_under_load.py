"""`make dev`'s demo on a busy machine: how long until its six tables are loaded, and what went wrong.

    make bench-demo-load                     # 20 burners, 900 s bound
    .venv/bin/python -m benchmarks.demo_under_load --burners 20 --deadline 900

Starts `scripts/dev.py` (the path `make dev` runs: migrations, demo seed, `dagster dev` with its
webserver, daemon and code server) on fresh databases of the test server (TEST_POSTGRES_URL, default
127.0.0.1:5432) and a temporary DAGSTER_HOME and lake, while the project's bounded CPU burner
(tests/dataloader_defs/cpu_burner.py: busy loops at nice 19) keeps the load average up. It waits
until every demo table has a Succeeded load, then prints one table: seconds to the first load of
each table, the load average seen, history outcomes, rows ever Failed and rows in manual review.
`.dataloader/dev.json` (what `make dev` records for a fresh shell) is restored afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "dataloader_defs"))

from cpu_burner import CpuBurner  # noqa: E402

from control_db.urls import libpq_url  # noqa: E402

DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _database(admin: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + f"/{name}"


def _drop(admin: str, url: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _kill_left_behind(marker: str) -> None:
    """SIGKILL what `dagster dev` started outside its process group and left running (a code server,
    seen alive an hour later): every process whose command line names this run's work folder."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def _first_loads(control: str, since: float) -> dict[str, float | None]:
    """control_key -> seconds from `since` (epoch) to its first Succeeded load's end (None: none yet)."""
    try:
        with psycopg.connect(control, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT tc.control_key, extract(epoch FROM min(hm.load_end_time) FILTER "
                "(WHERE hm.load_status = 'Succeeded')) - %s "
                "FROM dataloader.table_control AS tc LEFT JOIN dataloader.historical_metadata AS hm "
                "USING (control_key) GROUP BY 1 ORDER BY 1",
                (since,),
            ).fetchall()
    except psycopg.Error:
        return {}
    return {key: (float(seconds) if seconds is not None else None) for key, seconds in rows}


def _outcomes(control: str) -> tuple[dict[str, int], list[str], list[str]]:
    with psycopg.connect(control, autocommit=True) as conn:
        counts = dict(
            conn.execute(
                "SELECT coalesce(error_code, load_status), count(*) FROM dataloader.historical_metadata GROUP BY 1"
            ).fetchall()
        )
        failed = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT control_key FROM dataloader.table_control_history "
                "WHERE new_values->>'last_status' = 'Failed'"
            ).fetchall()
        ]
        review = [
            r[0]
            for r in conn.execute(
                "SELECT control_key FROM dataloader.table_control WHERE manual_review"
            ).fetchall()
        ]
    return counts, failed, review


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burners", type=int, default=20, help="busy loops at nice 19 (0: none)")
    parser.add_argument("--deadline", type=float, default=900, help="give up after this many seconds")
    parser.add_argument("--port", type=int, default=3390, help="the UI port of this dagster dev")
    args = parser.parse_args(argv)

    admin = libpq_url(os.environ.get("TEST_POSTGRES_URL", DEFAULT_ADMIN))
    work = Path(tempfile.mkdtemp(prefix="dataloader-demo-load-"))
    recorded = ROOT / ".dataloader" / "dev.json"
    saved = recorded.read_bytes() if recorded.exists() else None
    urls = {name: _database(admin, f"dl_demo_{name}") for name in ("control", "dagster", "source")}
    env = {
        **os.environ,
        "DATALOADER_CONTROL_DB_URL": urls["control"],
        "DAGSTER_PG_URL": urls["dagster"],
        "DATALOADER_DEMO_SOURCE_URL": urls["source"],
        "DAGSTER_HOME": str(work / "home"),
        "DATALOADER_LAKE_ROOT": str(work / "lake"),
        "DATALOADER_MODELS_DIR": str(work / "models"),
    }
    dev: subprocess.Popen | None = None
    try:
        with CpuBurner(args.burners, seconds=args.deadline + 300) as burner:
            if args.burners:
                burner.wait_for_load(10, timeout_s=150)
            start_sample = burner.samples_taken
            started, since = time.monotonic(), time.time()
            log = (work / "dev.log").open("wb")
            dev = subprocess.Popen(
                [sys.executable, str(ROOT / "scripts" / "dev.py"), "--port", str(args.port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            firsts: dict[str, float | None] = {}
            while time.monotonic() - started < args.deadline:
                firsts = _first_loads(urls["control"], since)
                if firsts and all(seconds is not None for seconds in firsts.values()):
                    break
                time.sleep(5)
            elapsed = time.monotonic() - started
            low, high = burner.load_average(start_sample)
        counts, failed, review = _outcomes(urls["control"])
    finally:
        if dev is not None:
            os.killpg(dev.pid, signal.SIGTERM)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
        _kill_left_behind(str(work))
        if saved is not None:
            recorded.write_bytes(saved)
        for url in urls.values():
            _drop(admin, url)
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"demo under load: {args.burners} burners, load average (1 min) {low:.1f}-{high:.1f}, {os.cpu_count()} cores"
    )
    print("| table | first load done after (s) |")
    print("|---|---|")
    for key, seconds in sorted(firsts.items()):
        print(f"| {key} | {'not loaded' if seconds is None else f'{seconds:.0f}'} |")
    print(f"all loaded after: {elapsed:.0f} s from start (migrations, seed and dagster dev's start included)")
    print(
        f"history outcomes: {counts}; rows ever Failed: {failed or 'none'}; in manual review: {review or 'none'}"
    )
    return 0 if firsts and all(s is not None for s in firsts.values()) and not failed and not review else 1


if __name__ == "__main__":
    raise SystemExit(main())
