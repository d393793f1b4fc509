"""Prometheus metrics, one registry per application (no process-wide globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


@dataclass
class Metrics:
    """The counters and histograms pufa exposes at ``GET /metrics``."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
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

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
