"""Candidate models: build, split, fit and score. Pure: frames in, pipelines and dicts out."""

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support, roc_auc_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from shared.blend import PriceBlend
from shared.errors import ConfigError
from shared.features import ListingFeatures, Rows, feature_columns
from shared.schema import PRICE_CATEGORIES
from shared.splitting import Split

ESTIMATORS: dict[str, type] = {
    "random_forest": RandomForestClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "lightgbm": LGBMClassifier,
    "price_blend": PriceBlend,
    "dummy": DummyClassifier,
}


@dataclass(frozen=True)
class CandidateSpec:
    """One row of the candidate grid: a name, an estimator kind, a feature set, parameters."""

    name: str
    estimator: str
    features: str
    params: dict[str, Any] = field(default_factory=dict)


def build_pipeline(spec: CandidateSpec) -> Pipeline:
    """The full model: request fields in, class probabilities out."""
    try:
        estimator_class = ESTIMATORS[spec.estimator]
    except KeyError:
        raise ConfigError(
            f"candidate {spec.name!r}: unknown estimator {spec.estimator!r}; "
            f"known: {', '.join(ESTIMATORS)}"
        ) from None
    feature_columns(spec.features)  # an unknown feature set is a ConfigError, before fitting
    try:
        features = ListingFeatures(spec.features)
        params = dict(spec.params)
        if spec.estimator == "hist_gradient_boosting":
            # Categoricals come first out of the features; tell the booster which they are.
            params.setdefault("categorical_features", features.categorical_indices)
        estimator = estimator_class(**params)
    except TypeError as error:
        raise ConfigError(f"candidate {spec.name!r}: {error}") from None
    return Pipeline([("features", features), ("model", estimator)])


def fit_candidate(
    spec: CandidateSpec, split: Split, threads: int | None = None
) -> tuple[Pipeline, float]:
    """Fit a candidate on the training split; returns the pipeline and fit seconds.

    threads caps the fit's threads (n_jobs and native pools), overriding the spec's n_jobs:
    training jobs running side by side share the cores instead of each taking all of them.
    """
    pipeline = build_pipeline(spec)
    model = pipeline.named_steps["model"]
    if threads is not None and "n_jobs" in model.get_params():
        model.set_params(n_jobs=threads)
    started = time.perf_counter()
    with threadpool_limits(threads) if threads is not None else nullcontext():
        pipeline.fit(split.x_train, split.y_train, **_fit_params(spec, pipeline, split))
    fit_seconds = time.perf_counter() - started
    make_single_threaded(pipeline)
    return pipeline, fit_seconds


def _fit_params(spec: CandidateSpec, pipeline: Pipeline, split: Split) -> dict[str, Any]:
    """LightGBM learns which columns are categorical at fit time, not from its parameters;
    the blend's regressor learns from the prices behind the categories."""
    if spec.estimator not in ("lightgbm", "price_blend"):
        return {}
    fit_params = {
        "model__categorical_feature": pipeline.named_steps["features"].categorical_indices
    }
    if spec.estimator == "price_blend":
        if split.price_train is None:
            raise ConfigError(f"candidate {spec.name!r} learns from prices: the split has none")
        fit_params["model__price"] = split.price_train
    return fit_params


def make_single_threaded(pipeline: Pipeline) -> None:
    """Serve with one thread whatever training used: one process per core scales, threads don't."""
    model = pipeline.named_steps["model"]
    if "n_jobs" in model.get_params():
        model.set_params(n_jobs=1)


