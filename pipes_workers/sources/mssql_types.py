"""SQL Server INFORMATION_SCHEMA types → Arrow types, and the SELECT item read for each column.

Decisions (docs/type_mapping.md): bit → bool; tinyint (0..255) → int16; smallint/int/bigint → int16/
int32/int64; decimal/numeric(p,s) → decimal128(p,s) and money/smallmoney → decimal128(19,4)/(10,4),
read as text and cast exactly; float → float64, real → float32; date → date32; datetime, smalldatetime,
datetime2 → timestamp('us') (datetime2(7)'s 100 ns digits fail the load naming the column unless zero);
datetimeoffset → timestamp('us','UTC') (read as UTC); time → time64('us'); char/varchar/nchar/nvarchar/
text/ntext/xml → string; uniqueidentifier → string; binary/varbinary/image → binary. Others (sql_variant,
hierarchyid, geography, geometry…) are refused naming table, column and type.
"""

from __future__ import annotations

import pyarrow as pa

from dataloader_contract.errors import UnsupportedTypeError

_SCALARS = {
    "bit": pa.bool_(),
    "tinyint": pa.int16(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "money": pa.decimal128(19, 4),
    "smallmoney": pa.decimal128(10, 4),
    "float": pa.float64(),
    "real": pa.float32(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "smalldatetime": pa.timestamp("us"),
    "datetime2": pa.timestamp("us"),
    "datetimeoffset": pa.timestamp("us", tz="UTC"),
    "time": pa.time64("us"),
    "uniqueidentifier": pa.string(),
    "binary": pa.binary(),
    "varbinary": pa.binary(),
    "image": pa.binary(),
}
_STRINGS = frozenset({"char", "varchar", "nchar", "nvarchar", "text", "ntext", "xml"})
_TEXT_READ = frozenset({"decimal", "numeric", "money", "smallmoney", "uniqueidentifier", "time", "xml"})


def arrow_type_for(
    table: str, column: str, data_type: str, precision: int | None, scale: int | None
) -> pa.DataType:
    """The Arrow type for an INFORMATION_SCHEMA.COLUMNS row, or UnsupportedTypeError naming table,
    column and type."""
    name = data_type.lower()
    if name in ("decimal", "numeric"):
        return pa.decimal128(precision or 18, scale or 0)
    if name in _SCALARS:
        return _SCALARS[name]
    if name in _STRINGS:
        return pa.string()
    raise UnsupportedTypeError(
        f"source table {table}: column {column!r} has type {data_type!r} with no faithful Arrow mapping; "
        "select it through a view with an explicit cast"
    )


def select_expression(quoted: str, data_type: str) -> str:
    """The SELECT item: exact text for decimals, GUIDs and times; datetimeoffset converted to UTC."""
    name = data_type.lower()
    if name == "datetimeoffset":
        return f"CAST(SWITCHOFFSET({quoted}, '+00:00') AS DATETIME2(7))"
    if name in _TEXT_READ:
        return f"CAST({quoted} AS NVARCHAR(MAX))"
    return quoted
