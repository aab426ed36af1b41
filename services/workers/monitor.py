"""The monitor's job: one task of watching the served model, run on the `monitor` queue.

Each scheduled run first schedules the next one (so a failing task still runs again at its
next slot), then does its work. Monitor workers also ask for the next run at every
maintenance pass (services.workers.preloaded), so a schedule lost with Redis comes back.
"""

import logging
import time
from typing import Any

from redis import Redis

from services.workers.context import job_context
from services.workers.drain import drain, prediction_sink
from services.workers.drift_check import run_drift_check
from shared.queues import MONITOR_TASKS, monitor_interval, schedule_monitor
from shared.settings import Settings

log = logging.getLogger(__name__)


def ensure_scheduled(redis: Redis, settings: Settings) -> None:
    """Every monitor task has its next run scheduled."""
    for task in MONITOR_TASKS:
        schedule_monitor(redis, settings, task, time.time())


def perform_monitor(task: str) -> dict[str, Any]:
    """RQ entry: schedule the task's next run, then run it."""
    context = job_context()
    settings = context.settings
    schedule_monitor(context.redis, settings, task, time.time())
    if task == "drain":
        every = monitor_interval(settings, task)
        drained = drain(
            context.redis,
            settings.prediction_log_stream,
            prediction_sink(settings.resolve(settings.monitor_dir)),
            settings.monitor_retention_days,
            lock_seconds=max(every, 60),
            # Leave the next slot its turn: a drain that keeps finding entries stops halfway
            # to its job's timeout and the next one goes on.
            budget_seconds=max(every, 60) / 2,
        )
        if drained.entries or drained.unreadable:
            log.info("drained %s", drained.as_dict())
        return drained.as_dict()
    if task == "drift":
        return run_drift_check(context)
    raise ValueError(f"{task!r} is not a monitor task ({', '.join(MONITOR_TASKS)})")
