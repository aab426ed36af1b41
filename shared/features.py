"""From request fields to the model's numeric matrix, in one fitted transformer.

One transformer (not a chain of pandas steps) keeps serving fast: a single listing becomes a
row of numbers in a fraction of a millisecond. What it learns (the frequent property types)
comes from the rows it is fitted on, the training split only.
"""

from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from shared.errors import ConfigError
from shared.schema import (
    AMENITY_FLAGS,
    COORDINATE_FIELDS,
    COUNT_FIELDS,
    NEIGHBOURHOODS,
    OPTIONAL_FLAGS,
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
OTHER_CATEGORY = "(other)"  # a value seen too rarely in training to have a code of its own
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


# What the transformer reads: a frame (training, MLflow) or plain records (the gateway, where
# building a one-row frame would cost more than the prediction itself).
Rows: TypeAlias = pd.DataFrame | list[dict[str, Any]]


def _values(rows: Rows, name: str) -> list[Any]:
    """A field's values, row by row; None where a row lacks it."""
    if isinstance(rows, pd.DataFrame):
        return rows[name].tolist() if name in rows.columns else [None] * len(rows)
    return [row.get(name) for row in rows]


def _column(rows: Rows, name: str) -> np.ndarray:
    """A numeric field as floats; missing values (and absent optional fields) are NaN."""
    if isinstance(rows, pd.DataFrame):
        if name not in rows.columns:
            return np.full(len(rows), np.nan)
        return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.array([np.nan if (v := row.get(name)) is None else v for row in rows], dtype=float)


class ListingFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Request fields in, numbers out: categoricals first (as codes), then numeric fields.

    Property types seen fewer than min_frequency times in training share one "other" code.
    Optional fields a request leaves out are filled as training saw them (training data always
    has them): a missing amenity flag takes its training share, a missing property type the
    most common one for the room type. Otherwise the model would meet values it never saw.
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
        self.flag_shares_ = {
            name: float(np.nanmean(_column(x, name))) if name in x else 0.0
            for name in OPTIONAL_FLAGS
        }
        self.usual_property_type_: dict[str, str] = {}
        if "property_type" in x:
            known = x.dropna(subset=["property_type"])
            for room_type, types in known.groupby("room_type")["property_type"]:
                self.usual_property_type_[str(room_type)] = str(types.mode().iloc[0])
        self.feature_names_ = [*categorical, *numeric]
        return self

    def transform(self, x: Rows) -> np.ndarray:
        categorical, numeric = feature_columns(self.feature_set)
        columns = [self._codes(x, name) for name in categorical]
        derived = location_features(_column(x, "latitude"), _column(x, "longitude"))
        for name in numeric:
            column = derived[name] if name in derived else _column(x, name)
            if name in self.flag_shares_:  # a left-out flag takes its training share
                column = np.where(np.isnan(column), self.flag_shares_[name], column)
            columns.append(column)
        return np.column_stack(columns)

    def _codes(self, x: Rows, name: str) -> np.ndarray:
        """Category codes: known values their index, others one "other" code, missing NaN.

        A left-out property type is taken as the usual one for the listing's room type."""
        categories = self.categories_[name]
        values = _values(x, name)
        if name == "property_type":
            rooms = _values(x, "room_type")
            values = [
                v if isinstance(v, str) else self.usual_property_type_.get(room)
                for v, room in zip(values, rooms, strict=True)
            ]
        other = len(categories)
        return np.array(
            [np.nan if v is None or v != v else categories.get(v, other) for v in values],
            dtype=float,
        )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(self.feature_names_, dtype=object)

    def category_names(self) -> dict[str, list[str]]:
        """Each categorical feature's values by code: position i names code i, the last
        OTHER_CATEGORY."""
        return {
            name: [*sorted(codes, key=codes.__getitem__), OTHER_CATEGORY]
            for name, codes in self.categories_.items()
            if name in feature_columns(self.feature_set)[0]
        }

    @property
    def categorical_indices(self) -> list[int]:
        """Positions of the categorical columns (for HistGradientBoosting)."""
        return list(range(len(feature_columns(self.feature_set)[0])))
