"""PostgreSQL catalog types → Arrow types, and the SELECT expression that reads each column fast.

See docs/type_mapping.md for the policy table. Decisions in short:
- numeric(p,s) → decimal128(p,s), read in binary (the server's cheapest form: `col::text` cost it
  7% more on the benchmark table) which the driver decodes to text, cast exactly in Arrow;
  numeric(p,-s) → decimal128(p+s, 0); p > 38 → UnsupportedTypeError.
- unconstrained `numeric` → decimal128(38, 18); a value that does not fit (more than 18 decimals or
  20 integer digits) fails the load naming the column. NaN/±Infinity fail naming the column.
- text-like types → `pa.string()` (never large_string); uuid/json/jsonb/citext/enum/interval/inet/…
  are read as `col::text` (interval in ISO 8601 because sessions set IntervalStyle).
- one-dimensional arrays of simple element types → list<element>; a multi-dimensional value fails
  the load naming the column. Other arrays → string (PostgreSQL array text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from dataloader_contract.errors import UnsupportedTypeError

UNCONSTRAINED_NUMERIC = pa.decimal128(38, 18)
MAX_DECIMAL_PRECISION = 38

SCALARS: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "oid": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "bytea": pa.binary(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "char": pa.string(),
}
# Read natively by the driver (no cast in SQL).
NATIVE_STRING_TYPES = frozenset({"text", "varchar", "bpchar", "name", "char"})
# Read as `col::text` → string: the text form is the faithful, documented representation.
TEXT_FALLBACK_TYPES = frozenset(
    {
        "uuid", "json", "jsonb", "citext", "interval", "timetz", "xml", "inet", "cidr", "macaddr",
        "macaddr8", "money", "bit", "varbit", "tsvector", "tsquery", "point", "line", "lseg", "box",
        "path", "polygon", "circle", "pg_lsn", "jsonpath",
    }
)  # fmt: skip
# typtype: e = enum, r = range, m = multirange, c = composite → text as well.
TEXT_FALLBACK_TYPTYPES = frozenset({"e", "r", "m", "c"})
LIST_ELEMENT_TYPES = frozenset(
    {
        "bool",
        "int2",
        "int4",
        "int8",
        "float4",
        "float8",
        "text",
        "varchar",
        "date",
        "timestamp",
        "timestamptz",
    }
)

# PostGIS: WKB plus a companion SRID column (spatial.py).
SPATIAL = frozenset({"geometry", "geography"})

_NUMERIC_MODIFIERS = re.compile(r"numeric\((\d+)(?:,\s*(-?\d+))?\)")


@dataclass(frozen=True)
class CatalogType:
    """What the catalog says about one column's (domain-resolved) type."""

    declared: str  # format_type(atttypid, atttypmod), as the user wrote it
    effective: str  # format_type of the base type (domains resolved)
    typname: str  # pg_type.typname of the base type
    typtype: str  # b base, e enum, r range, c composite, p pseudo …
    element_typname: str | None  # for arrays: the element's typname


def arrow_type_for(table: str, column: str, t: CatalogType) -> pa.DataType:
    """The Arrow type for a column, or UnsupportedTypeError naming table, column and type."""
    if t.element_typname is not None:
        if t.element_typname in LIST_ELEMENT_TYPES:
            return pa.list_(SCALARS[t.element_typname])
        return pa.string()
    if t.typname == "numeric":
        return numeric_arrow_type(table, column, t.effective)
    if t.typname in SPATIAL:
        return pa.binary()
    if t.typname in SCALARS:
        return SCALARS[t.typname]
    if t.typname in TEXT_FALLBACK_TYPES or t.typtype in TEXT_FALLBACK_TYPTYPES:
        return pa.string()
    raise UnsupportedTypeError(
        f"source table {table}: column {column!r} has type {t.declared!r} with no faithful Arrow mapping; "
        "select it through a view with an explicit cast"
    )


def numeric_arrow_type(table: str, column: str, effective: str) -> pa.DataType:
    """decimal128 for numeric(p,s); the documented default for unconstrained numeric."""
    match = _NUMERIC_MODIFIERS.fullmatch(effective.replace(" ", ""))
    if match is None:
        return UNCONSTRAINED_NUMERIC
    precision, scale = int(match.group(1)), int(match.group(2) or 0)
    if scale < 0:
        precision, scale = precision - scale, 0
    if precision > MAX_DECIMAL_PRECISION:
        raise UnsupportedTypeError(
            f"source table {table}: column {column!r} has type {effective!r}; precision above "
            f"{MAX_DECIMAL_PRECISION} has no Delta decimal type; select it through a view with a cast"
        )
    return pa.decimal128(precision, scale)


def select_expression(quoted: str, arrow_type: pa.DataType, source_type: str) -> str:
    """The SELECT item that reads the column into something cheap to convert to `arrow_type`."""
    if _base_name(source_type) in SPATIAL:
        return f"ST_AsBinary({quoted})"
    if pa.types.is_decimal(arrow_type):
        return quoted  # binary numeric; the driver hands it over as text, cast exactly in Arrow
    if pa.types.is_string(arrow_type) and _base_name(source_type) not in NATIVE_STRING_TYPES:
        return f"{quoted}::text"
    return quoted


_FORMAT_TO_TYPNAME = {
    "text": "text",
    "character varying": "varchar",
    "character": "bpchar",
    "name": "name",
    '"char"': "char",
}


def _base_name(source_type: str) -> str:
    """typname for a format_type() text of a native string type, else the text itself."""
    base = re.sub(r"\(.*\)$", "", source_type.strip())
    return _FORMAT_TO_TYPNAME.get(base, base)
