"""POST /predict: one listing or an array of listings, answered from the in-memory champion."""

from collections import Counter
from typing import Any

from flask import Blueprint
from pydantic import TypeAdapter, ValidationError

from services.gateway.errors import ApiError, validation_error
from services.gateway.predicting import predict_listings
from services.gateway.routes.requests import json_body, query_flag
from services.gateway.state import gateway
from shared.contracts import Listing

blueprint = Blueprint("predict", __name__)
_listings = TypeAdapter(list[Listing])


def _validate(
    payload: Any, max_batch: int, max_explained: int | None
) -> tuple[list[Listing], bool]:
    """Validated listings and whether the request was a batch; max_explained caps a batch
    asked to be explained (None when no explanation is asked)."""
    if isinstance(payload, dict):
        try:
            return [Listing.model_validate(payload)], False
        except ValidationError as error:
            raise validation_error(error) from None
    if not isinstance(payload, list):
        raise ApiError(
            422,
            "validation_error",
            "send one listing object or an array of them",
            fields=[{"path": "(body)", "message": "must be an object or an array"}],
        )
    if not payload:
        raise ApiError(
            422,
            "validation_error",
            "the array holds no listing",
            fields=[{"path": "(body)", "message": "at least one listing"}],
        )
    if max_explained is not None and len(payload) > max_explained:
        # SHAP costs 1 to 40 ms a listing, by model: a bigger batch would hold a worker for
        # seconds while other clients wait.
        raise ApiError(
            413,
            "explain_batch_too_large",
            f"{len(payload)} listings to explain in one request; the limit is {max_explained} "
            "(predict bigger batches without ?explain=true)",
        )
    if len(payload) > max_batch:
        raise ApiError(
            413,
            "batch_too_large",
            f"{len(payload)} listings in one request; the limit is {max_batch}",
        )
    try:
        return _listings.validate_python(payload), True
    except ValidationError as error:
        raise validation_error(error) from None


@blueprint.post("/predict")
def predict() -> tuple[dict[str, Any], int]:
    state = gateway()
    settings = state.settings
    explain_top = settings.explain_top_features if query_flag("explain") else None
    max_explained = settings.max_explain_batch if explain_top else None
    listings, batch = _validate(json_body(), settings.max_batch, max_explained)
    model = state.champion()  # read once: a swap mid-request cannot mix two models
    answers = predict_listings(model, listings, explain_top)
    for category, count in Counter(a["price_category"] for a in answers).items():
        state.metrics.predictions.labels(category).inc(count)
    if batch:
        return {"model_version": model.version, "predictions": answers}, 200
    return answers[0], 200
