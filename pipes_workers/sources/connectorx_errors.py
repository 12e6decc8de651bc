"""The MySQL errno of a connectorx failure, which connectorx hands over only as its Rust error's text
(a RuntimeError, or a Rust panic when the stream fails mid-read).

Read from the error's structure, not its wording: a server error renders as the MySQL protocol's
`ERROR <errno> (<SQLSTATE>)`, and the Rust driver's I/O and packet-codec variants (`IoError`,
`CodecError`, `DriverError { ConnectionClosed }`) are the condition the MySQL client library
reports as 2013 (CR_SERVER_LOST, lost connection during a query).
"""

from __future__ import annotations

import re

CR_SERVER_LOST = 2013
_SERVER_ERROR = re.compile(r"\bERROR (\d{3,5}) \(([0-9A-Z]{5})\)")
_LOST_CONNECTION_VARIANTS = re.compile(r"\b(IoError|CodecError|ConnectionClosed)\b")


def connectorx_mysql_errno(exc: BaseException) -> int | None:
    """The MySQL errno the connectorx error `exc` carries, 2013 for a lost connection, else None."""
    text = str(exc)
    server = _SERVER_ERROR.search(text)
    if server is not None:
        return int(server.group(1))
    if _LOST_CONNECTION_VARIANTS.search(text):
        return CR_SERVER_LOST
    return None
