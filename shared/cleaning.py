"""Turn raw Inside Airbnb listings into model-ready rows, counting every row dropped."""

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

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

# "$75.00", "$1,250.00", "75": the thousands separator must be read, not cut at.
_PRICE = re.compile(r"^\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
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


@dataclass
class CleanReport:
    """What cleaning did to a raw file: the data-quality figures logged with each run."""

    rows_in: int
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    per_category: dict[str, int] = field(default_factory=dict)


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
    return float(match.group(1).replace(",", "")) if match else np.nan


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
        from_text = raw["bathrooms_text"].map(parse_bathrooms_text).astype(float)
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
        "price_at_most_10": rows["price"] <= 10,
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
    flags = raw["amenities"].map(parse_amenities)
    flags_ok = flags.notna()
    flag_frame = pd.DataFrame(
        [f if f is not None else dict.fromkeys(AMENITY_FLAGS, 0) for f in flags],
        index=raw.index,
        columns=list(AMENITY_FLAGS),
    )
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
            "price": raw["price"].map(parse_price).astype(float),
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
