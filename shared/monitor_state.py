"""What the monitor shares through Redis: the latest drift report, the guard that lets drift
queue at most one retrain per interval, each feedback request's outcome and the live scores.
The gateway reads them for GET /monitor, GET /feedback/<id> and /metrics; the monitor's jobs
write them."""

import json
from typing import Any

from redis import Redis
from redis.client import Pipeline

from shared.capped_stream import CappedStream, dropped_key

LATEST_DRIFT_KEY = "monitor:drift:latest"
DRIFT_RETRAIN_KEY = "monitor:drift:retrain"
LIVE_SCORES_KEY = "monitor:feedback:scores"
CHALLENGER_TRIAL_KEY = "monitor:feedback:challenger"
FEEDBACK_KEY = "monitor:feedback:{feedback_id}"
FEEDBACK_TTL = 7 * 24 * 3600  # seconds a feedback request's outcome can be looked up


def save_feedback_outcomes(redis: Redis | Pipeline, outcomes: dict[str, dict[str, Any]]) -> None:
    """Each feedback request's outcome (queued when received, joined once drained); given a
    pipeline, written when the caller executes it."""
    for feedback_id, outcome in outcomes.items():
        key = FEEDBACK_KEY.format(feedback_id=feedback_id)
        redis.set(key, json.dumps(outcome), ex=FEEDBACK_TTL)


def forget_feedback_outcome(redis: Redis, feedback_id: str) -> None:
    redis.delete(FEEDBACK_KEY.format(feedback_id=feedback_id))


def feedback_outcome(redis: Redis, feedback_id: str) -> dict[str, Any] | None:
    raw = redis.get(FEEDBACK_KEY.format(feedback_id=feedback_id))
    return dict(json.loads(raw)) if raw else None


def save_live_scores(redis: Redis, scores: dict[str, Any]) -> None:
    redis.set(LIVE_SCORES_KEY, json.dumps(scores))


def live_scores(redis: Redis) -> dict[str, Any] | None:
    """The live scores from realised prices, as last computed; None before any feedback."""
    raw = redis.get(LIVE_SCORES_KEY)
    return dict(json.loads(raw)) if raw else None


def save_challenger_trial(redis: Redis, trial: dict[str, Any] | None) -> None:
    if trial is None:
        redis.delete(CHALLENGER_TRIAL_KEY)
    else:
        redis.set(CHALLENGER_TRIAL_KEY, json.dumps(trial))


def challenger_trial(redis: Redis) -> dict[str, Any] | None:
    """The champion and the challenger scored on the same realised prices, as last computed
    (services.workers.challenger_trial); None while there is no challenger."""
    raw = redis.get(CHALLENGER_TRIAL_KEY)
    return dict(json.loads(raw)) if raw else None


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


def dead_letter_stream(stream: str) -> str:
    """Where a drain sets aside the entries of `stream` it cannot write."""
    return f"{stream}:dead-letter"


def dead_letter_count_key(stream: str) -> str:
    return f"{stream}:dead-letter:count"


def drained_until_key(stream: str) -> str:
    return f"{stream}:drained-until"


def drained_until(redis: Redis, stream: str) -> float | None:
    """The time (seconds since the epoch) before which every entry of the stream is drained,
    as its last drain recorded; None before the first."""
    raw = redis.get(drained_until_key(stream))
    return float(raw) if raw else None


def stream_status(redis: Redis, stream: str, cap: int) -> dict[str, Any]:
    """What waits in a drained stream, its cap, what its writers dropped and its drains set
    aside (since the stream began, whatever restarted since), and how far the drains got: for
    GET /monitor and /metrics."""
    until = drained_until(redis, stream)
    return {
        "waiting": CappedStream(redis, stream, cap).held(),
        "capacity": cap,
        "dropped": int(redis.get(dropped_key(stream)) or 0),
        "dead_lettered": int(redis.get(dead_letter_count_key(stream)) or 0),
        "drained_until": until,
    }
