"""MySQL/MariaDB information_schema types → Arrow types, and the SELECT item read for each column.

Decisions (docs/type_mapping.md): decimal(p,s) → decimal128(p,s) read as text (connectorx's own
decimal path is limited to 28 digits); unsigned ints widen to the next signed width and
BIGINT UNSIGNED → decimal128(20,0) (Delta has no unsigned types); TINYINT(1)/BOOLEAN and BIT(1) →
bool; BIT(n) → int64 (n ≤ 63) or decimal128(20,0); TIME → time64('us') read as text (values outside
00:00–24:00 fail naming the column); DATETIME → timestamp('us'); TIMESTAMP → timestamp('us','UTC')
(sessions run with time_zone '+00:00'); YEAR → int16; JSON/ENUM/SET/text → string; BLOB/BINARY → binary;
GEOMETRY/POINT/… → binary WKB plus a companion `<name>__srid` column (see spatial.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from dataloader_contract.errors import UnsupportedTypeError

MAX_DECIMAL_PRECISION = 38
BIGINT_UNSIGNED = pa.decimal128(20, 0)

_SIGNED = {
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "mediumint": pa.int32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
}
_UNSIGNED = {
    "tinyint": pa.int16(),
    "smallint": pa.int32(),
    "mediumint": pa.int32(),
    "int": pa.int64(),
    "bigint": BIGINT_UNSIGNED,
}
_STRINGS = frozenset(
    {
        "char",
        "varchar",
        "tinytext",
        "text",
        "mediumtext",
        "longtext",
        "json",
        "enum",
        "set",
        "uuid",
        "inet4",
        "inet6",
    }
)
_BINARIES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
SPATIAL = frozenset(
    {
        "geometry",
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
        "geomcollection",
    }
)

_SCALARS = {
    "float": pa.float32(),
    "double": pa.float64(),
    "real": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "time": pa.time64("us"),
    "year": pa.int16(),
}
# Types connectorx does not read natively: selected as CAST(... AS CHAR).
_TEXT_READ = frozenset({"decimal", "time", "uuid", "inet4", "inet6"})


@dataclass(frozen=True)
class MySQLType:
    """information_schema.COLUMNS facts for one column."""

    data_type: str  # DATA_TYPE, lower case (e.g. "int")
    column_type: str  # COLUMN_TYPE, lower case (e.g. "int(10) unsigned")
    precision: int | None
    scale: int | None


def arrow_type_for(table: str, column: str, t: MySQLType) -> pa.DataType:
    """The Arrow type for a column, or UnsupportedTypeError naming table, column and type."""
    unsigned = "unsigned" in t.column_type
    if t.data_type == "tinyint" and t.column_type.startswith("tinyint(1)") and not unsigned:
        return pa.bool_()
    if t.data_type in _SIGNED:
        return (_UNSIGNED if unsigned else _SIGNED)[t.data_type]
    if t.data_type == "decimal":
        precision, scale = t.precision or 10, t.scale or 0
        if precision > MAX_DECIMAL_PRECISION:
            raise UnsupportedTypeError(
                f"source table {table}: column {column!r} has type {t.column_type!r}; precision above "
                f"{MAX_DECIMAL_PRECISION} has no Delta decimal type; select it through a view with a cast"
            )
        return pa.decimal128(precision, scale)
    if t.data_type == "bit":
        bits = t.precision or 1
        return pa.bool_() if bits == 1 else (pa.int64() if bits < 64 else BIGINT_UNSIGNED)
    if t.data_type in _SCALARS:
        return _SCALARS[t.data_type]
    if t.data_type in _STRINGS:
        return pa.string()
    if t.data_type in _BINARIES or t.data_type in SPATIAL:
        return pa.binary()
    raise UnsupportedTypeError(
        f"source table {table}: column {column!r} has type {t.column_type!r} with no faithful Arrow mapping; "
        "select it through a view with an explicit cast"
    )


def select_expression(quoted: str, arrow_type: pa.DataType, source_type: str) -> str:
    """The SELECT item that reads the column into something connectorx handles and Arrow casts exactly."""
    data_type = source_type.split("(")[0].split(" ")[0].lower()
    if data_type in SPATIAL:
        return f"ST_AsBinary({quoted})"
    if data_type == "bit":
        return (
            f"CAST({quoted} AS UNSIGNED)"
            if not pa.types.is_decimal(arrow_type)
            else f"CAST(CAST({quoted} AS UNSIGNED) AS CHAR)"
        )
    if data_type in _TEXT_READ or pa.types.is_decimal(arrow_type):
        return f"CAST({quoted} AS CHAR)"
    return quoted
