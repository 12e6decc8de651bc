"""Safe type widening of an existing Delta table's columns: which source type changes are widenings,
whether the table is small enough to rewrite, and the one commit that applies them.

A widening never loses a value: a signed integer to a wider one (int32 -> int64), float32 -> float64,
a decimal to a greater precision at the same scale. (A longer varchar needs nothing: text is text.)
deltalake 1.6 has no Delta type-widening feature (`delta.enableTypeWidening`, no `alter` of a column
type), so the table's rows are rewritten once, cast to the wider types, in one overwrite commit that
keeps the partitioning and changes no value; it carries no load's app transaction, so a load that
dies after it re-runs from the same state and finds the table already widened. A table larger than
DATALOADER_WIDEN_REWRITE_MAX_MB is not rewritten behind a routine load: the load is refused and says
to run load_full (the same rewrite, asked for) or to raise the setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from deltalake import CommitProperties, write_deltalake

from dataloader_contract.errors import ConfigurationError
from pipes_workers.delta_settings import WIDEN_REWRITE_ENV, widen_rewrite_max_bytes, writer_properties
from pipes_workers.lake.known_panics import known_panics_hidden
from pipes_workers.lake.markers import META_PREFIX
from pipes_workers.lake.table_facts import arrow_schema

if TYPE_CHECKING:
    from pipes_workers.lake.session import DeltaSession


def is_widening(stored: pa.DataType, source: pa.DataType) -> bool:
    """True when a column stored as `stored` can take `source` values only by widening its type."""
    if pa.types.is_signed_integer(stored) and pa.types.is_signed_integer(source):
        return source.bit_width > stored.bit_width
    if pa.types.is_floating(stored) and pa.types.is_floating(source):
        return source.bit_width > stored.bit_width
    if pa.types.is_decimal(stored) and pa.types.is_decimal(source):
        return source.scale == stored.scale and source.precision > stored.precision
    return False


def check_rewrite_size(session: DeltaSession, types: dict[str, pa.DataType], *, control_key: str) -> None:
    """ConfigurationError (nothing written) when widening `types` would rewrite more data than
    DATALOADER_WIDEN_REWRITE_MAX_MB allows (sum of the current version's file sizes in the log)."""
    limit = widen_rewrite_max_bytes()
    files = session.files()
    size = files.bytes if files is not None else 0
    if limit and size <= limit:
        return
    stored = arrow_schema(session.require())
    changed = ", ".join(f"{name} {stored.field(name).type} -> {dtype}" for name, dtype in types.items())
    quoted = "'" + control_key.replace("'", "''") + "'"
    advice = (
        "run load_full (UPDATE dataloader.table_control SET load_full = true WHERE control_key = "
        f"{quoted}) to rewrite it with the wider type(s), or raise {WIDEN_REWRITE_ENV}"
    )
    raise ConfigurationError(
        f"{control_key}: widening the column type(s) of {session.uri} ({changed}) rewrites the "
        f"whole Delta table ({_size_text(size)}; {WIDEN_REWRITE_ENV}={limit >> 20}): refused, "
        f"nothing written; {advice}"
    )


def widen(session: DeltaSession, types: dict[str, pa.DataType]) -> int:
    """Rewrite the session's table with the columns in `types` cast to their new types, in one
    commit (streamed: bounded memory). Returns the new table version."""
    table = session.require()
    stored = arrow_schema(table)
    wanted = pa.schema(
        [pa.field(f.name, types.get(f.name, f.type), nullable=True, metadata=f.metadata) for f in stored]
    )
    scanner = table.to_pyarrow_dataset().scanner(columns=wanted.names)
    batches = (batch.cast(wanted) for batch in scanner.to_batches())
    partitions = table.metadata().partition_columns
    changed = ", ".join(f"{name}: {stored.field(name).type} -> {dtype}" for name, dtype in types.items())
    try:
        with known_panics_hidden():
            write_deltalake(
                table,
                pa.RecordBatchReader.from_batches(wanted, batches),
                mode="overwrite",
                schema_mode="overwrite",
                partition_by=partitions or None,
                target_file_size=session.target_file_size,
                writer_properties=writer_properties(),
                commit_properties=CommitProperties(
                    custom_metadata={
                        f"{META_PREFIX}operation": "widen_types",
                        f"{META_PREFIX}widened": changed,
                    }
                ),
                storage_options=session.storage_options,
            )
    except Exception as exc:
        raise session.failure(exc) from exc
    return session.after_commit().version()


def _size_text(size: int) -> str:
    return f"{size:,} bytes" if size < 1 << 20 else f"{size / (1 << 20):,.1f} MB"
