"""Retry analysis: classify a load's last error message as transient (retry) or permanent (a person).

Rules match the text real drivers and servers produce (psycopg/PostgreSQL, PyMySQL/MariaDB, the
worker's own exception classes). Permanent rules are checked first: "password authentication
failed … timeout expired" is still an authentication problem. Anything unrecognised goes to manual
review — retrying an error nobody understands only hides it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

Verdict = Literal["transient", "permanent", "unknown"]


@dataclass(frozen=True)
class Rule:
    """A case-insensitive regular expression and what it means."""

    verdict: Verdict
    pattern: str
    reason: str


# Order matters within a verdict only for the reason shown; permanent rules win over transient ones.
PERMANENT_RULES: tuple[Rule, ...] = (
    Rule("permanent", r"password authentication failed", "authentication failed"),
    Rule("permanent", r"access denied for user", "authentication failed (MySQL/MariaDB)"),
    Rule("permanent", r"no pg_hba\.conf entry", "connection not allowed by pg_hba.conf"),
    Rule("permanent", r"permission denied|command denied to user", "permission denied"),
    Rule("permanent", r"\bdoes not exist\b", "missing object (table, column, schema or database)"),
    Rule("permanent", r"doesn't exist|unknown column|unknown database", "missing object (MySQL/MariaDB)"),
    Rule("permanent", r"SecretNotFoundError", "secret not found"),
    Rule("permanent", r"ConfigurationError", "bad configuration"),
    Rule("permanent", r"SchemaConflictError", "schema conflict with the Delta table"),
    Rule("permanent", r"UnsupportedTypeError", "unsupported source type"),
    Rule("permanent", r"syntax error", "SQL syntax error"),
    Rule("permanent", r"PermanentLoadError", "permanent load error (worker)"),
)

TRANSIENT_RULES: tuple[Rule, ...] = (
    Rule("transient", r"connection refused", "connection refused"),
    Rule("transient", r"could not connect to server|connection to server at .* failed", "could not connect"),
    Rule("transient", r"server closed the connection unexpectedly", "server closed the connection"),
    Rule("transient", r"connection reset|broken pipe|ssl syscall error|eof detected", "connection reset"),
    Rule("transient", r"terminating connection due to administrator command", "server restarted"),
    Rule(
        "transient",
        r"the database system is (starting up|shutting down|in recovery mode)",
        "server not ready",
    ),
    Rule("transient", r"deadlock detected|deadlock found", "deadlock"),
    Rule("transient", r"could not serialize access", "serialization failure"),
    Rule("transient", r"canceling statement due to lock timeout|lock wait timeout exceeded", "lock timeout"),
    Rule("transient", r"canceling statement due to statement timeout", "statement timeout"),
    Rule(
        "transient",
        r"too many clients|too many connections|remaining connection slots",
        "too many connections",
    ),
    Rule(
        "transient",
        r"can't connect to (local )?mysql server|lost connection to mysql server|mysql server has gone away",
        "could not connect (MySQL/MariaDB)",
    ),
    Rule("transient", r"timed? ?out|timeout", "timeout"),
    Rule(
        "transient",
        r"DagsterExecutionInterruptedError|was cancelled|terminated",
        "run interrupted or terminated",
    ),
    Rule("transient", r"process failed with code -\d+", "worker killed by a signal"),
    Rule("transient", r"TransientLoadError", "transient load error (worker)"),
)


@dataclass(frozen=True)
class Classification:
    """The verdict for one error message and the rule that decided it."""

    verdict: Verdict
    reason: str

    @property
    def retry(self) -> bool:
        return self.verdict == "transient"


def classify(message: str | None) -> Classification:
    """Classify an error message; permanent rules first, unknown when nothing matches."""
    text = message or ""
    for rule in (*PERMANENT_RULES, *TRANSIENT_RULES):
        if re.search(rule.pattern, text, flags=re.IGNORECASE):
            return Classification(rule.verdict, rule.reason)
    if not text.strip():
        return Classification("unknown", "no error message recorded")
    return Classification("unknown", "unrecognised error")


def backoff(retry_count: int, *, base_s: int = 60, cap_s: int = 3600) -> timedelta:
    """Exponential backoff before retry number `retry_count + 1`: base * 2**retry_count, capped."""
    exponent = max(0, min(retry_count, 30))
    return timedelta(seconds=min(cap_s, base_s * 2**exponent))
