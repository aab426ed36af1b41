"""Realised prices: their contract, the join to logged predictions, and the live scores."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import accuracy_score, f1_score

from shared.cleaning import categorize_prices
from shared.contracts import Feedback
from shared.feedback import (
    AMBIGUOUS,
    UNKNOWN,
    feedback_entry,
    join,
    live_scores,
    rows_of_feedback,
)
from shared.prediction_store import LISTING_COLUMNS, PROBABILITY_COLUMNS, UnreadableEntryError
from shared.schema import PRICE_CATEGORIES, price_category

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_a_price_falls_in_the_category_the_training_data_gives_it():
    prices = [0.5, 10, 89.99, 90, 90.01, 150, 180, 180.5, 400, 400.01, 25_000]
    assert [price_category(p) for p in prices] == list(categorize_prices(pd.Series(prices)))


@pytest.mark.parametrize(
    ("given", "price"),
    [(150, 150.0), (99.5, 99.5), ("$1,250.00", 1250.0), ("75", 75.0), (" $90.50 ", 90.5)],
)
def test_a_price_is_a_number_or_inside_airbnbs_text(given, price):
    assert Feedback.model_validate({"id": 7, "price": given}).price == price


@pytest.mark.parametrize("given", [0, -5, "abc", "$-5", True, None, float("inf"), "1e400"])
def test_a_price_that_is_none_is_refused_naming_the_field(given):
    with pytest.raises(ValidationError) as error:
        Feedback.model_validate({"id": 7, "price": given})
    assert error.value.errors()[0]["loc"] == ("price",)


def test_a_price_must_name_its_prediction():
    with pytest.raises(ValidationError, match="give the prediction's id or request_id"):
        Feedback.model_validate({"price": 100})
    with pytest.raises(ValidationError, match="extra"):
        Feedback.model_validate({"id": 1, "price": 100, "prize": 3})


def _prediction(request_id: str, listing_id: str, category: str, minutes: int) -> dict:
    row = {name: None for name in LISTING_COLUMNS} | {"id": listing_id, "accommodates": 2}
    probabilities = {column: 0.25 for column in PROBABILITY_COLUMNS}
    return (
        row
        | probabilities
        | {
            "request_id": request_id,
            "time": T0 + timedelta(minutes=minutes),
            "model_version": "3",
            "price_category": category,
            "entry_id": f"{minutes}-0",
            "latency_ms": 1.0,
        }
    )


PREDICTIONS = pd.DataFrame(
    [
        _prediction("single-1", "a", "Low", 0),
        _prediction("batch-1", "b", "Mid", 1),
        _prediction("batch-1", "c", "High", 1),
        _prediction("again", "a", "Mid", 5),  # listing a predicted again, later
    ]
)


def _items(*given: tuple[str | None, str | None, float]) -> list[dict]:
    entry = feedback_entry(
        "fb-1",
        T0.timestamp() + 3600,
        [{"id": i, "request_id": r, "price": p, "actual": price_category(p)} for i, r, p in given],
    )
    return rows_of_feedback("9-0", {k.encode(): v.encode() for k, v in entry.items()})


def test_each_price_finds_the_prediction_it_names_or_says_why_not():
    joined = join(
        _items(
            (None, "single-1", 50),  # a one-listing request, by its request id
            ("c", "batch-1", 300),  # a listing of a batch, by both
            ("a", None, 120),  # a listing predicted twice, by its id: the latest
            (None, "batch-1", 100),  # a batch by its request id alone
            ("zz", None, 100),
            ("b", "single-1", 100),  # a listing that request did not hold
        ),
        PREDICTIONS,
    )
    found = [(row["request_id"], row["id"], row["price_category"]) for row in joined[:3]]
    assert found == [("single-1", "a", "Low"), ("batch-1", "c", "High"), ("again", "a", "Mid")]
    assert [row["problem"] for row in joined] == [None, None, None, AMBIGUOUS, UNKNOWN, UNKNOWN]
    assert joined[0]["actual_category"] == "Low" and joined[1]["actual_category"] == "High"
    assert joined[4]["request_id"] is None and joined[4]["given_id"] == "zz"
    assert joined[0]["accommodates"] == 2  # the listing's fields come along


def test_an_entry_not_written_by_the_gateway_is_unreadable():
    with pytest.raises(UnreadableEntryError, match="feedback entry 1-0"):
        rows_of_feedback("1-0", {b"feedback_id": b"x", b"items": b"[{"})


def test_live_scores_judge_each_prediction_once_by_its_latest_price():
    rng = np.random.default_rng(0)
    actual = rng.choice(PRICE_CATEGORIES, 200)
    predicted = np.where(rng.random(200) < 0.7, actual, rng.choice(PRICE_CATEGORIES, 200))
    rows = [
        {
            "feedback_time": T0,
            "request_id": f"r{i}",
            "id": str(i),
            "problem": None,
            "actual_category": a,
            "price_category": p,
            "model_version": "3" if i < 150 else "4",
        }
        for i, (a, p) in enumerate(zip(actual, predicted, strict=True))
    ]
    # Earlier prices for the same predictions (corrected since), and ones that matched nothing.
    stale = [
        {**row, "feedback_time": T0 - timedelta(hours=1), "actual_category": "Lux"}
        for row in rows[:50]
    ]
    unknown = [{**rows[0], "problem": UNKNOWN, "request_id": None}] * 3
    old = [{**rows[1], "feedback_time": T0 - timedelta(days=30)}]
    scores = live_scores(pd.DataFrame(rows + stale + unknown + old), since=T0 - timedelta(days=7))

    assert (scores["received"], scores["judged"], scores["unknown"]) == (253, 200, 3)
    assert scores["accuracy"] == pytest.approx(accuracy_score(actual, predicted))
    assert scores["f1_macro"] == pytest.approx(f1_score(actual, predicted, average="macro"))
    for category in PRICE_CATEGORIES:
        mask = actual == category
        assert scores["recall"][category] == pytest.approx((predicted[mask] == category).mean())
    assert scores["by_version"]["4"]["judged"] == 50


def test_no_price_yet_gives_counts_and_no_scores():
    empty = pd.DataFrame(columns=["feedback_time", "problem", "request_id", "id"])
    scores = live_scores(empty, since=T0)
    assert scores["judged"] == 0 and "accuracy" not in scores
