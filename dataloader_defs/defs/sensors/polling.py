"""How DataLoader's polling sensors are declared: running from the start, at their own interval setting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagster import DefaultSensorStatus, sensor

from dataloader_defs.defs.settings import interval


def polling_sensor(*, every: str, description: str, **kwargs: Any) -> Callable[..., Any]:
    """Dagster's `@sensor`, running by default, evaluated every `every` seconds (the name of its
    DATALOADER_*_INTERVAL_S setting); other keyword arguments go to `@sensor` as they are."""
    return sensor(
        minimum_interval_seconds=interval(every),
        default_status=DefaultSensorStatus.RUNNING,
        description=description,
        **kwargs,
    )
