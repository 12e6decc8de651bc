"""The load session's own checks of control-row settings, before any source or Delta work."""

from __future__ import annotations

import pytest
from session_support import session_without_source

from dataloader_contract.errors import ConfigurationError
from pipes_workers.strategies.base import LoadContext


def _session(**fields: object) -> LoadContext:
    return session_without_source("chunked_backfill", **fields)


@pytest.mark.parametrize("value", [None, 0, -3])
def test_a_setting_that_must_be_positive_is_refused_by_name(value: object) -> None:
    for name in ("chunk_size", "rolling_window_days"):
        with pytest.raises(ConfigurationError, match=rf"^c\.t: {name} must be positive, got {value!r}$"):
            _session(**{name: value}).positive_setting(name)


def test_a_positive_setting_is_returned() -> None:
    assert _session(chunk_size=7).positive_setting("chunk_size") == 7
