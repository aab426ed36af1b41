"""What the monitor shares through Redis: the latest drift report, and the guard that lets
drift queue at most one retrain per interval. The gateway reads the report for GET /monitor
and /metrics; the monitor's jobs write it."""

import json
from typing import Any

from redis import Redis

LATEST_DRIFT_KEY = "monitor:drift:latest"
DRIFT_RETRAIN_KEY = "monitor:drift:retrain"


def save_drift_report(redis: Redis, report: dict[str, Any]) -> None:
    redis.set(LATEST_DRIFT_KEY, json.dumps(report))


def latest_drift_report(redis: Redis) -> dict[str, Any] | None:
    """The last drift check's report, or None before the first."""
    raw = redis.get(LATEST_DRIFT_KEY)
    return dict(json.loads(raw)) if raw else None


def claim_drift_retrain(redis: Redis, run_hint: str, every_seconds: int) -> bool:
    """True for the first caller in every_seconds (any process, any host), False for the rest."""
    return bool(redis.set(DRIFT_RETRAIN_KEY, run_hint, nx=True, ex=every_seconds))


def release_drift_retrain(redis: Redis) -> None:
    """Give the claim back: the retrain it was for was not queued after all."""
    redis.delete(DRIFT_RETRAIN_KEY)


def last_drift_retrain(redis: Redis) -> str | None:
    raw = redis.get(DRIFT_RETRAIN_KEY)
    return raw.decode() if isinstance(raw, bytes) else raw
