"""Launchpad jobs that open or close sources' circuits by hand (`dataloader_open_circuit`,
`dataloader_close_circuit`), through the same guarded transitions as the breaker itself
(`control_db.queries.circuit_by_hand`), on a connection named `dataloader-dagster-run:<run_id>`, which
`source_circuit_history.change_source` records. An unknown source fails the run and changes nothing.
"""

from dagster import Config, Failure, JobDefinition, Nothing, OpExecutionContext, Out, Output, job, op
from pydantic import Field

from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.table_action_jobs import RUN_SOURCE


class CircuitSelection(Config):
    """The sources whose circuit the run opens or closes."""

    db_config_keys: list[str] = Field(description="sources (table_control_dbconfig.db_config_key)")
    reason: str = Field(default="", description="why, recorded in source_circuit_history")
    cooldown_s: int | None = Field(
        default=None,
        description="open: hold the tables back this long (default: the source's breaker_cooldown_s)",
    )


def build_circuit_job(opens: bool) -> JobDefinition:
    """`dataloader_open_circuit` or `dataloader_close_circuit`."""
    verb = "open" if opens else "close"
    description = (
        "Open sources' circuits by hand: their tables are held back, then one probe after the cool-down."
        if opens
        else "Close sources' circuits by hand (the source is back): their tables load when due."
    )

    @op(name=f"{verb}_circuits", description=description, out=Out(Nothing))
    def change_circuits(
        context: OpExecutionContext, config: CircuitSelection, control_db: ControlDatabase
    ) -> Output:
        from control_db.queries.circuit_by_hand import close_by_hand, open_by_hand

        reason = config.reason or f"{verb}ed by hand (Dagster run {context.run_id})"
        states = {}
        with control_db.connect(RUN_SOURCE.format(run_id=context.run_id)) as conn:
            try:
                with conn.transaction():  # every source or none
                    for key in config.db_config_keys:
                        states[key] = (
                            open_by_hand(conn, key, reason, config.cooldown_s)
                            if opens
                            else close_by_hand(conn, key, reason)
                        )
            except ValueError as exc:
                raise Failure(description=f"{verb} circuit: {exc}; nothing changed") from None
        for key, state in states.items():
            context.log.info(f"source {key}: circuit {state}")
        return Output(None, metadata={"sources": ", ".join(states), "state": "open" if opens else "closed"})

    @job(
        name=f"dataloader_{verb}_circuit",
        description=description,
        tags={"dataloader/action": f"{verb}_circuit"},
    )
    def circuit_job() -> None:
        change_circuits()

    return circuit_job


CIRCUIT_JOBS: list[JobDefinition] = [build_circuit_job(True), build_circuit_job(False)]
