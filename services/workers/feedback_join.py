"""Draining POST /feedback's stream: each realised price joined to its logged prediction,
written to Parquet by day, its request's outcome and the live scores left in Redis.

Runs in the monitor's drain, after the prediction log's own drain, and only on prices sent
before the time up to which the log is drained: a price is "unknown" only once its prediction,
if it was ever made, would be in the store. The join reads only the rows that can match.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from redis import Redis

from services.workers.drain import Sink
from shared.feedback import (
    FEEDBACK_SCHEMA,
    ITEM_SCHEMA,
    SCORED_COLUMNS,
    join,
    live_scores,
    rows_of_feedback,
)
from shared.feedback_training import TRAINING_COLUMNS
from shared.monitor_state import save_feedback_outcomes, save_live_scores
from shared.prediction_store import Batch, days_between, read_predictions, write_batch
from shared.realised_prices import RealisedPrices

# The prediction ids and listing ids a request's outcome lists, at most, per kind of problem.
LISTED_PROBLEMS = 100


def feedback_sink(
    redis: Redis,
    folder: Path,
    predictions: Path,
    window_days: float,
    published: RealisedPrices,
    rescored: Callable[[], None] = lambda: None,
) -> Sink:
    """Feedback rows under folder, joined to the predictions stored under predictions; the
    matched ones published for prep on any node; rescored is called once the live scores are.
    A batch whose publishing fails is not
    acknowledged: the next drain joins it again (under the same file names) and publishes."""

    def write(batch: Batch) -> int:
        joined = join(batch.rows, predictions)
        written = write_batch(
            folder, Batch(batch.first_id, joined), FEEDBACK_SCHEMA, "feedback_time"
        )
        # Published before the outcomes say "joined": a retrain launched once they do trains
        # on these prices.
        if any(row["problem"] is None for row in joined):
            stored = read_predictions(folder, schema=FEEDBACK_SCHEMA, columns=TRAINING_COLUMNS)
            published.publish(stored.to_pandas())
        # Scored before the outcomes say "joined": whoever sees them joined sees them counted.
        refresh_live_scores(redis, folder, window_days)
        rescored()  # the challenger's trial, on the same prices
        save_feedback_outcomes(redis, outcomes(joined))
        return len(written)

    return Sink(
        rows_of_feedback, lambda rows: pa.Table.from_pylist(rows, schema=ITEM_SCHEMA), write, folder
    )


def outcomes(joined: list[dict]) -> dict[str, dict]:
    """Per feedback request: how many prices it sent, how many found their prediction, and the
    items that did not (as sent)."""
    found: dict[str, dict] = {}
    for row in joined:
        outcome = found.setdefault(
            row["feedback_id"],
            {"state": "joined", "received": 0, "matched": 0, "unknown": []},
        )
        outcome["received"] += 1
        if row["problem"] is None:
            outcome["matched"] += 1
        elif len(outcome[row["problem"]]) < LISTED_PROBLEMS:
            outcome[row["problem"]].append(
                {"prediction_id": row["given_prediction_id"], "id": row["given_id"]}
            )
    return found


def refresh_live_scores(redis: Redis, folder: Path, window_days: float) -> dict:
    """Score the last window_days of feedback and leave the scores in Redis."""
    now = datetime.now(UTC)
    since = now - timedelta(days=window_days)
    feedback = read_predictions(
        folder, days_between(since, now), FEEDBACK_SCHEMA, columns=SCORED_COLUMNS
    ).to_pandas()
    scores = live_scores(feedback, since) | {"window_days": window_days}
    save_live_scores(redis, scores)
    return scores
