"""The golden models served three ways (MLflow sklearn flavour, MLflow pyfunc, the gateway)
give the numbers the in-process pipeline gives, to 1e-9 (prices to the cent the API rounds to)."""

import uuid

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from services.gateway.app import create_app
from services.gateway.registry import MlflowChampionSource
from shared.registry import Registry
from shared.schema import PRICE_CATEGORIES
from shared.tracking import Tracker, tracking_uri
from tests.golden.fixtures import (
    KINDS,
    TOLERANCE,
    expected_frame,
    expected_prices,
    golden_listings,
    golden_model,
)
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=list(KINDS))
def kind(request) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def golden_settings(stack: Stack, kind: str):
    """A golden model logged and registered (as champion) under a model name of its own."""
    settings = stack.settings.model_copy(update={"model_name": f"golden-{uuid.uuid4().hex[:8]}"})
    tracker = Tracker(settings)
    run = tracker.client.create_run(tracker.experiment_id, run_name="golden")
    uri = tracker.log_model(run.info.run_id, golden_model(kind))
    registry = Registry(settings)
    registry.promote(str(registry.register(uri, {"golden": "true"}).version))
    return settings


def test_mlflow_flavours_give_the_golden_numbers(golden_settings, kind):
    uri = f"models:/{golden_settings.model_name}@{golden_settings.champion_alias}"
    listings = pd.DataFrame(golden_listings())
    sklearn_model = Tracker(golden_settings).load_model(uri)
    proba = pd.DataFrame(sklearn_model.predict_proba(listings), columns=sklearn_model.classes_)
    pd.testing.assert_frame_equal(
        proba[list(PRICE_CATEGORIES)],
        expected_frame(kind),
        check_exact=False,
        rtol=0,
        atol=TOLERANCE,
    )
    with tracking_uri(golden_settings.mlflow_tracking_uri):  # pyfunc reads MLflow's global one
        pyfunc = np.asarray(mlflow.pyfunc.load_model(uri).predict(listings))
    by_class = pd.DataFrame(pyfunc, columns=sklearn_model.classes_)[list(PRICE_CATEGORIES)]
    np.testing.assert_allclose(
        by_class.to_numpy(), expected_frame(kind).to_numpy(), rtol=0, atol=TOLERANCE
    )


def test_gateway_gives_the_golden_numbers(golden_settings, kind):
    app = create_app(
        golden_settings, source=MlflowChampionSource(golden_settings), watch_champion=False
    )
    assert app.extensions["gateway"].cache.refresh()
    reply = app.test_client().post("/predict", json=golden_listings())
    assert reply.status_code == 200
    answers = reply.get_json()["predictions"]
    served = pd.DataFrame([p["probabilities"] for p in answers])
    pd.testing.assert_frame_equal(
        served, expected_frame(kind), check_exact=False, rtol=0, atol=TOLERANCE
    )
    prices = expected_prices(kind)
    if prices is None:
        assert not any("estimated_price" in p or "price_interval" in p for p in answers)
    else:
        served_prices = [[p["estimated_price"], *p["price_interval"]] for p in answers]
        np.testing.assert_array_equal(served_prices, prices.round(2))
