"""A load's session (LoadContext) for tests of what it decides without a source: the checks, the
settings it refuses. It holds no reader; `destination` is a real DeltaSession or None."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from dataloader_contract.request import LoadRequest, SourceConfig
from pipes_workers.lake.markers import DeltaState
from pipes_workers.lake.session import DeltaSession
from pipes_workers.sources.base import SourceColumn
from pipes_workers.strategies.base import LoadContext


def session_without_source(
    strategy: str,
    *,
    destination: DeltaSession | None = None,
    columns: Sequence[SourceColumn] = (),
    **request_fields: Any,
) -> LoadContext:
    """The session of a `strategy` load of control row `c.t` (more request fields by name)."""
    request = LoadRequest(
        control_key="c.t",
        load_strategy=strategy,  # type: ignore[arg-type]
        source_schema=None,
        source_table="t",
        destination_table="t",
        source=SourceConfig("src", "postgresql", "env"),
        lake_root="/unused",
        **request_fields,
    )
    return LoadContext(
        request=request,
        reader=None,  # type: ignore[arg-type]  # nothing here reads the source
        destination=destination,  # type: ignore[arg-type]
        state=destination.state(request.control_key) if destination is not None else DeltaState(exists=False),
        columns=list(columns),
        load_start=datetime.now(UTC),
        log=lambda _message: None,
        strategy_name=strategy,
    )
