"""ClickHouse type names (as `system.columns.type` spells them) → Arrow types, and the SELECT item per column.

Decisions (docs/type_mapping.md): IntN → intN; UInt8/16/32 widen to the next signed width and UInt64 →
decimal128(20,0) (Delta has no unsigned types); Float32/64 → float32/float64; Decimal(P,S) →
decimal128(P,S) up to 38 digits; String → string (UTF-8 checked; other bytes are refused naming the
column); FixedString(N) → binary (all N bytes, trailing NULs kept); Date → date32; DateTime and
DateTime('tz') → timestamp('us','UTC') (ClickHouse stores a Unix instant; the zone only changes how it
prints); DateTime64(p≤6) → timestamp('us','UTC'); UUID, Enum8/16 → string; Bool → bool;
Nullable(T) → T, nullable; LowCardinality(T) → T; Array(T) → list<T> (servers before 20.x show
Nested and Array(Tuple) as one Array column per field, which load as such). Everything else (Tuple, Map,
AggregateFunction, Int128/256, DateTime64(7..9), IPv4/IPv6…) is refused naming table, column
and type.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from dataloader_contract.errors import UnsupportedTypeError

UINT64 = pa.decimal128(20, 0)
UTC_MICROS = pa.timestamp("us", tz="UTC")
MAX_DECIMAL_PRECISION = 38

_SCALARS = {
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "UInt8": pa.int16(),
    "UInt16": pa.int32(),
    "UInt32": pa.int64(),
    "UInt64": UINT64,
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "String": pa.string(),
    "Date": pa.date32(),
    "Date32": pa.date32(),
    "UUID": pa.string(),
    "Bool": pa.bool_(),
}
_DECIMAL_WIDTHS = {"Decimal32": 9, "Decimal64": 18, "Decimal128": 38}


@dataclass(frozen=True)
class ClickHouseType:
    """A parsed type: its base name, its parameters (raw text, split at top-level commas), nullability."""

    name: str
    args: tuple[str, ...]
    nullable: bool


def parse_type(spec: str) -> ClickHouseType:
    """Split `Nullable(Decimal(12, 2))` into name `Decimal`, args `('12', '2')`, nullable True.

    LowCardinality(...) is unwrapped (a storage detail); Nullable(...) sets `nullable`.
    """
    spec = spec.strip()
    nullable = False
    while True:
        name, args = _split(spec)
        if name == "LowCardinality" and len(args) == 1:
            spec = args[0]
        elif name == "Nullable" and len(args) == 1:
            nullable = True
            spec = args[0]
        else:
            return ClickHouseType(name, args, nullable)


def _split(spec: str) -> tuple[str, tuple[str, ...]]:
    if "(" not in spec or not spec.endswith(")"):
        return spec, ()
    name, inner = spec.split("(", 1)
    inner = inner[:-1]
    args, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(inner):
        if ch == "'" and (i == 0 or inner[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            args.append(inner[start:i].strip())
            start = i + 1
    args.append(inner[start:].strip())
    return name.strip(), tuple(args)


def arrow_type_for(table: str, column: str, spec: str) -> pa.DataType:
    """The Arrow type for a column of ClickHouse type `spec`, or UnsupportedTypeError naming
    table, column and type."""
    try:
        return _arrow_type(parse_type(spec), depth=0)
    except _Refused as refused:
        raise UnsupportedTypeError(
            f"source table {table}: column {column!r} has type {spec!r}: {refused}; "
            "select it through a view with an explicit cast"
        ) from None


class _Refused(Exception):
    pass


def _arrow_type(t: ClickHouseType, *, depth: int) -> pa.DataType:
    if t.name in _SCALARS and not t.args:
        return _SCALARS[t.name]
    if t.name == "FixedString":
        return pa.binary()
    if t.name in ("Enum8", "Enum16"):
        return pa.string()
    if t.name == "Decimal" or t.name in _DECIMAL_WIDTHS:
        return _decimal(t)
    if t.name == "DateTime":
        if depth > 1:
            raise _Refused("DateTime nested more than one Array deep is not supported")
        return UTC_MICROS
    if t.name == "DateTime64":
        precision = int(t.args[0]) if t.args else 3
        if precision > 6:
            raise _Refused(f"precision {precision} is finer than the microseconds Delta stores")
        if depth > 1:
            raise _Refused("DateTime64 nested more than one Array deep is not supported")
        return UTC_MICROS
    if t.name == "Array" and len(t.args) == 1:
        # Delta lists always allow NULL elements; the element name is Delta's own.
        return pa.list_(pa.field("element", _arrow_type(parse_type(t.args[0]), depth=depth + 1)))
    raise _Refused("no faithful Arrow mapping")


def _decimal(t: ClickHouseType) -> pa.DataType:
    if t.name == "Decimal":
        precision = int(t.args[0]) if t.args else 10
        scale = int(t.args[1]) if len(t.args) > 1 else 0
    else:
        precision, scale = _DECIMAL_WIDTHS[t.name], int(t.args[0]) if t.args else 0
    if precision > MAX_DECIMAL_PRECISION:
        raise _Refused(f"precision above {MAX_DECIMAL_PRECISION} has no Delta decimal type")
    return pa.decimal128(precision, scale)


def select_expression(quoted: str, spec: str) -> str:
    """The SELECT item for a column: DateTime values are read in UTC, whatever the column's zone."""
    t = parse_type(spec)
    if t.name in ("DateTime", "DateTime64"):
        return f"toTimeZone({quoted}, 'UTC')"
    if t.name == "Array" and parse_type(t.args[0]).name in ("DateTime", "DateTime64"):
        return f"arrayMap(x -> toTimeZone(x, 'UTC'), {quoted})"
    return quoted


def is_datetime(spec: str) -> bool:
    """Whether the column is a (second-precision) DateTime, compared in whole seconds."""
    return parse_type(spec).name == "DateTime"
