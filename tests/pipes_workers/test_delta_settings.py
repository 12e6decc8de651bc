"""delta_settings: writer properties and file sizes from the environment; bad values name the variable."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import table_uri
from pipes_workers.delta_settings import (
    COMPRESSION_ENV,
    DICTIONARY_ENV,
    TARGET_FILE_ENV,
    target_file_bytes,
    writer_properties,
)
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.session import DeltaSession


def _written_column_chunk(lake_root: Path) -> dict:
    dest = DeltaSession(table_uri(lake_root, "bronze/settings/t"))
    status = ["new", "paid"] * 500
    dest.overwrite(pa.table({"status": status}).to_reader(), CommitMarker("k", 1, "full"))
    (path,) = (lake_root / "bronze/settings/t").glob("*.parquet")
    return pq.ParquetFile(path).metadata.row_group(0).column(0).to_dict()


def test_default_is_zstd_without_dictionary_pages(lake_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(COMPRESSION_ENV, raising=False)
    monkeypatch.delenv(DICTIONARY_ENV, raising=False)
    chunk = _written_column_chunk(lake_root)
    assert chunk["compression"] == "ZSTD"
    assert chunk["dictionary_page_offset"] is None


def test_environment_chooses_codec_and_dictionary(lake_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMPRESSION_ENV, "snappy")
    monkeypatch.setenv(DICTIONARY_ENV, "on")
    chunk = _written_column_chunk(lake_root)
    assert chunk["compression"] == "SNAPPY"
    assert chunk["dictionary_page_offset"] is not None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        (COMPRESSION_ENV, "zip"),
        (COMPRESSION_ENV, "ZSTD(high)"),
        (DICTIONARY_ENV, "maybe"),
        (TARGET_FILE_ENV, "0"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        writer_properties()
        target_file_bytes("full")


def test_merged_tables_get_smaller_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TARGET_FILE_ENV, raising=False)
    assert target_file_bytes("incremental") == 16 << 20
    assert target_file_bytes("chunked_backfill") == 16 << 20
    assert target_file_bytes("full") == 64 << 20
    monkeypatch.setenv(TARGET_FILE_ENV, "128")
    assert target_file_bytes("incremental") == 128 << 20
