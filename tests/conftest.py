"""Shared fixtures: real PostgreSQL (server or embedded), real MariaDB, Delta tables in tmp_path.

Each test session creates its own databases and drops them at the end, so sessions never see each
other's rows. Environment:
  TEST_POSTGRES_URL  admin URL of a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres);
                     when unreachable, the embedded server under .dataloader/pgdata-test is started.
  TEST_MARIADB_URL   mysql://root@127.0.0.1:3306/test by default; tests that need it skip when it is
                     unreachable, except under CI=true where that is a failure.
  TEST_S3_ENDPOINT   an S3-compatible endpoint (default http://127.0.0.1:5055, the moto server that
                     `make s3-start` and .ci/run start); `s3_lake_root` skips the same way.
  TEST_CLICKHOUSE_URL  clickhouse://default@127.0.0.1:9000/default by default (native protocol; start
                     one with `make clickhouse-start`); skips or fails like MariaDB.
  TEST_SNOWFLAKE_URL snowflake://fake:snow@127.0.0.1:8091/?account=fakesnow&protocol=http by default
                     (the fakesnow emulator: `make snowflake-start`); skips or fails like MariaDB.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from control_db import embedded
from control_db.urls import libpq_url

DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_TEST_MARIADB_URL = "mysql://root@127.0.0.1:3306/test"
# The wal_level=logical PostgreSQL of the cdc tests (`make cdc-pg-start`).
DEFAULT_TEST_CDC_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5441/postgres"
DEFAULT_TEST_S3_ENDPOINT = "http://127.0.0.1:5055"
DEFAULT_TEST_CLICKHOUSE_URL = "clickhouse://default@127.0.0.1:9000/default"
DEFAULT_TEST_SNOWFLAKE_URL = "snowflake://fake:snow@127.0.0.1:8091/?account=fakesnow&protocol=http"
ROOT = Path(__file__).resolve().parent.parent


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """Admin URL of the PostgreSQL server the tests use."""
    url = libpq_url(os.environ.get("TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL))
    if _reachable(url):
        return url
    if os.environ.get("TEST_POSTGRES_URL"):
        pytest.fail(f"TEST_POSTGRES_URL is set but unreachable: {url}")
    return embedded.ensure_running(ROOT / ".dataloader" / "pgdata-test", port=54331)


def create_database(admin_url: str, prefix: str) -> str:
    """Create a fresh, uniquely named database; return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def new_database(pg_admin_url: str) -> Iterator[Callable[[str], str]]:
    """Make fresh databases on the test server (`new_database(prefix)` -> URL); all dropped afterwards."""
    made: list[str] = []

    def make(prefix: str) -> str:
        made.append(create_database(pg_admin_url, prefix))
        return made[-1]

    yield make
    for url in made:
        drop_database(pg_admin_url, url)


@pytest.fixture(scope="session")
def control_db_url(pg_admin_url: str) -> Iterator[str]:
    """A migrated control database for this test session (libpq URL); dropped afterwards."""
    from control_db.migrate import upgrade

    url = create_database(pg_admin_url, "dl_control")
    upgrade(url)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture
