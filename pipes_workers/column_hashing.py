"""PII hashing: the control row's `hash_columns` land as the HMAC-SHA-256 (lowercase hex) of their value.

Every row a load reads from its source passes `ColumnHasher.stream` (LoadContext.source_batches), so
the clear values never reach Delta, whatever the strategy, and the delete reconciliation compares
hashed keys with hashed keys. The hashed value is the HMAC of the value's bytes: UTF-8 text for
strings, the bytes themselves for binary, and Arrow's text form for anything else (`42`, `12.50`,
`2024-03-01`), so the same value hashes the same across tables, sources and loads with the same key
and joins keep working. NULL stays NULL. The landed column is a string with Delta field metadata
saying it is hashed.

Speed: pyarrow has no HMAC. Each batch's column is dictionary-encoded, so each distinct value is
hashed once, by a tight loop from the HMAC's inner and outer SHA-256 states prepared once and copied
per value (about twice as fast as `hmac.new`); a bounded per-column cache spares values repeated
across batches, and the digests are put back in place by the dictionary indices. About 2 µs per
distinct value; a repeated value costs next to nothing (benchmarks/hashing.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dataloader_contract.errors import ConfigurationError, SchemaConflictError
from pipes_workers.sources.base import SourceColumn

HASH_ALGORITHM = "hmac-sha256"
# Delta field metadata of a hashed column (delta-rs keeps Arrow field metadata in the table schema),
# with KEY_ID_FIELD: which key hashed it (ColumnHasher.key_id).
HASHED_METADATA = {
    "comment": "HMAC-SHA-256 (hex) of the source value, hashed by DataLoader (hash_columns)",
    "dataloader.hashed": HASH_ALGORITHM,
}
KEY_ID_FIELD = "dataloader.hash_key_id"
# The key id is the HMAC of this text under the key: it tells keys apart and reveals no more about
# the key than any hashed value in the table already does.
_KEY_ID_TEXT = b"dataloader hash key id"
_BLOCK = 64  # SHA-256's block size, which the HMAC key is padded to
CACHE_ENTRIES = 1 << 16  # distinct values a column remembers across batches (repeats hashed once)


def is_hashed(metadata: dict[bytes, bytes] | None) -> bool:
    """True when Arrow field metadata (as read back from Delta) marks the column as hashed."""
    return bool(metadata) and metadata.get(b"dataloader.hashed") == HASH_ALGORITHM.encode()


@dataclass(frozen=True)
class ColumnHasher:
    """Hashes the columns `columns` of every batch with `key` (never shown in repr or messages)."""

    columns: tuple[str, ...]
    key: bytes = field(repr=False)
    _caches: dict[str, dict[bytes | str, str]] = field(default_factory=dict, repr=False, compare=False)

    def check_types(self, source: Sequence[SourceColumn], table: str, control_key: str) -> None:
        """ConfigurationError naming table and column when a hashed column's type has no text form."""
        for column in source:
            if column.name in self.columns and not _hashable(column.arrow_type):
                raise ConfigurationError(
                    f"{control_key}: hash_columns: column {column.name!r} of {table} is "
                    f"{column.source_type} ({column.arrow_type}), which has no text form to hash"
                )

    @property
    def key_id(self) -> str:
        """16 hex characters naming the key (stored with each hashed column, to notice a new key)."""
        return hmac_hex(pa.array([_KEY_ID_TEXT]), self.key)[0].as_py()[:16]

    def landed(self, source: Sequence[SourceColumn]) -> list[SourceColumn]:
        """The columns as they land: the hashed ones as strings."""
        return [replace(c, arrow_type=pa.string()) if c.name in self.columns else c for c in source]

    def schema(self, schema: pa.Schema) -> pa.Schema:
        """`schema` with every hashed field a string carrying HASHED_METADATA and the key id."""
        metadata = {**HASHED_METADATA, KEY_ID_FIELD: self.key_id}
        fields = [
            pa.field(f.name, pa.string(), nullable=f.nullable, metadata=metadata)
            if f.name in self.columns
            else f
            for f in schema
        ]
        return pa.schema(fields, metadata=schema.metadata)

    def batch(self, batch: pa.RecordBatch, schema: pa.Schema | None = None) -> pa.RecordBatch:
        """`batch` with its hashed columns replaced by their HMAC hex digests."""
        target = schema or self.schema(batch.schema)
        arrays = [
            hmac_hex(column, self.key, self._caches.setdefault(name, {})) if name in self.columns else column
            for name, column in zip(batch.schema.names, batch.columns, strict=True)
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=target)

    def stream(self, source: pa.RecordBatchReader) -> pa.RecordBatchReader:
        """A reader yielding `source`'s batches hashed (one batch at a time: bounded memory)."""
        if not any(name in self.columns for name in source.schema.names):
            return source
        target = self.schema(source.schema)

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for batch in source:
                    yield self.batch(batch, target)
            finally:
                source.close()

        return pa.RecordBatchReader.from_batches(target, batches())


