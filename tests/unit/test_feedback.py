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
    UNKNOWN,
    feedback_entry,
    join,
    live_scores,
    rows_of_feedback,
)
from shared.prediction_store import (
    LISTING_COLUMNS,
    PROBABILITY_COLUMNS,
    Batch,
    UnreadableEntryError,
    write_batch,
)
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
    with pytest.raises(ValidationError, match="give the prediction's prediction_id"):
        Feedback.model_validate({"price": 100})
    with pytest.raises(ValidationError, match="extra"):
        Feedback.model_validate({"id": 1, "price": 100, "prize": 3})


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"request_id": "listing-1001-check"}, "request_id"),  # anyone's X-Request-ID
        ({"prediction_id": "20261207-zz"}, "prediction_id"),  # not one the gateway issues
        ({"id": "caf\ud800"}, "id"),  # a lone surrogate: valid JSON, unstorable text
    ],
)
def test_what_cannot_name_a_prediction_is_refused_by_name(given, field):
    with pytest.raises(ValidationError) as error:
        Feedback.model_validate(given | {"price": 100})
    assert error.value.errors()[0]["loc"] == (field,)


def _prediction(prediction_id: str, listing_id: str, category: str, minutes: int) -> dict:
    row = {name: None for name in LISTING_COLUMNS} | {"id": listing_id, "accommodates": 2}
    probabilities = {column: 0.25 for column in PROBABILITY_COLUMNS}
    return (
        row
        | probabilities
        | {
            "prediction_id": prediction_id,
            "request_id": "the-same-x-request-id",  # clients reuse them: never a join key
            "time": T0 + timedelta(minutes=minutes),
            "model_version": "3",
            "price_category": category,
            "entry_id": f"{minutes}-0",
            "latency_ms": 1.0,
        }
    )


def _id(token: str, index: int = 0) -> str:
    return f"{T0:%Y%m%d}-{token * 24}-{index}"


@pytest.fixture
def store(tmp_path):
    """Predictions stored as the monitor stores them: listing a at minutes 0 and 5 (another
    client's), b and c in one batch at minute 1, and one on the next day."""
    rows = [
        _prediction(_id("a"), "a", "Low", 0),
        _prediction(_id("b", 0), "b", "Mid", 1),
        _prediction(_id("b", 1), "c", "High", 1),
        _prediction(_id("c"), "a", "Mid", 5),
        _prediction(f"{T0 + timedelta(days=1):%Y%m%d}-{'d' * 24}-0", "d", "Lux", 24 * 60),
    ]
    write_batch(tmp_path, Batch("1-0", rows))
    return tmp_path


def _items(*given: tuple[str | None, str | None, float, int]) -> list[dict]:
    """Feedback items: (prediction id, listing id, price, minutes after T0 it was sent)."""
    rows = []
    for prediction_id, listing_id, price, minutes in given:
        item = {"prediction_id": prediction_id, "id": listing_id, "price": price}
        entry = feedback_entry(
            "fb-1",
            (T0 + timedelta(minutes=minutes)).timestamp(),
            [item | {"actual": price_category(price)}],
        )
        rows += rows_of_feedback(f"{minutes}-0", {k.encode(): v.encode() for k, v in entry.items()})
    return rows


