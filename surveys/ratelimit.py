"""Limits on open-link submissions (answers that come without an invitation token).

Residents at a village meeting on one Wi-Fi, behind carrier-grade NAT or behind the district's
reverse proxy share one address, so the address alone cannot tell people apart. Limits are
therefore kept per respondent first (the browser's ``pufa_rid`` cookie, issued when the form
is opened) and only then per client address, with a loose ceiling sized for a crowd
(``PUFA_OPEN_LINK_PER_ADDRESS_PER_MINUTE``, default 600): a hall full of phones gets through,
a script posting thousands of answers from one address does not. Each limit is a leaky bucket
(:class:`aiolimiter.AsyncLimiter`) per key: up to the per-minute count at once, then that many
a minute.
"""

from __future__ import annotations

from collections import OrderedDict

from aiolimiter import AsyncLimiter

__all__ = ["KeyedLimiter", "OpenLinkLimits"]


class KeyedLimiter:
    """One leaky bucket per key, at most ``per_minute`` acquisitions a minute (and in a burst).

    At most ``max_keys`` buckets are kept; beyond that the least recently used empty bucket
    (or, if none is empty, the least recently used one) is forgotten.
    """

    def __init__(self, per_minute: float, max_keys: int = 50_000) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, AsyncLimiter] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, key: str) -> float:
        """Count one for ``key``: ``0.0`` when allowed, else about how many seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = AsyncLimiter(self.per_minute, 60)
            self._buckets[key] = bucket
            self._evict()
        else:
            self._buckets.move_to_end(key)
        if not bucket.has_capacity():
            return 60.0 / self.per_minute
        await bucket.acquire()  # there is capacity: returns without waiting
        return 0.0

    def _evict(self) -> None:
        if len(self._buckets) <= self.max_keys:
            return
        for key, bucket in self._buckets.items():
            if bucket.has_capacity(bucket.max_rate):  # empty: forgetting it changes nothing
                del self._buckets[key]
                return
        self._buckets.popitem(last=False)


class OpenLinkLimits:
    """The limits an open-link submission passes: per respondent, then per client address."""

    def __init__(self, per_respondent_per_minute: float, per_address_per_minute: float) -> None:
        self.respondents = KeyedLimiter(per_respondent_per_minute)
        self.addresses = KeyedLimiter(per_address_per_minute)

    async def check(self, respondent: str | None, address: str) -> float:
        """``0.0`` when a submission by ``respondent`` (``None``: a browser without a cookie
        yet) from ``address`` may go ahead, else the seconds to wait. A respondent over its own
        limit is refused before it uses any of its address's shared allowance."""
        if respondent is not None:
            wait = await self.respondents.take(respondent)
            if wait:
                return wait
        return await self.addresses.take(address)
