"""Prometheus metrics of one gateway process: requests, latency, predictions, model, queues."""

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from shared.queues import WORKER_QUEUES

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Prediction latency is sub-millisecond to tens of milliseconds; batches take longer.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class QueueDepths(Collector):
    """Reads queue lengths from Redis when scraped, so the numbers are never stale."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("rq_queue_depth", "Jobs waiting per queue", labels=["queue"])
        for name in WORKER_QUEUES:
            try:
                family.add_metric([name], float(self.redis.llen(f"rq:queue:{name}")))
            except RedisError as error:
                log.warning("queue depth unavailable: %s", error)
                break
        yield family


class Metrics:
    """The gateway's metrics, in a registry of its own (one per app, so tests stay apart)."""

    def __init__(self, redis: Redis) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gateway_requests_total",
            "HTTP requests",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_seconds",
            "HTTP request latency",
            ["endpoint", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "gateway_predictions_total",
            "Listings predicted, per category",
            ["category"],
            registry=self.registry,
        )
        self.prediction_log_dropped = Counter(
            "gateway_prediction_log_dropped_total",
            "Answered listings the prediction log could not keep (Redis away or slow)",
            registry=self.registry,
        )
        self.model_version = Gauge(
            "gateway_model_version", "Champion version being served", registry=self.registry
        )
        self.registry.register(QueueDepths(redis))

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        labels = (endpoint, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
