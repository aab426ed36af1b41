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

from shared.errors import ConfigError
from shared.features import ListingFeatures, Rows, feature_columns
from shared.schema import PRICE_CATEGORIES
from shared.splitting import Split

ESTIMATORS: dict[str, type] = {
    "random_forest": RandomForestClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "lightgbm": LGBMClassifier,
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
        pipeline.fit(split.x_train, split.y_train, **_fit_params(spec, pipeline))
    fit_seconds = time.perf_counter() - started
    make_single_threaded(pipeline)
    return pipeline, fit_seconds


def _fit_params(spec: CandidateSpec, pipeline: Pipeline) -> dict[str, Any]:
    """LightGBM learns which columns are categorical at fit time, not from its parameters."""
    if spec.estimator != "lightgbm":
        return {}
    return {"model__categorical_feature": pipeline.named_steps["features"].categorical_indices}


def make_single_threaded(pipeline: Pipeline) -> None:
    """Serve with one thread whatever training used: one process per core scales, threads don't."""
    model = pipeline.named_steps["model"]
    if "n_jobs" in model.get_params():
        model.set_params(n_jobs=1)


def probability_matrix(pipeline: Pipeline, x: Rows, threads: int = 1) -> np.ndarray:
    """Class probabilities, one row per listing and one column per label in the fixed order
    Low, Mid, High, Lux (0 for a label the model never saw).

    threads > 1 lets LightGBM use more cores for this call only (models are kept
    single-threaded); other estimators ignore it.
    """
    model = pipeline.named_steps["model"]
    if isinstance(model, LGBMClassifier):
        # LightGBM's scikit-learn wrapper re-validates the features and copies its parameters
        # on every call: 0.23 ms of its 0.25 for one listing. Its booster computes the same
        # probabilities from the same features (a unit test holds them equal).
        proba = np.asarray(model.booster_.predict(pipeline[:-1].transform(x), num_threads=threads))
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


def score_predictions(y_true: pd.Series, proba: pd.DataFrame) -> dict[str, float]:
    """Accuracy, macro F1, one-vs-rest ROC AUC and per-class precision / recall / F1."""
    labels = list(PRICE_CATEGORIES)
    predicted = proba.idxmax(axis=1)
    ordered = sorted(labels)  # roc_auc_score wants its labels sorted, columns to match
    metrics = {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "f1_macro": float(f1_score(y_true, predicted, labels=labels, average="macro")),
        "roc_auc_ovr": float(
            roc_auc_score(y_true, proba[ordered].to_numpy(), multi_class="ovr", labels=ordered)
        ),
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


def single_row_latency_ms(pipeline: Pipeline, x: pd.DataFrame, repeats: int = 7) -> float:
    """Median time to predict one row, in milliseconds, as the gateway serves a listing."""
    row = x.iloc[[0]]
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        pipeline.predict_proba(row)
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings))
