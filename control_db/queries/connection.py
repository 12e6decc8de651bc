"""Connections to the control database, named after the component that opens them."""

from __future__ import annotations

import psycopg

from control_db.urls import libpq_url


def connect(url: str, component: str, *, connect_timeout: int | None = None) -> psycopg.Connection:
    """An autocommit connection whose `application_name` is `dataloader-<component>`.

    The name lands in `table_control_history.change_source`; `search_path` is left alone (the
    queries name `dataloader.` explicitly). `connect_timeout` (seconds) overrides the URL's.
    """
    extra = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
    return psycopg.connect(
        libpq_url(url), autocommit=True, application_name=f"dataloader-{component}", **extra
    )
