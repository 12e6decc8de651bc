"""Dagster's defs state storage kept in the instance's own storage (its key-value table).

The code location's definitions come from a state-backed component whose state (the active control
rows) is versioned by Dagster: the latest version pointer is Dagster's own (`DefsStateInfo`, in the
run storage's key-value table), and a run carries the version it was launched with. This class keeps
the state blobs in the same table, so every process that loads the code location — the code server,
the daemon, a run worker on any host — reads the same versions from the Dagster storage they already
share (PostgreSQL in production), with no local file and no object store.

Blobs are compressed JSON. Older versions are pruned after `retain_hours` (default 48; a queued run
reconstructs the version it was launched with, so keep versions longer than runs stay queued), the
newest `retain_versions` (default 5) always kept.

dagster.yaml:

    defs_state_storage:
      module: dataloader_defs.state_storage
      class: InstanceDefsStateStorage
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster._config.field import Field
from dagster._core.storage.defs_state.base import DEFS_STATE_INFO_CURSOR_KEY, DefsStateStorage
from dagster._serdes.config_class import ConfigurableClass, ConfigurableClassData
from dagster_shared.serdes.objects.models.defs_state_info import DefsStateInfo
from dagster_shared.serdes.serdes import deserialize_value, serialize_value

_PREFIX = "dataloader/defs_state"


class InstanceDefsStateStorage(DefsStateStorage, ConfigurableClass):
    """Versioned defs state in the Dagster instance's key-value storage."""

    def __init__(
        self,
        retain_hours: float = 48.0,
        retain_versions: int = 5,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        self._inst_data = inst_data
        self._retain_s = float(retain_hours) * 3600
        self._retain_versions = max(1, int(retain_versions))

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "retain_hours": Field(float, is_required=False, default_value=48.0),
            "retain_versions": Field(int, is_required=False, default_value=5),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> InstanceDefsStateStorage:
        return cls(inst_data=inst_data, **config_value)

    def _kvs_get(self, *keys: str) -> dict[str, str]:
        return dict(self._instance.run_storage.get_cursor_values(set(keys)))

    def _kvs_set(self, values: dict[str, str]) -> None:
        self._instance.run_storage.set_cursor_values(values)

    def _blob_key(self, key: str, version: str) -> str:
        return f"{_PREFIX}/{self._sanitize_key(key)}/{version}"

    def _index_key(self, key: str) -> str:
        return f"{_PREFIX}/{self._sanitize_key(key)}"

    def download_state_to_path(self, key: str, version: str, path: Path) -> None:
        """Write state `version` of `key` to `path`; a clear error when it was never stored or pruned."""
        blob = self._kvs_get(self._blob_key(key, version)).get(self._blob_key(key, version))
        if not blob:
            raise ValueError(
                f"no defs state {version!r} for {key!r} in the Dagster storage (never written, or pruned "
                "after retain_hours): write a new version with `python -m dataloader_defs.state refresh`"
            )
        path.write_bytes(zlib.decompress(base64.b64decode(blob)))

    def upload_state_from_path(self, key: str, version: str, path: Path) -> None:
        """Store the state at `path` as `version` of `key`, make it the latest, prune old versions."""
        blob = base64.b64encode(zlib.compress(path.read_bytes(), 6)).decode("ascii")
        self._kvs_set({self._blob_key(key, version): blob})
        self.set_latest_version(key, version)
        self._record_and_prune(key, version)

    def _record_and_prune(self, key: str, version: str) -> None:
        index_key = self._index_key(key)
        versions: list[list[Any]] = json.loads(self._kvs_get(index_key).get(index_key) or "[]")
        now = time.time()
        versions.append([version, now])
        keep = versions[-self._retain_versions :]
        kept = [v for v in versions[: -self._retain_versions] if now - v[1] < self._retain_s] + keep
        pruned = {self._blob_key(key, v[0]): "" for v in versions if v not in kept}
        self._kvs_set({index_key: json.dumps(kept), **pruned})

    def set_latest_version(self, key: str, version: str | None) -> None:
        current = self.get_latest_defs_state_info()
        info = (
            DefsStateInfo.remove_key(current, key)
            if version is None
            else DefsStateInfo.add_version(current, key, version)
        )
        self._kvs_set({DEFS_STATE_INFO_CURSOR_KEY: serialize_value(info)})

    def get_latest_defs_state_info(self) -> DefsStateInfo | None:
        raw = self._kvs_get(DEFS_STATE_INFO_CURSOR_KEY).get(DEFS_STATE_INFO_CURSOR_KEY)
        return deserialize_value(raw, DefsStateInfo) if raw else None
