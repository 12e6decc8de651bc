"""The `dataloader` command: `db upgrade` (twice: the second is a no-op), `status`, `db downgrade`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from control_rows import insert_table

from control_db import cli
from control_db.migrate import head_revision


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{parts.hostname}:{parts.port}"))


def test_db_upgrade_status_downgrade(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The server trusts local connections, so the password is never checked: it must just never be printed.
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", _with_password(fresh_database, "s3cret"))

    assert cli.main(["db", "upgrade"]) == 0
    first = capsys.readouterr().out
    assert f"upgraded from revision base (empty) to {head_revision()}" in first

    assert cli.main(["db", "upgrade"]) == 0
    second = capsys.readouterr().out
    assert f"already at revision {head_revision()}; nothing to do" in second

    with psycopg.connect(fresh_database, autocommit=True) as conn:
        insert_table(conn, "erp.public.orders", cron_timezone="Europe/Amsterdam")
        insert_table(conn, "erp.public.customers", is_active=False)
    assert cli.main(["status"]) == 0
    status = capsys.readouterr().out.splitlines()
    assert status[0].split()[:5] == [
        "control_key",
        "db_config_key",
        "load_strategy",
        "is_active",
        "last_status",
    ]
    assert set(status[1]) <= {"-", " "}
    assert status[2].split()[:4] == ["erp.public.customers", "erp", "full", "False"]
    assert status[3].startswith("erp.public.orders ")
    assert status[-1] == "(2 tables)"

    assert cli.main(["db", "downgrade", "base"]) == 0
    third = capsys.readouterr().out
    assert f"downgraded from revision {head_revision()} to base" in third
    assert "s3cret" not in first + second + "\n".join(status) + third
    assert "***" in first


def test_missing_url_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATALOADER_CONTROL_DB_URL", raising=False)
    monkeypatch.setenv("DATALOADER_EMBEDDED_PGDATA", "/nonexistent/pgdata")  # no embedded server either
    assert cli.main(["status"]) == 2
    assert "DATALOADER_CONTROL_DB_URL is not set" in capsys.readouterr().err


PLUGIN = """
def register(subparsers):
    hello = subparsers.add_parser("hello", help="say hello")
    hello.add_argument("name")
    hello.set_defaults(func=lambda args: print(f"hello {args.name}") or 0)
"""


def test_subcommands_come_from_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A throwaway distribution on sys.path registering one good and one broken command.
    (tmp_path / "dl_hello_plugin.py").write_text(PLUGIN)
    dist_info = tmp_path / "dl_hello_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: dl-hello-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        f"[{cli.COMMANDS_GROUP}]\nhello = dl_hello_plugin:register\nbroken = dl_no_such_module:register\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    assert cli.main(["hello", "world"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "hello world\n"
    assert "skipping command plugin 'broken'" in captured.err
