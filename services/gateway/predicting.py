"""Answering prediction requests with a loaded champion."""

from typing import Any

import pandas as pd

from services.gateway.champion import LoadedModel
from shared.contracts import Listing
from shared.explaining import explain, top_contributions
from shared.modeling import probabilities


def listings_frame(listings: list[Listing]) -> pd.DataFrame:
    """Validated listings as the request-shaped frame the pipeline was trained on."""
    return pd.DataFrame([listing.model_dump() for listing in listings])


def predict_listings(
    model: LoadedModel, listings: list[Listing], explain_top: int | None = None
) -> list[dict[str, Any]]:
    """One answer per listing, in order; with explain_top, the top SHAP contributions too."""
    frame = listings_frame(listings)
    proba = probabilities(model.pipeline, frame)
    labels = list(proba.idxmax(axis=1))
    answers = [
        {
            "id": listing.id,
            "price_category": label,
            "probabilities": {k: float(v) for k, v in row.items()},
            "model_version": model.version,
        }
        for listing, label, (_, row) in zip(listings, labels, proba.iterrows(), strict=True)
    ]
    if explain_top:
        explanation = explain(model.pipeline, frame, model.explainer())
        for answer, contributions in zip(
            answers, top_contributions(explanation, labels, explain_top), strict=True
        ):
            answer["explanation"] = contributions
    return answers
