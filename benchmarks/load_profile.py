"""Where the time of one `dataloader load CONTROL_KEY` goes: `python -m benchmarks.load_profile KEY`.

Runs the CLI's own `main` in this process with wall-clock timers around each phase (imports,
control-database round trips, Delta state, source connection and catalog, the aggregate queries,
the overlapped read + write + commit, the checks), then reads the same rows again through the same
reader without writing, timing the driver's decode and our conforming casts apart: the difference
between the overlapped phase and that read is what writing adds on top of reading. Needs
DATALOADER_CONTROL_DB_URL and DATALOADER_LAKE_ROOT like the command; writes the table like it.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import functools  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import control_db.cli as cli  # noqa: E402
import pipes_workers.checks as checks  # noqa: E402
import pipes_workers.load as load  # noqa: E402
import pipes_workers.local_load as local_load  # noqa: E402
from pipes_workers.lake.session import DeltaSession  # noqa: E402
from pipes_workers.sources.streaming import StreamingReader  # noqa: E402

IMPORTED = time.perf_counter()
PHASES: dict[str, float] = {}


def _timed(owner: Any, name: str, phase: str) -> Callable[[], None]:
    """Wrap `owner.name` so its wall time adds to PHASES[phase]; returns the undo."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            PHASES[phase] = PHASES.get(phase, 0.0) + time.perf_counter() - start

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


def profile_command(control_key: str) -> int:
    """`dataloader load` with a timer per phase; returns its exit code."""
    PHASES["  of which key-uniqueness scan"] = 0.0  # listed even when the load proved it without one
    undo = [
        _timed(local_load, "begin_attempt", "control database: begin attempt"),
        _timed(local_load, "record_outcome", "control database: record outcome"),
        _timed(DeltaSession, "state", "Delta state (table, txn, last commit)"),
        _timed(load, "open_reader", "source: connect, resolve secrets"),
        _timed(DeltaSession, "overwrite", "read + conform + Parquet encode + commit (overlapped)"),
        _timed(load, "evaluate_checks", "asset checks (4) + destination count"),
        _timed(checks, "check_primary_key", "  of which key-uniqueness scan"),
    ]
    import pipes_workers.sources.mysql  # noqa: F401  (the readers the benchmark loads from)
    import pipes_workers.sources.postgres  # noqa: F401

    for cls in StreamingReader.__subclasses__():
        undo.append(_timed(cls, "columns", "source: catalog"))
        undo.append(_timed(cls, "aggregate", "source: COUNT / MAX queries"))
    try:
        start = time.perf_counter()
        code = cli.main(["load", control_key])
        PHASES["whole command (after imports)"] = time.perf_counter() - start
    finally:
        for restore in undo:
            restore()
    return code


def profile_read(control_key: str) -> dict[str, float]:
    """The same rows read again through the same reader, discarded: decode and conform apart."""
    import os

    from control_db.queries.connection import connect
    from control_db.queries.reads import get_control_row, get_source_config
    from dataloader_contract.request import LoadRequest
    from pipes_workers.sources import open_reader

    with connect(os.environ["DATALOADER_CONTROL_DB_URL"], "bench") as conn:
        row = get_control_row(conn, control_key)
        assert row is not None
        source = get_source_config(conn, row.db_config_key)
    request = LoadRequest.from_control_row(row, source, lake_root="/unused", run_id="profile-read")
    spent = {"conform": 0.0}
    with open_reader(request.source) as reader:
        original = reader._conform

        def conform(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args)
            finally:
                spent["conform"] += time.perf_counter() - start

        reader._conform = conform  # type: ignore[method-assign]
        columns = reader.columns(request.source_schema, request.source_table)
        start = time.perf_counter()
        rows = sum(
            b.num_rows for b in reader.read(request.source_schema, request.source_table, columns=columns)
        )
        total = time.perf_counter() - start
    return {
        "rows": rows,
        "read alone (decode + conform)": total,
        "  of which conform (casts, checks)": spent["conform"],
    }


def main(argv: list[str]) -> int:
    key = argv[0]
    code = profile_command(key)
    read = profile_read(key)
    print(f"\nprofile of `dataloader load {key}` ({read['rows']:,} rows)")
    print(f"{'process start + imports':58s} {IMPORTED - STARTED:6.2f} s (+ interpreter start)")
    for phase, seconds in PHASES.items():
        print(f"{phase:58s} {seconds:6.2f} s")
    for phase in ("read alone (decode + conform)", "  of which conform (casts, checks)"):
        print(f"{phase:58s} {read[phase]:6.2f} s")
    overlapped = PHASES.get("read + conform + Parquet encode + commit (overlapped)", 0.0)
    extra = overlapped - read["read alone (decode + conform)"]
    print(f"{'what writing adds on top of reading':58s} {extra:6.2f} s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
