"""The maintenance worker's request and result: what `dataloader maintain` and the Dagster
maintenance job hand over (no secrets: storage options come from the worker's environment)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipes_workers.errors import ConfigurationError


@dataclass(frozen=True)
class MaintenanceRequest:
    """One table to maintain (what the Pipes maintenance worker receives)."""

    control_key: str
    destination_table: str
    lake_root: str
    load_strategy: str
    primary_keys: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for Pipes extras."""
        return {**asdict(self), "primary_keys": list(self.primary_keys)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MaintenanceRequest:
        """Parse the Pipes extras form."""
        try:
            return cls(**{**data, "primary_keys": tuple(data.get("primary_keys") or ())})
        except TypeError as exc:
            raise ConfigurationError(f"invalid maintenance request: {exc}") from None


@dataclass(frozen=True)
class MaintenanceResult:
    """What one maintenance pass did to one table."""

    control_key: str
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    files_removed: int = 0
    bytes_removed: int = 0
    retention_hours: int = 0
    z_order_by: tuple[str, ...] = ()
    seconds: float = 0.0
    skipped: str | None = None  # why nothing was done

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON-able values (materialisation / op output metadata)."""
        return {**asdict(self), "z_order_by": ", ".join(self.z_order_by)}
