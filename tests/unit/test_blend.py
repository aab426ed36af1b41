"""The classifier-regressor blend: its price distribution, calibration and price interval."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from shared.blend import (
    LUX,
    PriceBlend,
    calibrated,
    fit_lux_bias,
    fit_temperature,
    price_bin_probabilities,
)
from shared.modeling import score_prices
from shared.schema import PRICE_CATEGORIES, price_category

SMALL = {"n_estimators": 40, "min_child_samples": 10, "verbose": -1, "random_state": 0}


def synthetic(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, categories and prices: ln(price) a smooth function of two features plus
    noise of sd 0.3, so every category occurs and none is certain."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(rows, 3))
    ln_price = np.log(40) + 2.8 * x[:, 0] + 0.8 * x[:, 1] + rng.normal(0, 0.3, rows)
    price = np.exp(ln_price)
    return x, np.array([price_category(p) for p in price], dtype=object), price


@pytest.fixture(scope="module")
def fitted() -> PriceBlend:
    x, y, price = synthetic(3000, seed=1)
    return PriceBlend(SMALL, SMALL, folds=3, lux_recall=0.9).fit(x, y, price)


def test_price_bins_share_the_whole_distribution():
    mu = np.log([50.0, 150.0, 300.0, 900.0])
    proba = price_bin_probabilities(mu, sd=0.01)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(proba.argmax(axis=1)) == [0, 1, 2, 3]  # a certain price is in its own bin
    spread = price_bin_probabilities(np.log([90.0]), sd=0.4)[0]
    assert spread[0] == pytest.approx(0.5)  # on the Low/Mid edge: half below it


def test_calibration_at_temperature_one_without_bias_changes_nothing():
    proba = softmax(np.random.default_rng(0).normal(size=(50, 4)), axis=1)
    np.testing.assert_allclose(calibrated(proba, 1.0, 0.0), proba, atol=1e-12)
    sharper = calibrated(proba, 0.5, 0.0)
    np.testing.assert_allclose(sharper.sum(axis=1), 1.0)
    assert (sharper.max(axis=1) >= proba.max(axis=1) - 1e-12).all()


def test_temperature_is_the_one_the_labels_were_drawn_with():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, size=(20_000, 4))
    truth = softmax(logits / 2.0, axis=1)  # the model's probabilities are too sure by 2x
    codes = np.array([rng.choice(4, p=row) for row in truth])
    assert fit_temperature(softmax(logits, axis=1), codes) == pytest.approx(2.0, abs=0.1)


def test_lux_bias_is_the_smallest_on_the_grid_that_finds_enough_lux():
    rng = np.random.default_rng(3)
    proba = softmax(rng.normal(size=(2000, 4)), axis=1)
    codes = rng.choice(4, size=2000)
    bias = fit_lux_bias(proba, codes, target_recall=0.5, step=0.1)
    lux = codes == LUX

    def recall(b: float) -> float:
        return float((calibrated(proba, 1.0, b).argmax(axis=1)[lux] == LUX).mean())

    assert bias > 0
    assert recall(bias) >= 0.5 > recall(bias - 0.1)


def test_blend_answers_probabilities_and_prices_in_category_order(fitted):
    x, _, _ = synthetic(200, seed=4)
    proba, prices = fitted.blend_and_price(x)
    assert list(fitted.classes_) == list(PRICE_CATEGORIES)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(fitted.predict_proba(x), proba)
    np.testing.assert_array_equal(fitted.predict_price(x), prices)
    assert list(fitted.predict(x)) == [PRICE_CATEGORIES[i] for i in proba.argmax(axis=1)]
    assert ((prices[:, 1] < prices[:, 0]) & (prices[:, 0] < prices[:, 2])).all()


def test_blend_interval_covers_its_share_of_unseen_prices(fitted):
    rows = 4000
    x, _, price = synthetic(rows, seed=5)
    coverage = score_prices(pd.Series(price), fitted.predict_price(x))["interval_coverage"]
    # Three standard errors of a share of 0.8 over this many prices.
    assert coverage == pytest.approx(0.8, abs=3 * np.sqrt(0.8 * 0.2 / rows))
    # Fitted on out-of-fold errors: about the noise's own spread, not the smaller in-sample one.
    assert 0.25 < fitted.price_sd_ < 0.4


def test_blend_lux_bias_reaches_its_recall_on_unseen_listings(fitted):
    x, y, _ = synthetic(4000, seed=6)
    found = fitted.predict(x)[y == "Lux"] == "Lux"
    assert fitted.lux_bias_ > 0
    assert found.mean() >= 0.87  # the target 0.9 out of fold, less a margin for a new sample


def test_blend_refuses_prices_that_do_not_match_the_categories():
    x, y, price = synthetic(100, seed=7)
    with pytest.raises(ValueError, match="99 prices for 100 categories"):
        PriceBlend(SMALL, SMALL, folds=2).fit(x, y, price[:-1])
