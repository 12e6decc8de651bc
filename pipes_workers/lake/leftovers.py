"""Remove what a failed Delta write left in a local lake: the data files it wrote before failing
(no commit references them), the temporary commit file of a commit that did not land, and the
table's directory when the write was to create the table and nothing was committed.

Only files written since the write started are candidates, and never one the table's current
version references, so files of earlier versions (time travel, vacuum's business) stay. Object
stores are left to `dataloader maintain`, whose vacuum removes files no version references.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from pipes_workers.storage import is_object_store

LOG = logging.getLogger("pipes_workers.lake")
DELTA_LOG = "_delta_log"
# File times are compared with the write's start; a coarse file system clock may round down.
_MTIME_SLACK_S = 2.0


def remove_leftovers(uri: str, since: float, *, storage_options: dict[str, str] | None = None) -> list[str]:
    """Delete files under the local table `uri` that a write started at `since` (epoch seconds) left
    uncommitted; returns their paths relative to the table. Failures to delete are logged, not raised:
    the write's own error is what the caller reports."""
    if is_object_store(uri):
        return []
    root = Path(uri.removeprefix("file://"))
    if not root.is_dir():
        return []
    referenced = _referenced(uri, storage_options)
    removed: list[str] = []
    for path in _written_since(root, since - _MTIME_SLACK_S):
        relative = path.relative_to(root).as_posix()
        if relative in referenced:
            continue
        with contextlib.suppress(FileNotFoundError):
            try:
                path.unlink()
                removed.append(relative)
            except OSError as exc:
                LOG.debug("could not remove %s: %s", path, exc)
    if not _has_commit(root):
        _remove_empty_dirs(root)
    if removed:
        LOG.debug("removed %d file(s) a failed write left under %s", len(removed), uri)
    return removed


def _written_since(root: Path, since: float) -> list[Path]:
    """Data files (outside `_delta_log`) and temporary commit files modified at or after `since`."""
    found = []
    for directory, subdirs, files in os.walk(root):
        here = Path(directory)
        in_log = here.name == DELTA_LOG
        for name in files:
            if in_log and not (name.startswith("_commit_") and name.endswith(".tmp")):
                continue
            path = here / name
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime >= since:
                    found.append(path)
        subdirs[:] = [d for d in subdirs if not (in_log and d == "_last_checkpoint")]
    return found


def _referenced(uri: str, storage_options: dict[str, str] | None) -> set[str]:
    """Paths the table's current version references (empty when there is no table)."""
    try:
        table = DeltaTable(uri, storage_options=storage_options)
    except Exception:  # no table (the failed write was to create it), or its log is unreadable
        return set()
    actions = pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()
    return {str(path) for path in actions.column("path").to_pylist()}


def _has_commit(root: Path) -> bool:
    log = root / DELTA_LOG
    return log.is_dir() and any(name.endswith(".json") and name[:1].isdigit() for name in os.listdir(log))


def _remove_empty_dirs(root: Path) -> None:
    """Remove empty directories under `root`, and `root` itself when it ends up empty."""
    for directory, _subdirs, _files in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        with contextlib.suppress(OSError):
            os.rmdir(directory)
