"""The Pipes entrypoint: a real Dagster Pipes subprocess run, and the plain main()."""

from __future__ import annotations

import sys
from pathlib import Path

from dagster import AssetCheckSpec, MaterializeResult, PipesSubprocessClient, asset, materialize
from loadtest_support import SourceDB, assert_same_rows, make_rows

from dataloader_contract.result import CHECK_SPECS, LoadResult, read_load_result
from pipes_workers.dataloader_pipe import main

ROOT = Path(__file__).resolve().parents[2]


def test_pipes_run_reports_result_materialisation_and_checks(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 4)))
    request = pg_source.request(table, "incremental", lake_root, cron="*/5 * * * *")
    received: list[LoadResult] = []

    @asset(check_specs=[AssetCheckSpec(spec.name, asset="loaded") for spec in CHECK_SPECS])
    def loaded(context, pipes: PipesSubprocessClient) -> MaterializeResult:
        invocation = pipes.run(
            command=[sys.executable, "-m", "pipes_workers.dataloader_pipe"],
            context=context,
            extras={"load_request": request.to_dict()},
        )
        result = read_load_result(invocation.get_custom_messages())
        assert result is not None
        received.append(result)
        return invocation.get_materialize_result(implicit_materialization=False)

    run = materialize([loaded], resources={"pipes": PipesSubprocessClient(cwd=str(ROOT))})
    assert run.success
    (result,) = received
    assert result.succeeded and result.rows_read == 3 and result.source_row_count == 3
    assert result.source_row_count_method == "before the read"
    assert [c.name for c in result.source_columns][0] == "id" and len(result.source_columns) > 2
    (event,) = run.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["rows_read"].value == 3 and meta["source_row_count"].value == 3
    assert meta["dagster/row_count"].value == 3
    assert type(meta["watermark_after"]).__name__ == "TimestampMetadataValue"
    assert "watermark_before" not in meta  # a first load has none: fields that do not apply are left out
    assert event.materialization.tags["dagster/data_version"] == "0"
    evaluations = {e.check_name: e for e in run.get_asset_check_evaluations()}
    assert set(evaluations) == {spec.name for spec in CHECK_SPECS}
    failed = {name: e.metadata for name, e in evaluations.items() if not e.passed}
    assert failed == {}, failed
    assert_same_rows(pg_source, table, request)


def test_main_reports_failures_once_with_kind_and_code(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    data = pg_source.request(table, "incremental", lake_root, incremental_column="missing col").to_dict()
    failed = main(data)
    assert failed.error is not None and failed.error.kind == "permanent"
    assert "'missing col'" in failed.error.message and not failed.error.message.startswith(
        "PermanentLoadError"
    )
    bad = main({**data, "bogus": 1})
    assert bad.error is not None and bad.error.kind == "configuration"
    assert bad.error.message.count("unknown load request field") == 1
    missing = main(pg_source.request("no_such_table", "full", lake_root).to_dict())
    assert missing.error is not None and missing.error.code == "42P01"
    assert LoadResult.from_json(missing.to_json()) == missing
