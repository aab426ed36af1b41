"""Realised prices joined to the predictions they judge, and the live scores they give.

POST /feedback appends one stream entry per request: a feedback id, the time, and its items
({prediction_id, id, price, actual}). Each item names a logged prediction by the answer's
prediction_id, or by the listing's id (its latest prediction made before the price was
reported), and becomes one row here: the prediction it matched (its version, category,
probabilities and the listing's fields, so that a row can become a training row), or
"unknown". The join reads only what can match (shared.prediction_store.read_matching).
"""

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.metrics import accuracy_score, f1_score, recall_score

from shared.prediction_ids import day_of_prediction
from shared.prediction_store import (
    LISTING_COLUMNS,
    PRICE_COLUMNS,
    PROBABILITY_COLUMNS,
    UnreadableEntryError,
    read_matching,
)
from shared.prediction_store import SCHEMA as PREDICTION_SCHEMA
from shared.schema import PRICE_CATEGORIES

UNKNOWN = "unknown"
# Seconds a price waits before it is joined: a client may send it right after the answer,
# before the prediction log's writer (50 ms after the answer) has put the prediction in the
# stream. POST /feedback asks for a drain that much later.
FEEDBACK_SETTLE_SECONDS = 2
# What a matched row keeps of its prediction, under the prediction store's names.
PREDICTION_COLUMNS = [
    "prediction_id",
    "request_id",
    "time",
    "model_version",
    *LISTING_COLUMNS,
    "price_category",
    *PROBABILITY_COLUMNS,
    *PRICE_COLUMNS,
]
ITEM_SCHEMA = pa.schema(
    [
        ("feedback_id", pa.string()),
        ("feedback_time", pa.timestamp("us", tz="UTC")),
        ("entry_id", pa.string()),
        ("given_prediction_id", pa.string()),  # as the client sent them
        ("given_id", pa.string()),
        ("price", pa.float64()),
        ("actual_category", pa.string()),
    ]
)
FEEDBACK_SCHEMA = pa.schema(
    [
        *ITEM_SCHEMA,
        ("problem", pa.string()),  # None when matched, else UNKNOWN
        *((name, PREDICTION_SCHEMA.field(name).type) for name in PREDICTION_COLUMNS),
    ]
)
# What live scores read of the stored feedback (a month of it is read after every batch).
SCORED_COLUMNS = [
    "feedback_time",
    "entry_id",
    "problem",
    "prediction_id",
    "actual_category",
    "price_category",
    "model_version",
    "price",
    *PRICE_COLUMNS,
]
_TIME = "datetime64[ns, UTC]"


def feedback_entry(feedback_id: str, at: float, items: list[dict[str, Any]]) -> dict[str, str]:
    """The stream entry of one POST /feedback."""
    return {"feedback_id": feedback_id, "time": f"{at:.6f}", "items": json.dumps(items)}


def rows_of_feedback(entry_id: str, fields: Mapping[bytes, bytes]) -> list[dict[str, Any]]:
    """One feedback entry's items, not yet joined."""
    try:
        entry = {key.decode(): value.decode() for key, value in fields.items()}
        common = {
            "feedback_id": entry["feedback_id"],
            "feedback_time": datetime.fromtimestamp(float(entry["time"]), UTC),
            "entry_id": entry_id,
        }
        return [
            {
                **common,
                "given_prediction_id": item["prediction_id"],
                "given_id": None if item["id"] is None else str(item["id"]),
                "price": float(item["price"]),
                "actual_category": str(item["actual"]),
            }
            for item in json.loads(entry["items"])
        ]
    except (KeyError, TypeError, AttributeError, ValueError, UnicodeDecodeError) as error:
        raise UnreadableEntryError(f"feedback entry {entry_id}: {error!r}") from None


def _by_listing(items: pd.DataFrame, predictions: Path) -> pd.Series:
    """For the items naming a listing only: the id of the listing's latest prediction made at
    or before the item's price was reported (NaN where there is none)."""
    asked = items[items["given_prediction_id"].isna()]
    if asked.empty:
        return pd.Series(dtype=object)
    until = asked["feedback_time"].max().to_pydatetime()
    keys = read_matching(
        predictions, "id", asked["given_id"], ["id", "time", "prediction_id"], until=until
    ).to_pandas()
    found = pd.merge_asof(
        asked[["given_id", "feedback_time"]].reset_index().sort_values("feedback_time"),
        keys.astype({"time": _TIME}).sort_values("time", kind="stable"),
        left_on="feedback_time",
        right_on="time",
        left_by="given_id",
        right_by="id",
        direction="backward",
    )
    return found.set_index("index")["prediction_id"]


