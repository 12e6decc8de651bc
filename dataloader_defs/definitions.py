"""The DataLoader code location: the component tree of `dataloader_defs.location`, whose one
state-backed component builds an asset per active control row (from Dagster's defs state storage)
plus the jobs, sensors and resources; nothing else."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance, Definitions, definitions
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType
from dagster.components.core.component_tree import ComponentTree

LOCATION_MODULE = "dataloader_defs.location"


def location_tree() -> ComponentTree:
    """The component tree of the code location (no pyproject needed: works from an installed package)."""
    module = importlib.import_module(LOCATION_MODULE)
    return ComponentTree.from_module(defs_module=module, project_root=Path(__file__).resolve().parent.parent)


def _pin_latest_state_when_unpinned() -> None:
    """A load that names no state version takes the latest. Dagster pins one at a code server's load
    and in every launched run; a reconstruction without load data (`dagster asset materialize -m
    dataloader_defs.definitions`, a CLI run of the module) would otherwise build no table asset."""
    from dagster._core.storage.defs_state.base import DefsStateStorage

    from dataloader_defs.control_tables_component import STATE_KEY

    context = DefinitionsLoadContext.get()
    storage = DefsStateStorage.get()
    if context.get_defs_key_state_info(STATE_KEY) is not None or storage is None:
        return
    latest = storage.get_latest_defs_state_info()
    pinned = latest.info_mapping.get(STATE_KEY) if latest else None
    if pinned is not None:
        context.add_defs_state_info(STATE_KEY, pinned.version, pinned.create_timestamp)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the definitions are built: they are hundreds of thousands
    of long-lived objects (10,000 tables: 50,000 outputs), and the collector's full passes over them
    took half of the build. Nothing here is garbage; the collector resumes afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# The definitions last built in this process, by state version. A code server's start calls `defs`
# twice (Dagster resolves the lazy definitions once to find them, then again to reconstruct them):
# the second call, for the same version, takes these instead of building 10,000 assets again.
_last_built: tuple[str, Definitions] | None = None


@definitions
def defs() -> Definitions:
    """Built by Dagster at each load: from the latest state version, or in a run from the version the
    run was launched with. The repository (jobs, asset graph) is resolved here too, in the same pause
    of the collector; Dagster reuses it."""
    from dataloader_defs.control_tables_component import STATE_KEY

    global _last_built
    _pin_latest_state_when_unpinned()
    context = DefinitionsLoadContext.get()
    pinned = context.get_defs_key_state_info(STATE_KEY)
    if pinned is not None and _last_built is not None and _last_built[0] == pinned.version:
        # Recorded as read in this load too, so the repository (and every run it launches) carries it.
        context.add_defs_state_info(STATE_KEY, pinned.version, pinned.create_timestamp)
        return _last_built[1]
    with _collector_paused():
        built = location_tree().build_defs()
        repository = built.get_repository_def()
        repository.load_all_definitions()
        _ = repository.asset_graph
    _last_built = (pinned.version, built) if pinned is not None else None
    return built


def load_definitions(instance: DagsterInstance) -> Definitions:
    """The definitions as a code server initialises them on `instance` (latest state version)."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(instance.defs_state_storage):
        DefinitionsLoadContext.set(
            DefinitionsLoadContext(load_type=DefinitionsLoadType.INITIALIZATION, repository_load_data=None)
        )
        return defs()
