"""The four asset checks, evaluated by the worker right after a load, from what it measured itself.

- row count reconciliation (ERROR): `full` and `rolling` read the whole source (or window) in one
  statement, so the rows read are the source count in the read's own snapshot and the destination
  must equal it. The other strategies never propagate deletes and read only changes, so the
  destination must hold at least the source count taken just before the read.
- primary-key uniqueness (ERROR, blocking): no duplicate and no NULL keys in Delta. When a load
  replaced the table with rows whose keys arrived strictly increasing (lake/key_order.py), that is the
  proof and the table is not scanned again; otherwise the Delta table's key columns are scanned.
- freshness (WARN): the table is current as of its newest Delta commit or, later, of a load that read
  the source and found nothing new to write (it makes no commit, yet the table then matched its
  source); that time is younger than two cron periods plus a grace.
- schema drift (WARN): source columns and Delta columns agree by name and stored type.

Each check returns a CheckOutcome whose metadata a person can read; a check that cannot be evaluated
fails with the reason, never passes silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dataloader_contract.result import (
    CDC_LAG,
    FRESHNESS,
    PK_UNIQUE,
    ROW_COUNT,
    SCHEMA_DRIFT,
    CheckOutcome,
    LoadResult,
)
from pipes_workers.cdc.lag import lag_verdict
from pipes_workers.check_freshness import check_freshness, outcome
from pipes_workers.lake.history import HISTORY_COLUMNS
from pipes_workers.lake.key_uniqueness import tally_keys
from pipes_workers.lake.schema_conform import same_stored_type, storable_schema
from pipes_workers.lake.session import DeltaSession
from pipes_workers.sources.base import SourceColumn, arrow_schema
from pipes_workers.watermark import parse_watermark

if TYPE_CHECKING:
    from pipes_workers.strategies.base import LoadContext

# Column-name prefixes a writer may add for bookkeeping; never reported as drift (nor is HISTORY_COLUMNS).
TECHNICAL_PREFIXES = ("_dataloader", "__")
EXACT_STRATEGIES = ("full", "rolling")


def check_cdc_lag(lag_bytes: int | None) -> CheckOutcome:
    """The log a cdc table's capture retains, against the WARN and ERROR thresholds (cdc/lag.py)."""
    passed, severity, metadata = lag_verdict(lag_bytes)
    return outcome(CDC_LAG, passed, severity, metadata)


def check_row_count(
    strategy: str,
    source_rows: int | None,
    destination_rows: int,
    *,
    method: str | None,
    rolling_cutoff: str | None = None,
) -> CheckOutcome:
    """Reconcile the destination count with the source count by strategy semantics."""
    if source_rows is None:
        return outcome(ROW_COUNT, False, "WARN", {"reason": "the worker took no source row count"})
    exact = strategy in EXACT_STRATEGIES
    passed = destination_rows == source_rows if exact else destination_rows >= source_rows
    metadata: dict = {
        "strategy": strategy,
        "rule": "destination == source" if exact else "destination >= source",
        "source_rows": source_rows,
        "destination_rows": destination_rows,
        "missing_rows": max(0, source_rows - destination_rows),
        "source_count": method or "-",
    }
    if exact and destination_rows > source_rows:
        metadata["extra_rows"] = destination_rows - source_rows
    if rolling_cutoff is not None:
        metadata["window_from"] = rolling_cutoff
    return outcome(ROW_COUNT, passed, "ERROR", metadata)


