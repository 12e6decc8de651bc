"""The code location loads, with every sensor running by default."""

from __future__ import annotations

from dagster import DefaultSensorStatus, Definitions


def test_definitions_load(monkeypatch):
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", "postgresql://postgres@127.0.0.1:5432/none")
    monkeypatch.setenv("DATALOADER_LAKE_ROOT", "/tmp/lake")
    from dataloader_defs.definitions import defs

    assert isinstance(defs, Definitions)
    repo = defs.get_repository_def()
    assert repo.has_job("dataloader_retry_analysis")
    assert repo.has_job("landing_table_git_job")
    assert repo.has_job("dataloader_maintenance_job")
    sensors = {s.name: s for s in repo.sensor_defs}
    assert set(sensors) == {
        "master_sensor",
        "longqueued_monitor",
        "longrunning_monitor",
        "failed_monitor",
        "landing_table_monitor",
        "reconcile_monitor",
        "load_run_failure_sensor",
        "load_run_canceled_sensor",
        "maintenance_sensor",
    }
    assert all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors.values())
    assert sensors["master_sensor"].minimum_interval_seconds == 60
    checks = {key.name for key in repo.asset_graph.asset_check_keys}
    assert checks == {
        "row_count_reconciliation",
        "primary_key_unique",
        "freshness_against_cron",
        "schema_drift",
    }
