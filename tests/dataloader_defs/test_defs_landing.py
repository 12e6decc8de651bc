"""landing_table_git_job writes a schema YAML and a staging SQL per landed table and commits them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow as pa
import yaml
from dagster import DagsterInstance
from defs_support import add_control, row, start_by_hand
from deltalake import write_deltalake

from control_db import queries
from dataloader_contract.result import LoadResult
from dataloader_defs.defs.jobs import landing_table_git_job
from dataloader_defs.defs.resources import DataloaderSettings
from dataloader_defs.staging_models import model_name


def _land(conn, key: str, destination: str, lake_root: Path, table: pa.Table) -> None:
    add_control(conn, key, destination_table=destination)
    write_deltalake(str(lake_root / destination), table)
    history_id = start_by_hand(conn, key, f"run-{key}")
    queries.mark_succeeded(
        conn,
        key,
        history_id=history_id,
        run_id=f"run-{key}",
        result=LoadResult(
            control_key=key,
            strategy="incremental",
            rows_read=table.num_rows,
            watermark_before=None,
            watermark_after=None,
        ),
    )


def _run(instance, control_db, lake_root: Path, models_dir: Path):
    return landing_table_git_job.execute_in_process(
        resources={
            "control_db": control_db,
            "settings": DataloaderSettings(lake_root=str(lake_root), models_dir=str(models_dir)),
        },
        instance=instance,
    )


def test_models_written_and_committed(
    control_conn, source, control_db, instance: DagsterInstance, lake_root, tmp_path
):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    subprocess.run(["git", "init", "-q", str(models_dir)], check=True)
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "Customer Name": ["a", 'b"c'],
            "amount": pa.array([1, 2], pa.decimal128(10, 2)),
            "updated_at": pa.array([1, 2], pa.timestamp("us", "UTC")),
        }
    )
    _land(control_conn, "erp.public.orders", "bronze/erp/orders", lake_root, table)

    assert _run(instance, control_db, lake_root, models_dir).success

    name = model_name("bronze/erp/orders")
    assert name == "stg_erp__orders"
    schema_file = models_dir / "staging" / "erp" / f"{name}.yml"
    sql_file = models_dir / "staging" / "erp" / f"{name}.sql"
    document = yaml.safe_load(schema_file.read_text())
    columns = {c["name"]: c["data_type"] for c in document["models"][0]["columns"]}
    assert columns == {
        "id": "int64",
        "Customer Name": "string",
        "amount": "decimal128(10, 2)",
        "updated_at": "timestamp[us, tz=UTC]",
    }
    sql = sql_file.read_text()
    assert '"Customer Name"' in sql and '"updated_at"' in sql
    assert 'from "bronze"."erp"."orders"' in sql
    log = subprocess.run(
        ["git", "-C", str(models_dir), "log", "--format=%an|%s", "--name-only"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DataLoader|Add staging models for erp.public.orders" in log
    assert f"staging/erp/{name}.sql" in log
    assert row(control_conn, "erp.public.orders").staging_model_processed
    # Nothing pending any more: a second run writes and commits nothing.
    assert _run(instance, control_db, lake_root, models_dir).success
    count = subprocess.run(
        ["git", "-C", str(models_dir), "rev-list", "--count", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert count == "1"


def test_models_written_without_git(control_conn, source, control_db, instance, lake_root, tmp_path):
    models_dir = tmp_path / "plain_models"
    _land(control_conn, "crm.public.accounts", "bronze/crm/accounts", lake_root, pa.table({"id": [1]}))
    assert _run(instance, control_db, lake_root, models_dir).success
    assert (models_dir / "staging" / "crm" / "stg_crm__accounts.sql").exists()
    assert not (models_dir / ".git").exists()
    assert row(control_conn, "crm.public.accounts").staging_model_processed
