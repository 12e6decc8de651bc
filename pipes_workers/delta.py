"""The Delta layer's names as they were before it split by job into `pipes_workers/lake/`: kept so
callers outside the worker (tests, benchmarks) need not change. New code imports from `lake/`.

- lake/session.py: DeltaSession, a load's one open table (DeltaDestination re-reads on every call)
- lake/markers.py: CommitMarker, DeltaState, reading state back from commit markers
- lake/writes.py: overwrite, append, merge, delete rows
- lake/key_claims.py: unique-keys claims of merges and appends
- lake/maintenance.py: compact, z-order, vacuum
- lake/schema_conform.py: the stored schema and conforming rows to the table
"""

from __future__ import annotations

from deltalake import DeltaTable

from pipes_workers.lake.maintenance import TableFiles, VacuumOutcome
from pipes_workers.lake.markers import HISTORY_SCAN, META_PREFIX, CommitMarker, DeltaState
from pipes_workers.lake.schema_conform import (
    DELETED_AT,
    DELETED_AT_TYPE,
    Rows,
    conformed_schema,
    quote_column,
    storable_schema,
)
from pipes_workers.lake.session import DeltaSession
from pipes_workers.lake.table_facts import stored_keys
from pipes_workers.lake.writes import WriteOutcome


class DeltaDestination(DeltaSession):
    """A DeltaSession that reads the table afresh on every call, as the destination did before
    the load session: for callers that watch a table other writers change between calls (tests).
    A load uses DeltaSession, which opens its table once."""

    def table(self) -> DeltaTable | None:
        """The table as it is now (opened anew)."""
        self._table = self._open()
        return self._table


__all__ = [
    "DELETED_AT",
    "DELETED_AT_TYPE",
    "HISTORY_SCAN",
    "META_PREFIX",
    "CommitMarker",
    "DeltaDestination",
    "DeltaSession",
    "DeltaState",
    "Rows",
    "TableFiles",
    "VacuumOutcome",
    "WriteOutcome",
    "conformed_schema",
    "quote_column",
    "storable_schema",
    "stored_keys",
]
