"""Prometheus metrics, one registry per application (no process-wide globals)."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


@dataclass
class Metrics:
    """The counters and histograms pufa exposes at ``GET /metrics``."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._latency: dict[str, Any] = {}
        self.http_requests = Counter(
            "pufa_http_requests_total",
            "HTTP requests served, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "pufa_http_request_duration_seconds",
            "HTTP request latency, by route",
            ["route"],
            registry=self.registry,
        )
        self.chat_updates = Counter(
            "pufa_chat_updates_total",
            "Inbound chat events, by channel and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.survey_responses = Counter(
            "pufa_survey_responses_total",
            "Survey responses stored, by survey and channel",
            ["survey", "channel"],
            registry=self.registry,
        )
        self.outbox_sent = Counter(
            "pufa_outbox_messages_total",
            "Outbound messages, by channel and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )
        """Attempts of this process's outbox worker: ``sent``, ``retried`` (a transient failure,
        tried again later) or ``failed`` (given up: a permanent error or the last attempt)."""
        self.outbox_queue = Gauge(
            "pufa_outbox_queue_messages",
            "Outbox messages in the database waiting (pending), being sent (sending) or "
            "given up (failed), by channel",
            ["channel", "status"],
            registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "pufa_outbox_oldest_pending_age_seconds",
            "How long the longest-waiting due outbox message has waited (0 when none)",
            registry=self.registry,
        )
        # The garbage collector's work (python_gc_*: collections and objects collected by
        # generation), and what start-up froze out of its sight (core.heap.settle_heap).
        GCCollector(registry=self.registry)
        self.gc_frozen = Gauge(
            "pufa_gc_frozen_objects",
            "Objects moved out of the garbage collector's sight after start-up",
            registry=self.registry,
        )
        self.gc_frozen.set_function(gc.get_freeze_count)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one served HTTP request and its latency.

        The labelled children are kept in a dict: ``labels()`` builds and locks on every
        call, which on the busiest routes was a measurable share of a request's CPU.
        """
        key = (method, route, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.http_requests.labels(method, route, str(status))
        child.inc()
        timer = self._latency.get(route)
        if timer is None:
            timer = self._latency[route] = self.http_latency.labels(route)
        timer.observe(seconds)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
