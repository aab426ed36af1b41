"""Realised prices on real servers: feedback for 200 logged predictions, sent by prediction
id (raw price text) and by listing id (numbers), gives the live accuracy, macro F1 and recall
this test computes itself from the answers; unknown ones are answered, counted. Clients that
reuse X-Request-IDs and listing ids never take each other's prediction."""

import re
import time

import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient
from sklearn.metrics import accuracy_score, f1_score, recall_score

from shared.contracts import Listing
from shared.feedback import FEEDBACK_SCHEMA
from shared.launch import launch_run
from shared.ledger import Ledger
from shared.prediction_store import read_predictions
from shared.queues import connect
from shared.realised_prices import REALISED_PRICES_KIND, RealisedPrices
from shared.schema import FROM_FEEDBACK, TARGET, price_category
from shared.settings import PROJECT_DIR
from shared.storage import file_md5, processed_path
from shared.tracking import Tracker
from tests.integration.conftest import FAST_GRID, GATEWAY_TOKEN, wait_for_run

AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}


def _real_listings(stack, count: int, seed: int = 7) -> tuple[list[dict], list[float]]:
    """Listings of the shipped data (cleaned by an earlier run), and their real prices."""
    sample = stack.shipped_listings().sample(count, random_state=seed)
    listings = [
        Listing.model_validate({**row, "id": f"fb-{n}"}).model_dump()
        for n, row in enumerate(sample[list(Listing.model_fields)].to_dict("records"))
    ]
    return listings, [float(price) for price in sample["price"]]


def _feedback_outcome(gateway: str, status_url: str) -> dict:
    deadline = time.monotonic() + 60
    while (outcome := requests.get(f"{gateway}{status_url}", timeout=10).json())[
        "state"
    ] != "joined":
        assert outcome["state"] == "queued", outcome
        assert time.monotonic() < deadline, outcome
        time.sleep(0.5)
    return outcome


def test_feedback_for_200_predictions_gives_the_scores_computed_here(
    stack, gateway, served_champion
):
    listings, prices = _real_listings(stack, 200)
    predicted: list[str] = []
    prediction_ids: list[str] = []
    with requests.Session() as session:
        for listing in listings[:100]:  # one by one, all under one reused X-Request-ID
            reply = session.post(
                f"{gateway}/predict", json=listing, headers={"X-Request-ID": "fb-same"}
            )
            assert reply.status_code == 200, reply.text
            predicted.append(reply.json()["price_category"])
            prediction_ids.append(reply.json()["prediction_id"])
        for start in (100, 150):  # batches of 50
            reply = session.post(f"{gateway}/predict", json=listings[start : start + 50])
            assert reply.status_code == 200, reply.text
            predicted += [answer["price_category"] for answer in reply.json()["predictions"]]

    feedback = [
        {"prediction_id": prediction_ids[n], "price": f"${prices[n]:,.2f}"} for n in range(100)
    ] + [{"id": listings[n]["id"], "price": prices[n]} for n in range(100, 200)]
    feedback += [{"id": f"never-predicted-{n}", "price": 120} for n in range(5)]
    reply = requests.post(f"{gateway}/feedback", json=feedback, headers=AUTH, timeout=10)
    assert reply.status_code == 202, reply.text
    assert reply.json()["accepted"] == 205

    outcome = _feedback_outcome(gateway, reply.json()["status_url"])
    assert (outcome["received"], outcome["matched"]) == (205, 200)
    assert sorted(item["id"] for item in outcome["unknown"]) == [
        f"never-predicted-{n}" for n in range(5)
    ]

    actual = [price_category(price) for price in prices]
    scores = requests.get(f"{gateway}/monitor", timeout=10).json()["feedback"]
    assert (scores["judged"], scores["unknown"]) == (200, 5)
    assert scores["accuracy"] == pytest.approx(accuracy_score(actual, predicted))
    assert scores["f1_macro"] == pytest.approx(f1_score(actual, predicted, average="macro"))
    present = [c for c in ("Low", "Mid", "High", "Lux") if c in actual]
    recalls = recall_score(actual, predicted, labels=present, average=None)
    assert scores["recall"] == pytest.approx(dict(zip(present, recalls, strict=True)))
    assert scores["by_version"][served_champion]["judged"] == 200

    metrics = requests.get(f"{gateway}/metrics", timeout=10).text
    found = re.search(r"^monitor_live_accuracy (\S+)$", metrics, re.MULTILINE)
    assert found and float(found[1]) == pytest.approx(scores["accuracy"])

    stored = read_predictions(stack.settings.feedback_dir, schema=FEEDBACK_SCHEMA).to_pandas()
    ours = stored[stored["feedback_id"] == reply.json()["feedback_id"]]
    assert len(ours) == 205  # each price once, matched or not
    matched = ours[ours["problem"].isna()].set_index("id")
    assert matched.loc["fb-0", "price"] == pytest.approx(prices[0])
    assert matched.loc["fb-0", "prediction_id"] == prediction_ids[0]
    assert matched.loc["fb-0", "request_id"] == "fb-same"  # kept for tracing
    assert matched.loc["fb-150", "accommodates"] == listings[150]["accommodates"]


