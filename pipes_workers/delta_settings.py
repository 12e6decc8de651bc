"""Settings for Delta writes, read from the environment: Parquet codec and dictionaries, data file
size, how much of a change set is merged from memory, and how large a table a type widening may rewrite.

Measured on the benchmark table (see the README): ZSTD level 1 without dictionary pages wrote in 0.6x
the CPU time of Snappy with dictionaries, into files 0.45x the size. Tables that are MERGEd into get
smaller files, because a merge rewrites every file that holds a changed key: with 16 MB files a 1%
change rewrote a third of the rows a 64 MB layout made it rewrite. A merge source held in memory lets
delta-rs skip target files outside its key range (a streamed one scans them all), up to
DATALOADER_SMALL_READ_MB of Arrow data.
"""

from __future__ import annotations

import os
import re

from deltalake import ColumnProperties, WriterProperties

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.vocabulary import MERGE_STRATEGIES
from pipes_workers.env_settings import whole_number

ROW_GROUP_ROWS = 262_144
COMPRESSION_ENV = "DATALOADER_DELTA_COMPRESSION"
DICTIONARY_ENV = "DATALOADER_DELTA_DICTIONARY"
TARGET_FILE_ENV = "DATALOADER_DELTA_TARGET_FILE_MB"
SMALL_READ_ENV = "DATALOADER_SMALL_READ_MB"
WIDEN_REWRITE_ENV = "DATALOADER_WIDEN_REWRITE_MAX_MB"
DEFAULT_COMPRESSION = "ZSTD(1)"
COMPRESSION_CODECS = ("UNCOMPRESSED", "SNAPPY", "GZIP", "BROTLI", "LZ4", "LZ4_RAW", "ZSTD")
DEFAULT_TARGET_FILE_MB = 64
MERGED_TARGET_FILE_MB = 16
DEFAULT_SMALL_READ_MB = 128
DEFAULT_WIDEN_REWRITE_MB = 1024
_CODEC_TEXT = re.compile(r"([A-Z0-9_]+)(?:\((\d+)\))?")


def writer_properties() -> WriterProperties:
    """Parquet writer settings: 262k-row row groups, `DATALOADER_DELTA_COMPRESSION` (default
    `ZSTD(1)`; `CODEC` or `CODEC(level)`), dictionary pages only when `DATALOADER_DELTA_DICTIONARY=on`.

    Raises:
        ConfigurationError: an unknown codec or dictionary setting, naming the variable.
    """
    codec, level = _compression(os.environ.get(COMPRESSION_ENV, "") or DEFAULT_COMPRESSION)
    dictionary = os.environ.get(DICTIONARY_ENV, "off").strip().lower()
    if dictionary not in ("on", "off"):
        raise ConfigurationError(f"{DICTIONARY_ENV}={dictionary!r}: expected 'on' or 'off'")
    return WriterProperties(
        max_row_group_size=ROW_GROUP_ROWS,
        compression=codec,  # type: ignore[arg-type]
        compression_level=level,
        default_column_properties=ColumnProperties(dictionary_enabled=dictionary == "on"),
    )


def target_file_bytes(load_strategy: str) -> int:
    """Data file size the writer aims at for a table loaded with `load_strategy`:
    `DATALOADER_DELTA_TARGET_FILE_MB` when set, else 16 MB for MERGEd tables and 64 MB for the rest."""
    default = MERGED_TARGET_FILE_MB if load_strategy in MERGE_STRATEGIES else DEFAULT_TARGET_FILE_MB
    return _megabytes(TARGET_FILE_ENV, default, minimum=1)


def small_read_bytes() -> int:
    """How much Arrow data a read of changes may hold to be merged from memory (`DATALOADER_SMALL_READ_MB`)."""
    return _megabytes(SMALL_READ_ENV, DEFAULT_SMALL_READ_MB, minimum=0)


def widen_rewrite_max_bytes() -> int:
    """The largest table (data bytes) a schema_policy widening may rewrite in place
    (`DATALOADER_WIDEN_REWRITE_MAX_MB`, default 1024; 0: never, a load_full does it)."""
    return _megabytes(WIDEN_REWRITE_ENV, DEFAULT_WIDEN_REWRITE_MB, minimum=0)


def _megabytes(variable: str, default: int, *, minimum: int) -> int:
    return whole_number(variable, default, unit="megabytes", minimum=minimum) << 20


def _compression(text: str) -> tuple[str, int | None]:
    match = _CODEC_TEXT.fullmatch(text.strip().upper())
    if match is None or match.group(1) not in COMPRESSION_CODECS:
        raise ConfigurationError(
            f"{COMPRESSION_ENV}={text!r}: expected one of {', '.join(COMPRESSION_CODECS)}, "
            "optionally with a level, e.g. ZSTD(3)"
        )
    return match.group(1), int(match.group(2)) if match.group(2) else None
