"""Unique primary keys carried from commit to commit, so a load's key check needs no table scan.

A MERGE on the primary keys of rows that hold each key once (and no NULL key) cannot repeat a key
in a table that held each key once before it; removing rows or stamping their deletion time cannot
either. So a commit of ours may claim unique keys when it was made onto a version whose keys were
unique — shown by that version's own claim, or by a scan — and records the claim in its commit
metadata with the version it was made onto. A claim holds for the table as it is now when:

- it names the same key columns,
- its commit sits directly on the version it names (no other writer committed in between), and
- every commit after it changed no data (OPTIMIZE compaction/z-order, VACUUM).

Any other commit since — a foreign write, an unclaimed append, a full reload, a RESTORE — ends the
chain, and the check scans the keys again.

An append claims too, when its rows hold each key once and all sit above the table's keys. That is
only known once the rows have gone past, after the claim is already in the commit being written, so
the append checks as it streams and stops the write before it commits when the order breaks; it is
then written again without a claim, and marked `dataloader.unique_keys_refused` so that later
appends of that table do not try again (see append_claim.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from deltalake import DeltaTable

UNIQUE_KEYS = "dataloader.unique_keys"
UNIQUE_KEYS_BASE = "dataloader.unique_keys_base"
UNIQUE_KEYS_REFUSED = "dataloader.unique_keys_refused"
# delta-rs operations that rewrite or remove files without changing the table's rows.
NO_DATA_CHANGE = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})
# A claim sits behind at most a few maintenance commits; further back, scanning is as cheap.
CLAIM_HISTORY_SCAN = 10


def claim_metadata(
    keys: Sequence[str] | None, base: int | None, refused: str | None = None
) -> dict[str, str]:
    """Commit metadata of a unique-keys claim, or of a refusal to try one (empty when neither)."""
    metadata = {UNIQUE_KEYS_REFUSED: refused} if refused else {}
    if keys is None or base is None:
        return metadata
    return {**metadata, UNIQUE_KEYS: json.dumps(list(keys)), UNIQUE_KEYS_BASE: str(base)}


def newest_data_commit(table: DeltaTable) -> dict[str, Any] | None:
    """The newest commit that changed the table's rows (maintenance skipped), or None when none is
    among the last CLAIM_HISTORY_SCAN commits."""
    # The newest commit alone first: one log read (one request on object storage) in the usual case.
    for limit in (1, CLAIM_HISTORY_SCAN):
        commits = table.history(limit)
        for commit in commits:
            if commit.get("operation") not in NO_DATA_CHANGE:
                return commit
        if len(commits) < limit:
            return None
    return None


def proven_unique_version(table: DeltaTable, keys: Sequence[str]) -> int | None:
    """The version of the claim that covers `table` as it is now for `keys`, or None."""
    commit = newest_data_commit(table)
    return claimed_version(commit, keys) if commit is not None else None


def claim_refusal(commit: dict[str, Any] | None) -> str | None:
    """Why appends to this table no longer try a claim (the commit's refusal marker), or None."""
    return commit.get(UNIQUE_KEYS_REFUSED) if commit is not None else None


def claimed_version(commit: dict[str, Any], keys: Sequence[str]) -> int | None:
    """The commit's version when it claims unique `keys` directly onto its base, else None."""
    version = commit.get("version")
    claimed, base = commit.get(UNIQUE_KEYS), commit.get(UNIQUE_KEYS_BASE)
    if version is None or claimed is None or base is None:
        return None
    try:
        if json.loads(claimed) != list(keys) or int(base) != int(version) - 1:
            return None
    except (TypeError, ValueError):
        return None
    return int(version)
