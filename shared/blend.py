"""A classifier blended with a price regressor: calibrated categories and a price interval.

A LightGBM classifier ranks listings well but its probabilities are off and it finds few Lux
listings. A LightGBM regressor on ln(price) knows how far a listing sits from a category's
edge: read as a normal distribution around its estimate (the spread its out-of-fold error
measured), it gives each category the chance the price falls in that category's bin. The blend
mixes the two, then a temperature fitted on out-of-fold blends calibrates the result and a bias
on Lux finds the share of Lux listings the target asks for.

Everything the blend learns beyond the two models' trees (the regressor's spread, the
temperature, the Lux bias, the interval's residual quantiles) is fitted on out-of-fold
predictions of the data it is given: never on rows a model saw, whose errors are too small.
"""

from typing import Any, Literal

import numpy as np
from lightgbm import LGBMClassifier, LGBMRegressor
from scipy.optimize import minimize_scalar
from scipy.special import ndtr
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold

from shared.schema import PRICE_BIN_EDGES, PRICE_CATEGORIES

LN_EDGES = np.log(np.asarray(PRICE_BIN_EDGES))
LUX = PRICE_CATEGORIES.index("Lux")
# Probabilities are kept above this before logs are taken: a category the blend rules out
# entirely would otherwise make a log-loss infinite.
_FLOOR = 1e-9


def price_bin_probabilities(mu: np.ndarray, sd: float) -> np.ndarray:
    """P(price in each category's bin) when ln(price) ~ N(mu, sd): one row per listing, one
    column per category in Low..Lux order."""
    below = ndtr((LN_EDGES[None, :] - np.asarray(mu, dtype=float)[:, None]) / sd)
    cumulative = np.column_stack([np.zeros(len(below)), below, np.ones(len(below))])
    return np.diff(cumulative, axis=1)


