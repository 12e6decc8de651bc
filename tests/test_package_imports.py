"""The dependency rules of docs/CONTRACTS.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# dataloader_defs may use pipes_workers only for the maintenance request type (the load's request and
# result are dataloader_contract's; the worker command itself is a module name, not an import).
DEFS_MAY_IMPORT = {"pipes_workers.maintenance_request"}
# The shared contract is pure Python: it imports none of the packages and no heavy library.
CONTRACT_MAY_NOT_IMPORT = {
    "control_db",
    "pipes_workers",
    "dataloader_defs",
    "dagster",
    "dagster_pipes",
    "psycopg",
    "pyarrow",
    "deltalake",
    "sqlalchemy",
}
# pipes_workers reaches control_db only from the in-process CLI verbs.
WORKER_MODULES_USING_CONTROL_DB = {
    "local_load.py",
    "validate.py",
    "maintain.py",
    "discovery/command.py",
    "cdc/command.py",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _package_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_the_contract_imports_no_package_and_no_heavy_library():
    files = _package_files("dataloader_contract")
    assert files, "dataloader_contract has no modules"
    for path in files:
        bad = {n for n in _imports(path) if n.split(".")[0] in CONTRACT_MAY_NOT_IMPORT}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_control_db_imports_neither_other_package():
    for path in _package_files("control_db"):
        bad = {
            n for n in _imports(path) if n.split(".")[0] in ("pipes_workers", "dataloader_defs", "dagster")
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_pipes_workers_never_imports_dagster_and_control_db_only_from_cli_verbs():
    for path in _package_files("pipes_workers"):
        names = _imports(path)
        assert not {n for n in names if n.split(".")[0] == "dagster"}, (
            f"{path.relative_to(ROOT)} imports dagster"
        )
        assert not {n for n in names if n.split(".")[0] == "dataloader_defs"}, path
        if path.relative_to(ROOT / "pipes_workers").as_posix() not in WORKER_MODULES_USING_CONTROL_DB:
            assert not {n for n in names if n.split(".")[0] == "control_db"}, (
                f"{path.relative_to(ROOT)} imports control_db"
            )


def test_dataloader_defs_uses_only_the_request_and_result_types_of_the_worker():
    for path in [*_package_files("dataloader_defs"), ROOT / "scripts" / "checks.py"]:
        used = {n for n in _imports(path) if n.split(".")[0] == "pipes_workers"}
        assert used <= DEFS_MAY_IMPORT, f"{path.relative_to(ROOT)} imports {sorted(used - DEFS_MAY_IMPORT)}"
