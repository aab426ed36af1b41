import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.cleaning import (
    AMENITY_FLAGS,
    amenity_flags,
    categorize_prices,
    clean_listings,
    parse_amenities,
    parse_bathroom_texts,
    parse_bathrooms_text,
    parse_price,
    parse_prices,
)
from shared.errors import DataError
from shared.schema import PRICE_BIN_EDGES, PRICE_CATEGORIES
from tests.unit.listings import raw_frame


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$75.00", 75.0),
        ("$1,250.00", 1250.0),
        ("$12,345,678.00", 12345678.0),
        ("$10.00", 10.0),
        ("75", 75.0),
        (" $90.50 ", 90.5),
        ("$1,250.75", 1250.75),
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


# Names built from the patterns' words and the characters that could trip a column-wide search
# up: quotes, backslashes, commas, control characters, non-ASCII letters, word boundaries.
_NAME_PARTS = st.sampled_from(
    ["TV", "hdtv", "Wifi", "wi-fi", "Internet", "ethernet", "air conditioning", "AC unit",
     "Kitchen", "kitchenette", "Heating", "Elevator", "Breakfast", " ", ",", '"', "\\", "\n",
     "\x00", "\x7f", "é", "tvé", "Ünit", "[", "]", "55\" ", "-", "_"]
)  # fmt: skip
_NAMES = st.lists(st.lists(_NAME_PARTS, max_size=4).map("".join), max_size=6)
_AMENITY_VALUES = st.one_of(
    _NAMES.map(json.dumps),  # escapes non-ASCII and control characters
    _NAMES.map(lambda names: json.dumps(names, ensure_ascii=False)),  # keeps them raw
    _NAMES.map(lambda names: "[" + ", ".join(f'"{n}"' for n in names) + "]"),  # unescaped
    _NAMES.map(lambda names: " \n[ " + ",".join(f'"{n}"' for n in names) + " ]\t"),
    st.text(max_size=30),
    st.sampled_from([None, np.nan, 1.5, "[1, 2]", '["a", 1]', "[", "{}", '["TV"']),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_AMENITY_VALUES, min_size=1, max_size=12), st.sampled_from(["str", "object"]))
def test_amenity_flags_answer_as_parsing_each_row_does(values, dtype):
    column = pd.Series(values, dtype=dtype if dtype == "object" else None).astype(dtype)
    flags, readable = amenity_flags(column)
    for position, value in enumerate(values):
        parsed = parse_amenities(column.iloc[position])
        assert readable.iloc[position] == (parsed is not None), value
        expected = [parsed[flag] for flag in AMENITY_FLAGS] if parsed else [0] * 8
        assert list(flags.iloc[position]) == expected, value


_TEXT_PARTS = st.sampled_from(
    ["$", "1", "25", "250", ",", ".", "00", "5", " ", "\t", "\n", "\x0b", "\x1c", "\u00a0", "٣",
     "bath", "baths", "Baths", "shared ", "Private ", "half-bath", "Half-Bath", "ſ", "K", "-"]
)  # fmt: skip
_TEXTS = st.one_of(st.lists(_TEXT_PARTS, max_size=6).map("".join), st.text(max_size=12), st.none())


@settings(max_examples=300, deadline=None)
@given(st.lists(_TEXTS, min_size=1, max_size=12), st.sampled_from(["str", "object"]))
@example(
    ["$1,250.50", "$75.99", "75", "$1,2", "$", "1 bath", "1.5 Baths", "2 private baths"], "str"
)
@example(["Half-bath", "Shared half-bath", " 3 baths", "3  baths", "3 baths\n", None], "str")
def test_column_wide_parsing_answers_as_parsing_each_value_does(values, dtype):
    column = pd.Series(values, dtype=dtype)
    for parse_column, parse_one in (
        (parse_prices, parse_price),
        (parse_bathroom_texts, parse_bathrooms_text),
    ):
        expected = pd.Series([parse_one(v) for v in column], dtype=float)
        pd.testing.assert_series_equal(parse_column(column), expected, check_names=False)


def _category_by_definition(price: float) -> str:
    """The category the bins define: the first whose (inclusive) upper edge holds the price."""
    for edge, category in zip(PRICE_BIN_EDGES, PRICE_CATEGORIES, strict=False):
        if price <= edge:
            return category
    return PRICE_CATEGORIES[-1]


@pytest.mark.parametrize("edge", PRICE_BIN_EDGES)
@pytest.mark.parametrize("cents", ["00", "01", "50", "99"])
def test_a_raw_price_with_cents_lands_in_the_bin_its_exact_value_defines(edge, cents):
    for whole in (int(edge) - 1, int(edge)):
        text = f"${whole:,}.{cents}"
        exact = whole + int(cents) / 100
        clean, report = clean_listings(raw_frame({"price": text}))
        assert report.rows_out == 1, text
        assert clean.loc[0, "price"] == exact
        assert clean.loc[0, "price_category"] == _category_by_definition(exact), text


@pytest.mark.parametrize(("text", "kept"), [("$10.00", False), ("$10.01", True), ("$10.50", True)])
def test_only_prices_of_10_or_less_are_dropped_cents_counted(text, kept):
    clean, report = clean_listings(raw_frame({"price": text}, {}))
    assert (len(clean) == 2) is kept
    assert report.dropped == ({} if kept else {"price_at_most_10": 1})
    if kept:
        assert clean.loc[0, "price_category"] == "Low"


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
