"""Map driver exceptions to Transient/PermanentLoadError with scrubbed messages (no DSN, no password)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from dataloader_contract.errors import LoadError, PermanentLoadError, TransientLoadError
from pipes_workers.sources.libpq_connect_errors import startup_refusal_sqlstate

# SQLSTATE classes/codes (PostgreSQL; MySQL drivers report them too where they can).
_TRANSIENT_SQLSTATES = ("08", "53300", "57P01", "57P02", "57P03", "40001", "40P01", "55P03", "57014")
_PERMANENT_SQLSTATES = ("28", "3D000", "42P01", "42703", "42501", "3F000", "42")

_TRANSIENT_WORDS = (
    "connection refused",
    "connection reset",
    "timeout",
    "timed out",
    "too many connections",
    "too many clients",
    "starting up",
    "shutting down",
    "in recovery mode",
    "terminating connection",
    "server closed the connection",
    "could not connect",
    "can't connect",
    "lost connection",
    "gone away",
    "deadlock",
    "lock wait",
    "serialization",
    "could not translate host name",
    "name or service not known",
    "temporary failure",
    "broken pipe",
    "no route to host",
    "network is unreachable",
)
# Authentication problems stay permanent even when the driver adds a timeout to the same message
# ("password authentication failed …; timeout expired").
_AUTHENTICATION_WORDS = (
    "authentication failed",
    "access denied",
    "no pg_hba.conf entry",
)
_PERMANENT_WORDS = (
    "password",
    "permission denied",
    "does not exist",
    "unknown database",
    "role ",
)
# MySQL/MariaDB error numbers.
# 1053 server shutdown, 1152/1158-1161 network errors, 1317 query interrupted, 1927 connection killed,
# 4031 disconnected by the server (idle), 2002-2013 the client's connection errors.
_MYSQL_TRANSIENT = {
    1040,
    1053,
    1152,
    1158,
    1159,
    1160,
    1161,
    1205,
    1213,
    1317,
    1927,
    2002,
    2003,
    2006,
    2013,
    2055,
    4031,
}
_MYSQL_PERMANENT = {1044, 1045, 1049, 1142, 1146, 1054}

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"password\s*=\s*\S+", re.IGNORECASE)


def first_line(text: str) -> str:
    """The first non-empty line of `text` (a driver's or delta-rs's message may carry a traceback)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:500]
    return ""


def scrub_lines(text: str, secrets: Iterable[str] = ()) -> str:
    """Every line of `text` (a traceback for a debug log) without URLs, `password=…` pairs or secrets."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KV_PASSWORD.sub("password=***", _URL.sub("<url>", text))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove URLs, `password=…` pairs and every secret value from text; keep its first line only."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    line = _URL.sub("<url>", line)
    return _KV_PASSWORD.sub("password=***", line)[:300]


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    if state is None:
        diag = getattr(exc, "diag", None)
        state = getattr(diag, "sqlstate", None)
    if isinstance(state, str):
        return state
    # A connection the server refused at startup: libpq kept only its text (see the module).
    return startup_refusal_sqlstate(str(exc))


def _mysql_errno(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_transient(exc: BaseException, *, mysql_errno: int | None = None) -> bool:
    """Whether a retry may help: classified by SQLSTATE, MySQL errno (`mysql_errno` when the driver
    reports it otherwise than pymysql), then message words."""
    state = _sqlstate(exc)
    if state:
        if state.startswith(_TRANSIENT_SQLSTATES):
            return True
        if state.startswith(_PERMANENT_SQLSTATES):
            return False
    errno = mysql_errno if mysql_errno is not None else _mysql_errno(exc)
    if errno in _MYSQL_TRANSIENT:
        return True
    if errno in _MYSQL_PERMANENT:
        return False
    text = str(exc).lower()
    if any(word in text for word in _AUTHENTICATION_WORDS):
        return False
    if any(word in text for word in _PERMANENT_WORDS) and not any(w in text for w in ("too many", "timeout")):
        return False
    if any(word in text for word in _TRANSIENT_WORDS):
        return True
    return isinstance(exc, ConnectionError | TimeoutError)


def error_code(exc: BaseException, *, mysql_errno: int | None = None) -> str | None:
    """The driver's own code for `exc`: its MySQL errno (as text; MySQL's SQLSTATE is often the
    generic HY000), else its SQLSTATE, else None."""
    errno = mysql_errno if mysql_errno is not None else _mysql_errno(exc)
    if errno is not None:
        return str(errno)
    return _sqlstate(exc)


def classify(
    exc: BaseException, *, what: str, secrets: Iterable[str] = (), mysql_errno: int | None = None
) -> LoadError:
    """A LoadError for `exc`: `<what>: <scrubbed driver message>`, transient or permanent, with its code."""
    if isinstance(exc, LoadError):
        return exc
    detail = scrub(str(exc), secrets) or type(exc).__name__
    transient = is_transient(exc, mysql_errno=mysql_errno)
    cls = TransientLoadError if transient else PermanentLoadError
    return cls(f"{what}: {detail}", code=error_code(exc, mysql_errno=mysql_errno))


def coded_error(
    what: str, detail: str, *, transient: bool, code: str | None, secrets: Iterable[str] = ()
) -> LoadError:
    """A LoadError for a driver that reports its own code and kind (ClickHouse, Snowflake, Oracle…):
    `<what>: <scrubbed detail>`."""
    cls = TransientLoadError if transient else PermanentLoadError
    return cls(f"{what}: {scrub(detail, secrets) or 'unknown error'}", code=code)
