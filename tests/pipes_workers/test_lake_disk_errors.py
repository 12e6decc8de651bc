"""A lake whose disk is full or that is mounted read-only fails the load with a clear error naming
the table's path and the cause — transient for a full disk (space comes back), configuration for a
read-only lake — and nothing half-written left on the disk, and no panic on stderr. Tested on a
real tmpfs mount (root only; skipped with the reason where mounting is not permitted)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from loadtest_support import SourceDB, make_rows

from pipes_workers.load import attempt_load


@pytest.fixture
def tiny_lake(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted at tmp_path/lake (unmounted afterwards)."""
    lake = tmp_path / "lake"
    lake.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(lake)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield lake
    finally:
        subprocess.run(["umount", "-l", str(lake)], check=False)


def _remount(lake: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(lake)], check=True)


def _wide_table(source: SourceDB, rows: int) -> str:
    table = source.events_table()
    source.execute(
        f"INSERT INTO {source.quote(table)} SELECT g, (SELECT string_agg(md5(g::text || r::text), '') "
        "FROM generate_series(1, 64) r), g, now(), current_date FROM generate_series(1, %s) g",
        (rows,),
    )
    return table


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_a_full_lake_disk_is_transient_and_leaves_nothing(pg_source: SourceDB, tiny_lake: Path) -> None:
    table = _wide_table(pg_source, 20_000)  # ~40 MB of text: far more than the 2 MB disk
    request = pg_source.request(table, "full", tiny_lake, incremental_column=None)
    result = attempt_load(request)
    assert result.error is not None
    assert (result.error.kind, result.error.code) == ("transient", "ENOSPC"), result.error
    message = result.error.message
    assert str(tiny_lake) in message and "disk is full" in message and "\n" not in message, message
    assert _files(tiny_lake) == set()  # the table's directory and its partial files are gone


def test_a_read_only_lake_is_a_configuration_error(pg_source: SourceDB, tiny_lake: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 4)))
    request = pg_source.request(table, "full", tiny_lake)
    assert attempt_load(request).error is None
    before = _files(tiny_lake)
    _remount(tiny_lake, "ro")
    result = attempt_load(request)
    assert result.error is not None
    assert (result.error.kind, result.error.code) == ("configuration", "EROFS"), result.error
    assert "read-only" in result.error.message and str(tiny_lake) in result.error.message
    _remount(tiny_lake, "rw")
    assert _files(tiny_lake) == before


WORKER = """
import json, sys
from pipes_workers.load import attempt_load
from dataloader_contract.request import LoadRequest
result = attempt_load(LoadRequest.from_dict(json.loads(sys.argv[1])))
print(result.error.kind, result.error.code)
"""


@pytest.mark.parametrize("lake", ["full", "read-only"])
def test_a_failed_lake_write_prints_no_panic(pg_source: SourceDB, tiny_lake: Path, lake: str) -> None:
    """delta-rs's abort after a failed file upload panics inside object_store (known_panics.py):
    nothing of it reaches the worker's stderr, and the write's real error is what is reported."""
    import json

    table = _wide_table(pg_source, 20_000 if lake == "full" else 200)
    request = pg_source.request(
        table, "full", tiny_lake, incremental_column=None, control_key=f"t.{uuid.uuid4().hex[:6]}"
    )
    expected = ["transient", "ENOSPC"]
    if lake == "read-only":
        assert attempt_load(request).error is None
        _remount(tiny_lake, "ro")
        expected = ["configuration", "EROFS"]
    try:
        proc = subprocess.run(
            [sys.executable, "-c", WORKER, json.dumps(request.to_dict())],
            capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "RUST_BACKTRACE": "1"},
        )  # fmt: skip
    finally:
        if lake == "read-only":
            _remount(tiny_lake, "rw")
    assert proc.stdout.split() == expected, proc.stdout + proc.stderr
    assert "panicked" not in proc.stderr and "stack backtrace" not in proc.stderr, proc.stderr
