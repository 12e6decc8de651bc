"""Modules stay small enough to summarise in a sentence (issue 24: none under pipes_workers over ~300
lines), and the worker keeps no second copy of the shared contract."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_WORKER_LINES = 300


def test_no_worker_module_is_over_300_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "pipes_workers").rglob("*.py")
    }
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_WORKER_LINES}
    assert not too_long, f"split these by job (at most {MAX_WORKER_LINES} lines): {too_long}"


def test_the_worker_has_no_shim_of_the_contract_or_the_old_delta_layer() -> None:
    shims = ["errors.py", "request.py", "result.py", "delta.py"]
    present = [name for name in shims if (ROOT / "pipes_workers" / name).exists()]
    assert not present, f"import dataloader_contract / pipes_workers.lake instead of {present}"