def test_a_price_joins_its_own_clients_prediction_never_a_later_one_of_another(
    stack, gateway, served_champion
):
    """Two clients predict the same listing id under the same X-Request-ID: client A at t0,
    client B at t0 + 3 s with a listing that differs. A's price, reported in between by the
    listing's id, joins A's prediction; a price naming B's prediction_id joins B's."""
    listings, _ = _real_listings(stack, 2, seed=23)
    a = {**listings[0], "id": "shared-listing-id"}
    b = {**listings[1], "id": "shared-listing-id", "accommodates": a["accommodates"] + 1}
    headers = {"X-Request-ID": "everyone-uses-this-one"}
    first = requests.post(f"{gateway}/predict", json=a, headers=headers, timeout=10).json()
    time.sleep(1)
    by_listing = [{"id": "shared-listing-id", "price": 95}]
    reply_a = requests.post(f"{gateway}/feedback", json=by_listing, headers=AUTH, timeout=10)
    time.sleep(2)
    second = requests.post(f"{gateway}/predict", json=b, headers=headers, timeout=10).json()
    by_prediction = [{"prediction_id": second["prediction_id"], "price": 450}]
    reply_b = requests.post(f"{gateway}/feedback", json=by_prediction, headers=AUTH, timeout=10)
    assert reply_a.status_code == reply_b.status_code == 202

    for reply in (reply_a, reply_b):
        assert _feedback_outcome(gateway, reply.json()["status_url"])["matched"] == 1
    stored = read_predictions(stack.settings.feedback_dir, schema=FEEDBACK_SCHEMA).to_pandas()
    joined = stored.set_index("feedback_id")
    row_a, row_b = (joined.loc[reply.json()["feedback_id"]] for reply in (reply_a, reply_b))
    assert row_a["prediction_id"] == first["prediction_id"] != second["prediction_id"]
    assert row_a["accommodates"] == a["accommodates"] and row_a["price"] == 95
    assert row_b["prediction_id"] == second["prediction_id"]
    assert row_b["accommodates"] == b["accommodates"] and row_b["price"] == 450


def test_a_run_asked_to_train_on_realised_prices_adds_them_marked_and_counted(
    stack, gateway, served_champion, shipped_data
):
    listings, prices = _real_listings(stack, 20, seed=11)
    listings = [{**listing, "id": f"fbt-{n}"} for n, listing in enumerate(listings)]
    reply = requests.post(f"{gateway}/predict", json=listings, timeout=10)
    assert reply.status_code == 200, reply.text
    prices[0] = 7.0  # a placeholder price: dropped, as cleaning drops it from a dump
    feedback = [
        {"id": listing["id"], "price": price}
        for listing, price in zip(listings, prices, strict=True)
    ]
    reply = requests.post(f"{gateway}/feedback", json=feedback, headers=AUTH, timeout=10)
    assert reply.status_code == 202, reply.text
    assert _feedback_outcome(gateway, reply.json()["status_url"])["matched"] == 20

    # What the run should add: every listing with a matched price stored so far (this test's
    # and any earlier one's), once, at its latest price.
    stored = read_predictions(stack.settings.feedback_dir, schema=FEEDBACK_SCHEMA).to_pandas()
    matched = stored[stored["problem"].isna()].sort_values("feedback_time")
    latest = matched.drop_duplicates("id", keep="last")
    expected_rows = int((latest["price"] > 10).sum())
    # Prep reads them from MLflow, where the monitor publishes them (no disk is shared): all
    # of them, in the one run that replaced the earlier ones.
    tracker = Tracker(stack.settings)
    ledger = Ledger(connect(stack.settings.redis_url))
    assert len(RealisedPrices(tracker, ledger).latest()) == len(matched)
    assert len(tracker.find_runs_of_kind(REALISED_PRICES_KIND)) == 1

    stack.write_grid(FAST_GRID)
    with_feedback = stack.settings.model_copy(update={"feedback_training": True})
    run_id = launch_run(connect(stack.settings.redis_url), with_feedback, shipped_data)
    run = wait_for_run(stack, run_id)
    assert run["state"] == "finished", run
    assert run["feedback_training"] is True
    prepared = run["stages"]["prep"]
    assert prepared["feedback_rows"] == expected_rows
    assert prepared["dropped"]["feedback_price_at_most_10"] >= 1

    dataset = pd.read_parquet(processed_path(stack.folder / "processed", prepared["data_hash"]))
    ours = dataset[dataset["id"].str.startswith("fbt-")].set_index("id")
    assert sorted(ours.index) == sorted(f"fbt-{n}" for n in range(1, 20))
    assert ours[FROM_FEEDBACK].all() and dataset[FROM_FEEDBACK].sum() == expected_rows
    assert ours.loc["fbt-5", TARGET] == price_category(prices[5])
    assert len(dataset) == len(stack.shipped_listings()) + expected_rows  # new ids only

    mlflow = MlflowClient(stack.settings.mlflow_tracking_uri)
    quality = mlflow.get_run(prepared["data_quality_run_id"])
    assert quality.data.metrics["rows_from_feedback"] == expected_rows
    assert quality.data.params["feedback_rows"] == str(expected_rows)
    parent = mlflow.get_run(prepared["parent_run_id"])
    assert parent.data.tags["feedback_rows"] == str(expected_rows)
    assert (
        parent.data.tags["data_hash"]
        == prepared["data_hash"]
        != file_md5(PROJECT_DIR / shipped_data)
    )
