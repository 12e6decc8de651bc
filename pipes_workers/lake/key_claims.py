"""The unique-keys claims a write may make, decided from the session's open table (the rules are in
unique_claim.py and append_claim.py): a MERGE of unique keys onto unique keys, an append above the
table's keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from pipes_workers.lake import table_facts
from pipes_workers.lake.append_claim import AppendClaim, claimable_key_type
from pipes_workers.lake.key_uniqueness import tally_keys
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.table_facts import arrow_schema, upper_bound
from pipes_workers.lake.unique_claim import (
    claim_refusal,
    claimed_version,
    newest_data_commit,
    proven_unique_version,
)


def claim_after_merge(
    table: DeltaTable, rows: pa.Table, primary_keys: Sequence[str], marker: CommitMarker
) -> CommitMarker:
    """`marker` claiming unique keys after a MERGE of `rows` when the claim holds: `rows` hold
    each key once and no NULL key, and the table's keys are unique now — by the claim of its
    newest data commit, or else by a scan of its keys (what the check after the merge would
    otherwise scan, and once done, later merges need none)."""
    keys = tuple(primary_keys)
    if not tally_keys(keys, rows).unique:
        return marker
    base = table.version()
    proven = proven_unique_version(table, keys) is not None
    if not proven and not tally_keys(keys, table_facts.stored_keys(table, keys)).unique:
        return marker
    return replace(marker, unique_keys=keys, unique_keys_base=base)


def append_claim(
    table: DeltaTable | None, primary_keys: Sequence[str]
) -> tuple[AppendClaim | None, str | None]:
    """The unique-keys claim an append onto `table` as it is now may try, and an earlier append's
    refusal to carry forward (one history read). No claim without a table or a primary key, with
    a first key column that is no integer, keys already not unique, a refusal, or an upper bound
    the file statistics do not give. When no claim covers the table, its keys are scanned once
    here (the check after the append would scan them)."""
    keys = tuple(primary_keys)
    if not keys or table is None:
        return None, None
    commit = newest_data_commit(table)
    refused = claim_refusal(commit)
    schema = arrow_schema(table)
    if refused is not None or any(schema.get_field_index(key) < 0 for key in keys):
        return None, refused
    if not claimable_key_type(schema.field(keys[0]).type):
        return None, None
    if commit is not None and claimed_version(commit, keys) is not None:
        above, known = upper_bound(table, keys[0])
        if not known:
            return None, None
    else:
        stored = table_facts.stored_keys(table, keys)
        if not tally_keys(keys, stored).unique:
            return None, None
        above = pc.max(stored.column(keys[0])).as_py() if stored.num_rows else None
    return AppendClaim(keys, table.version(), above), None
