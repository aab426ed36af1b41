"""Turn raw Inside Airbnb listings into model-ready rows, counting every row dropped."""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shared.errors import DataError
from shared.schema import (
    AMENITY_FLAGS,
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    NEIGHBOURHOODS,
    PRICE_BIN_EDGES,
    PRICE_CATEGORIES,
    ROOM_TYPES,
    TARGET,
)

# Prices at most this are placeholders ("$0", "$1"), not what a night costs.
MIN_PRICE = 10
# Raw columns the cleaning reads; anything else in a dump is ignored.
REQUIRED_RAW_COLUMNS = (
    "id",
    "neighbourhood_group_cleansed",
    "latitude",
    "longitude",
    "room_type",
    "accommodates",
    "bedrooms",
    "beds",
    "amenities",
    "price",
)
OPTIONAL_RAW_COLUMNS = ("property_type", "bathrooms", "bathrooms_text")

# "$75.00", "$1,250.00", "75", "$90.50": the thousands separator must be read, not cut at,
# and the cents kept (90.50 is Mid, 90 is Low).
_PRICE = re.compile(r"^\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?$")
# "1 bath", "1.5 baths", "2 shared baths", "1 private bath"; half-baths handled apart.
_BATHS = re.compile(r"^(\d+(?:\.\d+)?)\s+(?:shared\s+|private\s+)?baths?$", re.IGNORECASE)
_HALF_BATH = re.compile(r"^(?:shared\s+|private\s+)?half-bath$", re.IGNORECASE)
# Amenity names vary between dumps ("HDTV with Netflix", "Central air conditioning").
_AMENITY_PATTERNS = {
    "tv": re.compile(r"\b(?:hd)?tv\b"),
    "internet": re.compile(r"\binternet\b|\bethernet\b"),
    "air_conditioning": re.compile(r"air conditioning|\bac unit\b"),
    "kitchen": re.compile(r"\bkitchen\b"),
    "heating": re.compile(r"\bheating\b"),
    "wifi": re.compile(r"\bwi-?fi\b"),
    "elevator": re.compile(r"\belevator\b"),
    "breakfast": re.compile(r"\bbreakfast\b"),
}
# Amenities as dumps nearly always write them: a JSON list of strings with no escapes and no
# control characters. On ASCII rows of this shape the patterns above mean the same to pandas'
# column-wide string search (and to pyarrow's engine beneath it) as to parse_amenities, and
# cannot match across two names (none can match a quote), so such rows are searched
# column-wide; every other row is parsed on its own.
_JSON_SPACE = r"[ \t\n\r]*"
_PLAIN_STRING = r'"[^"\\\x00-\x1f]*"'
_PLAIN_AMENITY_LIST = (
    rf"{_JSON_SPACE}\[{_JSON_SPACE}"
    rf"(?:{_PLAIN_STRING}{_JSON_SPACE}(?:,{_JSON_SPACE}{_PLAIN_STRING}{_JSON_SPACE})*)?"
    rf"\]{_JSON_SPACE}"
)
# The plain forms of prices and bathroom texts, ASCII with single spaces: on these, a
# column-wide extraction answers as parse_price / parse_bathrooms_text would.
_PLAIN_PRICE = r"^\$?(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?P<cents>\.[0-9]+)?$"
_PLAIN_BATHS = (
    r"^(?i:(?P<count>[0-9]+(?:\.[0-9]+)?) (?:shared |private )?baths?"
    r"|(?:shared |private )?(?P<half>half)-bath)$"
)


@dataclass
class CleanReport:
    """What cleaning did to a raw file: the data-quality figures logged with each run."""

    rows_in: int
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    per_category: dict[str, int] = field(default_factory=dict)
    # Rows of rows_out that are realised prices (POST /feedback), not the dump's listings.
    feedback_rows: int = 0


def check_columns(raw: pd.DataFrame) -> None:
    """Fail with every missing column named, and on a file with no rows."""
    missing = [c for c in REQUIRED_RAW_COLUMNS if c not in raw.columns]
    if "bathrooms" not in raw.columns and "bathrooms_text" not in raw.columns:
        missing.append("bathrooms or bathrooms_text")
    if missing:
        raise DataError(f"raw listings lack required column(s): {', '.join(missing)}")
    if raw.empty:
        raise DataError("raw listings file has a header but no rows")