def calibrated(blended: np.ndarray, temperature: float, lux_bias: float) -> np.ndarray:
    """Blended probabilities with their log divided by the temperature and Lux's log raised by
    the bias, renormalised."""
    logits = np.log(np.maximum(blended, _FLOOR)) / temperature
    logits[:, LUX] += lux_bias
    scaled = np.exp(logits - logits.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(blended: np.ndarray, codes: np.ndarray) -> float:
    """The temperature that minimises the log-loss of the blended probabilities."""

    def log_loss(temperature: float) -> float:
        proba = calibrated(blended, temperature, 0.0)
        return float(-np.log(np.clip(proba[np.arange(len(codes)), codes], _FLOOR, None)).mean())

    return float(minimize_scalar(log_loss, bounds=(0.25, 4.0), method="bounded").x)


def fit_lux_bias(
    proba: np.ndarray, codes: np.ndarray, target_recall: float, step: float, most: float = 3.0
) -> float:
    """The smallest bias on Lux's logit, on a grid of step, at which the Lux listings found
    (the argmax) reach target_recall; 0 when they already do, most when none on the grid does."""
    lux = codes == LUX
    if not lux.any():
        return 0.0
    for bias in np.arange(0.0, most + step / 2, step):
        found = calibrated(proba, 1.0, float(bias)).argmax(axis=1)[lux] == LUX
        if found.mean() >= target_recall:
            return round(float(bias), 6)
    return most


class PriceBlend(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Categories from a classifier blended with a price regressor; a price estimate and an
    interval from the regressor.

    fit needs the nightly prices beside the categories (fit(x, y, price=...)). Parameters:
    classifier_params / regressor_params go to LGBMClassifier / LGBMRegressor;
    classifier_weight is the classifier's share of the blend; folds, the out-of-fold split the
    blend's own numbers are fitted on; lux_recall, the out-of-fold Lux recall the Lux bias
    aims at (searched on a grid of lux_bias_step; None: no bias); interval, the share of prices
    the price interval should cover.
    """

    def __init__(
        self,
        classifier_params: dict[str, Any] | None = None,
        regressor_params: dict[str, Any] | None = None,
        classifier_weight: float = 0.6,
        folds: int = 5,
        lux_recall: float | None = 0.5,
        lux_bias_step: float = 0.1,
        interval: float = 0.8,
        random_state: int = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.classifier_params = classifier_params
        self.regressor_params = regressor_params
        self.classifier_weight = classifier_weight
        self.folds = folds
        self.lux_recall = lux_recall
        self.lux_bias_step = lux_bias_step
        self.interval = interval
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _models(self) -> tuple[LGBMClassifier, LGBMRegressor]:
        threads = {} if self.n_jobs is None else {"n_jobs": self.n_jobs}
        classifier = LGBMClassifier(**{**(self.classifier_params or {}), **threads})
        regressor = LGBMRegressor(**{**(self.regressor_params or {}), **threads})
        return classifier, regressor

    def fit(
        self, x: np.ndarray, y: Any, price: Any, categorical_feature: list[int] | None = None
    ) -> "PriceBlend":
        x = np.asarray(x, dtype=float)
        labels = np.asarray(y)
        ln_price = np.log(np.asarray(price, dtype=float))
        if len(ln_price) != len(labels):
            raise ValueError(f"{len(ln_price)} prices for {len(labels)} categories")
        codes = np.array([PRICE_CATEGORIES.index(label) for label in labels])
        categorical: list[int] | Literal["auto"] = categorical_feature or "auto"
        out_of_fold = np.zeros((len(x), len(PRICE_CATEGORIES)))
        mu = np.zeros(len(x))
        folds = StratifiedKFold(self.folds, shuffle=True, random_state=self.random_state)
        for train, held in folds.split(x, codes):
            classifier, regressor = self._models()
            classifier.fit(x[train], labels[train], categorical_feature=categorical)
            regressor.fit(x[train], ln_price[train], categorical_feature=categorical)
            out_of_fold[held] = _ordered(
                np.asarray(classifier.predict_proba(x[held])), classifier.classes_
            )
            mu[held] = regressor.predict(x[held])
        residuals = ln_price - mu
        self.price_sd_ = float(np.sqrt(np.mean(residuals**2)))
        tail = (1 - self.interval) / 2
        self.residual_quantiles_ = (
            float(np.quantile(residuals, tail)),
            float(np.quantile(residuals, 1 - tail)),
        )
        blended = self._blend(out_of_fold, mu)
        self.temperature_ = fit_temperature(blended, codes)
        self.lux_bias_ = 0.0
        if self.lux_recall is not None:
            scaled = calibrated(blended, self.temperature_, 0.0)
            self.lux_bias_ = fit_lux_bias(scaled, codes, self.lux_recall, self.lux_bias_step)
        self.classifier_, self.regressor_ = self._models()
        self.classifier_.fit(x, labels, categorical_feature=categorical)
        self.regressor_.fit(x, ln_price, categorical_feature=categorical)
        self.classes_ = np.array(PRICE_CATEGORIES, dtype=object)
        return self

    def _blend(self, classifier_proba: np.ndarray, mu: np.ndarray) -> np.ndarray:
        weight = self.classifier_weight
        return weight * classifier_proba + (1 - weight) * price_bin_probabilities(
            mu, self.price_sd_
        )

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities of Low, Mid, High and Lux, in that order."""
        return self.blend_and_price(x)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]

    def predict_price(self, x: np.ndarray) -> np.ndarray:
        """Estimated nightly price and its interval: columns estimate, low, high."""
        return self.blend_and_price(x)[1]

    def blend_and_price(self, x: np.ndarray, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """predict_proba and predict_price from one pass over each model's trees."""
        x = np.asarray(x, dtype=float)
        classifier_proba = _ordered(
            np.asarray(self.classifier_.booster_.predict(x, num_threads=threads)),
            self.classifier_.classes_,
        )
        mu = np.asarray(self.regressor_.booster_.predict(x, num_threads=threads), dtype=float)
        proba = calibrated(self._blend(classifier_proba, mu), self.temperature_, self.lux_bias_)
        low, high = self.residual_quantiles_
        prices = np.exp(np.column_stack([mu, mu + low, mu + high]))
        return proba, prices


def _ordered(proba: np.ndarray, classes: Any) -> np.ndarray:
    """Probabilities in the classifier's class order, put in Low..Lux order (0 for a category
    it never saw)."""
    ordered = np.zeros((len(proba), len(PRICE_CATEGORIES)))
    for column, label in enumerate(classes):
        ordered[:, PRICE_CATEGORIES.index(label)] = proba[:, column]
    return ordered
