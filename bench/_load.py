"""A small, bounded HTTP load generator for webhook benchmarks on the loopback interface.

:func:`drive_webhook` POSTs pre-serialised JSON bodies (Telegram updates) to one URL with a fixed
number of concurrent workers over keep-alive connections and reports throughput and latency.
It refuses non-loopback URLs and stops at a request-count and a wall-clock bound, so a benchmark
can never turn into a load test against somebody else's server.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp

__all__ = ["LOOPBACK_HOSTS", "MAX_REQUESTS", "drive_webhook", "percentile", "summarize_ms"]

#: Hosts :func:`drive_webhook` accepts.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Upper bound on the number of requests of one run.
MAX_REQUESTS = 100_000


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of already sorted values, linearly interpolated.

    ``nan`` for an empty sequence.
    """
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction)


def summarize_ms(timings_ms: Iterable[float]) -> dict[str, float]:
    """``min``, ``mean``, ``p50``, ``p90``, ``p99`` and ``max`` of timings in milliseconds."""
    values = sorted(timings_ms)
    if not values:
        return {k: math.nan for k in ("min", "mean", "p50", "p90", "p99", "max")}
    return {
        "min": values[0],
        "mean": sum(values) / len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": values[-1],
    }


def _check_loopback(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"drive_webhook only targets loopback URLs, not {url!r}")


async def drive_webhook(
    url: str,
    updates: Sequence[Mapping[str, Any] | bytes],
    concurrency: int,
    headers: Mapping[str, str] | None = None,
    *,
    max_requests: int = MAX_REQUESTS,
    max_seconds: float = 300.0,
    request_timeout: float = 30.0,
) -> dict[str, Any]:
    """POST every update to ``url`` with ``concurrency`` workers; return figures.

    Args:
        url: The webhook endpoint; must be on ``127.0.0.1``, ``localhost`` or ``::1``.
        updates: Update objects (serialised to JSON up front, outside the timings) or raw
            bodies, sent in order.
        concurrency: Number of requests in flight at a time (one keep-alive connection each).
        headers: Extra request headers, e.g. ``X-Telegram-Bot-Api-Secret-Token``.
        max_requests: Refuse runs with more updates than this.
        max_seconds: Stop issuing requests once this much wall-clock time has passed; the
            result then has ``"stopped_early": True``.
        request_timeout: Per-request timeout in seconds (counted as an error).

    Returns:
        ``requests`` (sent), ``ok`` (2xx answers), ``statuses`` (status or exception name →
        count), ``elapsed_s``, ``rate_per_s`` (completed requests per second), ``latency_ms``
        (:func:`summarize_ms` of the per-request times), ``timings_ms`` (per request, in
        completion order), ``concurrency`` and ``stopped_early``.
    """
    _check_loopback(url)
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if len(updates) > max_requests:
        raise ValueError(f"{len(updates)} updates exceed the bound of {max_requests}")
    bodies = [
        u if isinstance(u, bytes) else json.dumps(u, ensure_ascii=False).encode("utf-8")
        for u in updates
    ]
    request_headers = {"Content-Type": "application/json", **(headers or {})}
    timings_ms: list[float] = []
    statuses: Counter[str] = Counter()
    next_index = 0
    stopped_early = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, stopped_early
        while next_index < len(bodies):
            if loop.time() >= deadline:
                stopped_early = True
                return
            body = bodies[next_index]
            next_index += 1
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=request_headers) as response:
                    await response.read()
                    key = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                key = type(exc).__name__
            timings_ms.append((time.perf_counter() - started) * 1000.0)
            statuses[key] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=request_timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started

    ok = sum(n for status, n in statuses.items() if status.isdigit() and 200 <= int(status) < 300)
    return {
        "requests": len(timings_ms),
        "ok": ok,
        "statuses": dict(statuses),
        "elapsed_s": elapsed,
        "rate_per_s": len(timings_ms) / elapsed if elapsed > 0 else math.nan,
        "latency_ms": summarize_ms(timings_ms),
        "timings_ms": timings_ms,
        "concurrency": concurrency,
        "stopped_early": stopped_early,
    }
