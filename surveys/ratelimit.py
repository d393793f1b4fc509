"""Limits on open-link submissions (answers that come without an invitation token)."""

from __future__ import annotations

import time

__all__ = ["RateLimiter"]


class RateLimiter:
    """A token bucket per client: ``burst`` submissions at once, refilled at ``per_minute``."""

    def __init__(self, per_minute: float = 20.0, burst: int = 10, max_clients: int = 50_000):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str, now: float | None = None) -> float:
        """``0.0`` when allowed (and counted), else the seconds to wait."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                self._buckets.clear()
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate
