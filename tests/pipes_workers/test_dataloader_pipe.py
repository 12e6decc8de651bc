"""The Pipes entrypoint: a real Dagster Pipes subprocess run, and the plain main()."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from dagster import PipesSubprocessClient, asset, materialize
from loadtest_support import SourceDB, assert_same_rows, make_rows

from pipes_workers.dataloader_pipe import main
from pipes_workers.errors import ConfigurationError, PermanentLoadError

ROOT = Path(__file__).resolve().parents[2]


def test_pipes_run_reports_the_materialisation(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 4)))
    request = pg_source.request(table, "incremental", lake_root)

    @asset
    def loaded(context, pipes: PipesSubprocessClient):
        return pipes.run(
            command=[sys.executable, "-m", "pipes_workers.dataloader_pipe"],
            context=context,
            extras={"load_request": request.to_dict()},
        ).get_materialize_result()

    result = materialize([loaded], resources={"pipes": PipesSubprocessClient(cwd=str(ROOT))})
    assert result.success
    (event,) = result.get_asset_materialization_events()
    materialization = event.materialization
    assert materialization.metadata["rows_processed"].value == 3
    assert materialization.metadata["strategy"].value == "incremental"
    assert materialization.tags["dagster/data_version"] == "0"
    assert_same_rows(pg_source, table, request)


def test_main_prefixes_errors_with_the_class_name(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    data = pg_source.request(table, "incremental", lake_root, incremental_column="missing col").to_dict()
    with pytest.raises(PermanentLoadError, match=r"^PermanentLoadError: .*'missing col'"):
        main(data)
    with pytest.raises(ConfigurationError, match=r"^ConfigurationError: .*unknown load request field"):
        main({**data, "bogus": 1})
