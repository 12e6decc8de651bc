"""Names the load runs carry, shared by the asset, the sensors and the monitors: the load asset's
name, the run tags (source, table count, one tag per queued attempt) and the lookups over them."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

LOAD_ASSET_NAME = "dataloader_table_load"
TAG_SOURCE = "dataloader/source"
TAG_TABLES = "dataloader/tables"
# A run started by hand (UI Materialize, `dagster asset materialize`) is Dagster's implicit asset job,
# which Dagster names `__ASSET_JOB` and lets nobody rename: this tag says what it is instead.
TAG_LAUNCHED_BY = "dataloader/launched_by"
# One tag per queued attempt a run carries (value: control_key). Dagster allows one "/" in a tag
# key, so the history id follows a dot; runs launched before this change used a second "/".
ATTEMPT_TAG_PREFIX = "dataloader/attempt."
LEGACY_ATTEMPT_TAG_PREFIX = "dataloader/attempt/"


def attempt_of_tag(tag: str) -> int | None:
    """The history id an attempt tag names, or None for any other tag."""
    for prefix in (ATTEMPT_TAG_PREFIX, LEGACY_ATTEMPT_TAG_PREFIX):
        if tag.startswith(prefix) and tag[len(prefix) :].isdigit():
            return int(tag[len(prefix) :])
    return None


def attempt_tag(history_id: int) -> str:
    """The run tag that says a run carries queued attempt `history_id` (the reconcile pass looks for it)."""
    return f"{ATTEMPT_TAG_PREFIX}{history_id}"


def runs_of_attempt(
    instance: DagsterInstance, history_id: int, control_key: str, statuses: Sequence[DagsterRunStatus] = ()
) -> list[DagsterRun]:
    """The runs that carry queued attempt `history_id` of `control_key` (either tag spelling)."""
    runs: list[DagsterRun] = []
    for prefix in (ATTEMPT_TAG_PREFIX, LEGACY_ATTEMPT_TAG_PREFIX):
        found = RunsFilter(tags={f"{prefix}{history_id}": control_key}, statuses=list(statuses))
        runs.extend(instance.get_runs(filters=found))
    return runs


def run_tags(db_config_key: str, attempts: dict[str, int]) -> dict[str, str]:
    """Tags of a load run: its source (per-source concurrency limit in dagster.yaml) and its attempts."""
    tags = {TAG_SOURCE: db_config_key, TAG_TABLES: str(len(attempts))}
    tags.update({attempt_tag(history_id): key for key, history_id in attempts.items()})
    return tags


def hand_run_tags(run_tags_now: dict[str, str], tables: int) -> dict[str, str]:
    """The tags a load run started by hand gets when it starts (none for a sensor's run, which
    carries `dataloader/source` from its request)."""
    if TAG_SOURCE in run_tags_now:
        return {}
    return {TAG_LAUNCHED_BY: "hand", TAG_TABLES: str(tables)}
