"""The hashing key of `hash_columns`: one secret for the whole lake, so a value hashes the same in
every table and joins across tables keep working.

Resolved like the sources' secrets, by the worker, from its own environment: the environment
variable DATALOADER_HASH_KEY holds the key, or else the file `hash_key` under the secrets directory
(DATALOADER_SECRETS_DIR, where `file`-scoped source secrets live; one trailing newline is dropped).
The key never travels in the load request, never reaches the lake, metadata, logs or a message.
"""

from __future__ import annotations

import os
from pathlib import Path

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import LoadRequest
from pipes_workers.column_hashing import ColumnHasher
from pipes_workers.secrets import SECRETS_DIR_ENV

HASH_KEY_ENV = "DATALOADER_HASH_KEY"
HASH_KEY_FILE = "hash_key"
MIN_KEY_BYTES = 16


def hash_key(
    control_key: str, hash_columns: tuple[str, ...], *, secrets_dir: str | os.PathLike[str] | None
) -> bytes:
    """The key, as bytes; ConfigurationError naming the table and the settings when it is missing or short.

    Args:
        control_key: the table whose load needs the key (for messages).
        hash_columns: the columns it hashes (for messages).
        secrets_dir: the secrets directory (default: DATALOADER_SECRETS_DIR).
    """
    where = f"{HASH_KEY_ENV} or the file {HASH_KEY_FILE!r} under {SECRETS_DIR_ENV}"
    needs = f"{control_key}: hash_columns ({', '.join(hash_columns)}) need the hashing key"
    text = os.environ.get(HASH_KEY_ENV)
    source = HASH_KEY_ENV
    if not text:
        base = secrets_dir if secrets_dir is not None else os.environ.get(SECRETS_DIR_ENV)
        path = Path(base) / HASH_KEY_FILE if base else None
        if path is None or not path.is_file():
            raise ConfigurationError(f"{needs}, which is not set: set {where}")
        try:
            text = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigurationError(
                f"{needs}: the file {HASH_KEY_FILE!r} is unreadable ({exc.strerror})"
            ) from None
        source = f"the file {HASH_KEY_FILE!r}"
    key = text.encode()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigurationError(f"{needs}: the key in {source} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def hasher_for(request: LoadRequest, *, secrets_dir: str | os.PathLike[str] | None) -> ColumnHasher | None:
    """The hasher of the request's hash_columns (None when it hashes nothing), its key resolved now."""
    if not request.hash_columns:
        return None
    key = hash_key(request.control_key, request.hash_columns, secrets_dir=secrets_dir)
    return ColumnHasher(request.hash_columns, key)
