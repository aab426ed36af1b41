"""Which stages of a run can no longer end by themselves: their job died or vanished. Pure.

A stage records its own start and end, but a work-horse killed on its last attempt (out of
memory, SIGKILL) records nothing: RQ marks the job failed and the run would look started
forever, refusing every later retrain. Comparing each unfinished stage with its job finds it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# RQ job statuses after which the job will never run again.
DEAD_STATUSES = frozenset({"failed", "stopped", "canceled"})
# A job may be written just after the stage's record (a run's candidates are recorded, then
# queued); missing for longer than this, it is lost.
LOST_JOB_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class JobView:
    """What the queue knows of a job: its status (None when no such job exists) and, once it
    failed, the last line of its error."""

    status: str | None
    error: str = ""


@dataclass(frozen=True)
class StageJob:
    """A run's status field, the job that does its work and the job its success queues."""

    field: str
    job_id: str
    successor_job_id: str | None = None


def _since(record: dict[str, Any], run: dict[str, Any]) -> float:
    """When the record last moved: started, else queued, else the run's creation."""
    return float(record.get("started_at") or record.get("enqueued_at") or run["created_at"])


def dead_stages(
    run: dict[str, Any],
    records: dict[str, dict[str, Any]],
    jobs: list[StageJob],
    lookup: Callable[[str], JobView],
    now: float,
) -> dict[str, str]:
    """field -> why it failed, for every stage of an unfinished run whose job died or vanished.

    records maps each field ("stage:prep", "candidate:lgbm_all", ...) to its status record.
    """
    dead: dict[str, str] = {}
    for stage in jobs:
        record = records.get(stage.field, {})
        state = record.get("state", "pending")
        if state in ("failed", "pending"):
            continue  # a pending stage's job does not exist yet: its predecessor is checked
        job = lookup(stage.job_id)
        attempts = record.get("attempts", 0)
        if state == "finished":
            # Killed after its work but before queuing what follows, on its last attempt.
            if (
                job.status in DEAD_STATUSES
                and stage.successor_job_id is not None
                and lookup(stage.successor_job_id).status is None
            ):
                dead[stage.field] = (
                    f"worker died after the stage's work, before queuing the next stage "
                    f"(attempt {attempts}): {job.error}"
                )
            continue
        if job.status in DEAD_STATUSES:
            dead[stage.field] = f"worker died on attempt {attempts} of its job: {job.error}"
        elif job.status is None and now - _since(record, run) > LOST_JOB_GRACE_SECONDS:
            dead[stage.field] = (
                f"its job {stage.job_id} is gone from the queue (never queued or lost)"
            )
    return dead
