"""The maintenance worker's request and result: what `dataloader maintain` and the Dagster
maintenance job hand over (no secrets: storage options come from the worker's environment).

The result travels over Pipes like `LoadResult`: the worker reports `result.to_message()` as a
custom message, the job reads it back typed with `read_maintenance_result()`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from dataloader_contract.errors import ConfigurationError


@dataclass(frozen=True)
class MaintenanceRequest:
    """One table to maintain (what the Pipes maintenance worker receives)."""

    control_key: str
    destination_table: str
    lake_root: str
    load_strategy: str
    primary_keys: tuple[str, ...] = ()

    @classmethod
    def for_target(cls, target: Any, lake_root: str) -> MaintenanceRequest:
        """The request for a held row (`control_db.maintenance_lifecycle.MaintenanceTarget`, duck-typed)."""
        return cls(
            control_key=target.control_key,
            destination_table=target.destination_table,
            lake_root=lake_root,
            load_strategy=target.load_strategy,
            primary_keys=tuple(target.primary_keys),
        )

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


MESSAGE_KEY = "dataloader_maintenance_result"


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

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (`from_json` reverses it)."""
        return {**asdict(self), "z_order_by": list(self.z_order_by)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MaintenanceResult:
        """Rebuild from `to_json()`; unknown keys are an error naming them (a version mismatch)."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"MaintenanceResult: unknown field(s) {', '.join(unknown)}")
        return cls(**{**data, "z_order_by": tuple(data.get("z_order_by") or ())})

    def to_message(self) -> dict[str, Any]:
        """The Pipes custom message that carries this result."""
        return {MESSAGE_KEY: self.to_json()}


def read_maintenance_result(messages: Iterable[Any]) -> MaintenanceResult | None:
    """The MaintenanceResult among a Pipes invocation's custom messages (the last one), or None."""
    found = None
    for message in messages:
        if isinstance(message, Mapping) and MESSAGE_KEY in message:
            found = MaintenanceResult.from_json(message[MESSAGE_KEY])
    return found
