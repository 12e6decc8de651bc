"""LoadResult: the one typed contract between the worker and the orchestrator.

The worker measures everything in its own source session (source row count, columns, rolling
cutoff), writes Delta, evaluates the asset checks, and sends the result over Pipes as one custom
message (`to_message()`); the orchestrator reads it back with `read_load_result()`. `dataloader load`
gets the same object in-process. A failed load is a LoadResult too, with a structured `error`
(kind + code + scrubbed message), so nobody parses message text to decide about a retry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from dataloader_contract.errors import LoadError
from dataloader_contract.vocabulary import ERROR_KINDS, ErrorKind, LoadStrategy

MESSAGE_KEY = "dataloader_load_result"
MAX_MESSAGE = 4000
CheckSeverity = Literal["ERROR", "WARN"]
CountMethod = Literal["read snapshot", "before the read"]


@dataclass(frozen=True)
class CheckSpec:
    """One of the asset checks the worker evaluates after every load (part of the contract)."""

    name: str
    description: str
    blocking: bool = False


ROW_COUNT = "row_count_reconciliation"
PK_UNIQUE = "primary_key_unique"
FRESHNESS = "freshness_against_cron"
SCHEMA_DRIFT = "schema_drift"
CDC_LAG = "cdc_slot_lag"
# Each description ends with what a failure means, as the UI shows it beside "blocking"/"non-blocking".
CHECK_SPECS: tuple[CheckSpec, ...] = (
    CheckSpec(
        ROW_COUNT,
        "Destination rows reconcile with the source count the worker took (by strategy). A failure is "
        "severity ERROR (WARN when no source count was taken), non-blocking: the asset turns red and "
        "the load stays recorded.",
    ),
    CheckSpec(
        PK_UNIQUE,
        "Primary keys are unique and not null in the Delta table. A failure is severity ERROR, "
        "blocking: assets downstream of this table do not run.",
        True,
    ),
    CheckSpec(
        FRESHNESS,
        "The table is current: its newest Delta commit, or a later load that found nothing new, is "
        "within two cron periods (plus 5 minutes). A failure is severity WARN, non-blocking.",
    ),
    CheckSpec(
        SCHEMA_DRIFT,
        "Source columns and Delta columns match by name and stored type. A failure is severity WARN, "
        "non-blocking.",
    ),
)
# Only on `cdc` tables: the log the source retains for the table (pipes_workers/cdc/lag.py).
CDC_LAG_SPEC = CheckSpec(
    CDC_LAG,
    "The bytes of log the source database retains for this table's change capture (PostgreSQL: WAL "
    "held by its replication slot) stay below DATALOADER_CDC_LAG_WARN_BYTES (WARN) and "
    "DATALOADER_CDC_LAG_ERROR_BYTES (ERROR): a slot that stops advancing fills the source's disk. "
    "Non-blocking.",
)


@dataclass(frozen=True)
class LoadFailure:
    """Why a load failed: `kind` decides the retry, `code` is the source's (SQLSTATE, errno) or ours."""

    kind: ErrorKind
    message: str
    code: str | None = None
    error_type: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ERROR_KINDS:
            raise ValueError(f"LoadFailure.kind {self.kind!r} is not one of {', '.join(ERROR_KINDS)}")

    @classmethod
    def from_exception(cls, exc: LoadError) -> LoadFailure:
        """The failure a LoadError describes (its message is already scrubbed by whoever raised it)."""
        return cls(
            kind=exc.kind, message=str(exc)[:MAX_MESSAGE], code=exc.code, error_type=type(exc).__name__
        )


