"""The thresholds `dataloader discover` proposes strategies with: environment defaults, CLI overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dataloader_contract.errors import ConfigurationError

FULL_BELOW_ROWS_ENV = "DATALOADER_DISCOVER_FULL_BELOW_ROWS"
BACKFILL_ABOVE_BYTES_ENV = "DATALOADER_DISCOVER_BACKFILL_ABOVE_BYTES"
CHUNK_SIZE_ENV = "DATALOADER_DISCOVER_CHUNK_SIZE"
DEFAULTS = {
    FULL_BELOW_ROWS_ENV: 100_000,  # a full reload of fewer rows costs less than tracking a watermark
    BACKFILL_ABOVE_BYTES_ENV: 10 * 1024**3,  # 10 GiB: more than one load should read in one go
    CHUNK_SIZE_ENV: 1_000_000,  # key values per backfill chunk
}
DEFAULT_CRON = "0 * * * *"


@dataclass(frozen=True)
class DiscoverSettings:
    """Thresholds of the strategy rules (see `proposal.propose`)."""

    full_below_rows: int = DEFAULTS[FULL_BELOW_ROWS_ENV]
    backfill_above_bytes: int = DEFAULTS[BACKFILL_ABOVE_BYTES_ENV]
    chunk_size: int = DEFAULTS[CHUNK_SIZE_ENV]
    cron: str = DEFAULT_CRON

    @classmethod
    def from_env(cls, **overrides: int | str | None) -> DiscoverSettings:
        """The environment's values (or the defaults), then the non-None `overrides`."""
        values: dict[str, int | str] = {
            "full_below_rows": _env_int(FULL_BELOW_ROWS_ENV),
            "backfill_above_bytes": _env_int(BACKFILL_ABOVE_BYTES_ENV),
            "chunk_size": _env_int(CHUNK_SIZE_ENV, minimum=1),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _env_int(name: str, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return DEFAULTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigurationError(f"{name}={value} must be at least {minimum}")
    return value
