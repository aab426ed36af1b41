"""Prometheus metrics of one gateway process: requests, latency, predictions, model, queues,
and the monitor's last drift check."""

import logging
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from shared.monitor_state import latest_drift_report, live_scores
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


class DriftGauges(Collector):
    """The last drift check's numbers, read from Redis when scraped: every gateway process
    reports the same ones, whichever answers the scrape."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            report = latest_drift_report(self.redis)
        except RedisError as error:
            log.warning("drift report unavailable: %s", error)
            return
        if report is None:
            return
        checked = datetime.fromisoformat(report["checked_at"]).timestamp()
        yield GaugeMetricFamily(
            "monitor_drift_checked_timestamp_seconds", "When the last drift check ran", checked
        )
        info = GaugeMetricFamily(
            "monitor_drift_check_info",
            "The last drift check: its outcome and the champion version it checked",
            labels=["status", "champion_version"],
        )
        info.add_metric([report["status"], str(report["champion_version"])], 1.0)
        yield info
        yield GaugeMetricFamily(
            "monitor_drift_window_listings", "Listings in the checked window", report["listings"]
        )
        if report["status"] != "checked":
            return
        yield GaugeMetricFamily(
            "monitor_drift_detected", "1 when a threshold was crossed", float(report["drifted"])
        )
        psi = GaugeMetricFamily(
            "monitor_drift_feature_psi",
            "Population stability index per request field, window against training data",
            labels=["feature"],
        )
        for name, found in report["features"].items():
            if found["psi"] is not None:
                psi.add_metric([name], found["psi"])
        yield psi
        if report["category_mix"]["psi"] is not None:
            yield GaugeMetricFamily(
                "monitor_drift_category_mix_psi",
                "PSI of the predicted categories against the training labels",
                report["category_mix"]["psi"],
            )
        yield GaugeMetricFamily(
            "monitor_drift_unseen_share",
            "Share of listings with a value never seen in training",
            report["unseen_share"],
        )


class LiveScoreGauges(Collector):
    """Scores from realised prices (POST /feedback), as the monitor last computed them."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            scores = live_scores(self.redis)
        except RedisError as error:
            log.warning("live scores unavailable: %s", error)
            return
        if scores is None:
            return
        days = f"in the last {scores['window_days']:g} days"
        window = f"of the predictions judged by prices received {days}"
        for name in ("received", "judged", "unknown", "ambiguous"):
            yield GaugeMetricFamily(
                f"monitor_feedback_{name}", f"Realised prices {name} {days}", scores[name]
            )
        if "accuracy" not in scores:
            return
        yield GaugeMetricFamily("monitor_live_accuracy", f"Accuracy {window}", scores["accuracy"])
        yield GaugeMetricFamily("monitor_live_f1_macro", f"Macro F1 {window}", scores["f1_macro"])
        recall = GaugeMetricFamily(
            "monitor_live_recall", f"Recall per actual category {window}", labels=["category"]
        )
        for category, value in scores["recall"].items():
            recall.add_metric([category], value)
        yield recall


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
        self.registry.register(DriftGauges(redis))
        self.registry.register(LiveScoreGauges(redis))

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        labels = (endpoint, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
