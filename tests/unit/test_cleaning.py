import json

import numpy as np
import pandas as pd
import pytest

from shared.cleaning import (
    categorize_prices,
    clean_listings,
    parse_amenities,
    parse_bathrooms_text,
    parse_price,
)
from shared.errors import DataError
from tests.unit.listings import raw_frame


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$75.00", 75.0),
        ("$1,250.00", 1250.0),
        ("$12,345,678.00", 12345678.0),
        ("$10.00", 10.0),
        ("75", 75.0),
        (" $90.50 ", 90.0),
        (120.0, 120.0),
    ],
)
def test_parse_price_reads_thousands_separators(text, expected):
    assert parse_price(text) == expected


@pytest.mark.parametrize("text", ["free", "$", "", "$1,25.00", "€75", None, float("nan")])
def test_parse_price_rejects_non_prices(text):
    assert np.isnan(parse_price(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 bath", 1.0),
        ("1.5 baths", 1.5),
        ("0 baths", 0.0),
        ("1 shared bath", 1.0),
        ("2.5 shared baths", 2.5),
        ("1 private bath", 1.0),
        ("Half-bath", 0.5),
        ("Shared half-bath", 0.5),
        ("Private half-bath", 0.5),
    ],
)
def test_parse_bathrooms_text(text, expected):
    assert parse_bathrooms_text(text) == expected


@pytest.mark.parametrize("text", ["many baths", "bath", "", None])
def test_parse_bathrooms_text_rejects_unreadable(text):
    assert np.isnan(parse_bathrooms_text(text))


@pytest.mark.parametrize(
    ("names", "expected_on"),
    [
        (["TV", "Wifi"], {"tv", "wifi"}),
        (['55" HDTV with Netflix', "Central air conditioning"], {"tv", "air_conditioning"}),
        (["Kitchenette", "Elevator", "Breakfast"], {"elevator", "breakfast"}),
        (["Internet", "Heating", "Kitchen"], {"internet", "heating", "kitchen"}),
        ([], set()),
    ],
)
def test_parse_amenities_sets_flags(names, expected_on):
    flags = parse_amenities(json.dumps(names))
    assert flags is not None
    assert {name for name, on in flags.items() if on} == expected_on


@pytest.mark.parametrize("text", ["not json", '{"TV": 1}', "[1, 2]", None])
def test_parse_amenities_rejects_non_lists(text):
    assert parse_amenities(text) is None


def test_categorize_prices_uses_right_inclusive_bins():
    prices = pd.Series([10.01, 90, 90.01, 180, 180.01, 400, 400.01, 1250])
    assert list(categorize_prices(prices)) == [
        "Low",
        "Low",
        "Mid",
        "Mid",
        "High",
        "High",
        "Lux",
        "Lux",
    ]


def test_clean_keeps_good_rows_and_ignores_extra_columns():
    clean, report = clean_listings(raw_frame({}, {"price": "$1,250.00"}))
    assert report.rows_in == report.rows_out == 2
    assert list(clean["price_category"]) == ["High", "Lux"]
    assert clean.loc[0, "bathrooms"] == 1.5
    assert clean.loc[0, "neighbourhood"] == "Brooklyn"
    assert "host_name" not in clean.columns
    assert report.per_category == {"Low": 0, "Mid": 0, "High": 1, "Lux": 1}


def test_clean_prefers_filled_bathrooms_column():
    clean, _ = clean_listings(raw_frame({"bathrooms": 3.0, "bathrooms_text": "1 bath"}))
    assert clean.loc[0, "bathrooms"] == 3.0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"price": "$10.00"}, "price_at_most_10"),
        ({"price": "call me"}, "unparseable_price"),
        ({"price": None}, "missing_price"),
        ({"bathrooms_text": "lots of baths"}, "unparseable_bathrooms"),
        ({"bathrooms_text": None}, "missing_bathrooms"),
        ({"amenities": "{broken"}, "unparseable_amenities"),
        ({"bedrooms": None}, "missing_bedrooms"),
        ({"beds": None}, "missing_beds"),
        ({"latitude": None}, "missing_latitude"),
        ({"neighbourhood_group_cleansed": "Atlantis"}, "unknown_neighbourhood"),
        ({"room_type": "Castle"}, "unknown_room_type"),
        ({"latitude": 34.05, "longitude": -118.24}, "outside_new_york"),
        ({"accommodates": 0}, "negative_count"),
    ],
)
def test_clean_drops_bad_rows_and_counts_the_reason(change, reason):
    clean, report = clean_listings(raw_frame({}, change))
    assert report.rows_out == len(clean) == 1
    assert report.dropped == {reason: 1}


def test_clean_names_every_missing_column():
    raw = raw_frame().drop(columns=["price", "amenities", "bathrooms", "bathrooms_text"])
    with pytest.raises(DataError) as error:
        clean_listings(raw)
    message = str(error.value)
    assert "price" in message
    assert "amenities" in message
    assert "bathrooms or bathrooms_text" in message


def test_clean_rejects_a_file_with_no_rows():
    with pytest.raises(DataError, match="no rows"):
        clean_listings(raw_frame().iloc[0:0])


def test_clean_rejects_a_file_with_no_usable_row():
    with pytest.raises(DataError, match="no usable row"):
        clean_listings(raw_frame({"price": "$5.00"}, {"price": "free"}))
