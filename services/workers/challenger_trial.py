"""The challenger's live trial: champion and challenger scored on the same realised prices.

Every listing judged by a price received in the feedback window is scored again, as it was
sent, by the champion and by the challenger, with the gate's own scoring
(shared.modeling.score_predictions): accuracy always, and every metric the gate reads once
each category has a realised price. POST /model/challenger/promote decides on these numbers
with the gate's conditions. Both are scored afresh (not the answers logged at the time), so
the two are compared on the same listings by the versions that hold the aliases now.

The monitor refreshes it after each batch of joined prices and with each drift check; it
loads the two models only when the versions or the judged prices changed since the last time.
"""

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from redis import Redis

from shared.feedback import FEEDBACK_SCHEMA, judged_once
from shared.modeling import probabilities, score_predictions
from shared.monitor_state import challenger_trial, save_challenger_trial
from shared.prediction_store import LISTING_COLUMNS, days_between, read_predictions
from shared.registry import Registry
from shared.schema import PRICE_CATEGORIES

log = logging.getLogger(__name__)

READ_COLUMNS = ["feedback_time", "entry_id", "problem", "prediction_id", "actual_category"]


def _judged(folder: Path, window_days: float) -> tuple[pd.DataFrame, str]:
    now = datetime.now(UTC)
    since = now - timedelta(days=window_days)
    feedback = read_predictions(
        folder,
        days_between(since, now),
        FEEDBACK_SCHEMA,
        columns=[*READ_COLUMNS, *(c for c in LISTING_COLUMNS if c not in READ_COLUMNS)],
    ).to_pandas()
    recent = feedback[feedback["feedback_time"] >= pd.Timestamp(since)]
    return judged_once(recent), since.isoformat(timespec="seconds")


def _scores(model: Any, x: pd.DataFrame, actual: pd.Series) -> dict[str, float]:
    proba = probabilities(model, x)
    if set(PRICE_CATEGORIES) <= set(actual):
        return score_predictions(actual, proba)
    return {"accuracy": float((proba.idxmax(axis=1) == actual).mean())}


def refresh_challenger_trial(
    redis: Redis, registry: Registry, folder: Path, window_days: float
) -> dict[str, Any] | None:
    """Score the champion and the challenger on the window's judged prices and leave the trial
    in Redis (removed when there is no challenger). None when there is nothing to compare."""
    champion, challenger = registry.champion(), registry.challenger()
    if champion is None or challenger is None:
        save_challenger_trial(redis, None)
        return None
    judged, since = _judged(folder, window_days)
    versions = {"champion_version": str(champion.version), "version": str(challenger.version)}
    basis = {**versions, "judged": len(judged), "last_entry": _last_entry(judged)}
    previous = challenger_trial(redis)
    if previous is not None and previous.get("basis") == basis:
        return previous  # nothing new: the models are not loaded again
    trial: dict[str, Any] = {
        **versions,
        "basis": basis,
        "since": since,
        "window_days": window_days,
        "judged": len(judged),
        "categories_judged": sorted(set(judged["actual_category"])),
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if not judged.empty:
        x, actual = judged[list(LISTING_COLUMNS)], judged["actual_category"]
        trial["champion"] = _scores(registry.load_version(versions["champion_version"]), x, actual)
        trial["challenger"] = _scores(registry.load_version(versions["version"]), x, actual)
    save_challenger_trial(redis, trial)
    log.info("challenger trial: %s", {k: trial.get(k) for k in ("judged", "version")})
    return trial


def _last_entry(judged: pd.DataFrame) -> str | None:
    return None if judged.empty else str(judged["entry_id"].max())
