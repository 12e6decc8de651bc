"""The asset checks of every table: evaluated by the worker after each load and reported through Pipes.

The names, descriptions and blocking flags are part of the worker's result contract
(`pipes_workers.result.CHECK_SPECS`); the orchestrator only declares them, so Dagster shows the
checks the worker reports, and never opens a source to evaluate them itself.
"""

from __future__ import annotations

import warnings

from dagster import AssetCheckSpec, AssetKey, PartitionsDefinition, PreviewWarning

from pipes_workers.result import CHECK_SPECS

ASSET_KEY = AssetKey("dataloader_table_load")


def check_specs(partitions_def: PartitionsDefinition) -> list[AssetCheckSpec]:
    """The checks the load asset's worker reports after every run, one result per partition."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=PreviewWarning)
        return [
            AssetCheckSpec(
                spec.name,
                asset=ASSET_KEY,
                blocking=spec.blocking,
                description=spec.description,
                partitions_def=partitions_def,
            )
            for spec in CHECK_SPECS
        ]
