"""Helpers for dataloader_defs tests: control rows, source tables, Dagster runs in a real instance."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import psycopg

from control_db import queries

SOURCE_KEY = "test_pg"


def add_source(conn: psycopg.Connection, source_url: str, key: str = SOURCE_KEY) -> None:
    """A literal-scope dbconfig row pointing at the test source database."""
    parts = urlsplit(source_url)
    value = {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "database": parts.path.lstrip("/"),
        "user": parts.username or "postgres",
    }
    conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES (%s, 'postgresql', %s::jsonb, 'literal') ON CONFLICT (db_config_key) DO NOTHING",
        (key, json.dumps(value)),
    )


def add_control(conn: psycopg.Connection, control_key: str, **columns: Any) -> None:
    """Insert a control row (full strategy on `public.<last key segment>` unless overridden)."""
    table = columns.get("source_table") or control_key.split(".")[-1]
    values: dict[str, Any] = {
        "control_key": control_key,
        "db_config_key": SOURCE_KEY,
        "source_schema": "public",
        "source_table": table,
        "destination_table": f"bronze/test/{table}",
        "load_strategy": "full",
        "cron": "*/5 * * * *",
        "cron_timezone": "UTC",
        **columns,
    }
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(f"INSERT INTO dataloader.table_control ({names}) VALUES ({marks})", list(values.values()))


def set_row(conn: psycopg.Connection, control_key: str, **columns: Any) -> None:
    """Put a control row into a given state (test setup only)."""
    assignments = ", ".join(f"{name} = %s" for name in columns)
    conn.execute(
        f"UPDATE dataloader.table_control SET {assignments} WHERE control_key = %s",
        [*columns.values(), control_key],
    )


def row(conn: psycopg.Connection, control_key: str) -> queries.ControlRow:
    found = queries.get_control_row(conn, control_key)
    assert found is not None, control_key
    return found


def status_trail(conn: psycopg.Connection, control_key: str) -> list[str | None]:
    """The sequence of last_status values table_control_history recorded for the row."""
    rows = conn.execute(
        "SELECT change_type, old_values->>'last_status', new_values->>'last_status' "
        "FROM dataloader.table_control_history WHERE control_key = %s ORDER BY id",
        (control_key,),
    ).fetchall()
    trail: list[str | None] = []
    for change_type, old, new in rows:
        if change_type.upper().startswith("INSERT") or old != new:
            trail.append(new)
    return trail


def source_table(source_url: str, name: str, ddl: str, rows_sql: str | None = None) -> None:
    """(Re)create `public.<name>` in the source database and fill it."""
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS public."{name}"')
        conn.execute(f'CREATE TABLE public."{name}" ({ddl})')
        if rows_sql:
            conn.execute(rows_sql)


def start_by_hand(conn: psycopg.Connection, control_key: str, run_id: str) -> int:
    """Queue a row and mark it In Progress for `run_id` (as a hand-launched run does); its history id."""
    queued = queries.queue_by_hand(conn, control_key)
    assert queued is not None, control_key
    started = queries.mark_in_progress(conn, control_key, run_id=run_id, history_id=queued.history_id)
    assert started is not None, control_key
    return started


def with_pipes_client(resources: dict, pipes_client) -> dict:
    """`resources` whose loader runs its workers through `pipes_client` (a LocalPipesClient)."""
    from dataloader_defs.defs.loader import LocalWorkers, TableLoader

    loader = TableLoader(
        control_db=resources["control_db"], settings=resources["settings"], workers=LocalWorkers(pipes_client)
    )
    return {**resources, "loader": loader}


def table_defs(control_url: str):
    """(load assets, master sensor) built from the control table as it is now, as the code location does."""
    from dataloader_defs.control_snapshot import read_snapshot
    from dataloader_defs.defs.assets import build_load_assets
    from dataloader_defs.defs.sensors.master_sensor import build_master_sensor

    with queries.connect(control_url, "tests") as conn:
        snapshot = read_snapshot(conn)
    assets = build_load_assets(snapshot.rows)
    return assets, build_master_sensor(assets, snapshot)


def tick(instance, control_db):
    """One master-sensor tick (definitions rebuilt from the control table first)."""
    from dagster import build_sensor_context

    _, sensor = table_defs(control_db.url)
    return sensor(build_sensor_context(instance=instance, resources={"control_db": control_db}))


def request_keys(request) -> list[str]:
    """The control keys a load RunRequest carries (its attempt tags)."""
    from dataloader_defs.defs.run_tags import attempt_of_tag

    return sorted(v for k, v in request.tags.items() if attempt_of_tag(k) is not None)


def execute_request(instance, resources: dict, request, *, raise_on_error: bool = True):
    """Execute a load RunRequest the way the daemon would (same selection, config and tags)."""
    from dagster import materialize

    assets, _ = table_defs(resources["control_db"].url)
    return materialize(
        [assets],
        selection=request.asset_selection,
        instance=instance,
        tags=request.tags,
        run_config=request.run_config,
        resources=resources,
        raise_on_error=raise_on_error,
    )


def materialize_by_hand(instance, resources: dict, *control_keys: str, raise_on_error: bool = True):
    """Select the tables' assets and Materialize, as a person does in the UI."""
    from dagster import AssetKey, materialize

    assets, _ = table_defs(resources["control_db"].url)
    with queries.connect(resources["control_db"].url, "tests") as conn:
        paths = [row(conn, key).destination_table.split("/") for key in control_keys]
    return materialize(
        [assets],
        selection=[AssetKey(p) for p in paths],
        instance=instance,
        resources=resources,
        raise_on_error=raise_on_error,
    )


def tick_and_run(instance, resources: dict, *, raise_on_error: bool = True):
    """One master-sensor tick, then execute its single RunRequest the way the daemon would."""
    result = tick(instance, resources["control_db"])
    (request,) = result.run_requests
    return request, execute_request(instance, resources, request, raise_on_error=raise_on_error)
