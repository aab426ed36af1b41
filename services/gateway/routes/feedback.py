"""POST /feedback (token) takes realised prices of answered listings; GET /feedback/<id> says
which found their prediction. The join happens in the monitor's drain, within seconds."""

import time
import uuid
from typing import Any

from flask import Blueprint, url_for
from pydantic import TypeAdapter, ValidationError

from services.gateway.errors import ApiError, validation_error
from services.gateway.routes.requests import json_body, require_token
from services.gateway.state import gateway
from shared.capped_stream import CappedStream, Item
from shared.contracts import Feedback
from shared.feedback import FEEDBACK_SETTLE_SECONDS, feedback_entry
from shared.monitor_state import feedback_outcome, forget_feedback_outcome, save_feedback_outcomes
from shared.queues import request_monitor
from shared.schema import price_category

blueprint = Blueprint("feedback", __name__)
_items = TypeAdapter(list[Feedback])


def _refuse_repeats(items: list[Feedback]) -> None:
    """Two prices for one prediction in one body: which would count? 422, naming the second."""
    seen: dict[tuple[str, str | None], int] = {}
    fields = []
    for index, item in enumerate(items):
        # A listing id as a number or as text names the same listing (the join reads text).
        name, key = (
            ("prediction_id", item.prediction_id) if item.prediction_id else ("id", str(item.id))
        )
        first = seen.setdefault((name, key), index)
        if first != index:
            message = f"names the same prediction as [{first}]: send one price for it"
            fields.append({"path": f"[{index}].{name}", "message": message})
    if fields:
        names = ", ".join(entry["path"] for entry in fields[:5])
        raise ApiError(422, "validation_error", f"invalid fields: {names}", fields=fields)


def _validated(payload: Any, max_items: int) -> list[Feedback]:
    """One price or an array of them, each naming its prediction; 4xx naming the field."""
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list) or not payload:
        raise ApiError(
            422,
            "validation_error",
            "send an array of {id or request_id, price}",
            fields=[{"path": "(body)", "message": "a non-empty array of prices"}],
        )
    if len(payload) > max_items:
        raise ApiError(
            413,
            "batch_too_large",
            f"{len(payload)} prices in one request; the limit is {max_items}",
        )
    try:
        items = _items.validate_python(payload)
    except ValidationError as error:
        raise validation_error(error) from None
    _refuse_repeats(items)
    return items


@blueprint.post("/feedback")
def receive() -> tuple[dict[str, Any], int, dict[str, str]]:
    state = gateway()
    require_token(state.settings, "POST /feedback")
    items = _validated(json_body(), state.settings.max_batch)
    feedback_id = str(uuid.uuid4())
    entry = feedback_entry(
        feedback_id,
        time.time(),
        [
            {
                "prediction_id": item.prediction_id,
                "id": item.id,
                "price": item.price,
                "actual": price_category(item.price),
            }
            for item in items
        ],
    )
    settings = state.settings
    # The outcome first: once the prices are in, the monitor may join them at once. If they
    # are not taken, nobody learns this feedback id.
    save_feedback_outcomes(state.redis, {feedback_id: {"state": "queued", "received": len(items)}})
    stream = CappedStream(state.redis, settings.feedback_stream, settings.feedback_max_prices)
    if not stream.append(feedback_id, [Item(len(items), entry)]):
        forget_feedback_outcome(state.redis, feedback_id)
        raise ApiError(
            503,
            "feedback_backlog_full",
            f"{stream.held()} prices wait for the monitor (the limit is {stream.cap}); "
            "retry once it has drained them",
            retry_after=30,
        )
    # Joined in seconds, not at the next scheduled drain, once settled (see the constant);
    # RQ's scheduler keeps whole seconds and may run a job up to one second early.
    request_monitor(state.redis, state.settings, "drain", delay=FEEDBACK_SETTLE_SECONDS + 1.5)
    status_url = url_for("feedback.outcome", feedback_id=feedback_id)
    body = {"feedback_id": feedback_id, "accepted": len(items), "status_url": status_url}
    return body, 202, {"Location": status_url}


@blueprint.get("/feedback/<feedback_id>")
def outcome(feedback_id: str) -> tuple[dict[str, Any], int]:
    found = feedback_outcome(gateway().redis, feedback_id)
    if found is None:
        raise ApiError(404, "not_found", f"no feedback {feedback_id} (kept 7 days)")
    return {"feedback_id": feedback_id, **found}, 200