def parse_price(value: Any) -> float:
    """Read "$1,250.00" as 1250.0; NaN when the text is not a price."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return np.nan
    match = _PRICE.match(value.strip())
    if match is None:
        return np.nan
    return float(match.group(1).replace(",", "") + (match.group(2) or ""))


def parse_bathrooms_text(value: Any) -> float:
    """Read "1.5 baths", "1 shared bath", "Half-bath" as a count; NaN when unreadable."""
    if not isinstance(value, str):
        return np.nan
    text = value.strip()
    if _HALF_BATH.match(text):
        return 0.5
    match = _BATHS.match(text)
    return float(match.group(1)) if match else np.nan


def parse_amenities(value: Any) -> dict[str, int] | None:
    """Turn a JSON list of amenity names into 0/1 flags; None when it is not such a list."""
    if not isinstance(value, str):
        return None
    try:
        names = json.loads(value)
    except json.JSONDecodeError:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    present = frozenset().union(*map(_amenity_flags, names))
    return {flag: int(flag in present) for flag in _AMENITY_PATTERNS}


@lru_cache(maxsize=1 << 16)
def _amenity_flags(name: str) -> frozenset[str]:
    """The flags one amenity name sets. Dumps repeat the same few thousand names across
    listings, so each is matched against the patterns once, not once per listing."""
    lowered = name.lower()
    return frozenset(flag for flag, pattern in _AMENITY_PATTERNS.items() if pattern.search(lowered))


def amenity_flags(amenities: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """0/1 amenity flags per listing (all 0 when unreadable) and whether its amenities could
    be read; the same answers as parse_amenities row by row, found column-wide where it can."""
    text = amenities.astype("string")
    plain = (text.str.isascii() & text.str.fullmatch(_PLAIN_AMENITY_LIST)).fillna(False)
    plain_rows = plain.to_numpy(dtype=bool)
    lowered = text.where(plain, "").str.lower()
    values = np.zeros((len(amenities), len(AMENITY_FLAGS)), dtype=np.int64)
    for column, flag in enumerate(AMENITY_FLAGS):
        found = lowered.str.contains(_AMENITY_PATTERNS[flag].pattern, regex=True)
        values[:, column] = found.fillna(False).to_numpy(dtype=bool)
    readable = plain_rows.copy()
    for position in np.flatnonzero(~plain_rows):
        parsed = parse_amenities(amenities.iloc[position])
        if parsed is not None:
            values[position] = [parsed[flag] for flag in AMENITY_FLAGS]
            readable[position] = True
    return (
        pd.DataFrame(values, index=amenities.index, columns=list(AMENITY_FLAGS)),
        pd.Series(readable, index=amenities.index),
    )


def _plain_matches(values: pd.Series, pattern: str) -> pd.DataFrame | None:
    """pattern's named groups on each ASCII text value it matches (missing elsewhere), found
    by pyarrow in one pass over the column; None unless the column holds text only."""
    if not pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
        return None
    text = pa.array(values.astype("string"), type=pa.string(), from_pandas=True)
    plain = pc.if_else(pc.string_is_ascii(text), text, pa.scalar(None, pa.string()))
    found = pc.extract_regex(plain, pattern=pattern)
    fields = {name: pc.struct_field(found, name).to_pandas() for name in found.type.names}
    return pd.DataFrame(fields).set_axis(values.index)


def _parsed_column(
    values: pd.Series, plain: pd.Series | None, parse_one: Callable[[Any], float]
) -> pd.Series:
    """plain's numbers where given, parse_one on each remaining value."""
    result = np.full(len(values), np.nan)
    done = np.zeros(len(values), dtype=bool)
    if plain is not None:
        done = plain.notna().to_numpy(dtype=bool)
        result[done] = plain[done].astype(float).to_numpy()
    for position in np.flatnonzero(~done):
        result[position] = parse_one(values.iloc[position])
    return pd.Series(result, index=values.index)


def parse_prices(prices: pd.Series) -> pd.Series:
    """parse_price on every value, column-wide on the plain "$1,250.00" form."""
    groups = _plain_matches(prices, _PLAIN_PRICE)
    if groups is None:
        return _parsed_column(prices, None, parse_price)
    # pyarrow leaves an optional group that did not take part empty, not missing.
    plain = groups["whole"].str.replace(",", "", regex=False) + groups["cents"].fillna("")
    return _parsed_column(prices, plain, parse_price)


def parse_bathroom_texts(texts: pd.Series) -> pd.Series:
    """parse_bathrooms_text on every value, column-wide on the plain "1.5 baths" forms."""
    groups = _plain_matches(texts, _PLAIN_BATHS)
    if groups is None:
        return _parsed_column(texts, None, parse_bathrooms_text)
    # pyarrow leaves the group of the alternative that did not match empty, not missing.
    plain = groups["count"].mask(groups["half"].fillna("") != "", "0.5")
    return _parsed_column(texts, plain, parse_bathrooms_text)


