"""A price blend trained through the real pipeline, promoted and served: the gateway answers
exactly what the logged model gives (probabilities, estimated prices and intervals), and
explains its categories."""

import json
import urllib.request

import numpy as np
import pytest

from services.stack import processes
from shared.cleaning import clean_listings
from shared.launch import launch_run
from shared.modeling import predict_matrix
from shared.queues import connect
from shared.registry import Registry
from shared.schema import PRICE_CATEGORIES
from shared.settings import PROJECT_DIR
from shared.splitting import SplitRule
from shared.storage import read_raw_listings
from tests.integration.conftest import Stack, wait_for_run

pytestmark = pytest.mark.integration

BLEND_GRID = [
    {
        "name": "blend",
        "estimator": "price_blend",
        "features": "all",
        "params": {
            "classifier_params": {"n_estimators": 60, "min_child_samples": 50, "verbose": -1},
            "regressor_params": {"n_estimators": 60, "verbose": -1},
            "folds": 3,
        },
    }
]


def post_json(url: str, body: object) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return dict(json.load(reply))


def test_a_served_blend_answers_what_its_logged_model_gives(
    stack: Stack, gateway: str, shipped_data: str
):
    stack.write_grid(BLEND_GRID)
    run = wait_for_run(
        stack, launch_run(connect(stack.settings.redis_url), stack.settings, shipped_data)
    )
    assert run["state"] == "finished", run
    select = run["stages"]["select"]
    assert select["promoted"] is True, select
    report = select["report"][0]
    assert 0.7 < report["interval_coverage"] < 0.9  # an 80% interval, on ~4,300 test prices
    assert report["calibration_error"] is not None and report["recall_low"] is not None
    version = select["version"]

    def serving() -> bool:
        with urllib.request.urlopen(f"{gateway}/health/ready", timeout=5) as reply:
            return json.load(reply)["model_version"] == version

    processes.wait_until(serving, 60, f"gateway serving version {version}")

    clean, _ = clean_listings(read_raw_listings(PROJECT_DIR / shipped_data))
    test_rows = SplitRule("listings-1", 0.15).split(clean).x_test.head(25)
    listings = [
        {key: value for key, value in row.items() if value == value}  # NaN: left out
        for row in json.loads(test_rows.to_json(orient="records"))
    ]
    for listing in listings:
        listing.update({k: int(listing[k]) for k in ("id", "accommodates", "beds", "bedrooms")})
    answers = post_json(f"{gateway}/predict", listings)["predictions"]

    logged = Registry(stack.settings).load_version(version)
    proba, prices = predict_matrix(logged, listings)
    served = np.array([[a["probabilities"][c] for c in PRICE_CATEGORIES] for a in answers])
    np.testing.assert_allclose(served, proba, rtol=0, atol=1e-9)
    assert prices is not None
    served_prices = [[a["estimated_price"], *a["price_interval"]] for a in answers]
    np.testing.assert_array_equal(served_prices, prices.round(2))
    assert {a["model_version"] for a in answers} == {version}

    explained = post_json(f"{gateway}/predict?explain=true", listings[0])
    assert explained["probabilities"] == answers[0]["probabilities"]
    assert all(c["label"] and "listing_value" in c for c in explained["explanation"])
