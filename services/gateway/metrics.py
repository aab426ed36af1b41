"""The gateway's Prometheus metrics: requests, latency, predictions, the served version, the
prediction log's drops; and, read from Redis when scraped, the pipeline (queues, workers,
runs, stage times), the last drift check and the live scores.

Under gunicorn every worker writes its own values to files (prometheus-client's multiprocess
mode, set up by services.gateway.gunicorn_conf) and a scrape, whichever worker answers it,
adds them up: /metrics reports the whole gateway. Without it (tests through Flask's client,
a single process) the values live in the process.
"""

import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from services.gateway.shadow import LATENCY_BOUNDS_MS, latency_field, tally_fields
from shared.monitor_state import (
    challenger_trial,
    latest_drift_report,
    live_scores,
    stream_status,
)
from shared.queues import WORKER_QUEUES, queue
from shared.runs import RunStore

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"  # set by gunicorn_conf before the first import
RECENT_RUNS = 100  # the runs pipeline_runs counts, newest first
# Prediction latency is sub-millisecond to tens of milliseconds; batches take longer.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class MonitorGauges(Collector):
    """Gauges from a document the monitor leaves in Redis, read when scraped: every gateway
    process reports the same ones, whichever answers the scrape. Nothing while Redis is away
    or before the monitor wrote the document."""

    what = "the monitor's document"

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def read(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def families(self, document: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
        raise NotImplementedError

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            document = self.read()
        except RedisError as error:
            log.warning("%s unavailable: %s", self.what, error)
            return
        if document is not None:
            yield from self.families(document)


class DriftGauges(MonitorGauges):
    """The last drift check's numbers."""

    what = "drift report"

    def read(self) -> dict[str, Any] | None:
        return latest_drift_report(self.redis)

    def families(self, report: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
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


class LiveScoreGauges(MonitorGauges):
    """Scores from realised prices (POST /feedback), as the monitor last computed them."""

    what = "live scores"

    def read(self) -> dict[str, Any] | None:
        return live_scores(self.redis)

    def families(self, scores: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
        days = f"in the last {scores['window_days']:g} days"
        window = f"of the predictions judged by prices received {days}"
        for name in ("received", "judged", "unknown"):
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
        if "price_estimate" not in scores:
            return
        estimates = scores["price_estimate"]
        priced = f"of the estimated prices judged by prices received {days}"
        yield GaugeMetricFamily(
            "monitor_live_price_median_abs_log_error",
            f"Median absolute error of ln(price) {priced}",
            estimates["median_abs_log_error"],
        )
        yield GaugeMetricFamily(
            "monitor_live_price_interval_coverage",
            f"Share of realised prices inside their interval, {priced}",
            estimates["interval_coverage"],
        )


class ChallengerGauges(Collector):
    """The challenger's shadow tallies (services.gateway.shadow), read from Redis when scraped:
    every process counts into the same hash, so any process reports all of them; and the
    monitor's scores of champion and challenger on the same realised prices."""

    def __init__(self, redis: Redis, prefix: str, version: Callable[[], str | None]) -> None:
        self.redis, self.prefix, self.version = redis, prefix, version

    def collect(self) -> Iterator[Metric]:
        version = self.version()
        if version is None:
            return
        try:
            tally = tally_fields(self.redis, self.prefix, version)
            trial = challenger_trial(self.redis)
        except RedisError as error:
            log.warning("challenger metrics unavailable: %s", error)
            return
        yield from challenger_families(version, tally)
        if trial is not None and trial.get("version") == version:
            yield from trial_families(trial)


def challenger_families(version: str, tally: dict[str, str]) -> Iterator[Metric]:
    """The shadow tallies as counters and the challenger's latency as a histogram."""
    count = {name: int(value) for name, value in tally.items() if name != "since"}
    for name, what in (
        ("requests", "Prediction requests the challenger also scored"),
        ("listings", "Listings the challenger also scored"),
        ("agreed", "Listings the challenger put in the champion's category"),
    ):
        family = CounterMetricFamily(f"gateway_challenger_{name}", what, labels=["version"])
        family.add_metric([version], count.get(name, 0))
        yield family
    disagreed = CounterMetricFamily(
        "gateway_challenger_disagreed",
        "Listings the challenger put elsewhere, by the champion's category and its own",
        labels=["version", "champion_category", "challenger_category"],
    )
    for name, value in count.items():
        if name.startswith("disagreed:"):
            _, theirs, mine = name.split(":")
            disagreed.add_metric([version, theirs, mine], value)
    yield disagreed
    buckets, cumulative = [], 0
    for bound in [*LATENCY_BOUNDS_MS, float("inf")]:
        cumulative += count.get(latency_field(bound), 0)
        buckets.append(("+Inf" if bound == float("inf") else f"{bound / 1000:g}", cumulative))
    latency = HistogramMetricFamily(
        "gateway_challenger_pass_seconds",
        "Seconds a pass of the challenger over the waiting listings took (features and model, "
        "one thread)",
        labels=["version"],
    )
    latency.add_metric([version], buckets, count.get("us", 0) / 1_000_000)
    yield latency


def trial_families(trial: dict[str, Any]) -> Iterator[Metric]:
    """Champion and challenger scored by the monitor on the same realised prices."""
    yield GaugeMetricFamily(
        "monitor_challenger_judged",
        "Listings judged by realised prices that champion and challenger were both scored on",
        trial["judged"],
    )
    scores = GaugeMetricFamily(
        "monitor_challenger_live_score",
        "Each model's score on the same realised prices (accuracy; every metric the gate "
        "reads once each category has a price)",
        labels=["model", "version", "metric"],
    )
    for model, version in (("champion", "champion_version"), ("challenger", "version")):
        for metric, value in trial.get(model, {}).items():
            scores.add_metric([model, str(trial[version]), metric], value)
    yield scores


class StreamGauges(Collector):
    """The drained streams (the prediction log, realised prices): what waits in each against
    its cap, and the entries their drains set aside as unwritable."""

    def __init__(self, redis: Redis, caps: dict[str, int]) -> None:
        self.redis, self.caps = redis, caps  # stream name -> cap, in items

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        waiting = GaugeMetricFamily(
            "monitor_stream_waiting_items",
            "Items (listings, prices) in the stream, not yet drained",
            labels=["stream"],
        )
        capacity = GaugeMetricFamily(
            "monitor_stream_capacity_items",
            "Items the stream holds at most; beyond, new ones are dropped (counted)",
            labels=["stream"],
        )
        dropped = CounterMetricFamily(
            "monitor_stream_dropped_items",
            "Items the stream's writers dropped (full), counted in Redis: survives restarts",
            labels=["stream"],
        )
        dead = CounterMetricFamily(
            "monitor_dead_letters",
            "Stream entries a drain could not write, set aside in <stream>:dead-letter",
            labels=["stream"],
        )
        try:
            for stream, cap in self.caps.items():
                status = stream_status(self.redis, stream, cap)
                waiting.add_metric([stream], status["waiting"])
                capacity.add_metric([stream], cap)
                dropped.add_metric([stream], status["dropped"])
                dead.add_metric([stream], status["dead_lettered"])
        except RedisError as error:
            log.warning("stream metrics unavailable: %s", error)
            return
        yield from (waiting, capacity, dropped, dead)


class PipelineGauges(Collector):
    """The pipeline as Redis holds it, read when scraped: jobs per queue and state, workers
    per queue, recent runs per state, the stage times of the last finished run, and how long
    the served champion has been champion."""

    def __init__(self, redis: Redis, promoted_at: Callable[[], str | None]) -> None:
        self.redis = redis
        self.promoted_at = promoted_at  # the served champion's promotion time (ISO), if any

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            families = [*self._queues(), *self._runs()]
        except RedisError as error:
            log.warning("pipeline metrics unavailable: %s", error)
            families = []
        yield from families
        if (promoted := self.promoted_at()) is not None:
            yield GaugeMetricFamily(
                "pipeline_seconds_since_promotion",
                "Seconds since the served champion was promoted",
                time.time() - datetime.fromisoformat(promoted).timestamp(),
            )

    def _queues(self) -> list[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("rq_jobs", "Jobs per queue and state", labels=["queue", "state"])
        workers = GaugeMetricFamily("rq_workers", "Workers listening per queue", labels=["queue"])
        for name in WORKER_QUEUES:
            rq_queue = queue(self.redis, name)
            jobs.add_metric([name, "queued"], rq_queue.count)
            registries = {
                "started": rq_queue.started_job_registry,
                "scheduled": rq_queue.scheduled_job_registry,
                "deferred": rq_queue.deferred_job_registry,
                "finished": rq_queue.finished_job_registry,
                "failed": rq_queue.failed_job_registry,
            }
            for state, registry in registries.items():  # read only: workers clean them
                jobs.add_metric([name, state], registry.get_job_count(cleanup=False))
            workers.add_metric([name], Worker.count(connection=self.redis, queue=rq_queue))
        return [jobs, workers]

    def _runs(self) -> list[GaugeMetricFamily]:
        recent = RunStore(self.redis, 0).recent(RECENT_RUNS)
        states = GaugeMetricFamily(
            "pipeline_runs", f"Runs per state, of the last {RECENT_RUNS}", labels=["state"]
        )
        for state in ("queued", "running", "finished", "failed"):
            states.add_metric([state], sum(run["state"] == state for run in recent))
        stages = GaugeMetricFamily(
            "pipeline_stage_seconds",
            "Seconds each stage took in the last finished run",
            labels=["stage"],
        )
        finished = next((run for run in recent if run["state"] == "finished"), None)
        for name, stage in (finished or {}).get("stages", {}).items():
            if stage.get("started_at") and stage.get("ended_at"):
                stages.add_metric([name], stage["ended_at"] - stage["started_at"])
        return [states, stages]


class Metrics:
    """The gateway's metrics, in a registry of its own (one per app, so tests stay apart)."""

    def __init__(
        self,
        redis: Redis,
        promoted_at: Callable[[], str | None] = lambda: None,
        stream_caps: dict[str, int] | None = None,
        challenger_tallies: tuple[str, Callable[[], str | None]] | None = None,
    ) -> None:
        """challenger_tallies: the tallies' Redis prefix, and the challenger served, if any."""
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
            "Answered listings the prediction log could not keep (its buffer or stream full, "
            "or Redis refusing them)",
            registry=self.registry,
        )
        self.model_version = Gauge(
            "gateway_model_version",
            "Champion version served (across processes: the oldest any live one serves)",
            multiprocess_mode="livemin",
            registry=self.registry,
        )
        self.challenger_version = Gauge(
            "gateway_challenger_version",
            "Challenger version tried beside the champion (across processes: the oldest any "
            "live one holds; 0 while any holds none)",
            multiprocess_mode="livemin",
            registry=self.registry,
        )
        self.compiled_trees = Gauge(
            "gateway_compiled_trees",
            "1 once the champion's compiled trees predict (across processes: 0 while any live "
            "one still predicts with LightGBM's)",
            multiprocess_mode="livemin",
            registry=self.registry,
        )
        # Read from Redis at each scrape: the same for every process, so collected once.
        self.collectors: list[Collector] = [
            PipelineGauges(redis, promoted_at),
            DriftGauges(redis),
            LiveScoreGauges(redis),
            StreamGauges(redis, stream_caps or {}),
        ]
        if challenger_tallies is not None:
            self.collectors.append(ChallengerGauges(redis, *challenger_tallies))
        for collector in self.collectors:
            self.registry.register(collector)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        labels = (endpoint, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        """Every process's values (or this process's, outside gunicorn) and the collectors'."""
        if MULTIPROCESS_FOLDER not in os.environ:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        for collector in self.collectors:
            registry.register(collector)
        return generate_latest(registry)
