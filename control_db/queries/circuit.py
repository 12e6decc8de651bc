"""The circuit breaker of each source database (migration 0009): closed -> open -> half_open -> closed.

    closed    --(breaker_failures transient failures within breaker_window_s)--> open
    open      --(breaker_cooldown_s over; the master sensor queues one probe)--> half_open
    half_open --(the probe loads, or the source answers with a permanent error)--> closed
    half_open --(the probe fails transiently)--> open, cool-down doubled up to breaker_max_cooldown_s

While a source's circuit is not closed the master sensor queues none of its tables but the probe
(`QUEUE_ALLOWED`, in `queue_ready_tables`), a run that finds a queued table of it ends that table
without loading (`hold_back`: back to waiting, history row `Skipped`), and its tables that failed
transiently go back to waiting instead of burning their retries (`release_failed_rows`). Only
transient failures count, and not those the orchestrator records for its own failures (a run
cancelled, a worker that died): permanent and configuration errors are the table's own.

Every transition locks the source's `source_circuit` row (`FOR UPDATE`), so concurrent outcomes
neither open a circuit twice nor lose a count; a trigger audits each change of state in
`source_circuit_history`. The functions take a Connection, like `queries.transitions`. What the
status views and sensors read is in `circuit_reads`; an operator's open/close in `circuit_by_hand`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import class_row

from control_db.queries.reads import QUEUED_FOR_ATTEMPT, READY, READY_ORDER
from control_db.queries.rows import SourceCircuit, column_list

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# Codes of the failures the orchestrator records itself (dataloader_defs.retry_rules.INFRASTRUCTURE_CODES):
# they say nothing about the source, so they never count.
ORCHESTRATOR_CODES: frozenset[str] = frozenset(
    {
        "worker_died",
        "run_failed",
        "run_cancelled",
        "run_interrupted",
        "run_lost",
        "queued_run_lost",
        "queued_too_long",
        "running_too_long",
        "interrupted",
    }
)

_NOT_CLOSED = """
    EXISTS (SELECT 1 FROM dataloader.source_circuit AS sc
            JOIN dataloader.table_control_dbconfig AS d ON d.db_config_key = sc.db_config_key
            WHERE sc.db_config_key = tc.db_config_key AND d.breaker_enabled AND sc.state <> 'closed'
              AND NOT (sc.state = 'half_open' AND sc.probe_control_key = tc.control_key))
"""
# SQL on `tc`: the row's source lets it be queued (its circuit is closed, or the row is the probe).
QUEUE_ALLOWED = f"NOT {_NOT_CLOSED}"


def counts(kind: str | None, code: str | None) -> bool:
    """Whether a failure of this kind and code counts against its source's circuit."""
    return kind == "transient" and (code or "") not in ORCHESTRATOR_CODES


def _locked(conn: psycopg.Connection, db_config_key: str) -> tuple[SourceCircuit, tuple, datetime]:
    """The source's circuit row, locked (created closed first), its breaker settings and now()."""
    conn.execute(
        "INSERT INTO dataloader.source_circuit (db_config_key) VALUES (%s) ON CONFLICT DO NOTHING",
        (db_config_key,),
    )
    with conn.cursor(row_factory=class_row(SourceCircuit)) as cur:
        circuit = cur.execute(
            f"SELECT {column_list(SourceCircuit, 'sc')} FROM dataloader.source_circuit AS sc "
            "WHERE sc.db_config_key = %s FOR UPDATE",
            (db_config_key,),
        ).fetchone()
    settings = conn.execute(
        "SELECT breaker_enabled, breaker_failures, breaker_window_s, breaker_cooldown_s, "
        "breaker_max_cooldown_s, now() FROM dataloader.table_control_dbconfig WHERE db_config_key = %s",
        (db_config_key,),
    ).fetchone()
    assert circuit is not None and settings is not None  # the circuit row references the source
    return circuit, settings[:5], settings[5]


_SET = """
UPDATE dataloader.source_circuit SET state = %(state)s, failures = %(failures)s,
    window_started_at = %(window_started_at)s, opened_at = %(opened_at)s, cooldown_s = %(cooldown_s)s,
    open_until = %(open_until)s, probe_control_key = %(probe)s, reason = %(reason)s,
    changed_at = CASE WHEN state = %(state)s THEN changed_at ELSE now() END
WHERE db_config_key = %(key)s
"""


def _write(conn: psycopg.Connection, circuit: SourceCircuit, **changes: object) -> str:
    values = {
        "state": circuit.state,
        "failures": circuit.failures,
        "window_started_at": circuit.window_started_at,
        "opened_at": circuit.opened_at,
        "cooldown_s": circuit.cooldown_s,
        "open_until": circuit.open_until,
        "probe": circuit.probe_control_key,
        "reason": circuit.reason,
        "key": circuit.db_config_key,
        **changes,
    }
    conn.execute(_SET, values)
    return str(values["state"])


