"""The seven load strategies, registered by name; `get_strategy(name)` returns one.

Policies every strategy keeps (see each module for its own):
- One Delta commit per load (per chunk for chunked_backfill), carrying the app transaction
  (control_key, previous version + 1) and the new watermark; an empty read commits nothing and keeps
  the watermark. The Delta table's watermark wins when it is ahead of the control row.
- Watermarks are the source MAX taken just before the read — or, for an incremental/check_and_load
  read small enough to merge from memory, the MAX over exactly the rows read — capped at the load
  start plus DATALOADER_WATERMARK_CAP_MARGIN_S (default 0 s; the capping is logged). incremental and
  check_and_load read without an upper bound (MERGE makes re-reads harmless); append_only and a
  load_full of it read up to the watermark they store, so no row is appended twice.
- NULL incremental values: incremental/check_and_load re-read NULL rows on every load (MERGE keeps it
  idempotent; a check_and_load COUNT does not look at them); append_only loads them on the first
  load only, with a warning and `null_incremental_rows`; a backfill puts them in chunk 1.
- Timestamp watermarks are ISO 8601 text with microseconds (with `+00:00` for time-zone-aware
  columns); naive timestamp columns are capped as if they held UTC.
- load_full runs `full` (overwrite, watermark = capped source MAX) for every strategy except
  chunked_backfill, which restarts its plan, and cdc, which takes a new snapshot (strategies/cdc.py).
"""

from pipes_workers.strategies import (  # noqa: F401  (importing registers each strategy)
    append_only,
    cdc,
    check_and_load,
    chunked_backfill,
    full,
    incremental,
    rolling,
)
from pipes_workers.strategies.base import STRATEGIES, LoadContext, LoadStrategy, get_strategy

__all__ = ["STRATEGIES", "LoadContext", "LoadStrategy", "get_strategy"]