def test_each_price_finds_the_prediction_it_names_or_says_why_not(store):
    joined = join(
        _items(
            (_id("b", 1), None, 300, 60),  # a listing of a batch, by its prediction id
            (None, "a", 120, 60),  # a listing predicted twice, by its id: the latest
            (None, "a", 50, 2),  # sent before the second prediction: the first
            (_id("b", 0), "b", 100, 60),  # both, and they agree
            (_id("b", 0), "c", 100, 60),  # both, and they do not
            (None, "zz", 100, 60),  # never predicted
            (_id("e"), None, 100, 60),  # never issued
            (None, "d", 100, 60),  # predicted only after the price was sent
            (f"{T0 + timedelta(days=1):%Y%m%d}-{'d' * 24}-0", None, 500, 24 * 60 + 1),
        ),
        store,
    )
    found = [(row["prediction_id"], row["id"], row["price_category"]) for row in joined]
    assert found[:4] == [
        (_id("b", 1), "c", "High"),
        (_id("c"), "a", "Mid"),
        (_id("a"), "a", "Low"),
        (_id("b", 0), "b", "Mid"),
    ]
    assert found[8] == (f"{T0 + timedelta(days=1):%Y%m%d}-{'d' * 24}-0", "d", "Lux")
    problems = [row["problem"] for row in joined]
    assert problems == [None] * 4 + [UNKNOWN] * 4 + [None]
    assert all(row["prediction_id"] is None for row in joined[4:8])
    assert joined[0]["actual_category"] == "High" and joined[2]["actual_category"] == "Low"
    assert joined[5]["given_id"] == "zz"
    assert joined[0]["accommodates"] == 2  # the listing's fields come along


def test_an_entry_not_written_by_the_gateway_is_unreadable():
    with pytest.raises(UnreadableEntryError, match="feedback entry 1-0"):
        rows_of_feedback("1-0", {b"feedback_id": b"x", b"items": b"[{"})


def test_live_scores_judge_each_prediction_once_by_its_latest_price():
    rng = np.random.default_rng(0)
    actual = rng.choice(PRICE_CATEGORIES, 200)
    predicted = np.where(rng.random(200) < 0.7, actual, rng.choice(PRICE_CATEGORIES, 200))
    price = rng.uniform(50, 500, 200)
    estimate = price * np.exp(rng.normal(0, 0.3, 200))
    rows = [
        {
            "feedback_time": T0,
            "entry_id": "1-0",
            "prediction_id": f"p{i}",
            "id": str(i),
            "problem": None,
            "actual_category": a,
            "price_category": p,
            "model_version": "3" if i < 150 else "4",
            "price": price[i],
            # Version 4 estimates prices, within [0.75, 1.3] of its estimate; version 3 none.
            "estimated_price": estimate[i] if i >= 150 else None,
            "price_low": estimate[i] * 0.75 if i >= 150 else None,
            "price_high": estimate[i] * 1.3 if i >= 150 else None,
        }
        for i, (a, p) in enumerate(zip(actual, predicted, strict=True))
    ]
    # Earlier prices for the same predictions (corrected since), and ones that matched nothing.
    stale = [
        {**row, "feedback_time": T0 - timedelta(hours=1), "actual_category": "Lux", "price": 1e4}
        for row in [*rows[:50], *rows[150:]]
    ]
    unknown = [{**rows[0], "problem": UNKNOWN, "prediction_id": None}] * 3
    old = [{**rows[1], "feedback_time": T0 - timedelta(days=30)}]
    scores = live_scores(pd.DataFrame(rows + stale + unknown + old), since=T0 - timedelta(days=7))

    assert (scores["received"], scores["judged"], scores["unknown"]) == (303, 200, 3)
    assert scores["accuracy"] == pytest.approx(accuracy_score(actual, predicted))
    assert scores["f1_macro"] == pytest.approx(f1_score(actual, predicted, average="macro"))
    for category in PRICE_CATEGORIES:
        mask = actual == category
        assert scores["recall"][category] == pytest.approx((predicted[mask] == category).mean())
    assert scores["by_version"]["4"]["judged"] == 50
    priced = slice(150, 200)  # judged by their latest prices, not the stale 10,000
    ratio = price[priced] / estimate[priced]
    assert scores["price_estimate"] == {
        "judged": 50,
        "median_abs_log_error": pytest.approx(np.median(np.abs(np.log(ratio)))),
        "interval_coverage": pytest.approx(((ratio >= 0.75) & (ratio <= 1.3)).mean()),
    }


def test_no_price_yet_gives_counts_and_no_scores():
    empty = pd.DataFrame(columns=["feedback_time", "entry_id", "problem", "prediction_id", "id"])
    scores = live_scores(empty, since=T0)
    assert scores["judged"] == 0 and "accuracy" not in scores
