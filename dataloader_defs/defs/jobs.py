"""Jobs the sensors target: dataloader_retry_analysis and landing_table_git_job. Loads run as
Dagster's implicit asset job over the tables a run selects (see master_sensor.py)."""

from dagster import (
    Config,
    Failure,
    OpExecutionContext,
    job,
    op,
)

from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings
from dataloader_defs.defs.settings import env_int


class RetryAnalysisConfig(Config):
    """Which failed row to analyse."""

    control_key: str


@op
def analyse_failure(
    context: OpExecutionContext, config: RetryAnalysisConfig, control_db: ControlDatabase
) -> str:
    """Classify the row's last error: transient -> retry with backoff; permanent/unknown -> manual review."""
    from control_db import queries
    from dataloader_defs.retry_rules import backoff, classify

    with control_db.connect("dagster-retry") as conn:
        row = queries.get_control_row(conn, config.control_key)
        if row is None:
            raise Failure(f"{config.control_key}: no such control row")
        if row.last_status != "Failed":
            context.log.info(f"{config.control_key}: status is {row.last_status!r}, nothing to analyse")
            return "skipped"
        verdict = classify(row.last_error_kind, row.last_error_code)
        if verdict.retry:
            delay = backoff(
                row.retry_count,
                base_s=env_int("DATALOADER_RETRY_BASE_S"),
                cap_s=env_int("DATALOADER_RETRY_CAP_S"),
            )
            # reset_for_retry writes "retry <n> of <max> in <s>s: <reason>": the reason alone goes in.
            reason = verdict.reason
            done = queries.reset_for_retry(conn, config.control_key, backoff=delay, reason=reason)
            decision = "retry" if done else "retry refused (row changed or max_retries reached)"
        else:
            reason = f"manual review ({verdict.verdict}): {verdict.reason}"
            done = queries.mark_manual_review(conn, config.control_key, reason=reason)
            decision = "manual_review" if done else "manual review refused (row changed)"
    context.log.info(f"{config.control_key}: {decision}: {reason}")
    context.add_output_metadata({"decision": decision, "verdict": verdict.verdict, "reason": reason})
    return decision


@job(description="Classifies a Failed row's last error and schedules a retry or manual review.")
def dataloader_retry_analysis() -> None:
    analyse_failure()


class LandingConfig(Config):
    """Which control rows to write staging models for (empty: every landing_pending row)."""

    control_keys: list[str] = []


@op
def write_staging_models(
    context: OpExecutionContext,
    config: LandingConfig,
    control_db: ControlDatabase,
    settings: DataloaderSettings,
) -> list[str]:
    """Write schema + staging SQL per newly landed table, commit when the models dir is a git repo."""
    from control_db import queries
    from dataloader_defs.lake import arrow_schema, open_table
    from dataloader_defs.staging_models import commit_models, write_model

    models_dir = settings.resolved_models_dir()
    models_dir.mkdir(parents=True, exist_ok=True)
    with control_db.connect("dagster-landing") as conn:
        pending = queries.landing_pending(conn)
        if config.control_keys:
            pending = [r for r in pending if r.control_key in set(config.control_keys)]
        written = []
        for row in pending:
            table = open_table(settings.lake_root, row.destination_table, settings.lake_storage.options())
            if table is None:
                context.log.warning(
                    f"{row.control_key}: Delta table {row.destination_table} not found; skipped"
                )
                continue
            written.append(
                write_model(models_dir, row.control_key, row.destination_table, arrow_schema(table))
            )
        commit = commit_models(models_dir, written)
        for model in written:
            queries.mark_staging_processed(conn, model.control_key)
    context.log.info(
        f"wrote {len(written)} staging model(s) to {models_dir}" + (f", commit {commit}" if commit else "")
    )
    context.add_output_metadata(
        {
            "models": ", ".join(m.model_name for m in written) or "-",
            "commit": commit or "-",
            "models_dir": str(models_dir),
        }
    )
    return [m.control_key for m in written]


@job(description="Writes staging models (schema YAML + staging SQL) for newly landed tables.")
def landing_table_git_job() -> None:
    write_staging_models()
