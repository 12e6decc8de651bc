"""SQLite declared types → Arrow types, following SQLite's affinity rules plus date/time names.

SQLite stores values by storage class, not by declared type, so the declared type is a promise we
check while reading: a value that does not convert fails the load naming the column. Decisions
(docs/type_mapping.md): BOOL* → bool; *INT* → int64; CHAR/CLOB/TEXT → string; BLOB → binary;
REAL/FLOA/DOUB → float64; DECIMAL/NUMERIC(p,s) → decimal128(p,s); DATE → date32; DATETIME/TIMESTAMP
→ timestamp('us') (ISO text, naive); TIME → time64('us'); no declared type and any other name
(e.g. bare NUMERIC) → string (the value's text form).
"""

from __future__ import annotations

import re

import pyarrow as pa

from dataloader_contract.errors import UnsupportedTypeError

_DECIMAL = re.compile(r"(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


def arrow_type_for(table: str, column: str, declared: str) -> pa.DataType:
    """The Arrow type for a declared SQLite column type."""
    text = declared.upper().strip()
    if "BOOL" in text:
        return pa.bool_()
    if "INT" in text:
        return pa.int64()
    if any(word in text for word in ("CHAR", "CLOB", "TEXT")):
        return pa.string()
    if "BLOB" in text:
        return pa.binary()
    if any(word in text for word in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    match = _DECIMAL.search(text)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2) or 0)
        if precision > 38:
            raise UnsupportedTypeError(
                f"source table {table}: column {column!r} has type {declared!r}; precision above 38 has no Delta decimal type"
            )
        return pa.decimal128(precision, scale)
    if "DATETIME" in text or "TIMESTAMP" in text:
        return pa.timestamp("us")
    if text.startswith("DATE"):
        return pa.date32()
    if text.startswith("TIME"):
        return pa.time64("us")
    return pa.string()


def select_expression(quoted: str, arrow_type: pa.DataType) -> str:
    """Text for types converted from their ISO/decimal text form; native values otherwise."""
    if pa.types.is_decimal(arrow_type) or pa.types.is_temporal(arrow_type) or pa.types.is_string(arrow_type):
        return f"CAST({quoted} AS TEXT)"
    return quoted
