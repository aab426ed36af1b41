"""POST /predict: one listing or an array of listings, answered from the in-memory champion."""

import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from flask import Blueprint, Response, after_this_request, g

from services.gateway.predicting import (
    answer_listings,
    explanation_slot,
    is_big_batch,
    validated_listings,
)
from services.gateway.prediction_log import Answered
from services.gateway.routes.requests import json_bytes, query_flag
from services.gateway.shadow import Shadow
from services.gateway.state import gateway
from shared.contracts import Listing
from shared.prediction_ids import listing_prediction_id, new_request_prediction_id

blueprint = Blueprint("predict", __name__)


@blueprint.post("/predict")
def predict() -> tuple[dict[str, Any], int]:
    state = gateway()
    explain = query_flag("explain")
    with ExitStack() as expensive:
        # An explanation holds one of the host's work slots (429 when none is free), taken
        # before its body is even read: a refusal costs next to nothing, so clients looping
        # refused requests do not slow the others down. A big batch predicts on every core
        # only while it holds one, else on its own process's core.
        if explain:
            expensive.enter_context(explanation_slot(state.work_slots))
        listings, batch = validated_listings(json_bytes(), state.settings, explain)
        big = not explain and is_big_batch(listings)
        threads = None
        if big and not expensive.enter_context(state.work_slots.held_if_free()):
            threads = 1
        body, answers = answer_listings(
            listings, batch, state.settings, state.champion, explain, batch_threads=threads
        )
    at = time.time()
    # Each answer's own id, for POST /feedback to name it; a client's X-Request-ID is theirs
    # to choose (and reuse), so it never names a prediction.
    prediction_id = new_request_prediction_id(at)
    for index, answer in enumerate(answers):
        answer["prediction_id"] = listing_prediction_id(prediction_id, index)
    if state.shadow is not None:
        _try_challenger(state.shadow, answers, listings)
    for category, count in Counter(a["price_category"] for a in answers).items():
        state.metrics.predictions.labels(category).inc(count)
    if state.prediction_log is not None:
        recorded = state.prediction_log.record(
            Answered(
                prediction_id=prediction_id,
                request_id=g.request_id,
                at=at,
                model_version=answers[0]["model_version"],
                # A validated listing's fields are plain values; the log encodes them later.
                listings=[vars(listing) for listing in listings],
                answers=answers,
                latency_ms=(time.perf_counter() - g.started) * 1000,
            )
        )
        _after_sending(recorded.encode)  # 26 ms for 10,000 listings the client need not wait
    return body, 200


def _after_sending(work: Callable[[], object]) -> None:
    """Do work once the response has been sent (gunicorn closes it after writing it), in this
    worker, before it takes its next request."""

    @after_this_request
    def then(response: Response) -> Response:
        response.call_on_close(work)
        return response


def _try_challenger(shadow: Shadow, answers: list[dict[str, Any]], listings: list[Listing]) -> None:
    """For the share of requests the challenger also scores: queue their listings, and score
    what waits once the response has been sent (never before: the client waits for the
    champion only)."""
    challenger = shadow.pick()
    if challenger is None or challenger.version == answers[0]["model_version"]:
        return
    categories = [answer["price_category"] for answer in answers]
    if shadow.add(challenger, [vars(listing) for listing in listings], categories):
        _after_sending(shadow.score_waiting)
