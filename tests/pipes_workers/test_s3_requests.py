"""The object-store requests of one incremental load on the S3 emulator, counted by a proxy in front
of it (s3_request_counter.py): a load that opens its table once lists and reads the log once."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from loadtest_support import SourceDB, after_success, assert_same_rows, make_rows
from s3_request_counter import CountingProxy

from pipes_workers.load import run_load
from pipes_workers.storage import OPTIONS_ENV

# Measured on the S3 emulator (README, object storage): 64 requests before the load session (the
# table opened ~8 times), 26 after (15 GET, 9 LIST, 2 PUT).
MOST_REQUESTS = 30


def test_incremental_load_requests_on_s3(
    pg_source: SourceDB, s3_lake_root: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    options = json.loads(os.environ[OPTIONS_ENV])
    proxy = CountingProxy(options["AWS_ENDPOINT_URL"], tmp_path / "requests.log")
    try:
        monkeypatch.setenv(OPTIONS_ENV, json.dumps({**options, "AWS_ENDPOINT_URL": proxy.url}))
        now = datetime.now(UTC)
        table = pg_source.events_table()
        pg_source.insert(table, make_rows(range(1, 101), base=now - timedelta(days=2)))
        request = pg_source.request(table, "incremental", s3_lake_root, cron="0 * * * *")
        request = after_success(request, run_load(request))
        pg_source.insert(table, make_rows(range(101, 111), base=now - timedelta(hours=1)))

        proxy.reset()
        result = run_load(request)
        counted = proxy.kinds()
        assert_same_rows(pg_source, table, request)
    finally:
        proxy.stop()
    print(f"one incremental load on S3: {sum(counted.values())} requests {counted}")
    assert result.committed and result.rows_read == 10
    assert not [c.name for c in result.checks if not c.passed and c.severity == "ERROR"]
    assert sum(counted.values()) <= MOST_REQUESTS, counted
