"""A load killed mid-run (SIGKILL of the run process and its worker) ends Failed via the run-status sensor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context, build_sensor_context
from defs_support import add_control, row, source_table, tick

from control_db import queries
from dataloader_defs.defs.sensors.reconcile_monitor import reconcile_monitor
from dataloader_defs.defs.sensors.run_status import load_run_failure_sensor

ROOT = Path(__file__).resolve().parents[2]

RUN_SCRIPT = textwrap.dedent(
    """
    import sys
    from dagster import AssetKey, DagsterInstance, materialize
    from defs_support import table_defs
    from dataloader_defs.defs.loader import TableLoader, workers_from_env
    from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings

    control_url, lake_root, key = sys.argv[1:4]
    assets, _ = table_defs(control_url)
    with DagsterInstance.get() as instance:
        materialize(
            [assets], selection=[AssetKey(key.split("/"))], instance=instance, raise_on_error=False,
            resources={"loader": TableLoader(control_db=ControlDatabase(url=control_url),
                                             settings=DataloaderSettings(lake_root=lake_root),
                                             workers=workers_from_env())},
        )
    """
)


def _start_run(script: str, args: list[str], dagster_home: str) -> subprocess.Popen:
    """The run `script` in a process (and session) of its own, to be killed by the test."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env={
            **os.environ,
            "DAGSTER_HOME": dagster_home,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'tests' / 'dataloader_defs'}",
        },
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_killed_load_ends_failed(
    control_conn, source, instance: DagsterInstance, control_db, control_db_url, lake_root
):
    source_table(
        source, "locked_src", "id integer PRIMARY KEY", "INSERT INTO locked_src SELECT generate_series(1, 10)"
    )
    add_control(control_conn, "k.locked", source_table="locked_src", primary_keys=["id"])
    home = instance.root_directory

    # Hold a lock so the worker blocks reading the source: the load is stuck mid-run.
    locker = psycopg.connect(source)
    locker.execute("LOCK TABLE public.locked_src IN ACCESS EXCLUSIVE MODE")
    proc = _start_run(RUN_SCRIPT, [control_db_url, str(lake_root), "bronze/test/locked_src"], home)
    try:
        deadline = time.monotonic() + 120
        while row(control_conn, "k.locked").last_status != "In Progress":
            assert time.monotonic() < deadline, "the load never started"
            assert proc.poll() is None, "the run process exited early"
            time.sleep(0.5)
        time.sleep(3)  # let the worker reach the locked read
        os.killpg(proc.pid, signal.SIGKILL)  # the run process and its Pipes worker, no cleanup
        proc.wait(30)
    finally:
        locker.close()

    run_id = row(control_conn, "k.locked").last_run_id
    run = instance.get_run_by_id(run_id)
    assert run is not None and not run.is_finished  # nobody reported anything: the row is stuck In Progress
    # Reconcile leaves a run that storage still calls STARTED alone (run monitoring decides that)...
    reconcile_monitor(build_sensor_context(instance=instance, resources={"control_db": control_db}))
    assert row(control_conn, "k.locked").last_status == "In Progress"

    # ...run monitoring detects the dead run worker and fails the run, as the daemon does:
    instance.report_run_failed(run, message="Run worker process 12345 exited unexpectedly (SIGKILL)")
    (record,) = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name="load_run_failure_sensor",
        dagster_event=record.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        resources={"control_db": control_db},
    ).for_run_failure()
    load_run_failure_sensor(context)

    killed = row(control_conn, "k.locked")
    assert killed.last_status == "Failed"
    assert "exited unexpectedly" in killed.last_status_message
    (history,) = queries.history_rows(control_conn, "k.locked")
    assert history.load_status == "Failed" and history.load_end_time is not None


def _interrupt_locked_batch(
    control_conn, source, instance: DagsterInstance, control_db_url, lake_root, names, interrupt
) -> None:
    """One hand run loading the tables `names`, their sources locked so every worker blocks; once all
    are In Progress, `interrupt(run pid)`; returns when the run process has ended."""
    for name in names:
        source_table(
            source, name, "id integer PRIMARY KEY", f"INSERT INTO {name} SELECT generate_series(1, 10)"
        )
        add_control(control_conn, f"k.{name}", source_table=name, primary_keys=["id"])
    locker = psycopg.connect(source)
    locker.execute(f"LOCK TABLE {', '.join(f'public.{n}' for n in names)} IN ACCESS EXCLUSIVE MODE")
    script = RUN_SCRIPT.replace(
        'selection=[AssetKey(key.split("/"))]',
        'selection=[AssetKey(k.split("/")) for k in key.split(",")]',
    )
    keys = ",".join(f"bronze/test/{n}" for n in names)
    proc = _start_run(script, [control_db_url, str(lake_root), keys], instance.root_directory)
    try:
        deadline = time.monotonic() + 120
        while {row(control_conn, f"k.{n}").last_status for n in names} != {"In Progress"}:
            assert time.monotonic() < deadline, "the loads never started"
            assert proc.poll() is None, "the run process exited early"
            time.sleep(0.5)
        time.sleep(3)  # every worker blocks on its locked table
        interrupt(proc.pid)
        proc.wait(90)  # before the fix it waited for the workers, i.e. for the lock, for ever
    finally:
        locker.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_interrupted_batch_run_stops_its_workers_and_records_them(
    control_conn, source, instance: DagsterInstance, control_db_url, lake_root
):
    """Ctrl-C (or a run termination) of a run loading several tables at once: the interruption
    reaches the run's main thread only; the workers of the tables still loading must be stopped and
    their rows recorded, not left loading behind a run that never ends."""
    names = ("held_a", "held_b")
    _interrupt_locked_batch(
        control_conn,
        source,
        instance,
        control_db_url,
        lake_root,
        names,
        lambda pid: os.kill(pid, signal.SIGINT),
    )
    for name in names:
        stopped = row(control_conn, f"k.{name}")
        assert stopped.last_status == "Failed" and stopped.last_error_kind == "transient", stopped


