"""Control actions launchable from the Launchpad: one small op job per action (pause, resume, reset,
force a full reload, load now), whatever the number of tables.

Each job's run config selects tables by control key, by source (`db_config_keys`: every table of
it) or by asset key (`bronze/erp/orders`), and runs `control_db.table_actions` — the same guarded
statements as `dataloader reset` and the README's SQL — in one transaction on a connection named
`dataloader-dagster-run:<run_id>`, which `table_control_history.change_source` records. A refusal
(unknown key, a row a run holds) fails the run with the reason and changes nothing, unless
`skip_refused` is set.
"""

from dagster import (
    Config,
    Failure,
    JobDefinition,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    job,
    op,
)
from pydantic import Field

from control_db.table_actions import (
    TABLE_ACTIONS,
    ActionsRefused,
    TableAction,
    apply_to_tables,
    resolve_tables,
)
from dataloader_defs.defs.resources import ControlDatabase

# Dagster run ids are 36 characters: `dataloader-dagster-run:<id>` fits application_name's 63.
RUN_SOURCE = "dagster-run:{run_id}"

_DESCRIPTIONS: dict[str, str] = {
    "pause": "Pause tables (is_active = false): the master sensor stops queuing them.",
    "resume": "Resume paused tables (is_active = true): they load when due.",
    "reset": "Reset failed tables as `dataloader reset` does: clear status, retries, manual review; load now.",
    "force_full_reload": "Force one full reload of tables (load_full = true), due now.",
    "load_now": "Make tables due now: the master sensor queues them on its next tick.",
}


class TableSelection(Config):
    """Which tables the action applies to (any combination; at least one)."""

    control_keys: list[str] = Field(default=[], description="control keys, e.g. erp.public.orders")
    db_config_keys: list[str] = Field(default=[], description="sources: every table of each")
    asset_keys: list[str] = Field(default=[], description="asset keys as paths, e.g. bronze/erp/orders")
    skip_refused: bool = Field(
        default=False,
        description="apply to the tables that allow it and report the others (default: all or none)",
    )


def _table(rows: list[tuple[str, str]]) -> MetadataValue:
    lines = ["| table | result |", "| --- | --- |", *(f"| {k} | {m} |" for k, m in rows)]
    return MetadataValue.md("\n".join(lines))


def build_action_job(action: TableAction) -> JobDefinition:
    """The job `dataloader_<action>`: one op that applies `action` to the selected tables."""

    # A Nothing output: the metadata shows on the run page, and no IO manager stores a value.
    @op(name=f"{action}_tables", description=_DESCRIPTIONS[action], out=Out(Nothing))
    def apply_action(
        context: OpExecutionContext, config: TableSelection, control_db: ControlDatabase
    ) -> Output:
        with control_db.connect(RUN_SOURCE.format(run_id=context.run_id)) as conn:
            try:
                keys = resolve_tables(
                    conn,
                    control_keys=config.control_keys,
                    db_config_keys=config.db_config_keys,
                    destinations=config.asset_keys,
                )
                done, refused = apply_to_tables(conn, action, keys, skip_refused=config.skip_refused)
            except (ValueError, ActionsRefused) as exc:
                raise Failure(description=f"{action}: {exc}", metadata={"action": action}) from None
        for item in done:
            context.log.info(f"{item.control_key}: {item.message} (was {item.was})")
        for refusal in refused:
            context.log.warning(f"{action} skipped: {refusal}")
        return Output(
            None,
            metadata={
                "action": action,
                "changed": len(done),
                "refused": len(refused),
                "tables": _table(
                    [(d.control_key, f"{d.message} (was {d.was})") for d in done]
                    + [(r.control_key, f"refused: {r}") for r in refused]
                ),
            },
        )

    @job(name=f"dataloader_{action}", description=_DESCRIPTIONS[action], tags={"dataloader/action": action})
    def action_job() -> None:
        apply_action()

    return action_job


ACTION_JOBS: list[JobDefinition] = [build_action_job(action) for action in TABLE_ACTIONS]