def check_primary_key(primary_keys: Sequence[str], keys: pa.Table | None) -> CheckOutcome:
    """No duplicate and no NULL primary keys among `keys` (the table's key columns)."""
    if not primary_keys:
        return outcome(PK_UNIQUE, True, "ERROR", {"reason": "no primary_keys configured"})
    if keys is None:
        return outcome(PK_UNIQUE, True, "ERROR", {"reason": "table not written yet"})
    names = list(primary_keys)
    missing = [k for k in names if k not in keys.column_names]
    if missing:
        return outcome(
            PK_UNIQUE, False, "ERROR", {"reason": f"key column(s) {', '.join(missing)} not in Delta"}
        )
    tally = tally_keys(names, keys)
    metadata: dict = {
        "primary_keys": ", ".join(names),
        "rows": tally.rows,
        "duplicate_keys": tally.duplicate_keys,
        "rows_with_duplicate_keys": tally.duplicate_rows,
        "null_key_rows": tally.null_rows,
    }
    if tally.samples:
        metadata["sample_duplicates"] = "; ".join(tally.samples)
    return outcome(PK_UNIQUE, tally.unique, "ERROR", metadata)


def check_primary_key_in_order(primary_keys: Sequence[str], rows: int) -> CheckOutcome:
    """Passed: the `rows` rows the load wrote (the whole table) had no NULL key and strictly
    increasing keys as they streamed into the commit, so no key repeats."""
    return _unique_without_scan(primary_keys, rows, "keys strictly increasing in the rows written")


def check_primary_key_claimed(primary_keys: Sequence[str], rows: int, version: int) -> CheckOutcome:
    """Passed: commit `version` claimed unique keys (a MERGE of unique keys, or an append of keys
    above the table's, onto a version with unique keys: lake/unique_claim.py) and no commit since
    changed data."""
    evidence = (
        f"unique-keys claim of Delta version {version}: it wrote unique keys onto version "
        f"{version - 1}, whose keys were unique, without repeating one; no data changed since"
    )
    return _unique_without_scan(primary_keys, rows, evidence)


def _unique_without_scan(primary_keys: Sequence[str], rows: int, evidence: str) -> CheckOutcome:
    """A passed key check whose proof is `evidence`, with the metadata a scan would report."""
    metadata = {
        "primary_keys": ", ".join(primary_keys),
        "rows": rows,
        "duplicate_keys": 0,
        "rows_with_duplicate_keys": 0,
        "null_key_rows": 0,
        "evidence": evidence,
    }
    return outcome(PK_UNIQUE, True, "ERROR", metadata)


def _check_primary_key(
    primary_keys: Sequence[str], destination: DeltaSession, destination_rows: int
) -> CheckOutcome:
    """Uniqueness from the cheapest evidence: keys seen in order as the load replaced the table,
    else a unique-keys claim covering the table, else a scan of the key columns."""
    if not primary_keys:
        return check_primary_key(primary_keys, None)
    keys_in_order_rows = destination.keys_in_order_rows
    if keys_in_order_rows is not None and keys_in_order_rows == destination_rows:
        return check_primary_key_in_order(primary_keys, keys_in_order_rows)
    claimed = destination.proven_unique_version(primary_keys)
    if claimed is not None:
        return check_primary_key_claimed(primary_keys, destination_rows, claimed)
    return check_primary_key(primary_keys, destination.key_columns(primary_keys))


def check_schema_drift(
    columns: Sequence[SourceColumn],
    stored: pa.Schema | None,
    *,
    generated: frozenset[str] = frozenset(),
    discarded: Sequence[str] = (),
) -> CheckOutcome:
    """Source columns (as they would be stored) against the Delta table's columns (WARN). The
    writer's `generated` columns (partition columns) are not drift; `discarded` (schema_policy
    discard_new) are named in the metadata and count as source-only columns."""
    if stored is None:
        return outcome(SCHEMA_DRIFT, True, "WARN", {"reason": "table not written yet"})
    source = storable_schema(arrow_schema(columns))
    technical = [f.name for f in stored if f.name.startswith(TECHNICAL_PREFIXES) or f.name in HISTORY_COLUMNS]
    delta = {f.name: f.type for f in stored if f.name not in technical and f.name not in generated}
    only_source = [f.name for f in source if f.name not in delta]
    only_delta = [name for name in delta if source.get_field_index(name) < 0]
    changed = [
        f"{f.name}: {delta[f.name]} in Delta, {f.type} in the source"
        for f in source
        if f.name in delta and not same_stored_type(delta[f.name], f.type)
    ]
    return outcome(
        SCHEMA_DRIFT,
        not (only_source or only_delta or changed),
        "WARN",
        {
            "source_only_columns": ", ".join(only_source) or "-",
            "delta_only_columns": ", ".join(only_delta) or "-",
            "type_changes": "; ".join(changed) or "-",
            **({"discarded_columns": ", ".join(discarded)} if discarded else {}),
            "source_columns": len(source),
            "delta_columns": len(delta),
        },
    )


