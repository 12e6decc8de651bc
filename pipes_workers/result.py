"""The result of one load, and its materialisation-metadata form (keys fixed by docs/CONTRACTS.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class LoadResult:
    """What a load did. `to_metadata()` has exactly the contract's keys."""

    strategy: str
    rows_processed: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    rows_per_second: float = 0.0
    watermark_before: str | None = None
    watermark_after: str | None = None
    delta_version: int | None = None
    skipped: bool = False
    next_load_strategy: str | None = None
    load_full_done: bool = False
    null_incremental_rows: int = 0
    chunks_done: int | None = None
    chunks_total: int | None = None
    rows_deleted: int | None = None
    deletes_note: str | None = None

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON-able values under the contract's keys."""
        return asdict(self)

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> LoadResult:
        """Rebuild from `to_metadata()` output; values wrapped by Dagster (`.value`) are unwrapped."""
        known = {f.name for f in fields(cls)}
        values = {k: getattr(v, "value", v) for k, v in metadata.items() if k in known}
        return cls(**values)
