"""Exactly-once markers: what each load commit records, and the table's state read back from them.

Every commit carries an application transaction (app id = control_key, version N) and the load's
watermark in its commit metadata (`dataloader.*` keys), so a worker can read back what the last
committed load did even when the orchestrator never heard of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from deltalake import CommitProperties, DeltaTable, Transaction

from pipes_workers.lake.table_facts import arrow_schema
from pipes_workers.lake.unique_claim import claim_metadata

HISTORY_SCAN = 100
META_PREFIX = "dataloader."


@dataclass(frozen=True)
class CommitMarker:
    """What one load commit records: the app transaction and the `dataloader.*` commit metadata."""

    control_key: str
    txn_version: int
    strategy: str
    run_id: str | None = None
    watermark: str | None = None
    chunk: dict[str, Any] | None = None
    operation: str | None = None  # what the commit did besides loading, e.g. `hard_delete`
    # Set when the table after this commit is known to hold no duplicate or NULL `unique_keys`:
    # the commit was made onto version `unique_keys_base`, whose keys were unique (unique_claim.py).
    unique_keys: tuple[str, ...] | None = None
    unique_keys_base: int | None = None
    # Set on appends to a table whose appended keys once broke an append's claim: why none is tried.
    unique_keys_refused: str | None = None

    def commit_properties(self) -> CommitProperties:
        """deltalake CommitProperties carrying the txn and the metadata."""
        metadata = {
            **claim_metadata(self.unique_keys, self.unique_keys_base, self.unique_keys_refused),
            f"{META_PREFIX}operation": self.operation,
            f"{META_PREFIX}watermark": self.watermark,
            f"{META_PREFIX}control_key": self.control_key,
            f"{META_PREFIX}run_id": self.run_id,
            f"{META_PREFIX}strategy": self.strategy,
            f"{META_PREFIX}chunk": json.dumps(self.chunk) if self.chunk is not None else None,
        }
        return CommitProperties(
            custom_metadata=metadata,
            app_transactions=[Transaction(app_id=self.control_key, version=self.txn_version)],
        )


@dataclass(frozen=True)
class DeltaState:
    """The destination as a load finds it. `last_*` come from the newest commit of this control key."""

    exists: bool
    version: int | None = None
    txn_version: int | None = None
    last_watermark: str | None = None
    last_strategy: str | None = None
    last_run_id: str | None = None
    last_chunk: dict[str, Any] | None = None
    schema: Any = None  # pa.Schema | None
    has_load_commit: bool = False

    @property
    def next_txn_version(self) -> int:
        """The app transaction version the next commit uses."""
        return (self.txn_version or 0) + 1


def read_state(table: DeltaTable | None, control_key: str) -> DeltaState:
    """The table version, the app txn version of `control_key` and its newest commit's metadata
    (DeltaState(exists=False) without a table)."""
    if table is None:
        return DeltaState(exists=False)
    commit = newest_load_commit(table, control_key)
    chunk = commit.get(f"{META_PREFIX}chunk") if commit else None
    return DeltaState(
        exists=True,
        version=table.version(),
        txn_version=table.transaction_version(control_key),
        last_watermark=commit.get(f"{META_PREFIX}watermark") if commit else None,
        last_strategy=commit.get(f"{META_PREFIX}strategy") if commit else None,
        last_run_id=commit.get(f"{META_PREFIX}run_id") if commit else None,
        last_chunk=json.loads(chunk) if isinstance(chunk, str) else chunk,
        schema=arrow_schema(table),
        has_load_commit=commit is not None,
    )


def newest_load_commit(table: DeltaTable, control_key: str) -> dict[str, Any] | None:
    """The newest of the last HISTORY_SCAN commits made by a load of `control_key`, or None."""
    for commit in table.history(HISTORY_SCAN):
        if commit.get(f"{META_PREFIX}control_key") == control_key:
            return commit
    return None