def _close(conn: psycopg.Connection, circuit: SourceCircuit, reason: str) -> str:
    return _write(
        conn, circuit, state=CLOSED, failures=0, window_started_at=None, opened_at=None, cooldown_s=None,
        open_until=None, probe=None, reason=reason,
    )  # fmt: skip


def note_outcome(
    conn: psycopg.Connection,
    db_config_key: str,
    control_key: str,
    *,
    kind: str | None,
    code: str | None = None,
    message: str = "",
) -> str:
    """Count one load outcome of `control_key` (kind None = it succeeded) against its source's
    circuit; returns the circuit's state afterwards. Releases the source's transiently failed rows
    to waiting when the circuit is not closed afterwards (see `release_failed_rows`)."""
    if kind is None or kind == "permanent":
        state = _answered(conn, db_config_key, control_key, kind)
    elif kind == "configuration":
        state = _probe_untested(conn, db_config_key, control_key)
    elif counts(kind, code):
        state = _failed(conn, db_config_key, control_key, message)
    else:
        return circuit_state(conn, db_config_key)
    if state != CLOSED:
        release_failed_rows(conn, db_config_key)
    return state


def _answered(conn: psycopg.Connection, db_config_key: str, control_key: str, kind: str | None) -> str:
    """The source answered (a load succeeded, or failed with the table's own permanent error)."""
    seen = conn.execute(
        "SELECT state, failures FROM dataloader.source_circuit WHERE db_config_key = %s", (db_config_key,)
    ).fetchone()
    if seen is None or seen == (CLOSED, 0):
        return CLOSED  # the usual case costs one indexed read and no lock
    with conn.transaction():
        circuit, _, _ = _locked(conn, db_config_key)
        if circuit.state == CLOSED:
            if kind is None and circuit.failures:
                return _write(conn, circuit, failures=0, window_started_at=None)
            return CLOSED
        how = "loaded" if kind is None else "failed with a permanent error of its own"
        return _close(conn, circuit, f"{control_key} {how}: the source answers")


def _probe_untested(conn: psycopg.Connection, db_config_key: str, control_key: str) -> str:
    """A configuration error says nothing about the source: a probe that met one hands over to another."""
    with conn.transaction():
        circuit, _, now = _locked(conn, db_config_key)
        if circuit.state != HALF_OPEN or circuit.probe_control_key != control_key:
            return circuit.state
        reason = f"probe {control_key} failed with a configuration error of its own: another table probes"
        return _write(conn, circuit, state=OPEN, open_until=now, probe=None, reason=reason)


def _failed(conn: psycopg.Connection, db_config_key: str, control_key: str, message: str) -> str:
    with conn.transaction():
        circuit, settings, now = _locked(conn, db_config_key)
        enabled, threshold, window_s, cooldown_s, max_cooldown_s = settings
        detail = f"{control_key}: {' '.join(message.split())[:300]}"
        if not enabled:
            return (
                _write(conn, circuit, failures=circuit.failures + 1)
                if circuit.state == CLOSED
                else circuit.state
            )
        if circuit.state == HALF_OPEN and circuit.probe_control_key == control_key:
            cooldown = min(max_cooldown_s, 2 * (circuit.cooldown_s or cooldown_s))
            return _write(
                conn, circuit, state=OPEN, failures=circuit.failures + 1, cooldown_s=cooldown,
                open_until=now + timedelta(seconds=cooldown), probe=None,
                reason=f"probe failed, next probe in {cooldown}s; {detail}",
            )  # fmt: skip
        if circuit.state != CLOSED:  # a load that started before the circuit opened
            return _write(conn, circuit, failures=circuit.failures + 1)
        fresh = circuit.window_started_at is None or now - circuit.window_started_at > timedelta(
            seconds=window_s
        )
        failures = 1 if fresh else circuit.failures + 1
        started = now if fresh else circuit.window_started_at
        if failures < threshold:
            return _write(conn, circuit, failures=failures, window_started_at=started)
        return _write(
            conn, circuit, state=OPEN, failures=failures, window_started_at=started, opened_at=now,
            cooldown_s=cooldown_s, open_until=now + timedelta(seconds=cooldown_s),
            reason=f"{failures} transient failures within {window_s}s, first probe in {cooldown_s}s; last: {detail}",
        )  # fmt: skip


_RELEASE = """
WITH failed AS (  -- a row another outcome is being recorded for is skipped: that outcome releases it
    SELECT tc.config_id FROM dataloader.table_control AS tc
    WHERE tc.db_config_key = %(key)s AND tc.last_status = 'Failed' AND tc.last_error_kind = 'transient'
      AND NOT tc.manual_review AND NOT (coalesce(tc.last_error_code, '') = ANY(%(codes)s))
    FOR UPDATE SKIP LOCKED
)
UPDATE dataloader.table_control AS tc
SET last_status = NULL, status_changed_at = now(),
    last_status_message = format('waiting: the circuit of source %%s is %%s (%%s)', sc.db_config_key,
                                 sc.state, tc.last_status_message)
FROM failed, dataloader.source_circuit AS sc
WHERE tc.config_id = failed.config_id AND sc.db_config_key = tc.db_config_key AND sc.state <> 'closed'
RETURNING tc.control_key
"""


