"""Configuration from ``PUFA_*`` environment variables or a ``.env`` file.

Every variable in CONTRACT.md is a field here. :func:`load_settings` turns pydantic's
validation errors into one :class:`~core.errors.ConfigError` line that names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigError

SHIPPED_LOCALES: tuple[str, ...] = ("zh_CN", "en")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
"""An address or network of ``PUFA_TRUSTED_PROXIES`` (a single address is a /32 or /128)."""
SECRET_FILE_NAME = "secret_key"

_DRIVER_ALIASES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class Settings(BaseSettings):
    """All runtime configuration of a pufa process."""

    model_config = SettingsConfigDict(
        env_prefix="PUFA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite+aiosqlite:///./pufa.db"
    secret_key: SecretStr | None = None
    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str = Field(
        default="", description="base of links and QR codes; default http://{host}:{port}"
    )
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(
        default_factory=list,
        description="reverse proxies whose X-Forwarded-For is believed: addresses or networks,"
        " separated by commas or spaces",
    )
    open_link_per_respondent_per_minute: float = Field(default=10.0, gt=0, le=100_000)
    open_link_per_address_per_minute: float = Field(default=600.0, gt=0, le=1_000_000)
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    telegram_token: SecretStr | None = None
    telegram_mode: Literal["polling", "webhook"] = "polling"
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org/bot"

    wecom_corp_id: str | None = None
    wecom_agent_id: str | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_api_base: str = "https://qyapi.weixin.qq.com"

    send_rate: float = Field(default=30.0, gt=0, le=1000)
    outbox_lease: float = Field(default=60.0, ge=1, le=3600)
    """Seconds a worker holds a message it is sending; a process that dies mid-send leaves
    the message to be taken again after this."""
    outbox_max_attempts: int = Field(default=10, ge=1, le=100)
    """Attempts at a message before it is marked failed and the coordinator is told."""
    outbox_poll: float = Field(default=0.5, gt=0, le=60)
    """Seconds between two looks for due messages queued by another process."""
    outbox_worker: bool = True
    """Whether this process sends outbox messages (false for a process that should only
    answer while other ``pufa serve`` processes on the same database send)."""
    auto_migrate: bool = True

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {value!r}") from exc
        driver = _DRIVER_ALIASES.get(url.drivername)
        if driver is None:
            raise ValueError(
                f"unsupported database {url.drivername!r}; use sqlite+aiosqlite:///FILE "
                "or postgresql+asyncpg://USER@HOST/DB"
            )
        if driver.startswith("postgresql") and not url.database:
            raise ValueError("a PostgreSQL URL must name the database")
        if driver.startswith("sqlite") and not url.database:
            raise ValueError("a SQLite URL must name a file, e.g. sqlite+aiosqlite:///./pufa.db")
        return url.set(drivername=driver).render_as_string(hide_password=False)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from exc
        return value

    @field_validator("default_locale")
    @classmethod
    def _check_locale(cls, value: str) -> str:
        language = value.replace("-", "_").split("_", 1)[0].lower()
        for shipped in SHIPPED_LOCALES:
            if language == shipped.split("_", 1)[0].lower():
                return shipped
        raise ValueError(f"unknown locale {value!r}; shipped: {', '.join(SHIPPED_LOCALES)}")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.replace(",", " ").split() if part]
        if isinstance(value, list | tuple):
            networks = []
            for item in value:
                try:
                    networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
                except ValueError as exc:
                    raise ValueError(f"not an address or network: {item!r}") from exc
            return networks
        return value

    @field_validator("public_url", "telegram_api_base", "wecom_api_base")
    @classmethod
    def _check_http_url(cls, value: str) -> str:
        if value == "":
            return value  # public_url: derived from host and port below
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/") if not value.endswith("/bot") else value

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if not self.public_url:
            host = f"[{self.host}]" if ":" in self.host else self.host
            self.public_url = f"http://{host}:{self.port}"
        if self.env == "production" and self.secret_key is None:
            raise ValueError("PUFA_SECRET_KEY is required when PUFA_ENV=production")
        if (
            self.telegram_token is not None
            and self.telegram_mode == "webhook"
            and self.telegram_webhook_secret is None
        ):
            raise ValueError("PUFA_TELEGRAM_WEBHOOK_SECRET is required in webhook mode")
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone as a :class:`ZoneInfo`."""
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def telegram_enabled(self) -> bool:
        """Whether a Telegram bot token is configured."""
        return self.telegram_token is not None

    @property
    def wecom_enabled(self) -> bool:
        """Whether every WeCom variable is configured."""
        return all(
            v is not None
            for v in (
                self.wecom_corp_id,
                self.wecom_agent_id,
                self.wecom_secret,
                self.wecom_token,
                self.wecom_aes_key,
            )
        )

    def secret(self) -> bytes:
        """The secret key bytes (call :func:`ensure_secret_key` first in development)."""
        if self.secret_key is None:
            raise ConfigError("PUFA_SECRET_KEY is not set")
        return self.secret_key.get_secret_value().encode("utf-8")


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if loc:
            name = "PUFA_" + loc[0].upper()
            raw = err.get("input")
            shown = "" if raw is None or isinstance(raw, dict) else f" (got {raw!r})"
            parts.append(f"{name}: {message}{shown}")
        else:
            parts.append(message)
    return "invalid configuration: " + "; ".join(parts)


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key, generating one into the data directory if needed.

    In production a missing key is already rejected by validation; in development a key is
    created once in ``data_dir/secret_key`` (mode 0600) and reused on every later start.
    """
    if settings.secret_key is not None:
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / SECRET_FILE_NAME
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ConfigError(f"the secret key file {path} is empty; delete it to generate a new one")
    return settings.model_copy(update={"secret_key": SecretStr(key)})


def load_settings(**overrides: object) -> Settings:
    """Read and validate the configuration; raise :class:`ConfigError` with one clear line."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None
    return ensure_secret_key(settings)
