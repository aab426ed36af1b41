"""Every error the gateway answers is JSON with a message; none is a bare 500 for bad input."""

from typing import Any

from flask import Flask, Response, jsonify
from mlflow.exceptions import MlflowException
from pydantic import ValidationError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    """An answer that is not a success: status, machine-readable kind, message, extras."""

    def __init__(
        self, status: int, error: str, message: str, retry_after: int | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra
        self.retry_after = retry_after  # seconds, sent as Retry-After


def field_errors(error: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """One entry per bad field, with its path ("bedrooms", "[3].latitude")."""
    entries = []
    for problem in error.errors(include_url=False):
        path = prefix
        for part in problem["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        entries.append({"path": path or "(body)", "message": message})
    return entries


def validation_error(error: ValidationError, prefix: str = "") -> ApiError:
    fields = field_errors(error, prefix)
    names = ", ".join(entry["path"] for entry in fields[:5])
    return ApiError(422, "validation_error", f"invalid fields: {names}", fields=fields)


def _answer(status: int, error: str, message: str, **extra: Any) -> tuple[Response, int]:
    body = {"error": error, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return jsonify(body), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int]:
        response, status = _answer(error.status, error.error, error.message, **error.extra)
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response, status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        kind = (error.name or "error").lower().replace(" ", "_")
        response, _ = _answer(status, kind, error.description or kind)
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response, status

    @app.errorhandler(RedisError)
    def redis_unavailable(error: RedisError) -> tuple[Response, int]:
        # Runs, queues and idempotency keys live in Redis; predictions do not need it.
        app.logger.warning("redis unavailable: %s", error)
        response, status = _answer(
            503, "redis_unavailable", "the run store (Redis) is not answering; retry shortly"
        )
        response.headers["Retry-After"] = "5"
        return response, status

    @app.errorhandler(MlflowException)
    def mlflow_failed(error: MlflowException) -> tuple[Response, int]:
        # The registry failed mid-request (it answered the health check before): not ours to
        # turn into a 500; the caller retries.
        app.logger.warning("mlflow failed: %s", error)
        response, status = _answer(
            503, "mlflow_unavailable", "MLflow (the model registry) failed to answer; retry shortly"
        )
        response.headers["Retry-After"] = "5"
        return response, status

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        app.logger.exception("unhandled error")
        return _answer(500, "internal_error", "the server failed to answer; see its logs")
