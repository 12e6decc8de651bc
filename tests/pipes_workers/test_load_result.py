"""LoadResult: the typed worker contract round-trips through its Pipes message form."""

from __future__ import annotations

import json

import pytest

from dataloader_contract.result import (
    CheckOutcome,
    LoadFailure,
    LoadResult,
    SourceColumnFact,
    read_load_result,
)


def test_round_trip_through_the_pipes_message() -> None:
    result = LoadResult(
        control_key="erp.public.orders",
        strategy="chunked_backfill",
        rows_read=10,
        rows_written=10,
        chunks_done=2,
        chunks_total=2,
        next_load_strategy="incremental",
        source_row_count=10,
        source_row_count_method="before the read",
        source_columns=(SourceColumnFact("id", "bigint", "int64"),),
        checks=(CheckOutcome("primary_key_unique", True, "ERROR", "keys", {"rows": 10}),),
    )
    message = json.loads(json.dumps(result.to_message()))  # what travels over Pipes
    assert read_load_result([{"other": 1}, message]) == result
    assert read_load_result([]) is None


def test_failures_and_status_messages() -> None:
    failure = LoadFailure(kind="transient", message="could not connect", code="08006")
    failed = LoadResult(control_key="k", strategy="full", error=failure)
    assert not failed.succeeded and failed.status_message == "could not connect"
    assert LoadResult.from_json(failed.to_json()) == failed
    with pytest.raises(ValueError, match="kind"):
        LoadFailure(kind="sometimes", message="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown field"):
        LoadResult.from_json({**failed.to_json(), "surprise": 1})
    skipped = LoadResult(
        control_key="k",
        strategy="check_and_load",
        skipped=True,
        checks=(CheckOutcome("schema_drift", False, "WARN", "drift"),),
    )
    assert skipped.status_message == "skipped: no new rows; checks failed: schema_drift"
