"""Which source columns a load reads: the control row's `include_columns` or `exclude_columns`.

The selection is applied to the source's column list before any read, so the readers' SELECT / COPY
names only the selected columns: an excluded column never leaves the source. A listed column (in
either list, or in `hash_columns`) that the source table lacks is a ConfigurationError naming it and
the table: a typo must not silently load a column someone meant to keep out.
"""

from __future__ import annotations

from collections.abc import Sequence

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import LoadRequest
from pipes_workers.sources.base import SourceColumn
from pipes_workers.sources.spatial import geometry_of, is_srid


def selected_columns(request: LoadRequest, columns: Sequence[SourceColumn], table: str) -> list[SourceColumn]:
    """The columns of `columns` (the source table's, in ordinal order) the request reads.

    Args:
        request: the load request (its include_columns / exclude_columns / hash_columns).
        columns: every column of the source table.
        table: the table's name for messages (schema.table, quoted as the source quotes it).

    Raises:
        ConfigurationError: a listed column is not a column of the table.
    """
    names = {column.name for column in columns}
    for setting in ("include_columns", "exclude_columns", "hash_columns"):
        missing = [name for name in getattr(request, setting) if name not in names]
        if missing:
            listed = ", ".join(repr(name) for name in missing)
            raise ConfigurationError(
                f"{request.control_key}: {setting} names {listed}, which is not a column of {table}"
            )
    include, exclude = set(request.include_columns), set(request.exclude_columns)

    def kept(column: SourceColumn) -> bool:
        # A spatial column's SRID companion (read as ST_SRID of it) goes wherever its geometry goes.
        name = geometry_of(column.name) if is_srid(column) else column.name
        return name in include if include else name not in exclude

    selected = [column for column in columns if kept(column)]
    _refuse_needed_left_out(request, {column.name for column in selected}, names)
    return selected


def _refuse_needed_left_out(request: LoadRequest, kept: set[str], source: set[str]) -> None:
    """The control table refuses these rows at INSERT; a request built elsewhere (a test, a script)
    gets the same rule here rather than a puzzling missing-column error later. A needed column the
    source lacks altogether is the strategy's own error (`not a column of`), not the selection's."""
    needed = [(key, "a primary key (primary_keys)") for key in request.primary_keys]
    for role in ("incremental_column", "rolling_column", "chunk_column"):
        name = getattr(request, role)
        if name:
            needed.append((name, f"the {role}"))
            if name in request.hash_columns:
                raise ConfigurationError(
                    f"{request.control_key}: hash_columns cannot hash {name!r}: it is the {role}, "
                    "which must keep its source values"
                )
    for name, role in needed:
        if name in source and name not in kept:
            setting = "include_columns" if request.include_columns else "exclude_columns"
            raise ConfigurationError(
                f"{request.control_key}: {setting} leaves out {name!r}: it is {role}, which the load reads"
            )


def left_out(columns: Sequence[SourceColumn], selected: Sequence[SourceColumn]) -> tuple[str, ...]:
    """The names of the source columns the selection leaves out, in ordinal order."""
    kept = {column.name for column in selected}
    return tuple(column.name for column in columns if column.name not in kept)
