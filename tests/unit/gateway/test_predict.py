import os
import re

import pandas as pd
import pytest

from services.gateway import predicting
from services.gateway.app import create_app
from services.gateway.champion import LoadedModel
from shared.contracts import CHALLENGE_EXAMPLE, Feedback, Listing
from shared.schema import PRICE_CATEGORIES


def test_the_challenge_example_works_unchanged(client):
    reply = client.post("/predict", json=CHALLENGE_EXAMPLE)
    assert reply.status_code == 200
    body = reply.get_json()
    assert body["id"] == 1001
    assert body["model_version"] == "7"
    assert body["price_category"] in PRICE_CATEGORIES
    assert list(body["probabilities"]) == list(PRICE_CATEGORIES)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)
    assert body["price_category"] == max(body["probabilities"], key=body["probabilities"].get)


def test_a_batch_is_answered_in_order(client):
    listings = [{**CHALLENGE_EXAMPLE, "id": i, "accommodates": 1 + i} for i in (3, 1, 2)]
    reply = client.post("/predict", json=listings)
    assert reply.status_code == 200
    body = reply.get_json()
    assert body["model_version"] == "7"
    assert [p["id"] for p in body["predictions"]] == [3, 1, 2]
    single = client.post("/predict", json=listings[1]).get_json()
    assert body["predictions"][1]["probabilities"] == single["probabilities"]


def test_ids_wider_than_64_bits_come_back_unchanged(client):
    wide = 2**80 + 1  # beyond what the fast JSON encoder takes: the standard one answers
    reply = client.post("/predict", json={**CHALLENGE_EXAMPLE, "id": wide})
    assert reply.status_code == 200
    assert reply.get_json()["id"] == wide


@pytest.mark.parametrize(
    ("flags", "status"),
    [
        ({"tv": True, "elevator": False, "internet": 1}, 200),
        ({"kitchen": 1, "wifi": False, "breakfast": 0, "heating": True}, 200),
        ({"property_type": "Entire loft", "air_conditioning": 1}, 200),
        ({"tv": "yes"}, 422),
        ({"tv": 2}, 422),
    ],
)
def test_flags_accept_0_1_true_false_only(client, flags, status):
    assert client.post("/predict", json={**CHALLENGE_EXAMPLE, **flags}).status_code == status


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"bedroom": 1}, "bedroom"),
        ({"neighbourhood": "Hoboken"}, "neighbourhood"),
        ({"room_type": "Castle"}, "room_type"),
        ({"accommodates": 0}, "accommodates"),
        ({"beds": -1}, "beds"),
        ({"latitude": 34.05}, "latitude"),
        ({"longitude": "west"}, "longitude"),
        ({"id": None}, "id"),
        # Lone surrogates: valid JSON, but no store can write them (they stopped the monitor).
        ({"id": "A-\ud800"}, "id"),
        ({"property_type": "Loft \udfff"}, "property_type"),
    ],
)
def test_invalid_fields_are_422_with_the_field_named(client, change, path):
    reply = client.post("/predict", json={**CHALLENGE_EXAMPLE, **change})
    assert reply.status_code == 422
    body = reply.get_json()
    assert body["error"] == "validation_error"
    assert path in [entry["path"] for entry in body["fields"]]


def test_each_answer_carries_its_own_unguessable_prediction_id(client):
    single = client.post("/predict", json=CHALLENGE_EXAMPLE).get_json()
    batch = client.post("/predict", json=[CHALLENGE_EXAMPLE] * 3).get_json()["predictions"]
    again = client.post("/predict", json=CHALLENGE_EXAMPLE).get_json()
    ids = [single["prediction_id"], again["prediction_id"], *(a["prediction_id"] for a in batch)]
    assert len(set(ids)) == 5
    for prediction_id in ids:
        assert re.fullmatch(r"\d{8}-[0-9a-f]{24}-\d+", prediction_id), prediction_id
        assert Feedback.model_validate({"prediction_id": prediction_id, "price": 1})
    assert [a["prediction_id"][-2:] for a in batch] == ["-0", "-1", "-2"]


def test_a_missing_field_is_named(client):
    listing = {k: v for k, v in CHALLENGE_EXAMPLE.items() if k != "bedrooms"}
    body = client.post("/predict", json=listing).get_json()
    assert body["fields"] == [{"path": "bedrooms", "message": "Field required"}]


def test_batch_errors_name_the_listing(client):
    listings = [CHALLENGE_EXAMPLE, {**CHALLENGE_EXAMPLE, "latitude": 0}]
    body = client.post("/predict", json=listings).get_json()
    assert [entry["path"] for entry in body["fields"]] == ["[1].latitude"]


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "malformed_json"),
        (
            {"data": "id=1", "content_type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        ({"json": []}, 422, "validation_error"),
        ({"json": "a string"}, 422, "validation_error"),
        ({"json": [CHALLENGE_EXAMPLE] * 4}, 413, "batch_too_large"),
        (
            {"data": "[" + "1," * 5000 + "1]", "content_type": "application/json"},
            413,
            "request_entity_too_large",
        ),
    ],
)
def test_bad_bodies_get_json_errors(client, kwargs, status, error):
    reply = client.post("/predict", **kwargs)
    assert reply.status_code == status
    assert reply.get_json()["error"] == error


def test_no_champion_is_503_with_a_hint(settings, source):
    source.version = None
    app = create_app(settings, source=source, watch_champion=False)
    reply = app.test_client().post("/predict", json=CHALLENGE_EXAMPLE)
    assert reply.status_code == 503
    assert "POST /retrain" in reply.get_json()["hint"]


