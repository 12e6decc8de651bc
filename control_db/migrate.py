"""Apply the Alembic revisions of the control schema; the Alembic config is built here, in code."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from control_db.urls import CONTROL_SCHEMA, libpq_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"


def alembic_config(url: str) -> Config:
    """An Alembic `Config` for the control database at `url` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % (e.g. in a URL-encoded password) must be doubled.
    config.set_main_option("sqlalchemy.url", libpq_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision shipped with this package."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://unused/")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    """The revision the control database at `url` is at, or None when it was never migrated."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{CONTROL_SCHEMA}.{VERSION_TABLE}",))
        row = exists.fetchone()
        if not row or not row[0]:
            return None
        version = conn.execute(f'SELECT version_num FROM "{CONTROL_SCHEMA}".{VERSION_TABLE}').fetchone()
    return version[0] if version else None


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the control database at `url` up to `revision`; a no-op when it is already there."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the control database at `url` down to `revision`.

    Downgrading to `base` also removes the version table and the (then empty) control schema.
    """
    command.downgrade(alembic_config(url), revision)
    if revision == "base":
        _drop_empty_schema(url)


def _drop_empty_schema(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{CONTROL_SCHEMA}".{VERSION_TABLE}')
        # RESTRICT: when someone else keeps objects in the schema, leave it (and them) alone.
        with contextlib.suppress(psycopg.errors.DependentObjectsStillExist):
            conn.execute(f'DROP SCHEMA IF EXISTS "{CONTROL_SCHEMA}" RESTRICT')
