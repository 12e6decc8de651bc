"""Reading destination Delta tables for checks and staging models (the orchestrator side only reads)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from dataloader_contract.request import table_uri


def open_table(
    lake_root: str, destination_table: str, storage_options: dict[str, str] | None = None
) -> DeltaTable | None:
    """The Delta table, or None when it was never written. Object-storage options default to
    DATALOADER_LAKE_STORAGE_OPTIONS (the LakeStorage resource's `options()` gives the same)."""
    uri = table_uri(lake_root, destination_table)
    if "://" not in uri and not (Path(uri) / "_delta_log").is_dir():
        return None
    if storage_options is None and "://" in uri and os.environ.get("DATALOADER_LAKE_STORAGE_OPTIONS"):
        storage_options = json.loads(os.environ["DATALOADER_LAKE_STORAGE_OPTIONS"])
    try:
        return DeltaTable(uri, storage_options=storage_options)
    except (
        Exception
    ) as exc:  # deltalake raises TableNotFoundError (a subclass of Exception) for a missing table
        if type(exc).__name__ == "TableNotFoundError":
            return None
        raise


def arrow_schema(table: DeltaTable) -> pa.Schema:
    """The table's schema as a PyArrow schema."""
    return pa.schema(table.schema().to_arrow())
