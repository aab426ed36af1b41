"""Realised prices joined to the predictions they judge, and the live scores they give. Pure.

POST /feedback appends one stream entry per request: a feedback id, the time, and its items
({id, request_id, price, actual}). Each item names a logged prediction by the request's id, the
listing's id (its latest prediction) or both, and becomes one row here: the prediction it
matched (its version, category, probabilities and the listing's fields, so that a row can
become a training row), or why none did ("unknown", or "ambiguous": a request id alone for a
request of several listings).
"""

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
from sklearn.metrics import accuracy_score, f1_score, recall_score

from shared.prediction_store import LISTING_COLUMNS, PROBABILITY_COLUMNS, UnreadableEntryError
from shared.prediction_store import SCHEMA as PREDICTION_SCHEMA
from shared.schema import PRICE_CATEGORIES

UNKNOWN, AMBIGUOUS = "unknown", "ambiguous"
# Seconds a price waits before it is joined: a client may send it right after the answer,
# before the prediction log's writer (50 ms after the answer) has put the prediction in the
# stream. POST /feedback asks for a drain that much later.
FEEDBACK_SETTLE_SECONDS = 2
# What a matched row keeps of its prediction, under the prediction store's names.
PREDICTION_COLUMNS = [
    "request_id",
    "time",
    "model_version",
    *LISTING_COLUMNS,
    "price_category",
    *PROBABILITY_COLUMNS,
]
FEEDBACK_SCHEMA = pa.schema(
    [
        ("feedback_id", pa.string()),
        ("feedback_time", pa.timestamp("us", tz="UTC")),
        ("entry_id", pa.string()),
        ("given_id", pa.string()),  # as the client sent them
        ("given_request_id", pa.string()),
        ("price", pa.float64()),
        ("actual_category", pa.string()),
        ("problem", pa.string()),  # None when matched, else UNKNOWN or AMBIGUOUS
        *((name, PREDICTION_SCHEMA.field(name).type) for name in PREDICTION_COLUMNS),
    ]
)


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
                "given_id": None if item["id"] is None else str(item["id"]),
                "given_request_id": item["request_id"],
                "price": float(item["price"]),
                "actual_category": str(item["actual"]),
            }
            for item in json.loads(entry["items"])
        ]
    except (KeyError, TypeError, AttributeError, ValueError, UnicodeDecodeError) as error:
        raise UnreadableEntryError(f"feedback entry {entry_id}: {error!r}") from None


def join(items: list[dict[str, Any]], predictions: pd.DataFrame) -> list[dict[str, Any]]:
    """Each item with the prediction it names (the store's rows), or the reason it has none."""
    latest = predictions.sort_values("time").drop_duplicates(["request_id", "id"], keep="last")
    rows = _rows(latest)  # oldest first
    by_pair = {(row["request_id"], row["id"]): row for row in rows}
    by_id = {row["id"]: row for row in rows}  # a listing predicted again: the latest
    per_request: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        per_request.setdefault(row["request_id"], []).append(row)
    joined = []
    for item in items:
        given_id, given_request = item["given_id"], item["given_request_id"]
        found, problem = None, None
        if given_request is not None and given_id is not None:
            found = by_pair.get((given_request, given_id))
        elif given_request is not None:
            in_request = per_request.get(given_request, [])
            found = in_request[0] if len(in_request) == 1 else None
            problem = AMBIGUOUS if len(in_request) > 1 else None
        else:
            found = by_id.get(given_id)
        prediction = {name: (found or {}).get(name) for name in PREDICTION_COLUMNS}
        joined.append({**item, **prediction, "problem": None if found else problem or UNKNOWN})
    return joined


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {name: (None if pd.isna(value) else value) for name, value in row.items()}
        for row in frame[PREDICTION_COLUMNS].to_dict("records")
    ]


def live_scores(feedback: pd.DataFrame, since: datetime) -> dict[str, Any]:
    """Scores of the predictions judged by prices received since `since`: each prediction
    once, by the latest price sent for it; items that matched none are counted."""
    recent = feedback[feedback["feedback_time"] >= pd.Timestamp(since)]
    matched = recent[recent["problem"].isna()]
    judged = matched.sort_values("feedback_time").drop_duplicates(["request_id", "id"], keep="last")
    counts = recent["problem"].value_counts()
    scores: dict[str, Any] = {
        "since": since.isoformat(timespec="seconds"),
        "received": len(recent),
        "judged": len(judged),
        "unknown": int(counts.get(UNKNOWN, 0)),
        "ambiguous": int(counts.get(AMBIGUOUS, 0)),
    }
    if judged.empty:
        return scores
    actual, predicted = judged["actual_category"], judged["price_category"]
    present = [c for c in PRICE_CATEGORIES if (actual == c).any()]
    recalls = recall_score(actual, predicted, labels=present, average=None, zero_division=0)
    versions = judged.groupby("model_version")
    return scores | {
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
