"""Resolve a source configuration's secret references into connection parameters.

`db_kv_scope` says where values live: `env` (each string value names an environment variable),
`file` (each string value names a file under DATALOADER_SECRETS_DIR) or `literal` (the value
itself, for local development). The result never shows the password in repr/str, and errors name
the config key and the secret's *name*, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataloader_contract.errors import ConfigurationError, SecretNotFoundError
from dataloader_contract.request import SourceConfig
from dataloader_contract.vocabulary import CONFIG_KEY_KINDS, KV_SCOPES

SECRETS_DIR_ENV = "DATALOADER_SECRETS_DIR"
# The `db_config_value` keys a source config may hold: the control schema's own list.
KNOWN_KEYS: tuple[str, ...] = tuple(CONFIG_KEY_KINDS)


@dataclass(frozen=True)
class ConnectionParams:
    """Resolved connection parameters. `password` and `options` values are left out of repr/str."""

    db_config_key: str
    db_type: str
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    path: str | None = None
    schema: str | None = None
    account: str | None = None
    warehouse: str | None = None
    role: str | None = None

    @property
    def label(self) -> str:
        """A printable name for messages: config key, host:port/database (never credentials)."""
        where = self.path or f"{self.host or 'localhost'}:{self.port or '-'}/{self.database or ''}"
        return f"source {self.db_config_key!r} ({self.db_type} {where})"

    def secret_values(self) -> tuple[str, ...]:
        """Values to scrub from any text that may reach a message (password and option values)."""
        values = [self.password] if self.password else []
        values += [str(v) for v in self.options.values() if isinstance(v, str) and len(v) >= 4]
        return tuple(values)


def resolve_source(
    source: SourceConfig, *, secrets_dir: str | os.PathLike[str] | None = None
) -> ConnectionParams:
    """Resolve every value of `source.config` according to its scope; see the module docstring.

    Raises SecretNotFoundError (naming config key and secret name) when a secret is missing, and
    ConfigurationError for an unknown scope, an unknown key or a bad port.
    """
    if source.kv_scope not in KV_SCOPES:
        raise ConfigurationError(
            f"{source.db_config_key}: db_kv_scope {source.kv_scope!r} is not one of {', '.join(KV_SCOPES)}"
        )
    unknown = sorted(set(source.config) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigurationError(
            f"{source.db_config_key}: unknown db_config_value key(s) {', '.join(unknown)}; "
            f"known: {', '.join(KNOWN_KEYS)}"
        )
    resolver = _Resolver(source.db_config_key, source.kv_scope, secrets_dir)
    values: dict[str, Any] = {}
    for key, raw in source.config.items():
        if key == "options":
            if raw is None:
                continue
            if not isinstance(raw, Mapping):
                raise ConfigurationError(
                    f"{source.db_config_key}: db_config_value key 'options' must be an object"
                )
            values["options"] = {name: resolver.resolve(f"options.{name}", v) for name, v in raw.items()}
        else:
            values[key] = resolver.resolve(key, raw)
    if values.get("port") is not None:
        try:
            values["port"] = int(values["port"])
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"{source.db_config_key}: db_config_value key 'port' is not an integer"
            ) from None
    for key in ("host", "database", "user", "password", "path", "schema", "account", "warehouse", "role"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    return ConnectionParams(db_config_key=source.db_config_key, db_type=source.db_type, **values)


class _Resolver:
    """Resolves one value by scope; error messages carry key and secret name only."""

    def __init__(self, config_key: str, scope: str, secrets_dir: str | os.PathLike[str] | None) -> None:
        self.config_key = config_key
        self.scope = scope
        self._secrets_dir = secrets_dir

    def resolve(self, key: str, raw: Any) -> Any:
        if self.scope == "literal" or not isinstance(raw, str):
            return raw
        if self.scope == "env":
            value = os.environ.get(raw)
            if value is None:
                raise SecretNotFoundError(
                    f"{self.config_key}: db_config_value key {key!r} names environment variable {raw!r}, which is not set"
                )
            return value
        return self._read_file(key, raw)

    def _read_file(self, key: str, name: str) -> str:
        base_text = self._secrets_dir if self._secrets_dir is not None else os.environ.get(SECRETS_DIR_ENV)
        if not base_text:
            raise SecretNotFoundError(
                f"{self.config_key}: db_config_value key {key!r} names secret file {name!r}, "
                f"but no secrets directory is configured ({SECRETS_DIR_ENV})"
            )
        base = Path(base_text).resolve()
        candidate = (base / name).resolve()
        if (
            not name
            or Path(name).is_absolute()
            or ".." in Path(name).parts
            or not candidate.is_relative_to(base)
        ):
            raise ConfigurationError(
                f"{self.config_key}: db_config_value key {key!r} names secret file {name!r} outside the secrets directory"
            )
        try:
            text = candidate.read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise SecretNotFoundError(
                f"{self.config_key}: db_config_value key {key!r} names secret file {name!r}, "
                f"which does not exist under {SECRETS_DIR_ENV}"
            ) from None
        except OSError as exc:
            raise SecretNotFoundError(
                f"{self.config_key}: db_config_value key {key!r}: secret file {name!r} is unreadable ({exc.strerror})"
            ) from None
        return text.rstrip("\r\n")
