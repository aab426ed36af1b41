"""Drift: how far the listings the gateway answered have moved from the champion's training data.

Pure: a reference profile of the training data in (a JSON document, logged beside the model),
a window of logged predictions in, a report out. Per field, the population stability index
PSI = sum((actual - expected) * ln(actual / expected)) over bins: numeric fields binned at the
training data's quantiles, categorical fields (and amenity flags) by value. Beside it: the
predicted categories' mix against the training labels', and the share of listings carrying a
value the model never saw. A field a request may leave out (property type, most flags) is
compared over the listings that gave it.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, Field, ValidationError

from shared.errors import ConfigError
from shared.schema import (
    AMENITY_FLAGS,
    CATEGORICAL_FIELDS,
    COORDINATE_FIELDS,
    COUNT_FIELDS,
    PRICE_CATEGORIES,
)

NUMERIC_FIELDS = (*COUNT_FIELDS, *COORDINATE_FIELDS)
VALUE_FIELDS = (*CATEGORICAL_FIELDS, *AMENITY_FLAGS)  # compared value by value
# A bin the training data never filled still gets this share, so that PSI stays finite (and
# large) when requests fill it: the usual floor.
EMPTY_SHARE = 1e-4
# Values rarer than this in training are one bin for PSI, with values never seen: dozens of
# rare property types would otherwise each add sampling noise (a window of 300 listings drawn
# from the training data itself scored PSI 0.2 on property type alone).
RARE_SHARE = 0.01
OTHER = "(other)"
# Numeric fields are binned at the training data's deciles (fixed when the reference is logged
# beside the model, so one constant rather than a setting of the check).
BINS = 10


# The monitor's parameters. Their values live in config/monitor.yaml only, every key required
# (a missing one is a ConfigError naming it): one place to read, explain and change them.
class Thresholds(BaseModel):
    feature_psi: float = Field(gt=0)
    category_mix_psi: float = Field(gt=0)
    unseen_share: float = Field(gt=0, le=1)


class DriftParams(BaseModel):
    window_hours: float = Field(gt=0)
    min_listings: int = Field(ge=1)
    thresholds: Thresholds
    retrain: bool
    retrain_every_hours: float = Field(gt=0)


class FeedbackParams(BaseModel):
    window_days: float = Field(gt=0)


class MonitorParams(BaseModel):
    drift: DriftParams
    feedback: FeedbackParams


def load_monitor_params(path: Path) -> MonitorParams:
    """Read and validate config/monitor.yaml; a bad file is a ConfigError naming the problem."""
    try:
        return MonitorParams.model_validate(yaml.safe_load(path.read_text()) or {})
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise ConfigError(f"invalid monitor parameters in {path}: {error}") from error


def _as_text(values: pd.Series) -> pd.Series:
    """Values compared as text: 1 and 1.0 are the same flag, missing ones are dropped."""
    present = values.dropna()
    if pd.api.types.is_numeric_dtype(present):
        present = present.astype("int64")
    return present.astype(str)


def _shares(counts: pd.Series) -> dict[str, float]:
    total = counts.sum()
    return {str(key): float(count / total) for key, count in counts.items()} if total else {}


def _bin_shares(values: pd.Series, edges: list[float]) -> list[float]:
    """Shares of values per bin: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    present = values.dropna().to_numpy(dtype=float)
    if not len(present):
        return []
    bins = np.searchsorted(np.asarray(edges), present, side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return [float(c) for c in counts / len(present)]


def reference_profile(
    x_train: pd.DataFrame, y_train: pd.Series, bins: int = BINS
) -> dict[str, Any]:
    """What a drift check compares with: the training data's bins and shares."""
    numeric = {}
    for name in NUMERIC_FIELDS:
        quantiles = np.quantile(x_train[name].dropna(), np.arange(1, bins) / bins)
        edges = [float(edge) for edge in np.unique(quantiles)]
        numeric[name] = {"edges": edges, "shares": _bin_shares(x_train[name], edges)}
    values = {name: _shares(_as_text(x_train[name]).value_counts()) for name in VALUE_FIELDS}
    labels = y_train.value_counts()
    return {
        "rows": len(x_train),
        "numeric": numeric,
        "values": values,
        "category_mix": {c: float(labels.get(c, 0) / len(y_train)) for c in PRICE_CATEGORIES},
    }


def psi(expected: Mapping[str, float], actual: Mapping[str, float]) -> float:
    """Population stability index of two share maps over the union of their keys."""
    total = 0.0
    for key in set(expected) | set(actual):
        e = max(expected.get(key, 0.0), EMPTY_SHARE)
        a = max(actual.get(key, 0.0), EMPTY_SHARE)
        total += (a - e) * np.log(a / e)
    return float(total)


def _indexed(shares: list[float]) -> dict[str, float]:
    return {str(i): share for i, share in enumerate(shares)}


def _pooled(shares: Mapping[str, float], common: set[str]) -> dict[str, float]:
    """Shares with every value outside common summed into one OTHER bin."""
    pooled: dict[str, float] = {}
    for value, share in shares.items():
        key = value if value in common else OTHER
        pooled[key] = pooled.get(key, 0.0) + share
    return pooled


def compare(
    reference: Mapping[str, Any],
    window: pd.DataFrame,
    predicted: pd.Series,
    thresholds: Thresholds,
) -> dict[str, Any]:
    """The drift of a window of logged listings (the store's columns) against a reference:
    PSI per field, the predicted mix's PSI, unseen values; and whether any threshold is
    crossed, with the reasons in words."""
    features: dict[str, dict[str, Any]] = {}
    for name, profile in reference["numeric"].items():
        shares = _bin_shares(window[name], profile["edges"])
        features[name] = {
            "psi": psi(_indexed(profile["shares"]), _indexed(shares)) if shares else None,
            "compared": int(window[name].notna().sum()),
        }
    unseen_rows = pd.Series(False, index=window.index)
    unseen_values: dict[str, dict[str, int]] = {}
    for name, expected in reference["values"].items():
        given = _as_text(window[name])
        common = {value for value, share in expected.items() if share >= RARE_SHARE}
        actual = _pooled(_shares(given.value_counts()), common)
        features[name] = {
            "psi": psi(_pooled(expected, common), actual) if len(given) else None,
            "compared": len(given),
        }
        unseen = given[~given.isin(list(expected))]
        if len(unseen):
            unseen_rows |= window.index.isin(unseen.index)
            unseen_values[name] = {str(k): int(v) for k, v in unseen.value_counts().items()}
    mix = _shares(predicted.value_counts())
    mix_psi = psi(reference["category_mix"], mix) if len(predicted) else None
    unseen_share = float(unseen_rows.mean()) if len(window) else 0.0

    reasons = [
        f"{name} PSI {found['psi']:.2f} is over {thresholds.feature_psi}"
        for name, found in features.items()
        if found["psi"] is not None and found["psi"] > thresholds.feature_psi
    ]
    if mix_psi is not None and mix_psi > thresholds.category_mix_psi:
        reasons.append(
            f"predicted category mix PSI {mix_psi:.2f} is over {thresholds.category_mix_psi}"
        )
    if unseen_share > thresholds.unseen_share:
        reasons.append(
            f"{unseen_share:.1%} of listings carry values never seen in training "
            f"(over {thresholds.unseen_share:.0%})"
        )
    scored = [found["psi"] for found in features.values() if found["psi"] is not None]
    return {
        "listings": len(window),
        "features": features,
        "max_feature_psi": max(scored, default=None),
        "category_mix": {
            "psi": mix_psi,
            "training": dict(reference["category_mix"]),
            "predicted": {c: mix.get(c, 0.0) for c in PRICE_CATEGORIES},
        },
        "unseen_share": unseen_share,
        "unseen_values": unseen_values,
        "drifted": bool(reasons),
        "reasons": reasons,
        "thresholds": thresholds.model_dump(),
    }
