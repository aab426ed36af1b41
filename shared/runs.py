"""Pipeline run status in Redis: one hash per run, one field per stage or candidate.

Each field is written by one job at a time (a stage writes only its own field), so parallel
training jobs never overwrite each other; the run's overall state is derived, never stored.
"""

import json
import time
from typing import Any

from redis import Redis
from redis.client import Pipeline

from shared.pipeline import STAGES

RUN_INDEX = "runs"
# A stage that has begun: running, waiting to retry after a transient fault, or done.
ACTIVE_STATES = ("started", "retrying", "finished")


def _run_key(run_id: str) -> str:
    return f"run:{run_id}"


def as_text(value: Any) -> str:
    """Redis answers bytes unless the connection decodes; accept both."""
    return value.decode() if isinstance(value, bytes) else str(value)


def now() -> float:
    """Wall-clock seconds since the epoch: what run status records as times."""
    return time.time()


class RunStore:
    """Reads and writes the status of pipeline runs."""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds

    def create(self, run_id: str, meta: dict[str, Any], pipeline: Pipeline | None = None) -> None:
        """Record a new run: its first stage queued, the others pending (per-candidate stages
        get their fields once the candidates are listed).

        Given a (transaction) pipeline, the writes join it: the caller makes them atomic with
        enqueueing the run's first job."""
        created = now()
        fields: dict[str, dict[str, Any]] = {
            "meta": {**meta, "run_id": run_id, "created_at": created}
        }
        for stage in STAGES:
            if not stage.per_candidate:
                fields[stage.status_field()] = {"state": "pending"}
        fields[STAGES[0].status_field()] = {"state": "queued", "enqueued_at": created}
        pipe = pipeline if pipeline is not None else self.redis.pipeline()
        for name, record in fields.items():
            pipe.hset(_run_key(run_id), name, json.dumps(record))
        pipe.expire(_run_key(run_id), self.ttl_seconds)
        pipe.zadd(RUN_INDEX, {run_id: created})
        if pipeline is None:
            pipe.execute()

    def update(self, run_id: str, field: str, **changes: Any) -> dict[str, Any]:
        """Merge changes into one stage's (or candidate's) record and return it."""
        key = _run_key(run_id)
        current = self.redis.hget(key, field)
        record = json.loads(current) if current else {}
        record.update(changes)
        self.redis.hset(key, field, json.dumps(record))
        return record

    def field(self, run_id: str, field: str) -> dict[str, Any]:
        """One stage's record, empty when it has none."""
        value = self.redis.hget(_run_key(run_id), field)
        return json.loads(value) if value else {}

    def get(self, run_id: str) -> dict[str, Any] | None:
        """The whole run: meta, stages, candidates and the derived overall state."""
        raw = self.redis.hgetall(_run_key(run_id))
        if not raw:
            return None
        fields = {as_text(k): json.loads(v) for k, v in raw.items()}
        run = dict(fields.pop("meta", {}))
        candidates = {
            k.removeprefix("candidate:"): v for k, v in fields.items() if k.startswith("candidate:")
        }
        recorded = {
            k.removeprefix("stage:"): v for k, v in fields.items() if k.startswith("stage:")
        }
        run["stages"] = run_stages(recorded, candidates)
        run["candidates"] = candidates
        run["state"] = overall_state(run["stages"])
        return run

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs first; runs whose status has expired are skipped."""
        run_ids = self.redis.zrevrange(RUN_INDEX, 0, limit - 1)
        runs = (self.get(as_text(run_id)) for run_id in run_ids)
        return [run for run in runs if run is not None]

    def active(self) -> dict[str, Any] | None:
        """The newest run still queued or in progress, if any."""
        for run in self.recent(limit=50):
            if run["state"] in ("queued", "running"):
                return run
        return None


def run_stages(
    recorded: dict[str, dict[str, Any]], candidates: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Every stage's record in pipeline order, a per-candidate stage summarised from its
    candidates.

    A run recorded before a stage existed has no field for it (new runs get one for every
    stage when created): it is shown without that stage, rather than waiting forever for it.
    """
    return {
        stage.name: (
            summarize_candidates(candidates) if stage.per_candidate else recorded[stage.name]
        )
        for stage in STAGES
        if stage.per_candidate or stage.name in recorded
    }


def summarize_candidates(candidates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A per-candidate stage's state from its candidates' states."""
    states = [c.get("state", "pending") for c in candidates.values()]
    if not states:
        return {"state": "pending"}
    errors = {n: c["error"] for n, c in candidates.items() if c.get("state") == "failed"}
    if errors:
        return {"state": "failed", "error": "; ".join(f"{n}: {e}" for n, e in errors.items())}
    if all(s == "finished" for s in states):
        # From the first candidate's start to the last one's end, when they were recorded.
        starts = [c["started_at"] for c in candidates.values() if c.get("started_at")]
        ends = [c["ended_at"] for c in candidates.values() if c.get("ended_at")]
        times = {"started_at": min(starts), "ended_at": max(ends)} if starts and ends else {}
        return {"state": "finished", **times}
    if any(s in ACTIVE_STATES for s in states):
        return {"state": "started"}
    return {"state": "queued" if any(s == "queued" for s in states) else "pending"}


def overall_state(stages: dict[str, dict[str, Any]]) -> str:
    """failed if any stage failed; finished once every stage is (the last ones may run side
    by side); running once anything started."""
    states = [stage.get("state", "pending") for stage in stages.values()]
    if "failed" in states:
        return "failed"
    if all(state == "finished" for state in states):
        return "finished"
    if any(s in ACTIVE_STATES for s in states):
        return "running"
    return "queued"
