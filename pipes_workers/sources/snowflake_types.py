"""Snowflake information_schema types → Arrow types.

Decisions (docs/type_mapping.md): NUMBER(p,0) with p ≤ 18 → int64, other NUMBER/DECIMAL(p,s) →
decimal128(p,s) (never float); FLOAT/DOUBLE/REAL → float64; TEXT/VARCHAR/CHAR → string; BOOLEAN →
bool; DATE → date32; TIME → time64('us'); TIMESTAMP_NTZ → timestamp('us'); TIMESTAMP_LTZ and
TIMESTAMP_TZ → timestamp('us','UTC') (the instant is kept, TIMESTAMP_TZ's offset is not); nanoseconds
that microseconds cannot hold fail the load naming the column; BINARY → binary; VARIANT/OBJECT/ARRAY →
string (JSON text). GEOGRAPHY, GEOMETRY, VECTOR and anything else are refused naming table, column, type.
"""

from __future__ import annotations

import pyarrow as pa

from dataloader_contract.errors import UnsupportedTypeError

MAX_INT64_DIGITS = 18

_SCALARS = {
    "FLOAT": pa.float64(),
    "FLOAT4": pa.float64(),
    "FLOAT8": pa.float64(),
    "DOUBLE": pa.float64(),
    "DOUBLE PRECISION": pa.float64(),
    "REAL": pa.float64(),
    "TEXT": pa.string(),
    "VARCHAR": pa.string(),
    "CHAR": pa.string(),
    "CHARACTER": pa.string(),
    "STRING": pa.string(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "TIMESTAMP_NTZ": pa.timestamp("us"),
    "DATETIME": pa.timestamp("us"),
    "TIMESTAMP_LTZ": pa.timestamp("us", tz="UTC"),
    "TIMESTAMP_TZ": pa.timestamp("us", tz="UTC"),
    "BINARY": pa.binary(),
    "VARBINARY": pa.binary(),
    "VARIANT": pa.string(),
    "OBJECT": pa.string(),
    "ARRAY": pa.string(),
}
_NUMBERS = frozenset(
    {"NUMBER", "DECIMAL", "NUMERIC", "INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "BYTEINT"}
)


def arrow_type_for(
    table: str, column: str, data_type: str, precision: int | None, scale: int | None
) -> pa.DataType:
    """The Arrow type for an information_schema.COLUMNS row, or UnsupportedTypeError naming table,
    column and type."""
    name = data_type.upper()
    if name in _NUMBERS:
        p, s = precision or 38, scale or 0
        return pa.int64() if s == 0 and p <= MAX_INT64_DIGITS else pa.decimal128(p, s)
    if name in _SCALARS:
        return _SCALARS[name]
    raise UnsupportedTypeError(
        f"source table {table}: column {column!r} has type {data_type!r} with no faithful Arrow mapping; "
        "select it through a view with an explicit cast (e.g. ST_ASWKB for GEOGRAPHY)"
    )
