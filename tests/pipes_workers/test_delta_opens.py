"""How often one load opens its Delta table: each `DeltaTable` construction reads the table's log
(on `s3://` a round of LIST/GET requests), so a load opens it once and refreshes that one object
after its own commits (pipes_workers/lake/session.py).

Counted by wrapping the real `DeltaTable.__init__` (every construction, whoever makes it, including
deltalake's own `write_deltalake` when handed a URI). A construction that finds no table (the probe
of a first load) is counted as an attempt, not as an open.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from loadtest_support import SourceDB, after_success, make_rows

from dataloader_contract.request import LoadRequest
from dataloader_contract.result import LoadResult
from pipes_workers.load import run_load


@dataclass
class Opens:
    """Constructions of DeltaTable: `attempts` all of them, `opened` those that found a table."""

    attempts: int = 0
    opened: int = 0


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[Opens]:
    counted = Opens()
    real_init = DeltaTable.__init__

    def counting_init(self: DeltaTable, *args: Any, **kwargs: Any) -> None:
        counted.attempts += 1
        real_init(self, *args, **kwargs)
        counted.opened += 1

    monkeypatch.setattr(DeltaTable, "__init__", counting_init)
    yield counted


def _load(request: LoadRequest, opens: Opens) -> tuple[LoadResult, Opens]:
    opens.attempts = opens.opened = 0
    result = run_load(request)
    assert result.committed or result.skipped or result.empty
    return result, dataclasses.replace(opens)


STRATEGY_FIELDS: dict[str, dict[str, Any]] = {
    "full": {},
    "incremental": {},
    "check_and_load": {},
    "append_only": {},
    "rolling": {"rolling_column": "updated_at", "rolling_window_days": 7, "incremental_column": None},
}


@pytest.mark.parametrize("strategy", sorted(STRATEGY_FIELDS))
def test_one_load_opens_the_table_at_most_twice(
    strategy: str, pg_source: SourceDB, lake_root: Path, opens: Opens
) -> None:
    table = pg_source.events_table()
    now = datetime.now(UTC)
    pg_source.insert(table, make_rows(range(1, 21), base=now - timedelta(days=1)))
    request = pg_source.request(table, strategy, lake_root, cron="0 * * * *", **STRATEGY_FIELDS[strategy])

    first, created = _load(request, opens)
    print(f"{strategy}: first load {created}")
    assert first.committed and first.checks and not first.failed_checks
    # A first load: the state probe and deltalake's own probe in write_deltalake find no table.
    assert created.opened <= 2, created
    assert created.attempts <= 3, created

    pg_source.insert(table, make_rows(range(21, 31), base=now - timedelta(hours=1)))
    second, again = _load(after_success(request, first), opens)
    print(f"{strategy}: next load {again}")
    assert second.committed and not second.failed_checks
    assert again.attempts <= 2, again


def test_backfill_opens_at_most_once_per_chunk(pg_source: SourceDB, lake_root: Path, opens: Opens) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 41)))
    request = pg_source.request(
        table, "chunked_backfill", lake_root, cron="0 * * * *", chunk_column="id", chunk_size=10
    )

    result, counted = _load(request, opens)
    assert result.chunks_total == 4 and result.chunks_done == 4 and not result.failed_checks
    # The first chunk creates the table (two probes find none), the others append onto it.
    assert counted.opened <= 1 + result.chunks_total, counted
    assert counted.attempts <= 3 + result.chunks_total, counted
    print(f"chunked_backfill ({result.chunks_total} chunks): {counted}")
