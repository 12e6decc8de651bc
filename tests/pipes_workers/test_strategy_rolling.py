"""rolling: the destination mirrors the source's last N days; an empty window never empties it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from loadtest_support import SourceDB, destination_rows, make_rows

from pipes_workers.load import run_load

DAYS = 7


def window_rows(source: SourceDB, table: str) -> list[dict]:
    cutoff = datetime.combine(datetime.now(UTC).date() - timedelta(days=DAYS), datetime.min.time(), UTC)
    return [
        r for r in source.rows(table) if r["updated_at"] is not None and _aware(r["updated_at"]) >= cutoff
    ]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_rolling_window(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    now = datetime.now(UTC)
    source.insert(table, make_rows(range(1, 4), base=now - timedelta(days=40)))  # outside the window
    source.insert(table, make_rows(range(4, 9), base=now - timedelta(days=2)))  # inside
    request = source.request(
        table,
        "rolling",
        lake_root,
        rolling_column="updated_at",
        rolling_window_days=DAYS,
        incremental_column=None,
    )
    first = run_load(request)
    assert first.rows_read == 5
    assert destination_rows(request) == window_rows(source, table)

    quoted = source.quote(table)
    source.execute(f"DELETE FROM {quoted} WHERE id = 5")  # deleted inside the window
    source.execute(f"UPDATE {quoted} SET amount = 3.33 WHERE id = 6")
    source.execute(
        f"UPDATE {quoted} SET updated_at = %s WHERE id = 7", (source.ts(now - timedelta(days=30)),)
    )
    source.insert(table, make_rows(range(9, 10), base=now - timedelta(days=1)))
    second = run_load(request)
    assert second.rows_read == 4
    assert destination_rows(request) == window_rows(source, table)
    assert [r["id"] for r in destination_rows(request)] == [4, 6, 8, 9]

    again = run_load(request)  # identical re-run changes nothing
    assert destination_rows(request) == window_rows(source, table)
    assert again.rows_read == 4

    source.execute(f"UPDATE {quoted} SET updated_at = %s", (source.ts(now - timedelta(days=60)),))
    empty = run_load(request)  # an empty source window says nothing: the destination keeps its rows
    assert empty.rows_read == 0 and empty.delta_version == again.delta_version
    assert [r["id"] for r in destination_rows(request)] == [4, 6, 8, 9]
