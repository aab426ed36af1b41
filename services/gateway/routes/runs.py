"""POST /retrain starts a pipeline run; GET /runs and /runs/<id> report on them."""

import json
from typing import Any

from flask import Blueprint, request, url_for
from pydantic import ValidationError

from services.gateway.errors import ApiError, validation_error
from services.gateway.routes.requests import json_body, require_token
from services.gateway.server_paths import without_server_paths
from services.gateway.state import Gateway, gateway
from shared.contracts import RetrainRequest
from shared.launch import LAUNCH_LOCK, launch_run
from shared.raw_data import DataPathError, StoreUnavailable, requested_source
from shared.runs import as_text

blueprint = Blueprint("runs", __name__)
IDEMPOTENCY_TTL = 24 * 3600
MAX_IDEMPOTENCY_KEY = 200


def _data_path(state: Gateway, asked: str | None) -> str:
    """The dump to train on, as the run records it: a file under data/raw/ (relative to the
    project), an artifact of an MLflow run (runs:/<run id>/<path>) or an S3 object
    (s3://<bucket>/<key>, where enabled); 400 naming the field when it is not there or its
    name is wrong, 503 when its store does not answer."""
    try:
        return requested_source(state.settings, asked).name
    except DataPathError as error:
        raise ApiError(
            400, "bad_data_path", str(error), fields=[{"path": "data_path", "message": error.why}]
        ) from None
    except StoreUnavailable as error:
        raise ApiError(
            503, f"{error.store}_unavailable", f"{error}: data_path cannot be checked"
        ) from None


def _accepted(run_id: str, data_path: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    status_url = url_for("runs.run_status", run_id=run_id)
    return (
        {"run_id": run_id, "status_url": status_url, "data_path": data_path},
        202,
        {"Location": status_url},
    )


def _request_fingerprint(data_path: str, body: RetrainRequest) -> dict[str, Any]:
    """What an Idempotency-Key stands for: the request as understood (the resolved path)."""
    return {"data_path": data_path, "reason": body.reason, "force": body.force}


def _replayed_run(stored: bytes | str, request: dict[str, Any]) -> str:
    """The run an Idempotency-Key already started; reusing the key for another request is an
    error, not a silent answer about a run that ignored the new body."""
    text = as_text(stored)
    if not text.startswith("{"):  # a key stored before requests were recorded with it
        return text
    record = json.loads(text)
    if record["request"] != request:
        changed = sorted(k for k in request if record["request"].get(k) != request[k])
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"Idempotency-Key was used for run {record['run_id']} with a different request "
            f"({', '.join(changed)} differ); send a new key for a new request",
            fields=[{"path": "Idempotency-Key", "message": "already used with another body"}],
            run_id=record["run_id"],
        )
    return str(record["run_id"])


@blueprint.post("/retrain")
def retrain() -> tuple[dict[str, Any], int, dict[str, str]]:
    state = gateway()
    require_token(state.settings, "POST /retrain")
    try:
        body = RetrainRequest.model_validate(json_body(required=False) or {})
    except ValidationError as error:
        raise validation_error(error) from None
    data_path = _data_path(state, body.data_path)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(
            400, "bad_idempotency_key", f"Idempotency-Key over {MAX_IDEMPOTENCY_KEY} characters"
        )
    # One launch at a time across every gateway process: check-then-launch must not race.
    # The lock lives 10 s (a launch takes milliseconds) and a request waits up to 12 s for
    # it, so a lock taken by a request that then lost Redis (frozen, restarted) is outwaited.
    with state.redis.lock(LAUNCH_LOCK, timeout=10, blocking_timeout=12):
        fingerprint = _request_fingerprint(data_path, body)
        if key and (known := state.redis.get(f"idempotency:{key}")):
            run_id = _replayed_run(known, fingerprint)
            return _accepted(run_id, (state.runs.get(run_id) or {}).get("data_path", data_path))
        active = state.runs.active()
        if active and not body.force:
            raise ApiError(
                409,
                "run_in_progress",
                f"run {active['run_id']} is {active['state']}; retry later or send force",
                run_id=active["run_id"],
            )
        meta = {"reason": body.reason, "requested_via": "api", "forced": body.force}
        run_id = launch_run(state.redis, state.settings, data_path, meta)
        if key:
            record = json.dumps({"run_id": run_id, "request": fingerprint})
            state.redis.set(f"idempotency:{key}", record, ex=IDEMPOTENCY_TTL)
    return _accepted(run_id, data_path)


@blueprint.get("/runs/<run_id>")
def run_status(run_id: str) -> tuple[dict[str, Any], int]:
    run = gateway().runs.get(run_id)
    if run is None:
        raise ApiError(404, "not_found", f"no run {run_id}")
    return without_server_paths(run, gateway().settings.project_dir), 200


@blueprint.get("/runs")
def recent_runs() -> tuple[dict[str, Any], int]:
    limit = request.args.get("limit", "20")
    # isdecimal, not isdigit: "²" is a digit that int() refuses (schemathesis found it).
    if not (limit.isascii() and limit.isdecimal()) or not 1 <= int(limit) <= 200:
        raise ApiError(
            422,
            "validation_error",
            "limit must be a whole number from 1 to 200",
            fields=[{"path": "?limit", "message": "1 to 200"}],
        )
    state = gateway()
    runs = state.runs.recent(int(limit))
    return {"runs": without_server_paths(runs, state.settings.project_dir)}, 200
