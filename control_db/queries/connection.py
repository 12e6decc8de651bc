"""Connections to the control database, named after the component that opens them."""

from __future__ import annotations

import psycopg

from control_db.urls import libpq_url


def connect(url: str, component: str) -> psycopg.Connection:
    """An autocommit connection whose `application_name` is `dataloader-<component>`.

    The name lands in `table_control_history.change_source`; `search_path` is left alone (the
    queries name `dataloader.` explicitly).
    """
    return psycopg.connect(libpq_url(url), autocommit=True, application_name=f"dataloader-{component}")
