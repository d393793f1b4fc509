"""Configuration: validation errors are one clear line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.settings import load_settings

PUFA = [sys.executable, "-m", "bot"]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PUFA_DEFAULT_LOCALE", "fr_FR", "PUFA_DEFAULT_LOCALE"),
        ("PUFA_DATABASE_URL", "not a url", "PUFA_DATABASE_URL"),
        ("PUFA_DATABASE_URL", "mysql://root@localhost/x", "unsupported database"),
        ("PUFA_PORT", "70000", "PUFA_PORT"),
        ("PUFA_PORT", "http", "PUFA_PORT"),
        ("PUFA_TIMEZONE", "Asia/Nowhere", "PUFA_TIMEZONE"),
    ],
)
def test_bad_configuration_fails_with_one_line(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    result = subprocess.run(
        [*PUFA, "db", "upgrade"],
        cwd=tmp_path,
        env=_clean_env(**{variable: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pufa: invalid configuration:")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_production_requires_secret_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="PUFA_SECRET_KEY is required"):
        load_settings(env="production")


def test_development_secret_is_generated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PUFA_SECRET_KEY", raising=False)
    first = load_settings(data_dir=tmp_path / "d")
    second = load_settings(data_dir=tmp_path / "d")
    assert first.secret() == second.secret()
    assert len(first.secret()) >= 48
    key_file = tmp_path / "d" / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PUFA_PORT", raising=False)
    (tmp_path / ".env").write_text("PUFA_PORT=9123\nPUFA_DEFAULT_LOCALE=en-US\n", encoding="utf-8")
    settings = load_settings(data_dir=tmp_path / "d")
    assert settings.port == 9123
    assert settings.default_locale == "en"


def test_database_url_aliases_are_normalized(tmp_path: Path) -> None:
    pg = load_settings(database_url="postgresql://root@127.0.0.1/test", data_dir=tmp_path)
    assert pg.database_url == "postgresql+asyncpg://root@127.0.0.1/test"
    lite = load_settings(database_url="sqlite:///./x.db", data_dir=tmp_path)
    assert lite.database_url.startswith("sqlite+aiosqlite:///")


def test_webhook_mode_requires_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PUFA_TELEGRAM_WEBHOOK_SECRET"):
        load_settings(telegram_token="1:x", telegram_mode="webhook", data_dir=tmp_path)


def test_public_url_follows_host_and_port_unless_set(tmp_path: Path) -> None:
    from core.settings import Settings

    def make(**values: object) -> Settings:
        return Settings(_env_file=None, secret_key="k" * 40, **values)  # type: ignore[call-arg, arg-type]

    assert make().public_url == "http://127.0.0.1:8080"
    assert make(port=9123).public_url == "http://127.0.0.1:9123"
    assert make(host="10.0.0.5", port=80).public_url == "http://10.0.0.5:80"
    assert make(host="::1", port=9000).public_url == "http://[::1]:9000"
    assert make(port=9123, public_url="https://pufa.example.cn/").public_url == (
        "https://pufa.example.cn"
    )


async def test_openapi_servers_follow_the_port(make_settings: Any) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app

    app = create_app(make_settings(port=9123))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        doc = await (await client.get("/api/v1/openapi.json")).json()
    assert doc["servers"] == [{"url": "http://127.0.0.1:9123"}]
