"""LoadResult metadata has exactly the contract's keys and round-trips."""

from __future__ import annotations

from pipes_workers.result import LoadResult

CONTRACT_KEYS = {
    "rows_processed",
    "bytes_written",
    "seconds",
    "rows_per_second",
    "watermark_before",
    "watermark_after",
    "delta_version",
    "strategy",
    "skipped",
    "next_load_strategy",
    "load_full_done",
    "null_incremental_rows",
    "chunks_done",
    "chunks_total",
    "rows_deleted",
    "deletes_note",
}


def test_metadata_keys_and_round_trip() -> None:
    result = LoadResult(
        strategy="chunked_backfill",
        rows_processed=10,
        chunks_done=2,
        chunks_total=2,
        next_load_strategy="incremental",
    )
    metadata = result.to_metadata()
    assert set(metadata) == CONTRACT_KEYS
    assert LoadResult.from_metadata(metadata) == result
