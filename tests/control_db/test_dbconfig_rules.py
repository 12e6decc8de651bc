"""table_control_dbconfig refuses, at INSERT/UPDATE, a db_config_value its db_type and scope cannot use."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from control_rows import insert_source, rules_of_0003_disabled
from psycopg.types.json import Jsonb

from control_db.dbconfig_rules import rules_document
from dataloader_contract.vocabulary import CONFIG_KEY_KINDS, DB_CONFIG_KEYS, DB_TYPES

SERVER_ENV = {"host": "ERP_HOST", "port": "ERP_PORT", "database": "ERP_DB", "user": "ERP_USER"}

GOOD_CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    # (db_type, db_kv_scope, db_config_value)
    ("postgresql", "env", {**SERVER_ENV, "password": "ERP_PASSWORD", "options": {"sslmode": "ERP_SSLMODE"}}),
    ("postgresql", "env", {"host": "ERP_HOST", "port": 5432, "database": "ERP_DB"}),
    (
        "postgresql",
        "file",
        {"host": "erp/host", "port": "erp/port", "database": "erp-db.txt", "password": "pw"},
    ),
    ("postgresql", "literal", {"host": "db.internal", "port": 5432, "database": "erp", "password": "p'w\n"}),
    (
        "postgresql",
        "literal",
        {"host": "db", "port": "6543", "database": "erp", "password": "", "schema": None},
    ),
    (
        "mysql",
        "literal",
        {"host": "127.0.0.1", "database": "shop", "options": {"charset": "utf8mb4", "x": 1}},
    ),
    ("mariadb", "env", {"host": "M_HOST", "database": "M_DB", "user": "M_USER", "password": "M_PW"}),
    ("sqlite", "literal", {"path": "/data/app.db"}),
    ("sqlite", "file", {"path": "sqlite_path"}),
    ("mssql", "env", {"host": "MS_HOST", "database": "MS_DB"}),
    ("oracle", "literal", {"host": "ora", "port": 1521, "database": "ORCLPDB1"}),
    (
        "snowflake",
        "env",
        {"account": "SF_ACCOUNT", "database": "SF_DB", "user": "SF_USER", "warehouse": "SF_WH"},
    ),
    ("clickhouse", "literal", {"host": "ch"}),
]


def test_good_configs_are_accepted(control_conn: psycopg.Connection) -> None:
    for number, (db_type, scope, value) in enumerate(GOOD_CONFIGS):
        insert_source(
            control_conn, f"src{number}", db_type=db_type, db_kv_scope=scope, db_config_value=Jsonb(value)
        )
    row = control_conn.execute("SELECT count(*) FROM dataloader.table_control_dbconfig").fetchone()
    assert row == (len(GOOD_CONFIGS),)


BAD_CONFIGS: list[tuple[str, str, str, dict[str, Any], str]] = [
    # (case id, db_type, db_kv_scope, db_config_value, the rule after "table_control_dbconfig.db_config_value: ")
    (
        "env with only host",
        "postgresql",
        "env",
        {"host": "ERP_HOST"},
        "key 'database' is required for db_type postgresql (required: host, database)",
    ),
    (
        "sqlite without path",
        "sqlite",
        "literal",
        {"database": "x"},
        "key 'path' is required for db_type sqlite (required: path)",
    ),
    (
        "required key null",
        "mysql",
        "literal",
        {"host": None, "database": "d"},
        "key 'host' is required for db_type mysql",
    ),
    (
        "unknown key",
        "postgresql",
        "literal",
        {"host": "h", "database": "d", "pasword": "x"},
        "key 'pasword' is not a key of db_type postgresql (allowed: host, database, port, user, password, options, schema)",
    ),
    (
        "host on sqlite",
        "sqlite",
        "literal",
        {"path": "/a.db", "host": "h"},
        "key 'host' is not a key of db_type sqlite (allowed: path)",
    ),
    (
        "env value not a variable name",
        "postgresql",
        "env",
        {**SERVER_ENV, "host": "127.0.0.1"},
        "key 'host' must name an environment variable (letters, digits and _, not starting with a digit), "
        "as db_kv_scope is env (got '127.0.0.1')",
    ),
    (
        "env name starting with a digit",
        "postgresql",
        "env",
        {**SERVER_ENV, "user": "1USER"},
        "key 'user' must name an environment variable",
    ),
    (
        "env option not a variable name",
        "postgresql",
        "env",
        {**SERVER_ENV, "options": {"sslmode": "verify-full"}},
        "key 'options.sslmode' must name an environment variable",
    ),
    (
        "env text not a string",
        "postgresql",
        "env",
        {**SERVER_ENV, "database": 5},
        "key 'database' must be a string",
    ),
    (
        "file path absolute",
        "postgresql",
        "file",
        {"host": "/etc/passwd", "database": "db"},
        "key 'host' must name a file under DATALOADER_SECRETS_DIR: a relative path without .., "
        "as db_kv_scope is file (got '/etc/passwd')",
    ),
    (
        "file path with ..",
        "postgresql",
        "file",
        {"host": "h", "database": "../../etc/shadow"},
        "key 'database' must name a file under DATALOADER_SECRETS_DIR",
    ),
    (
        "file path empty",
        "postgresql",
        "file",
        {"host": "", "database": "db"},
        "key 'host' must name a file under DATALOADER_SECRETS_DIR",
    ),
    (
        "literal port text",
        "postgresql",
        "literal",
        {"host": "h", "database": "d", "port": "fivefourthreetwo"},
        "key 'port' must be an integer 1..65535",
    ),
    (
        "literal port zero",
        "postgresql",
        "literal",
        {"host": "h", "database": "d", "port": 0},
        "key 'port' must be an integer 1..65535",
    ),
    (
        "literal port too big",
        "postgresql",
        "literal",
        {"host": "h", "database": "d", "port": 70000},
        "key 'port' must be an integer 1..65535",
    ),
    (
        "literal port fraction",
        "postgresql",
        "literal",
        {"host": "h", "database": "d", "port": 5432.5},
        "key 'port' must be an integer 1..65535",
    ),
    (
        "env port number out of range",
        "postgresql",
        "env",
        {**SERVER_ENV, "port": 99999},
        "key 'port' must be an integer 1..65535 or the name of a secret holding one",
    ),
    (
        "options not an object",
        "mysql",
        "literal",
        {"host": "h", "database": "d", "options": "ssl=1"},
        "key 'options' must be a JSON object",
    ),
    (
        "nested option",
        "mysql",
        "literal",
        {"host": "h", "database": "d", "options": {"ssl": {"ca": "x"}}},
        "key 'options.ssl' must be a string, number or boolean",
    ),
]


@pytest.mark.parametrize(
    ("db_type", "scope", "value", "rule"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_is_refused(
    control_conn: psycopg.Connection, db_type: str, scope: str, value: dict[str, Any], rule: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_source(control_conn, "erp", db_type=db_type, db_kv_scope=scope, db_config_value=Jsonb(value))
    message = refused.value.diag.message_primary or ""
    assert message.startswith(f"table_control_dbconfig.db_config_value: {rule}"), message
    assert refused.value.diag.column_name == "db_config_value"


def test_literal_values_never_appear_in_a_refusal(control_conn: psycopg.Connection) -> None:
    value = {"host": "h", "database": "d", "password": ["Pl4nted-secret"]}
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_source(control_conn, "erp", db_kv_scope="literal", db_config_value=Jsonb(value))
    assert "key 'password' must be a string" in str(refused.value)
    assert "Pl4nted" not in str(refused.value) + str(refused.value.diag.message_detail)


def test_update_that_breaks_the_config_is_refused(control_conn: psycopg.Connection) -> None:
    insert_source(control_conn, "erp")
    with pytest.raises(
        psycopg.errors.CheckViolation, match=r"^table_control_dbconfig\.db_kv_scope|key 'host'"
    ):
        control_conn.execute(
            "UPDATE dataloader.table_control_dbconfig SET db_kv_scope = 'file', "
            'db_config_value = db_config_value || \'{"host": "/abs"}\''
        )
    with pytest.raises(psycopg.errors.CheckViolation, match=r"key 'path' is required for db_type sqlite"):
        control_conn.execute("UPDATE dataloader.table_control_dbconfig SET db_type = 'sqlite'")


def test_config_stored_before_the_rules_can_still_be_touched(control_conn: psycopg.Connection) -> None:
    with rules_of_0003_disabled(control_conn):
        insert_source(control_conn, "erp", db_config_value=Jsonb({"host": "127.0.0.1"}))
    control_conn.execute("UPDATE dataloader.table_control_dbconfig SET updated_at = now() - interval '1 day'")
    problems = control_conn.execute(
        "SELECT p.problem FROM dataloader.table_control_dbconfig AS s, "
        "dataloader.dbconfig_value_problems(s, NULL::dataloader.table_control_dbconfig) AS p"
    ).fetchall()
    assert [p for (p,) in problems] == [
        "key 'database' is required for db_type postgresql (required: host, database)",
        "key 'host' must name an environment variable (letters, digits and _, not starting with a digit), "
        "as db_kv_scope is env (got '127.0.0.1')",
    ]
    with pytest.raises(psycopg.errors.CheckViolation, match=r"key 'database' is required"):
        control_conn.execute(
            'UPDATE dataloader.table_control_dbconfig SET db_config_value = \'{"host": "H"}\''
        )


def test_control_character_in_db_config_key_is_refused(control_conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_source(control_conn, "erp\n--")
    assert refused.value.diag.message_primary == (
        "table_control_dbconfig.db_config_key: must not contain control characters "
        "(U+0000-U+001F, U+007F): U+000A at position 4"
    )


def test_every_db_type_has_rules(control_conn: psycopg.Connection) -> None:
    assert set(DB_CONFIG_KEYS) == set(DB_TYPES)
    for db_type, keys in DB_CONFIG_KEYS.items():
        assert set(keys.allowed) <= set(CONFIG_KEY_KINDS), db_type
    row = control_conn.execute("SELECT dataloader.dbconfig_rules()").fetchone()
    assert row == (rules_document(),)
