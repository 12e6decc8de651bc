"""control_table_sensor: when control rows are added, changed or removed, refresh the snapshot and
reload the code location, so every active row has its asset (and a removed or deactivated row's
asset goes away).

The reload goes through the Dagster webserver's GraphQL API (`reloadRepositoryLocation`) at
DATALOADER_DAGSTER_URL (`make dev` sets it); without a reachable webserver the new snapshot is
used at the next code-location load and the sensor says so.
"""

import json
import os
import urllib.error
import urllib.request

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from dataloader_defs.control_snapshot import Snapshot, read_snapshot, write_snapshot
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.settings import interval

LOCATION_ENV = "DATALOADER_CODE_LOCATION"
DEFAULT_LOCATION = "dataloader_defs"
_RELOAD = """mutation Reload($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) { __typename }
}"""


def reload_code_location(base_url: str, location: str, *, timeout_s: float = 10) -> str:
    """Ask the webserver at `base_url` to reload `location`; what it answered, for the sensor's log."""
    body = json.dumps({"query": _RELOAD, "variables": {"name": location}}).encode()
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - our own UI URL
            answer = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"reload not requested: the webserver at {base_url} did not answer ({type(exc).__name__})"
    kind = (answer.get("data") or {}).get("reloadRepositoryLocation", {}).get("__typename")
    return f"reload of code location {location!r} requested: {kind or answer.get('errors')}"


def build_control_table_sensor(snapshot: Snapshot) -> SensorDefinition:
    """The sensor that compares the control table with the snapshot the definitions were built from."""

    @sensor(
        name="control_table_sensor",
        minimum_interval_seconds=interval("DATALOADER_REFRESH_INTERVAL_S"),
        default_status=DefaultSensorStatus.RUNNING,
        description="Refreshes the control-table snapshot and reloads the code location when rows change.",
    )
    def control_table_sensor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
        with control_db.connect("dagster-refresh") as conn:
            current = read_snapshot(conn)
        if current.fingerprint == snapshot.fingerprint:
            return SensorResult(
                skip_reason=SkipReason(f"{len(snapshot.rows)} table(s), control table unchanged")
            )
        write_snapshot(current)
        base_url = os.environ.get("DATALOADER_DAGSTER_URL") or "http://127.0.0.1:3000"
        outcome = reload_code_location(base_url, os.environ.get(LOCATION_ENV) or DEFAULT_LOCATION)
        message = (
            f"control table changed: {len(snapshot.rows)} -> {len(current.rows)} active row(s); {outcome}"
        )
        context.log.info(message)
        return SensorResult(skip_reason=SkipReason(message))

    return control_table_sensor
