"""An `s3://` lake root on the S3 emulator (moto server): every strategy, deletes and maintenance
work through DATALOADER_LAKE_STORAGE_OPTIONS, and storage errors are classified with a message
that names the setting to fix (and no option value)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from deltalake import DeltaTable
from loadtest_support import SourceDB, after_success, assert_same_rows, make_rows

from dataloader_contract.errors import ConfigurationError, TransientLoadError
from dataloader_contract.request import table_uri
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load
from pipes_workers.maintain import maintain_table
from pipes_workers.maintenance_request import MaintenanceRequest
from pipes_workers.storage import OPTIONS_ENV, lake_storage_options, storage_error

NOW = datetime.now(UTC)
STRATEGIES: dict[str, dict[str, Any]] = {
    "full": {},
    "incremental": {},
    "append_only": {},
    "check_and_load": {},
    "chunked_backfill": {"chunk_column": "id", "chunk_size": 3},
    "rolling": {"rolling_column": "updated_at", "rolling_window_days": 7, "incremental_column": None},
}


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_on_s3(pg_source: SourceDB, s3_lake_root: str, strategy: str) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 8), base=NOW - timedelta(days=3)))
    request = pg_source.request(table, strategy, s3_lake_root, **STRATEGIES[strategy])  # type: ignore[arg-type]
    request = after_success(request, run_load(request))
    pg_source.insert(table, make_rows(range(8, 11), base=NOW - timedelta(days=1)))
    second = run_load(request)
    assert second.rows_read > 0 and second.delta_version is not None
    assert_same_rows(pg_source, table, request)


def test_deletes_and_maintenance_on_s3(
    pg_source: SourceDB, s3_lake_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 21)))
    request = pg_source.request(table, "incremental", s3_lake_root, delete_mode="hard")  # type: ignore[arg-type]
    request = after_success(request, run_load(request))
    for n in range(4):  # new rows only: each merge adds a file
        pg_source.insert(table, make_rows(range(21 + n, 22 + n), base=datetime(2025, 1, 1 + n, tzinfo=UTC)))
        request = after_success(request, run_load(request))
    pg_source.execute(f"DELETE FROM {pg_source.quote(table)} WHERE id IN (2, 22)")
    assert run_load(request).rows_deleted == 2
    assert_same_rows(pg_source, table, request)

    uri = table_uri(request.lake_root, request.destination_table)
    options = lake_storage_options(request.lake_root)
    DeltaTable(uri, storage_options=options).alter.set_table_properties(
        {"delta.deletedFileRetentionDuration": "interval 0 hours"}
    )
    monkeypatch.setenv("DATALOADER_VACUUM_RETENTION_HOURS", "0")
    before = DeltaSession(uri, storage_options=options).state(request.control_key)
    done = maintain_table(
        MaintenanceRequest(
            request.control_key, request.destination_table, s3_lake_root, "incremental", ("id",)
        ),
        log=lambda _m: None,
    )
    assert done.files_before > done.files_after and done.files_removed > 0 and done.bytes_removed > 0
    after = DeltaSession(uri, storage_options=options).state(request.control_key)  # a fresh look
    assert after.txn_version == before.txn_version
    assert_same_rows(pg_source, table, request)


def _load_error(pg_source: SourceDB, lake_root: str) -> Exception:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 3)))
    with pytest.raises((ConfigurationError, TransientLoadError)) as failed:
        run_load(pg_source.request(table, "full", lake_root))  # type: ignore[arg-type]
    return failed.value


def test_plain_http_without_allow_http_names_the_setting(
    pg_source: SourceDB, s3_lake_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = json.loads(os.environ[OPTIONS_ENV])
    del options["AWS_ALLOW_HTTP"]
    monkeypatch.setenv(OPTIONS_ENV, json.dumps(options))
    monkeypatch.delenv("AWS_ALLOW_HTTP", raising=False)
    error = _load_error(pg_source, s3_lake_root)
    assert isinstance(error, ConfigurationError) and error.kind == "configuration"
    assert "AWS_ALLOW_HTTP" in str(error) and error.code == "storage_http_not_allowed"


def test_missing_bucket_is_a_configuration_error(pg_source: SourceDB, s3_lake_root: str) -> None:
    error = _load_error(pg_source, "s3://no-such-bucket-dataloader/lake")
    assert isinstance(error, ConfigurationError)
    assert "DATALOADER_LAKE_ROOT" in str(error) and error.code == "http_404"
    assert "testing-secret" not in str(error)


def test_unreachable_endpoint_is_transient(
    pg_source: SourceDB, s3_lake_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = json.loads(os.environ[OPTIONS_ENV])
    options["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    monkeypatch.setenv(OPTIONS_ENV, json.dumps(options))
    error = _load_error(pg_source, s3_lake_root)
    assert isinstance(error, TransientLoadError) and "AWS_ENDPOINT_URL" in str(error)


def test_unknown_scheme_and_bad_options_are_configuration_errors(
    pg_source: SourceDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = _load_error(pg_source, "nosuch://bucket/lake")
    assert isinstance(error, ConfigurationError) and "DATALOADER_LAKE_ROOT" in str(error)
    monkeypatch.setenv(OPTIONS_ENV, "{not json")
    with pytest.raises(ConfigurationError, match=OPTIONS_ENV):
        lake_storage_options("s3://bucket/lake")
    assert lake_storage_options("/local/lake") is None


# Messages as delta-rs/object_store word them for failures the emulator cannot produce.
STORAGE_MESSAGES = [
    (
        "Generic S3 error\n ↳ Error performing PUT in 1s - Server returned non-2xx status code\n ↳ 503 Service Unavailable: SlowDown",
        TransientLoadError,
        "http_503",
    ),
    (
        "Generic S3 error\n ↳ Error performing GET - Server returned non-2xx status code\n ↳ 500 Internal Server Error",
        TransientLoadError,
        "http_500",
    ),
    (
        "Generic S3 error\n ↳ Error performing GET - Server returned non-2xx status code\n ↳ 403 Forbidden: InvalidAccessKeyId key=AKIASECRETVALUE",
        ConfigurationError,
        "http_403",
    ),
    (
        "Generic GCS error\n ↳ Error performing token request\n ↳ 403 Forbidden",
        ConfigurationError,
        "http_403",
    ),
    ("Generic MicrosoftAzure error\n ↳ Account must be specified", ConfigurationError, "storage_auth"),
    (
        "Generic S3 error\n ↳ Error performing GET in 30s - operation timed out",
        TransientLoadError,
        "storage_unreachable",
    ),
    (
        "Generic MicrosoftAzure error\n ↳ Error performing GET https://a.blob/c?sig=SASTOKEN - 403 Forbidden",
        ConfigurationError,
        "http_403",
    ),
]


@pytest.mark.parametrize(
    ("text", "kind", "code"), STORAGE_MESSAGES, ids=[m[2] + str(i) for i, m in enumerate(STORAGE_MESSAGES)]
)
def test_storage_errors_are_classified(text: str, kind: type, code: str) -> None:
    error = storage_error(OSError(text), "s3://lake/t", {"AWS_SECRET_ACCESS_KEY": "AKIASECRETVALUE"})
    assert type(error) is kind and error.code == code
    assert "AKIASECRETVALUE" not in str(error) and "SASTOKEN" not in str(error)
