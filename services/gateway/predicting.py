"""Answering prediction requests with a loaded champion."""

import os
from typing import Any

from services.gateway.champion import LoadedModel
from services.gateway.errors import ApiError
from shared.contracts import Listing
from shared.explaining import ExplanationUnavailableError, explain, top_contributions
from shared.modeling import probabilities
from shared.schema import PRICE_CATEGORIES

# A batch this big is worth every core for its fraction of a second, even if another gateway
# process wants one meanwhile; smaller requests stay single-threaded (one process per core).
PARALLEL_BATCH_ROWS = 2_000


def predict_listings(
    model: LoadedModel, listings: list[Listing], explain_top: int | None = None
) -> list[dict[str, Any]]:
    """One answer per listing, in order; with explain_top, the top SHAP contributions too.

    The pipeline reads plain records: a frame per request would cost more than predicting.
    """
    # A validated listing's fields are plain values: its own __dict__ is the record, read-only
    # downstream (dict(listing) or model_dump() would cost more than the model for a batch).
    records = [vars(listing) for listing in listings]
    threads = (os.cpu_count() or 1) if len(records) >= PARALLEL_BATCH_ROWS else 1
    proba = probabilities(model.pipeline, records, threads).to_numpy()
    labels = [PRICE_CATEGORIES[i] for i in proba.argmax(axis=1)]
    answers: list[dict[str, Any]] = [
        {
            "id": listing.id,
            "price_category": label,
            "probabilities": dict(zip(PRICE_CATEGORIES, row, strict=True)),
            "model_version": model.version,
        }
        for listing, label, row in zip(listings, labels, proba.tolist(), strict=True)
    ]
    if explain_top:
        try:
            explainer = model.explainer()
        except ExplanationUnavailableError as error:
            raise ApiError(501, "explanation_unavailable", str(error)) from None
        explanation = explain(model.pipeline, records, explainer)
        for answer, contributions in zip(
            answers, top_contributions(explanation, labels, explain_top), strict=True
        ):
            answer["explanation"] = contributions
    return answers