def join(items: list[dict[str, Any]], predictions: Path) -> list[dict[str, Any]]:
    """Each item with the prediction it names (read from the store under `predictions`), or
    UNKNOWN: a prediction id never issued, of another listing than the item's id, or made
    after the price was reported; a listing with no prediction before its price."""
    frame = pd.DataFrame(items, columns=ITEM_SCHEMA.names).astype({"feedback_time": _TIME})
    named = frame["given_prediction_id"].astype(object)
    named.update(_by_listing(frame, predictions))
    wanted = set(named.dropna())
    days = {day for day in map(day_of_prediction, wanted) if day is not None}
    rows = (
        read_matching(predictions, "prediction_id", wanted, PREDICTION_COLUMNS, days)
        .to_pandas()
        .astype({"time": _TIME})
        .drop_duplicates("prediction_id")
    )
    merged = frame.assign(prediction_id=named).merge(rows, on="prediction_id", how="left")
    matched = (
        merged["time"].notna()
        & (merged["time"] <= merged["feedback_time"])
        & (merged["given_id"].isna() | (merged["given_id"] == merged["id"]))
    )
    merged["problem"] = [None if found else UNKNOWN for found in matched]
    joined = merged[FEEDBACK_SCHEMA.names].astype(object)
    joined.loc[~matched, PREDICTION_COLUMNS] = None
    return joined.where(joined.notna(), None).to_dict("records")  # type: ignore[return-value]


def judged_once(feedback: pd.DataFrame) -> pd.DataFrame:
    """The matched rows, each prediction once, judged by the latest price sent for it."""
    matched = feedback[feedback["problem"].isna()]
    # The latest price per prediction: sorted stably by when it came, then by its entry.
    return matched.sort_values(["feedback_time", "entry_id"], kind="stable").drop_duplicates(
        "prediction_id", keep="last"
    )


def live_scores(feedback: pd.DataFrame, since: datetime) -> dict[str, Any]:
    """Scores of the predictions judged by prices received since `since`: each prediction
    once, by the latest price sent for it; items that matched none are counted."""
    recent = feedback[feedback["feedback_time"] >= pd.Timestamp(since)]
    judged = judged_once(recent)
    scores: dict[str, Any] = {
        "since": since.isoformat(timespec="seconds"),
        "received": len(recent),
        "judged": len(judged),
        "unknown": int((recent["problem"] == UNKNOWN).sum()),
    }
    if judged.empty:
        return scores
    actual, predicted = judged["actual_category"], judged["price_category"]
    present = [c for c in PRICE_CATEGORIES if (actual == c).any()]
    recalls = recall_score(actual, predicted, labels=present, average=None, zero_division=0)
    versions = judged.groupby("model_version")
    return (
        scores
        | _price_scores(judged)
        | {
            "accuracy": float(accuracy_score(actual, predicted)),
            # Over the categories that occur, actual or predicted (scikit-learn's default).
            "f1_macro": float(f1_score(actual, predicted, average="macro", zero_division=0)),
            "recall": dict(zip(present, map(float, recalls), strict=True)),
            "by_version": {
                str(version): {
                    "judged": len(rows),
                    "accuracy": float((rows["actual_category"] == rows["price_category"]).mean()),
                }
                for version, rows in versions
            },
        }
    )


def _price_scores(judged: pd.DataFrame) -> dict[str, Any]:
    """How the judged predictions that estimated a price did: the median absolute error of
    ln(price) and the share of prices inside their interval (nothing without estimates)."""
    priced = judged[judged["estimated_price"].notna()]
    if priced.empty:
        return {}
    price = priced["price"].astype(float)
    inside = (price >= priced["price_low"]) & (price <= priced["price_high"])
    error = (np.log(price) - np.log(priced["estimated_price"].astype(float))).abs()
    return {
        "price_estimate": {
            "judged": len(priced),
            "median_abs_log_error": float(error.median()),
            "interval_coverage": float(inside.mean()),
        }
    }
