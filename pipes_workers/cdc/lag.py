"""The cdc lag check's verdict: how much log the source retains for a table's capture.

DATALOADER_CDC_LAG_WARN_BYTES (default 1 GiB) and DATALOADER_CDC_LAG_ERROR_BYTES (default 16 GiB):
above the first the check fails with WARN, above the second with ERROR.
"""

from __future__ import annotations

from typing import Any

from pipes_workers.env_settings import whole_number

WARN_ENV = "DATALOADER_CDC_LAG_WARN_BYTES"
ERROR_ENV = "DATALOADER_CDC_LAG_ERROR_BYTES"
DEFAULT_WARN_BYTES = 1 << 30
DEFAULT_ERROR_BYTES = 16 << 30


def lag_verdict(lag_bytes: int | None) -> tuple[bool, str, dict[str, Any]]:
    """(passed, severity, metadata) of the lag check for `lag_bytes` (None: not measured -> WARN)."""
    warn = whole_number(WARN_ENV, DEFAULT_WARN_BYTES, unit="bytes")
    error = whole_number(ERROR_ENV, DEFAULT_ERROR_BYTES, unit="bytes")
    if lag_bytes is None:
        return False, "WARN", {"reason": "the capture did not measure its lag (no slot?)"}
    metadata = {"lag_bytes": lag_bytes, "warn_above_bytes": warn, "error_above_bytes": error}
    if lag_bytes > error:
        return False, "ERROR", metadata
    return lag_bytes <= warn, "WARN", metadata
