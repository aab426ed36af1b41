"""From request fields to the model's numeric matrix, in one fitted transformer.

One transformer (not a chain of pandas steps) keeps serving fast: a single listing becomes a
row of numbers in a fraction of a millisecond. What it learns (the frequent property types)
comes from the rows it is fitted on, the training split only.
"""

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from shared.errors import ConfigError
from shared.schema import (
    AMENITY_FLAGS,
    COORDINATE_FIELDS,
    COUNT_FIELDS,
    NEIGHBOURHOODS,
    ROOM_TYPES,
)

# Times Square: the centre of the price gradient in New York.
MIDTOWN = (40.7580, -73.9855)
_KM_PER_DEGREE_LAT = 111.0
_KM_PER_DEGREE_LON = 111.0 * float(np.cos(np.radians(MIDTOWN[0])))
LOCATION_FIELDS = ("midtown_km", "midtown_dx", "midtown_dy")

# Feature sets by name: the categorical and the numeric request-derived columns each reads.
FEATURE_SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # The notebook's five features, exactly.
    "notebook": (("neighbourhood", "room_type"), ("accommodates", "bathrooms", "bedrooms")),
    # Every request field, plus distance and bearing from Midtown.
    "all": (
        ("neighbourhood", "room_type", "property_type"),
        (*COUNT_FIELDS, *COORDINATE_FIELDS, *AMENITY_FLAGS, *LOCATION_FIELDS),
    ),
}
# Categories known before any data is seen; property types are learned from the data.
_FIXED_CATEGORIES = {"neighbourhood": NEIGHBOURHOODS, "room_type": ROOM_TYPES}


def feature_columns(feature_set: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (categorical, numeric) columns of a named feature set."""
    try:
        return FEATURE_SETS[feature_set]
    except KeyError:
        raise ConfigError(
            f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}"
        ) from None


def location_features(latitude: np.ndarray, longitude: np.ndarray) -> dict[str, np.ndarray]:
    """Distance (km) and east/north offsets from Midtown; reads only the row itself."""
    dy = (latitude - MIDTOWN[0]) * _KM_PER_DEGREE_LAT
    dx = (longitude - MIDTOWN[1]) * _KM_PER_DEGREE_LON
    return {"midtown_km": np.hypot(dx, dy), "midtown_dx": dx, "midtown_dy": dy}


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column as floats; an absent optional field is all missing."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _codes(frame: pd.DataFrame, name: str, categories: dict[str, int], other: float) -> np.ndarray:
    """Category codes: known values their index, others `other`, missing values NaN."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    values = frame[name].tolist()
    return np.array(
        [np.nan if v is None or v != v else categories.get(v, other) for v in values], dtype=float
    )


class ListingFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Request fields in, numbers out: categoricals first (as codes), then numeric fields.

    Property types seen fewer than min_frequency times in training share one "other" code;
    a missing optional field is NaN, which the tree models handle natively.
    """

    def __init__(self, feature_set: str = "all", min_frequency: int = 20) -> None:
        self.feature_set = feature_set
        self.min_frequency = min_frequency

    def fit(self, x: pd.DataFrame, y: Any = None) -> "ListingFeatures":
        categorical, numeric = feature_columns(self.feature_set)
        self.categories_: dict[str, dict[str, int]] = {
            name: {value: i for i, value in enumerate(values)}
            for name, values in _FIXED_CATEGORIES.items()
        }
        if "property_type" in categorical:
            counts = x["property_type"].value_counts() if "property_type" in x else pd.Series()
            frequent = sorted(str(v) for v in counts[counts >= self.min_frequency].index)
            self.categories_["property_type"] = {value: i for i, value in enumerate(frequent)}
        self.feature_names_ = [*categorical, *numeric]
        return self

    def transform(self, x: pd.DataFrame) -> np.ndarray:
        categorical, numeric = feature_columns(self.feature_set)
        columns = [
            _codes(x, name, self.categories_[name], other=len(self.categories_[name]))
            for name in categorical
        ]
        derived = location_features(_column(x, "latitude"), _column(x, "longitude"))
        columns += [derived[name] if name in derived else _column(x, name) for name in numeric]
        return np.column_stack(columns)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(self.feature_names_, dtype=object)

    @property
    def categorical_indices(self) -> list[int]:
        """Positions of the categorical columns (for HistGradientBoosting)."""
        return list(range(len(feature_columns(self.feature_set)[0])))
