"""Worker exceptions. Each says whether a retry can help, which the retry analysis reads.

Messages name the table, column and rule, and never carry a secret value.
"""

from __future__ import annotations


class LoadError(Exception):
    """Base class for load failures."""

    retryable: bool = False


class TransientLoadError(LoadError):
    """A failure that a later retry may not meet: connection refused/reset, timeout, deadlock, lock timeout."""

    retryable = True


class PermanentLoadError(LoadError):
    """A failure that needs a person: bad configuration, missing table/column, permission, type conflict."""

    retryable = False


class ConfigurationError(PermanentLoadError):
    """The load request or source configuration is invalid (names the field)."""


class SecretNotFoundError(ConfigurationError):
    """A secret named by the source configuration cannot be resolved (names the secret, never its value)."""


class SchemaConflictError(PermanentLoadError):
    """The source schema is incompatible with the Delta table (names the table and column)."""


class UnsupportedTypeError(PermanentLoadError):
    """A source column type has no faithful Arrow mapping (names the table, column and type)."""
