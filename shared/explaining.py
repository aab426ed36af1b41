"""SHAP explanations of a fitted pipeline: per-row contributions and global importances."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shap
from sklearn.pipeline import Pipeline

from shared.blend import PriceBlend
from shared.errors import PipelineError
from shared.features import Rows
from shared.schema import FEATURE_LABELS, PRICE_CATEGORIES


class ExplanationUnavailableError(PipelineError):
    """The model is not a tree model and no background sample was given to explain it."""


@dataclass(frozen=True)
class Explanation:
    """SHAP values of a sample: values[row, feature, class], classes in the model's order."""

    values: np.ndarray
    features: pd.DataFrame  # the sample as the model sees it (after preprocessing)
    classes: tuple[str, ...]
    # Each categorical feature's value names by code (ListingFeatures.category_names).
    category_names: dict[str, list[str]] = field(default_factory=dict)

    def shown_value(self, row: int, feature: str) -> float | str | None:
        """A listing's value of a feature as a person reads it: a category by name, a number
        as a number, None where the listing had none."""
        value = float(self.features[feature].iloc[row])
        if np.isnan(value):
            return None
        if feature in self.category_names:
            return self.category_names[feature][int(value)]
        return value


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


def explained_model(pipeline: Pipeline) -> Any:
    """The model SHAP explains: the model step, or a blend's classifier. A blend's category
    mixes its classifier's probabilities with its regressor's through a logarithm and a
    temperature, which no additive explanation reproduces; its classifier's log-odds are exact
    SHAP values of the part that ranks categories (TreeExplainer, fast enough to serve)."""
    model = pipeline.named_steps["model"]
    return model.classifier_ if isinstance(model, PriceBlend) else model


def build_explainer(pipeline: Pipeline, background: pd.DataFrame | None = None) -> Any:
    """The exact, fast TreeExplainer for tree models; a model-agnostic one on predict_proba
    with a background sample otherwise."""
    model = explained_model(pipeline)
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
    classes = tuple(str(c) for c in explained_model(pipeline).classes_)
    names = pipeline.named_steps["features"].category_names()
    return Explanation(values, features, classes, names)


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
) -> list[list[dict[str, float | str | None]]]:
    """Per row, the features that pushed it most towards its label: the feature's name (raw
    and as a person knows it), the listing's value of it, and the signed SHAP value."""
    rows = []
    names = list(explanation.features.columns)
    for row, label in enumerate(labels):
        values = explanation.values[row, :, explanation.classes.index(label)]
        order = np.argsort(-np.abs(values))[:top]
        rows.append(
            [
                {
                    "feature": names[i],
                    "label": FEATURE_LABELS.get(names[i], names[i]),
                    "listing_value": explanation.shown_value(row, names[i]),
                    "value": float(values[i]),
                }
                for i in order
            ]
        )
    return rows
