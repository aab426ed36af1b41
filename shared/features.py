"""Feature sets: which request fields a candidate reads and how they become model columns."""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import FunctionTransformer, Pipeline
from sklearn.preprocessing import OrdinalEncoder

from shared.errors import ConfigError
from shared.schema import (
    AMENITY_FLAGS,
    CATEGORICAL_FIELDS,
    COORDINATE_FIELDS,
    COUNT_FIELDS,
    MODEL_INPUTS,
)

# Times Square: the centre of the price gradient in New York.
MIDTOWN = (40.7580, -73.9855)
_KM_PER_DEGREE_LAT = 111.0
_KM_PER_DEGREE_LON = 111.0 * np.cos(np.radians(MIDTOWN[0]))

# Feature sets by name: the categorical and numeric model columns each reads.
FEATURE_SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # The notebook's five features, exactly.
    "notebook": (("neighbourhood", "room_type"), ("accommodates", "bathrooms", "bedrooms")),
    # Every request field, plus distance and bearing from Midtown.
    "all": (
        ("neighbourhood", "room_type", "property_type"),
        (
            *COUNT_FIELDS,
            *COORDINATE_FIELDS,
            *AMENITY_FLAGS,
            "midtown_km",
            "midtown_dx",
            "midtown_dy",
        ),
    ),
}


def add_location_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Add distance (km) and east/north offsets from Midtown; reads only the row itself."""
    out = frame.copy()
    dy = (out["latitude"].astype(float) - MIDTOWN[0]) * _KM_PER_DEGREE_LAT
    dx = (out["longitude"].astype(float) - MIDTOWN[1]) * _KM_PER_DEGREE_LON
    out["midtown_dx"], out["midtown_dy"] = dx, dy
    out["midtown_km"] = np.hypot(dx, dy)
    return out


def ensure_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Give absent optional inputs (property_type, some flags) a missing value, not a KeyError.

    Categoricals become plain object columns, so the encoder sees the same kind of column
    whether a field was sent, left out (all missing) or read from Parquet as strings.
    """
    out = frame.copy()
    for column in MODEL_INPUTS:
        if column not in out.columns:
            out[column] = np.nan
    for column in CATEGORICAL_FIELDS:
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


def feature_columns(feature_set: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (categorical, numeric) columns of a named feature set."""
    try:
        return FEATURE_SETS[feature_set]
    except KeyError:
        raise ConfigError(
            f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}"
        ) from None


def build_preprocessor(feature_set: str) -> Pipeline:
    """Request fields in, numeric matrix out: categoricals first (ordinal codes), then numbers."""
    categorical, numeric = feature_columns(feature_set)
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=-1,
        encoded_missing_value=-1,
        min_frequency=20,
    )
    columns = ColumnTransformer(
        [("categorical", encoder, list(categorical)), ("numeric", "passthrough", list(numeric))],
        verbose_feature_names_out=False,
    )
    steps: list[tuple[str, object]] = [("inputs", FunctionTransformer(ensure_inputs))]
    if any(c.startswith("midtown_") for c in numeric):
        steps.append(("location", FunctionTransformer(add_location_features)))
    steps.append(("columns", columns))
    return Pipeline(steps)
