"""Connection-URL forms: one libpq URL in configuration, driver-specific forms derived from it."""

from __future__ import annotations

import os
import re

CONTROL_DB_URL_ENV = "DATALOADER_CONTROL_DB_URL"
CONTROL_SCHEMA = "dataloader"

_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?://")


def libpq_url(url: str) -> str:
    """Return `url` as a plain libpq URL (`postgresql://…`), dropping any SQLAlchemy driver suffix."""
    return _SCHEME.sub("postgresql://", url, count=1)


def sqlalchemy_url(url: str, driver: str = "psycopg") -> str:
    """Return `url` with an explicit SQLAlchemy driver (`postgresql+psycopg://…`)."""
    return _SCHEME.sub(f"postgresql+{driver}://", url, count=1)


def control_db_url() -> str:
    """The control database URL from `DATALOADER_CONTROL_DB_URL`; a clear error when unset."""
    url = os.environ.get(CONTROL_DB_URL_ENV)
    if not url:
        raise RuntimeError(
            f"{CONTROL_DB_URL_ENV} is not set: point it at the control PostgreSQL database "
            "(`dataloader` finds the embedded server of `make dev` by itself while it runs)"
        )
    return libpq_url(url)


def redact(url: str) -> str:
    """`url` with any password replaced by `***`, safe to print."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
