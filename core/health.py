"""The state of each chat channel, as ``GET /healthz`` reports it.

A chat platform that cannot be reached (Telegram is often blocked in mainland China) degrades
its channel only: the service keeps serving the mobile pages, the API and the other channels,
and the channel keeps trying in the background. Each channel owns one :class:`ChannelHealth`
and updates it; the composition root lists them in ``/healthz`` (which stays 200: the service
is up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from core.clock import utcnow

__all__ = ["ChannelHealth", "ChannelState"]

ChannelState = Literal["starting", "up", "unreachable", "rejected", "stopped"]
"""``starting`` (first attempt under way), ``up``, ``unreachable`` (no answer from the
platform; retrying), ``rejected`` (the platform refused the credentials or a setting such as
the webhook URL; retrying), ``stopped`` (shut down)."""


@dataclass
class ChannelHealth:
    """One channel's state, the time it entered it and what went wrong (if anything)."""

    state: ChannelState = "starting"
    detail: str = ""
    since: datetime = field(default_factory=utcnow)

    def update(self, state: ChannelState, detail: str = "", now: datetime | None = None) -> bool:
        """Enter ``state``; return whether the state changed (the time is kept otherwise)."""
        changed = state != self.state
        if changed:
            self.since = now or utcnow()
        self.state = state
        self.detail = detail[:300]
        return changed

    def as_json(self) -> dict[str, str]:
        """``{"state", "since"[, "detail"]}`` for ``/healthz``."""
        body = {"state": self.state, "since": self.since.isoformat()}
        if self.detail:
            body["detail"] = self.detail
        return body