def predict_matrix(
    pipeline: Pipeline, x: Rows, threads: int = 1
) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities (as probability_matrix) and, from a model that estimates prices,
    one row per listing of estimated nightly price, interval low and interval high (None from
    a model that does not)."""
    model = pipeline.named_steps["model"]
    if isinstance(model, PriceBlend):
        return model.blend_and_price(model_input(pipeline, x), threads)
    return probability_matrix(pipeline, x, threads), None


def model_input(pipeline: Pipeline, x: Rows) -> np.ndarray:
    """The matrix the model step reads. From the features step itself: a pipeline slice's
    transform costs 0.06 ms more per call (scikit-learn's checks), a third of a listing's."""
    return np.asarray(pipeline.named_steps["features"].transform(x))


def probability_matrix(pipeline: Pipeline, x: Rows, threads: int = 1) -> np.ndarray:
    """Class probabilities, one row per listing and one column per label in the fixed order
    Low, Mid, High, Lux (0 for a label the model never saw).

    threads > 1 lets LightGBM use more cores for this call only (models are kept
    single-threaded); other estimators ignore it.
    """
    model = pipeline.named_steps["model"]
    if isinstance(model, PriceBlend):
        return predict_matrix(pipeline, x, threads)[0]
    if isinstance(model, LGBMClassifier):
        # LightGBM's scikit-learn wrapper re-validates the features and copies its parameters
        # on every call: 0.23 ms of its 0.25 for one listing. Its booster computes the same
        # probabilities from the same features (a unit test holds them equal).
        proba = np.asarray(model.booster_.predict(model_input(pipeline, x), num_threads=threads))
        if proba.ndim == 1:  # two classes: the booster gives the second's probability only
            proba = np.column_stack([1 - proba, proba])
    else:
        proba = pipeline.predict_proba(x)
    classes = list(pipeline.classes_)
    ordered = np.zeros((len(proba), len(PRICE_CATEGORIES)))
    for column, label in enumerate(PRICE_CATEGORIES):
        if label in classes:
            ordered[:, column] = proba[:, classes.index(label)]
    return ordered


def probabilities(pipeline: Pipeline, x: Rows, threads: int = 1) -> pd.DataFrame:
    """probability_matrix as a frame: columns Low, Mid, High, Lux, the index of x if any."""
    return pd.DataFrame(
        probability_matrix(pipeline, x, threads),
        columns=list(PRICE_CATEGORIES),
        index=x.index if isinstance(x, pd.DataFrame) else None,
    )


def calibration_error(y_true: pd.Series, proba: pd.DataFrame, bins: int = 10) -> float:
    """Top-label expected calibration error: over equal-width bins of the winning
    probability, the row-weighted gap between that probability and how often it was right."""
    confidence = proba.max(axis=1).to_numpy()
    right = (proba.idxmax(axis=1) == y_true).to_numpy()
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for bin_ in np.unique(which):
        members = which == bin_
        error += members.mean() * abs(right[members].mean() - confidence[members].mean())
    return float(error)


def score_prices(price: pd.Series, estimates: np.ndarray) -> dict[str, float]:
    """How well estimates (columns estimate, low, high) place the true nightly prices: the
    interval's coverage and median width, and the median absolute error of ln(price)."""
    true = price.to_numpy(dtype=float)
    estimate, low, high = estimates[:, 0], estimates[:, 1], estimates[:, 2]
    return {
        "interval_coverage": float(((true >= low) & (true <= high)).mean()),
        "interval_median_width": float(np.median(high - low)),
        "price_median_abs_log_error": float(np.median(np.abs(np.log(true) - np.log(estimate)))),
    }


def score_predictions(y_true: pd.Series, proba: pd.DataFrame) -> dict[str, float]:
    """Accuracy, macro F1, one-vs-rest ROC AUC, calibration error and per-class precision /
    recall / F1."""
    labels = list(PRICE_CATEGORIES)
    predicted = proba.idxmax(axis=1)
    ordered = sorted(labels)  # roc_auc_score wants its labels sorted, columns to match
    metrics = {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "f1_macro": float(f1_score(y_true, predicted, labels=labels, average="macro")),
        "roc_auc_ovr": float(
            roc_auc_score(y_true, proba[ordered].to_numpy(), multi_class="ovr", labels=ordered)
        ),
        "calibration_error": calibration_error(y_true, proba),
    }
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, predicted, labels=labels, zero_division=0
    )
    for i, label in enumerate(labels):
        key = label.lower()
        metrics[f"precision_{key}"] = float(precision[i])
        metrics[f"recall_{key}"] = float(recall[i])
        metrics[f"f1_{key}"] = float(f1[i])
    return metrics


def score_on_test(pipeline: Pipeline, split: Split) -> dict[str, float]:
    """score_predictions on the test split, and score_prices too for a model that estimates
    prices."""
    proba, prices = predict_matrix(pipeline, split.x_test)
    frame = pd.DataFrame(proba, columns=list(PRICE_CATEGORIES), index=split.x_test.index)
    metrics = score_predictions(split.y_test, frame)
    if prices is not None and split.price_test is not None:
        metrics |= score_prices(split.price_test, prices)
    return metrics


def single_row_latency_ms(pipeline: Pipeline, x: pd.DataFrame, repeats: int = 50) -> float:
    """Median time to predict one listing, in milliseconds, as the gateway serves it (one
    plain record, probabilities and any price estimate)."""
    record = x.iloc[[0]].to_dict("records")
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_matrix(pipeline, record)
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings))
