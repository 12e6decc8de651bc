"""Moved to `dataloader_contract.errors` (the contract the three packages share); import it from there.

This name stays only for the modules being reworked by the Delta-session and maintenance changes
(`delta.py`, `lake/`, `maintain.py`, `maintain_pipe.py`, `maintenance_request.py`); it defines nothing.
"""

from dataloader_contract.errors import *  # noqa: F403
