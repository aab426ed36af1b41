"""Property-based tests of the prediction contract: any valid listing is answered, and any
body at all gets a JSON answer, never a 5xx; a rejected field is named."""

import json
from typing import get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from shared.contracts import CHALLENGE_EXAMPLE, Listing, Neighbourhood, RoomType
from shared.schema import LATITUDE_RANGE, LONGITUDE_RANGE, PRICE_CATEGORIES

# One app per test function, reused across examples: predictions do not change its state.
PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
flags = st.sampled_from([0, 1, True, False])
counts = st.integers(min_value=0, max_value=100)
valid_listings = st.fixed_dictionaries(
    {
        "id": st.one_of(st.integers(), st.text(min_size=1, max_size=64)),
        "accommodates": st.integers(min_value=1, max_value=100),
        "room_type": st.sampled_from(get_args(RoomType)),
        "beds": counts,
        "bedrooms": counts,
        "bathrooms": st.floats(min_value=0, max_value=50),
        "neighbourhood": st.sampled_from(get_args(Neighbourhood)),
        "latitude": st.floats(*LATITUDE_RANGE),
        "longitude": st.floats(*LONGITUDE_RANGE),
        "tv": flags,
        "elevator": flags,
        "internet": flags,
    },
    optional={
        "property_type": st.one_of(st.none(), st.text(min_size=1, max_size=100)),
        "kitchen": flags,
        "wifi": flags,
        "breakfast": st.none() | flags,
    },
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@PROPERTY
@given(listing=valid_listings)
def test_every_valid_listing_gets_a_category_and_probabilities(client, listing):
    reply = client.post("/predict", json=listing)
    assert reply.status_code == 200, reply.get_json()
    body = reply.get_json()
    assert body["id"] == listing["id"]
    assert body["price_category"] in PRICE_CATEGORIES
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-9
    assert body["price_category"] == max(body["probabilities"], key=body["probabilities"].get)


@PROPERTY
@given(field=st.sampled_from(sorted(CHALLENGE_EXAMPLE)), value=json_values)
def test_a_field_with_any_value_is_answered_or_rejected_by_name(client, field, value):
    reply = client.post("/predict", json={**CHALLENGE_EXAMPLE, field: value})
    assert reply.status_code in (200, 422), reply.get_json()
    if reply.status_code == 422:
        assert [entry["path"] for entry in reply.get_json()["fields"]] == [field]


@PROPERTY
@given(body=json_values)
def test_any_json_body_gets_a_json_answer_never_a_5xx(client, body):
    reply = client.post("/predict", json=body)
    assert 200 <= reply.status_code < 500
    answer = reply.get_json()
    if reply.status_code >= 400:
        assert answer["error"] and answer["message"]
        assert all(entry["path"] for entry in answer.get("fields", []))


@PROPERTY
@given(
    listings=st.lists(valid_listings, min_size=1, max_size=3),
    field=st.sampled_from(sorted(CHALLENGE_EXAMPLE)),
    value=json_values,
)
def test_a_batch_validated_from_its_bytes_is_what_parsing_then_validating_gives(
    listings, field, value
):
    """The gateway validates an array straight from its bytes (services.gateway.predicting):
    whatever that accepts, the standard parser and then the contract accept as the same
    fields, of the same types, to the last bit (what it refuses takes the standard way)."""
    adapter = TypeAdapter(list[Listing])
    for body in (listings, [*listings[:-1], {**listings[-1], field: value}]):
        raw = json.dumps(body).encode()
        try:
            expected = _fields(adapter.validate_python(json.loads(raw)))
        except ValidationError:
            expected = None
        try:
            from_bytes = _fields(adapter.validate_json(raw))
        except ValidationError:
            continue
        assert from_bytes == expected


def _fields(listings: list[Listing]) -> list[list[tuple[str, type, object]]]:
    return [[(k, type(v), v) for k, v in vars(listing).items()] for listing in listings]