def test_one_ctrl_c_is_one_record_for_every_table_it_stopped(
    control_conn, source, instance: DagsterInstance, control_db_url, lake_root
):
    """A Ctrl-C in the terminal reaches the run, its fork server and its workers at once (the whole
    process group). Each table's thread sees something else break first (its worker's exit, the fork
    server gone: EOFError, ConnectionRefusedError), which gave different records for one event
    (issue 19). Every table it stopped is recorded with the same kind, code and message."""
    names = ("ctrl_a", "ctrl_b", "ctrl_c")
    _interrupt_locked_batch(
        control_conn,
        source,
        instance,
        control_db_url,
        lake_root,
        names,
        lambda pid: os.killpg(pid, signal.SIGINT),  # what Ctrl-C in the terminal does
    )
    records = set()
    for name in names:
        stopped = row(control_conn, f"k.{name}")
        assert stopped.last_status == "Failed", stopped
        (history,) = queries.history_rows(control_conn, f"k.{name}")
        assert history.run_id == stopped.last_run_id and history.run_id
        assert (history.error_kind, history.error_code, history.error_message) == (
            stopped.last_error_kind,
            stopped.last_error_code,
            stopped.last_status_message,
        )
        message = stopped.last_status_message.removeprefix(f"k.{name}: ")
        records.add((stopped.last_error_kind, stopped.last_error_code, message))
    assert len(records) == 1, records
    ((kind, code, message),) = records
    assert (kind, code) == ("transient", "run_interrupted") and message.startswith("run interrupted ("), (
        records
    )


SENSOR_RUN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from dagster import AssetKey, DagsterInstance, materialize
    from defs_support import table_defs
    from dataloader_defs.defs.loader import TableLoader, workers_from_env
    from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings

    control_url, lake_root, request = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    assets, _ = table_defs(control_url)
    with DagsterInstance.get() as instance:
        materialize(
            [assets], selection=[AssetKey(path) for path in request["paths"]], instance=instance,
            tags=request["tags"], run_config=request["run_config"], raise_on_error=False,
            resources={"loader": TableLoader(control_db=ControlDatabase(url=control_url),
                                             settings=DataloaderSettings(lake_root=lake_root),
                                             workers=workers_from_env())},
        )
    """
)


def test_a_ctrl_c_records_the_same_on_the_queued_attempts_the_run_never_started(
    control_conn, source, instance: DagsterInstance, control_db, control_db_url, lake_root, monkeypatch
):
    """A sensor's run of two tables, one at a time: Ctrl-C while the first loads leaves the second's
    queued attempt unstarted. The run records the same interruption on it, naming itself on the
    attempt, instead of leaving it to a monitor's different record."""
    names = ("uq_a", "uq_b")
    for name in names:
        source_table(
            source, name, "id integer PRIMARY KEY", f"INSERT INTO {name} SELECT generate_series(1, 10)"
        )
        add_control(control_conn, f"k.{name}", source_table=name, primary_keys=["id"])
    (request,) = tick(instance, control_db).run_requests
    payload = {
        "paths": [list(key.path) for key in request.asset_selection],
        "tags": request.tags,
        "run_config": request.run_config,
    }
    monkeypatch.setenv("DATALOADER_RUN_CONCURRENCY", "1")
    locker = psycopg.connect(source)
    locker.execute("LOCK TABLE public.uq_a, public.uq_b IN ACCESS EXCLUSIVE MODE")
    proc = _start_run(
        SENSOR_RUN_SCRIPT, [control_db_url, str(lake_root), json.dumps(payload)], instance.root_directory
    )
    try:
        deadline = time.monotonic() + 120
        while sorted(row(control_conn, f"k.{n}").last_status for n in names) != ["In Progress", "Queued"]:
            assert time.monotonic() < deadline, "the first load never started"
            assert proc.poll() is None, "the run process exited early"
            time.sleep(0.5)
        time.sleep(3)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(90)
    finally:
        locker.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    histories = {n: queries.history_rows(control_conn, f"k.{n}")[-1] for n in names}
    started = {n for n, h in histories.items() if h.load_start_time is not None}
    assert len(started) == 1, histories
    (run_id,) = {h.run_id for h in histories.values()}
    assert run_id, histories  # the unstarted attempt names the run it was queued for
    records = set()
    for name in names:
        stopped = row(control_conn, f"k.{name}")
        assert stopped.last_status == "Failed", stopped
        records.add(
            (
                stopped.last_error_kind,
                stopped.last_error_code,
                stopped.last_status_message.removeprefix(f"k.{name}: "),
            )
        )
    assert len(records) == 1 and next(iter(records))[1] == "run_interrupted", records
