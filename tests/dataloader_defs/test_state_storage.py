"""The defs state storage in the instance's own storage: versions, latest pointer, pruning."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import instance_for_test

KEY = "dataloader/control_tables"


def _instance(tmp_path: Path, **config):
    storage = {"module": "dataloader_defs.state_storage", "class": "InstanceDefsStateStorage"}
    if config:
        storage["config"] = config
    return instance_for_test(overrides={"defs_state_storage": storage}, temp_dir=str(tmp_path))


def test_old_versions_are_pruned_and_a_pruned_one_says_how_to_recover(tmp_path: Path) -> None:
    with _instance(tmp_path, retain_hours=0.0, retain_versions=3) as instance:
        storage = instance.defs_state_storage
        for n in range(1, 7):
            state = tmp_path / f"state{n}"
            state.write_text(f'{{"fingerprint": "{n}", "rows": []}}')
            storage.upload_state_from_path(KEY, f"v{n}", state)
        assert storage.get_latest_version(KEY) == "v6"
        for kept in ("v4", "v5", "v6"):
            storage.download_state_to_path(KEY, kept, tmp_path / "out")
            assert (tmp_path / "out").read_text() == f'{{"fingerprint": "{kept[1:]}", "rows": []}}'
        with pytest.raises(ValueError, match="pruned after retain_hours.*dataloader_defs.state refresh"):
            storage.download_state_to_path(KEY, "v1", tmp_path / "out")


def test_versions_younger_than_the_retention_are_kept(tmp_path: Path) -> None:
    with _instance(tmp_path, retain_hours=1.0, retain_versions=1) as instance:
        storage = instance.defs_state_storage
        state = tmp_path / "state"
        state.write_text('{"fingerprint": "x", "rows": []}')
        for n in range(1, 4):
            storage.upload_state_from_path(KEY, f"v{n}", state)
        for version in ("v1", "v2", "v3"):  # a queued run may still need an older one
            storage.download_state_to_path(KEY, version, tmp_path / "out")
