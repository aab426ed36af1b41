"""SHAP explanations of a fitted pipeline: per-row contributions and global importances."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shap
from sklearn.pipeline import Pipeline

from shared.errors import PipelineError
from shared.features import Rows
from shared.schema import PRICE_CATEGORIES


class ExplanationUnavailableError(PipelineError):
    """The model is not a tree model and no background sample was given to explain it."""


@dataclass(frozen=True)
class Explanation:
    """SHAP values of a sample: values[row, feature, class], classes in the model's order."""

    values: np.ndarray
    features: pd.DataFrame  # the sample as the model sees it (after preprocessing)
    classes: tuple[str, ...]


def feature_names(pipeline: Pipeline) -> list[str]:
    """Names of the columns the model step receives."""
    return [str(name) for name in pipeline.named_steps["features"].get_feature_names_out()]


def model_features(pipeline: Pipeline, rows: Rows) -> pd.DataFrame:
    """Request-shaped rows as the model step sees them."""
    matrix = pipeline.named_steps["features"].transform(rows)
    return pd.DataFrame(
        matrix,
        columns=feature_names(pipeline),
        index=rows.index if isinstance(rows, pd.DataFrame) else None,
    )


def build_explainer(pipeline: Pipeline, background: pd.DataFrame | None = None) -> Any:
    """The exact, fast TreeExplainer for tree models; a model-agnostic one on predict_proba
    with a background sample otherwise."""
    model = pipeline.named_steps["model"]
    try:
        return shap.TreeExplainer(model)
    except Exception as error:  # noqa: BLE001 - shap signals "not a tree model" variously
        if background is None:
            raise ExplanationUnavailableError(
                f"{type(model).__name__} cannot be explained without background data"
            ) from error
    masker = shap.maskers.Independent(model_features(pipeline, background), max_samples=100)
    return shap.Explainer(model.predict_proba, masker)


def explain(pipeline: Pipeline, rows: Rows, explainer: Any = None) -> Explanation:
    """SHAP values of the model step on request-shaped rows (the rows are the background
    when a non-tree model has no explainer yet)."""
    features = model_features(pipeline, rows)
    explainer = explainer or build_explainer(pipeline, background=rows)
    values = np.asarray(explainer(features).values)
    if values.ndim == 2:  # one output: a binary model explained as its positive class
        values = np.stack([-values, values], axis=2)
    classes = tuple(str(c) for c in pipeline.named_steps["model"].classes_)
    return Explanation(values, features, classes)


def class_importances(explanation: Explanation) -> dict[str, dict[str, float]]:
    """Mean |SHAP| per feature for each class, classes in Low..Lux order, largest first."""
    mean_abs = np.abs(explanation.values).mean(axis=0)  # (features, classes)
    result: dict[str, dict[str, float]] = {}
    for label in PRICE_CATEGORIES:
        if label not in explanation.classes:
            continue
        column = mean_abs[:, explanation.classes.index(label)]
        pairs = sorted(zip(explanation.features.columns, column, strict=True), key=lambda p: -p[1])
        result[label] = {name: float(value) for name, value in pairs}
    return result


def top_contributions(
    explanation: Explanation, labels: list[str], top: int
) -> list[list[dict[str, float | str]]]:
    """Per row, the features that pushed it most towards its label, with signed values."""
    rows = []
    names = list(explanation.features.columns)
    for row, label in enumerate(labels):
        values = explanation.values[row, :, explanation.classes.index(label)]
        order = np.argsort(-np.abs(values))[:top]
        rows.append([{"feature": names[i], "value": float(values[i])} for i in order])
    return rows
