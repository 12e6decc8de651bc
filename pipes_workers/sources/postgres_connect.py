"""Open a psycopg connection whose startup refusal keeps the server's SQLSTATE, whatever its language.

A server that refuses a connection at startup (missing database, bad password, too many clients…)
sends an ErrorResponse with a SQLSTATE, but libpq keeps only its text, and psycopg builds the
OperationalError from that text: no `sqlstate`. The server writes that text in its `lc_messages`
language (settings per database or role, and a client's `options`, apply only after startup), so
reading English words fails on a German server. What libpq does offer is its error verbosity:
set to VERBOSE on the connection before the handshake, it prints the code before the message
(`FATAL:  3D000: Datenbank »x« existiert nicht`), which libpq_connect_errors.py reads.

psycopg wraps no `PQsetErrorVerbosity`, so it is called through ctypes on the connection's
documented `pgconn_ptr`, in the libpq psycopg itself uses (the one its binary wheel bundles, else
the one it loads). Where that library cannot be found the connection opens as before, and only the
English texts libpq_connect_errors.py knows get a code. The verbosity is set back to the default
once connected, so errors of queries read as they always have.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from psycopg.waiting import Wait

LOG = logging.getLogger("pipes_workers.sources")
_PQERRORS_DEFAULT = 1
_PQERRORS_VERBOSE = 2


def connect(**params: Any) -> psycopg.Connection:
    """psycopg.connect(**params), with the server's SQLSTATE in the text of a startup refusal."""
    return _StartupCodedConnection.connect(**params)


class _StartupCodedConnection(psycopg.Connection):
    """A psycopg connection whose handshake runs with libpq's VERBOSE error verbosity."""

    @classmethod
    def _connect_gen(cls, conninfo: str = "", **_kwargs: Any) -> Generator[Any, Any, Any]:
        pgconn = yield from _handshake(conninfo)
        return cls(pgconn)


def _handshake(conninfo: str) -> Generator[tuple[int, Wait], Any, pq.abc.PGconn]:
    """psycopg's own connection generator (psycopg.generators.connect), with the verbosity set
    around the handshake: libpq starts the connection, the caller waits on its socket."""
    pgconn = pq.PGconn.connect_start(conninfo.encode())
    _set_verbosity(pgconn, _PQERRORS_VERBOSE)
    while True:
        if pgconn.status == pq.ConnStatus.BAD:
            raise psycopg.OperationalError(f"connection is bad: {_failed(pgconn)}")
        status = pgconn.connect_poll()
        if status in (pq.PollingStatus.READING, pq.PollingStatus.WRITING):
            wait = Wait.R if status == pq.PollingStatus.READING else Wait.W
            while not (yield pgconn.socket, wait):
                pass
        elif status == pq.PollingStatus.OK:
            _set_verbosity(pgconn, _PQERRORS_DEFAULT)
            return pgconn
        else:
            raise psycopg.OperationalError(f"connection failed: {_failed(pgconn)}")


def _failed(pgconn: pq.abc.PGconn) -> str:
    message = pgconn.get_error_message()
    pgconn.finish()
    return message


def _set_verbosity(pgconn: pq.abc.PGconn, verbosity: int) -> None:
    libpq = _psycopg_libpq()
    if libpq is not None and pgconn.pgconn_ptr is not None:
        libpq.PQsetErrorVerbosity(pgconn.pgconn_ptr, verbosity)


@functools.cache
def _psycopg_libpq() -> ctypes.CDLL | None:
    """The libpq psycopg uses, loaded (again: the same library) through ctypes; None if not found."""
    path: str | None
    if pq.__impl__ == "binary":
        spec = importlib.util.find_spec("psycopg_binary")
        package = Path(spec.origin).parent if spec and spec.origin else None
        bundled = (
            sorted([*package.parent.glob("psycopg_binary.libs/libpq*"), *package.glob(".dylibs/libpq*")])
            if package
            else []
        )
        path = str(bundled[0]) if bundled else None
    else:  # "python" loads this library through ctypes itself; "c" was linked against it
        from psycopg.pq.misc import find_libpq_full_path

        path = find_libpq_full_path()
    if path is None:
        LOG.debug("libpq of psycopg (%s) not found: startup refusals keep no SQLSTATE", pq.__impl__)
        return None
    libpq = ctypes.CDLL(path)
    libpq.PQsetErrorVerbosity.argtypes = [ctypes.c_void_p, ctypes.c_int]
    libpq.PQsetErrorVerbosity.restype = ctypes.c_int
    return libpq
