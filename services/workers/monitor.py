"""The monitor's job: one task of watching the served model, run on the `monitor` queue.

Each scheduled run first schedules the next one (so a failing task still runs again at its
next slot), then does its work. Monitor workers also ask for the next run at every
maintenance pass (services.workers.preloaded), so a schedule lost with Redis comes back.
"""

import logging
import time
from pathlib import Path
from typing import Any

from redis import Redis

from services.workers.challenger_trial import refresh_challenger_trial
from services.workers.context import StageContext, job_context
from services.workers.drain import drain, prediction_sink
from services.workers.drift_check import run_drift_check
from services.workers.feedback_join import feedback_sink, refresh_live_scores
from shared.capped_stream import written_until
from shared.feedback import FEEDBACK_SETTLE_SECONDS
from shared.monitor_state import drained_until
from shared.queues import MONITOR_TASKS, monitor_interval, schedule_monitor
from shared.realised_prices import RealisedPrices
from shared.settings import Settings

log = logging.getLogger(__name__)
# A drain holds its stream's lock this long past each batch (100,000 listings at most: a few
# seconds): a drainer killed mid-batch (SIGKILL, OOM) keeps the next drains out only this long.
DRAIN_LOCK_SECONDS = 20
# A gateway process not heard from this long is taken for gone (it says how far it has written
# the log every second while it lives; one that exits is forgotten at once by its master).
WRITER_SILENT_SECONDS = 15


def ensure_scheduled(redis: Redis, settings: Settings) -> None:
    """Every monitor task has its next run scheduled."""
    for task in MONITOR_TASKS:
        schedule_monitor(redis, settings, task, time.time())


def feedback_dir(settings: Settings) -> Path:
    return settings.resolve(settings.feedback_dir)


def refresh_trial(context: StageContext) -> None:
    """The challenger's live trial, refreshed; MLflow away only leaves the last one standing."""
    try:
        refresh_challenger_trial(
            context.redis,
            context.registry,
            feedback_dir(context.settings),
            context.monitor_params.feedback.window_days,
        )
    except Exception as error:  # noqa: BLE001 - the drain's work is done; the trial waits
        log.warning("challenger trial not refreshed: %s: %s", type(error).__name__, error)


def drain_streams(context: StageContext, timeout: int) -> dict[str, Any]:
    """The prediction log into Parquet, then the realised prices joined to it (a price sent a
    moment after its prediction finds it). Within the job's timeout, each stream's drain may
    wait a quarter of it for a drain already running, and work a quarter: one that keeps
    finding entries stops there, and the next drain goes on."""
    settings, redis = context.settings, context.redis
    predictions = settings.resolve(settings.monitor_dir)
    sinks = {
        settings.prediction_log_stream: prediction_sink(predictions),
        settings.feedback_stream: feedback_sink(
            redis,
            feedback_dir(settings),
            predictions,
            context.monitor_params.feedback.window_days,
            RealisedPrices(context.tracker, context.ledger),
            lambda: refresh_trial(context),
        ),
    }
    report: dict[str, dict[str, Any]] = {}
    log_stream = settings.prediction_log_stream
    # Read before the log's drain: every answer made before this is in the stream by now, so
    # it is drained once that drain has gone past its start.
    written = written_until(redis, log_stream, time.time(), WRITER_SILENT_SECONDS)
    for stream, sink in sinks.items():
        until = None
        if stream == settings.feedback_stream:
            # A price is joined once every prediction made before it is drained (a moment
            # more for clocks of other hosts); "unknown" before that would be a guess. Known
            # only when this job drained the log itself (after reading the writers' marks).
            if (
                report[log_stream]["busy"]
                or (log_drained := drained_until(redis, log_stream)) is None
            ):
                report[stream] = {"waiting_for": log_stream}
                continue
            until = min(log_drained, written or log_drained) - FEEDBACK_SETTLE_SECONDS
        # Wait for a drain that is running (it may have started before the newest entries).
        drained = drain(
            redis,
            stream,
            sink,
            settings.monitor_retention_days,
            lock_seconds=DRAIN_LOCK_SECONDS,
            budget_seconds=timeout / 4,
            wait_seconds=timeout / 4,
            until=until,
        )
        if drained.entries or drained.dead_lettered:
            log.info("drained %s: %s", stream, drained.as_dict())
        report[stream] = drained.as_dict()
    return report


def perform_monitor(task: str) -> dict[str, Any]:
    """RQ entry: schedule the task's next run, then run it."""
    context = job_context()
    settings = context.settings
    schedule_monitor(context.redis, settings, task, time.time())
    if task == "drain":
        return drain_streams(context, max(monitor_interval(settings, task), 60))
    if task == "drift":
        drain_streams(context, 60)  # the window ends now, not at the last scheduled drain
        refresh_live_scores(
            context.redis, feedback_dir(settings), context.monitor_params.feedback.window_days
        )  # the window moves on even when no price comes
        refresh_trial(context)
        return run_drift_check(context)
    raise ValueError(f"{task!r} is not a monitor task ({', '.join(MONITOR_TASKS)})")