@dataclass(frozen=True)
class SourceColumnFact:
    """One source column as the worker saw it: name, the source's type text, the Arrow type stored."""

    name: str
    source_type: str
    arrow_type: str


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check evaluated by the worker after the load."""

    name: str
    passed: bool
    severity: CheckSeverity
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadResult:
    """What one load did, or why it failed. Fields that do not apply are None."""

    control_key: str
    strategy: LoadStrategy
    rows_read: int = 0
    rows_written: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    watermark_before: str | None = None
    watermark_after: str | None = None
    delta_version: int | None = None
    committed: bool = False
    skipped: bool = False
    empty: bool = False
    next_load_strategy: LoadStrategy | None = None
    load_full_done: bool = False
    null_incremental_rows: int = 0
    chunks_done: int | None = None
    chunks_total: int | None = None
    source_row_count: int | None = None
    source_row_count_method: CountMethod | None = None
    source_columns: tuple[SourceColumnFact, ...] = ()
    rolling_cutoff: str | None = None
    destination_uri: str | None = None
    destination_row_count: int | None = None
    # The run that wrote this table's previous complete load commit: if its attempt was recorded
    # Failed (killed after the commit), the lifecycle corrects that history row.
    committed_by_run: str | None = None
    rows_deleted: int | None = None
    deletes_note: str | None = None
    # history_mode scd2: the versions this load inserted and closed (changes, deletes).
    versions_added: int | None = None
    versions_closed: int | None = None
    cdc_lag_bytes: int | None = None  # cdc: bytes of log the source retains for the table's slot
    checks: tuple[CheckOutcome, ...] = ()
    error: LoadFailure | None = None
    # What lands (issue 22): columns landed as HMAC-SHA-256 hex; source columns never read.
    hashed_columns: tuple[str, ...] = ()
    columns_left_out: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        """True when the load ended without error (skipped and empty loads succeed)."""
        return self.error is None

    @property
    def rows_per_second(self) -> float | None:
        """Rows read per second of the load, when it read any."""
        return round(self.rows_read / self.seconds, 1) if self.rows_read and self.seconds > 0 else None

    @property
    def failed_checks(self) -> tuple[str, ...]:
        """Names of the checks that did not pass."""
        return tuple(c.name for c in self.checks if not c.passed)

    @property
    def status_message(self) -> str | None:
        """The text for the control row: the error, a skip, a backfill's hand-over, deletes, or failed
        checks; None for a plain success."""
        if self.error is not None:
            return self.error.message
        notes = []
        if self.skipped:
            notes.append("skipped: no new rows")
        elif self.empty:
            notes.append("source returned no rows: nothing written")
        if self.next_load_strategy:  # the row's strategy changes: say so where people look
            notes.append(f"backfill complete: the row loads {self.next_load_strategy} from now on")
        if self.rows_deleted:
            notes.append(f"{self.rows_deleted} rows deleted at the source reconciled")
        if self.deletes_note:
            notes.append(self.deletes_note)
        if self.failed_checks:
            notes.append(f"checks failed: {', '.join(self.failed_checks)}")
        return "; ".join(notes) or None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (nested dataclasses become objects)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadResult:
        """Rebuild from `to_json()`; unknown keys are an error naming them (a version mismatch)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"LoadResult: unknown field(s) {', '.join(unknown)}")
        values = dict(data)
        values["source_columns"] = tuple(SourceColumnFact(**c) for c in values.get("source_columns") or ())
        values["checks"] = tuple(CheckOutcome(**c) for c in values.get("checks") or ())
        for name in ("hashed_columns", "columns_left_out"):
            values[name] = tuple(values.get(name) or ())
        error = values.get("error")
        values["error"] = LoadFailure(**error) if error else None
        return cls(**values)

    def to_message(self) -> dict[str, Any]:
        """The Pipes custom message that carries this result."""
        return {MESSAGE_KEY: self.to_json()}


def failed_result(
    control_key: str, strategy: LoadStrategy, failure: LoadFailure, *, seconds: float = 0.0
) -> LoadResult:
    """A LoadResult for a load that failed before or during its commit."""
    return LoadResult(control_key=control_key, strategy=strategy, seconds=round(seconds, 3), error=failure)


def read_load_result(messages: Iterable[Any]) -> LoadResult | None:
    """The LoadResult among a Pipes invocation's custom messages (the last one), or None."""
    found = None
    for message in messages:
        if isinstance(message, Mapping) and MESSAGE_KEY in message:
            found = LoadResult.from_json(message[MESSAGE_KEY])
    return found
