"""The SQLSTATE of a PostgreSQL connection the server refused at startup, which libpq reports as text.

The server sends its refusal as an ErrorResponse with a SQLSTATE, but libpq keeps no result for a
connection that fails during startup: psycopg's and ADBC's OperationalError carry no SQLSTATE
(psycopg builds them from PQerrorMessage alone). Two ways to read it back, in this order:

1. The code libpq printed: a catalog connection opens with libpq's VERBOSE error verbosity
   (postgres_connect.py), so its refusal reads `FATAL:  3D000: <message>` in any server language —
   a five-character SQLSTATE after the severity's `:  `.
2. The English text, for connections opened where the verbosity cannot be set (ADBC's bundled
   libpq): libpq prints the server's message after a fixed marker, `… failed: FATAL:  <message>`,
   and the messages the server sends at startup are fixed texts of PostgreSQL's backend, each with
   one SQLSTATE (checked against the codes of the ErrorResponses a PostgreSQL 15 server sends).
   This table maps those few, and only after libpq's marker, so no other error's words are read.
   A server whose `lc_messages` is not English translates them: there, only (1) finds the code.
"""

from __future__ import annotations

import re

_MARKER = r"\bfailed: FATAL:  "
_STARTUP_REFUSALS: tuple[tuple[str, str], ...] = (
    (r'database ".*" does not exist', "3D000"),  # invalid_catalog_name
    (r'database ".*" is not currently accepting connections', "55000"),  # object_not_in_prerequisite_state
    (r'permission denied for database ".*"', "42501"),  # insufficient_privilege
    (r'password authentication failed for user ".*"', "28P01"),  # invalid_password
    (r'role ".*" does not exist', "28000"),  # invalid_authorization_specification
    (r'role ".*" is not permitted to log in', "28000"),
    (r"no pg_hba\.conf entry for ", "28000"),
    (r"sorry, too many clients already", "53300"),  # too_many_connections
    (r"remaining connection slots are reserved", "53300"),
    (r'too many connections for (role|database) ".*"', "53300"),
    (
        r"the database system is (starting up|shutting down|in recovery mode|not (yet )?accepting connections)",
        "57P03",
    ),
)
_PRINTED_CODE = re.compile(r"(?:^|\s)[^\s:]+:  ([0-9A-Z]{5}): ")  # "<severity>:  <SQLSTATE>: "
_REFUSALS = [(re.compile(_MARKER + pattern), sqlstate) for pattern, sqlstate in _STARTUP_REFUSALS]


def startup_refusal_sqlstate(message: str) -> str | None:
    """The SQLSTATE of the server's startup refusal libpq rendered into `message`, else None."""
    printed = _PRINTED_CODE.search(message)
    if printed:
        return printed.group(1)
    for pattern, sqlstate in _REFUSALS:
        if pattern.search(message):
            return sqlstate
    return None