def evaluate_checks(ctx: LoadContext, result: LoadResult) -> tuple[tuple[CheckOutcome, ...], int]:
    """All four checks against the Delta table as the load's session holds it now, from the facts
    the load gathered: the strategy's `result` (source count, rolling window), the session's
    (keys seen in order, claims, schema, newest commit) and the load's start (the source read,
    for freshness). Returns the checks and the table's row count (in the window for rolling). A
    check that raises is reported failed with the error, never dropped."""
    request, destination = ctx.request, ctx.destination
    strategy = result.strategy
    window_from = _rolling_cutoff(ctx, result)
    if window_from is not None:
        destination_rows = destination.row_count(column=request.rolling_column, at_least=window_from)
    else:
        destination_rows = destination.row_count()
    evaluations = {
        ROW_COUNT: lambda: check_row_count(
            strategy,
            result.source_row_count,
            destination_rows,
            method=result.source_row_count_method,
            rolling_cutoff=str(window_from) if window_from is not None else None,
        ),
        PK_UNIQUE: lambda: _check_primary_key(request.primary_keys, destination, destination_rows),
        FRESHNESS: lambda: check_freshness(
            request.cron, request.cron_timezone, destination.last_commit_time(), source_read_at=ctx.load_start
        ),
        SCHEMA_DRIFT: lambda: check_schema_drift(
            [*ctx.landed_columns, *ctx.discarded_columns],
            destination.stored_schema(),
            generated=destination.partitioning.derived_names,
            discarded=[c.name for c in ctx.discarded_columns],
        ),
    }
    if strategy == "cdc":
        evaluations[CDC_LAG] = lambda: check_cdc_lag(result.cdc_lag_bytes)
    outcomes = []
    for name, evaluate in evaluations.items():
        try:
            outcomes.append(evaluate())
        except Exception as exc:  # a check that cannot run fails with its reason
            severity = "ERROR" if name in (ROW_COUNT, PK_UNIQUE) else "WARN"
            outcomes.append(outcome(name, False, severity, {"error": f"{type(exc).__name__}: {exc}"[:500]}))
    if destination.history:  # the session counted and keyed the current versions only
        outcomes = [_history_rule(outcome) for outcome in outcomes]
    return tuple(outcomes), destination_rows


def _history_rule(outcome: CheckOutcome) -> CheckOutcome:
    """A key or count check of a history (scd2) table, saying it looked at current versions only."""
    rule = outcome.metadata.get("rule")
    if outcome.name == PK_UNIQUE or (outcome.name == ROW_COUNT and rule):
        rule = "one current row per key" if outcome.name == PK_UNIQUE else f"{rule}, current rows"
        return dataclasses.replace(outcome, metadata={**outcome.metadata, "rule": f"{rule} (scd2)"})
    return outcome


def _rolling_cutoff(ctx: LoadContext, result: LoadResult) -> Any:
    """The first value of a rolling load's window, typed for its column; None for other loads."""
    column = ctx.request.rolling_column
    if result.strategy != "rolling" or not column or result.rolling_cutoff is None:
        return None
    return parse_watermark(
        result.rolling_cutoff, ctx.column(column, "rolling_column").arrow_type, column=column
    )
