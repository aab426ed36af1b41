"""A worker that outlives Redis going away while one of its jobs runs.

RQ's worker quits on any error raised while it watches a work-horse, and one it cannot reach
Redis with is the usual one: a restart or failover of Redis while a job runs (the monitor's
drain runs every few seconds, so it is often running) ended the worker, and the supervisor's
restart cost seconds of imports. Here the worker waits for its horse to finish its job, then
for Redis to answer again (its loop's first calls, before the dequeue that retries, would
quit on a Redis still loading its data), and goes back to its loop. What the job's records
in Redis say is left to the mechanisms that settle it for a dead worker too: RQ's maintenance
fails or retries a job left started without a horse, and runs are reconciled with their jobs.
"""

import contextlib
import logging
import os
import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)


# Seconds between pings of a Redis that has gone away.
PING_SECONDS = 1.0


def run_despite_redis_loss(
    execute: Callable[[], None], horse_pid: Callable[[], int], ping: Callable[[], object]
) -> bool:
    """Run execute (RQ's execute_job); if Redis was lost meanwhile, wait for the horse
    (horse_pid(), 0 for none) to end and for ping() to succeed, and return False instead of
    raising. True when it ran without losing Redis. Other errors are raised."""
    try:
        execute()
        return True
    except (RedisConnectionError, RedisTimeoutError) as error:
        pid = horse_pid()
        log.warning(
            "Redis was lost while a job ran (%s); waiting for its work-horse %s to end, then "
            "carrying on",
            error,
            pid or "(none)",
        )
        if pid:
            with contextlib.suppress(ChildProcessError):  # already reaped
                os.waitpid(pid, 0)
        while True:
            try:
                ping()
                break
            except (RedisConnectionError, RedisTimeoutError):
                time.sleep(PING_SECONDS)
        log.warning("Redis answers again: back to work")
        return False