def control_conn(control_db_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the control database whose tables are emptied before the test."""
    with psycopg.connect(control_db_url, autocommit=True, application_name="dataloader-tests") as conn:
        conn.execute(
            "TRUNCATE dataloader.historical_metadata, dataloader.table_control_history, "
            "dataloader.table_control, dataloader.table_control_dbconfig RESTART IDENTITY CASCADE"
        )
        yield conn


@pytest.fixture(scope="session")
def source_pg_url(pg_admin_url: str) -> Iterator[str]:
    """An empty PostgreSQL database to hold source tables for this session; dropped afterwards."""
    url = create_database(pg_admin_url, "dl_source")
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A fresh MariaDB database for this session (mysql:// URL), or skip when no server answers."""
    import pymysql

    url = os.environ.get("TEST_MARIADB_URL", DEFAULT_TEST_MARIADB_URL)
    parts = urlsplit(url)
    try:
        conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            connect_timeout=3,
            autocommit=True,
        )
    except pymysql.err.OperationalError as exc:
        reason = f"MariaDB unreachable at {parts.hostname}:{parts.port} ({exc.args[0]}): set TEST_MARIADB_URL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"dl_source_{uuid.uuid4().hex[:10]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def skip_or_fail(reason: str) -> None:
    """Skip a test whose server is unreachable; under CI=true that is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cdc_pg_url() -> Iterator[str]:
    """A fresh database on the logical-decoding PostgreSQL (TEST_CDC_POSTGRES_URL), dropped with its
    replication slots afterwards; skips (fails under CI=true) when unreachable or not logical."""
    admin = os.environ.get("TEST_CDC_POSTGRES_URL", DEFAULT_TEST_CDC_POSTGRES_URL)
    parts = urlsplit(admin)
    where = f"cdc PostgreSQL at {parts.hostname}:{parts.port}"
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        skip_or_fail(
            f"{where} unreachable ({str(exc).strip()[:120]}): run `make cdc-pg-start` or set TEST_CDC_POSTGRES_URL"
        )
    (wal_level,) = conn.execute("SHOW wal_level").fetchone() or ("",)
    if wal_level != "logical":
        conn.close()
        skip_or_fail(f"{where} has wal_level={wal_level}, not logical: use `make cdc-pg-start`")
    name = f"cdc_src_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    conn.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s", (name,)
    )
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="session")
def clickhouse_url() -> Iterator[str]:
    """A fresh ClickHouse database for this session (clickhouse:// URL), or skip when no server answers."""
    try:
        from clickhouse_driver import Client
    except ImportError:
        skip_or_fail("clickhouse-driver is not installed: make install (extra 'clickhouse')")
    url = os.environ.get("TEST_CLICKHOUSE_URL", DEFAULT_TEST_CLICKHOUSE_URL)
    parts = urlsplit(url)
    client = Client(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 9000,
        user=parts.username or "default",
        password=parts.password or "",
        connect_timeout=3,
    )
    try:
        client.execute("SELECT 1")
    except Exception as exc:
        skip_or_fail(
            f"ClickHouse unreachable at {parts.hostname}:{parts.port} ({type(exc).__name__}): "
            "run `make clickhouse-start` or set TEST_CLICKHOUSE_URL"
        )
    name = f"dl_source_{uuid.uuid4().hex[:10]}"
    client.execute(f"CREATE DATABASE `{name}`")
    yield urlunsplit(parts._replace(path=f"/{name}"))
    client.execute(f"DROP DATABASE IF EXISTS `{name}`")
    client.disconnect()


@pytest.fixture(scope="session")
def snowflake_url() -> Iterator[str]:
    """A fresh Snowflake database (schema PUBLIC) for this session, or skip when no server answers.
    The URL's query carries `account` and the connector's options (e.g. protocol=http)."""
    from urllib.parse import parse_qsl

    try:
        import snowflake.connector
    except ImportError:
        skip_or_fail("snowflake-connector-python is not installed: make install (extra 'snowflake')")
    url = os.environ.get("TEST_SNOWFLAKE_URL", DEFAULT_TEST_SNOWFLAKE_URL)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    try:
        conn = snowflake.connector.connect(
            user=parts.username, password=parts.password, host=parts.hostname, port=parts.port,
            login_timeout=5, **query,
        )  # fmt: skip
    except Exception as exc:
        skip_or_fail(
            f"Snowflake (emulator) unreachable at {parts.hostname}:{parts.port} ({type(exc).__name__}): "
            "run `make snowflake-start` or set TEST_SNOWFLAKE_URL"
        )
    name = f"DL_SOURCE_{uuid.uuid4().hex[:10].upper()}"
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    conn.cursor().execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"."PUBLIC"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    # the emulator cannot drop a database (it keeps them in memory until it stops)
    with contextlib.suppress(snowflake.connector.errors.ProgrammingError):
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    """An empty lake root for Delta tables."""
    root = tmp_path / "lake"
    root.mkdir()
    return root


@pytest.fixture
def s3_lake_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`s3://<fresh bucket>/lake` on the S3 emulator, with DATALOADER_LAKE_STORAGE_OPTIONS set for it;
    skips (fails under CI=true) when no endpoint answers."""
    import json

    import boto3
    from botocore.exceptions import EndpointConnectionError

    endpoint = os.environ.get("TEST_S3_ENDPOINT", DEFAULT_TEST_S3_ENDPOINT)
    options = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret",
        "AWS_ALLOW_HTTP": "true",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=options["AWS_REGION"],
        aws_access_key_id=options["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=options["AWS_SECRET_ACCESS_KEY"],
    )
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    try:
        s3.create_bucket(Bucket=bucket)
    except EndpointConnectionError as exc:
        reason = f"S3 emulator unreachable at {endpoint} ({exc}): run `make s3-start` or set TEST_S3_ENDPOINT"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    monkeypatch.setenv("DATALOADER_LAKE_STORAGE_OPTIONS", json.dumps(options))
    yield f"s3://{bucket}/lake"
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    while objects:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in objects]})
        objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    s3.delete_bucket(Bucket=bucket)
