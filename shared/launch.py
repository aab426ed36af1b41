"""Starting a pipeline run: record it, then enqueue its first stage."""

import uuid
from typing import Any

from redis import Redis

from shared.queues import enqueue_prep
from shared.runs import RunStore
from shared.settings import Settings


def launch_run(
    redis: Redis, settings: Settings, data_path: str, meta: dict[str, Any] | None = None
) -> str:
    """Create a run for a raw data file (path relative to the project) and queue its prep."""
    run_id = str(uuid.uuid4())
    RunStore(redis, settings.run_ttl_seconds).create(
        run_id, {"data_path": data_path, **(meta or {})}
    )
    enqueue_prep(redis, settings, run_id, data_path)
    return run_id
