"""MaintenanceResult travels over Pipes typed, like LoadResult: to_message -> read_maintenance_result."""

from __future__ import annotations

import pytest

from pipes_workers.maintenance_request import (
    MaintenanceRequest,
    MaintenanceResult,
    read_maintenance_result,
)


def test_result_round_trips_through_its_message() -> None:
    result = MaintenanceResult(
        "erp.orders",
        files_before=4,
        files_after=1,
        bytes_removed=10,
        z_order_by=("id", "region"),
        seconds=0.5,
    )
    assert read_maintenance_result([{"other": 1}, {"noise": 2}, result.to_message()]) == result
    assert read_maintenance_result([{"other": 1}]) is None
    skipped = MaintenanceResult("erp.orders", skipped="no Delta table yet")
    assert read_maintenance_result([result.to_message(), skipped.to_message()]) == skipped


def test_unknown_fields_are_named() -> None:
    message = MaintenanceResult("k").to_message()
    next(iter(message.values()))["surprise"] = 1
    with pytest.raises(ValueError, match="surprise"):
        read_maintenance_result([message])


def test_request_for_a_held_target() -> None:
    class Target:
        control_key, destination_table, load_strategy, primary_keys = "k", "bronze/k", "incremental", ("id",)

    request = MaintenanceRequest.for_target(Target(), "/lake")
    assert MaintenanceRequest.from_dict(request.to_dict()) == MaintenanceRequest(
        "k", "bronze/k", "/lake", "incremental", ("id",)
    )
