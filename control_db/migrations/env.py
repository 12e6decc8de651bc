"""Alembic environment: runs revisions on one connection, version table inside the control schema.

Configuration is built in code by `control_db.migrate`; there is no alembic.ini. Migrations of
concurrent callers (dagster dev, the CLI, tests) are serialised by a transaction-level advisory lock.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from control_db.schema import metadata
from control_db.urls import CONTROL_SCHEMA, sqlalchemy_url

MIGRATION_LOCK_ID = 7_240_431_001  # arbitrary, constant: pg_advisory_xact_lock key for migrations


def run_migrations_online() -> None:
    """Run the requested upgrade/downgrade inside one transaction holding the migration lock."""
    config = context.config
    engine = create_engine(sqlalchemy_url(config.get_main_option("sqlalchemy.url")), poolclass=NullPool)
    with engine.connect() as connection, connection.begin():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{CONTROL_SCHEMA}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=CONTROL_SCHEMA,
            include_schemas=True,
        )
        context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; use `dataloader db upgrade`")
run_migrations_online()
