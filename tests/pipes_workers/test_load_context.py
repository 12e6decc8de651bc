"""The load session's own checks of control-row settings, before any source or Delta work."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import LoadRequest, SourceConfig
from pipes_workers.lake.markers import DeltaState
from pipes_workers.strategies.base import LoadContext


def _session(**fields: object) -> LoadContext:
    request = LoadRequest(
        control_key="c.t",
        load_strategy="chunked_backfill",
        source_schema=None,
        source_table="t",
        destination_table="t",
        source=SourceConfig("src", "postgresql", "env"),
        lake_root="/unused",
        **fields,  # type: ignore[arg-type]
    )
    return LoadContext(
        request=request,
        reader=None,  # type: ignore[arg-type]  # these checks read no source
        destination=None,  # type: ignore[arg-type]
        state=DeltaState(exists=False),
        columns=[],
        load_start=datetime.now(UTC),
        log=lambda _message: None,
    )


@pytest.mark.parametrize("value", [None, 0, -3])
def test_a_setting_that_must_be_positive_is_refused_by_name(value: object) -> None:
    for name in ("chunk_size", "rolling_window_days"):
        with pytest.raises(ConfigurationError, match=rf"^c\.t: {name} must be positive, got {value!r}$"):
            _session(**{name: value}).positive_setting(name)


def test_a_positive_setting_is_returned() -> None:
    assert _session(chunk_size=7).positive_setting("chunk_size") == 7
