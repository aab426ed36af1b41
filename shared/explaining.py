"""SHAP explanations of a fitted pipeline: per-row contributions and global importances."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shap
from sklearn.pipeline import Pipeline

from shared.schema import PRICE_CATEGORIES


@dataclass(frozen=True)
class Explanation:
    """SHAP values of a sample: values[row, feature, class], classes in the model's order."""

    values: np.ndarray
    features: pd.DataFrame  # the sample as the model sees it (after preprocessing)
    classes: tuple[str, ...]


def feature_names(pipeline: Pipeline) -> list[str]:
    """Names of the columns the model step receives."""
    columns = pipeline.named_steps["features"].named_steps["columns"]
    return [str(name) for name in columns.get_feature_names_out()]


def explain(pipeline: Pipeline, sample: pd.DataFrame) -> Explanation:
    """SHAP values of the model step on a sample of request-shaped rows.

    Tree models get the exact, fast TreeExplainer; anything else falls back to a
    model-agnostic explainer on predict_proba with the sample as background.
    """
    matrix = pipeline.named_steps["features"].transform(sample)
    features = pd.DataFrame(matrix, columns=feature_names(pipeline), index=sample.index)
    model = pipeline.named_steps["model"]
    try:
        values = shap.TreeExplainer(model)(features).values
    except Exception:  # noqa: BLE001 - shap signals "not a tree model" with assorted errors
        masker = shap.maskers.Independent(features, max_samples=100)
        values = shap.Explainer(model.predict_proba, masker)(features).values
    if values.ndim == 2:  # one output: a binary model explained as its positive class
        values = np.stack([-values, values], axis=2)
    return Explanation(np.asarray(values), features, tuple(str(c) for c in model.classes_))


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
