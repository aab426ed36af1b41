"""Starting a pipeline run: record it and enqueue its first stage, as one transaction."""

import uuid
from typing import Any

from redis import Redis

from shared.pipeline import STAGES
from shared.queues import enqueue_stage
from shared.runs import RunStore
from shared.settings import Settings

# Held while checking for an active run and launching one, by the gateway's POST /retrain and
# the monitor's drift retrain alike: the check and the launch must not interleave.
LAUNCH_LOCK = "retrain:launch"


def launch_run(
    redis: Redis, settings: Settings, data_path: str, meta: dict[str, Any] | None = None
) -> str:
    """Create a run for a raw data file (path relative to the project) and queue its first
    stage.

    Both or neither: a run recorded without its first job would look queued forever."""
    run_id = str(uuid.uuid4())
    with redis.pipeline(transaction=True) as transaction:
        transaction.multi()  # explicit: RQ's enqueue then adds to this transaction as it is
        RunStore(redis, settings.run_ttl_seconds).create(
            run_id,
            {
                "data_path": data_path,
                "feedback_training": settings.feedback_training,
                **(meta or {}),
            },
            transaction,
        )
        enqueue_stage(redis, settings, STAGES[0], run_id, pipeline=transaction)
        transaction.execute()
    return run_id