def test_a_promoted_version_is_swapped_in(app, client, source):
    source.version = "8"
    assert app.extensions["gateway"].cache.refresh() is True
    assert client.post("/predict", json=CHALLENGE_EXAMPLE).get_json()["model_version"] == "8"


def test_a_failed_refresh_keeps_serving_the_old_model(app, client, source):
    source.version, source.fail_with = "8", ConnectionError("mlflow away")
    assert app.extensions["gateway"].cache.refresh() is False
    assert client.post("/predict", json=CHALLENGE_EXAMPLE).get_json()["model_version"] == "7"


def test_explain_adds_signed_top_contributions(client, settings):
    body = client.post("/predict?explain=true", json=CHALLENGE_EXAMPLE).get_json()
    contributions = body["explanation"]
    assert len(contributions) == settings.explain_top_features
    assert all(
        isinstance(c["feature"], str) and isinstance(c["value"], float) for c in contributions
    )
    magnitudes = [abs(c["value"]) for c in contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert "explanation" not in client.post("/predict", json=CHALLENGE_EXAMPLE).get_json()


def test_explaining_more_than_the_explain_cap_is_413_naming_it(client, settings):
    over = [CHALLENGE_EXAMPLE] * (settings.max_explain_batch + 1)
    reply = client.post("/predict?explain=true", json=over)
    assert reply.status_code == 413
    assert reply.get_json()["error"] == "explain_batch_too_large"
    assert f"the limit is {settings.max_explain_batch}" in reply.get_json()["message"]
    # The same batch without explanations is answered; at the cap, explanations are too.
    assert client.post("/predict", json=over).status_code == 200
    at_cap = client.post("/predict?explain=true", json=over[:-1]).get_json()["predictions"]
    assert all(answer["explanation"] for answer in at_cap)


def test_explain_must_be_a_boolean(client):
    reply = client.post("/predict?explain=maybe", json=CHALLENGE_EXAMPLE)
    assert reply.status_code == 422
    assert reply.get_json()["fields"][0]["path"] == "?explain"


def test_explain_on_a_model_shap_cannot_explain_is_a_clear_501(settings, small_pipeline):
    from shared.modeling import CandidateSpec, build_pipeline
    from tests.unit.gateway.conftest import FakeSource

    dummy = build_pipeline(CandidateSpec("d", "dummy", "notebook"))
    dummy.fit(pd.DataFrame([CHALLENGE_EXAMPLE] * 4), ["Low", "Mid", "High", "Lux"])
    app = create_app(settings, source=FakeSource(dummy), watch_champion=False)
    app.extensions["gateway"].cache.refresh()
    reply = app.test_client().post("/predict?explain=true", json=CHALLENGE_EXAMPLE)
    assert reply.status_code == 501
    assert reply.get_json()["error"] == "explanation_unavailable"
    assert app.test_client().post("/predict", json=CHALLENGE_EXAMPLE).status_code == 200


def test_a_watching_gateway_has_its_champion_before_its_first_request(settings, source):
    # Redis is unreachable here: promotions cannot arrive, the first load must not need them.
    app = create_app(settings, source=source, watch_champion=True)
    try:
        assert app.extensions["gateway"].cache.current.version == "7"
        assert app.test_client().post("/predict", json=CHALLENGE_EXAMPLE).status_code == 200
    finally:
        app.extensions["gateway"].cache.stop()


def test_a_big_batch_predicts_with_the_configured_threads(threads_used, small_pipeline):
    model = LoadedModel("1", small_pipeline)
    big = [
        Listing.model_validate({**CHALLENGE_EXAMPLE, "id": i})
        for i in range(predicting.PARALLEL_BATCH_ROWS)
    ]

    predicting.predict_listings(model, big[:10], batch_threads=2)  # small: always one
    predicting.predict_listings(model, big, batch_threads=1)
    predicting.predict_listings(model, big)  # not configured: every core

    assert threads_used == [1, 1, os.cpu_count()]


def test_a_blend_champion_answers_a_price_and_explains_its_category_readably(settings):
    from shared.explaining import explain
    from tests.golden.fixtures import golden_model
    from tests.unit.gateway.conftest import FakeSource

    blend = golden_model("price_blend")
    every_feature = settings.model_copy(update={"explain_top_features": 20})
    app = create_app(every_feature, source=FakeSource(blend), watch_champion=False)
    app.extensions["gateway"].cache.refresh()
    reply = app.test_client().post("/predict?explain=true", json=CHALLENGE_EXAMPLE)
    assert reply.status_code == 200
    body = reply.get_json()
    low, high = body["price_interval"]
    assert low < body["estimated_price"] < high
    shown = {c["feature"]: c for c in body["explanation"]}
    assert len(shown) == 20  # every feature of the "all" set
    assert shown["neighbourhood"]["label"] == "borough"
    assert shown["neighbourhood"]["listing_value"] == "Brooklyn"  # by name, not its code
    assert shown["room_type"]["listing_value"] == CHALLENGE_EXAMPLE["room_type"]
    assert shown["midtown_km"]["label"] == "distance to Midtown (km)"
    assert shown["accommodates"]["listing_value"] == CHALLENGE_EXAMPLE["accommodates"]
    assert shown["kitchen"]["listing_value"] == pytest.approx(blend[0].flag_shares_["kitchen"])
    # The values are the blend's classifier's exact SHAP values towards the category.
    explained = explain(blend, [CHALLENGE_EXAMPLE])
    column = explained.classes.index(body["price_category"])
    for i, name in enumerate(explained.features.columns):
        assert shown[name]["value"] == pytest.approx(explained.values[0, i, column])