def release_failed_rows(conn: psycopg.Connection, db_config_key: str) -> list[str]:
    """Failed -> waiting (NULL) for the source's rows whose last failure counted against its open
    circuit: the outage is the source's, so no retry is spent on it (`retry_count` unchanged); they
    load once the circuit closes. Returns their control keys."""
    rows = conn.execute(_RELEASE, {"key": db_config_key, "codes": sorted(ORCHESTRATOR_CODES)}).fetchall()
    return [key for (key,) in rows]


_HOLD_BACK = f"""
WITH blocked AS (
    SELECT tc.control_key, sc.db_config_key, sc.state, sc.reason
    FROM dataloader.table_control AS tc
    JOIN dataloader.source_circuit AS sc ON sc.db_config_key = tc.db_config_key
    WHERE tc.control_key = %(key)s AND {_NOT_CLOSED}
),
waiting AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = NULL, status_changed_at = now(),
        last_status_message = format('waiting: the circuit of source %%s is %%s', b.db_config_key, b.state)
    FROM blocked AS b
    WHERE tc.control_key = b.control_key AND {QUEUED_FOR_ATTEMPT}
    RETURNING tc.control_key
),
skipped AS (
    UPDATE dataloader.historical_metadata AS hm
    SET load_status = 'Skipped', load_end_time = now(),
        error_message = (SELECT format('not loaded: the circuit of source %%s is %%s (%%s)',
                                       b.db_config_key, b.state, b.reason) FROM blocked AS b)
    FROM waiting
    WHERE hm.id = %(history_id)s AND hm.control_key = waiting.control_key
)
SELECT b.db_config_key, b.state, b.reason FROM blocked AS b JOIN waiting USING (control_key)
"""


def hold_back(conn: psycopg.Connection, control_key: str, history_id: int) -> str | None:
    """Queued -> waiting for a sensor-queued attempt whose source's circuit opened before its run
    started it (the probe excepted): the history row ends `Skipped`, no failure, no retry spent.
    Returns why, or None when the attempt may start."""
    row = conn.execute(_HOLD_BACK, {"key": control_key, "history_id": history_id}).fetchone()
    if row is None:
        return None
    source, state, reason = row
    return f"{control_key}: not loaded, back to waiting: the circuit of source {source} is {state} ({reason})"


_CHOOSE_PROBES = f"""
WITH due AS (
    SELECT sc.db_config_key FROM dataloader.source_circuit AS sc
    JOIN dataloader.table_control_dbconfig AS d ON d.db_config_key = sc.db_config_key
    WHERE d.breaker_enabled AND (
        (sc.state = 'open' AND sc.open_until <= now())
        OR (sc.state = 'half_open' AND NOT EXISTS (
            SELECT 1 FROM dataloader.table_control AS tc WHERE tc.control_key = sc.probe_control_key
              AND (tc.last_status IN ('Queued', 'In Progress') OR ({READY})))))
    FOR UPDATE OF sc SKIP LOCKED
),
probe AS (
    SELECT DISTINCT ON (tc.db_config_key) tc.db_config_key, tc.control_key
    FROM dataloader.table_control AS tc JOIN due ON due.db_config_key = tc.db_config_key
    WHERE {READY} AND (%(keys)s::text[] IS NULL OR tc.control_key = ANY(%(keys)s::text[]))
    ORDER BY tc.db_config_key, tc.load_strategy = 'chunked_backfill', {READY_ORDER}
)
UPDATE dataloader.source_circuit AS sc
SET state = 'half_open', probe_control_key = probe.control_key, changed_at = now(),
    reason = format('cool-down of %%ss over: %%s probes the source', sc.cooldown_s, probe.control_key)
FROM probe WHERE sc.db_config_key = probe.db_config_key
RETURNING sc.db_config_key, probe.control_key
"""


def choose_probes(conn: psycopg.Connection, only_keys: Sequence[str] | None = None) -> dict[str, str]:
    """open -> half_open for each source whose cool-down is over and that has a ready table (among
    `only_keys`): its first due table (a chunked_backfill last) becomes the probe, the one table
    `QUEUE_ALLOWED` lets through. A half-open source whose probe is neither loading nor ready any
    more (paused, failed by a monitor) gets a new one. Returns source -> probe control_key."""
    keys = list(only_keys) if only_keys is not None else None
    return dict(conn.execute(_CHOOSE_PROBES, {"keys": keys}).fetchall())


def circuit_state(conn: psycopg.Connection, db_config_key: str) -> str:
    """The state of the source's circuit (closed when it never had one)."""
    row = conn.execute(
        "SELECT state FROM dataloader.source_circuit WHERE db_config_key = %s", (db_config_key,)
    ).fetchone()
    return row[0] if row else CLOSED
