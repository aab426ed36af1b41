"""The figures the explain stage logs are drawn from the data given, without a display."""

import numpy as np
import pandas as pd
import pytest

from shared.explaining import explain
from shared.plots import (
    beeswarm,
    calibration_figure,
    category_effects,
    class_report_figure,
    confusion_figure,
    importance_bars,
    price_by_neighbourhood,
)
from shared.schema import PRICE_CATEGORIES
from tests.golden.fixtures import golden_listings, golden_model

LABELS = pd.Series(list(PRICE_CATEGORIES) * 25)


@pytest.fixture
def proba() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    raw = rng.random((len(LABELS), 4)) + np.eye(4)[np.arange(len(LABELS)) % 4]
    return pd.DataFrame(raw / raw.sum(axis=1, keepdims=True), columns=list(PRICE_CATEGORIES))


def test_calibration_has_a_curve_per_class(proba):
    axes = calibration_figure(LABELS, proba).axes[0]
    assert [line.get_label() for line in axes.lines] == ["perfectly calibrated", *PRICE_CATEGORIES]


def test_confusion_matrix_is_normalised_per_true_class(proba):
    image = confusion_figure(LABELS, proba.idxmax(axis=1)).axes[0].images[0]
    np.testing.assert_allclose(np.asarray(image.get_array()).sum(axis=1), 1.0)


def test_other_figures_draw(proba):
    importances = {label: {"a": 0.3, "b": 0.1, "c": 0.2} for label in PRICE_CATEGORIES}
    assert len(importance_bars(importances, top=2).axes[0].patches) == 2 * 4
    assert len(class_report_figure(LABELS, proba.idxmax(axis=1)).axes) == 2
    clean = pd.DataFrame({"neighbourhood": ["Bronx", "Queens"] * 5, "price": range(20, 30)})
    assert [t.get_text() for t in price_by_neighbourhood(clean).axes[0].get_xticklabels()] == [
        "Bronx",
        "Queens",
    ]


@pytest.fixture(scope="module")
def explanation():
    return explain(golden_model("price_blend"), golden_listings())


def _tick_texts(axes) -> list[str]:
    return [tick.get_text() for tick in axes.get_yticklabels()]


def test_the_beeswarm_names_features_as_people_know_them(explanation):
    names = _tick_texts(beeswarm(explanation, "Lux", top=20).axes[0])
    assert "distance to Midtown (km)" in names
    assert "borough (by name: see categories)" in names
    assert not {"midtown_km", "neighbourhood", "property_type"} & set(names)


def test_categories_are_shown_by_name_with_their_counts(explanation):
    panels = category_effects(explanation, "Lux").axes
    assert [axes.get_title(loc="left") for axes in panels] == [
        "borough",
        "room type",
        "property type",
    ]
    boroughs = _tick_texts(panels[0])
    listings = pd.DataFrame(golden_listings())
    expected = listings["neighbourhood"].value_counts()
    assert set(boroughs) == {f"{name} ({count})" for name, count in expected.items()}
