"""The maintenance lifecycle on the real control database: one claimant wins a race, an expired or
gone owner's claim is taken over, a claim never touches the load status, and loads wait only while
a live claim holds the row."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import psycopg
import pytest
from control_rows import AddTable

from control_db import maintenance_lifecycle as lifecycle
from control_db import queries as q

KEY = "erp.public.orders"
HOUR = timedelta(hours=1)


def _ended_process_owner() -> str:
    """The owner id of a `dataloader maintain` process of this host that has ended."""
    code = "from control_db.maintenance_lifecycle import process_owner; print(process_owner())"
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_two_claimants_racing_one_wins(control_db_url: str, add_table: AddTable) -> None:
    add_table(KEY, last_status="Succeeded")
    barrier = threading.Barrier(8)
    outcomes: list[lifecycle.Held | lifecycle.NotHeld] = []

    def claim(n: int) -> None:
        barrier.wait()
        outcomes.append(lifecycle.claim_table(control_db_url, KEY, owner=f"owner-{n}"))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = [o for o in outcomes if isinstance(o, lifecycle.Held)]
    assert len(outcomes) == 8 and len(held) == 1
    winner = held[0].claim.owner
    assert all(
        "held for maintenance by " + winner == o.reason for o in outcomes if isinstance(o, lifecycle.NotHeld)
    )


def test_a_claim_waiting_on_an_uncommitted_one_loses(
    control_conn: psycopg.Connection, control_db_url: str, add_table: AddTable
) -> None:
    add_table(KEY, last_status="Succeeded")
    result: list[q.MaintenanceClaim | None] = []

    def second_claim() -> None:
        with psycopg.connect(control_db_url, autocommit=True) as conn:
            result.append(q.claim_maintenance(conn, KEY, owner="second", ttl=HOUR))

    second = threading.Thread(target=second_claim)
    with psycopg.connect(control_db_url, autocommit=True) as first, first.transaction():
        # the first claim is made and not yet committed while the second one starts
        assert q.claim_maintenance(first, KEY, owner="first", ttl=HOUR) is not None
        second.start()
        second.join(timeout=1)
        assert second.is_alive()  # it waits for the row, it does not read past the first claim
    second.join(timeout=10)
    assert result == [None]
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and row.maintenance_owner == "first"


def test_an_expired_claim_is_taken_over(
    control_conn: psycopg.Connection, control_db_url: str, add_table: AddTable
) -> None:
    add_table(KEY, last_status="Succeeded")
    old = q.claim_maintenance(control_conn, KEY, owner="run:stale", ttl=HOUR)
    assert old is not None
    assert isinstance(lifecycle.claim_table(control_db_url, KEY, owner="new"), lifecycle.NotHeld)
    renewed = q.claim_maintenance(control_conn, KEY, owner="run:stale", ttl=2 * HOUR)  # its own: renewed
    assert renewed is not None and renewed.took_over is None and renewed.expires_at > old.expires_at
    control_conn.execute(
        "UPDATE dataloader.table_control SET maintenance_expires_at = now() - interval '1 second' "
        "WHERE control_key = %s",
        (KEY,),
    )
    held = lifecycle.claim_table(control_db_url, KEY, owner="new")
    assert isinstance(held, lifecycle.Held)
    assert (held.claim.owner, held.claim.took_over) == ("new", "run:stale")
    assert held.target.destination_table == "bronze/erp_public_orders"
    assert not lifecycle.release_table(control_db_url, old, done=True)  # the old owner no longer holds it
    assert lifecycle.release_table(control_db_url, held.claim, done=True)


def test_a_gone_owners_claim_is_taken_over_and_released(
    control_conn: psycopg.Connection, control_db_url: str, add_table: AddTable
) -> None:
    add_table(KEY, last_status="Succeeded")
    add_table("erp.public.live", last_status="Succeeded")
    gone = _ended_process_owner()
    alive = lifecycle.process_owner()
    assert lifecycle.local_owner_gone(gone) and not lifecycle.local_owner_gone(alive)
    assert q.claim_maintenance(control_conn, KEY, owner=gone, ttl=HOUR) is not None
    assert q.claim_maintenance(control_conn, "erp.public.live", owner=alive, ttl=HOUR) is not None

    held = lifecycle.claim_table(control_db_url, KEY, owner="run:next")
    assert isinstance(held, lifecycle.Held) and held.claim.took_over == gone
    live = lifecycle.claim_table(control_db_url, "erp.public.live", owner="run:next")
    assert isinstance(live, lifecycle.NotHeld) and alive in live.reason

    control_conn.execute(
        "UPDATE dataloader.table_control SET maintenance_owner = %s WHERE control_key = %s", (gone, KEY)
    )
    assert lifecycle.release_gone_claims(control_db_url) == [KEY]
    assert [c.control_key for c in q.maintenance_claims(control_conn)] == ["erp.public.live"]


def test_claims_leave_the_load_status_and_refuse_busy_rows(
    control_conn: psycopg.Connection, control_db_url: str, add_table: AddTable
) -> None:
    for status in ("Queued", "In Progress", "Failed"):
        add_table(f"erp.public.{status.replace(' ', '_').lower()}", last_status=status)
        outcome = lifecycle.claim_table(
            control_db_url, f"erp.public.{status.replace(' ', '_').lower()}", owner="o"
        )
        assert (
            isinstance(outcome, lifecycle.NotHeld)
            and outcome.reason == f"row is {status}; maintenance waits for it"
        )
    assert lifecycle.claim_table(control_db_url, "erp.public.none", owner="o") == lifecycle.NotHeld(
        "erp.public.none", "no control row"
    )
    add_table(KEY, last_status="Succeeded", last_status_message="loaded", last_run_id="run-7")
    before = q.get_control_row(control_conn, KEY)
    held = lifecycle.claim_table(control_db_url, KEY, owner="o")
    assert isinstance(held, lifecycle.Held)
    during = q.get_control_row(control_conn, KEY)
    assert lifecycle.release_table(control_db_url, held.claim, done=True)
    after = q.get_control_row(control_conn, KEY)
    assert before is not None and during is not None and after is not None
    for row in (during, after):
        assert (row.last_status, row.last_status_message, row.last_run_id, row.status_changed_at) == (
            "Succeeded",
            "loaded",
            "run-7",
            before.status_changed_at,
        )
    assert during.maintenance_owner == "o" and after.maintenance_owner is None
    assert after.last_maintenance_at is not None
    with pytest.raises(LookupError, match="erp.public.none"):
        lifecycle.maintenance_rows(control_db_url, [KEY, "erp.public.none"])


def test_loads_wait_only_while_a_live_claim_holds(
    control_conn: psycopg.Connection, control_db_url: str, add_table: AddTable
) -> None:
    add_table(KEY, last_status="Succeeded")
    held = lifecycle.claim_table(control_db_url, KEY, owner="o")
    assert isinstance(held, lifecycle.Held)
    assert q.queue_ready_tables(control_conn, limit=10) == []  # held: the sensor does not queue it
    assert q.queue_by_hand(control_conn, KEY) is None  # nor does a hand load
    held_row = q.get_control_row(control_conn, KEY)
    assert held_row is not None
    hold = lifecycle.maintenance_hold(held_row)
    assert hold is not None and hold.startswith(f"{KEY}: held for maintenance by o until ")
    from control_db.lifecycle import Refusal, begin_attempt

    refused = begin_attempt(control_db_url, KEY, run_id="r-by-hand", history_id=None, run_url=None)
    assert isinstance(refused, Refusal) and refused.reason.startswith(hold) and refused.taken_over_by is None
    assert q.maintenance_due(control_conn, after_loads=1, limit=10) == []
    assert lifecycle.release_table(control_db_url, held.claim, done=False)
    (queued,) = q.queue_ready_tables(control_conn, limit=10)  # released: queued as before
    assert queued.control_key == KEY
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and row.last_maintenance_at is None  # a failed pass stamps nothing
    assert lifecycle.maintenance_hold(row) is None

    # A claim past its expiry holds nothing back (its owner died without releasing).
    add_table("erp.public.expired", last_status="Succeeded")
    assert q.claim_maintenance(control_conn, "erp.public.expired", owner="dead", ttl=HOUR) is not None
    control_conn.execute(
        "UPDATE dataloader.table_control SET maintenance_expires_at = now() - interval '1 second' "
        "WHERE control_key = 'erp.public.expired'"
    )
    assert q.queue_by_hand(control_conn, "erp.public.expired") is not None
    # And a queued row cannot be claimed: the two never overlap.
    assert isinstance(
        lifecycle.claim_table(control_db_url, "erp.public.expired", owner="o"), lifecycle.NotHeld
    )


def test_claim_ttl_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lifecycle.CLAIM_TTL_ENV, raising=False)
    assert lifecycle.claim_ttl() == timedelta(hours=6)
    monkeypatch.setenv(lifecycle.CLAIM_TTL_ENV, "90")
    assert lifecycle.claim_ttl() == timedelta(seconds=90)
    monkeypatch.setenv(lifecycle.CLAIM_TTL_ENV, "0")
    with pytest.raises(ValueError, match=lifecycle.CLAIM_TTL_ENV):
        lifecycle.claim_ttl()
