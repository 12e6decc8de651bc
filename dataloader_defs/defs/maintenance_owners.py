"""Whether a maintenance claim's owner is gone, as the Dagster instance knows it: a `run:<id>` owner
whose run is missing or finished, or an ended `dataloader maintain` process of this host."""

from collections.abc import Callable

from dagster import DagsterInstance


def owner_gone_in(instance: DagsterInstance) -> Callable[[str], bool]:
    """The `owner_gone` predicate `control_db.maintenance_lifecycle` takes, for this instance."""
    from control_db import maintenance_lifecycle as lifecycle

    def gone(owner: str) -> bool:
        if owner.startswith(lifecycle.RUN_OWNER_PREFIX):
            run = instance.get_run_by_id(owner.removeprefix(lifecycle.RUN_OWNER_PREFIX))
            return run is None or run.is_finished
        return lifecycle.local_owner_gone(owner)

    return gone
