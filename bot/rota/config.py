"""The rota's own settings: when reminders fall due (``PUFA_ROTA_*`` variables or ``.env``).

======================================  =======  ==========================================
variable                                default  meaning
======================================  =======  ==========================================
``PUFA_ROTA_HEADS_UP_DAYS``             7        first notice to the unit, with Confirm
``PUFA_ROTA_CONFIRM_ESCALATION_DAYS``   5        tell the coordinator if not confirmed
``PUFA_ROTA_TOPIC_REQUEST_DAYS``        3        ask the unit for its topic
``PUFA_ROTA_TOPIC_DEADLINE_DAYS``       2        content deadline; escalate if no topic
``PUFA_ROTA_LAST_REMINDER_DAYS``        1        last reminder, with the topic
``PUFA_ROTA_MORNING``                   07:30    the day's reminder (会前十分钟), local time
``PUFA_ROTA_ESCALATION_GRACE_HOURS``    24       a unit told later than usual gets this long
``PUFA_ROTA_MONTH_CHECK_DAYS``          14       flag next month's shortfall this early
======================================  =======  ==========================================

Days may be fractions (``0.5``). Offsets are counted back from the meeting's time.
"""

from __future__ import annotations

from datetime import time, timedelta
from functools import lru_cache

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.rota.plan import Offsets
from core.errors import ConfigError

__all__ = ["RotaSettings", "load_offsets"]


class RotaSettings(BaseSettings):
    """``PUFA_ROTA_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="PUFA_ROTA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    heads_up_days: float = Field(default=7, ge=0, le=60)
    confirm_escalation_days: float = Field(default=5, ge=0, le=60)
    topic_request_days: float = Field(default=3, ge=0, le=60)
    topic_deadline_days: float = Field(default=2, ge=0, le=60)
    last_reminder_days: float = Field(default=1, ge=0, le=60)
    morning: time = time(7, 30)
    escalation_grace_hours: float = Field(default=24, ge=0, le=24 * 30)
    month_check_days: float = Field(default=14, ge=0, le=62)

    def offsets(self) -> Offsets:
        """The offsets these settings describe."""
        return Offsets(
            heads_up=timedelta(days=self.heads_up_days),
            confirm_escalation=timedelta(days=self.confirm_escalation_days),
            topic_request=timedelta(days=self.topic_request_days),
            topic_deadline=timedelta(days=self.topic_deadline_days),
            last_reminder=timedelta(days=self.last_reminder_days),
            morning=self.morning,
            escalation_grace=timedelta(hours=self.escalation_grace_hours),
            month_check=timedelta(days=self.month_check_days),
        )


@lru_cache(maxsize=1)
def load_offsets() -> Offsets:
    """The configured offsets (read once per process); :class:`ConfigError` if invalid."""
    try:
        settings = RotaSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "PUFA_ROTA_" + str(first.get("loc", ("?",))[0]).upper()
        raise ConfigError(f"invalid configuration: {name}: {first.get('msg')}") from None
    offsets = settings.offsets()
    problems = offsets.problems()
    if problems:
        raise ConfigError("invalid PUFA_ROTA_* configuration: " + "; ".join(problems))
    return offsets
