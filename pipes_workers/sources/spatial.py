"""Spatial columns, the same way for every source: the geometry as WKB bytes (the source's own
`ST_AsBinary`) and, right after it, a companion int64 column `<name>__srid` (`ST_SRID`).

A companion column rather than GeoParquet-style field metadata, because one column may hold
geometries of several SRIDs (MariaDB/MySQL, PostGIS `geometry` without a typmod); metadata could
only hold one. docs/type_mapping.md describes it for readers of the Delta tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa

from dataloader_contract.errors import UnsupportedTypeError
from pipes_workers.sources.base import SourceColumn

SRID_SUFFIX = "__srid"
SRID_SOURCE_TYPE = "srid"  # the source_type of a companion column
SRID_TYPE = pa.int64()


def srid_column(geometry: str) -> str:
    """The companion column holding the SRID of each value of spatial column `geometry`."""
    return geometry + SRID_SUFFIX


def geometry_of(srid: str) -> str:
    """The spatial column a companion SRID column belongs to."""
    return srid.removesuffix(SRID_SUFFIX)


def is_srid(column: SourceColumn) -> bool:
    """Whether `column` is a companion SRID column (read as ST_SRID of its geometry)."""
    return column.source_type == SRID_SOURCE_TYPE


def with_srid_columns(
    label: str, columns: Sequence[SourceColumn], is_spatial: Callable[[SourceColumn], bool]
) -> list[SourceColumn]:
    """`columns` with a companion SRID column after each spatial one; a source column that already has
    the companion's name is refused naming table and both columns."""
    names = {c.name for c in columns}
    result: list[SourceColumn] = []
    for column in columns:
        result.append(column)
        if not is_spatial(column):
            continue
        companion = srid_column(column.name)
        if companion in names:
            raise UnsupportedTypeError(
                f"source table {label}: column {column.name!r} is spatial and its SRID column "
                f"{companion!r} already exists in the table; rename one in a view"
            )
        result.append(SourceColumn(companion, SRID_SOURCE_TYPE, SRID_TYPE, column.nullable))
    return result
