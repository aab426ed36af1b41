"""POST /retrain starts a pipeline run; GET /runs and /runs/<id> report on them."""

import json
import re
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, request, url_for
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from services.gateway.errors import ApiError, validation_error
from services.gateway.routes.requests import json_body, require_token
from services.gateway.server_paths import without_server_paths
from services.gateway.state import Gateway, gateway
from shared.contracts import RetrainRequest
from shared.launch import LAUNCH_LOCK, launch_run
from shared.raw_data import (
    artifact_exists,
    artifact_of,
    s3_client,
    s3_object_exists,
    s3_object_of,
)
from shared.runs import as_text

blueprint = Blueprint("runs", __name__)
IDEMPOTENCY_TTL = 24 * 3600
MAX_IDEMPOTENCY_KEY = 200
# What a data_path may hold: its text reaches RQ jobs, and their pages in rq-dashboard, which
# would render markup.
SAFE_PATH = re.compile(r"[\w./-]+", re.ASCII)


def _bad_data_path(message: str, why: str) -> ApiError:
    return ApiError(400, "bad_data_path", message, fields=[{"path": "data_path", "message": why}])


def _artifact_data_path(state: Gateway, asked: str) -> str:
    """A dump named as an MLflow artifact: it must be a file of that run."""
    artifact = artifact_of(asked)
    if artifact is None:
        raise _bad_data_path(
            "an MLflow artifact is named runs:/<32-character run id>/<path of plain names>",
            "not a runs:/<run id>/<path> name",
        )
    try:
        exists = artifact_exists(MlflowClient(state.settings.mlflow_tracking_uri), *artifact)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            exists = False
        else:
            raise ApiError(
                503, "mlflow_unavailable", "MLflow did not answer: data_path cannot be checked"
            ) from None
    if not exists:
        raise _bad_data_path(f"no such artifact: {asked}", "artifact not found")
    return asked


def _s3_data_path(state: Gateway, asked: str) -> str:
    """A dump named as an S3 object, where the deployment reads them: it must be there."""
    if not state.settings.s3_dumps:
        raise _bad_data_path(
            "s3:// dumps are not enabled here (PRICE_CATEGORY_S3_DUMPS)", "s3:// not enabled"
        )
    found = s3_object_of(asked)
    if found is None:
        raise _bad_data_path(
            "an S3 object is named s3://<bucket>/<key of plain names>",
            "not an s3://<bucket>/<key> name",
        )
    unavailable = ApiError(
        503, "s3_unavailable", "the S3 store did not answer: data_path cannot be checked"
    )
    try:
        exists = s3_object_exists(s3_client(), *found)
    except ClientError as error:  # the store answered: a refusal (403) or its own failure
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        if status >= 500:
            raise unavailable from None
        code = error.response.get("Error", {}).get("Code", str(status))
        raise _bad_data_path(
            f"the S3 store refused {asked}: {code}", "object not readable"
        ) from None
    except BotoCoreError:  # not answering, or no credentials configured
        raise unavailable from None
    if not exists:
        raise _bad_data_path(f"no such object: {asked}", "object not found")
    return asked


def _data_path(state: Gateway, asked: str | None) -> str:
    """The raw file to train on: relative to the project, under data/raw/, an artifact of an
    MLflow run (runs:/<run id>/<path>), or an S3 object (s3://<bucket>/<key>, where enabled);
    the last two are readable from any node."""
    settings = state.settings
    if asked is not None and asked.startswith("runs:/"):
        return _artifact_data_path(state, asked)
    if asked is not None and asked.startswith("s3://"):
        return _s3_data_path(state, asked)
    if asked is not None and not SAFE_PATH.fullmatch(asked):
        raise _bad_data_path(
            "data_path may hold only letters, digits, '.', '_', '-' and '/'",
            "characters outside [A-Za-z0-9._/-]",
        )
    relative = Path(asked) if asked else settings.default_data_path
    raw_dir = settings.resolve(settings.raw_data_dir).resolve()
    try:
        resolved = settings.resolve(relative).resolve()
        exists = resolved.is_file()
    except (ValueError, OSError) as error:  # a NUL byte, a name too long for the file system
        # The reason alone: an OSError's text names the absolute path.
        why = error.strerror if isinstance(error, OSError) else str(error)
        raise _bad_data_path(
            f"data_path is not a usable path: {why}", "not a usable path"
        ) from None
    if not resolved.is_relative_to(raw_dir):
        raise _bad_data_path(
            f"data_path must be a file under {settings.raw_data_dir}/",
            "outside the raw data folder",
        )
    if not exists:
        raise _bad_data_path(f"no such file: {relative}", "file not found")
    return str(resolved.relative_to(settings.project_dir.resolve()))


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