def hmac_hex(array: pa.Array, key: bytes, cache: dict[bytes | str, str] | None = None) -> pa.Array:
    """HMAC-SHA-256 lowercase hex of each value of `array` (string); NULL stays NULL.

    Each distinct value of the array is hashed once (dictionary encoding), and `cache` (value ->
    digest, filled up to CACHE_ENTRIES values) spares a value repeated across batches its HMAC.
    """
    known = cache if cache is not None else {}
    encoded = pc.dictionary_encode(_as_text(array))
    inner, outer = _prepared(key)
    digests = []
    for value in encoded.dictionary.to_pylist():
        digest = known.get(value)
        if digest is None:
            step = inner.copy()
            step.update(value.encode() if isinstance(value, str) else value)
            final = outer.copy()
            final.update(step.digest())
            digest = final.hexdigest()
            if len(known) < CACHE_ENTRIES:
                known[value] = digest
        digests.append(digest)
    return pc.take(pa.array(digests, pa.string()), encoded.indices)


def _prepared(key: bytes) -> tuple[Any, Any]:
    # HMAC (RFC 2104) from two prepared SHA-256 states: copying them beats hmac.new per value ~2x.
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in padded)), hashlib.sha256(bytes(b ^ 0x5C for b in padded))


def _as_text(array: pa.Array) -> pa.Array:
    dtype = array.type
    if pa.types.is_string(dtype) or pa.types.is_binary(dtype):
        return array
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return array.cast(pa.string())
    if (
        pa.types.is_large_binary(dtype)
        or pa.types.is_fixed_size_binary(dtype)
        or pa.types.is_binary_view(dtype)
    ):
        return array.cast(pa.binary())
    return array.cast(pa.string())


def _hashable(dtype: pa.DataType) -> bool:
    t = pa.types
    return not (t.is_nested(dtype) or t.is_dictionary(dtype) or t.is_null(dtype)) and not (
        t.is_duration(dtype) or t.is_interval(dtype)
    )


def refuse_hashing_change(
    stored: pa.Schema | None, hasher: ColumnHasher | None, landed: Sequence[SourceColumn], uri: str
) -> None:
    """SchemaConflictError when a column the Delta table holds in clear text would now land hashed,
    one it holds hashed would land in clear text, or one hashed with another key would land hashed
    with this one: the table would mix them (and a hashed key would no longer match its rows). A load
    that replaces the table (load_full) is the way to switch."""
    if stored is None:
        return
    hashed = hasher.columns if hasher is not None else ()
    for column in landed:
        index = stored.get_field_index(column.name)
        if index < 0:
            continue
        metadata = stored.field(index).metadata or {}
        was_hashed = is_hashed(metadata)
        problem = None
        if was_hashed != (column.name in hashed):
            held, now = ("hashed", "no longer hashes it") if was_hashed else ("in clear text", "hashes it")
            problem = f"is stored {held} in the Delta table but hash_columns now {now}"
        elif hasher is not None and was_hashed:
            old_id = metadata.get(KEY_ID_FIELD.encode(), b"").decode()
            if old_id and old_id != hasher.key_id:
                problem = (
                    f"was hashed with another key (key id {old_id}; this one is {hasher.key_id}): "
                    "the hashing key changed"
                )
        if problem is not None:
            raise SchemaConflictError(
                f"{uri}: column {column.name!r} {problem}; reload the table with load_full "
                "(then vacuum, so no older version keeps the old values)"
            )
