"""The `upgrade`/`downgrade` pair of a revision written as SQL: each executes its scripts in order.

Every revision here is hand-written SQL, so instead of two functions that each call `op.execute`
a revision says which scripts run:

    upgrade, downgrade = sql_steps(UPGRADE, DOWNGRADE)
    upgrade, downgrade = sql_steps((TABLES, VIEW), DROP_ALL)

A script may be a callable returning the SQL, rendered when the step runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from alembic import op

Script = str | Callable[[], str]
Step = Callable[[], None]


def sql_steps(upgrade: Script | Sequence[Script], downgrade: Script | Sequence[Script]) -> tuple[Step, Step]:
    """Alembic's `upgrade` and `downgrade` functions, executing `upgrade`'s / `downgrade`'s scripts in order."""
    return _step(upgrade), _step(downgrade)


def _step(scripts: Script | Sequence[Script]) -> Step:
    ordered = [scripts] if isinstance(scripts, str) or callable(scripts) else list(scripts)

    def step() -> None:
        for script in ordered:
            op.execute(script() if callable(script) else script)

    return step
