"""The cdc lag check's verdict: how much log the source retains for a table's capture.

DATALOADER_CDC_LAG_WARN_BYTES (default 1 GiB) and DATALOADER_CDC_LAG_ERROR_BYTES (default 16 GiB):
above the first the check fails with WARN, above the second with ERROR.
"""

from __future__ import annotations

import os
from typing import Any

from dataloader_contract.errors import ConfigurationError

WARN_ENV = "DATALOADER_CDC_LAG_WARN_BYTES"
ERROR_ENV = "DATALOADER_CDC_LAG_ERROR_BYTES"
DEFAULT_WARN_BYTES = 1 << 30
DEFAULT_ERROR_BYTES = 16 << 30


def _bytes_setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigurationError(f"{name}={raw!r} must be a whole number of bytes")
    return int(raw)


def lag_verdict(lag_bytes: int | None) -> tuple[bool, str, dict[str, Any]]:
    """(passed, severity, metadata) of the lag check for `lag_bytes` (None: not measured -> WARN)."""
    warn, error = _bytes_setting(WARN_ENV, DEFAULT_WARN_BYTES), _bytes_setting(ERROR_ENV, DEFAULT_ERROR_BYTES)
    if lag_bytes is None:
        return False, "WARN", {"reason": "the capture did not measure its lag (no slot?)"}
    metadata = {"lag_bytes": lag_bytes, "warn_above_bytes": warn, "error_above_bytes": error}
    if lag_bytes > error:
        return False, "ERROR", metadata
    return lag_bytes <= warn, "WARN", metadata
