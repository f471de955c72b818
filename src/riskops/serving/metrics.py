"""Prometheus metrics of the scoring service, in a registry of its own (no global state).

Names are part of the contract with the alert rules and dashboards (issue 10): change them
there too. Label values are bounded: model names come from the onboarded specs, fields from the
spec's schema, endpoints and bands from fixed sets.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
)  # fmt: skip
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20))


class ServiceMetrics:
    """Every metric the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry
        self.latency = Histogram(
            "riskops_scoring_request_duration_seconds",
            "Time from request received to response ready, per model, version and endpoint.",
            ["model", "version", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "riskops_scoring_requests_total",
            "Scoring requests by model, endpoint and HTTP status code.",
            ["model", "endpoint", "code"],
            registry=r,
        )
        self.errors = Counter(
            "riskops_scoring_errors_total",
            "Requests that failed inside the service (5xx), by model and endpoint.",
            ["model", "endpoint"],
            registry=r,
        )
        self.validation_failures = Counter(
            "riskops_scoring_validation_failures_total",
            "Request fields refused by the spec's schema, by model and field.",
            ["model", "field"],
            registry=r,
        )
        self.records = Counter(
            "riskops_scoring_records_total",
            "Records scored, by model, version and role (champion or shadow).",
            ["model", "version", "role"],
            registry=r,
        )
        self.scores = Histogram(
            "riskops_scoring_score",
            "Probability of the bad outcome returned, per model and version.",
            ["model", "version"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "riskops_scoring_decisions_total",
            "Decisions by band (approve, refer, decline), per model and version.",
            ["model", "version", "band"],
            registry=r,
        )
        self.unseen = Counter(
            "riskops_scoring_unseen_categories_total",
            "Categorical values the model never saw (scored in the unseen bucket).",
            ["model", "feature"],
            registry=r,
        )
        self.auth_failures = Counter(
            "riskops_scoring_auth_failures_total",
            "Requests refused for their key: 401 (no or unknown key) or 403 (role).",
            ["code"],
            registry=r,
        )
        self.load_seconds = Gauge(
            "riskops_model_load_seconds",
            "Seconds the served version took to load, check and warm.",
            ["model", "version", "role"],
            registry=r,
        )
        self.current_version = Gauge(
            "riskops_model_current_version",
            "Version number served per model and role (champion, challenger).",
            ["model", "role"],
            registry=r,
        )
        self.load_failures = Counter(
            "riskops_model_load_failures_total",
            "New versions the service refused to serve (the previous one kept serving).",
            ["model", "role"],
            registry=r,
        )
        self.ready = Gauge(
            "riskops_model_ready",
            "1 when the model's champion is loaded and warm.",
            ["model"],
            registry=r,
        )
        self.log_depth = Gauge(
            "riskops_decision_log_queue_depth",
            "Decisions waiting to be written to the decision log.",
            registry=r,
        )
        self.log_dropped = Counter(
            "riskops_decision_log_dropped_total",
            "Decisions that could not be logged because the queue was full (alert on any).",
            ["model"],
            registry=r,
        )
        self.shadow_dropped = Counter(
            "riskops_shadow_dropped_total",
            "Requests the challenger did not shadow-score because its queue was full.",
            ["model"],
            registry=r,
        )
        self.shadow_errors = Counter(
            "riskops_shadow_errors_total",
            "Shadow scorings that failed (never visible to clients).",
            ["model"],
            registry=r,
        )

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, cached: the request path skips the labels lookup."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def exposition(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
