"""Answering prediction requests with a loaded champion: the gateway's own work, no HTTP.

The route calls validated_listings and answer_listings; the benchmark's in-process floor calls
answer_request, both in one, which therefore measures exactly what a request costs below Flask.
"""

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from services.gateway.admission import NoSlotFree, WorkSlots
from services.gateway.champion import LoadedModel
from services.gateway.errors import ApiError, validation_error
from services.gateway.json_provider import parse_json
from shared.contracts import Listing
from shared.explaining import ExplanationUnavailableError, explain, top_contributions
from shared.modeling import predict_matrix
from shared.schema import PRICE_CATEGORIES
from shared.settings import Settings

_listings = TypeAdapter(list[Listing])
_AN_ARRAY = re.compile(rb"[ \t\r\n]*\[")  # JSON's own whitespace, then an array
# A batch this big is worth every core for its fraction of a second, even if another gateway
# process wants one meanwhile; smaller requests stay single-threaded (one process per core).
PARALLEL_BATCH_ROWS = 2_000


def predict_listings(
    model: LoadedModel,
    listings: list[Listing],
    explain_top: int | None = None,
    batch_threads: int | None = None,
) -> list[dict[str, Any]]:
    """One answer per listing, in order; with explain_top, the top SHAP contributions too.

    The pipeline reads plain records: a frame per request would cost more than predicting.
    A batch of PARALLEL_BATCH_ROWS or more uses batch_threads (None: every core).
    """
    # A validated listing's fields are plain values: its own __dict__ is the record, read-only
    # downstream (dict(listing) or model_dump() would cost more than the model for a batch).
    records = [vars(listing) for listing in listings]
    threads = 1
    if len(records) >= PARALLEL_BATCH_ROWS:
        threads = batch_threads or os.cpu_count() or 1
    proba, prices = predict_matrix(model.predictor, records, threads)
    labels = [PRICE_CATEGORIES[i] for i in proba.argmax(axis=1)]
    answers = _answers(model, listings, labels, proba, prices)
    if explain_top:
        _add_explanations(model, records, labels, explain_top, answers)
    return answers


def _answers(
    model: LoadedModel,
    listings: list[Listing],
    labels: list[str],
    proba: np.ndarray,
    prices: np.ndarray | None,
) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = [
        {
            "id": listing.id,
            "price_category": label,
            "probabilities": dict(zip(PRICE_CATEGORIES, row, strict=True)),
            "model_version": model.version,
        }
        for listing, label, row in zip(listings, labels, proba.tolist(), strict=True)
    ]
    if prices is not None:
        for answer, (estimate, low, high) in zip(answers, prices.round(2).tolist(), strict=True):
            answer["estimated_price"] = estimate
            answer["price_interval"] = [low, high]
    return answers


def _add_explanations(
    model: LoadedModel,
    records: list[dict[str, Any]],
    labels: list[str],
    top: int,
    answers: list[dict[str, Any]],
) -> None:
    try:
        explainer = model.explainer()
    except ExplanationUnavailableError as error:
        raise ApiError(501, "explanation_unavailable", str(error)) from None
    explanation = explain(model.pipeline, records, explainer)
    for answer, contributions in zip(
        answers, top_contributions(explanation, labels, top), strict=True
    ):
        answer["explanation"] = contributions


def is_big_batch(listings: list[Listing]) -> bool:
    """Whether a request's listings are a batch that predicts on every core."""
    return len(listings) >= PARALLEL_BATCH_ROWS


@contextmanager
def explanation_slot(slots: WorkSlots) -> Iterator[None]:
    """Hold one of the slots for an explanation, or answer 429 explain_busy at once."""
    try:
        with slots.held():
            yield
    except NoSlotFree:
        raise ApiError(
            429,
            "explain_busy",
            f"all {len(slots.paths)} slots for explanations are busy; retry shortly "
            "(predictions without ?explain=true are never limited)",
            retry_after=1,
        ) from None


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


def validated_listings(
    raw: bytes, settings: Settings, explain: bool = False
) -> tuple[list[Listing], bool]:
    """A predict body's listings, validated against the contract, and whether it was a batch.

    An array, the big case, is validated straight from its bytes by pydantic's own JSON parser:
    10,000 listings in 33 ms instead of 20 to parse them and 33 to validate them. Anything that
    path refuses (and a batch to explain, capped far lower) goes through the standard parser
    and the checks of _validate, which say precisely what is wrong: the same answers as
    before (tests/unit/gateway/test_properties.py holds both paths equal); a refusal costs
    twice."""
    max_explained = settings.max_explain_batch if _explain_top(settings, explain) else None
    if max_explained is None and _AN_ARRAY.match(raw):
        try:
            listings = _listings.validate_json(raw)
        except ValidationError:
            pass  # said precisely below
        else:
            if 0 < len(listings) <= settings.max_batch:
                return listings, True
    return _validate(parse_json(raw), settings.max_batch, max_explained)


def answer_listings(
    listings: list[Listing],
    batch: bool,
    settings: Settings,
    champion: Callable[[], LoadedModel],
    explain: bool = False,
    batch_threads: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The answer to validated listings and its answers, one per listing, predicted by the
    champion (read once, after validation, so a swap mid-request cannot mix two models and a
    bad body is a 422 even with no champion). batch_threads overrides the settings' for a big
    batch."""
    model = champion()
    threads = batch_threads or settings.batch_threads
    answers = predict_listings(model, listings, _explain_top(settings, explain), threads)
    if batch:
        return {"model_version": model.version, "predictions": answers}, answers
    return answers[0], answers


def answer_request(
    raw: bytes,
    settings: Settings,
    champion: Callable[[], LoadedModel],
    explain: bool = False,
    batch_threads: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[Listing]]:
    """A predict body's answer, its answers and its validated listings: the route's work below
    HTTP in one call (the benchmark's in-process floor)."""
    listings, batch = validated_listings(raw, settings, explain)
    body, answers = answer_listings(listings, batch, settings, champion, explain, batch_threads)
    return body, answers, listings


def _explain_top(settings: Settings, explain: bool) -> int | None:
    return settings.explain_top_features if explain else None
