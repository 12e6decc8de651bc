"""What a fresh shell beside `make dev` uses when DATALOADER_CONTROL_DB_URL / DATALOADER_LAKE_ROOT are unset.

`make dev` (scripts/dev.py) records the settings it hands to Dagster in `.dataloader/dev.json`
(`record`): the lake root, and the control database URL with any password replaced by `***` (it
is only compared, never used). `use_dev_settings_when_unset` — called by the `dataloader` command
before every subcommand — fills in what this shell did not set: the control database of the
embedded server while it runs (`embedded.running_url`), and the lake root `make dev` recorded for
that same control database. It says once on stderr what it took from where; what the shell set
always wins.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

from control_db import embedded
from control_db.urls import CONTROL_DB_URL_ENV, libpq_url, redact

LAKE_ROOT_ENV = "DATALOADER_LAKE_ROOT"
RECORD_NAME = "dev.json"


def record(state_dir: Path, *, control_db_url: str, lake_root: str) -> Path:
    """Write `state_dir/dev.json` for the shells beside `make dev`; returns its path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / RECORD_NAME
    settings = {"control_db_url": redact(libpq_url(control_db_url)), "lake_root": lake_root}
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return path


def recorded_lake_root(control_db_url: str) -> str | None:
    """The lake root `make dev` recorded for `control_db_url` (the project of this directory or of
    this checkout), or None when it recorded none for that database."""
    for base in embedded.project_dirs():
        path = base / embedded.STATE_DIR / RECORD_NAME
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if settings.get("control_db_url") == redact(libpq_url(control_db_url)) and settings.get("lake_root"):
            return str(settings["lake_root"])
    return None


def use_dev_settings_when_unset(
    *, lake: bool = True, environ: MutableMapping[str, str] = os.environ, command: str = "dataloader"
) -> None:
    """Set DATALOADER_CONTROL_DB_URL (and, with `lake`, DATALOADER_LAKE_ROOT) in `environ` from
    `make dev` when unset, and say once on stderr which ones it uses. Leaves them unset when there
    is nothing to find; the command then names what to set (`missing`)."""
    found = []
    url = environ.get(CONTROL_DB_URL_ENV)
    if not url:
        url = embedded.running_url()
        if url:
            environ[CONTROL_DB_URL_ENV] = url
            found.append(f"{CONTROL_DB_URL_ENV}={url} (the embedded server)")
    if lake and url and not environ.get(LAKE_ROOT_ENV):
        lake_root = recorded_lake_root(url)
        if lake_root:
            environ[LAKE_ROOT_ENV] = lake_root
            found.append(f"{LAKE_ROOT_ENV}={lake_root}")
    if found:
        print(f"{command}: not set in this shell, using make dev's: {', '.join(found)}", file=sys.stderr)


def missing(*names: str, environ: MutableMapping[str, str] = os.environ) -> str | None:
    """`set A, B (…)` for the settings among `names` still unset, or None when all are set."""
    unset = [name for name in names if not environ.get(name)]
    if not unset:
        return None
    return (
        f"set {', '.join(unset)} (a shell beside a running `make dev` finds its embedded server and "
        "lake by itself)"
    )
