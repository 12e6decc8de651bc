"""The load request: everything a worker needs, passed by reference (secret *names*, never values).

Part of the shared contract (`dataloader_contract`): no heavy imports, used by all three packages.

The orchestrator (Dagster asset or `dataloader load`) builds it from the control row and the source
config; the worker validates it here and fails loudly, naming the field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.vocabulary import (
    DELETE_MODES,
    HISTORY_MODES,
    HISTORY_STRATEGIES,
    KV_SCOPES,
    LOAD_STRATEGIES,
    SCHEMA_POLICIES,
    DbType,
    DeleteMode,
    HistoryMode,
    KvScope,
    LoadStrategy,
    SchemaPolicy,
)


def table_uri(lake_root: str | Path, destination_table: str) -> str:
    """Where a destination table lives: `<lake_root>/<destination_table>`; a local root is made absolute.

    The one rule for the lake's layout, used by the worker (writes) and the orchestrator (reads).
    """
    root = str(lake_root)
    relative = destination_table.strip("/")
    if "://" in root:
        return f"{root.rstrip('/')}/{relative}"
    return str(Path(root).resolve() / relative)


@dataclass(frozen=True)
class SourceConfig:
    """A source database, as in table_control_dbconfig. With scope env/file, values are secret names."""

    db_config_key: str
    db_type: DbType
    kv_scope: KvScope
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dbconfig_row(cls, source: Any) -> SourceConfig:
        """The config of a control_db SourceDbConfig (duck-typed), as stored: secret names, never values."""
        return cls(
            db_config_key=source.db_config_key,
            db_type=source.db_type,
            kv_scope=source.db_kv_scope,
            config=dict(source.db_config_value or {}),
        )


# The request's column-name lists that come from the control row's text[] columns of the same name.
COLUMN_LISTS = ("include_columns", "exclude_columns", "hash_columns")


@dataclass(frozen=True)
class LoadRequest:
    """One load of one control row."""

    control_key: str
    load_strategy: LoadStrategy
    source_schema: str | None
    source_table: str
    destination_table: str
    source: SourceConfig
    lake_root: str
    primary_keys: tuple[str, ...] = ()
    incremental_column: str | None = None
    incremental_value: str | None = None
    incremental_lookback: str | None = None
    load_full: bool = False
    rolling_column: str | None = None
    rolling_window_days: int | None = None
    chunk_column: str | None = None
    chunk_size: int | None = None
    cron: str | None = None
    cron_timezone: str = "UTC"
    run_id: str | None = None
    delete_mode: DeleteMode = "none"
    delete_check_cron: str | None = None
    last_delete_check_at: str | None = None  # ISO 8601; when the last delete reconciliation ran
    # What lands (issue 22): only these columns are read / these never are; these land hashed.
    include_columns: tuple[str, ...] = ()
    exclude_columns: tuple[str, ...] = ()
    hash_columns: tuple[str, ...] = ()
    # The table's layout in the lake (pipes_workers/lake/partitioning.py, schema_policy.py).
    partition_by: tuple[str, ...] = ()
    schema_policy: SchemaPolicy = "evolve"
    history_mode: HistoryMode = "none"  # scd2: keep every version (pipes_workers/lake/history.py)

    def __post_init__(self) -> None:
        if self.load_strategy not in LOAD_STRATEGIES:
            raise ConfigurationError(
                f"{self.control_key}: load_strategy {self.load_strategy!r} is not one of {', '.join(LOAD_STRATEGIES)}"
            )
        if self.source.kv_scope not in KV_SCOPES:
            raise ConfigurationError(
                f"{self.control_key}: db_kv_scope {self.source.kv_scope!r} is not one of {', '.join(KV_SCOPES)}"
            )
        if not self.source_table:
            raise ConfigurationError(f"{self.control_key}: source_table is empty")
        if not self.destination_table:
            raise ConfigurationError(f"{self.control_key}: destination_table is empty")
        if self.delete_mode not in DELETE_MODES:
            raise ConfigurationError(
                f"{self.control_key}: delete_mode {self.delete_mode!r} is not one of {', '.join(DELETE_MODES)}"
            )
        if self.delete_mode != "none" and not self.primary_keys:
            raise ConfigurationError(f"{self.control_key}: delete_mode {self.delete_mode} needs primary_keys")
        if self.delete_mode == "soft" and self.load_strategy in ("full", "rolling"):
            raise ConfigurationError(
                f"{self.control_key}: delete_mode soft needs a strategy that keeps deleted rows, not {self.load_strategy}"
            )
        if self.include_columns and self.exclude_columns:
            raise ConfigurationError(
                f"{self.control_key}: exclude_columns cannot be set together with include_columns"
            )
        if self.schema_policy not in SCHEMA_POLICIES:
            raise ConfigurationError(
                f"{self.control_key}: schema_policy {self.schema_policy!r} is not one of {', '.join(SCHEMA_POLICIES)}"
            )
        self._validate_history()

    def _validate_history(self) -> None:
        if self.history_mode not in HISTORY_MODES:
            raise ConfigurationError(
                f"{self.control_key}: history_mode {self.history_mode!r} is not one of {', '.join(HISTORY_MODES)}"
            )
        if self.history_mode == "none":
            return
        if not self.primary_keys:
            raise ConfigurationError(
                f"{self.control_key}: history_mode {self.history_mode} needs primary_keys"
            )
        if self.load_strategy not in HISTORY_STRATEGIES:
            raise ConfigurationError(
                f"{self.control_key}: history_mode {self.history_mode} needs one of "
                f"{', '.join(sorted(HISTORY_STRATEGIES))}, not {self.load_strategy}"
            )

    @property
    def keeps_history(self) -> bool:
        """True when the table keeps every version of a row (history_mode scd2)."""
        return self.history_mode == "scd2"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, for Pipes extras."""
        data = asdict(self)
        data["primary_keys"] = list(self.primary_keys)
        data["partition_by"] = list(self.partition_by)
        data.update({name: list(getattr(self, name)) for name in COLUMN_LISTS})
        return data

    @classmethod
    def from_control_row(cls, row: Any, source: Any, *, lake_root: str, run_id: str | None) -> LoadRequest:
        """The request for a control row and its dbconfig row, as stored (secret names, never values).

        `row`/`source` are control_db's ControlRow/SourceDbConfig (duck-typed: control_db imports this
        package, not the other way round).
        """
        return cls(
            control_key=row.control_key,
            load_strategy=row.load_strategy,
            source_schema=row.source_schema,
            source_table=row.source_table,
            destination_table=row.destination_table,
            source=SourceConfig.from_dbconfig_row(source),
            lake_root=lake_root,
            primary_keys=tuple(row.primary_keys or ()),
            incremental_column=row.incremental_column,
            incremental_value=row.incremental_value,
            incremental_lookback=row.incremental_lookback,
            load_full=bool(row.load_full),
            rolling_column=row.rolling_column,
            rolling_window_days=row.rolling_window_days,
            chunk_column=row.chunk_column,
            chunk_size=row.chunk_size,
            cron=row.cron,
            cron_timezone=row.cron_timezone or "UTC",
            run_id=run_id,
            delete_mode=row.delete_mode,
            delete_check_cron=row.delete_check_cron,
            last_delete_check_at=row.last_delete_check_at.isoformat() if row.last_delete_check_at else None,
            partition_by=tuple(row.partition_by or ()),
            schema_policy=row.schema_policy,
            history_mode=row.history_mode,
            **{name: tuple(getattr(row, name, None) or ()) for name in COLUMN_LISTS},
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadRequest:
        """Parse the Pipes extras form; unknown or missing fields raise ConfigurationError naming them."""
        known = {f.name for f in fields(cls)}
        key = data.get("control_key", "<unknown control_key>")
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"{key}: unknown load request field(s): {', '.join(unknown)}")
        source = data.get("source")
        if not isinstance(source, dict):
            raise ConfigurationError(f"{key}: load request field 'source' is missing or not an object")
        try:
            source_config = SourceConfig(**source)
            values = {
                **data,
                "source": source_config,
                "primary_keys": tuple(data.get("primary_keys") or ()),
                "partition_by": tuple(data.get("partition_by") or ()),
            }
            values.update({name: tuple(data[name] or ()) for name in COLUMN_LISTS if name in data})
            return cls(**values)
        except TypeError as exc:
            raise ConfigurationError(f"{key}: invalid load request: {exc}") from None
