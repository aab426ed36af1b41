"""Each field of the challenge's example wrong in turn: always a 422 naming it, never a 500."""

import pytest

from shared.contracts import CHALLENGE_EXAMPLE

NUMERIC = {  # field: (a value below its range, a value above it)
    "accommodates": (0, 101),
    "beds": (-1, 101),
    "bedrooms": (-1, 101),
    "bathrooms": (-0.5, 51),
    "latitude": (40.0, 41.5),
    "longitude": (-75.0, -73.0),
}
CATEGORICAL = ("neighbourhood", "room_type")
FLAGS = ("tv", "elevator", "internet")


def _cases():
    for field in CHALLENGE_EXAMPLE:
        yield pytest.param(field, None, id=f"{field}-missing")
    for field, (low, high) in NUMERIC.items():
        yield pytest.param(field, "many", id=f"{field}-wrong-type")
        yield pytest.param(field, low, id=f"{field}-too-low")
        yield pytest.param(field, high, id=f"{field}-too-high")
    for field in CATEGORICAL:
        yield pytest.param(field, "Somewhere else", id=f"{field}-unknown-category")
        yield pytest.param(field, 3, id=f"{field}-wrong-type")
    for field in FLAGS:
        yield pytest.param(field, "yes", id=f"{field}-wrong-type")
        yield pytest.param(field, 2, id=f"{field}-out-of-range")
    yield pytest.param("id", [1], id="id-wrong-type")
    yield pytest.param("id", "", id="id-empty")


@pytest.mark.parametrize(("field", "value"), list(_cases()))
def test_each_field_wrong_in_turn_is_named(client, field, value):
    listing = dict(CHALLENGE_EXAMPLE)
    if value is None:
        del listing[field]
    else:
        listing[field] = value
    reply = client.post("/predict", json=listing)
    assert reply.status_code == 422
    assert [entry["path"] for entry in reply.get_json()["fields"]] == [field]


@pytest.mark.parametrize("extra", ["bedroom", "price", "Neighbourhood"])
def test_unknown_extra_fields_are_rejected(client, extra):
    reply = client.post("/predict", json={**CHALLENGE_EXAMPLE, extra: 1})
    assert reply.status_code == 422
    assert reply.get_json()["fields"] == [
        {"path": extra, "message": "unknown field (check its spelling)"}
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [("bathrooms", 1.5), ("id", "listing-abc"), ("tv", True), ("latitude", 40.5), ("beds", 0)],
)
def test_valid_variations_are_accepted(client, field, value):
    assert client.post("/predict", json={**CHALLENGE_EXAMPLE, field: value}).status_code == 200


def test_readiness_names_what_is_failing(client):
    reply = client.get("/health/ready")  # the test settings point Redis and MLflow at nothing
    assert reply.status_code == 503
    body = reply.get_json()
    assert body["failing"] == ["redis", "mlflow"]
    assert body["checks"]["champion"] is True
