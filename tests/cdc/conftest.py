"""The cdc tests need the logical-decoding PostgreSQL (`cdc_pg_url`, tests/conftest.py: `make
cdc-pg-start`, port 5441) and the load-test helpers that live beside the worker tests."""

from __future__ import annotations

import sys
from pathlib import Path

SUPPORT = str(Path(__file__).resolve().parents[1] / "pipes_workers")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)
