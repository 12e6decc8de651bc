"""Closed sets of names the control schema accepts; the SQL rules and the Python types derive from these."""

from __future__ import annotations

from typing import Literal, get_args

LoadStrategy = Literal["full", "incremental", "append_only", "rolling", "check_and_load", "chunked_backfill"]
LoadStatus = Literal["Queued", "In Progress", "Succeeded", "Failed"]
DbType = Literal["postgresql", "mysql", "mariadb", "sqlite", "mssql", "oracle", "snowflake", "clickhouse"]
KvScope = Literal["env", "file", "literal"]
RetryDecision = Literal["retry", "manual_review"]
ErrorKind = Literal["transient", "permanent", "configuration"]
DeleteMode = Literal["none", "soft", "hard"]

LOAD_STRATEGIES: tuple[str, ...] = get_args(LoadStrategy)
LOAD_STATUSES: tuple[str, ...] = get_args(LoadStatus)
DB_TYPES: tuple[str, ...] = get_args(DbType)
KV_SCOPES: tuple[str, ...] = get_args(KvScope)
RETRY_DECISIONS: tuple[str, ...] = get_args(RetryDecision)
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)
DELETE_MODES: tuple[str, ...] = get_args(DeleteMode)

SAFE_PATH_PATTERN = r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$"
