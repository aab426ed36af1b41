"""Drift arithmetic: the reference profile, PSI, and a window's verdict against it."""

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from shared.drift import (
    NUMERIC_FIELDS,
    VALUE_FIELDS,
    compare,
    load_monitor_params,
    psi,
    reference_profile,
)
from shared.errors import ConfigError
from shared.plots import drift_figure
from shared.schema import OPTIONAL_FLAGS, PRICE_CATEGORIES
from shared.settings import PROJECT_DIR

RNG = np.random.default_rng(0)
SHIPPED = load_monitor_params(PROJECT_DIR / "config" / "monitor.yaml")
BOROUGHS = ["Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island"]
PROPERTY_TYPES = ["Entire rental unit", "Private room in home", "Entire condo"]


def _listings(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Listings shaped like the training data (every field given)."""
    frame = pd.DataFrame(
        {
            "neighbourhood": rng.choice(BOROUGHS, n, p=[0.45, 0.35, 0.12, 0.06, 0.02]),
            "room_type": rng.choice(["Entire home/apt", "Private room"], n, p=[0.6, 0.4]),
            "property_type": rng.choice(PROPERTY_TYPES, n),
            "accommodates": rng.integers(1, 7, n),
            "bathrooms": rng.choice([1.0, 1.5, 2.0], n),
            "bedrooms": rng.integers(0, 4, n),
            "beds": rng.integers(1, 5, n),
            "latitude": rng.normal(40.72, 0.05, n),
            "longitude": rng.normal(-73.95, 0.05, n),
        }
    )
    for flag in ("tv", "internet", "air_conditioning", "kitchen", "heating", "wifi"):
        frame[flag] = rng.integers(0, 2, n)
    frame["elevator"] = rng.integers(0, 2, n)
    frame["breakfast"] = rng.integers(0, 2, n)
    return frame


def _labels(n: int, rng: np.random.Generator) -> pd.Series:
    return pd.Series(rng.choice(PRICE_CATEGORIES, n, p=[0.35, 0.35, 0.25, 0.05]))


@pytest.fixture(scope="module")
def reference():
    return reference_profile(_listings(20_000, RNG), _labels(20_000, RNG), bins=10)


def test_the_reference_holds_deciles_and_shares_of_the_training_data(reference):
    assert set(reference["numeric"]) == set(NUMERIC_FIELDS)
    assert set(reference["values"]) == set(VALUE_FIELDS)
    latitude = reference["numeric"]["latitude"]
    assert len(latitude["edges"]) == 9 and len(latitude["shares"]) == 10
    assert all(abs(share - 0.1) < 0.01 for share in latitude["shares"])
    accommodates = reference["numeric"]["accommodates"]  # six values: the deciles collapse
    assert accommodates["edges"] == sorted(set(accommodates["edges"]))
    assert math.isclose(sum(accommodates["shares"]), 1.0)
    assert set(reference["values"]["tv"]) == {"0", "1"}
    assert math.isclose(reference["category_mix"]["Lux"], 0.05, abs_tol=0.01)


def test_psi_is_zero_for_the_same_mix_and_grows_with_the_shift():
    same = psi({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5})
    small = psi({"a": 0.5, "b": 0.5}, {"a": 0.55, "b": 0.45})
    large = psi({"a": 0.5, "b": 0.5}, {"a": 0.95, "b": 0.05})
    assert same == 0 and 0 < small < 0.1 < 0.25 < large
    assert math.isfinite(psi({"a": 1.0}, {"b": 1.0}))  # a value never seen: large, finite


def _window(frame: pd.DataFrame) -> pd.DataFrame:
    """Listings as the store holds them: flags as nullable numbers, the request's fields."""
    return frame.assign(**{flag: frame[flag].astype("Float64") for flag in OPTIONAL_FLAGS})


def test_listings_like_the_training_data_are_no_drift(reference):
    rng = np.random.default_rng(1)
    window = _window(_listings(2_000, rng))
    report = compare(reference, window, _labels(2_000, rng), SHIPPED.drift.thresholds)
    assert not report["drifted"], report["reasons"]
    assert report["max_feature_psi"] < 0.05
    assert report["unseen_share"] == 0 and report["unseen_values"] == {}


def test_every_listing_moved_to_the_bronx_with_12_guests_is_drift(reference):
    rng = np.random.default_rng(2)
    window = _window(_listings(500, rng).assign(neighbourhood="Bronx", accommodates=12))
    predicted = pd.Series(["Lux"] * 500)
    report = compare(reference, window, predicted, SHIPPED.drift.thresholds)
    assert report["drifted"]
    assert report["features"]["neighbourhood"]["psi"] > 1
    assert report["features"]["accommodates"]["psi"] > 1
    assert report["category_mix"]["psi"] > 1
    assert report["category_mix"]["predicted"]["Lux"] == 1.0
    assert any(reason.startswith("accommodates PSI") for reason in report["reasons"])
    assert any(reason.startswith("neighbourhood PSI") for reason in report["reasons"])
    assert report["features"]["latitude"]["psi"] < 0.25  # what did not move is not blamed


def test_values_never_seen_are_counted_and_fields_left_out_are_not_drift(reference):
    rng = np.random.default_rng(3)
    window = _window(_listings(1_000, rng))
    window.loc[:99, "property_type"] = "Treehouse"  # 10%: over the 5% threshold
    window.loc[:, "kitchen"] = None  # requests may leave optional flags out
    window.loc[500:, "property_type"] = None
    report = compare(reference, window, _labels(1_000, rng), SHIPPED.drift.thresholds)
    assert report["unseen_values"] == {"property_type": {"Treehouse": 100}}
    assert report["unseen_share"] == pytest.approx(0.1)
    assert report["features"]["kitchen"] == {"psi": None, "compared": 0}
    assert report["features"]["property_type"]["compared"] == 500
    assert report["reasons"][-1].startswith("10.0% of listings carry values never seen")


def test_the_drift_plot_draws_a_report(reference):
    rng = np.random.default_rng(4)
    window = _window(_listings(300, rng).assign(accommodates=12))
    report = compare(reference, window, _labels(300, rng), SHIPPED.drift.thresholds)
    figure = drift_figure({**report, "champion_version": "3", "window_hours": 24})
    assert figure.axes[0].get_xlabel().startswith("population stability index")
    assert figure.texts[0].get_text().startswith("DRIFT: 300 listings answered by version 3")


def test_the_shipped_monitor_config_loads_and_a_bad_one_names_its_problem(tmp_path):
    params = load_monitor_params(PROJECT_DIR / "config" / "monitor.yaml")
    assert params.drift.retrain is False and params.drift.thresholds.feature_psi == 0.25
    bad = tmp_path / "monitor.yaml"
    bad.write_text("drift: {thresholds: {feature_psi: -1}}\n")
    with pytest.raises(ConfigError, match="feature_psi"):
        load_monitor_params(bad)
    # Every value is the file's: a key left out is named, not silently given a default.
    document = yaml.safe_load((PROJECT_DIR / "config" / "monitor.yaml").read_text())
    del document["drift"]["min_listings"]
    bad.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match="min_listings"):
        load_monitor_params(bad)
