"""Writing the control-table state and reloading the code location, the Dagster way.

- `refresh_state(instance)`: the component reads the control rows and stores them as a new version in
  the instance's defs state storage (Dagster's `StateBackedComponent.refresh_state`), which becomes the
  latest: the next load of the code location, on any host, builds from it.
- `request_reload(origin, instance)`: asks the code server that serves the location to reload with the
  latest state versions (Dagster's gRPC `ReloadCodeWithState`; the server rebuilds this component
  in-process and takes a new server id, which the webserver and the daemon watch and follow).

`python -m dataloader_defs.state refresh` writes a version from the command line (what `make dev` and a
deployment do before the code server first starts); `... show` prints the latest version and its rows.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.remote_origin import CodeLocationOrigin, GrpcServerCodeLocationOrigin
from dagster._core.storage.defs_state.base import DefsStateStorage, set_defs_state_storage
from dagster_shared.serdes.serdes import serialize_value

from dataloader_defs.control_snapshot import Snapshot
from dataloader_defs.control_tables_component import STATE_KEY, ControlTablesComponent

RELOAD_TIMEOUT_S = 120


def state_storage(instance: DagsterInstance) -> DefsStateStorage:
    """The instance's defs state storage (a clear error when it has none)."""
    storage = instance.defs_state_storage
    if storage is None:
        raise RuntimeError("this Dagster instance has no defs_state_storage (see dagster.yaml)")
    return storage


def refresh_state(instance: DagsterInstance, control_db_url: str | None = None) -> str:
    """Read the control rows into a new state version (now the latest); the version id."""
    component = ControlTablesComponent(control_db_url)
    with set_defs_state_storage(state_storage(instance)):
        return asyncio.run(component.refresh_state(Path(tempfile.gettempdir())))


def latest_version(instance: DagsterInstance) -> str | None:
    """The latest stored version of the control-table state, or None before the first."""
    return state_storage(instance).get_latest_version(STATE_KEY)


def stored_snapshot(instance: DagsterInstance, version: str | None = None) -> Snapshot | None:
    """The snapshot stored as `version` (default: the latest), or None when there is none."""
    storage = state_storage(instance)
    version = version or storage.get_latest_version(STATE_KEY)
    if version is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state"
        storage.download_state_to_path(STATE_KEY, version, path)
        return Snapshot.from_json(path.read_text(encoding="utf-8"))


def request_reload(origin: CodeLocationOrigin | None, instance: DagsterInstance) -> str:
    """Ask the code server at `origin` to reload with the latest state; what happened, for the log."""
    if not isinstance(origin, GrpcServerCodeLocationOrigin):
        return (
            "the code location is not served by a code server (`dagster code-server start` / `dagster dev`): "
            "the new state is used when it next loads"
        )
    info = state_storage(instance).get_latest_defs_state_info()
    where = f"{origin.host}:{origin.port}" if origin.port else f"socket {origin.socket}"
    try:
        reply = origin.create_client().reload_code_with_state(
            serialized_defs_state_info=serialize_value(info), timeout=RELOAD_TIMEOUT_S
        )
    except Exception as exc:  # the server is restarting or unreachable: the next tick asks again
        return f"reload not confirmed by the code server at {where} ({type(exc).__name__})"
    if reply.serialized_error:
        return f"the code server at {where} could not reload: {reply.serialized_error[:300]}"
    return f"code location {origin.location_name!r} reloaded with the new state"


def main(argv: list[str] | None = None) -> int:
    """`python -m dataloader_defs.state refresh|show` against the instance of DAGSTER_HOME."""
    args = sys.argv[1:] if argv is None else argv
    if args not in (["refresh"], ["show"]):
        print("usage: python -m dataloader_defs.state refresh|show", file=sys.stderr)
        return 2
    with DagsterInstance.get() as instance:
        if args == ["refresh"]:
            version = refresh_state(instance)
            snapshot = stored_snapshot(instance, version)
            rows = len(snapshot.rows) if snapshot else 0
            print(f"control-table state {version}: {rows} row(s)")
            return 0
        version = latest_version(instance)
        snapshot = stored_snapshot(instance, version)
        if snapshot is None:
            print("no control-table state stored yet")
            return 1
        print(f"control-table state {version}: {len(snapshot.rows)} row(s)")
        for row in snapshot.rows:
            print(f"  {row.control_key} -> {row.destination_table} ({row.load_strategy})")
        return 0


if __name__ == "__main__":
    sys.exit(main())
