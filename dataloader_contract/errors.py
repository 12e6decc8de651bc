"""The load exceptions (shared contract). Each has a `kind` (can a retry help?) and a `code` (SQLSTATE, errno).

The kind is what the retry analysis decides from: `transient` (a later retry may succeed),
`permanent` (a person must fix the source or the table), `configuration` (a person must fix the
control row, the source config or a secret). Messages name the table, column and rule, and never
carry a secret value.
"""

from __future__ import annotations

from typing import ClassVar

from dataloader_contract.vocabulary import ErrorKind


class LoadError(Exception):
    """Base class for load failures.

    Args:
        message: what failed, naming table/column/rule (never a secret).
        code: the source's own error code when there is one (SQLSTATE, MySQL errno), else None.
    """

    kind: ClassVar[ErrorKind] = "permanent"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def retryable(self) -> bool:
        """Whether a retry may help."""
        return self.kind == "transient"


class TransientLoadError(LoadError):
    """A failure that a later retry may not meet: connection refused/reset, timeout, deadlock, lock timeout."""

    kind = "transient"


class PermanentLoadError(LoadError):
    """A failure that needs a person: missing table/column, permission, authentication, type conflict."""

    kind = "permanent"


class ConfigurationError(PermanentLoadError):
    """The load request or source configuration is invalid (names the field)."""

    kind = "configuration"


class SecretNotFoundError(ConfigurationError):
    """A secret named by the source configuration cannot be resolved (names the secret, never its value)."""


class SchemaConflictError(PermanentLoadError):
    """The source schema is incompatible with the Delta table (names the table and column)."""


class UnsupportedTypeError(PermanentLoadError):
    """A source column type has no faithful Arrow mapping (names the table, column and type)."""
