"""The champion by hand: POST /model/rollback and /model/pin, and GET /model/history.

A rollback moves the champion alias as the gate does: inside the same promotion lock, fenced
right before the alias moves, and announced on the same channel, so every gateway process
swaps to it within a second (serving the old one until then: no prediction fails). It only
ever points the alias at a version this code loads (skops, trusted types) and that answers
the challenge's example. A pin stops the gate from moving the alias until it is lifted; runs
still register their winner and say what the gate would have done.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import Blueprint, g
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ValidationError
from redis.lock import Lock

from services.gateway.errors import ApiError, validation_error
from services.gateway.registry import prove
from services.gateway.routes.requests import json_body, require_token
from services.gateway.state import Gateway, gateway
from shared.contracts import PinRequest, RollbackRequest
from shared.lifecycle import Event, now, previous_champion
from shared.locks import LockLostError, fence, promotion_lock
from shared.probes import mlflow_answers
from shared.queues import publish_promotion
from shared.registry import Registry

blueprint = Blueprint("lifecycle", __name__)
# How long a request waits for a select (or another rollback) holding the promotion lock.
LOCK_WAIT_SECONDS = 30
Body = TypeVar("Body", bound=BaseModel)


@blueprint.get("/model/history")
def model_history() -> tuple[dict[str, Any], int]:
    registry = registry_or_503(gateway())
    return {
        "pinned": registry.pin(),
        "events": [event.as_json() for event in registry.history()],
    }, 200


@blueprint.post("/model/rollback")
def rollback() -> tuple[dict[str, Any], int]:
    state, body, registry = guarded("POST /model/rollback", RollbackRequest, required=False)
    with promotion_lock_or_409(state) as lock:
        current = champion_version(registry)
        target = body.version or previous_champion(registry.history(), current)
        if target is None:
            raise ApiError(
                409,
                "no_earlier_version",
                f'no version was promoted before v{current}: name one with {{"version": N}}',
            )
        if target == current:
            raise version_error(409, "already_champion", f"v{target} is the champion already")
        check_servable(registry, target)
        fence(lock)  # still ours: nobody moved the alias since the champion was read
        registry.promote(target)
        event = Event(now(), "rolled_back", target, current, body.reason or "", asked_by())
        registry.record(event)
        pin = _pin(registry, target, body.reason) if body.pin else registry.pin()
    publish_promotion(state.redis, state.settings, target)
    return {**event.as_json(), "pinned": pin}, 200


@blueprint.post("/model/pin")
def pin() -> tuple[dict[str, Any], int]:
    state, body, registry = guarded("POST /model/pin", PinRequest, required=True)
    with promotion_lock_or_409(state):  # a pin and a gate's decision never interleave
        current = champion_version(registry)
        if body.pin:
            pinned = _pin(registry, current, body.reason)
        else:
            pinned = None
            if registry.pin() is not None:
                registry.set_pin(None)
                registry.record(
                    Event(now(), "unpinned", current, None, body.reason or "", asked_by())
                )
    return {"champion_version": current, "pinned": pinned}, 200


def _pin(registry: Registry, version: str, reason: str | None) -> dict[str, Any]:
    event = Event(now(), "pinned", version, None, reason or "", asked_by())
    pin = {"at": event.at, "reason": event.reason, "by": event.by}
    registry.set_pin(pin)
    registry.record(event)
    return pin


def guarded(operation: str, model: type[Body], required: bool) -> tuple[Gateway, Body, Registry]:
    """What a route that changes who serves starts with: the token checked, then its body
    parsed, then the registry once MLflow answers."""
    state = gateway()
    require_token(state.settings, operation)
    body = parsed_body(model, required)
    return state, body, registry_or_503(state)


def asked_by() -> dict[str, str]:
    """Who asked: whoever holds the retrain token, and this request's id (in the logs too)."""
    return {"token": "retrain", "request_id": g.request_id}


def parsed_body(model: type[Body], required: bool) -> Body:
    try:
        return model.model_validate(json_body(required=required) or {})
    except ValidationError as error:
        raise validation_error(error) from None


def registry_or_503(state: Gateway) -> Registry:
    """The registry, once MLflow answers its health check (503 while it does not)."""
    if not mlflow_answers(state.settings.mlflow_tracking_uri):
        raise ApiError(
            503, "mlflow_unavailable", "MLflow (the model registry) is not answering; retry shortly"
        )
    return Registry(state.settings)


@contextmanager
def promotion_lock_or_409(state: Gateway) -> Iterator[Lock]:
    try:
        with promotion_lock(state.redis, state.settings.model_name, LOCK_WAIT_SECONDS) as lock:
            yield lock
    except LockLostError as error:
        raise ApiError(
            409,
            "promotion_busy",
            f"a promotion is being decided; retry shortly ({error})",
            retry_after=5,
        ) from None


def champion_version(registry: Registry) -> str:
    champion = registry.champion()
    if champion is None:
        raise ApiError(409, "no_champion", "no version has been promoted yet")
    return str(champion.version)


def version_error(status: int, error: str, message: str) -> ApiError:
    return ApiError(status, error, message, fields=[{"path": "version", "message": message}])


# Versions this process loaded and proved: a registered version's model never changes, and
# MLflow never gives its number to another, so each is downloaded and loaded once at most.
_PROVEN: set[tuple[str, str, str]] = set()


def check_servable(registry: Registry, version: str) -> None:
    """404 for a version that does not exist; 422 for one this gateway would not serve."""
    try:
        registry.version(version)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise version_error(
                404, "version_not_found", f"no version {version} is registered"
            ) from None
        raise
    proven = (registry.settings.mlflow_tracking_uri, registry.name, version)
    if proven in _PROVEN:
        return
    try:
        prove(registry.load_version(version))
        _PROVEN.add(proven)
    except Exception as error:  # noqa: BLE001 - whatever the reason, it is not served
        raise version_error(
            422,
            "version_unservable",
            f"v{version} cannot be served by this code: {type(error).__name__}: {error}",
        ) from None
