"""A load's session on its Delta table: the one open `DeltaTable` of a load and what it reads from it.

The table is opened once, on first use, and kept: the session's own commits bring that object up
to date (deltalake updates the table it commits through), and a write refreshes it with
`update_incremental()` before committing so another writer's commits are seen. A table that does
not exist yet is remembered as missing until the session's first write creates it. Nothing else
re-opens the table behind the session: the strategy writes through it and the checks read from it.

Example:
    >>> session = DeltaSession(table_uri("/lake", "bronze/erp/orders"))
    >>> state = session.state("erp.public.orders")
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from dataloader_contract.errors import PermanentLoadError, SchemaConflictError
from pipes_workers.delta_settings import DEFAULT_TARGET_FILE_MB
from pipes_workers.lake import key_claims, maintenance, table_facts, writes
from pipes_workers.lake.append_claim import AppendClaim
from pipes_workers.lake.history import IS_CURRENT
from pipes_workers.lake.maintenance import TableFiles, VacuumOutcome
from pipes_workers.lake.markers import CommitMarker, DeltaState, read_state
from pipes_workers.lake.partitioning import Partitioning
from pipes_workers.lake.schema_conform import DELETED_AT, Rows, conformed_schema, storable_schema
from pipes_workers.lake.table_facts import arrow_schema, counted_rows, quote_identifier
from pipes_workers.lake.unique_claim import proven_unique_version
from pipes_workers.lake.write_failures import write_failure
from pipes_workers.lake.writes import WriteOutcome
from pipes_workers.storage import looks_like_storage_error, storage_error

_UNOPENED = object()


class DeltaSession:
    """One Delta table at `uri`, opened at most once for the life of this object."""

    def __init__(
        self,
        uri: str,
        *,
        storage_options: dict[str, str] | None = None,
        target_file_size: int = DEFAULT_TARGET_FILE_MB << 20,
        soft_delete: bool = False,
        partitioning: Partitioning | None = None,
        history: bool = False,
    ) -> None:
        self.uri = uri
        self.partitioning = partitioning or Partitioning()
        self.storage_options = storage_options
        self.target_file_size = target_file_size
        self.soft_delete = soft_delete
        # history_mode scd2 (lake/history.py): counts, keys and live keys are the current versions'.
        self.history = history
        self._table: Any = _UNOPENED
        # Rows this session's commit replaced the table with while their primary keys arrived strictly
        # increasing (so unique): the uniqueness check then needs no scan (lake/key_order.py).
        self.keys_in_order_rows: int | None = None

    def table(self) -> DeltaTable | None:
        """The open table (opened on first use), or None when there is none yet."""
        if self._table is _UNOPENED:
            self._table = self._open()
        return self._table

    def require(self) -> DeltaTable:
        """The open table; PermanentLoadError when there is none."""
        table = self.table()
        if table is None:
            raise PermanentLoadError(f"{self.uri}: no Delta table here")
        return table

    def after_commit(self) -> DeltaTable:
        """The table after one of this session's commits: the open one (the commit updated it), or
        opened now when the commit created it."""
        if self._table is _UNOPENED or self._table is None:
            self._table = self._open()
        return self.require()

    def _open(self) -> DeltaTable | None:
        try:
            return DeltaTable(self.uri, storage_options=self.storage_options)
        except TableNotFoundError as exc:
            if looks_like_storage_error(exc):
                raise storage_error(exc, self.uri, self.storage_options) from exc
            return None
        except OSError as exc:
            raise storage_error(exc, self.uri, self.storage_options) from exc

    def failure(self, exc: Exception) -> BaseException:
        """The LoadError for a failed Delta operation (by type and errno; lake/write_failures.py)."""
        return write_failure(exc, None, self.uri, self.storage_options)

    # What the load reads before it writes.

    def state(self, control_key: str) -> DeltaState:
        """The table version, the app txn version and the newest commit metadata of `control_key`
        (exists=False when there is no table yet)."""
        return read_state(self.table(), control_key)

    def check_compatible(self, source: pa.Schema) -> None:
        """Raise SchemaConflictError when source columns of `source` cannot be stored in the existing
        table without loss — on every load, whether or not it reads rows. No-op without a table."""
        table = self.table()
        if table is not None:
            conformed_schema(storable_schema(source), arrow_schema(table), table_name=self.uri)

    def check_partitioning(self, *, reload: bool) -> None:
        """ConfigurationError when the existing table's partition columns differ from the session's
        partitioning and this load does not rewrite the whole table (`reload`). No-op without a table."""
        table = self.table()
        if table is not None:
            self.partitioning.refuse_change(table.metadata().partition_columns, uri=self.uri, reload=reload)

    def comparable_schema(self, schema: pa.Schema, table_schema: pa.Schema) -> pa.Schema:
        """`schema` (source columns) as stored next to `table_schema`'s columns (SchemaConflictError
        when a shared column cannot be cast without loss)."""
        return conformed_schema(storable_schema(schema), table_schema, table_name=self.uri)

    def append_claim(self, primary_keys: Sequence[str]) -> tuple[AppendClaim | None, str | None]:
        """The unique-keys claim an append onto the table as it is now may try, and an earlier
        append's refusal to carry forward (lake/key_claims.py)."""
        return key_claims.append_claim(self.table(), primary_keys)

    # The writes (lake/writes.py) and upkeep (lake/maintenance.py), each one commit.

    def overwrite(self, data: Rows, marker: CommitMarker) -> WriteOutcome:
        """Replace the table's rows and schema in one commit (creates the table when missing)."""
        return writes.overwrite(self, data, marker)

    def append(self, data: pa.RecordBatchReader, marker: CommitMarker) -> WriteOutcome:
        """Append rows in one commit; new columns are added to the table."""
        return writes.append(self, data, marker)

    def merge(
        self,
        data: Rows,
        primary_keys: Sequence[str],
        marker: CommitMarker,
        *,
        delete_not_in_source: bool = False,
    ) -> WriteOutcome:
        """Upsert on `primary_keys` in one commit (lake/writes.py:merge)."""
        return writes.merge(self, data, primary_keys, marker, delete_not_in_source=delete_not_in_source)

    def delete_rows(
        self,
        keys: pa.Table,
        primary_keys: Sequence[str],
        marker: CommitMarker,
        *,
        soft_deleted_at: datetime | None = None,
    ) -> tuple[WriteOutcome, int]:
        """Remove (or, with `soft_deleted_at`, stamp) the rows whose keys are in `keys`, one commit."""
        return writes.delete_rows(self, keys, primary_keys, marker, soft_deleted_at=soft_deleted_at)

    def note_keys_in_order(self, rows: int) -> None:
        """Record that this session's commit replaced the table with `rows` rows whose primary keys
        arrived strictly increasing (the key check's proof, without a scan)."""
        self.keys_in_order_rows = rows

    def compact(self, *, z_order_by: Sequence[str] = ()) -> dict[str, Any]:
        """Rewrite small files (optionally z-ordered, within each partition) in one commit; delta-rs's
        metrics. Partition columns are left out of `z_order_by`: each file holds one value of them."""
        partitions = set(self.require().metadata().partition_columns)
        return maintenance.compact(self, z_order_by=[c for c in z_order_by if c not in partitions])

    def vacuum(self, retention_hours: int) -> VacuumOutcome:
        """Delete files no version within the retention needs (lake/maintenance.py:vacuum)."""
        return maintenance.vacuum(self, retention_hours)

    # The facts the checks read, from the same open table.

    def files(self) -> TableFiles | None:
        """Data file count and bytes of the current version; None when there is no table."""
        table = self.table()
        return maintenance.table_files(table) if table is not None else None

    def stored_schema(self) -> pa.Schema | None:
        """The table's schema, or None when there is no table."""
        table = self.table()
        return arrow_schema(table) if table is not None else None

    def row_count(self, *, column: str | None = None, at_least: Any = None) -> int:
        """Rows in the table (0 when missing); with `column`/`at_least`, only rows with column >= at_least."""
        table = self.table()
        if table is None:
            return 0
        current = self._current_filter(table)
        if (column is None or at_least is None) and current is None:
            counted = counted_rows(table)
            if counted is not None:
                return counted
        dataset = table.to_pyarrow_dataset()
        if column is not None and at_least is not None:
            field_type = dataset.schema.field(column).type
            window = pc.field(column) >= pa.scalar(at_least).cast(field_type)
            current = window if current is None else current & window
        return dataset.count_rows(filter=current) if current is not None else dataset.count_rows()

    def _current_filter(self, table: DeltaTable) -> Any:
        """The dataset filter of current versions on a history table, else None."""
        if self.history and IS_CURRENT in arrow_schema(table).names:
            return pc.field(IS_CURRENT) == pa.scalar(True)
        return None

    def proven_unique_version(self, primary_keys: Sequence[str]) -> int | None:
        """The version of the commit whose unique-keys claim covers the table as it is now, or
        None (no table, no claim, or a data commit without one since)."""
        table = self.table()
        if table is None or self.history:  # keys repeat across versions: no claim applies
            return None
        return proven_unique_version(table, tuple(primary_keys))

    def key_columns(self, keys: Sequence[str]) -> pa.Table | None:
        """Only the `keys` columns of every row — of every current version on a history table — (for
        the uniqueness check), or None without a table."""
        table = self.table()
        if table is None:
            return None
        if self._current_filter(table) is None:
            return table_facts.stored_keys(table, keys)
        return table_facts.stored_keys(table, keys, where=quote_identifier(IS_CURRENT))

    def last_commit_time(self) -> datetime | None:
        """When the newest commit was written (UTC), or None without a table."""
        table = self.table()
        if table is None:
            return None
        return datetime.fromtimestamp(table.history(1)[0]["timestamp"] / 1000, tz=UTC)

    def live_keys(self, primary_keys: Sequence[str]) -> pa.Table | None:
        """The key columns of every row that is not soft-deleted and has no NULL key, followed by the
        table's partition columns (so a delete prunes by them); None without a table. Reads only
        those columns (and `_dataloader_deleted_at` when the table has it)."""
        table = self.table()
        if table is None:
            return None
        names = arrow_schema(table).names
        missing = [key for key in primary_keys if key not in names]
        if missing:
            raise SchemaConflictError(
                f"{self.uri}: primary key column(s) {', '.join(missing)} not in the Delta table"
            )
        if self._current_filter(table) is not None:
            current = table_facts.stored_keys(table, primary_keys, where=quote_identifier(IS_CURRENT))
            return current.drop_null()
        partitions = [p for p in table.metadata().partition_columns if p not in primary_keys]
        columns = [*primary_keys, *partitions]
        read = [*columns, DELETED_AT] if DELETED_AT in names else columns
        keys = pa.table(table.to_pyarrow_table(columns=read))
        if DELETED_AT in names:
            keys = keys.filter(pc.is_null(keys.column(DELETED_AT))).select(columns)
        for key in primary_keys:
            keys = keys.filter(pc.is_valid(keys.column(key)))
        return keys

    def read_arrow(self) -> pa.Table:
        """The whole table as Arrow (tests, checks). Empty table when missing."""
        table = self.table()
        return pa.table(table.to_pyarrow_table()) if table is not None else pa.table({})
