"""Closed sets of names the control schema accepts; the SQL rules and the Python types derive from these.

The one definition: control_db's CHECK constraints and dbconfig trigger, the worker's request
validation, its error kinds and its secret resolver all read these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

LoadStrategy = Literal[
    "full", "incremental", "append_only", "rolling", "check_and_load", "chunked_backfill", "cdc"
]
LoadStatus = Literal["Queued", "In Progress", "Succeeded", "Failed"]
DbType = Literal["postgresql", "mysql", "mariadb", "sqlite", "mssql", "oracle", "snowflake", "clickhouse"]
KvScope = Literal["env", "file", "literal"]
RetryDecision = Literal["retry", "manual_review"]
ErrorKind = Literal["transient", "permanent", "configuration"]
DeleteMode = Literal["none", "soft", "hard"]
SchemaPolicy = Literal["evolve", "freeze", "discard_new"]
HistoryMode = Literal["none", "scd2"]
# Strategies whose loads can keep history (history_mode scd2): they MERGE changed rows on the
# primary key (cdc: each key's last change of the batch, pipes_workers/cdc/apply.py).
HISTORY_STRATEGIES: frozenset[str] = frozenset({"incremental", "rolling", "check_and_load", "cdc"})
# Strategies whose loads MERGE on the primary key (chunked_backfill hands over to incremental): their
# tables get smaller target files and are clustered by the key.
MERGE_STRATEGIES: frozenset[str] = frozenset(
    {"incremental", "check_and_load", "rolling", "chunked_backfill", "cdc"}
)

LOAD_STRATEGIES: tuple[str, ...] = get_args(LoadStrategy)
LOAD_STATUSES: tuple[str, ...] = get_args(LoadStatus)
DB_TYPES: tuple[str, ...] = get_args(DbType)
KV_SCOPES: tuple[str, ...] = get_args(KvScope)
RETRY_DECISIONS: tuple[str, ...] = get_args(RetryDecision)
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)
DELETE_MODES: tuple[str, ...] = get_args(DeleteMode)
SCHEMA_POLICIES: tuple[str, ...] = get_args(SchemaPolicy)
HISTORY_MODES: tuple[str, ...] = get_args(HistoryMode)

SAFE_PATH_PATTERN = r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$"

# The keys `db_config_value` may hold, and the shape each value must have. With db_kv_scope `env` a
# string value names an environment variable, with `file` a file under DATALOADER_SECRETS_DIR, with
# `literal` it is the value itself. Kinds:
#   text   a string (literal: the value; env/file: the name of the secret holding it)
#   port   literal: an integer 1..65535 (a JSON number or a string of digits); env/file: a secret name,
#          or a JSON number 1..65535 used as it is
#   flag   literal: true/false; env/file: a secret name, or true/false used as it is
#   object an object of option name -> value; its string values follow the scope like text values
ConfigKeyKind = Literal["text", "port", "flag", "object"]
CONFIG_KEY_KINDS: dict[str, ConfigKeyKind] = {
    "host": "text",
    "port": "port",
    "database": "text",
    "user": "text",
    "password": "text",
    "options": "object",
    "path": "text",
    "schema": "text",
    "account": "text",
    "warehouse": "text",
    "role": "text",
}


@dataclass(frozen=True)
class DbConfigKeys:
    """The `db_config_value` keys one db_type needs (`required`) and may also have (`optional`)."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        """Every key this db_type accepts, required first."""
        return self.required + self.optional


_SERVER_OPTIONAL = ("port", "user", "password", "options", "schema")

# Per db_type: what `db_config_value` must and may hold. The INSERT/UPDATE trigger on
# table_control_dbconfig follows this table (control_db/dbconfig_rules.py renders it into SQL).
# To add a key: add it to CONFIG_KEY_KINDS (the worker's resolver, pipes_workers/secrets.py, reads
# that) and to the types that take it here, and write a migration whose upgrade is
# `op.execute(render_rules_function())` so databases already migrated learn it.
DB_CONFIG_KEYS: dict[str, DbConfigKeys] = {
    "postgresql": DbConfigKeys(required=("host", "database"), optional=_SERVER_OPTIONAL),
    "mysql": DbConfigKeys(required=("host", "database"), optional=_SERVER_OPTIONAL),
    "mariadb": DbConfigKeys(required=("host", "database"), optional=_SERVER_OPTIONAL),
    "sqlite": DbConfigKeys(required=("path",)),
    "mssql": DbConfigKeys(required=("host", "database"), optional=_SERVER_OPTIONAL),
    "oracle": DbConfigKeys(required=("host", "database"), optional=_SERVER_OPTIONAL),
    # Snowflake addresses an account, not a host (`host`/`port` only for an emulator or a proxy).
    "snowflake": DbConfigKeys(
        required=("account", "database"), optional=(*_SERVER_OPTIONAL, "host", "warehouse", "role")
    ),
    # ClickHouse has a `default` database, so only the host is needed.
    "clickhouse": DbConfigKeys(required=("host",), optional=("database", *_SERVER_OPTIONAL)),
}