def categorize_prices(prices: pd.Series) -> pd.Series:
    """Bin nightly prices into Low / Mid / High / Lux (right-inclusive edges)."""
    edges = [-np.inf, *PRICE_BIN_EDGES, np.inf]
    return pd.cut(prices, bins=edges, labels=list(PRICE_CATEGORIES), right=True).astype(str)


def _bathrooms(raw: pd.DataFrame) -> pd.Series:
    """Bathrooms from the numeric column where filled, else from bathrooms_text."""
    numeric = pd.Series(np.nan, index=raw.index)
    if "bathrooms" in raw.columns:
        numeric = pd.to_numeric(raw["bathrooms"], errors="coerce")
    if "bathrooms_text" in raw.columns:
        from_text = parse_bathroom_texts(raw["bathrooms_text"])
        numeric = numeric.fillna(from_text)
    return numeric


def _reasons(raw: pd.DataFrame, rows: pd.DataFrame, flags_ok: pd.Series) -> dict[str, pd.Series]:
    """Boolean masks of rows to drop, in the order a row's reason is chosen."""
    price_text = raw["price"]
    bath_text_given = (
        raw["bathrooms_text"].notna()
        if "bathrooms_text" in raw.columns
        else pd.Series(False, index=raw.index)
    )
    reasons = {
        # A listing twice in one dump would be counted twice, and could land on both sides
        # of the train/test split: keep its first row.
        "duplicate_id": raw["id"].notna() & raw["id"].duplicated(keep="first"),
        "missing_price": price_text.isna(),
        "unparseable_price": price_text.notna() & rows["price"].isna(),
        "price_at_most_10": rows["price"] <= MIN_PRICE,
        "unparseable_bathrooms": bath_text_given & rows["bathrooms"].isna(),
        "unparseable_amenities": ~flags_ok,
        "unknown_neighbourhood": rows["neighbourhood"].notna()
        & ~rows["neighbourhood"].isin(NEIGHBOURHOODS),
        "unknown_room_type": rows["room_type"].notna() & ~rows["room_type"].isin(ROOM_TYPES),
        "outside_new_york": ~rows["latitude"].between(*LATITUDE_RANGE) & rows["latitude"].notna()
        | ~rows["longitude"].between(*LONGITUDE_RANGE) & rows["longitude"].notna(),
    }
    for column in (
        "neighbourhood",
        "room_type",
        "accommodates",
        "bathrooms",
        "bedrooms",
        "beds",
        "latitude",
        "longitude",
    ):
        reasons[f"missing_{column}"] = rows[column].isna()
    reasons["negative_count"] = (rows[["bathrooms", "bedrooms", "beds"]] < 0).any(axis=1) | (
        rows["accommodates"] < 1
    )
    return reasons


def clean_listings(raw: pd.DataFrame) -> tuple[pd.DataFrame, CleanReport]:
    """Clean raw listings into model inputs plus price and category, with a drop report."""
    check_columns(raw)
    flag_frame, flags_ok = amenity_flags(raw["amenities"])
    rows = pd.DataFrame(
        {
            "id": raw["id"],
            "neighbourhood": raw["neighbourhood_group_cleansed"],
            "room_type": raw["room_type"],
            "property_type": raw.get("property_type"),
            "accommodates": pd.to_numeric(raw["accommodates"], errors="coerce"),
            "bathrooms": _bathrooms(raw),
            "bedrooms": pd.to_numeric(raw["bedrooms"], errors="coerce"),
            "beds": pd.to_numeric(raw["beds"], errors="coerce"),
            "latitude": pd.to_numeric(raw["latitude"], errors="coerce"),
            "longitude": pd.to_numeric(raw["longitude"], errors="coerce"),
            "price": parse_prices(raw["price"]),
        },
        index=raw.index,
    ).join(flag_frame)

    report = CleanReport(rows_in=len(raw))
    keep = pd.Series(True, index=raw.index)
    for reason, mask in _reasons(raw, rows, flags_ok).items():
        dropped_here = keep & mask.fillna(False).astype(bool)
        if dropped_here.any():
            report.dropped[reason] = int(dropped_here.sum())
        keep &= ~dropped_here

    clean = rows[keep].reset_index(drop=True)
    if clean.empty:
        raise DataError(f"no usable row in raw listings: dropped {report.dropped}")
    clean[TARGET] = categorize_prices(clean["price"])
    clean["property_type"] = clean["property_type"].astype("string")
    report.rows_out = len(clean)
    counts = clean[TARGET].value_counts()
    report.per_category = {c: int(counts.get(c, 0)) for c in PRICE_CATEGORIES}
    return clean, report
