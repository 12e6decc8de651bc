"""The worker's numeric environment settings: default when unset, a configuration error naming the
variable and its value otherwise."""

from __future__ import annotations

import pytest

from dataloader_contract.errors import ConfigurationError
from pipes_workers.env_settings import positive_number, whole_number


def test_whole_number_takes_the_default_when_unset_or_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATALOADER_X", raising=False)
    assert whole_number("DATALOADER_X", 7, unit="hours") == 7
    monkeypatch.setenv("DATALOADER_X", "  ")
    assert whole_number("DATALOADER_X", 7, unit="hours") == 7
    monkeypatch.setenv("DATALOADER_X", " 12 ")
    assert whole_number("DATALOADER_X", 7, unit="hours") == 12


@pytest.mark.parametrize("raw", ["-1", "1.5", "ten", "0"])
def test_whole_number_refuses_what_is_not_one(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("DATALOADER_X", raw)
    with pytest.raises(
        ConfigurationError, match=rf"DATALOADER_X='{raw}' must be a whole number of keys >= 1"
    ):
        whole_number("DATALOADER_X", 7, unit="keys", minimum=1)


@pytest.mark.parametrize("raw", ["0", "-3", "nan", "soon"])
def test_positive_number_refuses_zero_negative_and_text(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("DATALOADER_X", raw)
    with pytest.raises(ConfigurationError, match=rf"DATALOADER_X='{raw}' must be a positive number"):
        positive_number("DATALOADER_X", 1.0)
    monkeypatch.setenv("DATALOADER_X", "2.5")
    assert positive_number("DATALOADER_X", 1.0) == 2.5
