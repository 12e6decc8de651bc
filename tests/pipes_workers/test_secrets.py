"""Secret resolution: env / file / literal scopes, missing secrets, and no password in printable output."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dataloader_contract.errors import ConfigurationError, SecretNotFoundError
from dataloader_contract.request import SourceConfig
from pipes_workers.secrets import resolve_source

PASSWORD = "pl4nted-S3cret-value"


def _config(scope: str, **values: object) -> SourceConfig:
    return SourceConfig(db_config_key="erp", db_type="postgresql", kv_scope=scope, config=dict(values))


def test_env_scope_resolves_every_string_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_HOST", "db.internal")
    monkeypatch.setenv("ERP_USER", "loader")
    monkeypatch.setenv("ERP_PASSWORD", PASSWORD)
    monkeypatch.setenv("ERP_DB", "erp")
    monkeypatch.setenv("ERP_SSLMODE", "require")
    params = resolve_source(
        _config(
            "env",
            host="ERP_HOST",
            port=5433,
            database="ERP_DB",
            user="ERP_USER",
            password="ERP_PASSWORD",
            options={"sslmode": "ERP_SSLMODE"},
        )  # fmt: skip
    )
    assert (params.host, params.port, params.database, params.user) == ("db.internal", 5433, "erp", "loader")
    assert params.password == PASSWORD
    assert params.options == {"sslmode": "require"}


def test_env_port_given_as_a_name_becomes_an_int(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_PORT", "6543")
    assert resolve_source(_config("env", port="ERP_PORT")).port == 6543


def test_missing_env_var_names_key_and_secret_name_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERP_PASSWORD_MISSING", raising=False)
    with pytest.raises(SecretNotFoundError) as info:
        resolve_source(_config("env", password="ERP_PASSWORD_MISSING"))
    assert "password" in str(info.value) and "ERP_PASSWORD_MISSING" in str(info.value)
    assert info.value.retryable is False


def test_file_scope_strips_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "erp").mkdir()
    (tmp_path / "erp" / "password").write_text(PASSWORD + "\n")
    (tmp_path / "host").write_text("db.internal\r\n")
    params = resolve_source(_config("file", host="host", password="erp/password"), secrets_dir=tmp_path)
    assert params.password == PASSWORD and params.host == "db.internal"


def test_file_scope_uses_the_environment_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text(PASSWORD)
    monkeypatch.setenv("DATALOADER_SECRETS_DIR", str(tmp_path))
    assert resolve_source(_config("file", password="pw")).password == PASSWORD


@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "a/../../outside", "link"])
def test_file_scope_refuses_paths_outside_the_directory(tmp_path: Path, name: str) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (tmp_path / "outside").write_text("nope")
    (secrets / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ConfigurationError, match="outside the secrets directory"):
        resolve_source(_config("file", password=name), secrets_dir=secrets)


def test_missing_file_names_the_secret(tmp_path: Path) -> None:
    with pytest.raises(SecretNotFoundError, match="'password'.*'erp_pw'"):
        resolve_source(_config("file", password="erp_pw"), secrets_dir=tmp_path)


def test_file_scope_without_directory_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATALOADER_SECRETS_DIR", raising=False)
    with pytest.raises(SecretNotFoundError, match="DATALOADER_SECRETS_DIR"):
        resolve_source(_config("file", password="erp_pw"))


def test_literal_scope_uses_values_as_is() -> None:
    params = resolve_source(_config("literal", host="localhost", port="5432", user="u", password=PASSWORD))
    assert params.port == 5432 and params.password == PASSWORD


def test_unknown_key_and_scope_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="pasword"):
        resolve_source(_config("literal", pasword=PASSWORD))
    with pytest.raises(ConfigurationError, match="vault"):
        resolve_source(_config("vault", password="x"))
    with pytest.raises(ConfigurationError, match="port"):
        resolve_source(_config("literal", port="fivefourthreetwo"))


def test_password_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ERP_PASSWORD", PASSWORD)
    monkeypatch.setenv("ERP_HOST", "localhost")
    params = resolve_source(_config("env", host="ERP_HOST", password="ERP_PASSWORD"))
    print(params, repr(params), f"{params}", params.label)
    logging.getLogger("test").warning("params: %s %r", params, params)
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    assert PASSWORD not in caplog.text
    assert PASSWORD not in str(params) and PASSWORD not in repr(params)
