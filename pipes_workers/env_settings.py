"""The worker's numeric settings read from the environment: unset or blank takes the default, anything
else must parse, or the load fails with a `configuration` error naming the variable and its value."""

from __future__ import annotations

import os

from dataloader_contract.errors import ConfigurationError


def whole_number(name: str, default: int, *, unit: str, minimum: int = 0) -> int:
    """`name` as a whole number of `unit` >= `minimum` (`default` when unset)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        floor = f" >= {minimum}" if minimum else ""
        raise ConfigurationError(f"{name}={raw!r} must be a whole number of {unit}{floor}")
    return int(raw)


def positive_number(name: str, default: float) -> float:
    """`name` as a number > 0 (`default` when unset)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if not value > 0:  # also refuses nan
        raise ConfigurationError(f"{name}={raw!r} must be a positive number")
    return value
