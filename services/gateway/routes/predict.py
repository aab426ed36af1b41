"""POST /predict: one listing or an array of listings, answered from the in-memory champion."""

from collections import Counter
from typing import Any

from flask import Blueprint

from services.gateway.predicting import answer_request
from services.gateway.routes.requests import json_body, query_flag
from services.gateway.state import gateway

blueprint = Blueprint("predict", __name__)


@blueprint.post("/predict")
def predict() -> tuple[dict[str, Any], int]:
    state = gateway()
    body, answers = answer_request(
        json_body(), state.settings, state.champion, explain=query_flag("explain")
    )
    for category, count in Counter(a["price_category"] for a in answers).items():
        state.metrics.predictions.labels(category).inc(count)
    return body, 200
